/**
 * `npm run bench`: peersock against a raw node:dgram ceiling and node:tls on
 * loopback, client and server in separate processes. Each figure runs RUNS
 * times (env BENCH_RUNS, default 5), transports interleaved run by run, and
 * the median is reported. Prints a table and writes bench/RESULTS.md.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { selfSigned } from './cert';
import { killAll, spawnChild, type Child } from './ipc';
import type { BulkReport } from './protocol';
import { fmt, summary } from './stats';
import type { Kind, Target } from './transports';

const RUNS = Math.max(1, Number(process.env.BENCH_RUNS ?? 5));
const BULK_BYTES = 256 * 1024 * 1024;
const BULK_MAX_MS = 5000;
const DGRAM_MS = 3000;
const CONN_MS = 2000;
const RR_MS = 2000;
const IDLE_CONNS = 500;
const KINDS: Kind[] = ['peersock', 'tls'];
const here = (f: string): string => path.join(__dirname, f);
const log = (...a: unknown[]): void => console.error('[bench]', ...a);

/** Every figure's runs, per transport. */
const figs = {
  bulk: { peersock: [] as number[], tls: [] as number[] },
  rr: { peersock: [] as number[], tls: [] as number[] },
  p50: { peersock: [] as number[], tls: [] as number[] },
  p99: { peersock: [] as number[], tls: [] as number[] },
  connSeq: { peersock: [] as number[], tls: [] as number[] },
  connPar: { peersock: [] as number[], tls: [] as number[] },
  idle: { peersock: [] as number[], tls: [] as number[] },
};
const ceiling: number[] = [];
const warnings: string[] = [];
const stalls: Record<Kind, number> = { peersock: 0, tls: 0 };

const mbps = (r: { bytes: number; ms: number }): number => r.bytes / 1e6 / (r.ms / 1000);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function waitFor(check: () => Promise<boolean>, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await check()) return true;
    await sleep(50);
  }
  return false;
}

/**
 * One bulk run; a run whose writer stalls (never woken, see client.ts) is
 * retried on a new connection up to twice, and each stall is reported.
 */
async function bulk(cli: Child, k: Kind, target: Target, bytes: number, maxMs: number): Promise<BulkReport | undefined> {
  for (let attempt = 0; attempt < 3; attempt++) {
    const r = await cli.call<BulkReport | { stalled: number }>('bulk', { target, bytes, maxMs });
    if (!('stalled' in r)) return r;
    stalls[k]++;
    log(`${k} bulk: writer stalled after ${r.stalled} bytes (no 'drain' for 2 s); retrying on a new connection`);
  }
  return undefined;
}

/** Figures 1–3 and the dgram ceiling, over long-lived server and client processes. */
async function throughput(cert: ReturnType<typeof selfSigned>): Promise<void> {
  const [recv, send, ...pairs] = await Promise.all([
    spawnChild(here('dgram.ts'), ['recv']),
    spawnChild(here('dgram.ts'), ['send']),
    ...KINDS.flatMap((k) => [spawnChild(here('server.ts'), [k]), spawnChild(here('client.ts'), [k])]),
  ]);
  const srv = {} as Record<Kind, Child>;
  const cli = {} as Record<Kind, Child>;
  const target = {} as Record<Kind, Target>;
  for (const [i, k] of KINDS.entries()) {
    srv[k] = pairs[2 * i]!;
    cli[k] = pairs[2 * i + 1]!;
    target[k] = await srv[k].call('listen', { cert });
    await cli[k].call('init', { cert });
    await bulk(cli[k], k, target[k], 16 << 20, 2000); // warm-up
  }
  const port: number = await recv!.call('bind');
  await send!.call('bind');

  for (let run = 1; run <= RUNS; run++) {
    const [got] = await Promise.all([
      recv!.call<{ bytes: number; ms: number }>('measure', { ms: DGRAM_MS }),
      send!.call('blast', { port, ms: DGRAM_MS + 500 }),
    ]);
    ceiling.push(mbps(got));
    const line = [`dgram ${fmt(mbps(got))}`];
    for (const k of KINDS) {
      const r = await bulk(cli[k], k, target[k], BULK_BYTES, BULK_MAX_MS);
      if (r === undefined) {
        line.push(`${k} stalled`);
        continue;
      }
      figs.bulk[k].push(mbps(r));
      line.push(`${k} ${fmt(mbps(r))} (${fmt(r.bytes / 2 ** 20)} MiB)`);
    }
    log(`bulk MB/s run ${run}/${RUNS}:`, line.join(', '));
  }
  for (let run = 1; run <= RUNS; run++) {
    for (const k of KINDS) {
      const r = await cli[k].call('rr', { target: target[k], ms: RR_MS, size: 64 });
      figs.rr[k].push(r.perSec);
      figs.p50[k].push(r.p50);
      figs.p99[k].push(r.p99);
      log(`rr run ${run}/${RUNS} ${k}: ${fmt(r.perSec)}/s p50 ${fmt(r.p50)} µs p99 ${fmt(r.p99)} µs`);
    }
  }
  for (const k of KINDS) await cli[k].call('conns', { target: target[k], ms: 300, concurrency: 4 }); // warm-up
  for (let run = 1; run <= RUNS; run++) {
    for (const [fig, concurrency] of [['connSeq', 1], ['connPar', 8]] as const) {
      for (const k of KINDS) {
        const r = await cli[k].call('conns', { target: target[k], ms: CONN_MS, concurrency });
        figs[fig][k].push(r.perSec);
        if (r.errors > 0) warnings.push(`${k} conns x${concurrency}: ${r.errors} errors, first: ${r.firstError}`);
        log(`conns/s run ${run}/${RUNS} ${k} x${concurrency}: ${fmt(r.perSec)} (${r.errors} errors)`);
      }
    }
  }
  for (const c of [recv!, send!, ...pairs]) c.kill();
}

/** Figure 4: a fresh gc-able server per run; the client holds IDLE_CONNS idle connections. */
async function idleMemory(cert: ReturnType<typeof selfSigned>): Promise<void> {
  const cli = {} as Record<Kind, Child>;
  for (const k of KINDS) {
    cli[k] = await spawnChild(here('client.ts'), [k]);
    await cli[k].call('init', { cert });
  }
  for (let run = 1; run <= RUNS; run++) {
    for (const k of KINDS) {
      const srv = await spawnChild(here('server.ts'), [k], ['--expose-gc']);
      try {
        const target: Target = await srv.call('listen', { cert });
        await cli[k].call('idleOpen', { target, n: 20, concurrency: 4 }); // warm the code paths
        await cli[k].call('idleClose');
        await waitFor(async () => (await srv.call('count')) === 0, 3000);
        const before: number = await srv.call('rss');
        await cli[k].call('idleOpen', { target, n: IDLE_CONNS, concurrency: 16 }, 60_000);
        const ok = await waitFor(async () => (await srv.call('count')) >= IDLE_CONNS, 10_000);
        if (!ok) warnings.push(`${k} idle: server saw ${await srv.call('count')} of ${IDLE_CONNS} connections`);
        const after: number = await srv.call('rss');
        const kib = (after - before) / IDLE_CONNS / 1024;
        figs.idle[k].push(kib);
        log(`idle RSS run ${run}/${RUNS} ${k}: ${fmt(kib)} KiB/conn (${fmt(before / 2 ** 20)} → ${fmt(after / 2 ** 20)} MiB)`);
        await cli[k].call('idleClose', undefined, 30_000);
      } finally {
        srv.kill();
      }
    }
  }
  for (const k of KINDS) cli[k].kill();
}

function cell(runs: number[]): string {
  if (runs.length === 0) return '—';
  const s = summary(runs);
  const n = runs.length < RUNS ? `, ${runs.length} runs` : '';
  return runs.length === 1 ? `${fmt(s.med)}${n}` : `${fmt(s.med)} (${fmt(s.min)}–${fmt(s.max)}${n})`;
}

function report(startedMs: number): string {
  const med = (xs: number[]): number => summary(xs).med;
  const rows: [string, keyof typeof figs][] = [
    ['bulk, 1 stream (MB/s)', 'bulk'],
    ['64 B request/reply (round trips/s)', 'rr'],
    ['  latency p50 (µs, lower is better)', 'p50'],
    ['  latency p99 (µs, lower is better)', 'p99'],
    ['connections/s, sequential', 'connSeq'],
    ['connections/s, 8 in flight', 'connPar'],
    [`server RSS per idle connection (KiB, ${IDLE_CONNS} conns, lower is better)`, 'idle'],
  ];
  for (const k of KINDS) {
    if (stalls[k] > 0) warnings.push(`${k} bulk: ${stalls[k]} stalled attempt(s): a blocked writer was never woken (no 'drain' for 2 s); retried`);
  }
  const cpu = /model name\s*:\s*(.*)/.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? os.cpus()[0]?.model ?? '?';
  const ps = (f: keyof typeof figs): number => med(figs[f].peersock);
  const ratio = ps('bulk') / med(ceiling);
  const pass = (ok: boolean): string => (ok ? 'PASS' : 'FAIL');
  const out = [
    `Machine: ${cpu}, ${os.cpus().length} cores, Node ${process.version}, ${os.platform()} ${os.release()}, ${new Date().toISOString()}`,
    `Median of ${RUNS} runs (min–max); client and server in separate processes on 127.0.0.1. Total ${fmt((Date.now() - startedMs) / 1000)} s.`,
    '',
    '| figure | peersock | node:tls | peersock / tls |',
    '|---|---:|---:|---:|',
    ...rows.map(([label, f]) => `| ${label} | ${cell(figs[f].peersock)} | ${cell(figs[f].tls)} | ${fmt(ps(f) / med(figs[f].tls))} |`),
    `| raw node:dgram ceiling, 1452 B datagrams (MB/s received) | ${cell(ceiling)} | | |`,
    '',
    `peersock bulk / dgram ceiling: ${fmt(ratio)}`,
    '',
    `- ${pass(ratio >= 0.5)}: bulk ≥ 0.5 × dgram ceiling (${fmt(ratio)} ×)`,
    `- ${pass(ps('connPar') >= 500)}: ≥ 500 connections/s, 8 in flight (${fmt(ps('connPar'))}/s; sequential ${fmt(ps('connSeq'))}/s)`,
    `- ${pass(ps('idle') <= 64)}: ≤ 64 KiB server RSS per idle connection (${fmt(ps('idle'))} KiB)`,
    ...(warnings.length > 0 ? ['', 'Warnings:', ...warnings.map((w) => `- ${w}`)] : []),
  ];
  return out.join('\n');
}

const METHOD = `
Method: bulk = one stream, the client writes ${BULK_BYTES / 2 ** 20} MiB in 64 KiB writes (capped at ${BULK_MAX_MS / 1000} s), timed
by the server from the first byte received to FIN. Request/reply = 64 B echoed, sequential, on one stream, ${RR_MS / 1000} s.
Connections/s = dial + 4 B echo on a stream + graceful close (awaited), ${CONN_MS / 1000} s, one client socket. Idle RSS = a
fresh server (--expose-gc, gc before each reading) after a 20-connection warm-up; one client dials ${IDLE_CONNS} connections
and holds them idle; (RSS after − before) / ${IDLE_CONNS}. dgram ceiling = 1452 B datagrams, ≤ 64 sends in flight, bytes
received over ${DGRAM_MS / 1000} s. node:tls = TLS 1.3, mutual auth with a self-signed Ed25519 certificate, Nagle off.
`;

async function main(): Promise<void> {
  const started = Date.now();
  const cert = selfSigned();
  log(`${RUNS} runs per figure; this takes about 2–3 minutes`);
  await throughput(cert);
  await idleMemory(cert);
  const text = report(started);
  console.log(`\n${text}`);
  writeFileSync(here('RESULTS.md'), `# peersock benchmark results\n\nGenerated by \`npm run bench\`.\n\n${text}\n${METHOD}`);
  log('wrote bench/RESULTS.md');
}

const guard = setTimeout(() => {
  log('timed out after 6 minutes');
  killAll();
  process.exit(1);
}, 6 * 60_000);
guard.unref();
process.on('exit', killAll);
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    killAll();
    process.exit(130);
  });
}
main().then(
  () => killAll(),
  (e) => {
    log('failed:', e);
    killAll();
    process.exit(1);
  },
);
