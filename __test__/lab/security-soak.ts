/**
 * Leak soak (scenario 16) in a process of its own, so its memory and handle
 * counts are its own: CYCLES connect/echo/close cycles (every tenth with a
 * freshly bound client socket, closed after), then STREAMS stream
 * open/echo/close cycles on one connection (32 at a time). RSS and the
 * active handles are taken after a warm-up (a tenth of the counts) and a
 * GC, and again at the end.
 *
 * Run it with `SOAK_NODE_FLAGS` (security-child.ts): V8 sizes its young generation to
 * the allocation rate, growing it by up to 3 × 16 MiB and keeping it, which
 * is V8's working memory and not a leak; fixing it at its largest from the
 * start leaves only growth that is peersock's.
 *
 *   env: CYCLES, STREAMS
 *   → parent: { ready: true }; starts on { cmd: 'go' }
 *   → parent: { cycles, streams, ms, rssBaselineMiB, rssAfterMiB, heapBaselineMiB, heapAfterMiB,
 *               externalBaselineMiB, externalAfterMiB, rssAfterPhasesMiB (after half and all of
 *               the cycles, after half the streams), handlesBefore, handlesAfter, connectionsAfter }
 */
import type { PeerConnection } from '../../src/connection';
import { PeerSocket } from '../../src/peer-socket';
import type { PeerStream } from '../../src/stream';
import { target } from '../helpers';
import { dieWithParent } from './security-child';

const cycles = Number(process.env.CYCLES ?? 20_000);
const streams = Number(process.env.STREAMS ?? 100_000);
const MiB = 1024 * 1024;

function handles(): Record<string, number> {
  const out: Record<string, number> = {};
  for (const r of process.getActiveResourcesInfo()) out[r] = (out[r] ?? 0) + 1;
  return out;
}

async function settle(): Promise<void> {
  for (let i = 0; i < 3; i++) {
    await new Promise((r) => setTimeout(r, 50));
    (globalThis as { gc?: () => void }).gc?.();
  }
}

async function echoStream(conn: PeerConnection, body: Buffer): Promise<void> {
  const s = conn.openStream();
  let got = 0;
  const done = new Promise<void>((resolve, reject) => {
    s.on('data', (d: Buffer) => (got += d.length));
    s.once('end', () => (got === body.length ? resolve() : reject(new Error(`echo ${got}/${body.length}`))));
    s.once('error', reject);
  });
  s.end(body);
  await done;
}

async function main(): Promise<void> {
  dieWithParent();
  const server = await PeerSocket.bind({ host: '127.0.0.1' });
  server.on('connection', (c: PeerConnection) => {
    c.on('error', () => {});
    c.on('stream', (s: PeerStream) => {
      s.on('error', () => {});
      s.pipe(s);
    });
  });
  const dial = target(server);
  // Keep-alive: the stream connection idles through the connection cycles.
  const client = await PeerSocket.bind({ host: '127.0.0.1', keepAlive: 5000 });
  const body = Buffer.alloc(1024, 1);

  async function cycle(i: number): Promise<void> {
    if (i % 10 === 9) {
      const fresh = await PeerSocket.bind({ host: '127.0.0.1' });
      const c = await fresh.connect(dial);
      await echoStream(c, body);
      await fresh.close();
      return;
    }
    const c = await client.connect(dial);
    await echoStream(c, body);
    await c.close();
  }

  async function streamCycles(conn: PeerConnection, n: number): Promise<void> {
    let next = 0;
    const small = Buffer.alloc(16, 2);
    const worker = async (): Promise<void> => {
      while (next < n) {
        next++;
        await echoStream(conn, small);
      }
    };
    await Promise.all(Array.from({ length: 32 }, worker));
  }

  const streamConn = await client.connect(dial);
  // Warm-up (a tenth of the counts, at least 300 cycles and 3,000 streams):
  // code paths compiled, pools, caches and the native allocator's high-water
  // mark (closed connections drain for a while, so some dozens coexist) at
  // their working size, so the baseline is the steady state.
  for (let i = 0; i < Math.max(300, cycles / 10); i++) await cycle(i);
  await streamCycles(streamConn, Math.max(3000, streams / 10));
  // Touch all of V8's young generation (3 × 16 MiB with SOAK_NODE_FLAGS)
  // with short-lived garbage, so the baseline already has it resident.
  let sink: unknown;
  for (let i = 0; i < 4_000_000; i++) sink = { i, pad: [i, i] };
  void sink;
  await settle();
  const baseRss = process.memoryUsage().rss;
  const baseHeap = process.memoryUsage().heapUsed;
  const baseExternal = process.memoryUsage().external;
  const handlesBefore = handles();
  process.send!({ ready: true });
  await new Promise<void>((r) => process.once('message', () => r()));

  // RSS after each phase, to tell a plateau (allocator high-water mark)
  // from growth that goes on.
  const phases: number[] = [];
  const heapTotals: number[] = [];
  const mark = async (): Promise<void> => {
    await settle();
    const u = process.memoryUsage();
    phases.push(+(u.rss / MiB).toFixed(1));
    heapTotals.push(+(u.heapTotal / MiB).toFixed(1));
  };
  const start = performance.now();
  for (let i = 0; i < cycles / 2; i++) await cycle(i);
  await mark();
  for (let i = Math.floor(cycles / 2); i < cycles; i++) await cycle(i);
  await mark();
  await streamCycles(streamConn, streams / 2);
  await mark();
  await streamCycles(streamConn, streams / 2);
  const ms = performance.now() - start;
  // Closed connections drain (3 PTO) before the endpoints forget them.
  const drainStart = performance.now();
  while ((server.stats().connections > 1 || client.stats().connections > 1) && performance.now() - drainStart < 10_000) {
    await new Promise((r) => setTimeout(r, 50));
  }
  await settle();
  const m = process.memoryUsage();
  const result = {
    cycles,
    streams,
    ms: Math.round(ms),
    rssBaselineMiB: +(baseRss / MiB).toFixed(1),
    rssAfterMiB: +(m.rss / MiB).toFixed(1),
    heapBaselineMiB: +(baseHeap / MiB).toFixed(1),
    heapAfterMiB: +(m.heapUsed / MiB).toFixed(1),
    externalBaselineMiB: +(baseExternal / MiB).toFixed(1),
    externalAfterMiB: +(m.external / MiB).toFixed(1),
    rssAfterPhasesMiB: phases,
    heapTotalAfterPhasesMiB: heapTotals,
    handlesBefore,
    handlesAfter: handles(),
    connectionsAfter: { server: server.stats().connections, client: client.stats().connections },
  };
  process.send!(result, () => {
    void Promise.all([client.close(), server.close()]).then(() => process.exit(0));
  });
}

void main().catch((e) => {
  console.error(e);
  process.exit(1);
});
