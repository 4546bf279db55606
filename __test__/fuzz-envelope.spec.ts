/**
 * Property tests (fast-check) of the message layer's wire decoding: the
 * protobuf Envelope decoder and the varint-length FrameReader, fed random,
 * mutated and truncated bytes. Whatever arrives from a peer, decoding either
 * yields a value or throws an Error (never anything else, never hangs), and
 * what decodes re-encodes to the same meaning. The end-to-end fuzz through
 * a live Dispatcher is in messages-extra.spec.ts.
 */
import fc from 'fast-check';
import test from 'ava';

import { MessageTooLargeError } from '../src/messages/errors';
import { FrameReader, frame } from '../src/messages/framing';
import { Envelope, largeHead } from '../src/messages/router';

const RUNS = Number(process.env.FUZZ_RUNS ?? 2000);

const u64 = fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER });
const envelopeArb = fc.record(
  {
    id: u64,
    protocol: fc.string({ maxLength: 40 }),
    type: fc.string({ maxLength: 60 }),
    inReplyTo: u64,
    inRegardsTo: u64,
    payload: fc.uint8Array({ maxLength: 300 }),
    error: fc.record({ code: fc.string({ maxLength: 30 }), message: fc.string({ maxLength: 80 }) }),
    control: fc.constantFrom(0, 1, 2),
    oneway: fc.boolean(),
  },
  { requiredKeys: [] },
);

/** Decodes, or returns the Error it threw; anything else thrown fails the property. */
function tryDecode(bytes: Uint8Array): ReturnType<typeof Envelope.decode> | Error {
  try {
    return Envelope.decode(bytes);
  } catch (e) {
    if (!(e instanceof Error)) throw new Error(`decoder threw a non-Error: ${String(e)}`);
    return e;
  }
}

/** The fields of a decoded envelope, as plain data (the codec is generated without toObject). */
function fields(e: ReturnType<typeof Envelope.decode>): unknown {
  return {
    id: Number(e.id ?? 0),
    protocol: e.protocol ?? '',
    type: e.type ?? '',
    inReplyTo: Number(e.inReplyTo ?? 0),
    inRegardsTo: Number(e.inRegardsTo ?? 0),
    payload: [...(e.payload ?? [])],
    error: e.error ? { code: e.error.code ?? '', message: e.error.message ?? '' } : null,
    control: Number(e.control ?? 0),
    oneway: e.oneway === true,
  };
}

test('envelopes round-trip: decode(encode(e)) has the same fields', (t) => {
  fc.assert(
    fc.property(envelopeArb, (e) => {
      const bytes = Envelope.encode(e).finish();
      const d = Envelope.decode(bytes);
      const again = Envelope.decode(Envelope.encode(d).finish());
      t.deepEqual(fields(again), fields(d));
      t.is(Number(d.id ?? 0), e.id ?? 0);
      t.deepEqual([...(d.payload ?? [])], [...(e.payload ?? [])]);
    }),
    { numRuns: RUNS },
  );
});

test('a big message frame sent as head + payload decodes as the one-buffer frame does', (t) => {
  fc.assert(
    fc.property(envelopeArb, fc.uint8Array({ maxLength: 300 }), (e, payload) => {
      const env = { ...e, payload };
      const split = Buffer.concat([largeHead(env, payload.length), payload]);
      const whole = Envelope.encodeDelimited(env).finish();
      t.is(split.length, whole.length);
      const r = new FrameReader(1 << 20);
      const frames = r.push(split);
      t.is(frames.length, 1);
      t.deepEqual(fields(Envelope.decode(frames[0]!)), fields(Envelope.decodeDelimited(whole)));
    }),
    { numRuns: RUNS },
  );
});

test('random bytes: the decoder returns or throws an Error, and what decodes re-encodes stably', (t) => {
  let decoded = 0;
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 512 }), (bytes) => {
      const d = tryDecode(bytes);
      if (d instanceof Error) return;
      decoded++;
      const again = tryDecode(Envelope.encode(d).finish());
      if (again instanceof Error) throw again;
      t.deepEqual(fields(again), fields(d));
    }),
    { numRuns: RUNS * 5 },
  );
  t.log(`${decoded} of ${RUNS * 5} random inputs decoded`);
});

test('mutated and truncated envelopes: the decoder returns or throws an Error', (t) => {
  let errors = 0;
  fc.assert(
    fc.property(
      envelopeArb,
      fc.array(fc.record({ at: fc.nat(), xor: fc.integer({ min: 1, max: 255 }) }), { maxLength: 4 }),
      fc.option(fc.nat(), { nil: undefined }),
      (e, flips, cut) => {
        const bytes = Uint8Array.from(Envelope.encode(e).finish());
        if (bytes.length === 0) return;
        for (const f of flips) bytes[f.at % bytes.length]! ^= f.xor;
        const input = cut === undefined ? bytes : bytes.subarray(0, cut % (bytes.length + 1));
        if (tryDecode(input) instanceof Error) errors++;
      },
    ),
    { numRuns: RUNS * 5 },
  );
  t.log(`${errors} of ${RUNS * 5} mutated inputs rejected with an Error`);
  t.pass();
});

for (const big of [undefined, 16]) {
  const what = big === undefined ? '' : ` (frames over ${big} B assembled in place)`;
  test(`FrameReader: any chunking of a frame sequence yields the same frames${what}`, (t) => {
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ maxLength: 400 }), { maxLength: 12 }),
        fc.array(fc.integer({ min: 1, max: 64 }), { minLength: 1, maxLength: 20 }),
        (bodies, cuts) => {
          const wire = Buffer.concat(bodies.map((b) => frame(b)));
          const r = new FrameReader(1024, big);
          const got: Buffer[] = [];
          let off = 0;
          for (let i = 0; off < wire.length; i++) {
            const n = cuts[i % cuts.length]!;
            got.push(...r.push(wire.subarray(off, off + n)));
            off += n;
          }
          t.deepEqual(got.map((b) => [...b]), bodies.map((b) => [...b]));
          t.is(r.buffered, 0);
        },
      ),
      { numRuns: RUNS },
    );
  });
}

test('FrameReader: random bytes never yield a frame over the limit, and only MessageTooLargeError is thrown', (t) => {
  const limit = 256;
  let refused = 0;
  fc.assert(
    fc.property(fc.array(fc.uint8Array({ minLength: 1, maxLength: 200 }), { maxLength: 10 }), (chunks) => {
      const r = new FrameReader(limit);
      try {
        for (const c of chunks) {
          for (const f of r.push(Buffer.from(c))) {
            if (f.length > limit) throw new Error(`frame of ${f.length} bytes over the limit`);
            tryDecode(f);
          }
          // Nothing over the limit is ever held (a length prefix is ≤ 8 bytes).
          if (r.buffered > limit + 8) throw new Error(`${r.buffered} bytes buffered`);
        }
      } catch (e) {
        if (!(e instanceof MessageTooLargeError)) throw e;
        refused++;
      }
    }),
    { numRuns: RUNS * 2 },
  );
  t.log(`${refused} of ${RUNS * 2} random streams refused with MessageTooLargeError`);
  t.pass();
});
