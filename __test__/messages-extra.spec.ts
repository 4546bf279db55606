/**
 * The dispatch layer's harder semantics over real loopback connections:
 * no head-of-line blocking behind a 16 MiB message, concurrent stateless
 * handlers, one-at-a-time conversations, ending from the accepting side,
 * per-conversation back-pressure, malformed input (property-based),
 * unreliable delivery without duplicates or type mix-ups, and frames
 * announced over the receiver's limit.
 */
import { createHash } from 'node:crypto';

import test from 'ava';
import fc from 'fast-check';
import protobuf from 'protobufjs';

import { ConversationEndedError, Dispatcher, RemoteError, StreamStoppedError, type Conversation, type MessageContext } from '../src/index';
import { FrameReader, frame, writeVarint } from '../src/messages/framing';
import { peersock } from '../src/messages/generated/envelope';
import { CODE_MESSAGE_TOO_LARGE, MessageRouter } from '../src/messages/router';
import type { PeerStream } from '../src/stream';
import { createSocket, drained, pair, percentile, sleep, target, within } from './helpers';

import { Note, Ping, Pong, Sync, type PingMsg } from './message-types';
interface NoteMsg {
  text: string;
  blob: Uint8Array;
}
interface SyncMsg {
  step: number;
}

const Envelope = peersock.messages.Envelope;
const CHANNEL_MESSAGES = 1;
const MiB = 1024 * 1024;

const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

/** A deterministic, non-constant 16 MiB payload (so a reordering or a gap would change its hash). */
function bigPayload(size: number): Uint8Array {
  const out = new Uint8Array(size);
  let x = 0x9e3779b9;
  for (let i = 0; i < size; i += 4) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    out[i] = x >>> 24;
    out[i + 1] = x >>> 16;
    out[i + 2] = x >>> 8;
    out[i + 3] = x;
  }
  return out;
}

// ---------------------------------------------------------------------------
// 1. Head-of-line blocking
// ---------------------------------------------------------------------------

test.serial('no head-of-line blocking: small requests keep flowing while a 16 MiB message is in flight', async (t) => {
  const { a, b, connAB } = await pair(t);
  const server = new Dispatcher(a, { protocol: 'hol/1' });
  const client = new Dispatcher(b, { protocol: 'hol/1' });
  server.handle(Ping, (m: PingMsg) => Pong.create({ n: m.n }));
  let bigArrived = 0;
  let bigDigest = '';
  let bigLength = 0;
  server.handle('big', (bytes: Uint8Array, ctx: MessageContext) => {
    bigArrived = performance.now();
    bigLength = bytes.length;
    bigDigest = sha256(bytes);
    t.is(ctx.type, 'big');
  });

  const request = async (n: number): Promise<number> => {
    const start = performance.now();
    const r = (await client.request(connAB, Ping.create({ n }), { reply: Pong, timeout: 10_000 })) as PingMsg;
    const ms = performance.now() - start;
    if (r.n !== n) throw new Error(`reply ${r.n} to request ${n}`);
    return ms;
  };

  // Idle latency first (after a short warm-up).
  for (let i = 0; i < 50; i++) await request(i);
  const idle: number[] = [];
  for (let i = 0; i < 200; i++) idle.push(await request(i));
  idle.sort((x, y) => x - y);
  const idleP50 = percentile(idle, 0.5);

  // Exactly maxMessageSize (16 MiB) of payload, reliable.
  const big = bigPayload(16 * MiB);
  const bigSha = sha256(big);
  const started = performance.now();
  let bigSent = 0;
  const sending = client.send(connAB, big, { type: 'big' }).then(() => {
    bigSent = performance.now();
  });

  const busy: number[] = [];
  const during: number[] = []; // requests that completed before the big message was delivered
  for (let i = 0; i < 1000; i++) {
    const ms = await request(1000 + i);
    busy.push(ms);
    if (bigArrived === 0) during.push(ms);
  }
  await within(30_000, 'the 16 MiB message', sending);
  for (let i = 0; i < 4000 && bigArrived === 0; i++) await sleep(5);
  const transferMs = bigArrived - started;

  t.is(bigLength, 16 * MiB, 'the big message arrived whole');
  t.is(bigDigest, bigSha, 'the big message arrived intact');

  busy.sort((x, y) => x - y);
  during.sort((x, y) => x - y);
  const fmt = (x: number): string => x.toFixed(3);
  t.log(`idle (200 req): p50 ${fmt(idleP50)} ms, p99 ${fmt(percentile(idle, 0.99))} ms`);
  t.log(`16 MiB: handed to QUIC after ${(bigSent - started).toFixed(1)} ms, delivered after ${transferMs.toFixed(1)} ms`);
  t.log(`all 1000 req: p50 ${fmt(percentile(busy, 0.5))} ms, p99 ${fmt(percentile(busy, 0.99))} ms, max ${fmt(Math.max(...busy))} ms`);
  if (during.length > 0) {
    t.log(`${during.length} req completed while the 16 MiB was in flight: p50 ${fmt(percentile(during, 0.5))} ms, p99 ${fmt(percentile(during, 0.99))} ms, max ${fmt(Math.max(...during))} ms`);
  }

  // Head-of-line blocking would hold the first request until the whole
  // 16 MiB is through: no request would complete during the transfer, and
  // the first would take about the transfer time. Without it, a request
  // still waits behind the bulk packets already queued in the sockets (a
  // congestion window's worth) and behind the other peer's work, because
  // both peers share this one event loop: usually tens of ms, but on a
  // loaded 2-core machine one wait can approach the transfer time (seen:
  // 572 ms of 647). So this test only proves requests are not held until
  // the end; bench/ measures the latency with the peers in two processes.
  t.true(during.length >= 1, `no request completed during the ${transferMs.toFixed(0)} ms transfer`);
  const bound = Math.max(50 * idleP50, 0.95 * transferMs);
  t.true(percentile(busy, 0.99) < bound, `p99 ${fmt(percentile(busy, 0.99))} ms >= bound ${fmt(bound)} ms`);
  t.true(Math.max(...during) < bound, `a request during the transfer took ${fmt(Math.max(...during))} ms (bound ${fmt(bound)} ms, transfer ${fmt(transferMs)} ms)`);
});

// ---------------------------------------------------------------------------
// 2. Stateless handlers run concurrently
// ---------------------------------------------------------------------------

test.serial('stateless handlers run concurrently: 10 requests to a 200 ms handler take about 200 ms, not 2 s', async (t) => {
  const { a, b, connAB } = await pair(t);
  const server = new Dispatcher(a, { protocol: 'conc/1' });
  const client = new Dispatcher(b, { protocol: 'conc/1' });
  let active = 0;
  let maxActive = 0;
  server.handle(Ping, async (m: PingMsg) => {
    active++;
    maxActive = Math.max(maxActive, active);
    await sleep(200);
    active--;
    return Pong.create({ n: m.n * 2 });
  });
  const started = performance.now();
  const replies = (await Promise.all(Array.from({ length: 10 }, (_, i) => client.request(connAB, Ping.create({ n: i }), { reply: Pong })))) as PingMsg[];
  const elapsed = performance.now() - started;
  t.log(`10 parallel requests to a 200 ms handler: ${elapsed.toFixed(1)} ms; at most ${maxActive} handlers at once`);
  t.deepEqual(replies.map((r) => r.n), Array.from({ length: 10 }, (_, i) => i * 2));
  t.is(maxActive, 10);
  t.true(elapsed < 800, `took ${elapsed.toFixed(1)} ms`);
});

// ---------------------------------------------------------------------------
// 3. A conversation consumed with for-await: one message at a time, in order
// ---------------------------------------------------------------------------

test('a conversation read with for-await gets one message at a time, in order', async (t) => {
  const { a, b, connAB } = await pair(t);
  const server = new Dispatcher(a, { protocol: 'conv/1' });
  const client = new Dispatcher(b, { protocol: 'conv/1' });
  const N = 40;
  let active = 0;
  let overlaps = 0;
  const seen: number[] = [];
  const done = new Promise<void>((resolve, reject) => {
    server.onConversation(Sync, (conv: Conversation) => {
      void (async () => {
        for await (const m of conv) {
          active++;
          if (active > 1) overlaps++;
          if (!(m instanceof Sync.ctor)) throw new Error('not a Sync');
          // Slow, uneven asynchronous processing per message.
          await sleep((m as SyncMsg).step % 3 === 0 ? 5 : 1);
          await Promise.resolve();
          seen.push((m as SyncMsg).step);
          await conv.send(Sync.create({ step: (m as SyncMsg).step + 1000 }));
          active--;
        }
        resolve();
      })().catch(reject);
    });
  });
  const conv = client.conversation(connAB, Sync);
  const echoes: number[] = [];
  const reading = (async () => {
    for await (const m of conv) echoes.push((m as SyncMsg).step);
  })();
  // Sent back to back, without waiting for the slow reader.
  await Promise.all(Array.from({ length: N }, (_, i) => conv.send(Sync.create({ step: i + 1 }))));
  // Bounded waits (10 s): a lost message fails this test instead of hanging the file.
  for (let i = 0; i < 2000 && seen.length < N; i++) await sleep(5);
  for (let i = 0; i < 2000 && echoes.length < N; i++) await sleep(5);
  t.is(overlaps, 0, 'the handler never had two messages at once');
  t.deepEqual(seen, Array.from({ length: N }, (_, i) => i + 1));
  t.deepEqual(echoes, Array.from({ length: N }, (_, i) => i + 1001));
  await conv.end();
  await within(2000, 'server side of the conversation ends', done);
  await within(2000, 'client reader ends', reading);
});

// ---------------------------------------------------------------------------
// 4. The accepting side can end a conversation
// ---------------------------------------------------------------------------

test('the accepting side ends a conversation: the opener sees end, its iterator finishes, sends fail', async (t) => {
  const { a, b, connAB } = await pair(t);
  const server = new Dispatcher(a, { protocol: 'conv/1' });
  const client = new Dispatcher(b, { protocol: 'conv/1' });
  const serverEnded = new Promise<void>((resolve) => {
    server.onConversation(Sync, (conv: Conversation) => {
      conv.on('end', resolve);
      void (async () => {
        for await (const m of conv) {
          await conv.send(Sync.create({ step: (m as SyncMsg).step * 10 }));
          if ((m as SyncMsg).step === 3) {
            await conv.end();
            return;
          }
        }
      })();
    });
  });
  const conv = client.conversation(connAB, Sync);
  const clientEnd = new Promise<void>((resolve) => conv.once('end', resolve));
  const errors: unknown[] = [];
  conv.on('error', (e) => errors.push(e));
  const got: number[] = [];
  const reading = (async () => {
    for await (const m of conv) got.push((m as SyncMsg).step);
  })();
  for (let i = 1; i <= 3; i++) await conv.send(Sync.create({ step: i }));
  await within(2000, "opener's 'end'", clientEnd);
  await within(2000, "opener's iterator finishes", reading);
  await within(2000, "server's 'end'", serverEnded);
  t.deepEqual(got, [10, 20, 30], 'messages sent before the end still arrive');
  t.true(conv.ended);
  t.deepEqual(errors, [], 'a graceful end is not an error');
  await t.throwsAsync(conv.send(Sync.create({ step: 4 })), { instanceOf: ConversationEndedError });
  // A second iterator over an ended conversation finishes at once.
  for await (const _ of conv) t.fail('no messages after the end');
  await conv.end(); // idempotent
});

test('an ended conversation frees its stream, whichever side ended it: 300 in a row on one connection', async (t) => {
  // QUIC lets the peer open 128 bidirectional streams at a time; a stream
  // only counts as closed once both sides have ended it. A side that saw the
  // other's end but did not end its own would use up the limit.
  const { a, b, connAB } = await pair(t);
  const server = new Dispatcher(a, { protocol: 'conv/1' });
  const client = new Dispatcher(b, { protocol: 'conv/1' });
  server.onConversation(Sync, (conv: Conversation) => {
    void (async () => {
      for await (const m of conv) {
        await conv.send(Sync.create({ step: (m as SyncMsg).step }));
        // Odd steps: the accepting side ends it; even: the opener does.
        if ((m as SyncMsg).step % 2 === 1) await conv.end();
      }
    })();
  });
  for (let i = 0; i < 300; i++) {
    const conv = client.conversation(connAB, Sync);
    const ended = new Promise<void>((resolve) => conv.once('end', resolve));
    const echoed = new Promise<number>((resolve) => conv.once('message', (m: SyncMsg) => resolve(m.step)));
    await conv.send(Sync.create({ step: i }));
    t.is(await within(2000, `echo of conversation ${i}`, echoed), i);
    if (i % 2 === 0) await conv.end();
    await within(2000, `end of conversation ${i}`, ended);
  }
  t.is(connAB.closeInfo, undefined);
});

// ---------------------------------------------------------------------------
// 5. Per-conversation back-pressure
// ---------------------------------------------------------------------------

test('per-conversation back-pressure: sends stall while the peer does not read, and resume once it does', async (t) => {
  const { a, b, connAB } = await pair(t);
  const server = new Dispatcher(a, { protocol: 'bp/1' });
  const client = new Dispatcher(b, { protocol: 'bp/1' });
  let serverConv: Conversation | undefined;
  // The handler keeps the conversation but does not read it (no iterator, no 'message' listener).
  server.onConversation(Note, (conv: Conversation) => {
    serverConv = conv;
  });
  server.handle(Ping, (m: PingMsg) => Pong.create({ n: m.n }));
  const N = 3000;
  const blob = new Uint8Array(4096).fill(7);
  const conv = client.conversation(connAB, Note);
  let sent = 0;
  const sending = (async () => {
    for (let i = 0; i < N; i++) {
      await conv.send(Note.create({ text: String(i), blob }));
      sent++;
    }
  })();
  // Wait until the sender stops making progress.
  let last = -1;
  for (let i = 0; i < 100 && sent !== last; i++) {
    last = sent;
    await sleep(100);
  }
  const stalledAt = sent;
  await sleep(300);
  t.log(`sender stalled after ${stalledAt} of ${N} messages of 4 KiB (${((stalledAt * 4096) / MiB).toFixed(2)} MiB)`);
  t.is(sent, stalledAt, 'no send resolved while the peer was not reading');
  t.true(stalledAt < N, 'the sender is held back');
  t.true(stalledAt > 0);
  // Requests on the same connection are not affected.
  t.is(((await client.request(connAB, Ping.create({ n: 9 }), { reply: Pong, timeout: 2000 })) as PingMsg).n, 9);
  t.not(serverConv, undefined);

  // Now the peer reads: everything arrives, in order, and the sender finishes.
  let next = 0;
  let outOfOrder = 0;
  const reading = (async () => {
    for await (const m of serverConv!) {
      if ((m as NoteMsg).text !== String(next)) outOfOrder++;
      next++;
      if (next === N) return;
    }
  })();
  await within(20_000, 'sender finishes once the peer reads', sending);
  await within(20_000, 'reader gets everything', reading);
  t.is(sent, N);
  t.is(next, N);
  t.is(outOfOrder, 0);
  await conv.end();
});

// ---------------------------------------------------------------------------
// 6. Malformed input on the messages channel (property-based)
// ---------------------------------------------------------------------------

/** What the fuzzer sent as a well-formed envelope, by its (unique) id. */
interface SentEnvelope {
  protocol: string;
  type: string;
  payload: Uint8Array;
  inReplyTo: number;
  inRegardsTo: number;
  oneway: boolean;
}

type FuzzItem =
  | { kind: 'datagram'; bytes: Uint8Array }
  | { kind: 'frame'; bytes: Uint8Array }
  | { kind: 'raw-stream'; bytes: Uint8Array }
  | { kind: 'envelope'; via: 'datagram' | 'stream'; env: Omit<SentEnvelope, 'payload'> & { payload: Uint8Array; control: number; zeroId: boolean; error: boolean } }
  | {
      kind: 'bidi';
      /** First frame: an OPEN-like envelope (else `first`, framed or raw). */
      open: boolean;
      framed: boolean;
      first: Uint8Array;
      protocol: string;
      type: string;
      control: number;
      payload: Uint8Array;
      /** Further frames: random bytes, or conversation envelopes of any type. */
      rest: Array<Uint8Array | { type: string; payload: Uint8Array; control: number }>;
      end: boolean;
    };

/** Payload bytes: random, or a valid (or slightly corrupted) Ping/Note encoding. */
const payloadArb = fc.oneof(
  fc.uint8Array({ maxLength: 300 }),
  fc.record({ n: fc.nat(), text: fc.string({ maxLength: 40 }) }).map((p) => Ping.encode(Ping.create(p)).finish()),
  fc.record({ text: fc.string({ maxLength: 40 }), blob: fc.uint8Array({ maxLength: 100 }) }).map((p) => Note.encode(Note.create(p)).finish()),
  fc
    .tuple(fc.record({ n: fc.nat(), text: fc.string({ minLength: 1, maxLength: 40 }) }), fc.nat(), fc.integer({ min: 0, max: 255 }))
    .map(([p, at, byte]) => {
      const b = Uint8Array.from(Ping.encode(Ping.create(p)).finish());
      b[at % b.length] = byte;
      return b;
    }),
);

const envelopeArb = fc.record({
  protocol: fc.oneof(fc.constant('fz'), fc.constant('fz'), fc.constant('other'), fc.constant(''), fc.string({ maxLength: 20 })),
  type: fc.oneof(fc.constant('test.Ping'), fc.constant('test.Ping'), fc.constant('test.Note'), fc.constant('test.Pong'), fc.constant('blob'), fc.constant('test.Sync'), fc.constant(''), fc.string({ maxLength: 20 })),
  payload: payloadArb,
  inReplyTo: fc.oneof(fc.constant(0), fc.constant(0), fc.constant(0), fc.nat(), fc.maxSafeNat()),
  inRegardsTo: fc.oneof(fc.constant(0), fc.constant(0), fc.constant(0), fc.nat()),
  control: fc.oneof(fc.constant(0), fc.constant(0), fc.integer({ min: 0, max: 2 }), fc.integer({ min: -5, max: 1000 })),
  oneway: fc.boolean(),
  zeroId: fc.integer({ min: 0, max: 9 }).map((x) => x === 0),
  error: fc.integer({ min: 0, max: 9 }).map((x) => x === 0),
});

/** Envelopes aimed at the server's handlers (so typed delivery is exercised often). */
const targetedArb = fc.record({
  protocol: fc.constant('fz'),
  type: fc.constantFrom('test.Ping', 'test.Ping', 'blob', 'test.Note'),
  payload: payloadArb,
  inReplyTo: fc.constant(0),
  inRegardsTo: fc.constant(0),
  control: fc.constantFrom(0, 0, 1, 2),
  oneway: fc.boolean(),
  zeroId: fc.integer({ min: 0, max: 7 }).map((x) => x === 0),
  error: fc.constant(false),
});

const itemArb: fc.Arbitrary<FuzzItem> = fc.oneof(
  fc.record({ kind: fc.constant('datagram' as const), bytes: fc.uint8Array({ maxLength: 1100 }) }),
  fc.record({ kind: fc.constant('frame' as const), bytes: fc.uint8Array({ maxLength: 600 }) }),
  fc.record({ kind: fc.constant('raw-stream' as const), bytes: fc.oneof(fc.uint8Array({ maxLength: 600 }), fc.uint8Array({ minLength: 1, maxLength: 12 }).map((b) => Uint8Array.from(b, (x) => x | 0x80))) }),
  fc.record({ kind: fc.constant('envelope' as const), via: fc.constantFrom('datagram' as const, 'stream' as const), env: envelopeArb }),
  fc.record({ kind: fc.constant('envelope' as const), via: fc.constantFrom('datagram' as const, 'stream' as const), env: targetedArb }),
  fc.record({
    kind: fc.constant('bidi' as const),
    open: fc.boolean(),
    framed: fc.boolean(),
    first: fc.uint8Array({ maxLength: 200 }),
    protocol: fc.constantFrom('fz', 'fz', 'other'),
    type: fc.constantFrom('test.Sync', 'test.Sync', 'test.Ping', 'nope'),
    control: fc.constantFrom(1, 1, 1, 0, 2, 9),
    payload: payloadArb,
    rest: fc.array(
      fc.oneof(
        fc.uint8Array({ maxLength: 100 }),
        fc.record({
          type: fc.constantFrom('test.Sync', 'test.Ping', 'blob', 'nope'),
          payload: fc.oneof(payloadArb, fc.nat().map((step) => Sync.encode(Sync.create({ step })).finish())),
          control: fc.constantFrom(0, 0, 0, 1, 2, 7),
        }),
      ),
      { maxLength: 4 },
    ),
    end: fc.boolean(),
  }),
);

test('malformed input on the messages channel never breaks the connection or reaches a handler as the wrong type', async (t) => {
  const { a, b, connAB, connBA } = await pair(t);
  const server = new Dispatcher(a, { protocol: 'fz' });
  const client = new Dispatcher(b, { protocol: 'fz' });
  const serverRouter = MessageRouter.for(a);

  // Well-formed fuzz envelopes get unique ids far above the real requests' ids.
  const ID_BASE = 1e12;
  let nextFuzzId = ID_BASE;
  const sent = new Map<number, SentEnvelope>();
  const violations: string[] = [];
  let pingsHandled = 0;
  let blobsHandled = 0;
  let fuzzPings = 0;

  const checkSent = (ctx: MessageContext, what: string): SentEnvelope | undefined => {
    if (ctx.protocol !== 'fz') violations.push(`${what}: protocol ${JSON.stringify(ctx.protocol)}`);
    if (ctx.inReplyTo !== 0) violations.push(`${what}: a reply (inReplyTo ${ctx.inReplyTo}) reached a handler`);
    if (ctx.inRegardsTo !== 0) violations.push(`${what}: a conversation message (inRegardsTo ${ctx.inRegardsTo}) reached a stateless handler`);
    // Ids are never 0: a request without one could not be answered.
    if (ctx.id === 0) violations.push(`${what}: a message with id 0 reached a handler`);
    if (ctx.id < ID_BASE) return undefined; // a real request
    const s = sent.get(ctx.id);
    if (s === undefined) violations.push(`${what}: unknown id ${ctx.id}`);
    else if (s.type !== ctx.type || s.protocol !== 'fz') violations.push(`${what}: sent as ${s.protocol}/${s.type}, delivered as ${ctx.protocol}/${ctx.type}`);
    return s;
  };

  server.handle(Ping, (m: PingMsg, ctx) => {
    pingsHandled++;
    if (!(m instanceof Ping.ctor)) violations.push('Ping handler got a non-Ping');
    if (ctx.type !== 'test.Ping') violations.push(`Ping handler got type ${ctx.type}`);
    if (Ping.verify(m) !== null) violations.push(`Ping handler got an invalid Ping: ${Ping.verify(m)}`);
    const s = checkSent(ctx, 'Ping handler');
    if (s !== undefined) {
      fuzzPings++;
      // What the handler got is exactly what the payload decodes to.
      const expected = Ping.toObject(Ping.decode(Buffer.from(s.payload)));
      if (JSON.stringify(Ping.toObject(m as unknown as protobuf.Message)) !== JSON.stringify(expected)) violations.push('Ping handler got a different message than was sent');
    }
    return Pong.create({ n: m.n, text: 'ok' });
  });
  server.handle('blob', (bytes: Uint8Array, ctx) => {
    blobsHandled++;
    if (!(bytes instanceof Uint8Array)) violations.push('blob handler got a non-Uint8Array');
    if (ctx.type !== 'blob') violations.push(`blob handler got type ${ctx.type}`);
    const s = checkSent(ctx, 'blob handler');
    if (s !== undefined && !Buffer.from(bytes).equals(Buffer.from(s.payload))) violations.push('blob handler got different bytes');
  });
  let conversationsOpened = 0;
  let conversationMessages = 0;
  server.onConversation(Sync, (conv: Conversation, ctx) => {
    conversationsOpened++;
    if (ctx.type !== 'test.Sync' || ctx.protocol !== 'fz') violations.push(`conversation opened by ${ctx.protocol}/${ctx.type}`);
    conv.on('error', () => {}); // malformed conversations fail; that is fine
    // A conversation may carry any type: each message must be what its type says.
    conv.on('message', (m: unknown, mctx: MessageContext) => {
      conversationMessages++;
      const ok =
        mctx.type === 'test.Sync' ? m instanceof Sync.ctor
        : mctx.type === 'test.Ping' ? m instanceof Ping.ctor
        : mctx.type === 'blob' ? m instanceof Uint8Array
        : (m as { type?: unknown }).type === mctx.type && (m as { bytes?: unknown }).bytes instanceof Uint8Array;
      if (!ok) violations.push(`conversation message of type ${mctx.type} delivered as ${Object.prototype.toString.call(m)}`);
    });
  });
  // Nobody sends the client requests: anything reaching these is a reply or
  // garbage turned into a request.
  client.handle(Pong, (_m, ctx) => violations.push(`client Pong handler called (id ${ctx.id}, inReplyTo ${ctx.inReplyTo})`));
  client.handle(Ping, (_m, ctx) => violations.push(`client Ping handler called (id ${ctx.id})`));

  const openUni = (): PeerStream => {
    const s = connAB._openChannelStream(CHANNEL_MESSAGES, true);
    s.on('error', () => {}); // refused (too large, malformed): expected
    return s;
  };

  const baseline = { ...server.stats, routerMalformed: serverRouter.malformed };
  let runs = 0;
  let datagramsSent = 0;
  let framesSent = 0;
  let rawStreams = 0;
  let envelopesSent = 0;
  let bidiStreams = 0;
  const bidis: PeerStream[] = [];

  await fc.assert(
    fc.asyncProperty(fc.array(itemArb, { minLength: 1, maxLength: 8 }), async (items) => {
      runs++;
      const violationsBefore = violations.length;
      let lane: PeerStream | undefined;
      const writeFrame = (bytes: Uint8Array): void => {
        lane ??= openUni();
        lane.write(frame(bytes));
        framesSent++;
      };
      for (const item of items) {
        switch (item.kind) {
          case 'datagram':
            if (item.bytes.length <= connAB.maxDatagramSize) {
              connAB._sendChannelDatagram(CHANNEL_MESSAGES, item.bytes);
              datagramsSent++;
            }
            break;
          case 'frame':
            writeFrame(item.bytes);
            break;
          case 'bidi': {
            const s = connAB._openChannelStream(CHANNEL_MESSAGES, false);
            s.on('error', () => {});
            s.resume(); // whatever the server answers is read and dropped
            bidis.push(s);
            const convId = nextFuzzId++;
            if (item.open) {
              s.write(frame(Envelope.encode({ id: convId, protocol: item.protocol, type: item.type, inRegardsTo: convId, control: item.control, payload: item.payload }).finish()));
            } else s.write(item.framed ? frame(item.first) : item.first);
            for (const r of item.rest) {
              s.write(frame(r instanceof Uint8Array ? r : Envelope.encode({ id: nextFuzzId++, protocol: 'fz', type: r.type, inRegardsTo: convId, control: r.control, payload: r.payload }).finish()));
            }
            if (item.end) s.end();
            bidiStreams++;
            break;
          }
          case 'raw-stream': {
            const s = openUni();
            s.end(item.bytes);
            rawStreams++;
            break;
          }
          case 'envelope': {
            const e = item.env;
            const id = e.zeroId ? 0 : nextFuzzId++;
            const bytes = Envelope.encode({
              id,
              protocol: e.protocol,
              type: e.type,
              payload: e.payload,
              inReplyTo: e.inReplyTo,
              inRegardsTo: e.inRegardsTo,
              control: e.control,
              oneway: e.oneway,
              ...(e.error ? { error: { code: 'ERR_FUZZ', message: 'fuzz' } } : {}),
            }).finish();
            if (id !== 0) sent.set(id, { protocol: e.protocol, type: e.type, payload: e.payload, inReplyTo: e.inReplyTo, inRegardsTo: e.inRegardsTo, oneway: e.oneway });
            envelopesSent++;
            if (item.via === 'datagram' && bytes.length <= connAB.maxDatagramSize) {
              connAB._sendChannelDatagram(CHANNEL_MESSAGES, bytes);
              datagramsSent++;
            } else writeFrame(bytes);
            break;
          }
        }
      }
      lane?.end();
      // The connection still works: a real request gets its correct reply.
      const n = runs;
      const r = (await client.request(connAB, Ping.create({ n, text: 'real' }), { reply: Pong, timeout: 5000 })) as PingMsg;
      // Conversation streams are given up (reset) once the run is over.
      for (const s of bidis.splice(0)) s.destroy();
      if (r.n !== n || r.text !== 'ok') throw new Error(`wrong reply ${JSON.stringify(r)} to request ${n}`);
      if (connAB.closeInfo !== undefined || connBA.closeInfo !== undefined) throw new Error('the connection closed');
      if (violations.length !== violationsBefore) throw new Error(violations.slice(violationsBefore).join('; '));
    }),
    { numRuns: 300, seed: Number(process.env.FUZZ_SEED ?? Date.now() % 2 ** 31), verbose: 0, includeErrorInReport: true },
  );

  // Let the last datagrams and streams land.
  await sleep(200);
  const after = server.stats;
  t.log(
    `${runs} runs: ${datagramsSent} datagrams, ${framesSent} frames, ${rawStreams} raw streams, ${envelopesSent} well-formed envelopes, ` +
      `${bidiStreams} conversation streams (${conversationsOpened} accepted, ${conversationMessages} messages); ` +
      `server: router malformed +${serverRouter.malformed - baseline.routerMalformed}, dispatcher malformed +${after.malformed - baseline.malformed}, ` +
      `decodeErrors +${after.decodeErrors - baseline.decodeErrors}, noHandler +${after.noHandler - baseline.noHandler}, tooLarge +${after.tooLarge - baseline.tooLarge}, ` +
      `droppedReplies +${after.droppedReplies - baseline.droppedReplies}, handled +${after.handled - baseline.handled} (${pingsHandled} Ping, ${fuzzPings} fuzz Ping, ${blobsHandled} blob); ` +
      `client droppedReplies ${client.stats.droppedReplies}`,
  );
  t.deepEqual(violations, []);
  t.is(connAB.closeInfo, undefined);
  t.is(connBA.closeInfo, undefined);
  t.true(a.connections.includes(connBA));
  t.true(serverRouter.malformed > baseline.routerMalformed, 'undecodable envelopes were counted');
  t.true(after.decodeErrors > baseline.decodeErrors, 'undecodable payloads were counted');
  t.true(after.malformed > baseline.malformed, 'conversation envelopes outside a conversation were counted');
  t.true(after.noHandler > baseline.noHandler);
  t.true(fuzzPings > 0, 'some well-formed fuzz Pings reached the handler');
  t.true(conversationsOpened > 0, 'some fuzz conversations were accepted');
  // And after all that, normal traffic works both ways.
  t.is(((await client.request(connAB, Ping.create({ n: 77 }), { reply: Pong })) as PingMsg).n, 77);
  const conv = client.conversation(connAB, Sync);
  await conv.send(Sync.create({ step: 1 }));
  await conv.end();

  // Requests whose payload is random bytes under a typed name: the reply is
  // the handler's answer exactly when the bytes decode as that type, and a
  // typed decode error otherwise (never garbage handed to the handler).
  const c = await createSocket(t);
  const connCA = await c.connect(target(a));
  const rawClient = new Dispatcher(c, { protocol: 'fz' }); // knows no types: sends raw bytes
  const decodeErrorsBefore = server.stats.decodeErrors;
  let decoded = 0;
  let refused = 0;
  await fc.assert(
    fc.asyncProperty(payloadArb, async (bytes) => {
      let expected: PingMsg | undefined;
      try {
        expected = Ping.decode(Buffer.from(bytes)) as unknown as PingMsg;
      } catch {
        expected = undefined;
      }
      const outcome = await rawClient.request(connCA, bytes, { type: 'test.Ping', reply: Pong, timeout: 5000 }).then(
        (r) => ({ ok: true as const, n: (r as PingMsg).n }),
        (e: unknown) => ({ ok: false as const, e }),
      );
      if (expected !== undefined) {
        decoded++;
        if (!outcome.ok) throw new Error(`a decodable Ping was refused: ${String(outcome.e)}`);
        if (outcome.n !== expected.n) throw new Error(`handler saw n=${outcome.n}, the bytes say ${expected.n}`);
      } else {
        refused++;
        if (outcome.ok) throw new Error('undecodable bytes reached the handler');
        if (!(outcome.e instanceof RemoteError) || outcome.e.remoteCode !== 'ERR_PEERSOCK_DECODE') throw new Error(`expected a decode error reply, got ${String(outcome.e)}`);
      }
    }),
    { numRuns: 200, includeErrorInReport: true },
  );
  t.log(`typed requests with fuzzed payloads: ${decoded} decoded and answered, ${refused} answered with ERR_PEERSOCK_DECODE`);
  t.is(server.stats.decodeErrors - decodeErrorsBefore, refused);
  t.deepEqual(violations, []);
});

// ---------------------------------------------------------------------------
// 7. Unreliable messages: never duplicated, never the wrong type
// ---------------------------------------------------------------------------

// Bigger than any datagram, even on loopback, where packets grow to 16383
// bytes (README "Packet size"): these fall back to a reliable stream.
const OVERSIZED = 20_000;

test('unreliable messages are never duplicated into handlers nor delivered as the other type', async (t) => {
  const { a, b, connAB } = await pair(t);
  const server = new Dispatcher(a, { protocol: 'dg/1' });
  const client = new Dispatcher(b, { protocol: 'dg/1' });
  const pings: number[] = [];
  const notes: number[] = [];
  const wrong: string[] = [];
  server.handle(Ping, (m: PingMsg, ctx) => {
    if (!(m instanceof Ping.ctor) || ctx.type !== 'test.Ping' || m.text !== `ping-${m.n}`) wrong.push(`Ping handler: ${ctx.type} ${JSON.stringify(m)}`);
    pings.push(m.n);
    return Pong.create({ n: m.n + 1 });
  });
  server.handle(Note, (m: NoteMsg, ctx) => {
    const seq = Number(m.text.slice('note-'.length));
    if (!(m instanceof Note.ctor) || ctx.type !== 'test.Note' || !m.text.startsWith('note-') || m.blob.length !== (seq % 50 === 0 ? OVERSIZED : 16)) wrong.push(`Note handler: ${ctx.type} ${m.text}`);
    if (m.blob.some((x) => x !== (seq & 0xff))) wrong.push(`Note ${seq}: corrupted blob`);
    notes.push(seq);
  });
  const N = 500;
  for (let i = 0; i < N; i++) {
    // Every 50th note is too big for a datagram: it falls back to a stream.
    await client.send(connAB, Note.create({ text: `note-${i}`, blob: new Uint8Array(i % 50 === 0 ? OVERSIZED : 16).fill(i & 0xff) }), { reliable: false });
    await client.send(connAB, Ping.create({ n: i, text: `ping-${i}` }), { reliable: false });
    if (i % 25 === 24) await new Promise((r) => setImmediate(r));
  }
  // Unreliable requests: each reply matches its request.
  const replies = await Promise.all(
    Array.from({ length: 50 }, (_, i) =>
      client.request(connAB, Ping.create({ n: N + i, text: `ping-${N + i}` }), { reply: Pong, reliable: false, timeout: 1000 }).then(
        (r) => (r as PingMsg).n === N + i + 1,
        () => true, // a lost datagram times out; that is allowed
      ),
    ),
  );
  await sleep(300);
  t.log(`received ${notes.length}/${N} notes, ${pings.length}/${N + 50} pings; client sentUnreliable ${client.stats.sentUnreliable}, fellBackToReliable ${client.stats.fellBackToReliable}`);
  t.deepEqual(wrong, []);
  t.true(replies.every(Boolean), 'every reply matched its request');
  t.is(new Set(pings).size, pings.length, 'no duplicate pings');
  t.is(new Set(notes).size, notes.length, 'no duplicate notes');
  t.true(pings.every((n) => Number.isInteger(n) && n >= 0 && n < N + 50));
  t.true(notes.every((n) => Number.isInteger(n) && n >= 0 && n < N));
  t.is(client.stats.fellBackToReliable, N / 50);
  for (let i = 0; i < N; i += 50) t.true(notes.includes(i), `the oversized note ${i} arrived reliably`);
  // Loopback loses little; most arrive.
  t.true(notes.length > N / 2 && pings.length > N / 2, 'most unreliable messages arrived');
});

// ---------------------------------------------------------------------------
// 8. A frame announced over the receiver's limit is refused without buffering
// ---------------------------------------------------------------------------

test('the frame reader refuses an oversized length as soon as it is known, holding no body bytes', (t) => {
  const max = 16 * MiB + 1024;
  const header = Buffer.alloc(10);
  const n = writeVarint(header, 0, 2 ** 30);
  const r = new FrameReader(max);
  // An incomplete length is held (a few bytes) ...
  t.deepEqual(r.push(header.subarray(0, 2)), []);
  t.is(r.buffered, 2);
  // ... and refused the moment it completes.
  t.throws(() => r.push(Buffer.concat([header.subarray(2, n), Buffer.alloc(1000)])), { code: 'ERR_PEERSOCK_MESSAGE_TOO_LARGE' });
  // A length that never ends is refused too.
  t.throws(() => new FrameReader(max).push(Buffer.alloc(16, 0xff)), { code: 'ERR_PEERSOCK_MESSAGE_TOO_LARGE' });
  // Just at the limit is fine (and waits for the body).
  const ok = new FrameReader(max);
  const h2 = Buffer.alloc(10);
  t.deepEqual(ok.push(h2.subarray(0, writeVarint(h2, 0, max))), []);
});

test('a peer announcing a 1 GiB frame has its stream refused; the receiver buffers nothing', async (t) => {
  const { a, b, connAB, connBA } = await pair(t);
  const server = new Dispatcher(a, { protocol: 'lim/1' });
  const client = new Dispatcher(b, { protocol: 'lim/1' });
  server.handle(Ping, (m: PingMsg) => Pong.create({ n: m.n }));
  let delivered = 0;
  server.handle('huge', () => {
    delivered++;
  });
  // Warm up so allocations of the first request do not count.
  await client.request(connAB, Ping.create({ n: 1 }), { reply: Pong });
  global.gc?.();
  const before = process.memoryUsage();

  // A raw messages-channel stream: a 1 GiB length, then body bytes as fast as QUIC takes them.
  const s = connAB._openChannelStream(CHANNEL_MESSAGES, true);
  const header = Buffer.alloc(10);
  const hl = writeVarint(header, 0, 2 ** 30);
  const chunk = Buffer.alloc(64 * 1024, 0x41);
  let written = 0;
  const refused = new Promise<Error>((resolve) => s.once('error', resolve));
  const writing = (async () => {
    s.write(header.subarray(0, hl));
    // Offer up to 64 MiB; the receiver must stop us long before that.
    while (written < 64 * MiB && !s.destroyed) {
      written += chunk.length;
      if (!s.write(chunk)) await drained(s).catch(() => {});
    }
  })();
  const err = await within(5000, 'the stream is refused', refused);
  await writing;
  const after = process.memoryUsage();
  const growth = after.arrayBuffers - before.arrayBuffers;
  t.log(`refused with ${err.constructor.name} appCode 0x${((err as StreamStoppedError).appCode ?? -1).toString(16)} after ${(written / MiB).toFixed(2)} MiB offered; arrayBuffers ${(growth / MiB).toFixed(2)} MiB, rss ${((after.rss - before.rss) / MiB).toFixed(2)} MiB`);
  t.true(err instanceof StreamStoppedError, `got ${String(err)}`);
  t.is((err as StreamStoppedError).appCode, CODE_MESSAGE_TOO_LARGE);
  t.true(written < 8 * MiB, `the sender got ${(written / MiB).toFixed(1)} MiB in before being stopped`);
  t.true(growth < 8 * MiB, `memory grew by ${(growth / MiB).toFixed(1)} MiB`);
  t.is(delivered, 0);
  t.true(server.stats.tooLarge >= 1);
  // The connection carries on.
  t.is(((await client.request(connAB, Ping.create({ n: 2 }), { reply: Pong })) as PingMsg).n, 2);
  t.is(connAB.closeInfo, undefined);
  t.is(connBA.closeInfo, undefined);
});

test('a conversation drops an envelope naming another conversation (counted), and keeps delivering its own', async (t) => {
  const { a, b, connAB } = await pair(t);
  const server = new Dispatcher(a, { protocol: 'irt/1' });
  new Dispatcher(b, { protocol: 'irt/1' }).register(Sync);
  const got: number[] = [];
  const gotAll = new Promise<void>((resolve) => {
    server.onConversation(Sync, (conv: Conversation) => {
      conv.on('message', (m: SyncMsg, ctx: MessageContext) => {
        t.is(ctx.inRegardsTo, 7);
        got.push(m.step);
        if (m.step === 3) resolve();
      });
    });
  });
  // A raw conversation stream: OPEN for conversation 7, then a message for
  // conversation 8 (wrong), then more for 7.
  const s = connAB._openChannelStream(CHANNEL_MESSAGES, false);
  s.on('error', () => {});
  const env = (id: number, irt: number, step: number, control?: number): Buffer =>
    frame(Envelope.encode({ id, protocol: 'irt/1', type: 'test.Sync', inRegardsTo: irt, control, payload: Sync.encode(Sync.create({ step })).finish() }).finish());
  s.write(env(7, 7, 1, peersock.messages.Control.OPEN));
  s.write(env(8, 8, 99));
  s.write(env(9, 7, 2));
  s.write(env(10, 7, 3));
  await within(3000, 'the conversation gets its own messages', gotAll);
  t.deepEqual(got, [1, 2, 3]);
  t.is(server.stats.malformed, 1);
});
