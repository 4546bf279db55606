/**
 * The hot-path envelope codec (src/messages/codec.ts) against the generated
 * protobufjs codec it stands in for: the same bytes out for every envelope,
 * the same object (or the same failure) back for every input, including
 * random, mutated and truncated ones.
 */
import fc from 'fast-check';
import test from 'ava';

import { LaneWriter, decodeEnvelope } from '../src/messages/codec';
import { Envelope } from '../src/messages/router';

const RUNS = Number(process.env.FUZZ_RUNS ?? 2000);

const u64 = fc.oneof(fc.integer({ min: 0, max: 300 }), fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }));
/** Strings as users name protocols and types, plus any text (lone surrogates included). */
const name = fc.oneof(fc.constantFrom('', 'bench/1', 'ping', 'chat/1', 'a.b.C'), fc.string({ maxLength: 50 }), fc.string({ unit: 'binary', maxLength: 50 }));
const envelopeArb = fc.record(
  {
    id: u64,
    protocol: name,
    type: name,
    inReplyTo: u64,
    inRegardsTo: u64,
    payload: fc.uint8Array({ maxLength: 300 }),
    error: fc.record({ code: fc.string({ maxLength: 30 }), message: fc.string({ maxLength: 80 }) }),
    control: fc.oneof(fc.constantFrom(0, 1, 2), fc.integer({ min: -5, max: 1000 })),
    oneway: fc.boolean(),
  },
  { requiredKeys: [] },
);

/** An own-property-for-own-property view of a decoded envelope (payloads as arrays). */
function shape(e: unknown): unknown {
  if (e instanceof Error) return { error: e.constructor.name, message: e.message };
  const o = e as Record<string, unknown>;
  const out: Record<string, unknown> = { class: (o.constructor as { name: string }).name };
  for (const k of Object.keys(o)) {
    const v = o[k];
    out[k] = v instanceof Uint8Array ? { bytes: [...v], buffer: Buffer.isBuffer(v) } : v;
  }
  return out;
}

function both(bytes: Buffer): [unknown, unknown] {
  let ours: unknown;
  let theirs: unknown;
  try {
    ours = decodeEnvelope(bytes, 0, bytes.length);
  } catch (e) {
    ours = e;
  }
  try {
    theirs = Envelope.decode(bytes);
  } catch (e) {
    theirs = e;
  }
  return [shape(ours), shape(theirs)];
}

test('LaneWriter writes what Envelope.encodeDelimited writes, envelope after envelope', (t) => {
  fc.assert(
    fc.property(fc.array(envelopeArb, { minLength: 1, maxLength: 8 }), (envs) => {
      const w = new LaneWriter();
      for (const e of envs) w.append(e);
      const expected = Buffer.concat(envs.map((e) => Envelope.encodeDelimited(e).finish()));
      t.is(w.length, expected.length);
      t.deepEqual(w.take(), expected);
      t.is(w.length, 0, 'take() starts a new buffer');
    }),
    { numRuns: RUNS },
  );
});

test('LaneWriter on decoded Envelope objects (defaults on the prototype, not written) and null-prototype objects', (t) => {
  fc.assert(
    fc.property(envelopeArb, (e) => {
      const decoded = Envelope.decode(Envelope.encode(e).finish());
      const bare = Object.assign(Object.create(null) as object, e);
      const w = new LaneWriter();
      w.append(decoded);
      w.append(bare);
      t.deepEqual(w.take(), Buffer.concat([Envelope.encodeDelimited(decoded).finish(), Envelope.encodeDelimited(bare).finish()]));
    }),
    { numRuns: RUNS },
  );
});

test('LaneWriter: bytes taken stay as they were while the writer goes on', (t) => {
  const w = new LaneWriter();
  w.append({ id: 1, protocol: 'p', type: 't', payload: new Uint8Array(100).fill(1) });
  const first = w.take();
  const copy = Buffer.from(first);
  for (let i = 0; i < 50; i++) w.append({ id: i + 2, protocol: 'p', type: 't', payload: new Uint8Array(100).fill(2) });
  t.deepEqual(first, copy);
  w.clear();
  t.is(w.length, 0);
});

test('decodeEnvelope returns what Envelope.decode returns, for every envelope', (t) => {
  fc.assert(
    fc.property(envelopeArb, (e) => {
      const bytes = Buffer.from(Envelope.encode(e).finish());
      const [ours, theirs] = both(bytes);
      t.deepEqual(ours, theirs);
    }),
    { numRuns: RUNS },
  );
});

test('decodeEnvelope reads a frame inside a bigger buffer, and its payload is a view of it', (t) => {
  const body = Envelope.encode({ id: 7, protocol: 'bench/1', type: 'ping', payload: Buffer.from('hello') }).finish();
  const buf = Buffer.concat([Buffer.from([1, 2, 3]), body, Buffer.from([9, 9])]);
  const env = decodeEnvelope(buf, 3, 3 + body.length);
  t.is(env.id, 7);
  t.is(env.protocol, 'bench/1');
  t.is(env.type, 'ping');
  t.is(Buffer.from(env.payload).toString(), 'hello');
  t.is(env.payload.buffer, buf.buffer, 'no copy of the payload');
});

test('decodeEnvelope on random, mutated and truncated input: the same result or the same error as Envelope.decode', (t) => {
  const mutated = fc
    .tuple(envelopeArb, fc.array(fc.record({ at: fc.nat(), xor: fc.integer({ min: 1, max: 255 }) }), { maxLength: 4 }), fc.nat())
    .map(([e, flips, cut]) => {
      const b = Buffer.from(Envelope.encode(e).finish());
      for (const f of flips) if (b.length > 0) b[f.at % b.length]! ^= f.xor;
      return b.subarray(0, b.length === 0 ? 0 : cut % (b.length + 1));
    });
  // Varints of every length, minimal or not, in every field, including the
  // 32-bit ones protobufjs reads its own way past 4 bytes.
  const varintField = fc
    .tuple(fc.constantFrom(0x08, 0x12, 0x1a, 0x20, 0x28, 0x32, 0x40, 0x48, 0x88), fc.array(fc.integer({ min: 0x80, max: 0xff }), { maxLength: 10 }), fc.integer({ min: 0, max: 0x7f }), fc.uint8Array({ maxLength: 8 }))
    .map(([tag, cont, last, rest]) => Buffer.from([tag, ...cont, last, ...rest]));
  const input = fc.oneof(fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b)), mutated, varintField, fc.array(varintField, { maxLength: 4 }).map((a) => Buffer.concat(a)));
  fc.assert(
    fc.property(input, (bytes) => {
      const [ours, theirs] = both(bytes);
      t.deepEqual(ours, theirs);
    }),
    { numRuns: RUNS * 5 },
  );
});

test('names seen before decode to the same string, and a new name with the same length is not mistaken for one', (t) => {
  const a = Envelope.encode({ id: 1, protocol: 'chat/1', type: 'aaaa' }).finish();
  const b = Envelope.encode({ id: 2, protocol: 'chat/2', type: 'aaab' }).finish();
  for (let i = 0; i < 3; i++) {
    const x = decodeEnvelope(Buffer.from(a), 0, a.length);
    const y = decodeEnvelope(Buffer.from(b), 0, b.length);
    t.is(x.protocol, 'chat/1');
    t.is(x.type, 'aaaa');
    t.is(y.protocol, 'chat/2');
    t.is(y.type, 'aaab');
  }
  // More distinct names than the cache holds: still all correct.
  for (let i = 0; i < 100; i++) {
    const e = Envelope.encode({ id: i + 1, protocol: `p/${i % 37}`, type: `t${i % 23}` }).finish();
    const d = decodeEnvelope(Buffer.from(e), 0, e.length);
    t.is(d.protocol, `p/${i % 37}`);
    t.is(d.type, `t${i % 23}`);
  }
});
