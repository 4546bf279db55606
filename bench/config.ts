/** The bench's knobs and the transports of each figure (bench/run.ts measures, bench/report.ts writes). */
import type { Kind } from './transports';

export const RUNS = Math.max(1, Number(process.env.BENCH_RUNS ?? 5));
export const MSG_RUNS = Math.max(1, Number(process.env.BENCH_MSG_RUNS ?? RUNS));

/** Every transport, in column order: the dgram driver first (scripts/bench-compare.mjs reads the first value column). */
export const KINDS: readonly Kind[] = ['dgram', 'native', 'tls', 'udx'];
/** The peersock I/O drivers: the Dispatcher figures (request(), send(), head-of-line) run over these. */
export const DRIVERS = ['dgram', 'native'] as const;
export type Driver = (typeof DRIVERS)[number];
/** Column headings. */
export const LABEL: Record<Kind, string> = { dgram: 'peersock dgram', native: 'peersock native', tls: 'node:tls', udx: 'udx + secret-stream' };

export const BULK_BYTES = 256 * 1024 * 1024;
export const BULK_MAX_MS = 5000;
export const DGRAM_MS = 2000;
export const CONN_MS = 1500;
export const RR_MS = 1500;
export const IDLE_CONNS = 500;
export const MSG_MS = 1500;
/** Request/reply figures (each run twice: as scheduled and pinned). */
export const REQ_MS = 1500;
export const FLOOR_MS = 1000;
export const MSG_SIZE = 64;
/** send(): sends issued before awaiting the last one and yielding to the event loop. */
export const SEND_BATCH = 1024;
/** Raw framed stream: frames per write. */
export const FRAMES_BATCH = 64;
export const HOL_REQUESTS = 1000;
export const HOL_BIG = 16 * 1024 * 1024;
export const HOL_MS = 2000;
export const HOL_MAX_BIGS = 40;

/** BENCH_ONLY=packet-size runs only the packet-size figures (printed, bench/RESULTS.md left as it is). */
export const ONLY = process.env.BENCH_ONLY ?? '';
if (ONLY !== '' && ONLY !== 'packet-size') throw new Error(`BENCH_ONLY: unknown group '${ONLY}' (known: packet-size)`);

/** Packet-size figures: bulk over peersock per `maxUdpPayload` / `pmtuDiscovery` setting, both drivers. */
export const PACKET_SIZES = [
  { label: '1452, discovery off', maxUdpPayload: 1452, pmtuDiscovery: false },
  { label: '1452, discovery on', maxUdpPayload: 1452, pmtuDiscovery: true },
  { label: '8192, discovery on', maxUdpPayload: 8192, pmtuDiscovery: true },
  { label: '16384, discovery on', maxUdpPayload: 16384, pmtuDiscovery: true },
] as const;
export type PacketSize = (typeof PACKET_SIZES)[number]['label'];
/** The packet-size group's send() figure: both drivers bound with this (what every peer beyond loopback gets by default). */
export const PACKET_SEND_PAYLOAD = 1452;
/** The PACKET_SIZES setting the targets against the dgram driver are also read at (the default toward non-loopback peers). */
export const PACKET_ETHERNET: PacketSize = '1452, discovery on';
/** Each measured transfer: this many bytes, capped at PACKET_MAX_MS; after PACKET_WARM_BYTES on the same connection. */
export const PACKET_BYTES = 128 * 1024 * 1024;
export const PACKET_MAX_MS = 3000;
export const PACKET_WARM_BYTES = 8 * 1024 * 1024;
/** Longest wait after the warm-up for the path MTU to reach `maxUdpPayload`. */
export const PACKET_SETTLE_MS = 3000;
