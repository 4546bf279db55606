/**
 * The bench's results (filled by bench/run.ts) and bench/RESULTS.md's text:
 * two tables with one column per transport (the peersock dgram driver first:
 * scripts/bench-compare.mjs reads the first value column and the node:tls
 * one), ratios, PASS/FAIL lines, the packet-size table (per
 * `maxUdpPayload` setting and driver, informational) and the method.
 */
import { readFileSync } from 'node:fs';
import os from 'node:os';

import * as C from './config';
import { DRIVERS, KINDS, LABEL, MSG_RUNS, PACKET_ETHERNET, PACKET_SEND_PAYLOAD, PACKET_SIZES, RUNS, type Driver, type PacketSize } from './config';
import type { BulkResult } from './protocol';
import { fmt, summary } from './stats';
import type { Kind } from './transports';
import type { NativeIoStats } from '../src/index';

export type Runs = Record<Kind, number[]>;
const FIGS = ['bulk', 'cpu', 'rr', 'p50', 'p99', 'connSeq', 'connPar', 'idle'] as const;
const MSG_FIGS = [
  'req',
  'reqP50',
  'reqP99',
  'reqPin',
  'reqPinP50',
  'reqPinP99',
  'floor',
  'floorP50',
  'floorPin',
  'floorPinP50',
  'send',
  'frames',
  'holIdle',
  'holP50',
  'holP99',
  'holRatio',
] as const;
type Fig = (typeof FIGS)[number];
type MsgFig = (typeof MSG_FIGS)[number];

/** The native driver's counters moved over a stretch of time (maxGsoSegments, groSegments: as at its end). */
export type IoDelta = NativeIoStats;

export function ioDelta(a: NativeIoStats, b: NativeIoStats): IoDelta {
  return {
    recvCalls: b.recvCalls - a.recvCalls,
    datagramsIn: b.datagramsIn - a.datagramsIn,
    sendCalls: b.sendCalls - a.sendCalls,
    datagramsOut: b.datagramsOut - a.datagramsOut,
    jsCalls: b.jsCalls - a.jsCalls,
    sendErrors: b.sendErrors - a.sendErrors,
    wouldBlock: b.wouldBlock - a.wouldBlock,
    maxGsoSegments: b.maxGsoSegments,
    groSegments: b.groSegments,
  };
}

/** One packet-size run (bench/client.ts settledBulk): a bulk transfer and the client connection's counters over it. */
export interface SettledBulk extends BulkResult {
  /** conn.stats().pmtu once connected, when the measured transfer started, and when it ended. */
  pmtuDial: number;
  pmtu: number;
  pmtuEnd: number;
  /** ms from the end of the warm-up transfer until the path MTU had reached `maxUdpPayload` (or the wait gave up). */
  settleMs: number;
  /** Packets, bytes (UDP payload) and lost packets the client's connection counted over the measured transfer. */
  sentPackets: number;
  sentBytes: number;
  lostPackets: number;
}

/** Every figure's runs, per transport. */
export interface Results {
  figs: Record<Fig, Runs>;
  /**
   * Dispatch-layer figures (tls, udx: length-prefixed framing by hand).
   * Request/reply runs twice: as scheduled, and with client and server pinned
   * to one CPU ('Pin'); the node:dgram ping-pong floor goes in `dgram`.
   */
  msg: Record<MsgFig, Runs>;
  /** Per head-of-line run and driver: busy requests completed, big messages sent, mean big delivery ms. */
  hol: Record<Driver, { n: number; bigs: number; bigMs: number }[]>;
  /** The native driver's counters per bulk run, in the client (sending) and server (receiving). */
  bulkIo: { client: IoDelta; server: IoDelta }[];
  ceiling: number[];
  /** Packet-size runs, per setting (its label) and driver. */
  packet: Record<PacketSize, Record<Driver, SettledBulk[]>>;
  /** send() runs (messages/s received) with both sides bound with `maxUdpPayload: PACKET_SEND_PAYLOAD`, per driver. */
  packetSend: Record<Driver, number[]>;
  warnings: string[];
  stalls: Record<Kind, number>;
}

const runs = (): Runs => ({ dgram: [], native: [], tls: [], udx: [] });

export function emptyResults(): Results {
  return {
    figs: Object.fromEntries(FIGS.map((f) => [f, runs()])) as Record<Fig, Runs>,
    msg: Object.fromEntries(MSG_FIGS.map((f) => [f, runs()])) as Record<MsgFig, Runs>,
    hol: { dgram: [], native: [] },
    bulkIo: [],
    ceiling: [],
    packet: Object.fromEntries(PACKET_SIZES.map((p) => [p.label, { dgram: [] as SettledBulk[], native: [] as SettledBulk[] }])) as Results['packet'],
    packetSend: { dgram: [], native: [] },
    warnings: [],
    stalls: { dgram: 0, native: 0, tls: 0, udx: 0 },
  };
}

const med = (xs: number[]): number => summary(xs).med;
/** A settled bulk run's MB/s. */
const mbps = (r: SettledBulk): number => r.bytes / 1e6 / (r.ms / 1000);
const pass = (ok: boolean): string => (ok ? 'PASS' : 'FAIL');

/** Median (min–max), with the number of runs when some failed. */
function cell(xs: number[], expected: number): string {
  if (xs.length === 0) return '—';
  const s = summary(xs);
  const n = xs.length < expected ? `, ${xs.length} runs` : '';
  return xs.length === 1 ? `${fmt(s.med)}${n}` : `${fmt(s.med)} (${fmt(s.min)}–${fmt(s.max)}${n})`;
}

/** Ratio columns: a / b of the medians. */
const RATIOS: [Kind, Kind][] = [
  ['dgram', 'tls'],
  ['native', 'dgram'],
  ['native', 'tls'],
  ['native', 'udx'],
];
const HEAD = [
  `| figure | ${KINDS.map((k) => LABEL[k]).join(' | ')} | ${RATIOS.map(([a, b]) => `${a} / ${b}`).join(' | ')} |`,
  `|---|${KINDS.map(() => '---:').join('|')}|${RATIOS.map(() => '---:').join('|')}|`,
];

function row(label: string, r: Runs, expected: number): string {
  const ratio = ([a, b]: [Kind, Kind]): string => (r[a].length > 0 && r[b].length > 0 ? fmt(med(r[a]) / med(r[b])) : '');
  return `| ${label} | ${KINDS.map((k) => cell(r[k], expected)).join(' | ')} | ${RATIOS.map(ratio).join(' | ')} |`;
}

/** One line on the native driver's batching in the bulk runs. */
function ioLine(io: Results['bulkIo']): string {
  if (io.length === 0) return 'Native driver in bulk: no counters.';
  const sum = (side: 'client' | 'server', f: keyof IoDelta): number => io.reduce((s, x) => s + x[side][f], 0);
  const per = (a: number, b: number): string => fmt(b > 0 ? a / b : NaN);
  const s = (f: keyof IoDelta): number => sum('server', f);
  const c = (f: keyof IoDelta): number => sum('client', f);
  const last = io[io.length - 1]!;
  return (
    `Native driver in bulk (${io.length} runs): the receiving server took ${per(s('datagramsIn'), s('recvCalls'))} datagrams per receive call ` +
    `(GRO segments ${last.server.groSegments}) and ${per(s('datagramsIn'), s('jsCalls'))} per call into JavaScript, sent ${per(s('datagramsOut'), s('sendCalls'))} per sendmsg; ` +
    `the sending client sent ${per(c('datagramsOut'), c('sendCalls'))} datagrams per sendmsg (GSO up to ${last.client.maxGsoSegments}), ` +
    `met a full socket buffer ${c('wouldBlock')} times, ${c('sendErrors') + s('sendErrors')} send errors; it received ${per(c('datagramsIn'), c('recvCalls'))} per receive call.`
  );
}

/**
 * A native target: the native runs' median against `times` × the base
 * runs' median (the verdict), and the ratio run by run: the transports run
 * interleaved, so run i of each was measured side by side, and the spread
 * of those paired ratios shows how far the verdict is from noise.
 */
function target(label: string, runsA: number[], runsB: number[], times: number, base: string): string {
  if (runsA.length === 0 || runsB.length === 0) return `- no runs: ${label} ≥ ${fmt(times)} × ${base}`;
  const [a, b] = [med(runsA), med(runsB)];
  return `- ${pass(a >= times * b)}: ${label} ≥ ${fmt(times)} × ${base} (${fmt(a / b)} ×: ${fmt(a)} vs ${fmt(b)}${paired(runsA, runsB)})`;
}

/** "; run by run median × (min–max)" of the paired per-run ratios a[i] / b[i] ('' unless both have the same number of runs, 2 or more). */
function paired(runsA: number[], runsB: number[]): string {
  if (runsA.length !== runsB.length || runsA.length < 2) return '';
  const r = summary(runsA.map((x, i) => x / runsB[i]!));
  return `; run by run ${fmt(r.med)} × (${fmt(r.min)}–${fmt(r.max)})`;
}

export function report(res: Results, startedMs: number): string {
  const { figs, msg } = res;
  const rows: [string, Fig][] = [
    ['bulk, 1 stream (MB/s)', 'bulk'],
    ['  bulk CPU time, client + server processes (ms per MiB, lower is better)', 'cpu'],
    ['64 B request/reply (round trips/s)', 'rr'],
    ['  latency p50 (µs, lower is better)', 'p50'],
    ['  latency p99 (µs, lower is better)', 'p99'],
    ['connections/s, sequential', 'connSeq'],
    ['connections/s, 8 in flight', 'connPar'],
    [`server RSS per idle connection (KiB, ${C.IDLE_CONNS} conns, lower is better)`, 'idle'],
  ];
  for (const k of KINDS) {
    if (res.stalls[k] > 0) res.warnings.push(`${k} bulk: ${res.stalls[k]} stalled attempt(s): a blocked writer was never woken (no 'drain' for 2 s); retried`);
  }
  const f = (fig: Fig, k: Kind = 'dgram'): number => med(figs[fig][k]);
  const m = (fig: MsgFig, k: Kind = 'dgram'): number => med(msg[fig][k]);
  const ceiling = med(res.ceiling);
  const ratio = f('bulk') / ceiling;
  const msgRows: [string, MsgFig][] = [
    [`request(), ${C.MSG_SIZE} B, one in flight (round trips/s; tls: length-prefixed echo)`, 'req'],
    ['  latency p50 (µs, lower is better)', 'reqP50'],
    ['  latency p99 (µs, lower is better)', 'reqP99'],
    [`  raw node:dgram ${C.MSG_SIZE} B ping-pong floor (round trips/s)`, 'floor'],
    ['  raw node:dgram ping-pong floor p50 (µs)', 'floorP50'],
    [`request(), client and server pinned to one CPU (round trips/s)`, 'reqPin'],
    ['  latency p50, pinned (µs, lower is better)', 'reqPinP50'],
    ['  latency p99, pinned (µs, lower is better)', 'reqPinP99'],
    [`  raw node:dgram ping-pong floor, pinned (round trips/s)`, 'floorPin'],
    ['  raw node:dgram ping-pong floor p50, pinned (µs)', 'floorPinP50'],
    [`send(), ${C.MSG_SIZE} B one-way reliable (messages/s received)`, 'send'],
    [`raw stream, ${C.MSG_SIZE} B length-prefixed, no dispatcher (messages/s received)`, 'frames'],
    ['head-of-line: idle request p50 just before (µs)', 'holIdle'],
    ['head-of-line: request p50 while a 16 MiB send() is in flight (µs)', 'holP50'],
    ['head-of-line: request p99 while a 16 MiB send() is in flight (µs)', 'holP99'],
    ['head-of-line: busy p50 / idle p50 (×, lower is better)', 'holRatio'],
  ];
  const hol = DRIVERS.map((d) => {
    if (res.hol[d].length === 0) return `${d}: no runs`;
    const n = summary(res.hol[d].map((h) => h.n));
    const bigMs = summary(res.hol[d].map((h) => h.bigMs));
    return `${d} driver: median ${fmt(n.med)} requests completed while big messages were in flight, a 16 MiB send() took ${fmt(bigMs.med)} ms`;
  });
  const out = [
    machine(),
    `Median of ${RUNS} runs (min–max); client and server in separate processes on 127.0.0.1. Total ${fmt((Date.now() - startedMs) / 1000)} s.`,
    '',
    ...HEAD,
    ...rows.map(([label, fig]) => row(label, figs[fig], RUNS)),
    `| raw node:dgram ceiling, 1452 B datagrams (MB/s received) | ${cell(res.ceiling, RUNS)} |${' |'.repeat(KINDS.length - 1 + RATIOS.length)}`,
    '',
    `peersock bulk / dgram ceiling: ${fmt(ratio)} (native driver: ${fmt(f('bulk', 'native') / ceiling)})`,
    '',
    ioLine(res.bulkIo),
    '',
    'Dgram driver:',
    '',
    `- ${pass(ratio >= 0.5)}: bulk ≥ 0.5 × dgram ceiling (${fmt(ratio)} ×)`,
    `- ${pass(f('connPar') >= 500)}: ≥ 500 connections/s, 8 in flight (${fmt(f('connPar'))}/s; sequential ${fmt(f('connSeq'))}/s)`,
    `- ${pass(f('idle') <= 64)}: ≤ 64 KiB server RSS per idle connection (${fmt(f('idle'))} KiB)`,
    '',
    `Dispatch layer (Dispatcher, protocol 'bench/1', raw string types; tls and udx: the same exchange by hand), median of ${MSG_RUNS} runs (min–max):`,
    '',
    ...HEAD,
    ...msgRows.map(([label, fig]) => row(label, msg[fig], MSG_RUNS)),
    '',
    `Head-of-line runs (of ${C.HOL_REQUESTS} requests, capped at ${C.HOL_MS / 1000} s; big message time from send() to the server's arrival notice, median of per-run means): ${hol.join('; ')}.`,
    '',
    'Dgram driver:',
    '',
    `- ${pass(m('req') >= 17_000)}: request() ≥ 17,000 round trips/s (${fmt(m('req'))}/s; pinned to one CPU ${pass(m('reqPin') >= 17_000)}: ${fmt(m('reqPin'))}/s)`,
    `- ${pass(m('reqP50') <= 50)}: request() p50 ≤ 50 µs (${fmt(m('reqP50'))} µs; pinned ${pass(m('reqPinP50') <= 50)}: ${fmt(m('reqPinP50'))} µs)`,
    `- ${pass(m('req') >= m('req', 'tls'))}: request() ≥ node:tls length-prefixed echo (${fmt(m('req') / m('req', 'tls'))} ×; pinned ${pass(m('reqPin') >= m('reqPin', 'tls'))}: ${fmt(m('reqPin') / m('reqPin', 'tls'))} ×)`,
    `- ${pass(m('send') >= 500_000)}: send() ≥ 500,000 messages/s (${fmt(m('send'))}/s)`,
    `- ${pass(m('frames') >= 1_500_000)}: raw framed stream ≥ 1,500,000 messages/s (${fmt(m('frames'))}/s)`,
    '',
    'Native driver (as scheduled, medians of this run):',
    '',
    target('bulk', figs.bulk.native, figs.bulk.dgram, 2, 'dgram driver'),
    target('bulk', figs.bulk.native, figs.bulk.udx, 1.2, 'udx + secret-stream'),
    target('bulk', figs.bulk.native, figs.bulk.tls, 0.6, 'node:tls'),
    target('64 B request/reply on a raw stream', figs.rr.native, figs.rr.tls, 1, 'node:tls'),
    target('request()', msg.req.native, msg.req.tls, 0.9, 'node:tls length-prefixed echo'),
    target('request() pinned to one CPU', msg.reqPin.native, msg.reqPin.tls, 0.6, 'node:tls length-prefixed echo'),
    target('raw framed stream messages/s', msg.frames.native, msg.frames.tls, 0.6, 'node:tls'),
    target('send()', msg.send.native, msg.send.dgram, 1.5, 'dgram driver'),
    target('connections/s, 8 in flight', figs.connPar.native, figs.connPar.tls, 2, 'node:tls'),
    '',
    `The two targets against the dgram driver once more with ${PACKET_SEND_PAYLOAD}-byte packets, the default toward every peer beyond loopback (the packet-size group below, same run; above, loopback peers get 16,383-byte packets, which cut the dgram driver's cost per byte most):`,
    '',
    target(`bulk (settled, ${PACKET_ETHERNET})`, res.packet[PACKET_ETHERNET].native.map(mbps), res.packet[PACKET_ETHERNET].dgram.map(mbps), 2, 'dgram driver'),
    target(`send() (maxUdpPayload ${PACKET_SEND_PAYLOAD})`, res.packetSend.native, res.packetSend.dgram, 1.5, 'dgram driver'),
    '',
    ...reach(m),
    '',
    ...packetSection(res),
    ...(res.warnings.length > 0 ? ['', 'Warnings:', ...res.warnings.map((w) => `- ${w}`)] : []),
  ];
  return out.join('\n');
}

/** The packet-size table: one row per setting and driver, then native / dgram of the medians. */
function packetSection(res: Results): string[] {
  const MiB = (r: SettledBulk): number => r.bytes / 2 ** 20;
  const cols: [string, (r: SettledBulk) => number][] = [
    ['MB/s', mbps],
    ['client CPU (ms/MiB)', (r) => r.clientCpuUs / 1000 / MiB(r)],
    ['server CPU (ms/MiB)', (r) => r.cpuUs / 1000 / MiB(r)],
    ['client packets per MiB', (r) => r.sentPackets / MiB(r)],
    ['client bytes per packet', (r) => r.sentBytes / r.sentPackets],
  ];
  const lines = [
    `Packet size (informational): bulk over one stream per \`maxUdpPayload\` setting, both sides bound with it, on a connection whose path MTU has settled; median of ${RUNS} runs (min–max):`,
    '',
    `| \`maxUdpPayload\` | driver | ${cols.map(([h]) => h).join(' | ')} | path MTU once connected → at start (B) |`,
    `|---|---|${cols.map(() => '---:').join('|')}|---:|`,
  ];
  const lost: string[] = [];
  for (const { label, maxUdpPayload } of PACKET_SIZES) {
    const byDriver = res.packet[label];
    for (const d of DRIVERS) {
      const rs = byDriver[d];
      const range = (xs: number[]): string => {
        const x = summary(xs);
        return x.min === x.max ? String(x.min) : `${x.min}–${x.max}`;
      };
      const pmtuCell = rs.length === 0 ? '—' : `${range(rs.map((r) => r.pmtuDial))} → ${range(rs.map((r) => r.pmtu))}`;
      lines.push(`| ${d === DRIVERS[0] ? label : ''} | ${d} | ${cols.map(([, f]) => cell(rs.map(f), RUNS)).join(' | ')} | ${pmtuCell} |`);
      const n = rs.reduce((s, r) => s + r.lostPackets, 0);
      if (n > 0) lost.push(`${label} ${d}: ${n}`);
      const short = rs.filter((r) => r.pmtu < maxUdpPayload);
      if (short.length > 0) res.warnings.push(`packet size ${label} ${d}: ${short.length} run(s) started with the path MTU below ${maxUdpPayload} (${short.map((r) => r.pmtu).join(', ')})`);
    }
    const ratio = (f: (r: SettledBulk) => number): string => {
      const [a, b] = [byDriver.native.map(f), byDriver.dgram.map(f)];
      return a.length > 0 && b.length > 0 ? `${fmt(med(a) / med(b))} ×` : '—';
    };
    lines.push(`| | native / dgram | ${cols.map(([, f]) => ratio(f)).join(' | ')} | |`);
  }
  lines.push('', `Lost packets counted by the client's connection over the measured transfers (sum of runs): ${lost.length > 0 ? lost.join('; ') : 'none'}.`);
  const ps = res.packetSend;
  if (ps.dgram.length > 0 || ps.native.length > 0) {
    const ratio = ps.dgram.length > 0 && ps.native.length > 0 ? `; native / dgram ${fmt(med(ps.native) / med(ps.dgram))} ×${paired(ps.native, ps.dgram)}` : '';
    lines.push(
      '',
      `send() of ${C.MSG_SIZE} B (as in the dispatch-layer table), both sides bound with \`maxUdpPayload: ${PACKET_SEND_PAYLOAD}\`, messages/s received: ` +
        `dgram ${cell(ps.dgram, RUNS)}, native ${cell(ps.native, RUNS)}${ratio}.`,
    );
  }
  return lines;
}

/** The text of a BENCH_ONLY=packet-size run: the machine line and the packet-size table. */
export function packetReport(res: Results, startedMs: number): string {
  const out = [machine(), `Client and server in separate processes on 127.0.0.1. Total ${fmt((Date.now() - startedMs) / 1000)} s.`, '', ...packetSection(res)];
  if (res.warnings.length > 0) out.push('', 'Warnings:', ...res.warnings.map((w) => `- ${w}`));
  return out.join('\n');
}

function machine(): string {
  const cpu = /model name\s*:\s*(.*)/.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? os.cpus()[0]?.model ?? '?';
  return `Machine: ${cpu}, ${os.cpus().length} cores, Node ${process.version}, ${os.platform()} ${os.release()}, ${new Date().toISOString()}`;
}

/**
 * What the request() targets leave for peersock's own work, from the same
 * run: a bare node:dgram ping-pong between the same kind of processes is the
 * floor any design over node:dgram pays; node:tls's round trip minus that
 * floor is the time a request() may spend on QUIC (packet processing,
 * encryption, ACKs), framing and dispatch on both sides to match node:tls.
 */
function reach(m: (f: MsgFig, k?: Kind) => number): string[] {
  const rt = (rate: number): number => 1e6 / rate;
  const line = (label: string, req: MsgFig, floor: MsgFig, floorP50: MsgFig): string => {
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

/** The packet-size figures' method. */
export const PACKET_METHOD = `Packet size (bench/client.ts settledBulk, a client and a server process per driver): per setting, both sockets are
bound with \`{ maxUdpPayload, pmtuDiscovery }\`; each run dials one connection, moves ${C.PACKET_WARM_BYTES / 2 ** 20} MiB on a first stream
(warm-up: discovery's probes, congestion window), waits until \`conn.stats().pmtu\` reaches \`maxUdpPayload\` (at most
${C.PACKET_SETTLE_MS / 1000} s; the table shows it once connected and when the measured transfer started), then measures a bulk transfer
on a second stream: ${C.PACKET_BYTES / 2 ** 20} MiB in 64 KiB writes (capped at ${C.PACKET_MAX_MS / 1000} s), timed by the server from first byte to FIN; client
CPU from its first write to the server's report, server CPU from first byte to FIN, each over MiB moved; packets and
bytes = the client connection's \`stats()\` sentPackets and sentBytes over the measured transfer. Settings and drivers
interleaved run by run. Each run ends with send() (as in the dispatch-layer figures, ${C.MSG_MS / 1000} s) per driver between a
dispatch-layer client and server bound with \`maxUdpPayload: ${C.PACKET_SEND_PAYLOAD}\`.`;

export const METHOD = `
Method: columns: peersock with \`bind({ io: 'dgram' })\` (node:dgram) and \`bind({ io: 'native' })\` (the addon owns the
UDP socket: recvmmsg/GRO, sendmsg/GSO on Node's loop); node:tls = TLS 1.3, mutual auth with a self-signed Ed25519
certificate, Nagle off; udx + secret-stream = Holepunch's transport (udx-native, @hyperswarm/secret-stream) set up as
hyperdht sets up a direct connection: a Noise IK handshake (secret-stream's) in one UDP datagram each way on the
stream's socket, carrying each side's udx stream id, then a framed udx stream each way and SecretStream given the
handshake's keys; one stream per connection, 4 MiB socket buffers like peersock. peersock sockets use the defaults:
toward a loopback peer, packets grow to 16,383 bytes once discovery has probed (README "Packet size"), as TCP on
loopback uses its 65,536-byte MTU. Ratios are of medians.
Bulk = one stream, the client writes ${C.BULK_BYTES / 2 ** 20} MiB in 64 KiB writes (capped at ${C.BULK_MAX_MS / 1000} s), timed by the server from the
first byte received to FIN; CPU time = process.cpuUsage() (user + system, every thread) of the client from its first
write to the server's report plus the server's from first byte to FIN, over MiB moved. Request/reply = 64 B echoed,
sequential, on one stream, ${C.RR_MS / 1000} s. Connections/s = dial + 4 B echo on a stream + graceful close (awaited), ${C.CONN_MS / 1000} s, one
client socket. Idle RSS = a fresh server (--expose-gc, gc before each reading) after a 20-connection warm-up; one
client dials ${C.IDLE_CONNS} connections and holds them idle; (RSS after − before) / ${C.IDLE_CONNS}. dgram ceiling = 1452 B datagrams,
≤ 64 sends in flight, bytes received over ${C.DGRAM_MS / 1000} s.

Dispatch layer (bench/msg-client.ts, bench/msg-server.ts, one pair per driver; a fresh connection per figure and
run): request() = sequential \`request(conn, 64 B, { type: 'ping', reply: 'ping' })\`, the handler returns its payload,
${C.REQ_MS / 1000} s after 500 to warm up; the node:tls and udx columns are the same exchange by hand on their stream: a 4-byte
big-endian length + 64 B, the server parses frames and echoes each. Each run measures request/reply twice: as the OS
schedules the processes, then with all of them pinned to CPU 0 (taskset): on this VM a round trip between processes
on different CPUs pays ~35–45 µs of wake-up per direction (the raw node:dgram ping-pong floor, ${C.FLOOR_MS / 1000} s, shows it), so
unpinned figures swing between two modes run to run; pinned ones measure the software path.
send() = \`send(conn, 64 B, { type: 'note', reliable: true })\` ${C.SEND_BATCH} at a time, then the last one's promise is
awaited and the event loop gets a turn (setImmediate), for ${C.MSG_MS / 1000} s; the server's handler counts them, timed from the
first to a \`noteReport\` request sent after the last (same lane stream). Raw stream = one stream, 4-byte length + 64 B
frames, ${C.FRAMES_BATCH} per write, for ${C.MSG_MS / 1000} s; the server parses and counts frames, timed from its first byte to FIN.
Head-of-line = ${C.HOL_REQUESTS} sequential 64 B request()s idle, then up to ${C.HOL_REQUESTS} more (at most ${C.HOL_MS / 1000} s) while
\`send(conn, new Uint8Array(16 MiB), { type: 'big' })\` runs: each big message's arrival is answered by a one-way notice,
on which the client sends the next, so one is always in flight; only requests that ended before the last big message
arrived count. Ratio = busy p50 / idle p50 per run, median over runs. With env BENCH_HOL_TRACE set, the client prints
the connection's RTT and congestion window every 10 ms during the busy phase.

${PACKET_METHOD}`;
