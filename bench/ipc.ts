/**
 * Request/reply over the Node IPC channel between the bench driver and its
 * child processes. The driver spawns each child with `spawnChild` and awaits
 * `call`; a child answers with `serve`. A child exits when its parent goes.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';

/** A message handler of a child: takes the call's params, returns its result. */
export type Handlers = Record<string, (params: any) => unknown>;

interface Reply {
  id: number;
  result?: unknown;
  error?: string;
}

/** A running child process the driver can call into. */
export interface Child {
  readonly proc: ChildProcess;
  /** Runs `cmd` in the child; rejects with the child's error or after `timeoutMs`. */
  call<T = any>(cmd: string, params?: unknown, timeoutMs?: number): Promise<T>;
  /** Kills the child (by its pid) if it is still running. */
  kill(): void;
}

const live = new Set<Child>();

/** Kills every child still running; the driver calls this on exit and error. */
export function killAll(): void {
  for (const c of live) c.kill();
}

/** Spawns `file` under tsx with an IPC channel; resolves once it says it is ready. */
export async function spawnChild(file: string, args: string[] = [], nodeFlags: string[] = []): Promise<Child> {
  const proc = spawn(process.execPath, [...nodeFlags, '--import', 'tsx', file, ...args], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const name = [path.basename(file), ...args].join(' ');
  const pending = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>();
  let nextId = 1;
  const failAll = (why: string): void => {
    for (const p of pending.values()) p.reject(new Error(why));
    pending.clear();
  };
  const child: Child = {
    proc,
    call(cmd, params, timeoutMs = 60_000) {
      const id = nextId++;
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          pending.delete(id);
          reject(new Error(`${name} ${cmd}: no reply within ${timeoutMs} ms`));
        }, timeoutMs);
        pending.set(id, {
          resolve: (v) => (clearTimeout(timer), resolve(v as any)),
          reject: (e) => (clearTimeout(timer), reject(e)),
        });
        proc.send({ id, cmd, params });
      });
    },
    kill() {
      live.delete(child);
      if (proc.exitCode === null && proc.signalCode === null && proc.pid !== undefined) {
        try {
          process.kill(proc.pid, 'SIGKILL');
        } catch {
          // Already gone.
        }
      }
    },
  };
  live.add(child);
  proc.on('exit', (code, sig) => {
    live.delete(child);
    failAll(`${name} exited (code ${code}, signal ${sig})`);
  });
  proc.on('message', (m: Reply) => {
    const p = pending.get(m.id);
    if (p === undefined) return;
    pending.delete(m.id);
    if (m.error !== undefined) p.reject(new Error(`${name}: ${m.error}`));
    else p.resolve(m.result);
  });
  await child.call('ping', undefined, 30_000);
  return child;
}

/** Child side: answers calls with `handlers`; exits when the parent disconnects. */
export function serve(handlers: Handlers): void {
  const send = process.send?.bind(process);
  if (send === undefined) throw new Error('run me from bench/run.ts (no IPC channel)');
  process.on('disconnect', () => process.exit(0));
  process.on('message', async (m: { id: number; cmd: string; params: unknown }) => {
    try {
      const h = m.cmd === 'ping' ? () => 'pong' : handlers[m.cmd];
      if (h === undefined) throw new Error(`unknown command ${m.cmd}`);
      send({ id: m.id, result: await h(m.params) });
    } catch (e) {
      send({ id: m.id, error: e instanceof Error ? `${e.message}\n${e.stack ?? ''}` : String(e) });
    }
  });
}
