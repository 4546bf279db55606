/**
 * `npm run bench`: peersock against a raw node:dgram ceiling and node:tls on
 * loopback, client and server in separate processes. Each figure runs RUNS
 * times (env BENCH_RUNS, default 5; the dispatch-layer figures BENCH_MSG_RUNS,
 * default RUNS), transports interleaved run by run, and the median is
 * reported. Prints two tables and writes bench/RESULTS.md.
 */
import { execFileSync } from 'node:child_process';
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
const MSG_RUNS = Math.max(1, Number(process.env.BENCH_MSG_RUNS ?? RUNS));
const MSG_MS = 2000;
/** Request/reply figures (each run twice: as scheduled and pinned). */
const REQ_MS = 1500;
const FLOOR_MS = 1000;
const MSG_SIZE = 64;
/** send(): sends issued before awaiting the last one and yielding to the event loop. */
const SEND_BATCH = 1024;
/** Raw framed stream: frames per write. */
const FRAMES_BATCH = 64;
const HOL_REQUESTS = 1000;
const HOL_BIG = 16 * 1024 * 1024;
const HOL_MS = 2000;
const HOL_MAX_BIGS = 40;
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
/**
 * Dispatch-layer figures, per transport (tls: length-prefixed framing by
 * hand). Request/reply runs twice: as scheduled, and with client and server
 * pinned to one CPU ('Pin'); the dgram ping-pong floor goes in `peersock`.
 */
const msg = {
  req: { peersock: [] as number[], tls: [] as number[] },
  reqP50: { peersock: [] as number[], tls: [] as number[] },
  reqP99: { peersock: [] as number[], tls: [] as number[] },
  reqPin: { peersock: [] as number[], tls: [] as number[] },
  reqPinP50: { peersock: [] as number[], tls: [] as number[] },
  reqPinP99: { peersock: [] as number[], tls: [] as number[] },
  floor: { peersock: [] as number[], tls: [] as number[] },
  floorP50: { peersock: [] as number[], tls: [] as number[] },
  floorPin: { peersock: [] as number[], tls: [] as number[] },
  floorPinP50: { peersock: [] as number[], tls: [] as number[] },
  send: { peersock: [] as number[], tls: [] as number[] },
  frames: { peersock: [] as number[], tls: [] as number[] },
  holP50: { peersock: [] as number[], tls: [] as number[] },
  holP99: { peersock: [] as number[], tls: [] as number[] },
  holIdle: { peersock: [] as number[], tls: [] as number[] },
  holRatio: { peersock: [] as number[], tls: [] as number[] },
};
/** Per HOL run: busy requests completed, big messages sent, mean big delivery ms. */
const holRuns: { n: number; bigs: number; bigMs: number }[] = [];
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
  const [recv, send, msgSrv, msgCli, ...pairs] = await Promise.all([
    spawnChild(here('dgram.ts'), ['recv']),
    spawnChild(here('dgram.ts'), ['send']),
    spawnChild(here('msg-server.ts')),
    spawnChild(here('msg-client.ts')),
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
  const msgTarget: Target = await msgSrv!.call('listen');
  await msgCli!.call('init');
  await recv!.call('echo', { on: true });
  await messages({ cli, srv, target, mcli: msgCli!, msrv: msgSrv!, mtarget: msgTarget, echo: recv!, echoPort: port, pinger: send! });
  for (const c of [recv!, send!, msgSrv!, msgCli!, ...pairs]) c.kill();
}

/** Every CPU, for undoing `pin`. */
const ALL_CPUS = `0-${os.cpus().length - 1}`;

/** Sets the CPU affinity of the children (every thread); false if taskset failed. */
function pin(children: Child[], cpus: string): boolean {
  try {
    for (const c of children) {
      if (c.proc.pid !== undefined) execFileSync('taskset', ['-a', '-p', '-c', cpus, String(c.proc.pid)], { stdio: 'ignore', timeout: 5000 });
    }
    return true;
  } catch {
    return false;
  }
}

interface MsgProcs {
  cli: Record<Kind, Child>;
  srv: Record<Kind, Child>;
  target: Record<Kind, Target>;
  /** Dispatcher client and server. */
  mcli: Child;
  msrv: Child;
  mtarget: Target;
  /** node:dgram echo socket (port `echoPort`) and the process pinging it. */
  echo: Child;
  echoPort: number;
  pinger: Child;
}

/**
 * Dispatch-layer figures: request() vs a hand-framed node:tls echo (as
 * scheduled, then pinned to one CPU) with a node:dgram ping-pong floor,
 * send(), a raw framed stream over both transports, and head-of-line blocking.
 */
async function messages(p: MsgProcs): Promise<void> {
  const { cli, target, mcli, mtarget } = p;
  const size = MSG_SIZE;
  const pinnable = [p.mcli, p.msrv, p.cli.tls, p.srv.tls, p.echo, p.pinger];
  let pinWorks = true;
  for (let run = 1; run <= MSG_RUNS; run++) {
    const tag = `run ${run}/${MSG_RUNS}`;
    for (const pinned of [false, true]) {
      if (pinned && !(pinWorks = pin(pinnable, '0'))) {
        warnings.push('taskset failed: no pinned request/reply figures');
        pin(pinnable, ALL_CPUS);
        break;
      }
      try {
        const [fReq, fP50, fP99, fFloor, fFloorP50] = pinned
          ? (['reqPin', 'reqPinP50', 'reqPinP99', 'floorPin', 'floorPinP50'] as const)
          : (['req', 'reqP50', 'reqP99', 'floor', 'floorP50'] as const);
        const r = await mcli.call('request', { target: mtarget, ms: REQ_MS, size });
        msg[fReq].peersock.push(r.perSec);
        msg[fP50].peersock.push(r.p50);
        msg[fP99].peersock.push(r.p99);
        const t = await cli.tls.call('frr', { target: target.tls, ms: REQ_MS, size });
        msg[fReq].tls.push(t.perSec);
        msg[fP50].tls.push(t.p50);
        msg[fP99].tls.push(t.p99);
        const f = await p.pinger.call('pingpong', { port: p.echoPort, ms: FLOOR_MS, size });
        if (f.lost > 0) warnings.push(`dgram ping-pong ${tag}: a datagram was lost; run cut short at ${f.n} round trips`);
        msg[fFloor].peersock.push(f.perSec);
        msg[fFloorP50].peersock.push(f.p50);
        log(
          `request ${tag}${pinned ? ' (pinned to one CPU)' : ''}: dispatcher ${fmt(r.perSec)}/s p50 ${fmt(r.p50)} µs p99 ${fmt(r.p99)} µs; ` +
            `tls framed ${fmt(t.perSec)}/s p50 ${fmt(t.p50)} µs p99 ${fmt(t.p99)} µs; dgram floor ${fmt(f.perSec)}/s p50 ${fmt(f.p50)} µs`,
        );
      } finally {
        if (pinned) pin(pinnable, ALL_CPUS);
      }
    }

    const s = await mcli.call('send', { target: mtarget, ms: MSG_MS, size, batch: SEND_BATCH, max: 10_000_000 });
    msg.send.peersock.push(s.perSec);
    if (s.received !== s.sent) warnings.push(`send() ${tag}: server counted ${s.received} of ${s.sent} messages`);
    log(`send() ${tag}: ${fmt(s.perSec)}/s received (${s.received} in ${fmt(s.ms)} ms; client issued ${fmt(s.clientPerSec)}/s)`);

    const line: string[] = [];
    for (const k of KINDS) {
      const f = await cli[k].call('frames', { target: target[k], ms: MSG_MS, size, batch: FRAMES_BATCH, max: 40_000_000 });
      if ('stalled' in f) {
        warnings.push(`${k} framed stream ${tag}: writer stalled after ${f.stalled} messages`);
        line.push(`${k} stalled`);
        continue;
      }
      if (f.received !== f.sent) warnings.push(`${k} framed stream ${tag}: server counted ${f.received} of ${f.sent} messages`);
      msg.frames[k].push(f.perSec);
      line.push(`${k} ${fmt(f.perSec)}/s`);
    }
    log(`raw framed stream ${tag}:`, line.join(', '));

    const h = await mcli.call('hol', { target: mtarget, n: HOL_REQUESTS, size, bigBytes: HOL_BIG, maxBigs: HOL_MAX_BIGS, maxMs: HOL_MS }, 120_000);
    msg.holIdle.peersock.push(h.idleP50);
    msg.holP50.peersock.push(h.p50);
    msg.holP99.peersock.push(h.p99);
    msg.holRatio.peersock.push(h.p50 / h.idleP50);
    holRuns.push({ n: h.n, bigs: h.bigs, bigMs: h.bigMs });
    log(
      `head-of-line ${tag}: idle p50 ${fmt(h.idleP50)} µs; with 16 MiB in flight p50 ${fmt(h.p50)} µs p99 ${fmt(h.p99)} µs max ${fmt(h.max)} µs ` +
        `(${h.n} requests, ${h.bigs} big sends of ${fmt(h.bigMs)} ms each)`,
    );
  }
  if (!pinWorks) log('taskset failed: pinned figures skipped');
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
  const m = (f: keyof typeof msg, k: Kind = 'peersock'): number => med(msg[f][k]);
  const msgCell = (runs: number[]): string => {
    if (runs.length === 0) return '—';
    const s = summary(runs);
    const n = runs.length < MSG_RUNS ? `, ${runs.length} runs` : '';
    return runs.length === 1 ? `${fmt(s.med)}${n}` : `${fmt(s.med)} (${fmt(s.min)}–${fmt(s.max)}${n})`;
  };
  const msgRows: [string, keyof typeof msg][] = [
    [`request(), ${MSG_SIZE} B, one in flight (round trips/s; tls: length-prefixed echo)`, 'req'],
    ['  latency p50 (µs, lower is better)', 'reqP50'],
    ['  latency p99 (µs, lower is better)', 'reqP99'],
    [`  raw node:dgram ${MSG_SIZE} B ping-pong floor (round trips/s)`, 'floor'],
    ['  raw node:dgram ping-pong floor p50 (µs)', 'floorP50'],
    [`request(), client and server pinned to one CPU (round trips/s)`, 'reqPin'],
    ['  latency p50, pinned (µs, lower is better)', 'reqPinP50'],
    ['  latency p99, pinned (µs, lower is better)', 'reqPinP99'],
    [`  raw node:dgram ping-pong floor, pinned (round trips/s)`, 'floorPin'],
    ['  raw node:dgram ping-pong floor p50, pinned (µs)', 'floorPinP50'],
    [`send(), ${MSG_SIZE} B one-way reliable (messages/s received)`, 'send'],
    [`raw stream, ${MSG_SIZE} B length-prefixed, no dispatcher (messages/s received)`, 'frames'],
    ['head-of-line: idle request p50 just before (µs)', 'holIdle'],
    ['head-of-line: request p50 while a 16 MiB send() is in flight (µs)', 'holP50'],
    ['head-of-line: request p99 while a 16 MiB send() is in flight (µs)', 'holP99'],
    ['head-of-line: busy p50 / idle p50 (×, lower is better)', 'holRatio'],
  ];
  const ratioCell = (f: keyof typeof msg): string => (msg[f].tls.length > 0 ? fmt(m(f) / m(f, 'tls')) : '');
  const holN = summary(holRuns.map((h) => h.n));
  const holBigMs = summary(holRuns.map((h) => h.bigMs));
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
    '',
    `Dispatch layer (Dispatcher, protocol 'bench/1', raw string types), median of ${MSG_RUNS} runs (min–max):`,
    '',
    '| figure | peersock | node:tls | peersock / tls |',
    '|---|---:|---:|---:|',
    ...msgRows.map(([label, f]) => `| ${label} | ${msgCell(msg[f].peersock)} | ${msgCell(msg[f].tls)} | ${ratioCell(f)} |`),
    '',
    `Head-of-line runs: median ${fmt(holN.med)} requests completed while big messages were in flight (of ${HOL_REQUESTS}, capped at ${HOL_MS / 1000} s); ` +
      `a 16 MiB send() took ${fmt(holBigMs.med)} ms (median of per-run means) from send() to the server's arrival notice.`,
    '',
    `- ${pass(m('req') >= 17_000)}: request() ≥ 17,000 round trips/s (${fmt(m('req'))}/s; pinned to one CPU ${pass(m('reqPin') >= 17_000)}: ${fmt(m('reqPin'))}/s)`,
    `- ${pass(m('reqP50') <= 50)}: request() p50 ≤ 50 µs (${fmt(m('reqP50'))} µs; pinned ${pass(m('reqPinP50') <= 50)}: ${fmt(m('reqPinP50'))} µs)`,
    `- ${pass(m('req') >= m('req', 'tls'))}: request() ≥ node:tls length-prefixed echo (${fmt(m('req') / m('req', 'tls'))} ×; pinned ${pass(m('reqPin') >= m('reqPin', 'tls'))}: ${fmt(m('reqPin') / m('reqPin', 'tls'))} ×)`,
    `- ${pass(m('send') >= 500_000)}: send() ≥ 500,000 messages/s (${fmt(m('send'))}/s)`,
    `- ${pass(m('frames') >= 1_500_000)}: raw framed stream ≥ 1,500,000 messages/s (${fmt(m('frames'))}/s)`,
    '',
    ...reach(m),
    ...(warnings.length > 0 ? ['', 'Warnings:', ...warnings.map((w) => `- ${w}`)] : []),
  ];
  return out.join('\n');
}

/**
 * What the request() targets leave for peersock's own work, from the same
 * run: a bare node:dgram ping-pong between the same kind of processes is the
 * floor any design over node:dgram pays; node:tls's round trip minus that
 * floor is the time a request() may spend on QUIC (packet processing,
 * encryption, ACKs), framing and dispatch on both sides to match node:tls.
 */
function reach(m: (f: keyof typeof msg, k?: Kind) => number): string[] {
  const rt = (rate: number): number => 1e6 / rate;
  const line = (label: string, req: keyof typeof msg, floor: keyof typeof msg, floorP50: keyof typeof msg): string => {
    const budget = rt(m(req, 'tls')) - rt(m(floor));
    return (
      `- ${label}: node:tls ${fmt(m(req, 'tls'))} round trips/s = ${fmt(rt(m(req, 'tls')))} µs each; bare node:dgram ping-pong ` +
      `${fmt(m(floor))}/s = ${fmt(rt(m(floor)))} µs, p50 ${fmt(m(floorP50))} µs. To match node:tls a request() has ` +
      `${budget > 0 ? `${fmt(budget)} µs` : 'no time (tls is at or below the UDP floor)'} per round trip for QUIC, framing and dispatch on both sides; ` +
      `17,000/s needs the floor ≤ ${fmt(rt(17_000))} µs (it is ${fmt(rt(m(floor)))}), p50 ≤ 50 µs needs the floor's p50 below 50 (it is ${fmt(m(floorP50))}).`
    );
  };
  return [
    'What the request() targets leave for peersock on this machine (same run):',
    '',
    line('as scheduled', 'req', 'floor', 'floorP50'),
    line('pinned to one CPU', 'reqPin', 'floorPin', 'floorPinP50'),
  ];
}

const METHOD = `
Method: bulk = one stream, the client writes ${BULK_BYTES / 2 ** 20} MiB in 64 KiB writes (capped at ${BULK_MAX_MS / 1000} s), timed
by the server from the first byte received to FIN. Request/reply = 64 B echoed, sequential, on one stream, ${RR_MS / 1000} s.
Connections/s = dial + 4 B echo on a stream + graceful close (awaited), ${CONN_MS / 1000} s, one client socket. Idle RSS = a
fresh server (--expose-gc, gc before each reading) after a 20-connection warm-up; one client dials ${IDLE_CONNS} connections
and holds them idle; (RSS after − before) / ${IDLE_CONNS}. dgram ceiling = 1452 B datagrams, ≤ 64 sends in flight, bytes
received over ${DGRAM_MS / 1000} s. node:tls = TLS 1.3, mutual auth with a self-signed Ed25519 certificate, Nagle off.

Dispatch layer (bench/msg-client.ts, bench/msg-server.ts; a fresh connection per figure and run): request() =
sequential \`request(conn, 64 B, { type: 'ping', reply: 'ping' })\`, the handler returns its payload, ${REQ_MS / 1000} s after 500
to warm up; the node:tls column is the same exchange by hand: a 4-byte big-endian length + 64 B, the server parses
frames and echoes each. Each run measures request/reply twice: as the OS schedules the two processes, then with
both pinned to CPU 0 (taskset): on this VM a round trip between processes on different CPUs pays ~35–45 µs of
wake-up per direction (the raw node:dgram ping-pong floor, ${FLOOR_MS / 1000} s, shows it), so unpinned figures swing between two
modes run to run; pinned ones measure the software path.
send() = \`send(conn, 64 B, { type: 'note', reliable: true })\` ${SEND_BATCH} at a time, then the last one's promise is
awaited and the event loop gets a turn (setImmediate), for ${MSG_MS / 1000} s; the server's handler counts them, timed from the
first to a \`noteReport\` request sent after the last (same lane stream). Raw stream = one stream, 4-byte length + 64 B
frames, ${FRAMES_BATCH} per write, for ${MSG_MS / 1000} s; the server parses and counts frames, timed from its first byte to FIN.
Head-of-line = ${HOL_REQUESTS} sequential 64 B request()s idle, then up to ${HOL_REQUESTS} more (at most ${HOL_MS / 1000} s) while
\`send(conn, new Uint8Array(16 MiB), { type: 'big' })\` runs: each big message's arrival is answered by a one-way notice,
on which the client sends the next, so one is always in flight; only requests that ended before the last big message
arrived count. Ratio = busy p50 / idle p50 per run, median over runs. With env BENCH_HOL_TRACE set, the client prints
the connection's RTT and congestion window every 10 ms during the busy phase.
`;

async function main(): Promise<void> {
  const started = Date.now();
  const cert = selfSigned();
  log(`${RUNS} runs per figure; this takes about 3–4 minutes`);
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
