/**
 * The lifecycle contract of the dispatch layer's resources, the same as
 * PeerSocket's and PeerConnection's: `close()` is graceful and idempotent,
 * `destroy(err?)` is immediate, `closed` resolves once the resource is over
 * (and never rejects), and a `signal` destroys it (AbortError) when aborted.
 * Checked for Dispatcher and Conversation over real loopback connections,
 * including that nothing is left behind: no waiter, deadline timer or abort
 * listener.
 */
import { createSocket as createUdpSocket } from 'node:dgram';
import { getEventListeners } from 'node:events';
import test, { type ExecutionContext } from 'ava';

import {
  AbortError,
  ClosedError,
  ConversationEndedError,
  Dispatcher,
  InvalidArgumentError,
  NoHandlerError,
  RemoteError,
  keyPair,
  type Conversation,
  type PeerConnection,
} from '../src/index';
import { MessageRouter } from '../src/messages/router';
import { pair, sleep, within } from './helpers';
import { Note, Ping, Pong, Sync, type PingMsg } from './message-types';

/** Whether `p` settled within `ms` (without waiting on it any longer). */
async function settlesWithin(ms: number, p: Promise<unknown>): Promise<boolean> {
  let done = false;
  p.then(
    () => (done = true),
    () => (done = true),
  );
  for (let waited = 0; waited < ms && !done; waited += 5) await sleep(5);
  return done;
}

/** Nothing in flight in `d`, by kind. */
const IDLE = { requests: 0, sends: 0, handlers: 0, conversations: 0 };

/** The abort listeners on `signal`. */
const abortListeners = (signal: AbortSignal): number => getEventListeners(signal, 'abort').length;

/** A UDP port that takes datagrams and never answers: a dial to it stays pending. */
async function silentPort(t: ExecutionContext): Promise<number> {
  const udp = createUdpSocket('udp4');
  await new Promise<void>((resolve) => udp.bind(0, '127.0.0.1', resolve));
  t.teardown(() => udp.close());
  return udp.address().port;
}

/** A server on `protocol` whose Ping handler answers after `release()` (n + 1). */
async function slowServer(t: ExecutionContext, protocol: string) {
  const p = await pair(t);
  const server = new Dispatcher(p.a, { protocol });
  const releases: Array<() => void> = [];
  let started = 0;
  server.handle(Ping, async (m: PingMsg) => {
    started++;
    await new Promise<void>((resolve) => releases.push(resolve));
    return Pong.create({ n: m.n + 1 });
  });
  const client = new Dispatcher(p.b, { protocol });
  const held = async (n: number) => {
    for (let i = 0; i < 200 && started < n; i++) await sleep(10);
    t.is(started, n, 'the server holds the requests');
  };
  const release = () => releases.splice(0).forEach((r) => r());
  return { ...p, server, client, held, release };
}

// ---- Dispatcher: close() -------------------------------------------------------

test('Dispatcher.close() is graceful: in-flight requests get their replies, new work fails with ClosedError, then closed resolves', async (t) => {
  const { client, connAB, held, release } = await slowServer(t, 'life/close');
  const pending = client.request<PingMsg>(connAB, Ping.create({ n: 1 }), { reply: Pong, timeout: 5000 });
  await held(1);
  let closedAt = 0;
  let repliedAt = 0;
  void pending.then(() => (repliedAt = performance.now()));
  const closing = client.close();
  void client.closed.then(() => (closedAt = performance.now()));
  t.is(client.close(), closing, 'idempotent: the same promise');
  t.is(closing, client.closed, 'close() returns closed, as PeerSocket.close() resolves once closed');
  // New work is refused at once.
  await t.throwsAsync(client.request(connAB, Ping.create({ n: 2 })), { instanceOf: ClosedError });
  await t.throwsAsync(client.send(connAB, Ping.create({ n: 3 })), { instanceOf: ClosedError });
  const late = client.conversation(connAB, Sync);
  await t.throwsAsync(late.send(Sync.create({ step: 1 })), { instanceOf: ClosedError });
  await late.closed;
  t.false(await settlesWithin(100, closing), 'closed waits for the pending request');
  release();
  t.is((await within(2000, 'reply', pending)).n, 2, 'the in-flight request got its reply');
  await within(2000, 'closed', closing);
  t.true(closedAt >= repliedAt, 'closed resolved after the request settled');
  t.deepEqual(client._inFlight, IDLE);
  t.is(await client.close(), undefined, 'close() after closed: resolves at once');
});

test("Dispatcher.close() on the handling side: running handlers' replies still go out; the peer's new requests are refused", async (t) => {
  const { a, server, client, connAB, held, release } = await slowServer(t, 'life/server');
  const pending = client.request<PingMsg>(connAB, Ping.create({ n: 10 }), { reply: Pong, timeout: 5000 });
  await held(1);
  const closing = server.close();
  await t.throwsAsync(client.request(connAB, Ping.create({ n: 1 }), { timeout: 5000 }), { instanceOf: NoHandlerError });
  t.false(await settlesWithin(100, closing), 'closed waits for the running handler');
  t.deepEqual(server._inFlight, { ...IDLE, handlers: 1 });
  release();
  t.is((await within(2000, 'reply', pending)).n, 11);
  await within(2000, 'server closed', closing);
  // The protocol is free again on that socket.
  const again = new Dispatcher(a, { protocol: 'life/server' }).handle(Ping, (m: PingMsg) => Pong.create({ n: m.n }));
  t.is((await client.request<PingMsg>(connAB, Ping.create({ n: 7 }), { reply: Pong })).n, 7);
  await again.close();
});

test('Dispatcher.close() with nothing in flight resolves at once; closed never rejects', async (t) => {
  const { a } = await pair(t);
  const d = new Dispatcher(a, { protocol: 'life/idle' });
  await within(500, 'close', d.close());
  await within(500, 'closed', d.closed);
  d.destroy(new Error('after the close')); // a no-op once closed
  await d.closed;
  t.pass();
});

// ---- Dispatcher: destroy() -----------------------------------------------------

test('Dispatcher.destroy() rejects pending requests with ClosedError at once and leaves no waiter, timer or listener', async (t) => {
  const { client, connAB, b, held } = await slowServer(t, 'life/destroy');
  // Deadline timers of these requests: every one armed must be cleared or unreferenced.
  const TIMEOUT = 43_210;
  const armed = new Set<NodeJS.Timeout>();
  const cleared = new Set<unknown>();
  const realSet = globalThis.setTimeout;
  const realClear = globalThis.clearTimeout;
  globalThis.setTimeout = ((fn: () => void, ms?: number, ...rest: unknown[]) => {
    const timer: NodeJS.Timeout = Reflect.apply(realSet, globalThis, [fn, ms, ...rest]);
    if (ms !== undefined && ms > TIMEOUT - 1000 && ms <= TIMEOUT) armed.add(timer);
    return timer;
  }) as typeof setTimeout;
  globalThis.clearTimeout = ((timer: NodeJS.Timeout | undefined) => {
    cleared.add(timer);
    realClear(timer);
  }) as typeof clearTimeout;
  t.teardown(() => {
    globalThis.setTimeout = realSet;
    globalThis.clearTimeout = realClear;
  });
  const signal = new AbortController().signal;
  const requests = Array.from({ length: 5 }, (_, i) => client.request(connAB, Ping.create({ n: i }), { timeout: TIMEOUT, signal }));
  for (const r of requests) r.catch(() => {});
  await held(5);
  t.true(armed.size >= 1, 'a deadline timer is armed');
  t.is(abortListeners(signal), 5);
  t.deepEqual(client._inFlight, { ...IDLE, requests: 5 });
  client.destroy();
  for (const r of requests) {
    const err = await t.throwsAsync(r, { instanceOf: ClosedError });
    t.is(err?.code, 'ERR_PEERSOCK_CLOSED');
  }
  await within(1000, 'closed', client.closed);
  t.is(MessageRouter.for(b).state(connAB).waiters.size, 0, 'no waiter left');
  t.deepEqual(client._inFlight, IDLE);
  t.is(abortListeners(signal), 0, "no listener left on the requests' signal");
  // Sequential requests reuse one deadline timer per duration: once no
  // deadline is left it stays armed but unreferenced, holding nothing open.
  for (const timer of armed) t.true(cleared.has(timer) || !timer.hasRef(), 'the deadline timer was cleared or no longer holds the process open');
  client.destroy(); // idempotent
  t.is(await client.close(), undefined, 'close() after destroy() resolves');
  await t.throwsAsync(client.request(connAB, Ping.create({ n: 1 })), { instanceOf: ClosedError });
});

test('Dispatcher.destroy(err): pending requests, dials and conversations fail with err itself', async (t) => {
  const { a, b, connAB } = await pair(t);
  const port = await silentPort(t);
  const server = new Dispatcher(a, { protocol: 'life/err' });
  server.handle(Ping, () => new Promise<never>(() => {}));
  let accepted!: () => void;
  const serverHasIt = new Promise<void>((resolve) => (accepted = resolve));
  const serverErr = new Promise<Error>((resolve) =>
    server.onConversation(Sync, (c: Conversation) => {
      c.on('error', resolve);
      accepted();
    }),
  );
  const client = new Dispatcher(b, { protocol: 'life/err' });
  const pending = client.request(connAB, Ping.create({ n: 1 }), { timeout: 30_000 });
  // A peer that never answers the handshake: this request waits in its dial.
  const dialing = client.request({ publicKey: keyPair().publicKey, host: '127.0.0.1', port }, Ping.create({ n: 2 }), { timeout: 30_000 });
  const conv = client.conversation(connAB, Sync);
  const convErrors: Error[] = [];
  conv.on('error', (e: Error) => convErrors.push(e));
  await conv.send(Sync.create({ step: 1 }));
  await within(2000, 'the server accepted the conversation', serverHasIt);
  for (let i = 0; i < 100 && client._inFlight.requests === 0; i++) await sleep(10);
  t.deepEqual(client._inFlight, { ...IDLE, requests: 1, sends: 1, conversations: 1 });
  const err = new Error('shutting down');
  client.destroy(err);
  t.is(await t.throwsAsync(within(1000, 'request', pending)), err);
  t.is(await t.throwsAsync(within(1000, 'dial', dialing)), err, 'a request still dialing fails at once');
  t.deepEqual(convErrors, [err], "the conversation's 'error' is err");
  t.true(conv.ended);
  t.is(await t.throwsAsync(conv.send(Sync.create({ step: 2 }))), err, 'later sends reject with err');
  await within(1000, 'conversation closed', conv.closed);
  await within(1000, 'dispatcher closed', client.closed);
  t.true((await within(2000, "the peer's conversation error", serverErr)) instanceof ConversationEndedError);
  t.deepEqual(client._inFlight, IDLE);
});

test("Dispatcher.destroy() while a handler runs: the requester gets an ERR_PEERSOCK_CLOSED error reply at once; the handler's result is dropped", async (t) => {
  const { server, client, connAB, held, release } = await slowServer(t, 'life/handler');
  const pending = client.request(connAB, Ping.create({ n: 1 }), { reply: Pong, timeout: 5000 });
  await held(1);
  server.destroy();
  const err = await within(1000, 'error reply', t.throwsAsync(pending, { instanceOf: RemoteError }));
  t.is(err?.remoteCode, 'ERR_PEERSOCK_CLOSED');
  release();
  await sleep(100);
  t.is(client.stats.droppedReplies, 0, 'no second reply was sent');
  t.deepEqual(server._inFlight, IDLE);
});

// ---- Dispatcher: signal --------------------------------------------------------

test('Dispatcher { signal }: abort destroys it, pending requests reject with AbortError (the reason as cause); close() removes the listener', async (t) => {
  const { a, b, connAB } = await pair(t);
  new Dispatcher(a, { protocol: 'life/abort' }).handle(Ping, () => new Promise<never>(() => {}));
  const ac = new AbortController();
  const client = new Dispatcher(b, { protocol: 'life/abort', signal: ac.signal });
  const pending = client.request(connAB, Ping.create({ n: 1 }), { timeout: 30_000 });
  await sleep(50);
  const reason = new Error('time to go');
  ac.abort(reason);
  const err = await within(1000, 'abort', t.throwsAsync(pending, { instanceOf: AbortError }));
  t.is(err?.code, 'ERR_PEERSOCK_ABORTED');
  t.is(err?.cause, reason);
  await within(1000, 'closed', client.closed);
  t.is(abortListeners(ac.signal), 0);

  // close() removes the listener too, and a later abort does nothing.
  const ac2 = new AbortController();
  const other = new Dispatcher(b, { protocol: 'life/abort-2', signal: ac2.signal });
  t.is(abortListeners(ac2.signal), 1);
  await other.close();
  t.is(abortListeners(ac2.signal), 0);
  ac2.abort();
});

test('Dispatcher { signal } already aborted: destroyed from the start, the protocol stays free; a bad signal throws', async (t) => {
  const { a } = await pair(t);
  const d = new Dispatcher(a, { protocol: 'life/born', signal: AbortSignal.abort() });
  await within(1000, 'closed', d.closed);
  await t.throwsAsync(d.send(`${'x'.repeat(52)}@127.0.0.1:1`, new Uint8Array(1), { type: 'x' }), { instanceOf: ClosedError });
  t.notThrows(() => new Dispatcher(a, { protocol: 'life/born' }).destroy());
  t.throws(() => new Dispatcher(a, { protocol: 'life/bad', signal: {} as AbortSignal }), { instanceOf: InvalidArgumentError });
  t.notThrows(() => new Dispatcher(a, { protocol: 'life/bad' }).destroy(), 'a rejected signal registers nothing');
});

// ---- Conversation --------------------------------------------------------------

/** A client conversation to a server that keeps each conversation it accepts (and reads it only if `read`). */
async function conversationPair(t: ExecutionContext, protocol: string, read: boolean) {
  const p = await pair(t);
  const server = new Dispatcher(p.a, { protocol });
  const accepted: Conversation[] = [];
  const gotOne = new Promise<Conversation>((resolve) =>
    server.onConversation(Note, (c: Conversation) => {
      accepted.push(c);
      if (read) c.on('message', () => {});
      resolve(c);
    }),
  );
  const client = new Dispatcher(p.b, { protocol });
  return { ...p, server, client, accepted, gotOne };
}

test('Conversation.close() ends it gracefully for both sides; idempotent; closed resolves on both', async (t) => {
  const { client, connAB, gotOne } = await conversationPair(t, 'life/conv-close', true);
  const conv = client.conversation(connAB, Note);
  await conv.send(Note.create({ text: 'hi' }));
  const peer = await within(2000, 'accepted', gotOne);
  const peerErrors: Error[] = [];
  peer.on('error', (e: Error) => peerErrors.push(e));
  const closing = conv.close();
  t.is(conv.close(), closing, 'the same promise');
  t.is(closing, conv.closed);
  await within(1000, 'closed', closing);
  t.true(conv.ended);
  await within(1000, "the peer's closed", peer.closed);
  t.deepEqual(peerErrors, [], 'a graceful end is no error');
  await t.throwsAsync(conv.send(Note.create({ text: 'late' })), { instanceOf: ConversationEndedError });
  await conv.end(); // end() is still there, and a no-op now
  t.deepEqual(client._inFlight, IDLE, 'the dispatcher forgot it');
});

test('Conversation.destroy(): a send stalled by back-pressure rejects with ClosedError at once; no error event; the iterator just ends', async (t) => {
  const { client, connAB, gotOne } = await conversationPair(t, 'life/conv-destroy', false);
  const conv = client.conversation(connAB, Note);
  const errors: Error[] = [];
  conv.on('error', (e: Error) => errors.push(e));
  const iterating = (async () => {
    for await (const _ of conv) t.fail('no messages');
  })();
  const blob = new Uint8Array(64 * 1024);
  let stalled: Promise<void> | undefined;
  for (let i = 0; i < 2000 && stalled === undefined; i++) {
    const s = conv.send(Note.create({ text: String(i), blob }));
    if (!(await settlesWithin(i === 0 ? 1000 : 30, s))) stalled = s;
  }
  t.not(stalled, undefined, 'a send waits for the peer to read');
  stalled!.catch(() => {});
  const peer = await gotOne;
  const ended = new Promise<void>((resolve) => conv.once('end', resolve));
  conv.destroy();
  await within(1000, "'end'", ended);
  const err = await within(1000, 'the stalled send', t.throwsAsync(stalled!, { instanceOf: ClosedError }));
  t.is(err?.code, 'ERR_PEERSOCK_CLOSED');
  t.is(err?.message, 'conversation destroyed', "the conversation's own error, not the stream's failed write");
  await within(1000, 'iterator', iterating);
  await within(1000, 'closed', conv.closed);
  t.deepEqual(errors, [], "destroy() without an error emits no 'error'");
  await t.throwsAsync(conv.send(Note.create({ text: 'late' })), { instanceOf: ClosedError });
  // The peer, reading again, finds the stream reset.
  const peerEnded = (async () => {
    try {
      for await (const _ of peer);
    } catch (e) {
      return e;
    }
    return undefined;
  })();
  t.true((await within(2000, "the peer's end", peerEnded)) instanceof ConversationEndedError, 'the peer sees its stream reset');
  conv.destroy(new Error('again')); // idempotent
  t.deepEqual(errors, []);
  t.deepEqual(client._inFlight, IDLE);
});

test("Conversation.destroy(err): 'error' is err, sends and the iterator fail with err", async (t) => {
  const { client, connAB } = await conversationPair(t, 'life/conv-err', true);
  const conv = client.conversation(connAB, Note);
  await conv.send(Note.create({ text: 'hi' }));
  const errors: Error[] = [];
  conv.on('error', (e: Error) => errors.push(e));
  const iterating = (async () => {
    for await (const _ of conv) t.fail('no messages');
  })();
  const err = new Error('no more');
  conv.destroy(err);
  t.deepEqual(errors, [err]);
  t.is(await t.throwsAsync(within(1000, 'iterator', iterating)), err);
  t.is(await t.throwsAsync(conv.send(Note.create({ text: 'late' }))), err);
  await within(1000, 'closed', conv.closed);
});

test('conversation(peer, type, { signal }): abort destroys it with AbortError, even while dialing; the listener goes with it', async (t) => {
  const { b, connAB } = await pair(t);
  const port = await silentPort(t);
  const client = new Dispatcher(b, { protocol: 'life/conv-signal' });
  const ac = new AbortController();
  const conv = client.conversation({ publicKey: keyPair().publicKey, host: '127.0.0.1', port }, Note, { signal: ac.signal });
  t.true(abortListeners(ac.signal) >= 1, 'the conversation listens (and its dial)');
  const errors: Error[] = [];
  conv.on('error', (e: Error) => errors.push(e));
  const sending = conv.send(Note.create({ text: 'waits for the dial' }));
  sending.catch(() => {});
  t.false(await settlesWithin(100, sending));
  const reason = new Error('never mind');
  ac.abort(reason);
  const err = await within(1000, 'send', t.throwsAsync(sending, { instanceOf: AbortError }));
  t.is(err?.cause, reason);
  t.is(errors.length, 1);
  t.true(errors[0] instanceof AbortError);
  await within(1000, 'closed', conv.closed);
  await sleep(20);
  t.is(abortListeners(ac.signal), 0, 'neither the conversation nor its dial listens any more');
  t.deepEqual(client._inFlight, IDLE);

  // Ended another way, it removes its listener too.
  const ac2 = new AbortController();
  const conv2 = client.conversation(connAB, Note, { signal: ac2.signal });
  t.is(abortListeners(ac2.signal), 1);
  conv2.on('error', () => {});
  conv2.destroy();
  await conv2.closed;
  t.is(abortListeners(ac2.signal), 0);
  t.throws(() => client.conversation(connAB, Note, { signal: 'no' as unknown as AbortSignal }), { instanceOf: InvalidArgumentError });
});

// ---- Dispatcher and its conversations --------------------------------------------

test("Dispatcher.close() ends its open conversations gracefully (the peer sees 'end', no error)", async (t) => {
  const { client, connAB, gotOne } = await conversationPair(t, 'life/close-convs', true);
  const conv = client.conversation(connAB, Note);
  await conv.send(Note.create({ text: 'hi' }));
  const peer = await within(2000, 'accepted', gotOne);
  const peerErrors: Error[] = [];
  peer.on('error', (e: Error) => peerErrors.push(e));
  await within(1000, 'dispatcher closed', client.close());
  t.true(conv.ended);
  await within(1000, "the peer's conversation closed", peer.closed);
  t.deepEqual(peerErrors, []);
});

test('a connection closing ends its conversations (their closed resolves) and the dispatcher keeps no reference to them', async (t) => {
  const { server, client, connAB, gotOne } = await conversationPair(t, 'life/conn-close', true);
  const conv = client.conversation(connAB, Note);
  conv.on('error', () => {});
  await conv.send(Note.create({ text: 'hi' }));
  const peer = await within(2000, 'accepted', gotOne);
  peer.on('error', () => {});
  t.deepEqual(client._inFlight, { ...IDLE, conversations: 1 });
  t.deepEqual(server._inFlight, { ...IDLE, conversations: 1 });
  await (connAB as PeerConnection).close();
  await within(1000, 'closed', conv.closed);
  await within(1000, "the peer's closed", peer.closed);
  t.deepEqual(client._inFlight, IDLE);
  t.deepEqual(server._inFlight, IDLE);
});
