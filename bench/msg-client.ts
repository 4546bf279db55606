/**
 * Dispatch-layer bench client: `msg-client.ts <dgram|native>` (the I/O
 * driver), one PeerSocket with a Dispatcher for protocol 'bench/1' (see
 * msg-server.ts for the handlers). Each command dials
 * the server afresh and closes the connection after:
 *   request  sequential `request()` round trips, one in flight
 *   send     one-way reliable `send()`s as fast as back-pressure allows
 *   hol      small requests while a 16 MiB `send()` is in flight
 * `init {tuning?}` binds the socket (with `tuning`) before the first command.
 */
import { Dispatcher, PeerSocket, type PeerConnection } from '../src/index';
import { serve } from './ipc';
import { MSG_PROTOCOL as PROTOCOL } from './protocol';
import { percentile } from './stats';
import type { Target, Tuning } from './transports';

const io = process.argv[2] === 'native' ? 'native' : 'dgram';
const noop = (): void => {};
const immediate = (): Promise<void> => new Promise((r) => setImmediate(r));
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const now = (): bigint => process.hrtime.bigint();
const us = (ns: bigint): number => Number(ns) / 1000;

let sock: PeerSocket | undefined;
let d: Dispatcher | undefined;
/** Called with the arrival time of each `bigArrived` (set by `hol`). */
let onBigArrived: ((at: bigint) => void) | undefined;

function ready(): { sock: PeerSocket; d: Dispatcher } {
  if (sock === undefined || d === undefined) throw new Error('init first');
  return { sock, d };
}

async function dial(t: Target): Promise<PeerConnection> {
  const conn = await ready().sock.connect({ publicKey: new Uint8Array(Buffer.from(t.key ?? '', 'hex')), host: t.host, port: t.port });
  conn.on('error', noop);
  return conn;
}

/** Sequential pings; returns each one's latency in µs and its end time. */
async function pings(conn: PeerConnection, msg: Uint8Array, n: number, untilNs: bigint): Promise<{ lat: number[]; ends: bigint[] }> {
  const disp = ready().d;
  const opts = { type: 'ping', reply: 'ping', timeout: 5000 };
  const lat: number[] = [];
  const ends: bigint[] = [];
  let t = now();
  while (lat.length < n && t < untilNs) {
    const t0 = t;
    const reply = (await disp.request(conn, msg, opts)) as Uint8Array;
    t = now();
    if (reply.length !== msg.length) throw new Error(`reply of ${reply.length} bytes, sent ${msg.length}`);
    lat.push(us(t - t0));
    ends.push(t);
  }
  return { lat, ends };
}

function latency(lat: number[]): { p50: number; p99: number; max: number } {
  const s = [...lat].sort((a, b) => a - b);
  return { p50: percentile(s, 0.5), p99: percentile(s, 0.99), max: s[s.length - 1] ?? NaN };
}

/** Sequential `request()`s of `size` bytes (echoed) for `ms`, after 500 to warm up. */
async function request(p: { target: Target; ms: number; size: number }): Promise<{ perSec: number; p50: number; p99: number; n: number }> {
  const conn = await dial(p.target);
  try {
    const msg = new Uint8Array(p.size).fill(0x71);
    await pings(conn, msg, 500, now() + 5_000_000_000n);
    const start = now();
    const { lat, ends } = await pings(conn, msg, 1_000_000, start + BigInt(p.ms) * 1_000_000n);
    const secs = Number(ends[ends.length - 1]! - start) / 1e9;
    return { perSec: lat.length / secs, ...latency(lat), n: lat.length };
  } finally {
    await conn.close();
  }
}

/**
 * One-way reliable `send()`s of `size` bytes for `ms` (at most `max`): `batch`
 * sends without awaiting, then await the last one's promise (it waits while
 * the lane is backed up) and yield to the event loop so the batch goes out
 * and ACKs come in. The server counts arrivals, timed from the first to its
 * `noteReport` (which follows the last note on the same lane).
 */
async function send(p: { target: Target; ms: number; size: number; batch: number; max: number }): Promise<{ perSec: number; sent: number; received: number; ms: number; clientPerSec: number }> {
  const { d: disp } = ready();
  const conn = await dial(p.target);
  try {
    const msg = new Uint8Array(p.size).fill(0x6e);
    const opts = { type: 'note', reliable: true };
    const report = async (): Promise<{ messages: number; ms: number }> =>
      JSON.parse(Buffer.from((await disp.request(conn, new Uint8Array(0), { type: 'noteReport', reply: 'noteReport', timeout: 30_000 })) as Uint8Array).toString());
    const blast = async (max: number, ms: number): Promise<number> => {
      const deadline = Date.now() + ms;
      let sent = 0;
      while (sent < max && Date.now() < deadline) {
        let last: Promise<void> = Promise.resolve();
        for (let i = 0; i < p.batch; i++) last = disp.send(conn, msg, opts);
        sent += p.batch;
        await last;
        await immediate();
      }
      return sent;
    };
    await blast(20_000, 1000); // warm-up
    await report();
    const t0 = now();
    const sent = await blast(p.max, p.ms);
    const clientSecs = Number(now() - t0) / 1e9;
    const r = await report();
    return { perSec: r.messages / (r.ms / 1000), sent, received: r.messages, ms: r.ms, clientPerSec: sent / clientSecs };
  } finally {
    await conn.close();
  }
}

/**
 * Head-of-line: `n` sequential small requests idle, then up to `n` more (for
 * at most `maxMs`) while 16 MiB one-way `send()`s are in flight back to back:
 * the next one starts when the server's `bigArrived` for the previous one
 * comes in (at most `maxBigs`). Only busy requests that ended before the
 * last big message arrived count. With env BENCH_HOL_TRACE set, prints the
 * connection's RTT and congestion window every 10 ms meanwhile.
 */
async function hol(p: { target: Target; n: number; size: number; bigBytes: number; maxBigs: number; maxMs: number }): Promise<{
  idleP50: number;
  idleP99: number;
  p50: number;
  p99: number;
  max: number;
  n: number;
  bigs: number;
  bigMs: number;
}> {
  const { d: disp } = ready();
  const conn = await dial(p.target);
  const big = new Uint8Array(p.bigBytes);
  let trace: NodeJS.Timeout | undefined;
  try {
    const msg = new Uint8Array(p.size).fill(0x68);
    await pings(conn, msg, 200, now() + 5_000_000_000n); // warm-up
    const idle = await pings(conn, msg, p.n, now() + BigInt(p.maxMs) * 1_000_000n);

    const sentAt: bigint[] = [];
    const arrivedAt: bigint[] = [];
    let running = true;
    let failure: unknown;
    const startBig = (): void => {
      sentAt.push(now());
      disp.send(conn, big, { type: 'big' }).catch((e: unknown) => {
        failure ??= e;
      });
    };
    onBigArrived = (at) => {
      arrivedAt.push(at);
      if (running && sentAt.length < p.maxBigs) startBig();
    };
    startBig();
    if (process.env.BENCH_HOL_TRACE) {
      const t0 = sentAt[0]!;
      trace = setInterval(() => {
        const st = conn.stats();
        console.error(`[hol] t=${(Number(now() - t0) / 1e6).toFixed(1)} ms rtt=${st.rttMs.toFixed(2)} ms cwnd=${st.cwnd} sent=${st.sentPackets} lost=${st.lostPackets}`);
      }, 10);
    }
    const busy = await pings(conn, msg, p.n, now() + BigInt(p.maxMs) * 1_000_000n);
    running = false;
    clearInterval(trace);
    const waitEnd = Date.now() + 20_000;
    while (arrivedAt.length < sentAt.length && Date.now() < waitEnd && failure === undefined) await sleep(5);
    if (failure !== undefined) throw failure;
    if (arrivedAt.length < sentAt.length) throw new Error(`only ${arrivedAt.length} of ${sentAt.length} big messages arrived within 20 s`);
    // Big messages run back to back from the first send to the last arrival.
    const lastArrival = arrivedAt[arrivedAt.length - 1]!;
    const during = busy.lat.filter((_, k) => busy.ends[k]! <= lastArrival);
    const bigMs = sentAt.reduce((sum, s, k) => sum + Number(arrivedAt[k]! - s) / 1e6, 0) / sentAt.length;
    const i = latency(idle.lat);
    const b = latency(during);
    return { idleP50: i.p50, idleP99: i.p99, p50: b.p50, p99: b.p99, max: b.max, n: during.length, bigs: sentAt.length, bigMs };
  } finally {
    clearInterval(trace);
    onBigArrived = undefined;
    await conn.close();
  }
}

serve({
  async init(p?: { tuning?: Tuning }) {
    sock = await PeerSocket.bind({ ...p?.tuning, host: '127.0.0.1', port: 0, io });
    sock.on('error', noop);
    d = new Dispatcher(sock, { protocol: PROTOCOL });
    d.handle('bigArrived', () => {
      onBigArrived?.(now());
    });
  },
  request,
  send,
  hol,
  stats: () => d?.stats,
});
