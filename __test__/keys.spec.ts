import { randomBytes } from 'node:crypto';
import test from 'ava';
import nacl from 'tweetnacl';
import { InvalidArgumentError, PeersockError } from '../src/errors';
import { assertKey, decodeKey, encodeKey, keyPair, keysEqual, parseDialString, signStatement } from '../src/keys';

// Ed25519 public key of the all-zero seed (checked with tweetnacl) and its
// z-base-32 text (cross-checked against an independent z-base-32 encoder).
const ZERO_SEED_PUBLIC_HEX = '3b6a27bcceb6a42d62a3a8d02a6f0d73653215771de243a63ac048a18b59da29';
const ZERO_SEED_PUBLIC_Z32 = '8pinxxgqs41n4aididenw5apqp1urfmzdztr8jt4abrkdn435ewo';
const ALPHABET = 'ybndrfg8ejkmcpqxot1uwisza345h769';

const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');
const randomKey = (): Uint8Array => new Uint8Array(randomBytes(32));

/** A deliberately naive reference encoder: bytes → bit string → 5-bit groups. */
function referenceEncode(bytes: Uint8Array): string {
  let bitString = '';
  for (const b of bytes) bitString += b.toString(2).padStart(8, '0');
  while (bitString.length % 5 !== 0) bitString += '0';
  let out = '';
  for (let i = 0; i < bitString.length; i += 5) out += ALPHABET[parseInt(bitString.slice(i, i + 5), 2)];
  return out;
}

function throwsInvalid(t: import('ava').ExecutionContext, fn: () => unknown): void {
  const err = t.throws(fn, { instanceOf: InvalidArgumentError });
  t.is(err?.code, 'ERR_PEERSOCK_INVALID_ARGUMENT');
}

test('keyPair from the zero seed gives the known Ed25519 public key', (t) => {
  const pair = keyPair(new Uint8Array(32));
  t.is(hex(pair.publicKey), ZERO_SEED_PUBLIC_HEX);
  t.is(pair.secretKey.length, 64);
  t.deepEqual(pair.secretKey.subarray(32), pair.publicKey);
  t.is(encodeKey(pair.publicKey), ZERO_SEED_PUBLIC_Z32);
});

test('keyPair is deterministic per seed and random without one', (t) => {
  const seed = randomKey();
  t.deepEqual(keyPair(seed).publicKey, keyPair(seed).publicKey);
  const a = keyPair();
  const b = keyPair();
  t.is(a.publicKey.length, 32);
  t.false(keysEqual(a.publicKey, b.publicKey));
  const message = new TextEncoder().encode('hello');
  t.true(nacl.sign.detached.verify(message, nacl.sign.detached(message, a.secretKey), a.publicKey));
});

test('keyPair rejects seeds that are not 32 bytes', (t) => {
  throwsInvalid(t, () => keyPair(new Uint8Array(31)));
  throwsInvalid(t, () => keyPair(new Uint8Array(33)));
  throwsInvalid(t, () => keyPair([0, 1, 2] as unknown as Uint8Array));
});

test('encodeKey gives 52 lowercase z-base-32 characters', (t) => {
  t.is(encodeKey(new Uint8Array(32)), 'y'.repeat(52));
  t.is(encodeKey(new Uint8Array(32).fill(0xff)), '9'.repeat(51) + 'o');
  const text = encodeKey(randomKey());
  t.is(text.length, 52);
  t.regex(text, /^[ybndrfg8ejkmcpqxot1uwisza345h769]{52}$/);
});

test('encodeKey matches the reference encoder and decodeKey round-trips, for many random keys', (t) => {
  for (let i = 0; i < 500; i++) {
    const key = randomKey();
    const text = encodeKey(key);
    t.is(text, referenceEncode(key));
    t.deepEqual(decodeKey(text), key);
    t.deepEqual(decodeKey(text.toUpperCase()), key);
  }
});

test('decodeKey accepts 64-character hex in either case', (t) => {
  const key = randomKey();
  t.deepEqual(decodeKey(hex(key)), key);
  t.deepEqual(decodeKey(hex(key).toUpperCase()), key);
  t.deepEqual(decodeKey(ZERO_SEED_PUBLIC_HEX), decodeKey(ZERO_SEED_PUBLIC_Z32));
  t.true(decodeKey(hex(key)) instanceof Uint8Array);
});

test('decodeKey rejects wrong lengths', (t) => {
  const text = encodeKey(randomKey());
  throwsInvalid(t, () => decodeKey(''));
  throwsInvalid(t, () => decodeKey(text.slice(0, 51)));
  throwsInvalid(t, () => decodeKey(text + 'y'));
  throwsInvalid(t, () => decodeKey(hex(randomKey()).slice(0, 62)));
  throwsInvalid(t, () => decodeKey(hex(randomKey()) + '00'));
  throwsInvalid(t, () => decodeKey(undefined as unknown as string));
});

test('decodeKey rejects characters outside the alphabet', (t) => {
  const text = encodeKey(randomKey());
  // l, v, 0 and 2 are deliberately absent from z-base-32.
  for (const bad of ['l', 'v', '0', '2', '-', ' ', '=', 'é', '\u0018']) {
    throwsInvalid(t, () => decodeKey(bad + text.slice(1)));
  }
  throwsInvalid(t, () => decodeKey('g'.repeat(63) + 'x')); // 64 characters, not hex
});

test('decodeKey rejects non-zero padding bits', (t) => {
  const text = encodeKey(randomKey());
  const last = ALPHABET.indexOf(text[51]!);
  t.is(last & 0b1111, 0, 'the encoder leaves the 4 padding bits zero');
  for (let padding = 1; padding < 16; padding++) {
    throwsInvalid(t, () => decodeKey(text.slice(0, 51) + ALPHABET[last | padding]));
  }
});

test('assertKey accepts exactly 32-byte Uint8Arrays', (t) => {
  const key = randomKey();
  t.is(assertKey(key, 'publicKey'), key);
  t.notThrows(() => assertKey(Buffer.alloc(32), 'publicKey'));
  const err = t.throws(() => assertKey(new Uint8Array(16), 'publicKey'), { instanceOf: InvalidArgumentError });
  t.regex(err?.message ?? '', /publicKey/);
  throwsInvalid(t, () => assertKey('not a key', 'publicKey'));
  throwsInvalid(t, () => assertKey(new Array(32).fill(0), 'publicKey'));
  throwsInvalid(t, () => assertKey(undefined, 'publicKey'));
});

test('keysEqual compares length and bytes', (t) => {
  const key = randomKey();
  t.true(keysEqual(key, Uint8Array.from(key)));
  t.true(keysEqual(key, Buffer.from(key)));
  const other = Uint8Array.from(key);
  other[31] = other[31]! ^ 1;
  t.false(keysEqual(key, other));
  t.false(keysEqual(key, key.subarray(0, 31)));
});

test('parseDialString parses host names and IPv4 addresses', (t) => {
  const key = randomKey();
  t.deepEqual(parseDialString(`${encodeKey(key)}@127.0.0.1:4433`), { publicKey: key, host: '127.0.0.1', port: 4433 });
  t.deepEqual(parseDialString(`${hex(key)}@example.com:1`), { publicKey: key, host: 'example.com', port: 1 });
  t.deepEqual(parseDialString(`${encodeKey(key).toUpperCase()}@localhost:65535`), {
    publicKey: key,
    host: 'localhost',
    port: 65535,
  });
});

test('parseDialString parses bracketed IPv6 addresses', (t) => {
  const key = randomKey();
  t.deepEqual(parseDialString(`${encodeKey(key)}@[::1]:9000`), { publicKey: key, host: '::1', port: 9000 });
  t.deepEqual(parseDialString(`${encodeKey(key)}@[fe80::1:2]:80`), { publicKey: key, host: 'fe80::1:2', port: 80 });
});

test('parseDialString rejects malformed dial strings', (t) => {
  const k = encodeKey(randomKey());
  const bad = [
    '',
    k,
    `${k}@`,
    `${k}@127.0.0.1`,
    `${k}@127.0.0.1:`,
    `${k}@:4433`,
    `${k}@127.0.0.1:0`,
    `${k}@127.0.0.1:65536`,
    `${k}@127.0.0.1:99999`,
    `${k}@127.0.0.1:-1`,
    `${k}@127.0.0.1:44 33`,
    `${k}@127.0.0.1:0x10`,
    `${k}@127.0.0.1:4433 `,
    `${k}@::1:4433`,
    `${k}@[::1]`,
    `${k}@[::1]4433`,
    `${k}@[::1]:`,
    `${k}@[]:4433`,
    `${k}@[127.0.0.1]:4433`,
    `${k}@[::1:4433`,
    `${k}@host name:4433`,
    `${k}@a@b:4433`,
    `${k.slice(1)}@127.0.0.1:4433`,
    `@127.0.0.1:4433`,
    `notakey@127.0.0.1:4433`,
  ];
  for (const text of bad) {
    const err = t.throws(() => parseDialString(text), { instanceOf: InvalidArgumentError }, text);
    t.is(err?.code, 'ERR_PEERSOCK_INVALID_ARGUMENT');
  }
  throwsInvalid(t, () => parseDialString(42 as unknown as string));
});

test('key errors are PeersockErrors with a stable code', (t) => {
  const err = t.throws(() => decodeKey('nope'));
  t.true(err instanceof PeersockError);
  t.true(err instanceof InvalidArgumentError);
  t.true(err instanceof Error);
  t.is((err as PeersockError).code, 'ERR_PEERSOCK_INVALID_ARGUMENT');
  t.is(err?.name, 'InvalidArgumentError');
});

test('signStatement signs published statements with the identity key, and never a TLS 1.3 signature context', (t) => {
  const kp = keyPair();
  const record = new TextEncoder().encode('4:salt11:peersock/v13:seqi1e1:v3:abc');
  t.true(nacl.sign.detached.verify(record, signStatement(record, kp.secretKey), kp.publicKey));
  // What TLS 1.3's CertificateVerify signs: 64 spaces, a context string, 0, the transcript hash.
  const tls = new Uint8Array([...new Uint8Array(64).fill(0x20), ...new TextEncoder().encode('TLS 1.3, server CertificateVerify'), 0, ...randomBytes(32)]);
  t.throws(() => signStatement(tls, kp.secretKey), { instanceOf: InvalidArgumentError });
  t.throws(() => signStatement(new Uint8Array(0), kp.secretKey), { instanceOf: InvalidArgumentError });
});
