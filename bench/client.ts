/**
 * Bench client process: `client.ts <dgram|native|tls|udx>`. Each command dials the
 * given target from one client socket and runs one measurement: bulk,
 * rr (64-byte ping-pong), frr (the same with 4-byte length-prefixed frames),
 * frames (one-way length-prefixed messages, counted by the server),
 * settledBulk (bulk on a connection whose path MTU has settled, with its
 * packet counters; `init` with socket options first), conns (dial + tiny
 * echo + close), idleOpen/idleClose, io (the native driver's counters).
 */
import type { Duplex } from 'node:stream';

import type { Cert } from './cert';
import { serve } from './ipc';
import { BULK, ECHO, FRAMED_ECHO, FRAMES, FrameWaiter, Reader, makeFrame, type BulkReport, type BulkResult } from './protocol';
import { percentile } from './stats';
import type { SettledBulk } from './report';
import { client, type Client, type ClientConn, type Kind, type Target, type Tuning } from './transports';

const kind = process.argv[2] as Kind;
let dialer: Client | undefined;
const idle: ClientConn[] = [];

function ready(): Client {
  if (dialer === undefined) throw new Error('init first');
  return dialer;
}

/** A writer blocked this long without 'drain' counts as stalled. */
const STALL_MS = 2000;

/** Resolves true on 'drain', false after `ms` without one. */
function drained(s: Duplex, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const onDrain = (): void => {
      clearTimeout(timer);
      resolve(true);
    };
    const timer = setTimeout(() => {
      s.off('drain', onDrain);
      resolve(false);
    }, ms);
    s.once('drain', onDrain);
  });
}

/** Rejects with `what` if `p` takes longer than `ms`. */
function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(what)), ms);
  });
  return Promise.race([p, limit]).finally(() => clearTimeout(timer));
}

/**
 * Writes `bytes` (or for at most `maxMs`) one way; returns what the server
 * counted and the CPU time this process spent meanwhile, or `stalled` (bytes
 * accepted so far) if the writer was never woken.
 */
async function bulk(p: { target: Target; bytes: number; maxMs: number }): Promise<BulkResult | { stalled: number }> {
  const conn = await ready().dial(p.target);
  const r = await transfer(conn, p.bytes, p.maxMs);
  if (!('stalled' in r)) await conn.close();
  return r;
}

/** One bulk transfer on a new stream of `conn` (closed after a stall). */
async function transfer(conn: ClientConn, bytes: number, maxMs: number): Promise<BulkResult | { stalled: number }> {
  const s = conn.stream();
  const reply = new Reader(s, true);
  const chunk = Buffer.alloc(64 * 1024, 0x61);
  const cpu0 = process.cpuUsage();
  const deadline = Date.now() + maxMs;
  s.write(Buffer.from([BULK]));
  for (let sent = 0; sent < bytes && Date.now() < deadline; sent += chunk.length) {
    if (!s.write(chunk) && !(await drained(s, STALL_MS))) {
      s.destroy();
      await within(conn.close(), 5000, 'close after stall').catch(() => {});
      return { stalled: sent };
    }
  }
  s.end();
  const report = JSON.parse((await within(reply.all(), 15_000, 'no bulk report within 15 s')).toString()) as BulkReport;
  const cpu = process.cpuUsage(cpu0);
  return { ...report, clientCpuUs: cpu.user + cpu.system };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Bulk on a settled connection (peersock only): dials, moves `warmBytes` on
 * a first stream, waits until the path MTU reaches `pmtu` (at most
 * `settleMs`), then measures one transfer on a second stream like `bulk`,
 * with the connection's packet counters over it.
 */
async function settledBulk(p: {
  target: Target;
  bytes: number;
  maxMs: number;
  warmBytes: number;
  pmtu: number;
  settleMs: number;
}): Promise<SettledBulk | { stalled: number }> {
  const conn = await ready().dial(p.target);
  const stats = conn.stats;
  if (stats === undefined) throw new Error(`${kind}: no connection stats`);
  const pmtuDial = stats().pmtu;
  const warm = await transfer(conn, p.warmBytes, p.maxMs);
  if ('stalled' in warm) return warm;
  const t0 = Date.now();
  while (stats().pmtu < p.pmtu && Date.now() - t0 < p.settleMs) await sleep(5);
  const s0 = stats();
  const settleMs = Date.now() - t0;
  const r = await transfer(conn, p.bytes, p.maxMs);
  if ('stalled' in r) return r;
  const s1 = stats();
  await conn.close();
  return {
    ...r,
    pmtuDial,
    pmtu: s0.pmtu,
    pmtuEnd: s1.pmtu,
    settleMs,
    sentPackets: s1.sentPackets - s0.sentPackets,
    sentBytes: s1.sentBytes - s0.sentBytes,
    lostPackets: s1.lostPackets - s0.lostPackets,
  };
}

/** Sequential `size`-byte request/reply on one stream for `ms`; latencies in µs. */
async function rr(p: { target: Target; ms: number; size: number }): Promise<{ perSec: number; p50: number; p99: number; n: number }> {
  const conn = await ready().dial(p.target);
  const s = conn.stream();
  const r = new Reader(s);
  const msg = Buffer.alloc(p.size, 0x62);
  s.write(Buffer.from([ECHO]));
  for (let i = 0; i < 200; i++) {
    s.write(msg);
    await r.need(p.size);
  }
  const lat: number[] = [];
  const start = process.hrtime.bigint();
  const end = start + BigInt(p.ms) * 1_000_000n;
  let now = start;
  while (now < end) {
    const t0 = now;
    s.write(msg);
    await r.need(p.size);
    now = process.hrtime.bigint();
    lat.push(Number(now - t0) / 1000);
  }
  s.end();
  await conn.close();
  const secs = Number(now - start) / 1e9;
  lat.sort((a, b) => a - b);
  return { perSec: lat.length / secs, p50: percentile(lat, 0.5), p99: percentile(lat, 0.99), n: lat.length };
}

/**
 * Sequential request/reply of one `size`-byte length-prefixed frame each way
 * (the server parses frames and echoes each) for `ms`; latencies in µs.
 */
async function frr(p: { target: Target; ms: number; size: number }): Promise<{ perSec: number; p50: number; p99: number; n: number }> {
  const conn = await ready().dial(p.target);
  const s = conn.stream();
  const r = new FrameWaiter(s);
  const msg = makeFrame(p.size, 0x62);
  s.write(Buffer.from([FRAMED_ECHO]));
  for (let i = 0; i < 200; i++) {
    s.write(msg);
    await r.next();
  }
  const lat: number[] = [];
  const start = process.hrtime.bigint();
  const end = start + BigInt(p.ms) * 1_000_000n;
  let now = start;
  while (now < end && lat.length < 1_000_000) {
    const t0 = now;
    s.write(msg);
    await r.next();
    now = process.hrtime.bigint();
    lat.push(Number(now - t0) / 1000);
  }
  s.end();
  await conn.close();
  const secs = Number(now - start) / 1e9;
  lat.sort((a, b) => a - b);
  return { perSec: lat.length / secs, p50: percentile(lat, 0.5), p99: percentile(lat, 0.99), n: lat.length };
}

/**
 * One-way `size`-byte length-prefixed messages on one stream, `batch` frames
 * per write, for `ms` (at most `max` messages); the server parses and counts
 * them, timed from its first byte to FIN. Returns its count and rate, or
 * `stalled` if the writer was never woken.
 */
async function frames(p: { target: Target; ms: number; size: number; batch: number; max: number }): Promise<{ perSec: number; sent: number; received: number; ms: number } | { stalled: number }> {
  const conn = await ready().dial(p.target);
  const s = conn.stream();
  const reply = new Reader(s, true);
  const one = makeFrame(p.size, 0x66);
  const chunk = Buffer.concat(Array.from({ length: p.batch }, () => one));
  const deadline = Date.now() + p.ms;
  let sent = 0;
  s.write(Buffer.from([FRAMES]));
  while (sent < p.max && Date.now() < deadline) {
    const ok = s.write(chunk);
    sent += p.batch;
    if (!ok && !(await drained(s, STALL_MS))) {
      s.destroy();
      await within(conn.close(), 5000, 'close after stall').catch(() => {});
      return { stalled: sent };
    }
  }
  s.end();
  const report = JSON.parse((await within(reply.all(), 15_000, 'no frames report within 15 s')).toString()) as BulkReport;
  await conn.close();
  const received = report.messages ?? 0;
  return { perSec: received / (report.ms / 1000), sent, received, ms: report.ms };
}

/** Dial, echo 4 bytes on a stream, close; `concurrency` loops for `ms`. */
async function conns(p: { target: Target; ms: number; concurrency: number }): Promise<{ perSec: number; n: number; errors: number; firstError?: string }> {
  const c = ready();
  const deadline = Date.now() + p.ms;
  let n = 0;
  let errors = 0;
  let firstError: string | undefined;
  const start = process.hrtime.bigint();
  const worker = async (): Promise<void> => {
    while (Date.now() < deadline) {
      try {
        const conn = await c.dial(p.target);
        const s = conn.stream();
        const r = new Reader(s);
        s.write(Buffer.from([ECHO, 1, 2, 3, 4]));
        await r.need(4);
        await conn.close();
        n++;
      } catch (e) {
        errors++;
        firstError ??= String(e);
        if (errors > 50) return;
      }
    }
  };
  await Promise.all(Array.from({ length: p.concurrency }, worker));
  const secs = Number(process.hrtime.bigint() - start) / 1e9;
  return { perSec: n / secs, n, errors, ...(firstError === undefined ? {} : { firstError }) };
}

serve({
  /** Makes the client (peersock: bound with `tuning`), closing the previous one. */
  async init(p: { cert: Cert; tuning?: Tuning }) {
    await dialer?.close();
    dialer = await client(kind, p.cert, p.tuning);
  },
  bulk,
  settledBulk,
  rr,
  frr,
  frames,
  conns,
  io: () => ready().io?.(),
  /** Opens `n` idle connections (no stream), `concurrency` dials at a time. */
  async idleOpen(p: { target: Target; n: number; concurrency: number }) {
    const c = ready();
    let left = p.n;
    const worker = async (): Promise<void> => {
      while (left-- > 0) idle.push(await c.dial(p.target));
    };
    await Promise.all(Array.from({ length: p.concurrency }, worker));
    return idle.length;
  },
  /** Closes every idle connection. */
  async idleClose() {
    const all = idle.splice(0);
    await Promise.all(all.map((c) => c.close()));
    return all.length;
  },
});
