/**
 * Spawning the security lab's child processes (`security-*.ts`) from a test
 * or a script: each child talks JSON over an IPC channel, dies with its
 * parent, and is SIGKILLed at teardown if still running.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';

/** Node flags for security-soak.ts: V8's young generation at its full size from the start. */
export const SOAK_NODE_FLAGS = ['--min-semi-space-size=16', '--max-semi-space-size=16'];

/** A running lab child and the first message it sent. */
export interface LabChild<T> {
  child: ChildProcess;
  ready: T;
  /** Kills the child (SIGKILL) if it is still running; resolves once it exited. */
  kill(): Promise<void>;
}

/**
 * Runs `__test__/lab/<script>` with `env` (and extra node flags), waiting
 * (≤ `timeoutMs`) for its first message.
 */
export async function startChild<T>(script: string, env: Record<string, string>, timeoutMs = 20_000, nodeFlags: string[] = []): Promise<LabChild<T>> {
  const child = fork(join(__dirname, script), [], {
    // LAB_PERF=1: JavaScript frames named in `perf record -p <child>` (how a spinning listener was found).
    execArgv: ['--import', 'tsx', '--expose-gc', ...(process.env.LAB_PERF ? ['--perf-basic-prof'] : []), ...nodeFlags],
    env: { ...process.env, ...env },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const exited = once(child, 'exit');
  const kill = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await exited;
    }
  };
  let timer: NodeJS.Timeout | undefined;
  try {
    const ready = await Promise.race([
      once(child, 'message').then(([m]) => m as T),
      exited.then(([code, signal]) => {
        throw new Error(`${script} exited (${String(code)} ${String(signal)}) before it was ready`);
      }),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${script} not ready within ${timeoutMs} ms`)), timeoutMs);
      }),
    ]);
    return { child, ready, kill };
  } catch (e) {
    await kill();
    throw e;
  } finally {
    clearTimeout(timer);
  }
}

/** The next message from `child` (≤ `timeoutMs`); rejects if the child exits first. */
export async function nextMessage<T>(child: ChildProcess, timeoutMs: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  // Whichever wins, the other listeners go (a child asked many times must not collect them).
  const ac = new AbortController();
  const { signal: abort } = ac;
  try {
    return await Promise.race([
      once(child, 'message', { signal: abort }).then(([m]) => m as T),
      once(child, 'exit', { signal: abort }).then(([code, signal]) => {
        throw new Error(`child exited (${String(code)} ${String(signal)}) before its message`);
      }),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no message within ${timeoutMs} ms`)), timeoutMs);
      }),
    ]);
  } finally {
    clearTimeout(timer);
    ac.abort();
  }
}

/** Exits this (child) process when its parent goes away. */
export function dieWithParent(): void {
  process.on('disconnect', () => process.exit(0));
}

/** What `security-soak.ts` reports when it is done. */
export interface SoakResult {
  cycles: number;
  streams: number;
  ms: number;
  rssBaselineMiB: number;
  rssAfterMiB: number;
  heapBaselineMiB: number;
  heapAfterMiB: number;
  rssAfterPhasesMiB: number[];
  heapTotalAfterPhasesMiB: number[];
  handlesBefore: Record<string, number>;
  handlesAfter: Record<string, number>;
  connectionsAfter: { server: number; client: number };
}
