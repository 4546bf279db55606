/**
 * PeerSocket and PeerConnection over real UDP on loopback: identity, accept
 * hook, datagrams, simultaneous dial/accept, timeouts, close, hostile input.
 */
import test, { type ExecutionContext } from 'ava';
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import { once } from 'node:events';

import {
  ClosedError,
  ConnectionRefusedError,
  DatagramTooLargeError,
  HandshakeTimeoutError,
  IdentityMismatchError,
  IdleTimeoutError,
  InvalidArgumentError,
  PeerConnection,
  PeerSocket,
  PeersockError,
  UdpTransport,
  encodeKey,
  keyPair,
  keysEqual,
  type BindOptions,
  type DatagramTransport,
  type SocketExtension,
} from '../src/index';
import { target } from './helpers';

/** Binds a socket that is closed when the test ends. */
async function sock(t: ExecutionContext, host = '127.0.0.1', opts: BindOptions = {}): Promise<PeerSocket> {
  const s = await PeerSocket.bind({ host, port: 0, ...opts });
  t.teardown(() => s.close());
  return s;
}

function nextConnection(s: PeerSocket): Promise<PeerConnection> {
  return once(s, 'connection').then(([c]) => c as PeerConnection);
}

for (const host of ['127.0.0.1', '::1']) {
  test(`A dials B by key and both see each other's key (${host})`, async (t) => {
    const a = await sock(t, host);
    const b = await sock(t, host);
    const accepted = nextConnection(b);
    const conn = await a.connect(target(b));
    const server = await accepted;
    t.true(keysEqual(conn.remotePublicKey, b.publicKey));
    t.true(keysEqual(server.remotePublicKey, a.publicKey));
    t.is(server.remoteAddress.port, a.address().port);
    t.is(conn.remoteAddress.port, b.address().port);
    t.true(conn.isClient);
    t.false(server.isClient);
  });
}

test('dial string form connects', async (t) => {
  const a = await sock(t);
  const b = await sock(t);
  const conn = await a.connect(`${encodeKey(b.publicKey)}@127.0.0.1:${b.address().port}`);
  t.true(keysEqual(conn.remotePublicKey, b.publicKey));
});

test("B's accept hook refuses A with a typed error on A's side", async (t) => {
  const seen: string[] = [];
  const a = await sock(t);
  const b = await sock(t, '127.0.0.1', {
    accept: (key, addr) => {
      seen.push(`${encodeKey(key)} ${addr.port}`);
      return false;
    },
  });
  let connections = 0;
  b.on('connection', () => connections++);
  const err = await t.throwsAsync(a.connect(target(b), { timeout: 5000 }), { instanceOf: ConnectionRefusedError });
  t.is(err?.code, 'ERR_PEERSOCK_CONNECTION_REFUSED');
  t.regex(err?.message ?? '', /accept hook/);
  t.deepEqual(seen, [`${encodeKey(a.publicKey)} ${a.address().port}`]);
  t.is(connections, 0);
});

test('dialing the right address with the wrong key fails with the identity error fast; B keeps serving', async (t) => {
  const a = await sock(t);
  const b = await sock(t);
  let bConnections = 0;
  let bData = 0;
  b.on('connection', (c: PeerConnection) => {
    bConnections++;
    c.on('stream', (s) => s.on('data', (d: Buffer) => (bData += d.length)));
    c.on('datagram', () => bData++);
  });
  const wrong = keyPair().publicKey;
  const started = Date.now();
  const err = await t.throwsAsync(a.connect({ ...target(b), publicKey: wrong }), { instanceOf: IdentityMismatchError });
  const elapsed = Date.now() - started;
  t.true(elapsed <= 2000, `identity error after ${elapsed} ms`);
  t.is(err?.code, 'ERR_PEERSOCK_IDENTITY_MISMATCH');
  t.true(err instanceof PeersockError);
  t.true(keysEqual(err!.expected!, wrong));
  t.true(keysEqual(err!.actual!, b.publicKey));
  t.is(bConnections, 0, 'B never accepted the mismatched dial');
  t.is(bData, 0);
  // B still serves a correct dial.
  const c = await sock(t);
  const ok = await c.connect(target(b));
  t.true(keysEqual(ok.remotePublicKey, b.publicKey));
  t.is(bConnections, 1);
});

test('datagrams flow both ways; one larger than the path allows gives a typed error', async (t) => {
  const a = await sock(t);
  const b = await sock(t);
  b.on('connection', (c: PeerConnection) => c.on('datagram', (d: Uint8Array) => c.sendDatagram(Buffer.concat([Buffer.from('echo:'), d]))));
  const conn = await a.connect(target(b));
  const got: string[] = [];
  const want = 20;
  const done = new Promise<void>((resolve) =>
    conn.on('datagram', (d: Uint8Array) => {
      got.push(Buffer.from(d).toString());
      if (got.length === want) resolve();
    }),
  );
  // Datagrams are unreliable: resend until enough echoes come back (loopback rarely drops).
  for (let i = 0; i < want; i++) conn.sendDatagram(Buffer.from(`d${i}`));
  const timer = setInterval(() => {
    for (let i = 0; i < want; i++) conn.sendDatagram(Buffer.from(`d${i}`));
  }, 200);
  await done;
  clearInterval(timer);
  t.true(got.every((g) => /^echo:d\d+$/.test(g)));
  const max = conn.maxDatagramSize;
  // Below the packet size: 1452 at most, or up to 16383 once discovery has
  // probed this loopback path (README "Packet size").
  t.true(max > 1000 && max < 16383, `max datagram ${max}`);
  t.true(conn.sendDatagram(new Uint8Array(max)));
  const err = t.throws(() => conn.sendDatagram(new Uint8Array(max + 1)), { instanceOf: DatagramTooLargeError });
  t.is(err?.code, 'ERR_PEERSOCK_DATAGRAM_TOO_LARGE');
  t.is(err?.maxSize, max);
});

test('one socket dials and accepts at the same time: A<->B both ways, and A with three peers', async (t) => {
  const a = await sock(t);
  const b = await sock(t);
  const aIn: PeerConnection[] = [];
  const bIn: PeerConnection[] = [];
  a.on('connection', (c: PeerConnection) => aIn.push(c));
  b.on('connection', (c: PeerConnection) => bIn.push(c));
  const [ab, ba] = await Promise.all([a.connect(target(b)), b.connect(target(a))]);
  t.true(keysEqual(ab.remotePublicKey, b.publicKey));
  t.true(keysEqual(ba.remotePublicKey, a.publicKey));
  const peers = await Promise.all([sock(t), sock(t), sock(t)]);
  const echo = (c: PeerConnection) => c.on('stream', (s) => s.pipe(s));
  for (const p of peers) p.on('connection', echo);
  const outs = await Promise.all(peers.map((p) => a.connect(target(p))));
  const ins = await Promise.all(peers.map((p) => p.connect(target(a))));
  t.is(outs.length + ins.length, 6);
  for (const c of outs) {
    const s = c.openStream();
    s.end('hello');
    const chunks: Buffer[] = [];
    for await (const d of s) chunks.push(d as Buffer);
    t.is(Buffer.concat(chunks).toString(), 'hello');
  }
  t.is(aIn.length, 4);
  t.is(bIn.length, 1);
  t.is(a.connections.length, 2 + 6);
});

test('idle timeout closes a silent connection; keep-alive keeps one open', async (t) => {
  const opts = { idleTimeout: 400 };
  const a = await sock(t, '127.0.0.1', opts);
  const b = await sock(t, '127.0.0.1', opts);
  // Every packet of this connection is received after `started`, so the idle
  // timer (reset by each received packet) cannot fire before 400 ms from here;
  // measuring from after connect() would include event-loop delay in CI.
  const started = Date.now();
  const conn = await a.connect(target(b));
  const info = await conn.closed;
  const elapsed = Date.now() - started;
  t.true(info.error instanceof IdleTimeoutError, `closed with ${String(info.error)}`);
  t.true(elapsed >= 395 && elapsed < 3000, `idle close after ${elapsed} ms`);

  const ka = { idleTimeout: 400, keepAlive: 100 };
  const c = await sock(t, '127.0.0.1', ka);
  const d = await sock(t, '127.0.0.1', ka);
  const kept = await c.connect(target(d));
  await new Promise((r) => setTimeout(r, 1500));
  t.is(kept.closeInfo, undefined, 'still open after 1.5 s of silence with keep-alive');
  const s = kept.openStream();
  t.truthy(s);
});

test('graceful close delivers code and reason; closed resolves on both sides', async (t) => {
  const a = await sock(t);
  const b = await sock(t);
  const accepted = nextConnection(b);
  const conn = await a.connect(target(b));
  const server = await accepted;
  const [local, remote] = await Promise.all([conn.close({ code: 42, reason: 'bye now' }), server.closed]);
  t.deepEqual({ code: remote.code, reason: remote.reason, remote: remote.remote }, { code: 42, reason: 'bye now', remote: true });
  t.is(remote.error, undefined);
  t.is(local.remote, false);
  t.is(local.code, 42);
  t.throws(() => conn.openStream(), { instanceOf: ClosedError });
  // close() is idempotent.
  t.is(await conn.close(), local);
});

test('after socket.close() the process exits on its own (no leaked handles or timers)', async (t) => {
  const script = `
    const { PeerSocket } = require(${JSON.stringify(require.resolve('../src/index'))});
    (async () => {
      const a = await PeerSocket.bind({ host: '127.0.0.1', idleTimeout: 60000, keepAlive: 1000 });
      const b = await PeerSocket.bind({ host: '127.0.0.1' });
      a.on('connection', (c) => c.on('stream', (s) => s.pipe(s)));
      const conn = await b.connect({ publicKey: a.publicKey, host: '127.0.0.1', port: a.address().port });
      const s = conn.openStream(); s.end('x');
      for await (const _ of s) {}
      await Promise.all([a.close(), b.close()]);
      console.log('closed');
    })();`;
  const child = spawn(process.execPath, ['--import', 'tsx', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), 15000);
  const [code, signal] = (await once(child, 'exit')) as [number | null, string | null];
  clearTimeout(timer);
  t.is(signal, null, 'child had to be killed: something kept the event loop alive');
  t.is(code, 0);
  t.is(out.trim(), 'closed');
});

test('10,000 random and truncated datagrams at a listening socket during a transfer: no crash, no new connection, transfer intact', async (t) => {
  const a = await sock(t);
  const b = await sock(t);
  let accepted = 0;
  a.on('connection', (c: PeerConnection) => {
    accepted++;
    c.on('stream', (s) => s.pipe(s));
  });
  const conn = await b.connect(target(a));
  const s = conn.openStream();
  const payload = randomBytes(8 * 1024 * 1024);
  const want = createHash('sha256').update(payload).digest('hex');
  const h = createHash('sha256');
  let got = 0;
  const done = new Promise<void>((resolve, reject) => {
    s.on('data', (d: Buffer) => {
      h.update(d);
      got += d.length;
    });
    s.on('end', resolve);
    s.on('error', reject);
  });
  s.end(payload);
  // Garbage from a separate UDP socket: random bytes, truncated packets, and
  // QUIC-looking long headers (Initial, Handshake, v1 and unknown versions).
  const junk = dgram.createSocket('udp4');
  t.teardown(() => junk.close());
  const port = a.address().port;
  for (let i = 0; i < 10_000; i++) {
    const kind = i % 4;
    let pkt: Buffer;
    if (kind === 0) pkt = randomBytes(1 + (i % 1400));
    else if (kind === 1) pkt = randomBytes(i % 40);
    else {
      pkt = randomBytes(kind === 2 ? 1200 : 60 + (i % 100));
      pkt[0] = kind === 2 ? 0xc0 : 0xe0 | (i & 0x0f); // long header, Initial or Handshake type
      pkt.writeUInt32BE(i % 7 === 0 ? 0x1a2a3a4a : 1, 1);
      pkt[5] = 16; // DCID length
    }
    junk.send(pkt, port, '127.0.0.1');
    if (i % 500 === 0) await new Promise((r) => setImmediate(r));
  }
  await done;
  t.is(got, payload.length);
  t.is(h.digest('hex'), want);
  t.is(accepted, 1, 'garbage created no connection');
  t.is(a.connections.length, 1);
  t.true(a.stats().dropped > 0);
});

test('bad arguments throw typed errors synchronously', async (t) => {
  const a = await sock(t);
  const key = a.publicKey;
  const bad = (f: () => unknown) => {
    const err = t.throws(f, { instanceOf: InvalidArgumentError });
    t.is(err?.code, 'ERR_PEERSOCK_INVALID_ARGUMENT');
  };
  bad(() => a.connect({ publicKey: new Uint8Array(31), host: '127.0.0.1', port: 1 }));
  bad(() => a.connect({ publicKey: key, host: '127.0.0.1', port: 0 }));
  bad(() => a.connect({ publicKey: key, host: '127.0.0.1', port: 70000 }));
  bad(() => a.connect({ publicKey: key, host: '', port: 1 }));
  bad(() => a.connect('not-a-key@127.0.0.1:1'));
  bad(() => a.connect(`${encodeKey(key)}@127.0.0.1`));
  bad(() => a.connect({ publicKey: key, host: '127.0.0.1', port: 1 }, { timeout: -1 }));
  await t.throwsAsync(PeerSocket.bind({ host: 'not an ip' }), { instanceOf: InvalidArgumentError });
  await t.throwsAsync(PeerSocket.bind({ port: 99999 }), { instanceOf: InvalidArgumentError });
  await t.throwsAsync(PeerSocket.bind({ keyPair: { publicKey: new Uint8Array(32), secretKey: new Uint8Array(3) } }), { instanceOf: InvalidArgumentError });
  // IPv6 target from an IPv4 socket: typed rejection, not a crash.
  await t.throwsAsync(a.connect({ publicKey: key, host: '::1', port: 1 }), { instanceOf: InvalidArgumentError });
});

test('dialing a port where nothing listens fails with a typed timeout error', async (t) => {
  const a = await sock(t);
  const silent = dgram.createSocket('udp4');
  await new Promise<void>((r) => silent.bind(0, '127.0.0.1', r));
  t.teardown(() => silent.close());
  const started = Date.now();
  const err = await t.throwsAsync(a.connect({ publicKey: keyPair().publicKey, host: '127.0.0.1', port: silent.address().port }, { timeout: 500 }), {
    instanceOf: HandshakeTimeoutError,
  });
  t.is(err?.code, 'ERR_PEERSOCK_HANDSHAKE_TIMEOUT');
  t.true(Date.now() - started < 3000);
  t.is(a.connections.length, 0);
});

test('an aborted dial rejects with AbortError', async (t) => {
  const a = await sock(t);
  const silent = dgram.createSocket('udp4');
  await new Promise<void>((r) => silent.bind(0, '127.0.0.1', r));
  t.teardown(() => silent.close());
  const ac = new AbortController();
  const p = a.connect({ publicKey: keyPair().publicKey, host: '127.0.0.1', port: silent.address().port }, { signal: ac.signal });
  setTimeout(() => ac.abort(), 50);
  const err = await t.throwsAsync(p);
  t.is(err?.name, 'AbortError');
  t.is((err as PeersockError).code, 'ERR_PEERSOCK_ABORTED');
});

test('no plaintext on the wire: a marker sent over streams and datagrams never appears in UDP payloads', async (t) => {
  const marker = Buffer.from('PLAINTEXT-MARKER-7f3a9c');
  const seen: Buffer[] = [];
  /** Wraps the UDP transport and keeps a copy of every datagram sent. */
  async function recording(): Promise<DatagramTransport> {
    const inner = await UdpTransport.bind({ host: '127.0.0.1', port: 0 });
    return {
      send: (data, port, address, done) => {
        seen.push(Buffer.from(data));
        inner.send(data, port, address, done);
      },
      onDatagram: (h) => inner.onDatagram(h),
      onError: (h) => inner.onError(h),
      address: () => inner.address(),
      close: () => inner.close(),
    };
  }
  const a = await sock(t, '127.0.0.1', { transport: await recording() });
  const b = await sock(t, '127.0.0.1', { transport: await recording() });
  const received: Buffer[] = [];
  a.on('connection', (c: PeerConnection) => {
    c.on('stream', (s) => s.on('data', (d: Buffer) => received.push(d)));
    c.on('datagram', (d: Uint8Array) => received.push(Buffer.from(d)));
  });
  const conn = await b.connect(target(a));
  const s = conn.openStream();
  s.end(Buffer.concat(Array.from({ length: 100 }, () => marker)));
  for (let i = 0; i < 10; i++) conn.sendDatagram(marker);
  await new Promise((r) => setTimeout(r, 300));
  // The marker did arrive, so it was on the wire in some form...
  t.true(Buffer.concat(received).includes(marker));
  // ...but never in the clear.
  t.true(seen.length > 5);
  t.false(seen.some((d) => d.includes(marker)));
  // Nor are the public keys visible in the handshake (certificates are encrypted in TLS 1.3).
  t.false(seen.some((d) => d.includes(Buffer.from(a.publicKey))));
});

test('non-QUIC datagrams reach the raw hook and sendRaw sends from the same port', async (t) => {
  const a = await sock(t);
  const b = await sock(t);
  const got = once(b, 'raw');
  await a.sendRaw(Buffer.from([0x01, 0x02, 0x03]), b.address().port, '127.0.0.1');
  const [data, from] = (await got) as [Buffer, { address: string; port: number }];
  t.deepEqual([...data], [1, 2, 3]);
  t.is(from.port, a.address().port);
  t.throws(() => a.sendRaw(Buffer.from([0x40]), 1, '127.0.0.1'), { instanceOf: InvalidArgumentError });
});

test('send errors (EMSGSIZE) hit only the connection to that address; others carry on', async (t) => {
  let failPort = -1;
  const inner = await UdpTransport.bind({ host: '127.0.0.1', port: 0 });
  const failing: DatagramTransport = {
    send: (data, port, address, done) => {
      if (port === failPort) {
        const e = Object.assign(new Error('send EMSGSIZE'), { code: 'EMSGSIZE', errno: -90 });
        setImmediate(() => done(e));
        return;
      }
      inner.send(data, port, address, done);
    },
    onDatagram: (h) => inner.onDatagram(h),
    onError: (h) => inner.onError(h),
    address: () => inner.address(),
    close: () => inner.close(),
  };
  const a = await sock(t, '127.0.0.1', { transport: failing });
  const b = await sock(t);
  const c = await sock(t);
  for (const p of [b, c]) p.on('connection', (k: PeerConnection) => k.on('stream', (s) => s.pipe(s)));
  const toB = await a.connect(target(b));
  const toC = await a.connect(target(c));
  const errors: PeersockError[] = [];
  const bErrors: PeersockError[] = [];
  toC.on('error', (e: PeersockError) => errors.push(e));
  toB.on('error', (e: PeersockError) => bErrors.push(e));
  failPort = c.address().port;
  toC.openStream().end('lost');
  const s = toB.openStream();
  s.end('still fine');
  const chunks: Buffer[] = [];
  for await (const d of s) chunks.push(d as Buffer);
  t.is(Buffer.concat(chunks).toString(), 'still fine');
  t.true(errors.length > 0);
  t.true(errors.every((e) => e.code === 'ERR_PEERSOCK_SOCKET' && (e as { syscallCode?: string }).syscallCode === 'EMSGSIZE'));
  t.is(toB.closeInfo, undefined);
  t.is(bErrors.length, 0);
});

test('bind: an extension that throws in attach fails the bind and leaves nothing open', async (t) => {
  const probe = dgram.createSocket('udp4');
  await new Promise<void>((r) => probe.bind(0, '127.0.0.1', r));
  const port = probe.address().port;
  await new Promise<void>((r) => probe.close(r));
  const events: string[] = [];
  const good: SocketExtension = { attach: () => events.push('good attached'), detach: () => events.push('good detached') };
  const bad: SocketExtension = {
    attach: () => {
      throw new InvalidArgumentError('refused');
    },
    detach: () => events.push('bad detached'),
  };
  await t.throwsAsync(PeerSocket.bind({ host: '127.0.0.1', port, extensions: [good, bad] }), { instanceOf: InvalidArgumentError, message: 'refused' });
  // Only what attached is detached, and the port is free again.
  t.deepEqual(events, ['good attached', 'good detached']);
  const again = await PeerSocket.bind({ host: '127.0.0.1', port });
  t.is(again.address().port, port);
  await again.close();
});
