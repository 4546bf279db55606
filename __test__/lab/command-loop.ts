/**
 * The child side of a lab process's JSON-lines channel (the parent side is
 * `LabProcess` in namespace.ts), shared by nat-peer.ts and mdns-peer.ts:
 * one command per line on stdin, `{ id, cmd, ...args }`; one reply line each
 * on stdout, `{ id, result }` or `{ id, error: { code, message } }`.
 */
import { createInterface } from 'node:readline';

/** Command handlers by name; each gets the whole parsed line. */
export type Commands = Record<string, (m: Record<string, any>) => Promise<unknown>>;

/** Writes `msg` as one JSON line on stdout. */
export function out(msg: unknown): void {
  process.stdout.write(`${JSON.stringify(msg)}\n`);
}

/**
 * Runs `commands` on the JSON lines of stdin (lines that are not JSON are
 * ignored). When stdin closes (the parent closed it, or died): `shutdown`,
 * then exit; at the latest after 2 s.
 */
export function serve(commands: Commands, shutdown: () => Promise<unknown>): void {
  const lines = createInterface({ input: process.stdin });
  lines.on('line', (line) => {
    let m: Record<string, any>;
    try {
      m = JSON.parse(line);
    } catch {
      return;
    }
    const fn = commands[m.cmd];
    const run = fn !== undefined ? fn(m) : Promise.reject(new Error(`unknown command ${String(m.cmd)}`));
    run.then(
      (result) => out({ id: m.id, result }),
      (e: unknown) => out({ id: m.id, error: { code: (e as { code?: string }).code ?? 'ERR', message: (e as Error).message ?? String(e) } }),
    );
  });
  lines.on('close', () => {
    void shutdown().finally(() => process.exit(0));
    setTimeout(() => process.exit(0), 2000).unref();
  });
}
