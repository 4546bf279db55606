/**
 * Two peers on loopback in one process: B dials A by key, A echoes streams and
 * datagrams back, B checks the echoes and prints timings, then both close.
 * Run with `npm run demo` (node --import tsx scripts/demo.ts). Exits non-zero
 * with a message on the first failure, or after DEADLINE_MS in any case.
 */
import { createHash, randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';

import { PeerSocket, encodeKey, keysEqual, type CloseInfo, type PeerConnection } from '../src/index';

const DEADLINE_MS = 60_000;
const BULK_BYTES = 8 * 1024 * 1024;
const CHUNK_BYTES = 64 * 1024;
const PINGS = 20;
const PING_TIMEOUT_MS = 1000;

const sockets: PeerSocket[] = [];

/** Prints why the demo failed, tears the sockets down and exits 1. */
function fail(why: unknown): never {
  const err = why instanceof Error ? why : new Error(String(why));
  const code = (err as { code?: unknown }).code;
  console.error(`\ndemo FAILED: ${err.message}${typeof code === 'string' ? ` [${code}]` : ''}`);
  if (err.stack !== undefined && process.env['DEMO_VERBOSE'] !== undefined) console.error(err.stack);
  for (const s of sockets) s.destroy();
  process.exit(1);
}

function check(ok: boolean, what: string): void {
  if (!ok) fail(new Error(what));
}

const ms = (t0: number): number => performance.now() - t0;
const fmt = (n: number, digits = 1): string => n.toFixed(digits);
const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

/** Sends `data` on a fresh stream, reads the echo until FIN; returns the echo's length, hash and duration. */
async function echo(conn: PeerConnection, data: Buffer): Promise<{ length: number; hash: string; ms: number }> {
  const t0 = performance.now();
  const stream = conn.openStream();
  const reading = (async () => {
    const hash = createHash('sha256');
    let length = 0;
    for await (const chunk of stream) {
      hash.update(chunk as Buffer);
      length += (chunk as Buffer).length;
    }
    return { length, hash: hash.digest('hex') };
  })();
  // Write with backpressure: write() returns false while QUIC flow control is full.
  for (let off = 0; off < data.length; off += CHUNK_BYTES) {
    if (!stream.write(data.subarray(off, off + CHUNK_BYTES))) {
      await new Promise<void>((resolve, reject) => {
        const onDrain = (): void => {
          stream.off('error', onError);
          resolve();
        };
        const onError = (e: Error): void => {
          stream.off('drain', onDrain);
          reject(e);
        };
        stream.once('drain', onDrain);
        stream.once('error', onError);
      });
    }
  }
  stream.end();
  const got = await reading;
  return { ...got, ms: ms(t0) };
}

/** One datagram round trip: resolves with the RTT in ms, or undefined if nothing came back in time. */
function ping(conn: PeerConnection, seq: number): Promise<number | undefined> {
  const payload = Buffer.alloc(64);
  payload.write(`ping ${seq}`);
  return new Promise((resolve) => {
    const t0 = performance.now();
    const onDatagram = (d: Uint8Array): void => {
      if (!Buffer.from(d).equals(payload)) return; // a late echo of an earlier ping
      clearTimeout(timer);
      conn.off('datagram', onDatagram);
      resolve(ms(t0));
    };
    const timer = setTimeout(() => {
      conn.off('datagram', onDatagram);
      resolve(undefined);
    }, PING_TIMEOUT_MS);
    conn.on('datagram', onDatagram);
    conn.sendDatagram(payload);
  });
}

async function main(): Promise<void> {
  console.log('peersock demo: two peers on loopback, one process\n');

  const a = await PeerSocket.bind({ host: '127.0.0.1', port: 0 });
  sockets.push(a);
  const b = await PeerSocket.bind({ host: '127.0.0.1', port: 0 });
  sockets.push(b);
  for (const s of sockets) s.on('error', fail);
  const portA = a.address().port;
  console.log(`  A  ${encodeKey(a.publicKey)}  127.0.0.1:${portA}`);
  console.log(`  B  ${encodeKey(b.publicKey)}  127.0.0.1:${b.address().port}\n`);

  // A: accept anyone, echo every stream and every datagram.
  let accepted!: (c: PeerConnection) => void;
  const acceptedByA = new Promise<PeerConnection>((resolve) => (accepted = resolve));
  a.on('connection', (c: PeerConnection) => {
    c.on('stream', (s) => s.pipe(s));
    c.on('datagram', (d: Uint8Array) => {
      c.sendDatagram(d);
    });
    accepted(c);
  });

  // B: dial A by key. The handshake proves A holds that key, and B's key to A.
  const dial = `${encodeKey(a.publicKey)}@127.0.0.1:${portA}`;
  let t0 = performance.now();
  const conn = await b.connect(dial);
  const handshakeMs = ms(t0);
  check(keysEqual(conn.remotePublicKey, a.publicKey), 'B is connected to a key other than the one it dialed');
  const atA = await acceptedByA;
  check(keysEqual(atA.remotePublicKey, b.publicKey), "A sees a key other than B's");
  console.log(`  handshake       ${fmt(handshakeMs)} ms  (B dialed ${dial.slice(0, 12)}…; each side proved its key)`);

  // A short message through a stream.
  const message = Buffer.from('hello from B');
  const small = await echo(conn, message);
  check(small.length === message.length && small.hash === sha256(message), 'the message came back different');
  console.log(`  message echo    ${fmt(small.ms)} ms  ("${message.toString()}" came back intact)`);

  // A bulk transfer through a stream, echoed back concurrently.
  const bulk = randomBytes(BULK_BYTES);
  const big = await echo(conn, bulk);
  check(big.length === bulk.length, `echoed ${big.length} of ${bulk.length} bytes`);
  check(big.hash === sha256(bulk), 'the 8 MiB echo has a different SHA-256');
  const mibps = BULK_BYTES / (1024 * 1024) / (big.ms / 1000);
  console.log(`  stream echo     ${fmt(big.ms)} ms  (8 MiB out and back, ${fmt(mibps)} MiB/s each way, sha256 ok)`);

  // Datagrams: unreliable, so count losses instead of failing on one.
  check(conn.maxDatagramSize > 0, 'the peer does not accept datagrams');
  const rtts: number[] = [];
  for (let i = 0; i < PINGS; i++) {
    const rtt = await ping(conn, i);
    if (rtt !== undefined) rtts.push(rtt);
  }
  check(rtts.length > 0, `none of ${PINGS} datagrams came back`);
  rtts.sort((x, y) => x - y);
  const median = rtts[Math.floor(rtts.length / 2)]!;
  console.log(
    `  datagram RTT    ${fmt(median, 3)} ms median  (min ${fmt(rtts[0]!, 3)}, max ${fmt(rtts[rtts.length - 1]!, 3)}; ` +
      `${rtts.length}/${PINGS} echoed, max payload ${conn.maxDatagramSize} B)`,
  );

  // Close: B sends code 0 'bye'; A receives it as a remote close.
  t0 = performance.now();
  const closedAtA: Promise<CloseInfo> = atA.closed;
  const info = await conn.close({ code: 0, reason: 'bye' });
  check(info.error === undefined, `closing failed: ${info.error?.message ?? ''}`);
  const seen = await closedAtA;
  check(seen.remote && seen.code === 0 && seen.reason === 'bye', `A saw the close as ${JSON.stringify({ ...seen, error: seen.error?.code })}`);
  await a.close();
  await b.close();
  console.log(`  close           ${fmt(ms(t0))} ms  (A got code ${seen.code} "${seen.reason}" from B; both sockets closed)`);
  console.log('\nok');
}

const deadline = setTimeout(() => fail(new Error(`timed out after ${DEADLINE_MS / 1000} s`)), DEADLINE_MS);
main().then(
  () => {
    clearTimeout(deadline);
    // Everything is closed, so the process should exit by itself; if a handle
    // leaked, say so instead of hanging.
    setTimeout(() => {
      console.error('demo FAILED: the process did not exit after closing everything (a handle leaked)');
      process.exit(1);
    }, 2000).unref();
  },
  (err: unknown) => fail(err),
);
