/**
 * Helpers for the CLI tests: run `peersock` (src/cli.ts through tsx, so the
 * tests always exercise the current source) as a child process, read its
 * output, and wait for it with a time limit. Every child is killed and every
 * temporary directory removed at teardown, even when a test fails.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { ExecutionContext } from 'ava';

/** The repository root. */
export const ROOT = path.resolve(__dirname, '..');

/** Node arguments that run the CLI from source, from any working directory. */
export const CLI_ARGS = ['--import', pathToFileURL(require.resolve('tsx')).href, path.join(ROOT, 'src', 'cli.ts')];

/** How a CLI process ended, with everything it printed. */
export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: Buffer;
  stderr: string;
  /** Milliseconds from spawn to exit. */
  ms: number;
}

/** A running CLI process. */
export interface CliProcess {
  child: ChildProcess;
  /** Everything written to stdout so far. */
  stdout(): Buffer;
  /** Everything written to stderr so far. */
  stderr(): string;
  /** Resolves once stderr has a line matching `re` (rejects after `ms`). */
  stderrLine(re: RegExp, ms?: number): Promise<string>;
  /** Resolves when the process exits; after `ms` it is killed and this rejects. */
  exited(ms?: number): Promise<Exit>;
}

/** Options of `startCli`. */
export interface StartOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Written to stdin, which is then closed; `null` leaves stdin open. Default: closed at once. */
  input?: string | Buffer | null;
  /** Run another program instead of the CLI (args are then its full argument list). */
  command?: string;
}

/** Children still running; killed if this worker exits (e.g. an uncaught exception skips teardowns). */
const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

/** Starts `peersock <args>`; the process is killed at teardown if still running. */
export function startCli(t: ExecutionContext, args: readonly string[], opts: StartOptions = {}): CliProcess {
  const t0 = performance.now();
  const command = opts.command ?? process.execPath;
  const argv = opts.command === undefined ? [...CLI_ARGS, ...args] : [...args];
  const child = spawn(command, argv, { cwd: opts.cwd ?? ROOT, env: opts.env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'] });
  live.add(child);
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  const out: Buffer[] = [];
  let err = '';
  const waiters = new Set<() => void>();
  const poke = (): void => {
    for (const w of [...waiters]) w();
  };
  child.stdout!.on('data', (c: Buffer) => {
    out.push(c);
    poke();
  });
  child.stderr!.on('data', (c: Buffer) => {
    err += c.toString('utf8');
    poke();
  });
  child.stdin!.on('error', () => undefined); // the CLI may exit before reading all input
  if (opts.input !== null) child.stdin!.end(opts.input ?? '');
  const exit = new Promise<Exit>((resolve) => {
    child.on('close', (code, signal) => {
      live.delete(child);
      resolve({ code, signal, stdout: Buffer.concat(out), stderr: err, ms: performance.now() - t0 });
      poke();
    });
  });

  const waitUntil = <T>(test: () => T | undefined, ms: number, what: string): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      const check = (): void => {
        const v = test();
        if (v !== undefined) {
          done();
          resolve(v);
        } else if (child.exitCode !== null || child.signalCode !== null) {
          done();
          reject(new Error(`peersock ${args.join(' ')} exited (${child.exitCode ?? child.signalCode}) before ${what}; stderr:\n${err}`));
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`timed out after ${ms} ms waiting for ${what} from peersock ${args.join(' ')}; stderr:\n${err}`));
      }, ms);
      const done = (): void => {
        clearTimeout(timer);
        waiters.delete(check);
      };
      waiters.add(check);
      check();
    });

  return {
    child,
    stdout: () => Buffer.concat(out),
    stderr: () => err,
    stderrLine: (re, ms = 20_000) => waitUntil(() => err.split('\n').find((l) => re.test(l)), ms, `a stderr line matching ${re}`),
    exited: async (ms = 30_000) => {
      try {
        return await waitUntil(() => (child.exitCode !== null || child.signalCode !== null ? true : undefined), ms, 'exit').then(() => exit);
      } catch (e) {
        child.kill('SIGKILL');
        throw e;
      }
    },
  };
}

/** Runs `peersock <args>` to completion (stdin: `opts.input`, else empty) within `ms`. */
export function runCli(t: ExecutionContext, args: readonly string[], opts: StartOptions = {}, ms = 30_000): Promise<Exit> {
  return startCli(t, args, opts).exited(ms);
}

/** A dial string: 52 z-base-32 characters, @, IPv4 host, port. */
export const DIAL_RE = /^[ybndrfg8ejkmcpqxot1uwisza345h769]{52}@127\.0\.0\.1:[0-9]{1,5}$/;

/**
 * Starts a listening command (`listen` or `receive`) on loopback and resolves
 * with the process and the address it printed as its first stderr line.
 */
export async function startListener(t: ExecutionContext, args: readonly string[], opts: StartOptions = {}): Promise<{ proc: CliProcess; address: string }> {
  const proc = startCli(t, [...args, '--host', '127.0.0.1'], opts);
  await proc.stderrLine(/./);
  const address = proc.stderr().split('\n')[0]!;
  t.regex(address, DIAL_RE, 'the first stderr line is the dial string');
  return { proc, address };
}

/** A temporary directory, removed at teardown. */
export function tempDir(t: ExecutionContext): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'peersock-cli-test-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** The lines of a text, without the empty one after a final newline. */
export function lines(text: string): string[] {
  const l = text.split('\n');
  if (l[l.length - 1] === '') l.pop();
  return l;
}
