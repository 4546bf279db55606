/**
 * The hostile-peer table: every hostile action a peer can take, against a
 * listener written in each common idiom, running in its own process (no
 * 'uncaughtException' handler: anything peersock lets escape kills it).
 * After each action the listener must still be alive, serve a fresh
 * well-behaved peer, and hold nothing of the hostile connection (no
 * connection, stream, pending waiter, timer or handle left over).
 *
 * Also here: a peer's reset never looks like a clean end, in each idiom.
 */
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { PassThrough, pipeline } from 'node:stream';
import test, { type ExecutionContext } from 'ava';

import type { PeerConnection } from '../src/connection';
import { PeersockError, StreamResetError } from '../src/errors';
import { Dispatcher } from '../src/messages/dispatcher';
import { frame } from '../src/messages/framing';
import { Control, Envelope } from '../src/messages/router';
import { PeerSocket } from '../src/peer-socket';
import { CHANNEL_MESSAGES } from '../src/messages/host';
import type { PeerStream } from '../src/stream';
import { UdpTransport, type DatagramTransport } from '../src/transport';
import { LISTENER_LIMITS, PROTOCOL, type ListenerState } from './lab/hostile-listener';
import { nextMessage, startChild, type LabChild } from './lab/security-child';
import { nextStream, pair, sleep, within } from './helpers';

type Idiom = 'pipe' | 'pipeline' | 'for-await' | 'data' | 'dispatcher' | 'conversation';
type Kind = 'stream' | 'dispatcher' | 'conversation';
const kindOf = (idiom: Idiom): Kind => (idiom === 'dispatcher' || idiom === 'conversation' ? idiom : 'stream');

/** A UDP transport that can vanish: once cut, it neither sends nor delivers. */
async function vanishingTransport(): Promise<DatagramTransport & { cut(): void }> {
  const udp = await UdpTransport.bind({ host: '127.0.0.1', port: 0 });
  let cut = false;
  return {
    send: (data, port, address, done) => (cut ? done() : udp.send(data, port, address, done)),
    onDatagram: (handler) => udp.onDatagram((...args) => (cut ? undefined : handler(...args))),
    onError: (handler) => udp.onError(handler),
    address: () => udp.address(),
    close: () => udp.close(),
    cut: () => {
      cut = true;
    },
  };
}

/** One envelope of the hostile protocol, framed for a messages stream. */
function envelope(fields: { id: number; type?: string; payload?: Uint8Array; inReplyTo?: number; inRegardsTo?: number; control?: number; oneway?: boolean }): Buffer {
  return frame(Envelope.encode({ protocol: PROTOCOL, ...fields }).finish());
}

/** What a hostile action gets to work with. */
interface Ctx {
  t: ExecutionContext;
  kind: Kind;
  socket: PeerSocket;
  conn: PeerConnection;
  transport: DatagramTransport & { cut(): void };
  /** Next envelope id of this peer. */
  id: number;
  /** Message idioms, last action: the id of the listener's 'hello', once answered. */
  hello?: Promise<number> | undefined;
}

/**
 * Installs, before dialing, a dispatcher that answers the listener's 'hello'
 * (it asks as soon as the connection is up); resolves with that request's id.
 */
function answerHello(socket: PeerSocket): Promise<number> {
  const d = new Dispatcher(socket, { protocol: PROTOCOL });
  return new Promise<number>((resolve) => {
    d.handle('hello', (_m: Uint8Array, ctx) => {
      setImmediate(() => resolve(ctx.id));
      return new Uint8Array([2]);
    });
  });
}

/**
 * Opens the stream the idiom serves, with a valid start: raw bytes for the
 * stream idioms, framed 'echo' requests on a lane for the dispatcher, an
 * OPEN and messages of a 'chat' conversation for the conversation idiom.
 */
function target(c: Ctx, bytes: number): PeerStream {
  if (c.kind === 'stream') {
    const s = c.conn.openStream();
    s.on('error', () => {});
    s.write(randomBytes(bytes));
    return s;
  }
  const s = c.conn._openChannelStream(CHANNEL_MESSAGES, c.kind === 'dispatcher');
  s.on('error', () => {});
  feed(c, s, bytes, true);
  return s;
}

/** Writes about `bytes` more of the idiom's valid traffic into `s`. */
function feed(c: Ctx, s: PeerStream, bytes: number, first = false): void {
  if (c.kind === 'stream') {
    s.write(randomBytes(bytes));
    return;
  }
  let conv = 0;
  if (c.kind === 'conversation' && first) {
    conv = c.id;
    s.write(envelope({ id: c.id++, type: 'chat', inRegardsTo: conv, control: Control.OPEN, payload: randomBytes(16) }));
  }
  for (let sent = 0; sent < bytes; sent += 16 * 1024) {
    const payload = randomBytes(16 * 1024);
    s.write(c.kind === 'dispatcher' ? envelope({ id: c.id++, type: 'echo', payload }) : envelope({ id: c.id++, type: 'chat', inRegardsTo: conv || 1, payload }));
  }
}

/** Sends STOP_SENDING on `s` while keeping our own write side open (no public API does only that). */
function stopSending(c: Ctx, s: PeerStream, code: number): void {
  c.conn.native.streamShutdown(c.conn.handle, s.id, 'read', code);
  c.conn.kick();
}

/** A stream that carries a FIN and nothing else, not even the channel byte. */
function bareFin(c: Ctx): void {
  const id = c.conn.native.openStream(c.conn.handle, true);
  c.conn.native.streamSend(c.conn.handle, id, new Uint8Array(0), true);
  c.conn.kick();
}

/** Bursts of datagrams, a tick apart, so the flood is not one synchronous loop. */
async function flood(c: Ctx, count: number): Promise<void> {
  const size = Math.min(1000, c.conn.maxDatagramSize);
  for (let i = 0; i < count; i++) {
    if (c.conn.closeInfo !== undefined) return;
    let bytes: Uint8Array = randomBytes(size);
    if (c.kind !== 'stream' && i % 2 === 0) bytes = Envelope.encode({ protocol: PROTOCOL, id: c.id++, type: 'echo', oneway: true, payload: randomBytes(64) }).finish();
    c.conn._sendChannelDatagram(c.kind === 'stream' ? 0 : CHANNEL_MESSAGES, bytes);
    if (i % 100 === 99) await new Promise((resolve) => setImmediate(resolve));
  }
}

/** The table's rows. Each leaves the connection closed, vanished, or about to be closed by the caller. */
const ACTIONS: Record<string, (c: Ctx) => Promise<void>> = {
  async 'reset mid-stream'(c) {
    const s = target(c, 64 * 1024);
    await sleep(50);
    s.destroy(Object.assign(new Error('reset'), { appCode: 7 }));
    await sleep(100);
  },
  async 'STOP_SENDING mid-write'(c) {
    const s = target(c, 256 * 1024);
    // The listener echoes (or answers) while we tell it to stop.
    await Promise.race([once(s, 'data'), sleep(300)]);
    stopSending(c, s, 9);
    feed(c, s, 128 * 1024);
    await sleep(150);
  },
  async 'unidirectional stream to a bidirectional echo'(c) {
    c.conn.openStream({ unidirectional: true }).end('x');
    if (c.kind !== 'stream') {
      // A conversation's OPEN on a unidirectional stream.
      const u = c.conn._openChannelStream(CHANNEL_MESSAGES, true);
      u.end(envelope({ id: c.id, type: 'chat', inRegardsTo: c.id++, control: Control.OPEN, payload: randomBytes(8) }));
    }
    await sleep(150);
  },
  async 'FIN with no data'(c) {
    bareFin(c);
    c.conn._openChannelStream(c.kind === 'stream' ? 0 : CHANNEL_MESSAGES, false).end();
    c.conn._openChannelStream(c.kind === 'stream' ? 0 : CHANNEL_MESSAGES, true).end();
    await sleep(150);
  },
  async 'connection close while the listener writes'(c) {
    const s = target(c, 64 * 1024);
    s.pause(); // we never read: the listener's writes back up
    feed(c, s, 2 * 1024 * 1024);
    await sleep(200);
    await c.conn.close({ code: 3, reason: 'gone' });
  },
  async 'idle timeout mid-write (peer vanishes)'(c) {
    const s = target(c, 64 * 1024);
    s.pause();
    feed(c, s, 2 * 1024 * 1024);
    await sleep(200);
    c.transport.cut();
  },
  async 'datagram flood'(c) {
    await flood(c, 3000);
    await sleep(100);
  },
  async 'stream-open flood up to the limit'(c) {
    let refused = 0;
    for (let i = 0; i < LISTENER_LIMITS.maxStreamsBidi + 8; i++) {
      try {
        target(c, 1024).pause();
      } catch (e) {
        if (!(e instanceof PeersockError)) throw e;
        refused++;
      }
    }
    for (let i = 0; i < LISTENER_LIMITS.maxStreamsUni + 8; i++) {
      try {
        c.conn._openChannelStream(c.kind === 'stream' ? 0 : CHANNEL_MESSAGES, true).write(randomBytes(100));
      } catch (e) {
        if (!(e instanceof PeersockError)) throw e;
        refused++;
      }
    }
    c.t.true(refused > 0, 'the flood reached the limit');
    await sleep(300);
  },
  async 'a request whose handler throws'(c) {
    if (c.kind === 'dispatcher') {
      const d = new Dispatcher(c.socket, { protocol: PROTOCOL });
      for (const type of ['boom', 'async-boom']) {
        const err = await c.t.throwsAsync(d.request(c.conn, new Uint8Array([1]), { type, timeout: 5000 }));
        c.t.true(err instanceof PeersockError && err.code !== 'ERR_PEERSOCK_REQUEST_TIMEOUT', `${type}: answered with an error reply, got ${String(err)}`);
      }
      return;
    }
    const lane = c.conn._openChannelStream(CHANNEL_MESSAGES, true);
    lane.on('error', () => {});
    lane.write(envelope({ id: c.id++, type: 'boom', payload: randomBytes(8) }));
    if (c.kind === 'conversation') {
      const s = c.conn._openChannelStream(CHANNEL_MESSAGES, false);
      s.on('error', () => {});
      s.write(envelope({ id: c.id, type: 'chat-boom', inRegardsTo: c.id++, control: Control.OPEN, payload: randomBytes(8) }));
    }
    await sleep(200);
  },
  async 'a reply to a finished request'(c) {
    // Answer the listener's 'hello' (message idioms), then answer it again,
    // and answer requests it never sent, on a stream and as datagrams.
    let helloId = 1;
    if (c.hello !== undefined) {
      helloId = await within(5000, "the listener's hello", c.hello);
      await sleep(50);
    }
    const lane = c.conn._openChannelStream(CHANNEL_MESSAGES, true);
    lane.on('error', () => {});
    for (const inReplyTo of [helloId, helloId, 987_654, 0x7fffffff]) {
      lane.write(envelope({ id: c.id++, inReplyTo, payload: randomBytes(8) }));
      c.conn._sendChannelDatagram(CHANNEL_MESSAGES, Envelope.encode({ protocol: PROTOCOL, id: c.id++, inReplyTo, payload: randomBytes(8) }).finish());
    }
    await sleep(200);
  },
};

/** Asks the listener for its state. */
async function stateOf(child: LabChild<unknown>): Promise<ListenerState> {
  child.child.send('state');
  return (await nextMessage<{ state: ListenerState }>(child.child, 5000)).state;
}

/**
 * Waits (≤ 8 s) until the listener holds no connection, stream or pending
 * request, and no more resources of any kind than `baseline` (undefined:
 * no timer at all, which is what an idle socket has).
 */
async function settled(child: LabChild<unknown>, baseline: Record<string, number> | undefined): Promise<{ ok: boolean; state: ListenerState }> {
  const until = Date.now() + 8000;
  let state = await stateOf(child);
  for (;;) {
    const r = state.resources;
    const within = baseline === undefined ? r.Timeout === undefined : Object.entries(r).every(([k, n]) => n <= (baseline[k] ?? 0));
    if (state.connections === 0 && state.streams === 0 && state.helloPending === 0 && within) return { ok: true, state };
    if (Date.now() > until) return { ok: false, state };
    await sleep(100);
    state = await stateOf(child);
  }
}

/** A well-behaved peer uses the idiom once: a stream echo, a request, or a conversation. */
async function probe(t: ExecutionContext, kind: Kind, port: number, key: Uint8Array): Promise<void> {
  const socket = await PeerSocket.bind({ host: '127.0.0.1', port: 0 });
  try {
    const d = kind === 'stream' ? undefined : new Dispatcher(socket, { protocol: PROTOCOL });
    d?.handle('hello', () => new Uint8Array([2]));
    const conn = await socket.connect({ publicKey: key, host: '127.0.0.1', port }, { timeout: 5000 });
    const data = randomBytes(100 * 1024);
    let back: Buffer;
    if (kind === 'stream') {
      const s = conn.openStream();
      const chunks: Buffer[] = [];
      s.on('data', (c: Buffer) => chunks.push(c));
      const ended = once(s, 'end');
      s.end(data);
      await within(5000, 'probe echo', ended);
      back = Buffer.concat(chunks);
    } else if (kind === 'dispatcher') {
      back = Buffer.from(await within(5000, 'probe request', d!.request(conn, data, { type: 'echo', timeout: 5000 })) as Uint8Array);
    } else {
      const conv = d!.conversation(conn, 'chat');
      await conv.send(data, { type: 'chat' });
      const [m] = (await within(5000, 'probe conversation', once(conv, 'message'))) as [Uint8Array];
      back = Buffer.from(m);
      await conv.end();
    }
    t.true(back.equals(data), `probe: the ${kind} echo is intact`);
    await conn.close();
  } finally {
    await socket.close();
  }
}

const table = test.macro({
  async exec(t, idiom: Idiom) {
    t.timeout(170_000);
    const kind = kindOf(idiom);
    const child = await startChild<{ port: number; publicKey: string }>('hostile-listener.ts', { IDIOM: idiom });
    t.teardown(() => child.kill());
    const port = child.ready.port;
    const key = new Uint8Array(Buffer.from(child.ready.publicKey, 'hex'));
    await probe(t, kind, port, key);
    const base = await settled(child, undefined);
    t.true(base.ok, `listener idle after the first probe: ${JSON.stringify(base.state)}`);
    const baseline = base.state.resources;
    for (const [name, action] of Object.entries(ACTIONS)) {
      const t0 = Date.now();
      const transport = await vanishingTransport();
      const socket = await PeerSocket.bind({ transport });
      const before = (await stateOf(child)).dispatcher;
      const hello = kind !== 'stream' && name === 'a reply to a finished request' ? answerHello(socket) : undefined;
      try {
        const conn = await socket.connect({ publicKey: key, host: '127.0.0.1', port }, { timeout: 5000 });
        conn.on('error', () => {});
        await within(20_000, name, action({ t, kind, socket, conn, transport, id: 1, hello }));
        if (conn.closeInfo === undefined && !name.startsWith('idle')) await conn.close({ code: 0, reason: 'done' });
      } finally {
        if (!name.startsWith('idle')) await socket.close();
      }
      t.is(child.child.exitCode, null, `${idiom} × ${name}: the listener process is alive`);
      const after = await settled(child, baseline);
      t.true(after.ok, `${idiom} × ${name}: nothing left over: ${JSON.stringify(after.state)} (baseline ${JSON.stringify(baseline)})`);
      if (name.startsWith('idle')) socket.destroy();
      if (kind === 'dispatcher' && name === 'a reply to a finished request') {
        t.true(after.state.dispatcher!.droppedReplies >= (before?.droppedReplies ?? 0) + 1, 'the late and unknown replies were dropped and counted');
      }
      await probe(t, kind, port, key);
      t.log(`${idiom} × ${name}: survived, nothing left over, serves a fresh peer (${Date.now() - t0} ms)`);
    }
    t.is(child.child.exitCode, null, 'the listener process is alive at the end');
  },
  title: (_, idiom: Idiom) => `hostile-peer table: a listener written with ${idiom} survives every hostile action and keeps serving`,
});

for (const idiom of ['pipe', 'pipeline', 'for-await', 'data', 'dispatcher', 'conversation'] as Idiom[]) test.serial(table, idiom);

// ─── a reset never looks like a clean end ────────────────────────────────────

/** Opens a stream from b, writes some bytes, then resets it with appCode 7; returns a's side. */
async function resetSoon(t: ExecutionContext): Promise<{ incoming: Promise<PeerStream>; reset: () => void }> {
  const { connAB, connBA } = await pair(t);
  const incoming = nextStream(connBA);
  const s = connAB.openStream();
  s.on('error', () => {});
  s.write(randomBytes(10_000));
  return { incoming, reset: () => s.destroy(Object.assign(new Error('reset'), { appCode: 7 })) };
}

test('a reset is not a clean end: for await rejects with StreamResetError', async (t) => {
  const { incoming, reset } = await resetSoon(t);
  const s = await incoming;
  const loop = (async () => {
    let n = 0;
    for await (const chunk of s) {
      n += (chunk as Buffer).length;
      if (n >= 10_000) reset();
    }
  })();
  const err = await within(5000, 'loop', t.throwsAsync(loop));
  t.true(err instanceof StreamResetError && err.appCode === 7, String(err));
});

test('a reset is not a clean end: pipeline calls back with StreamResetError', async (t) => {
  const { incoming, reset } = await resetSoon(t);
  const s = await incoming;
  const done = new Promise<Error | null | undefined>((resolve) => pipeline(s, new PassThrough(), s, resolve));
  s.once('data', () => reset());
  const err = await within(5000, 'pipeline', done);
  t.true(err instanceof StreamResetError && err.appCode === 7, String(err));
});

test("a reset is not a clean end: a bare 'data' reader gets 'close' without 'end', errored and closeError set", async (t) => {
  const { incoming, reset } = await resetSoon(t);
  const s = await incoming;
  let ended = false;
  s.on('data', () => reset());
  s.on('end', () => (ended = true));
  // Not events.once: it would add an 'error' listener, and the point is that there is none.
  await within(5000, 'close', new Promise((resolve) => s.once('close', resolve)));
  t.false(ended, "no 'end' for a truncated stream");
  t.true(s.errored instanceof StreamResetError, String(s.errored));
  t.true(s.closeError instanceof StreamResetError && s.closeError.appCode === 7);
});

test('a reset is not a clean end: s.pipe(s) does not throw, and the stream is errored', async (t) => {
  const { incoming, reset } = await resetSoon(t);
  const s = await incoming;
  s.pipe(s);
  s.once('data', () => reset());
  // Not events.once: it would add an 'error' listener, and the point is that there is none.
  await within(5000, 'close', new Promise((resolve) => s.once('close', resolve)));
  t.true(s.errored instanceof StreamResetError && s.closeError instanceof StreamResetError);
});
