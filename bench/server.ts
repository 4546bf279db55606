/**
 * Bench server process: `server.ts <dgram|native|tls|udx>`. Commands: listen
 * {cert, tuning?} → Target (peersock bound with `tuning`; closes the previous
 * server first), count → open connections, rss → resident set size in bytes
 * (after gc when run with --expose-gc), io → the native driver's counters.
 */
import type { Cert } from './cert';
import { serve } from './ipc';
import { listen, type Kind, type Server, type Tuning } from './transports';

const kind = process.argv[2] as Kind;
let server: Server | undefined;

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

serve({
  async listen(p: { cert: Cert; tuning?: Tuning }) {
    await server?.close();
    server = await listen(kind, p.cert, p.tuning);
    return server.target;
  },
  count: () => server?.count() ?? 0,
  io: () => server?.io?.(),
  async rss() {
    const gc = (globalThis as { gc?: () => void }).gc;
    for (let i = 0; i < 3; i++) {
      gc?.();
      await tick();
    }
    return process.memoryUsage().rss;
  },
  close: () => server?.close(),
});
