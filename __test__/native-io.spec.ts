/**
 * The native I/O driver (`bind({ io: 'native' })`): the addon owns the UDP
 * socket. These tests check what is particular to it; the whole suite also
 * runs with PEERSOCK_IO=native (see .ci/run).
 */
import test from 'ava';
import { spawn } from 'node:child_process';
import dgram from 'node:dgram';
import { once } from 'node:events';

import { IdleTimeoutError, InvalidArgumentError, PeerSocket, type PeerConnection } from '../src/index';
import { Source, createSocket, echo, readAll, target, waitFor, writeAll } from './helpers';

const native = { io: 'native' as const };

test('a stream echoes 32 MiB intact between two native sockets; datagrams arrive in batches', async (t) => {
  const a = await createSocket(t, native);
  const b = await createSocket(t, native);
  a.on('connection', (c: PeerConnection) => echo(c));
  const conn = await b.connect(target(a));
  const s = conn.openStream();
  const src = new Source(32 * 1024 * 1024, 3);
  const [sent, got] = await Promise.all([writeAll(s, src), readAll(s)]);
  t.is(got.bytes, sent.bytes);
  t.is(got.sha256, sent.sha256);
  const stats = b.stats().io!;
  t.log(stats);
  // Batching: more datagrams than receive calls, sends and calls into JavaScript.
  t.true(stats.datagramsIn > 2 * stats.recvCalls, 'received in batches');
  t.true(stats.datagramsIn > 2 * stats.jsCalls, 'JavaScript called once per batch, not per datagram');
});

test('a native socket and a dgram socket talk both ways', async (t) => {
  const n = await createSocket(t, native);
  const d = await createSocket(t, { io: 'dgram' });
  n.on('connection', (c: PeerConnection) => echo(c));
  d.on('connection', (c: PeerConnection) => echo(c));
  for (const [from, to] of [
    [d, n],
    [n, d],
  ] as const) {
    const conn = await from.connect(target(to));
    const s = conn.openStream();
    const src = new Source(1024 * 1024, 5);
    const [sent, got] = await Promise.all([writeAll(s, src), readAll(s)]);
    t.is(got.sha256, sent.sha256);
    await conn.close();
  }
});

test("non-QUIC datagrams reach 'raw'; sendRaw uses the native socket", async (t) => {
  const n = await createSocket(t, native);
  const u = dgram.createSocket('udp4');
  t.teardown(() => u.close());
  await new Promise<void>((r) => u.bind(0, '127.0.0.1', r));
  const raw = once(n, 'raw');
  u.send(Buffer.from([0x01, 2, 3]), n.address().port, '127.0.0.1');
  const [data, from] = (await raw) as [Buffer, { address: string; port: number }];
  t.deepEqual([...data], [1, 2, 3]);
  t.is(from.port, u.address().port);
  const back = once(u, 'message');
  await n.sendRaw(new Uint8Array([0x02, 9]), u.address().port, '127.0.0.1');
  const [msg, rinfo] = (await back) as [Buffer, dgram.RemoteInfo];
  t.deepEqual([...msg], [2, 9]);
  t.is(rinfo.port, n.address().port);
});

test('timers run on the native loop: an idle connection times out, keep-alive keeps one open', async (t) => {
  const a = await createSocket(t, { ...native, idleTimeout: 400, keepAlive: 0 });
  const b = await createSocket(t, { ...native, idleTimeout: 400, keepAlive: 0 });
  const conn = await b.connect(target(a));
  const info = await conn.closed;
  t.true(info.error instanceof IdleTimeoutError);
  const c = await createSocket(t, { ...native, idleTimeout: 400, keepAlive: 100 });
  const kept = await c.connect(target(a));
  await new Promise((r) => setTimeout(r, 1200));
  t.is(kept.closeInfo, undefined);
});

test('a dialed connection migrates to a fresh local socket and keeps working', async (t) => {
  const a = await createSocket(t, native);
  const b = await createSocket(t, native);
  a.on('connection', (c: PeerConnection) => echo(c));
  const conn = await b.connect(target(a));
  const before = conn.localAddress.port;
  await conn.migrate();
  t.not(conn.localAddress.port, before);
  const s = conn.openStream();
  const src = new Source(2 * 1024 * 1024, 7);
  const [sent, got] = await Promise.all([writeAll(s, src), readAll(s)]);
  t.is(got.sha256, sent.sha256);
});

test('bad io options are typed errors', async (t) => {
  await t.throwsAsync(PeerSocket.bind({ io: 'fast' as never }), { instanceOf: InvalidArgumentError });
  const u = await PeerSocket.bind({ host: '127.0.0.1' });
  t.teardown(() => u.close());
  const transport = { send() {}, onDatagram() {}, onError() {}, address: () => u.address(), close: async () => {} };
  await t.throwsAsync(PeerSocket.bind({ io: 'native', transport }), { instanceOf: InvalidArgumentError });
  // The port is taken: the native bind fails with a typed error too.
  const n = await createSocket(t, native);
  const err = await t.throwsAsync(PeerSocket.bind({ ...native, host: '127.0.0.1', port: n.address().port }));
  t.truthy(err && 'code' in err);
});

test('after close() the process exits on its own (the native handles are closed)', async (t) => {
  const script = `
    const { PeerSocket } = require('./src/index');
    (async () => {
      const a = await PeerSocket.bind({ host: '127.0.0.1', io: 'native' });
      const b = await PeerSocket.bind({ host: '127.0.0.1', io: 'native' });
      const c = await b.connect({ publicKey: a.publicKey, host: '127.0.0.1', port: a.address().port });
      c.openStream().end('x');
      await new Promise((r) => setTimeout(r, 100));
      await b.close();
      await a.close();
    })();
  `;
  const child = spawn(process.execPath, ['--import', 'tsx', '-e', script], { cwd: process.cwd(), stdio: 'inherit' });
  const started = Date.now();
  const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
  const [code] = (await once(child, 'exit')) as [number | null];
  clearTimeout(timer);
  t.is(code, 0);
  t.true(Date.now() - started < 15_000);
});

test('many connections at once on one native socket', async (t) => {
  const a = await createSocket(t, native);
  let accepted = 0;
  a.on('connection', () => accepted++);
  const dialers = await Promise.all(Array.from({ length: 20 }, () => createSocket(t, native)));
  await Promise.all(dialers.map((d) => d.connect(target(a))));
  await waitFor('all accepted', 5000, () => accepted === 20);
  t.is(a.connections.length, 20);
});
