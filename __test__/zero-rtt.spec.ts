/**
 * 0-RTT reconnects (issue 6): session tickets kept per peer key, resumption
 * that still pins the key, idempotent messages in early data and nothing
 * else, and the time to the first reply, fresh vs 0-RTT, through the lab
 * relay with 50 ms of delay each way.
 */
import { performance } from 'node:perf_hooks';
import test, { type ExecutionContext } from 'ava';

import type { PeerConnection } from '../src/connection';
import { IdentityMismatchError, InvalidArgumentError } from '../src/errors';
import { keyPair } from '../src/keys';
import { Dispatcher } from '../src/messages/dispatcher';
import { PeerSocket, type BindOptions } from '../src/peer-socket';
import { MemorySessionStore } from '../src/sessions';
import { createSocket, median, target } from './helpers';
import { packetKinds } from './lab/quic-packets';
import type { Relay } from './lab/relay';
import { createRelay } from './lab/setup';

const DELAY = 50;

/** Waits (bounded) until `sock` holds a ticket for `key`. */
async function ticketFor(t: ExecutionContext, sock: PeerSocket, key: Uint8Array): Promise<void> {
  for (let i = 0; i < 300 && sock.sessions.get(key) === undefined; i++) await new Promise((r) => setTimeout(r, 10));
  t.truthy(sock.sessions.get(key), 'a session ticket arrived');
}

interface Lab {
  server: PeerSocket;
  client: PeerSocket;
  relay: Relay;
  /** When the server handled each 'get' (performance.now()). */
  handled: number[];
  /** 0-RTT packets the client sent through the relay. */
  zeroRtt: () => number;
  rpc: Dispatcher;
}

async function lab(t: ExecutionContext, serverOpts: BindOptions = { earlyData: true }, clientOpts: BindOptions = {}): Promise<Lab> {
  const server = await createSocket(t, serverOpts);
  const client = await createSocket(t, clientOpts);
  const relay = await createRelay(t, server, { c2s: { delayMs: DELAY }, s2c: { delayMs: DELAY } });
  let zrtt = 0;
  relay.tap('c2s', (data) => {
    if (packetKinds(data).includes('0rtt')) zrtt++;
  });
  const handled: number[] = [];
  const d = new Dispatcher(server, { protocol: 'kv/1' });
  d.handle('get', (bytes: Uint8Array) => {
    handled.push(performance.now());
    return Buffer.concat([Buffer.from('value of '), bytes]);
  });
  d.handle('put', (bytes: Uint8Array) => {
    handled.push(performance.now());
    return Buffer.concat([Buffer.from('stored '), bytes]);
  });
  return { server, client, relay, handled, zeroRtt: () => zrtt, rpc: new Dispatcher(client, { protocol: 'kv/1' }) };
}

/** The lab's server, dialed through its relay (the 50 ms each way). */
function viaRelay(l: Lab): { publicKey: Uint8Array; host: string; port: number } {
  return { publicKey: l.server.publicKey, ...l.relay.address() };
}

/** Dials and sends one request; the time from dialing to the reply. */
async function firstReply(l: Lab, type: 'get' | 'put', opts: { earlyData?: boolean; idempotent?: boolean }): Promise<{ conn: PeerConnection; ms: number; reply: string; handshakeAt: number }> {
  const t0 = performance.now();
  const conn = await l.client.connect(viaRelay(l), { earlyData: opts.earlyData });
  let handshakeAt = 0;
  void conn.handshake.then(() => (handshakeAt = performance.now()), () => {});
  const reply = (await l.rpc.request(conn, Buffer.from('k'), { type, reply: type, idempotent: opts.idempotent, timeout: 5000 })) as Uint8Array;
  const ms = performance.now() - t0;
  await conn.handshake;
  return { conn, ms, reply: Buffer.from(reply).toString(), handshakeAt };
}

test.serial('a second dial of the same key resumes; its idempotent request is handled from the first flight (time to first reply, fresh vs 0-RTT, 50 ms each way)', async (t) => {
  t.timeout(60_000);
  const l = await lab(t);
  const fresh: number[] = [];
  const early: number[] = [];
  for (let i = 0; i < 5; i++) {
    const f = await firstReply(l, 'get', {});
    t.false(f.conn.resumed);
    fresh.push(f.ms);
    await ticketFor(t, l.client, l.server.publicKey);
    await f.conn.close();

    const before = l.zeroRtt();
    const e = await firstReply(l, 'get', { earlyData: true, idempotent: true });
    t.is(e.reply, 'value of k');
    t.true(e.conn.resumed, 'resumed');
    t.true(l.zeroRtt() > before, 'the request left in 0-RTT packets');
    // The server handled it before the client even finished its handshake.
    t.true(l.handled.at(-1)! < e.handshakeAt, `handled at ${l.handled.at(-1)!.toFixed(1)}, handshake done at ${e.handshakeAt.toFixed(1)}`);
    early.push(e.ms);
    await e.conn.close();
  }
  const rtt = 2 * DELAY;
  t.log(`time to first reply over ${rtt} ms RTT: fresh median ${median(fresh).toFixed(0)} ms [${fresh.map((x) => x.toFixed(0)).join(', ')}], 0-RTT median ${median(early).toFixed(0)} ms [${early.map((x) => x.toFixed(0)).join(', ')}]`);
  // Fresh: handshake (1 RTT) + the server's "accepted" (1 RTT) + the request (1 RTT); 0-RTT: the request's round trip.
  t.true(median(early) < 1.8 * rtt, `0-RTT median ${median(early).toFixed(0)} ms`);
  t.true(median(fresh) - median(early) > 1.5 * rtt, 'at least 1.5 round trips saved');
});

test.serial('a non-idempotent request on an early connection waits for the handshake: no 0-RTT packet carries it', async (t) => {
  const l = await lab(t);
  const f = await firstReply(l, 'put', {});
  await ticketFor(t, l.client, l.server.publicKey);
  await f.conn.close();
  const before = l.zeroRtt();
  const e = await firstReply(l, 'put', { earlyData: true });
  t.is(e.reply, 'stored k');
  t.true(e.conn.resumed);
  t.is(l.zeroRtt(), before, 'no 0-RTT packets');
  t.true(l.handled.at(-1)! > e.handshakeAt, 'handled after the client completed its handshake');
  // A one-way send and a conversation wait as well; an idempotent send does not.
  await e.conn.close();
});

test.serial('opt-out is the default: a dial without earlyData neither resumes nor sends early data', async (t) => {
  const l = await lab(t);
  const f = await firstReply(l, 'get', {});
  await ticketFor(t, l.client, l.server.publicKey);
  await f.conn.close();
  const g = await firstReply(l, 'get', { idempotent: true });
  t.false(g.conn.early);
  t.false(g.conn.resumed);
  t.is(l.zeroRtt(), 0);
  await g.conn.close();
});

test.serial('a server without earlyData resumes the session but takes the request only after the handshake', async (t) => {
  const l = await lab(t, {});
  const f = await firstReply(l, 'get', {});
  await ticketFor(t, l.client, l.server.publicKey);
  await f.conn.close();
  const e = await firstReply(l, 'get', { earlyData: true, idempotent: true });
  t.is(e.reply, 'value of k');
  t.true(e.conn.resumed);
  t.is(l.handled.length, 2);
  // Refused early data is sent again with the client's Finished: handled
  // after the server's handshake (1.5 RTT), so the reply takes 2 RTT.
  t.true(e.ms > 1.8 * 2 * DELAY, `first reply after ${e.ms.toFixed(0)} ms`);
});

/** A server with early data on, and a client holding a ticket from it (its first connection closed). */
async function ticketed(t: ExecutionContext): Promise<{ server: PeerSocket; client: PeerSocket; port: number }> {
  const server = await createSocket(t, { earlyData: true });
  const client = await createSocket(t);
  const first = await client.connect(target(server));
  await ticketFor(t, client, server.publicKey);
  await first.close();
  return { server, client, port: server.address().port };
}

test.serial('a stale ticket cannot reach another server at the same address: IdentityMismatchError, nothing handled', async (t) => {
  const { server, client, port } = await ticketed(t);
  await server.close();
  // Another key now listens on that port; it cannot open the ticket.
  const impostor = await createSocket(t, { earlyData: true, port });
  let handled = 0;
  new Dispatcher(impostor, { protocol: 'kv/1' }).handle('get', () => {
    handled++;
    return 'x';
  });
  const conn = await client.connect({ publicKey: server.publicKey, host: '127.0.0.1', port }, { earlyData: true });
  t.true(conn.early, 'the ticket was offered (it is for this key)');
  const req = new Dispatcher(client, { protocol: 'kv/1' }).request(conn, Buffer.from('secret'), { type: 'get', idempotent: true, timeout: 5000 });
  await t.throwsAsync(conn.handshake, { instanceOf: IdentityMismatchError });
  await t.throwsAsync(req);
  t.is(handled, 0);
});

test.serial('a ticket stored under another key is never offered; the dial fails on the pinned key', async (t) => {
  const { server, client } = await ticketed(t);
  const other = keyPair().publicKey;
  client.sessions.set(other, client.sessions.get(server.publicKey)!);
  let accepted = 0;
  server.on('connection', () => accepted++);
  await t.throwsAsync(client.connect({ ...target(server), publicKey: other }, { earlyData: true }), { instanceOf: IdentityMismatchError });
  t.is(accepted, 0);
});

test.serial('exported tickets resume from a new socket with the same key, not from one with another key', async (t) => {
  const server = await createSocket(t, { earlyData: true });
  const kp = keyPair();
  const store = new MemorySessionStore();
  const c1 = await createSocket(t, { keyPair: kp, sessionStore: store });
  const dial = target(server);
  await (await c1.connect(dial)).close();
  await ticketFor(t, c1, server.publicKey);
  const saved = store.export();
  t.is(saved.length, 1);
  await c1.close();

  const c2 = await createSocket(t, { keyPair: kp });
  (c2.sessions as MemorySessionStore).import(saved);
  const again = await c2.connect(dial, { earlyData: true });
  t.true(again.early);
  await again.handshake;
  t.true(again.resumed);
  t.deepEqual(server.connections.at(-1)?.remotePublicKey, kp.publicKey);

  const c3 = await createSocket(t);
  (c3.sessions as MemorySessionStore).import(saved);
  const fresh = await c3.connect(dial, { earlyData: true });
  t.false(fresh.early);
  t.false(fresh.resumed);
});

test('bad session and dial options are InvalidArgumentError', async (t) => {
  const s = await createSocket(t);
  t.throws(() => s.sessions.set(new Uint8Array(32), new Uint8Array(0)), { instanceOf: InvalidArgumentError });
  t.throws(() => s.sessions.set(new Uint8Array(3), new Uint8Array(8)), { instanceOf: InvalidArgumentError });
  t.throws(() => new MemorySessionStore({ max: 0 }), { instanceOf: InvalidArgumentError });
  const dial = { publicKey: new Uint8Array(32), host: '127.0.0.1', port: 9 };
  t.throws(() => s.connect(dial, { earlyData: 'yes' as unknown as boolean }), { instanceOf: InvalidArgumentError });
  t.throws(() => s.connect(dial, { keepAlive: -5 }), { instanceOf: InvalidArgumentError });
  await t.throwsAsync(PeerSocket.bind({ host: '127.0.0.1', sessionStore: {} as never }), { instanceOf: InvalidArgumentError });
});
