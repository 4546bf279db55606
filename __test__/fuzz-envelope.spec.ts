/**
 * Property tests (fast-check) of the message layer's wire decoding: the
 * protobuf Envelope decoder and the varint-length FrameReader, fed random,
 * mutated and truncated bytes. Whatever arrives from a peer, decoding either
 * yields a value or throws an Error (never anything else, never hangs), and
 * what decodes re-encodes to the same meaning. Then the same mutated
 * envelopes fed to a live Dispatcher over a real connection: each is counted
 * once as dropped or handled, every request among them is answered (with a
 * typed error when it cannot be handled), and well-formed requests are still
 * answered after each batch. messages-extra.spec.ts has a wider end-to-end
 * fuzz (conversations, datagrams, raw streams).
 */
import fc from 'fast-check';
import test from 'ava';

import { Dispatcher, PeersockError, errorFromCode } from '../src/index';
import { MessageTooLargeError } from '../src/messages/errors';
import { FrameReader, frame } from '../src/messages/framing';
import { Envelope, MessageRouter, largeHead } from '../src/messages/router';
import { CHANNEL_MESSAGES } from '../src/messages/host';
import type { PeerStream } from '../src/stream';
import { pair, sleep } from './helpers';
import { Ping, Pong, type PingMsg } from './message-types';

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

/** Whether every string in `v` (deeply) is well-formed Unicode with no replacement character. */
function wellFormed(v: unknown): boolean {
  if (typeof v === 'string') return !/[\ud800-\udfff\ufffd]/.test(v);
  if (v !== null && typeof v === 'object') return Object.values(v).every(wellFormed);
  return true;
}

test('random bytes: the decoder returns or throws an Error, and what decodes re-encodes stably', (t) => {
  let decoded = 0;
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 512 }), (bytes) => {
      const d = tryDecode(bytes);
      if (d instanceof Error) return;
      decoded++;
      const again = tryDecode(Envelope.encode(d).finish());
      if (again instanceof Error) throw again;
      if (wellFormed(fields(d))) {
        t.deepEqual(fields(again), fields(d));
      } else {
        // Ill-formed UTF-8 in a string field decodes leniently (replacement
        // characters, lone surrogates), and that text re-encodes to other
        // bytes: after one round it must be stable.
        const third = tryDecode(Envelope.encode(again).finish());
        if (third instanceof Error) throw third;
        t.deepEqual(fields(third), fields(again));
      }
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
        // A Buffer, as the router decodes frames and datagrams (protobufjs
        // turns invalid UTF-8 into U+FFFD only when reading a Buffer).
        const d = tryDecode(Buffer.from(input));
        if (d instanceof Error) {
          errors++;
          return;
        }
        // What decodes is a value the encoder reproduces: re-encoded and
        // decoded again, it has the same fields.
        const again = tryDecode(Envelope.encode(d).finish());
        if (again instanceof Error) throw again;
        t.deepEqual(fields(again), fields(d));
      },
    ),
    { numRuns: RUNS * 5 },
  );
  t.log(`${errors} of ${RUNS * 5} mutated inputs rejected with an Error`);
  // Mutations do break envelopes: were none rejected, the inputs would not be what the title says.
  t.true(errors > 0, 'some mutated envelopes are rejected');
  t.true(errors < RUNS * 5, 'some mutated envelopes still decode');
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
  t.true(refused > 0, 'random length prefixes over the limit are refused');
});

// ---- the same envelopes against a live Dispatcher --------------------------------

/** Envelopes aimed at a live dispatcher: its protocol most of the time, types it has and has not. */
const liveEnvelopeArb = fc.record({
  id: fc.oneof(fc.constant(0), u64),
  protocol: fc.constantFrom('fz', 'fz', 'fz', 'other', ''),
  type: fc.oneof(fc.constantFrom('test.Ping', 'test.Ping', 'blob', 'nope', ''), fc.string({ maxLength: 20 })),
  inReplyTo: fc.oneof(fc.constant(0), fc.constant(0), u64),
  inRegardsTo: fc.oneof(fc.constant(0), fc.constant(0), u64),
  payload: fc.oneof(
    fc.record({ n: fc.nat(), text: fc.string({ maxLength: 20 }) }).map((p) => Ping.encode(Ping.create(p)).finish()),
    fc.uint8Array({ maxLength: 100 }),
  ),
  error: fc.option(fc.record({ code: fc.string({ maxLength: 30 }), message: fc.string({ maxLength: 30 }) }), { nil: undefined }),
  control: fc.constantFrom(0, 0, 1, 2),
  oneway: fc.boolean(),
});

/** An envelope, well-formed half the time, else with a few bytes flipped and (maybe) cut short. */
const mutatedArb = fc.oneof(
  liveEnvelopeArb.map((env) => ({ env, flips: [] as Array<{ at: number; xor: number }>, cut: undefined as number | undefined })),
  fc.record({
    env: liveEnvelopeArb,
    flips: fc.array(fc.record({ at: fc.nat(), xor: fc.integer({ min: 1, max: 255 }) }), { maxLength: 3 }),
    cut: fc.option(fc.nat(), { nil: undefined }),
  }),
);

test('mutated envelopes fed to a live Dispatcher: each is counted once, every request among them gets a reply (a typed error when unhandled), and real requests are still answered', async (t) => {
  const { a, b, connAB, connBA } = await pair(t);
  const server = new Dispatcher(a, { protocol: 'fz' });
  server.handle(Ping, (m: PingMsg) => Pong.create({ n: m.n, text: 'ok' }));
  server.handle('blob', (bytes: Uint8Array) => bytes);
  const serverRouter = MessageRouter.for(a);
  const client = new Dispatcher(b, { protocol: 'fz' });
  client.register(Pong);
  const clientRouter = MessageRouter.for(b);

  // Every reply reaching the client passes through its router's reply(): record those to the fuzz.
  const replies: Array<ReturnType<typeof Envelope.decode>> = [];
  let recording = false;
  const reply = clientRouter.reply.bind(clientRouter);
  clientRouter.reply = (conn, env) => {
    if (recording) replies.push(env);
    return reply(conn, env);
  };

  /** Every way the server accounts for an envelope, summed: each one it got moves exactly one. */
  const accounted = (): number => {
    const s = server.stats;
    return serverRouter.malformed + s.malformed + s.droppedReplies + s.noHandler + s.decodeErrors + s.handled;
  };

  let runs = 0;
  let frames = 0;
  let undecodable = 0;
  let requests = 0;
  let typedErrors = 0;
  await fc.assert(
    fc.asyncProperty(fc.array(mutatedArb, { minLength: 1, maxLength: 8 }), async (items) => {
      runs++;
      const before = accounted();
      replies.length = 0;
      recording = true;
      let expectReplies = 0;
      const lane: PeerStream = connAB._openChannelStream(CHANNEL_MESSAGES, true);
      lane.on('error', () => {});
      for (const { env, flips, cut } of items) {
        const bytes = Uint8Array.from(Envelope.encode(env).finish());
        for (const f of flips) if (bytes.length > 0) bytes[f.at % bytes.length]! ^= f.xor;
        const input = cut === undefined ? bytes : bytes.subarray(0, cut % (bytes.length + 1));
        // What the server will make of it, by the envelope's own fields: a
        // request (an id, not a reply, not in a conversation, not one-way)
        // must be answered, whatever its protocol or type. Decoded from a
        // Buffer as the server's frames are: protobufjs reads a Buffer more
        // leniently (a string cut short at the end is clamped, not refused).
        const d = tryDecode(Buffer.from(input));
        if (d instanceof Error) undecodable++;
        else if (d.inReplyTo === 0 && d.inRegardsTo === 0 && d.id !== 0 && !d.oneway) expectReplies++;
        lane.write(frame(input));
        frames++;
      }
      lane.end();
      requests += expectReplies;
      // Bounded wait: everything counted and answered, or the property fails.
      for (let i = 0; i < 150 && (accounted() - before < items.length || replies.length < expectReplies); i++) await sleep(10);
      await sleep(5);
      recording = false;
      if (accounted() - before !== items.length) throw new Error(`${items.length} envelopes sent, ${accounted() - before} accounted for`);
      if (replies.length !== expectReplies) throw new Error(`${expectReplies} requests sent, ${replies.length} replies`);
      for (const r of replies) {
        if (r.error) {
          // An error reply names a code that has its class: a typed error.
          if (Object.getPrototypeOf(errorFromCode(r.error.code ?? '', '')) === PeersockError.prototype) throw new Error(`error reply with unknown code ${r.error.code}`);
          typedErrors++;
        } else if (!['test.Pong', 'blob'].includes(r.type)) throw new Error(`reply of type ${JSON.stringify(r.type)}`);
      }
      // The host survives, and a real request still gets its right answer.
      const pong = (await client.request(connAB, Ping.create({ n: runs, text: 'real' }), { reply: Pong, timeout: 5000 })) as PingMsg;
      if (pong.n !== runs || pong.text !== 'ok') throw new Error(`wrong reply ${JSON.stringify(pong)}`);
      if (connAB.closeInfo !== undefined || connBA.closeInfo !== undefined) throw new Error('the connection closed');
    }),
    // Bounded in time too: a failing run waits 1.5 s, and shrinking one stops after a minute.
    { numRuns: Math.min(200, RUNS), seed: Number(process.env.FUZZ_SEED ?? Date.now() % 2 ** 31), includeErrorInReport: true, interruptAfterTimeLimit: 60_000, markInterruptAsFailure: true },
  );
  const handled = server.stats.handled - runs; // less the real requests
  t.log(`${runs} runs, ${frames} envelopes (${undecodable} undecodable, ${handled} handled), ${requests} requests answered (${typedErrors} with typed errors)`);
  t.true(undecodable > 0 && typedErrors > 0 && handled > 0, 'the inputs reached every outcome: dropped, typed error, handled');
  t.true(a.connections.includes(connBA));
});
