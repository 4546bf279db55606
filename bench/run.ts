/**
 * `npm run bench`: peersock with each I/O driver (node:dgram, native) against
 * node:tls, Holepunch's udx-native + secret-stream and a raw node:dgram
 * ceiling on loopback, client and server in separate processes. Each figure
 * runs RUNS times (env BENCH_RUNS, default 5; the dispatch-layer figures
 * BENCH_MSG_RUNS, default RUNS), transports interleaved run by run, and the
 * median is reported. Then the packet-size figures: bulk over peersock per
 * `maxUdpPayload` / `pmtuDiscovery` setting, both drivers (informational, no
 * target). Prints the tables and writes bench/RESULTS.md (bench/report.ts).
 * Env BENCH_ONLY=packet-size runs only the packet-size figures and prints
 * their table without writing bench/RESULTS.md.
 */
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { selfSigned } from './cert';
import * as C from './config';
import { DRIVERS, KINDS, MSG_RUNS, ONLY, PACKET_SEND_PAYLOAD, PACKET_SIZES, RUNS, type Driver } from './config';
import { killAll, spawnChild, type Child } from './ipc';
import type { BulkResult } from './protocol';
import { METHOD, PACKET_METHOD, emptyResults, ioDelta, packetReport, report, type IoDelta, type SettledBulk } from './report';
import { fmt } from './stats';
import type { Kind, Target } from './transports';
import type { NativeIoStats } from '../src/index';

const here = (f: string): string => path.join(__dirname, f);
const log = (...a: unknown[]): void => console.error('[bench]', ...a);
const res = emptyResults();

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
async function bulk(cli: Child, k: Kind, target: Target, bytes: number, maxMs: number): Promise<BulkResult | undefined> {
  for (let attempt = 0; attempt < 3; attempt++) {
    const r = await cli.call<BulkResult | { stalled: number }>('bulk', { target, bytes, maxMs });
    if (!('stalled' in r)) return r;
    res.stalls[k]++;
    log(`${k} bulk: writer stalled after ${r.stalled} bytes (no 'drain' for 2 s); retrying on a new connection`);
  }
  return undefined;
}

/** The native driver's counters over `f` in the client and server processes. */
async function withIo<T>(cli: Child, srv: Child, f: () => Promise<T>): Promise<{ value: T; client: IoDelta; server: IoDelta }> {
  const [c0, s0] = await Promise.all([cli.call<NativeIoStats>('io'), srv.call<NativeIoStats>('io')]);
  const value = await f();
  const [c1, s1] = await Promise.all([cli.call<NativeIoStats>('io'), srv.call<NativeIoStats>('io')]);
  return { value, client: ioDelta(c0, c1), server: ioDelta(s0, s1) };
}

/** Bulk, request/reply and connections/s with the dgram ceiling, then the dispatch layer, over long-lived processes. */
async function throughput(cert: ReturnType<typeof selfSigned>): Promise<void> {
  const [recv, send, ...rest] = await Promise.all([
    spawnChild(here('dgram.ts'), ['recv']),
    spawnChild(here('dgram.ts'), ['send']),
    ...DRIVERS.flatMap((d) => [spawnChild(here('msg-server.ts'), [d]), spawnChild(here('msg-client.ts'), [d])]),
    ...KINDS.flatMap((k) => [spawnChild(here('server.ts'), [k]), spawnChild(here('client.ts'), [k])]),
  ]);
  const msrv = {} as Record<Driver, Child>;
  const mcli = {} as Record<Driver, Child>;
  for (const [i, d] of DRIVERS.entries()) {
    msrv[d] = rest[2 * i]!;
    mcli[d] = rest[2 * i + 1]!;
  }
  const pairs = rest.slice(2 * DRIVERS.length);
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
      recv!.call<{ bytes: number; ms: number }>('measure', { ms: C.DGRAM_MS }),
      send!.call('blast', { port, ms: C.DGRAM_MS + 500 }),
    ]);
    res.ceiling.push(mbps(got));
    const line = [`ceiling ${fmt(mbps(got))}`];
    for (const k of KINDS) {
      const { value: r, client, server } =
        k === 'native'
          ? await withIo(cli[k], srv[k], () => bulk(cli[k], k, target[k], C.BULK_BYTES, C.BULK_MAX_MS))
          : { value: await bulk(cli[k], k, target[k], C.BULK_BYTES, C.BULK_MAX_MS), client: undefined, server: undefined };
      if (r === undefined) {
        line.push(`${k} stalled`);
        continue;
      }
      const mib = r.bytes / 2 ** 20;
      const cpuMs = (r.cpuUs + r.clientCpuUs) / 1000;
      res.figs.bulk[k].push(mbps(r));
      res.figs.cpu[k].push(cpuMs / mib);
      if (client !== undefined && server !== undefined) res.bulkIo.push({ client, server });
      line.push(`${k} ${fmt(mbps(r))} (${fmt(mib)} MiB, ${fmt(cpuMs / mib)} CPU ms/MiB)`);
    }
    log(`bulk MB/s run ${run}/${RUNS}:`, line.join(', '));
  }
  for (let run = 1; run <= RUNS; run++) {
    for (const k of KINDS) {
      const r = await cli[k].call('rr', { target: target[k], ms: C.RR_MS, size: 64 });
      res.figs.rr[k].push(r.perSec);
      res.figs.p50[k].push(r.p50);
      res.figs.p99[k].push(r.p99);
      log(`rr run ${run}/${RUNS} ${k}: ${fmt(r.perSec)}/s p50 ${fmt(r.p50)} µs p99 ${fmt(r.p99)} µs`);
    }
  }
  for (const k of KINDS) await cli[k].call('conns', { target: target[k], ms: 300, concurrency: 4 }); // warm-up
  for (let run = 1; run <= RUNS; run++) {
    for (const [fig, concurrency] of [['connSeq', 1], ['connPar', 8]] as const) {
      for (const k of KINDS) {
        const r = await cli[k].call('conns', { target: target[k], ms: C.CONN_MS, concurrency });
        res.figs[fig][k].push(r.perSec);
        if (r.errors > 0) res.warnings.push(`${k} conns x${concurrency}: ${r.errors} errors, first: ${r.firstError}`);
        log(`conns/s run ${run}/${RUNS} ${k} x${concurrency}: ${fmt(r.perSec)} (${r.errors} errors)`);
      }
    }
  }
  const mtarget = {} as Record<Driver, Target>;
  for (const d of DRIVERS) {
    mtarget[d] = await msrv[d].call('listen');
    await mcli[d].call('init');
  }
  await recv!.call('echo', { on: true });
  await messages({ cli, srv, target, mcli, msrv, mtarget, echo: recv!, echoPort: port, pinger: send! });
  for (const c of [recv!, send!, ...rest]) c.kill();
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
  /** Dispatcher clients and servers, per I/O driver. */
  mcli: Record<Driver, Child>;
  msrv: Record<Driver, Child>;
  mtarget: Record<Driver, Target>;
  /** node:dgram echo socket (port `echoPort`) and the process pinging it. */
  echo: Child;
  echoPort: number;
  pinger: Child;
}

/** The stream transports' column for request(): the same 64 B exchange by hand, length-prefixed. */
const FRAMED: readonly Kind[] = ['tls', 'udx'];

/**
 * Dispatch-layer figures: request() over both drivers vs a hand-framed echo
 * over node:tls and udx (as scheduled, then pinned to one CPU) with a
 * node:dgram ping-pong floor, send(), a raw framed stream over every
 * transport, and head-of-line blocking.
 */
async function messages(p: MsgProcs): Promise<void> {
  const { cli, target, mcli, mtarget } = p;
  const { msg } = res;
  const size = C.MSG_SIZE;
  const pinnable = [...DRIVERS.flatMap((d) => [p.mcli[d], p.msrv[d]]), ...FRAMED.flatMap((k) => [p.cli[k], p.srv[k]]), p.echo, p.pinger];
  let pinWorks = true;
  for (let run = 1; run <= MSG_RUNS; run++) {
    const tag = `run ${run}/${MSG_RUNS}`;
    for (const pinned of [false, true]) {
      if (pinned && !(pinWorks = pin(pinnable, '0'))) {
        res.warnings.push('taskset failed: no pinned request/reply figures');
        pin(pinnable, ALL_CPUS);
        break;
      }
      try {
        const [fReq, fP50, fP99, fFloor, fFloorP50] = pinned
          ? (['reqPin', 'reqPinP50', 'reqPinP99', 'floorPin', 'floorPinP50'] as const)
          : (['req', 'reqP50', 'reqP99', 'floor', 'floorP50'] as const);
        const line: string[] = [];
        for (const k of [...DRIVERS, ...FRAMED]) {
          const r =
            k === 'dgram' || k === 'native'
              ? await mcli[k].call('request', { target: mtarget[k], ms: C.REQ_MS, size })
              : await cli[k].call('frr', { target: target[k], ms: C.REQ_MS, size });
          msg[fReq][k].push(r.perSec);
          msg[fP50][k].push(r.p50);
          msg[fP99][k].push(r.p99);
          line.push(`${k} ${fmt(r.perSec)}/s p50 ${fmt(r.p50)} µs p99 ${fmt(r.p99)} µs`);
        }
        const f = await p.pinger.call('pingpong', { port: p.echoPort, ms: C.FLOOR_MS, size });
        if (f.lost > 0) res.warnings.push(`dgram ping-pong ${tag}: a datagram was lost; run cut short at ${f.n} round trips`);
        msg[fFloor].dgram.push(f.perSec);
        msg[fFloorP50].dgram.push(f.p50);
        log(`request ${tag}${pinned ? ' (pinned to one CPU)' : ''}: ${line.join('; ')}; node:dgram floor ${fmt(f.perSec)}/s p50 ${fmt(f.p50)} µs`);
      } finally {
        if (pinned) pin(pinnable, ALL_CPUS);
      }
    }

    for (const d of DRIVERS) {
      const s = await mcli[d].call('send', { target: mtarget[d], ms: C.MSG_MS, size, batch: C.SEND_BATCH, max: 10_000_000 });
      msg.send[d].push(s.perSec);
      if (s.received !== s.sent) res.warnings.push(`${d} send() ${tag}: server counted ${s.received} of ${s.sent} messages`);
      log(`send() ${tag} ${d}: ${fmt(s.perSec)}/s received (${s.received} in ${fmt(s.ms)} ms; client issued ${fmt(s.clientPerSec)}/s)`);
    }

    const line: string[] = [];
    for (const k of KINDS) {
      const f = await cli[k].call('frames', { target: target[k], ms: C.MSG_MS, size, batch: C.FRAMES_BATCH, max: 40_000_000 });
      if ('stalled' in f) {
        res.warnings.push(`${k} framed stream ${tag}: writer stalled after ${f.stalled} messages`);
        line.push(`${k} stalled`);
        continue;
      }
      if (f.received !== f.sent) res.warnings.push(`${k} framed stream ${tag}: server counted ${f.received} of ${f.sent} messages`);
      msg.frames[k].push(f.perSec);
      line.push(`${k} ${fmt(f.perSec)}/s`);
    }
    log(`raw framed stream ${tag}:`, line.join(', '));

    for (const d of DRIVERS) {
      const h = await mcli[d].call(
        'hol',
        { target: mtarget[d], n: C.HOL_REQUESTS, size, bigBytes: C.HOL_BIG, maxBigs: C.HOL_MAX_BIGS, maxMs: C.HOL_MS },
        120_000,
      );
      msg.holIdle[d].push(h.idleP50);
      msg.holP50[d].push(h.p50);
      msg.holP99[d].push(h.p99);
      msg.holRatio[d].push(h.p50 / h.idleP50);
      res.hol[d].push({ n: h.n, bigs: h.bigs, bigMs: h.bigMs });
      log(
        `head-of-line ${tag} ${d}: idle p50 ${fmt(h.idleP50)} µs; with 16 MiB in flight p50 ${fmt(h.p50)} µs p99 ${fmt(h.p99)} µs max ${fmt(h.max)} µs ` +
          `(${h.n} requests, ${h.bigs} big sends of ${fmt(h.bigMs)} ms each)`,
      );
    }
  }
  if (!pinWorks) log('taskset failed: pinned figures skipped');
}

/**
 * Packet size: per `maxUdpPayload` / `pmtuDiscovery` setting and driver, a
 * bulk transfer on a connection whose path MTU has settled (client.ts
 * settledBulk). One client and one server process per driver, rebound with
 * the setting's options before each transfer; settings and drivers
 * interleaved run by run. Each run ends with send() per driver between a
 * dispatch-layer pair bound with `maxUdpPayload: PACKET_SEND_PAYLOAD`.
 */
async function packetSize(cert: ReturnType<typeof selfSigned>): Promise<void> {
  const t0 = Date.now();
  const procs = await Promise.all(DRIVERS.map(async (d) => ({ d, srv: await spawnChild(here('server.ts'), [d]), cli: await spawnChild(here('client.ts'), [d]) })));
  // send() with Ethernet-size packets: a dispatch-layer pair per driver, bound with it.
  const sendTuning = { maxUdpPayload: PACKET_SEND_PAYLOAD };
  const senders = await Promise.all(
    DRIVERS.map(async (d) => {
      const srv = await spawnChild(here('msg-server.ts'), [d]);
      const cli = await spawnChild(here('msg-client.ts'), [d]);
      const target: Target = await srv.call('listen', { tuning: sendTuning });
      await cli.call('init', { tuning: sendTuning });
      return { d, srv, cli, target };
    }),
  );
  try {
    for (let run = 1; run <= RUNS; run++) {
      for (const setting of PACKET_SIZES) {
        const tuning = { maxUdpPayload: setting.maxUdpPayload, pmtuDiscovery: setting.pmtuDiscovery };
        const line: string[] = [];
        for (const { d, srv, cli } of procs) {
          const target: Target = await srv.call('listen', { cert, tuning });
          await cli.call('init', { cert, tuning });
          let r: SettledBulk | { stalled: number } | undefined;
          for (let attempt = 0; attempt < 3 && (r === undefined || 'stalled' in r); attempt++) {
            r = await cli.call<SettledBulk | { stalled: number }>('settledBulk', {
              target,
              bytes: C.PACKET_BYTES,
              maxMs: C.PACKET_MAX_MS,
              warmBytes: C.PACKET_WARM_BYTES,
              pmtu: setting.maxUdpPayload,
              settleMs: C.PACKET_SETTLE_MS,
            });
            if ('stalled' in r) res.warnings.push(`packet size ${setting.label} ${d} run ${run}: writer stalled after ${r.stalled} bytes; retried`);
          }
          if (r === undefined || 'stalled' in r) {
            line.push(`${d} stalled`);
            continue;
          }
          res.packet[setting.label][d].push(r);
          const mib = r.bytes / 2 ** 20;
          line.push(
            `${d} ${fmt(mbps(r))} MB/s, CPU client ${fmt(r.clientCpuUs / 1000 / mib)} server ${fmt(r.cpuUs / 1000 / mib)} ms/MiB, ` +
              `${r.sentPackets} packets for ${fmt(mib)} MiB, pmtu ${r.pmtu} (settled in ${r.settleMs} ms)`,
          );
        }
        log(`packet size run ${run}/${RUNS} ${setting.label}:`, line.join('; '));
      }
      const line: string[] = [];
      for (const { d, cli, target } of senders) {
        const s = await cli.call('send', { target, ms: C.MSG_MS, size: C.MSG_SIZE, batch: C.SEND_BATCH, max: 10_000_000 });
        if (s.received !== s.sent) res.warnings.push(`${d} send() at ${PACKET_SEND_PAYLOAD} B, run ${run}: server counted ${s.received} of ${s.sent} messages`);
        res.packetSend[d as Driver].push(s.perSec);
        line.push(`${d} ${fmt(s.perSec)}/s`);
      }
      log(`packet size run ${run}/${RUNS} send() at maxUdpPayload ${PACKET_SEND_PAYLOAD}:`, line.join('; '));
    }
  } finally {
    for (const { srv, cli } of [...procs, ...senders]) {
      cli.kill();
      srv.kill();
    }
  }
  log(`packet size: ${fmt((Date.now() - t0) / 1000)} s`);
}

/** Server RSS per idle connection: a fresh gc-able server per run; the client holds IDLE_CONNS idle connections. */
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
        await cli[k].call('idleOpen', { target, n: C.IDLE_CONNS, concurrency: 16 }, 60_000);
        const ok = await waitFor(async () => (await srv.call('count')) >= C.IDLE_CONNS, 10_000);
        if (!ok) res.warnings.push(`${k} idle: server saw ${await srv.call('count')} of ${C.IDLE_CONNS} connections`);
        const after: number = await srv.call('rss');
        const kib = (after - before) / C.IDLE_CONNS / 1024;
        res.figs.idle[k].push(kib);
        log(`idle RSS run ${run}/${RUNS} ${k}: ${fmt(kib)} KiB/conn (${fmt(before / 2 ** 20)} → ${fmt(after / 2 ** 20)} MiB)`);
        await cli[k].call('idleClose', undefined, 30_000);
      } finally {
        srv.kill();
      }
    }
  }
  for (const k of KINDS) cli[k].kill();
}

/** Stop after this long, whatever the state (5 runs take about 6 minutes). */
const GUARD_MIN = 5 + 2 * Math.max(RUNS, MSG_RUNS);

async function main(): Promise<void> {
  const started = Date.now();
  const cert = selfSigned();
  if (ONLY === 'packet-size') {
    log(`${RUNS} runs per figure; packet-size figures only`);
    await packetSize(cert);
    console.log(`\n${packetReport(res, started)}\n\n${PACKET_METHOD}`);
    log('bench/RESULTS.md not written (BENCH_ONLY)');
    return;
  }
  log(`${RUNS} runs per figure; this takes about ${Math.round(RUNS + 0.5)} minutes`);
  await throughput(cert);
  await packetSize(cert);
  await idleMemory(cert);
  const text = report(res, started);
  console.log(`\n${text}`);
  writeFileSync(here('RESULTS.md'), `# peersock benchmark results\n\nGenerated by \`npm run bench\`.\n\n${text}\n${METHOD}`);
  log('wrote bench/RESULTS.md');
}

const guard = setTimeout(() => {
  log(`timed out after ${GUARD_MIN} minutes`);
  killAll();
  process.exit(1);
}, GUARD_MIN * 60_000);
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
