/**
 * The long reliability runs (`npm run soak`): 256 MiB byte-identical through
 * the lab relay under scenario 1's two impairment sets, then many dials under
 * scenario 2's 30 % loss each way (the dial-time distribution), bounded in
 * time. Prints goodput and writes the figures into bench/RELIABILITY.md
 * (between its soak markers).
 *
 *   node --import tsx scripts/soak.ts [--minutes 15] [--mib 256] [--dials 200] [--no-write]
 *
 * `--minutes` bounds the whole run: a transfer still going at the deadline
 * is stopped and reported as not finished (and the exit code is 1). Seeds
 * come from LAB_SEED (else random) and are printed.
 */
import { once } from 'node:events';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

import type { PeerConnection } from '../src/connection';
import { PeerSocket } from '../src/peer-socket';
import type { PeerStream } from '../src/stream';
import { Source, readAll, writeAll, type Digest } from '../__test__/helpers';
import { labSeed } from '../__test__/lab/prng';
import { Relay, type Impairment } from '../__test__/lab/relay';
import { seedFor } from '../__test__/lab/setup';

const MiB = 1024 * 1024;

const { values: args } = parseArgs({
  options: {
    minutes: { type: 'string', default: '15' },
    mib: { type: 'string', default: '256' },
    dials: { type: 'string', default: '200' },
    'no-write': { type: 'boolean', default: false },
  },
});
const minutes = Number(args.minutes);
const mib = Number(args.mib);
const dials = Number(args.dials);
if (!(minutes > 0) || !(mib > 0) || !Number.isInteger(mib)) throw new Error('--minutes and --mib must be positive (--mib an integer)');
if (!Number.isInteger(dials) || dials < 0) throw new Error('--dials must be a non-negative integer');

interface Phase {
  name: string;
  imp: Impairment;
}

const PHASES: Phase[] = [
  { name: '2 % loss in bursts of ≤ 3, each way', imp: { burst: { rate: 0.02, maxLen: 3 } } },
  {
    name: '5 % loss + 2 % reorder + 1 % duplication + 2 ms delay, each way',
    imp: { drop: 0.05, reorder: { p: 0.02, after: 3 }, duplicate: 0.01, delayMs: 2 },
  },
];

interface Result {
  phase: string;
  seed: number;
  finished: boolean;
  intact: boolean;
  bytes: number;
  ms: number;
  mbps: number;
  lossC2s: number;
  lossS2c: number;
  rttMs: number;
  lostPackets: number;
}

/** One phase: a fresh pair behind a fresh relay, one stream of `mib` MiB, stopped at `deadline`. */
async function runPhase(p: Phase, seed: number, deadline: number): Promise<Result> {
  const a = await PeerSocket.bind({ host: '127.0.0.1', port: 0 });
  const b = await PeerSocket.bind({ host: '127.0.0.1', port: 0 });
  const { address, port } = a.address();
  const relay = await Relay.create({ target: { address, port }, seed, c2s: p.imp, s2c: p.imp });
  let timer: NodeJS.Timeout | undefined;
  try {
    const accepted = once(a, 'connection') as Promise<[PeerConnection]>;
    const r = relay.address();
    const client = await b.connect({ publicKey: a.publicKey, host: r.host, port: r.port }, { timeout: 30_000 });
    const [server] = await accepted;
    let received = 0;
    const incoming = new Promise<Digest>((resolve, reject) => {
      server.once('stream', (s: PeerStream) => {
        s.on('data', (c: Buffer) => (received += c.length));
        readAll(s).then(resolve, reject);
      });
    });
    const total = mib * MiB;
    const stream = client.openStream();
    const t0 = performance.now();
    const stopped = new Promise<'stopped'>((resolve) => {
      timer = setTimeout(() => resolve('stopped'), Math.max(0, deadline - Date.now()));
    });
    const progress = setInterval(() => {
      const s = (performance.now() - t0) / 1000;
      process.stdout.write(`  ${(received / MiB).toFixed(0)} / ${mib} MiB after ${s.toFixed(0)} s (${(received / s / 1e6).toFixed(2)} MB/s)\n`);
    }, 15_000);
    const done = await Promise.race([Promise.all([writeAll(stream, new Source(total, seed)), incoming]), stopped]);
    clearInterval(progress);
    const ms = performance.now() - t0;
    const st = relay.stats();
    const cs = client.stats();
    const finished = done !== 'stopped';
    return {
      phase: p.name,
      seed,
      finished,
      intact: finished && done[0].sha256 === done[1].sha256 && done[1].bytes === total,
      bytes: finished ? done[1].bytes : received,
      ms,
      mbps: (finished ? done[1].bytes : received) / ms / 1000,
      lossC2s: st.c2s.dropped / Math.max(1, st.c2s.packetsIn),
      lossS2c: st.s2c.dropped / Math.max(1, st.s2c.packetsIn),
      rttMs: cs.rttMs,
      lostPackets: cs.lostPackets,
    };
  } finally {
    clearTimeout(timer);
    await Promise.all([a.close(), b.close()]);
    await relay.close();
  }
}

/** What the dial phase measured. */
interface DialResult {
  seed: number;
  attempted: number;
  ok: number;
  failures: string[];
  times: number[];
  ms: number;
  stopped: boolean;
}

/** Scenario 2 at length: `dials` dials, 40 in flight, each a client of its own, 30 % loss each way. */
async function runDials(seed: number, deadline: number): Promise<DialResult> {
  const limit = 300_000;
  const a = await PeerSocket.bind({ host: '127.0.0.1', port: 0, handshakeTimeout: limit, idleTimeout: limit });
  a.on('connection', (c: PeerConnection) => c.on('error', () => {}));
  const { address, port } = a.address();
  const relay = await Relay.create({ target: { address, port }, seed, c2s: { drop: 0.3 }, s2c: { drop: 0.3 }, maxClients: 1024 });
  const r = relay.address();
  const res: DialResult = { seed, attempted: 0, ok: 0, failures: [], times: [], ms: 0, stopped: false };
  const t0 = performance.now();
  const live = new Set<PeerSocket>();
  let timer: NodeJS.Timeout | undefined;
  const stop = new Promise<void>((resolve) => {
    timer = setTimeout(() => {
      res.stopped = true;
      resolve();
    }, Math.max(0, deadline - Date.now()));
  });
  const worker = async (): Promise<void> => {
    while (res.attempted < dials && !res.stopped) {
      res.attempted++;
      const b = await PeerSocket.bind({ host: '127.0.0.1', port: 0, idleTimeout: limit });
      live.add(b);
      const start = performance.now();
      try {
        await b.connect({ publicKey: a.publicKey, host: r.host, port: r.port }, { timeout: Math.min(limit, Math.max(1, deadline - Date.now())) });
        res.ok++;
        res.times.push(performance.now() - start);
      } catch (e) {
        if (!res.stopped) res.failures.push(`${String(e)} after ${((performance.now() - start) / 1000).toFixed(1)} s`);
      } finally {
        live.delete(b);
        await b.close();
      }
    }
  };
  try {
    await Promise.race([Promise.all(Array.from({ length: 40 }, worker)), stop]);
  } finally {
    clearTimeout(timer);
    res.ms = performance.now() - t0;
    await Promise.all([...live].map((b) => b.close()));
    await a.close();
    await relay.close();
  }
  res.times.sort((x, y) => x - y);
  return res;
}

function quantile(sorted: number[], p: number): number {
  return sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;
}

function dialTable(d: DialResult): string {
  const s = (ms: number) => (ms / 1000).toFixed(1);
  const over = (x: number) => d.times.filter((t) => t > x).length;
  return [
    '',
    `Dials under 30 % loss each way (\`--dials ${dials}\`, 40 in flight, each from its own socket, 300 s per dial, seed ${d.seed}):`,
    '',
    '| dials | succeeded | failed | p50 (s) | p90 (s) | p99 (s) | max (s) | over 10 s (the default handshakeTimeout) | over 30 s | over 60 s |',
    '|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
    `| ${d.attempted}${d.stopped ? ' (stopped at the deadline)' : ''} | ${d.ok} | ${d.failures.length} | ${s(quantile(d.times, 0.5))} | ${s(quantile(d.times, 0.9))} | ` +
      `${s(quantile(d.times, 0.99))} | ${s(quantile(d.times, 1))} | ${over(10_000)} | ${over(30_000)} | ${over(60_000)} |`,
    ...(d.failures.length > 0 ? ['', `Failures: ${d.failures.slice(0, 5).join('; ')}`] : []),
  ].join('\n');
}

function table(results: Result[], base: number, total: number): string {
  const lines = [
    `Last run: ${new Date().toISOString()}, Node ${process.version}, \`LAB_SEED=${base}\`, ${mib} MiB per phase, ` +
      `bounded at ${minutes} min (took ${(total / 1000).toFixed(0)} s). Command: ` +
      `\`node --import tsx scripts/soak.ts --minutes ${minutes} --mib ${mib} --dials ${dials}\` (the first half of \`npm run soak\`).`,
    '',
    '| impairments | result | goodput (MB/s) | time (s) | measured loss c2s / s2c | RTT (ms) | packets quiche declared lost |',
    '|---|---|---:|---:|---|---:|---:|',
  ];
  for (const r of results) {
    const result = r.finished ? (r.intact ? 'byte-identical (SHA-256)' : '**CORRUPT**') : `**not finished** (${(r.bytes / MiB).toFixed(0)} MiB)`;
    lines.push(
      `| ${r.phase} | ${result} | ${r.mbps.toFixed(2)} | ${(r.ms / 1000).toFixed(1)} | ` +
        `${(100 * r.lossC2s).toFixed(2)} % / ${(100 * r.lossS2c).toFixed(2)} % | ${r.rttMs.toFixed(1)} | ${r.lostPackets} |`,
    );
  }
  return lines.join('\n');
}

async function main(): Promise<void> {
  const base = labSeed();
  const start = Date.now();
  const deadline = start + minutes * 60_000;
  console.log(`soak: ${mib} MiB per phase, at most ${minutes} min, LAB_SEED=${base}`);
  const results: Result[] = [];
  for (const p of PHASES) {
    if (Date.now() >= deadline) break;
    const seed = seedFor(base, p.name);
    console.log(`${p.name} (seed ${seed})`);
    const r = await runPhase(p, seed, deadline);
    results.push(r);
    console.log(
      `  ${r.finished ? (r.intact ? 'intact' : 'CORRUPT') : 'NOT FINISHED'}: ${(r.bytes / MiB).toFixed(0)} MiB in ${(r.ms / 1000).toFixed(1)} s, ` +
        `goodput ${r.mbps.toFixed(2)} MB/s; loss c2s ${(100 * r.lossC2s).toFixed(2)} %, s2c ${(100 * r.lossS2c).toFixed(2)} %; rtt ${r.rttMs.toFixed(1)} ms`,
    );
  }
  let dialResult: DialResult | undefined;
  if (dials > 0 && Date.now() < deadline) {
    const seed = seedFor(base, 'dials');
    console.log(`${dials} dials under 30 % loss each way, 40 in flight (seed ${seed})`);
    dialResult = await runDials(seed, deadline);
    const d = dialResult;
    console.log(
      `  ${d.ok}/${d.attempted} dials succeeded${d.stopped ? ' (stopped at the deadline)' : ''} in ${(d.ms / 1000).toFixed(0)} s; ` +
        `p50 ${(quantile(d.times, 0.5) / 1000).toFixed(1)} s, p99 ${(quantile(d.times, 0.99) / 1000).toFixed(1)} s, max ${(quantile(d.times, 1) / 1000).toFixed(1)} s`,
    );
    for (const f of d.failures.slice(0, 5)) console.log(`  failed: ${f}`);
  }
  const ok =
    results.length === PHASES.length &&
    results.every((r) => r.finished && r.intact) &&
    (dials === 0 || (dialResult !== undefined && !dialResult.stopped && dialResult.failures.length === 0));
  if (!args['no-write']) {
    const file = join(__dirname, '..', 'bench', 'RELIABILITY.md');
    const text = readFileSync(file, 'utf8');
    const begin = '<!-- soak:begin -->';
    const end = '<!-- soak:end -->';
    const i = text.indexOf(begin);
    const j = text.indexOf(end);
    if (i === -1 || j < i) throw new Error(`${file} lacks the ${begin} … ${end} markers`);
    const body = table(results, base, Date.now() - start) + (dialResult !== undefined ? `\n${dialTable(dialResult)}` : '');
    writeFileSync(file, `${text.slice(0, i + begin.length)}\n${body}\n${text.slice(j)}`);
    console.log(`wrote ${file}`);
  }
  process.exitCode = ok ? 0 : 1;
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
