/**
 * Ed25519 identities: a peer's name is its 32-byte public key. In the API keys
 * are `Uint8Array(32)`; for people they are z-base-32 text (52 characters), and
 * `decodeKey` also accepts 64-character hex.
 */
import { isIPv6 } from 'node:net';
import nacl from 'tweetnacl';
import { InvalidArgumentError } from './errors';

/** Length in bytes of an Ed25519 public key and of a key-pair seed. */
export const KEY_LENGTH = 32;

/** Length in characters of a z-base-32 encoded key (256 bits, 5 bits a character). */
export const ENCODED_KEY_LENGTH = 52;

/** An Ed25519 signing key pair; `secretKey` is tweetnacl's 64 bytes (seed then public key). */
export interface KeyPair {
  /** The 32-byte public key: this peer's name. */
  publicKey: Uint8Array;
  /** The 64-byte secret key; keep it private. */
  secretKey: Uint8Array;
}

/** A parsed `<key>@<host>:<port>` dial string. */
export interface DialTarget {
  /** The peer's 32-byte public key, which the connection is pinned to. */
  publicKey: Uint8Array;
  /** Host name or IP address, without the brackets of an IPv6 literal. */
  host: string;
  /** UDP port, 1..65535. */
  port: number;
}

const ALPHABET = 'ybndrfg8ejkmcpqxot1uwisza345h769';
const HEX = /^[0-9a-f]{64}$/i;

/** Character code (lowercase) → 5-bit value, or -1 for characters outside the alphabet. */
const DECODE = new Int8Array(128).fill(-1);
for (let i = 0; i < ALPHABET.length; i++) DECODE[ALPHABET.charCodeAt(i)] = i;

/**
 * Generates an Ed25519 key pair: random, or derived from a 32-byte `seed`
 * (the same seed always gives the same pair, which tests rely on).
 */
export function keyPair(seed?: Uint8Array): KeyPair {
  if (seed === undefined) return nacl.sign.keyPair();
  if (!(seed instanceof Uint8Array) || seed.length !== KEY_LENGTH) {
    throw new InvalidArgumentError(`seed must be a Uint8Array of ${KEY_LENGTH} bytes`);
  }
  return nacl.sign.keyPair.fromSeed(seed);
}

/** Checks that `key` is a 32-byte Uint8Array and returns it; `what` names it in the error. */
export function assertKey(key: unknown, what: string): Uint8Array {
  if (!(key instanceof Uint8Array) || key.length !== KEY_LENGTH) {
    throw new InvalidArgumentError(`${what} must be a Uint8Array of ${KEY_LENGTH} bytes`);
  }
  return key;
}

/** True when both keys have the same length and bytes (keys are public: no constant time needed). */
export function keysEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Encodes a 32-byte key as 52 lowercase z-base-32 characters (most significant bit first). */
export function encodeKey(key: Uint8Array): string {
  assertKey(key, 'key');
  let out = '';
  let acc = 0; // pending bits, right-aligned
  let bits = 0; // how many bits of `acc` are pending
  for (const byte of key) {
    acc = ((acc << 8) | byte) & 0xfff; // at most 4 + 8 bits are ever pending
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      out += ALPHABET[(acc >> bits) & 31];
    }
  }
  if (bits > 0) out += ALPHABET[(acc << (5 - bits)) & 31]; // zero-padded tail
  return out;
}

/**
 * Decodes a key from z-base-32 (52 characters, any case, unused trailing bits
 * zero) or 64-character hex. Throws InvalidArgumentError for anything else.
 */
export function decodeKey(text: string): Uint8Array {
  if (typeof text !== 'string') throw new InvalidArgumentError('key text must be a string');
  if (HEX.test(text)) return Uint8Array.from(Buffer.from(text, 'hex'));
  if (text.length !== ENCODED_KEY_LENGTH) {
    throw new InvalidArgumentError(
      `key must be ${ENCODED_KEY_LENGTH} z-base-32 or 64 hex characters, got ${text.length} characters`,
    );
  }
  const key = new Uint8Array(KEY_LENGTH);
  let acc = 0;
  let bits = 0;
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    const lower = c >= 0x41 && c <= 0x5a ? c + 0x20 : c; // 'A'..'Z' → 'a'..'z'
    const value = lower < 128 ? DECODE[lower] : -1;
    if (value < 0) throw new InvalidArgumentError(`invalid z-base-32 character ${JSON.stringify(text[i])} in key`);
    acc = ((acc << 5) | value) & 0x1fff; // at most 7 + 5 bits are ever pending
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      key[n++] = (acc >> bits) & 0xff;
    }
  }
  if ((acc & ((1 << bits) - 1)) !== 0) {
    throw new InvalidArgumentError('key has non-zero padding bits: not a canonical z-base-32 key');
  }
  return key;
}

/**
 * Parses `<key>@<host>:<port>`, where `key` is anything `decodeKey` accepts and
 * an IPv6 host is written in brackets (`[::1]:4433`). Throws InvalidArgumentError
 * if any part is missing or malformed.
 */
export function parseDialString(text: string): DialTarget {
  if (typeof text !== 'string') throw new InvalidArgumentError('dial string must be a string');
  const at = text.indexOf('@');
  if (at < 0) throw new InvalidArgumentError(`dial string ${JSON.stringify(text)} must look like <key>@<host>:<port>`);
  const publicKey = decodeKey(text.slice(0, at));
  const address = text.slice(at + 1);

  let host: string;
  let portText: string;
  if (address.startsWith('[')) {
    const close = address.indexOf(']');
    if (close < 0 || address[close + 1] !== ':') {
      throw new InvalidArgumentError(`bad IPv6 address in dial string ${JSON.stringify(text)}: use [addr]:port`);
    }
    host = address.slice(1, close);
    portText = address.slice(close + 2);
    if (!isIPv6(host)) throw new InvalidArgumentError(`${JSON.stringify(host)} is not an IPv6 address`);
  } else {
    const colon = address.lastIndexOf(':');
    if (colon < 0) throw new InvalidArgumentError(`dial string ${JSON.stringify(text)} has no port`);
    host = address.slice(0, colon);
    portText = address.slice(colon + 1);
    if (host.includes(':')) throw new InvalidArgumentError('an IPv6 host must be written in brackets: [addr]:port');
  }

  if (host === '' || /[\s@/[\]]/.test(host)) {
    throw new InvalidArgumentError(`bad host ${JSON.stringify(host)} in dial string`);
  }
  const port = /^[0-9]{1,5}$/.test(portText) ? Number(portText) : NaN;
  if (!(port >= 1 && port <= 65535)) {
    throw new InvalidArgumentError(`bad port ${JSON.stringify(portText)} in dial string: must be 1..65535`);
  }
  return { publicKey, host, port };
}

/**
 * An Ed25519 signature of `message` by `secretKey` (tweetnacl's 64-byte
 * form), for statements published under an identity key (a DHT record).
 * Messages that begin with a space are refused: TLS 1.3 signs 64 spaces and
 * a context, so a handshake signature can never be obtained this way.
 */
export function signStatement(message: Uint8Array, secretKey: Uint8Array): Uint8Array {
  if (!(message instanceof Uint8Array) || message.length === 0 || message[0] === 0x20) {
    throw new InvalidArgumentError('a statement must be non-empty bytes not beginning with a space');
  }
  return nacl.sign.detached(message, secretKey);
}
