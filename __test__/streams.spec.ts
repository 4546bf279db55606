/**
 * PeerStream over real loopback UDP: bulk echo, many concurrent streams,
 * unidirectional streams, half-close, reset/stop codes, backpressure and
 * writes after the connection is gone.
 *
 * Every test is serial: they move hundreds of MiB and the backpressure test
 * measures this process's memory, which a concurrent transfer would disturb.
 */
import { Writable } from 'node:stream';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import test, { type ExecutionContext } from 'ava';

import { ClosedError, InvalidArgumentError, PeerClosedError, PeersockError, StreamResetError, StreamStoppedError } from '../src/errors';
import { PeerSocket } from '../src/peer-socket';
import { PeerReadStream, type PeerStream } from '../src/stream';
import { Source, drained, echo, lossyTransport, nextStream, nextUniStream, pair, readAll, sleep, waitFor, within, writeAll, type Loopback } from './helpers';

const MiB = 1024 * 1024;

/** An error carrying a QUIC application code, as `destroy(err)` takes it. */
function appError(appCode: number): Error {
  return Object.assign(new Error(`app error ${appCode}`), { appCode });
}

/** Resolves with the stream's 'error' (rejects if it closes without one). */
function errorOf(s: PeerStream | PeerReadStream): Promise<Error> {
  return new Promise((resolve, reject) => {
    s.once('error', resolve);
    s.once('close', () => setImmediate(() => reject(new Error(`stream ${s.id} closed without an error`))));
  });
}

/** Asserts `err` is the given peersock error class with its stable code and app code. */
function isAppError(
  t: ExecutionContext,
  err: unknown,
  cls: typeof StreamResetError | typeof StreamStoppedError,
  appCode: number,
): void {
  t.true(err instanceof cls, `expected ${cls.name}, got ${String(err)}`);
  t.true(err instanceof PeersockError);
  t.is((err as StreamResetError).code, cls.code);
  t.is((err as StreamResetError).appCode, appCode);
}

/** Writes `src` until write() returns false and no 'drain' follows for `quietMs`: the peer's window is full. */
async function fillWindow(s: PeerStream, src: Source, quietMs = 300): Promise<void> {
  for (;;) {
    const chunk = src.next();
    if (chunk === null) throw new Error('source ran out before the window filled');
    if (s.write(chunk)) continue;
    const timedOut = await Promise.race([drained(s).then(() => false), sleep(quietMs).then(() => true)]);
    if (timedOut) return;
  }
}

/** Forces a full garbage collection, so memory baselines are stable. */
const gc: () => void = (() => {
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
})();

// ─── bulk data ──────────────────────────────────────────────────────────────

const echo64MiB = test.macro({
  async exec(t, host: Loopback) {
    t.timeout(60_000);
    const { connAB, connBA } = await pair(t, { host });
    echo(connBA);
    const s = connAB.openStream();
    const [sent, received] = await within(
      50_000,
      '64 MiB echo',
      Promise.all([writeAll(s, new Source(64 * MiB, 1)), readAll(s)]),
    );
    t.is(sent.bytes, 64 * MiB);
    t.deepEqual(received, sent);
  },
  title: (_, host: Loopback) => `64 MiB through one stream and back, SHA-256 equal (${host})`,
});

test.serial(echo64MiB, '127.0.0.1');
test.serial(echo64MiB, '::1');

test.serial('100 concurrent bidirectional streams of 1 MiB each are echoed intact', async (t) => {
  t.timeout(60_000);
  const { connAB, connBA } = await pair(t);
  echo(connBA);
  const transfers = Array.from({ length: 100 }, async (_, i) => {
    const s = connAB.openStream();
    const [sent, received] = await Promise.all([writeAll(s, new Source(MiB, 100 + i, 16 * 1024)), readAll(s)]);
    return { i, id: s.id, sent, received };
  });
  const results = await within(50_000, '100 streams', Promise.all(transfers));
  t.is(new Set(results.map((r) => r.id)).size, 100, 'each stream has its own ID');
  for (const { i, sent, received } of results) {
    t.is(received.bytes, MiB, `stream ${i} length`);
    t.is(received.sha256, sent.sha256, `stream ${i} hash`);
  }
  // Different seeds: a mixed-up delivery could not pass the per-stream hash check.
  t.is(new Set(results.map((r) => r.sent.sha256)).size, 100);
});

test.serial('streams may carry their first bytes in any order: a lower ID used after a higher one still arrives', async (t) => {
  t.timeout(20_000);
  const { connAB, connBA } = await pair(t);
  const seen: number[] = [];
  const payloads = new Map<number, Promise<Buffer>>();
  connBA.on('stream', (s: PeerStream) => {
    seen.push(s.id);
    payloads.set(s.id, new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      s.on('data', (c: Buffer) => chunks.push(c)).once('end', () => resolve(Buffer.concat(chunks))).once('error', reject);
    }));
  });
  const first = connAB.openStream();
  const second = connAB.openStream();
  t.true(first.id < second.id);
  // The higher ID is used first; QUIC lets a peer use its streams in any order.
  const secondSeen = nextStream(connBA);
  second.end('second');
  await within(5_000, 'second stream', secondSeen);
  const firstSeen = nextStream(connBA);
  first.end('first');
  await within(5_000, 'the lower-ID stream used later', firstSeen);
  t.deepEqual(seen, [second.id, first.id]);
  t.is((await payloads.get(first.id))?.toString(), 'first');
  t.is((await payloads.get(second.id))?.toString(), 'second');
});

// ─── unidirectional streams ────────────────────────────────────────────────

const uniStream = test.macro({
  async exec(t, direction: 'client→server' | 'server→client') {
    t.timeout(20_000);
    const { connAB, connBA } = await pair(t);
    const [opener, acceptor] = direction === 'client→server' ? [connAB, connBA] : [connBA, connAB];
    const incoming = nextUniStream(acceptor);
    const w = opener.openStream({ unidirectional: true });
    t.true(w.unidirectional);
    t.true(w.local);
    t.true(w.writable, 'sending side is writable');
    t.false(w.readable, 'sending side is not readable');

    const src = new Source(2 * MiB, 7);
    const sending = writeAll(w, src);
    const r = await within(10_000, 'incoming stream', incoming);
    t.is(r.id, w.id);
    t.true(r.unidirectional);
    t.false(r.local);
    t.true(r.readable, 'receiving side is readable');
    t.true(r instanceof PeerReadStream && !(r instanceof Writable), 'receiving side is a Readable, not a Writable');

    const [sent, received] = await within(10_000, 'uni transfer', Promise.all([sending, readAll(r)]));
    t.deepEqual(received, sent);

    // Both ends close once their one direction is done.
    await within(5_000, 'uni streams close', Promise.all([closeOf(w), closeOf(r)]));

    // The receive-only side has nothing to write into: an echo cannot write into it by mistake.
    t.is((r as unknown as { write?: unknown }).write, undefined);
  },
  title: (_, direction: string) => `unidirectional stream ${direction}: sender writable only, receiver readable only`,
});

/** Resolves once the stream has emitted 'close'. */
function closeOf(s: PeerStream | PeerReadStream): Promise<void> {
  return s.closed ? Promise.resolve() : new Promise((resolve) => s.once('close', () => resolve()));
}

test.serial(uniStream, 'client→server');
test.serial(uniStream, 'server→client');

// ─── half-close ────────────────────────────────────────────────────────────

test.serial('half-close: client ends its write side, server still sends and client receives', async (t) => {
  t.timeout(20_000);
  const { connAB, connBA } = await pair(t);
  const response = new Source(2 * MiB, 21);
  const server = (async () => {
    const s = await nextStream(connBA);
    const request = await readAll(s); // resolves on the client's FIN
    t.false(s.writableEnded, 'server write side still open after client FIN');
    const sent = await writeAll(s, response);
    return { request, sent };
  })();

  const c = connAB.openStream();
  const request = new Source(256 * 1024, 20);
  const clientSent = await writeAll(c, request);
  const received = await within(10_000, 'response after client FIN', readAll(c));
  const srv = await within(10_000, 'server', server);
  t.deepEqual(srv.request, clientSent);
  t.deepEqual(received, srv.sent);
  t.is(received.bytes, 2 * MiB);
});

test.serial('half-close: server ends its write side, client keeps writing and server receives', async (t) => {
  t.timeout(20_000);
  const { connAB, connBA } = await pair(t);
  const reply = new Source(64 * 1024, 30);
  const server = (async () => {
    const s = await nextStream(connBA);
    const receiving = readAll(s);
    const sent = await writeAll(s, reply); // ends the server's side
    return { sent, received: await receiving };
  })();

  const c = connAB.openStream();
  const request = new Source(2 * MiB, 31);
  // The first chunk makes the stream exist on the server.
  c.write(request.next()!);
  const fromServer = await within(10_000, "server's FIN", readAll(c));
  t.false(c.writableEnded, 'client write side still open after server FIN');
  // Everything else is written after the client saw the server's FIN.
  const clientSent = await writeAll(c, request);
  const srv = await within(10_000, 'server', server);
  t.deepEqual(fromServer, srv.sent);
  t.deepEqual(srv.received, clientSent);
  t.is(srv.received.bytes, 2 * MiB);
});

// ─── reset and stop codes ──────────────────────────────────────────────────

test.serial('writer destroy(appCode 7) on a unidirectional stream: reader gets StreamResetError 7', async (t) => {
  t.timeout(20_000);
  const { connAB, connBA } = await pair(t);
  const w = connAB.openStream({ unidirectional: true });
  const own = errorOf(w);
  const incoming = nextUniStream(connBA);
  w.write(Buffer.alloc(4096, 1));
  const r = await within(10_000, 'incoming stream', incoming);
  const failed = errorOf(r);
  await new Promise((resolve) => r.once('data', resolve)); // reading, so the reset is seen
  w.destroy(appError(7));
  isAppError(t, await within(10_000, 'reset', failed), StreamResetError, 7);
  t.is(((await own) as Error & { appCode: number }).appCode, 7, 'the writer sees its own error');
});

test.serial('writer destroy(appCode 7) on a bidirectional stream: the peer sees code 7 (reset or stop)', async (t) => {
  t.timeout(20_000);
  const { connAB, connBA } = await pair(t);
  const w = connAB.openStream();
  w.on('error', () => {});
  const incoming = nextStream(connBA);
  w.write(Buffer.alloc(4096, 1));
  const r = await within(10_000, 'incoming stream', incoming);
  const failed = errorOf(r);
  await new Promise((resolve) => r.once('data', resolve));
  w.destroy(appError(7));
  // destroy() resets our write side and stops the peer's: both carry 7.
  const err = await within(10_000, 'reset', failed);
  isAppError(t, err, err instanceof StreamStoppedError ? StreamStoppedError : StreamResetError, 7);
});

test.serial('destroy(appCode 7) seen by a peer that only writes: StreamStoppedError 7', async (t) => {
  t.timeout(20_000);
  const { connAB, connBA } = await pair(t);
  const c = connAB.openStream();
  c.on('error', () => {});
  const incoming = nextStream(connBA);
  c.write('hi');
  const s = await within(10_000, 'incoming stream', incoming);
  const failed = errorOf(s);
  // The server never reads; it only writes, so STOP_SENDING is what reaches it.
  const writing = fillWindow(s, new Source(64 * MiB, 40)).catch(() => {});
  await sleep(100);
  c.destroy(appError(7));
  isAppError(t, await within(10_000, 'stop', failed), StreamStoppedError, 7);
  await writing;
});

test.serial('reader destroy(appCode 9): the writer\'s pending and next writes fail with StreamStoppedError 9', async (t) => {
  t.timeout(20_000);
  const { connAB, connBA } = await pair(t);
  const w = connAB.openStream();
  const failed = errorOf(w);
  const incoming = nextStream(connBA);
  // Fill the server's receive window (it never reads), so a write is in flight.
  await within(10_000, 'fill window', fillWindow(w, new Source(64 * MiB, 50)));
  const r = await incoming;
  r.on('error', () => {});
  const blocked = drained(w);
  const pendingWrite = new Promise<Error | null | undefined>((resolve) => w.write(Buffer.alloc(1024), resolve));

  r.destroy(appError(9));

  isAppError(t, await within(10_000, 'stop', failed), StreamStoppedError, 9);
  isAppError(t, await pendingWrite, StreamStoppedError, 9);
  isAppError(t, await blocked.then(() => undefined, (e: unknown) => e), StreamStoppedError, 9);
  isAppError(t, w.errored, StreamStoppedError, 9);
  // Later writes fail (node:stream reports the destroyed stream) without throwing.
  const later = await new Promise<Error | null | undefined>((resolve) => w.write('more', resolve));
  t.truthy(later);
});

test.serial('reader destroy(appCode 9) on a unidirectional stream: writer gets StreamStoppedError 9', async (t) => {
  t.timeout(20_000);
  const { connAB, connBA } = await pair(t);
  const w = connAB.openStream({ unidirectional: true });
  const failed = errorOf(w);
  const incoming = nextUniStream(connBA);
  const writing = fillWindow(w, new Source(64 * MiB, 60)).catch(() => {});
  const r = await within(10_000, 'incoming stream', incoming);
  r.on('error', () => {});
  r.destroy(appError(9));
  isAppError(t, await within(10_000, 'stop', failed), StreamStoppedError, 9);
  await writing;
});

// ─── backpressure ──────────────────────────────────────────────────────────

test.serial('backpressure: a paused reader holds a 256 MiB writer to bounded memory, then all arrives', async (t) => {
  t.timeout(90_000);
  const TOTAL = 256 * MiB;
  const PAUSE_MS = 2000;
  const { connAB, connBA } = await pair(t);
  const w = connAB.openStream();
  const incoming = nextStream(connBA);
  const src = new Source(TOTAL, 70);

  gc();
  const before = process.memoryUsage();
  let sawFalse = false;
  const writing = (async () => {
    for (let chunk = src.next(); chunk !== null; chunk = src.next()) {
      if (!w.write(chunk)) {
        sawFalse = true;
        await drained(w);
      }
    }
    w.end();
    return src.digest();
  })();

  const r = await within(10_000, 'incoming stream', incoming);
  // The reader does not read for PAUSE_MS; sample memory meanwhile.
  const peak = { rss: 0, external: 0, arrayBuffers: 0 };
  const started = Date.now();
  while (Date.now() - started < PAUSE_MS) {
    await sleep(100);
    const m = process.memoryUsage();
    peak.rss = Math.max(peak.rss, m.rss);
    peak.external = Math.max(peak.external, m.external);
    peak.arrayBuffers = Math.max(peak.arrayBuffers, m.arrayBuffers);
  }
  const writtenDuringPause = src.offset;
  const growth = {
    rss: (peak.rss - before.rss) / MiB,
    external: (peak.external - before.external) / MiB,
    arrayBuffers: (peak.arrayBuffers - before.arrayBuffers) / MiB,
  };
  t.log(`written during pause: ${(writtenDuringPause / MiB).toFixed(2)} MiB; rss before ${(before.rss / MiB).toFixed(1)} MiB; growth MiB: ${JSON.stringify(growth, (_, v: unknown) => (typeof v === 'number' ? Number(v.toFixed(2)) : v))}`);
  t.true(sawFalse, 'write() returned false during the pause');
  t.true(writtenDuringPause < 64 * MiB, `writer got only a window's worth through (${writtenDuringPause} bytes)`);
  t.true(growth.rss < 100, `rss grew ${growth.rss.toFixed(1)} MiB`);
  t.true(growth.external < 100, `external grew ${growth.external.toFixed(1)} MiB`);
  t.true(growth.arrayBuffers < 100, `arrayBuffers grew ${growth.arrayBuffers.toFixed(1)} MiB`);

  // Resume: everything arrives, in order.
  const resumed = Date.now();
  const [sent, received] = await within(60_000, '256 MiB after resume', Promise.all([writing, readAll(r)]));
  t.log(`256 MiB delivered ${Date.now() - resumed} ms after resume`);
  t.is(sent.bytes, TOTAL);
  t.deepEqual(received, sent);
});

// Regression (fixed in 1e83086): a blocked writer used to be woken only once
// 16 KiB could be sent, but a loss early in slow start leaves the congestion
// window below that, and with nothing in flight it never grows again.
test.serial('a writer blocked by congestion control is woken after an early loss', async (t) => {
  t.timeout(20_000);
  let armed = false;
  let dropped = 0;
  // Once armed, drop the client's first two full-size packets: one loss event.
  const transport = await lossyTransport('127.0.0.1', (d) => {
    if (!armed || d.length < 1000 || dropped === 2) return false;
    dropped++;
    return true;
  });
  const { connAB, connBA } = await pair(t, { b: { transport } });
  const received = nextStream(connBA).then(readAll);
  received.catch(() => {}); // awaited below unless the writer stalls
  armed = true;
  const w = connAB.openStream();
  w.on('error', () => {}); // the teardown's close must not become an uncaught error
  const sent = await within(5_000, '1 MiB write after a loss', writeAll(w, new Source(MiB, 90)));
  t.is(dropped, 2);
  t.deepEqual(await within(5_000, '1 MiB read', received), sent);
});

// ─── writes after the connection closed ────────────────────────────────────

test.serial('local close: blocked, in-progress and later writes fail with ClosedError, nothing throws', async (t) => {
  t.timeout(20_000);
  const { connAB, connBA } = await pair(t);
  connBA.on('stream', (s: PeerStream) => s.on('error', () => {})); // never reads
  const w = connAB.openStream();
  const failed = errorOf(w);
  await within(10_000, 'fill window', fillWindow(w, new Source(64 * MiB, 80)));
  const blocked = drained(w);
  const pendingWrite = new Promise<Error | null | undefined>((resolve) => w.write(Buffer.alloc(1024), resolve));
  const idle = connAB.openStream(); // opened, never written
  const idleFailed = errorOf(idle);

  const closing = connAB.close({ code: 3, reason: 'bye' });
  // A write while the close is under way fails with ClosedError.
  const duringClose = await new Promise<Error | null | undefined>((resolve) => idle.write('x', resolve));
  t.true(duringClose instanceof ClosedError, `got ${String(duringClose)}`);
  t.is((duringClose as ClosedError).code, 'ERR_PEERSOCK_CLOSED');

  await within(10_000, 'close', closing);
  for (const err of [await failed, await pendingWrite, await blocked.then(() => undefined, (e: unknown) => e), await idleFailed]) {
    t.true(err instanceof ClosedError, `got ${String(err)}`);
    t.is((err as ClosedError).code, 'ERR_PEERSOCK_CLOSED');
  }
  const later = await new Promise<Error | null | undefined>((resolve) => w.write('more', resolve));
  t.truthy(later, 'a write to the destroyed stream reports an error');
  t.true(w.errored instanceof ClosedError);
  t.throws(() => connAB.openStream(), { instanceOf: ClosedError });
});

test.serial('peer close: streams fail with PeerClosedError carrying the code, later writes fail, nothing throws', async (t) => {
  t.timeout(20_000);
  const { connAB, connBA } = await pair(t);
  const incoming = nextStream(connBA);
  const w = connAB.openStream();
  const failed = errorOf(w);
  w.write('hello');
  const s = await within(10_000, 'incoming stream', incoming);
  s.on('error', () => {});

  await within(10_000, 'peer close', connBA.close({ code: 5, reason: 'done' }));
  const err = await within(10_000, 'stream error', failed);
  t.true(err instanceof PeerClosedError, `got ${String(err)}`);
  t.true(err instanceof PeersockError);
  t.is((err as PeerClosedError).code, 'ERR_PEERSOCK_PEER_CLOSED');
  t.is((err as PeerClosedError).appCode, 5);

  const later = await new Promise<Error | null | undefined>((resolve) => w.write('more', resolve));
  t.truthy(later);
  t.throws(() => connAB.openStream(), { instanceOf: ClosedError });
  t.is((await connAB.closed).remote, true);
});

test('stream priority: a low-urgency stream yields to an urgent one; bad arguments throw typed errors', async (t) => {
  const { connAB, connBA } = await pair(t);
  const arrivals: string[] = [];
  connBA.on('unidirectionalStream', (s: PeerReadStream) => {
    const chunks: Buffer[] = [];
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('end', () => arrivals.push(Buffer.concat(chunks).subarray(0, 4).toString()));
  });
  const bulk = connAB.openStream({ unidirectional: true }).setPriority(7, false);
  const urgent = connAB.openStream({ unidirectional: true }).setPriority(0);
  // Both are queued in the same turn, within flow-control windows (a
  // unidirectional stream starts with 256 KiB). Shared round robin would
  // finish the smaller bulk stream first (checked: with equal priorities
  // this test fails); by priority the bigger urgent one, written second, is
  // sent and arrives first.
  bulk.end(Buffer.concat([Buffer.from('bulk'), Buffer.alloc(100 * 1024)]));
  urgent.end(Buffer.concat([Buffer.from('urgent'), Buffer.alloc(220 * 1024)]));
  await waitFor('both streams arrive', 10_000, () => arrivals.length >= 2);
  t.deepEqual(arrivals, ['urge', 'bulk']);
  const s = connAB.openStream();
  for (const bad of [-1, 8, 1.5, NaN]) {
    const err = t.throws(() => s.setPriority(bad));
    t.true(err instanceof PeersockError && err.code === 'ERR_PEERSOCK_INVALID_ARGUMENT', String(err));
  }
});

// ─── initial stream windows ───────────────────────────────────────────────

/**
 * Opens one stream of `kind` from b to a (bound with `opts`), fills the
 * window of a reader that never reads, and returns how many bytes a's
 * connection received meanwhile: the window a announced, plus what its
 * stream buffers (≤ 64 KiB) and packet overhead.
 */
async function windowSeen(t: ExecutionContext, kind: 'uni' | 'bidi', opts: { initialMaxStreamData: number; initialMaxStreamDataUni: number }): Promise<number> {
  const { connAB, connBA } = await pair(t, { a: opts });
  const incoming = kind === 'uni' ? nextUniStream(connBA) : nextStream(connBA);
  const before = connBA.stats().recvBytes;
  const w = connAB.openStream({ unidirectional: kind === 'uni' });
  w.on('error', () => {});
  await within(10_000, 'fill window', fillWindow(w, new Source(64 * MiB, 90)));
  const r = await incoming;
  r.on('error', () => {});
  return connBA.stats().recvBytes - before;
}

test('initialMaxStreamData and initialMaxStreamDataUni set the window each kind of stream gets', async (t) => {
  t.timeout(60_000);
  const KiB = 1024;
  const small = 32 * KiB;
  const big = 768 * KiB;
  const slack = 112 * KiB; // the reader's stream buffer and packet headers
  const seen = {
    uniSmall: await windowSeen(t, 'uni', { initialMaxStreamData: big, initialMaxStreamDataUni: small }),
    bidiBig: await windowSeen(t, 'bidi', { initialMaxStreamData: big, initialMaxStreamDataUni: small }),
    uniBig: await windowSeen(t, 'uni', { initialMaxStreamData: small, initialMaxStreamDataUni: big }),
    bidiSmall: await windowSeen(t, 'bidi', { initialMaxStreamData: small, initialMaxStreamDataUni: big }),
  };
  t.log(seen);
  for (const [name, got] of Object.entries(seen)) {
    const want = name.endsWith('Small') ? small : big;
    t.true(got >= want && got <= want + slack, `${name}: ${got} B received, window ${want} B`);
  }
  for (const bad of [0, -1, 1.5, Number.NaN, 1 << 30, '65536']) {
    await t.throwsAsync(PeerSocket.bind({ host: '127.0.0.1', initialMaxStreamDataUni: bad as number }), { instanceOf: InvalidArgumentError }, `initialMaxStreamDataUni ${String(bad)}`);
  }
});
