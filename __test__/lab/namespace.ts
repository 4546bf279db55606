/**
 * What the namespace labs (netns.ts, the NAT lab; lan.ts, the LAN lab) share:
 * running a command, finding a system binary, and `NamespaceLab`, which
 * creates namespaces, runs processes in them (`LabProcess`: JSON lines over
 * stdin/stdout) and removes all of it again at `close()`. Linux, root.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, join, sep } from 'node:path';
import { createInterface } from 'node:readline';

const ROOT = join(__dirname, '..', '..');
const CMD_TIMEOUT = 10_000;

/** Runs a command (no shell), rejecting with its stderr on failure. */
export function run(cmd: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { timeout: CMD_TIMEOUT }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${cmd} ${args.join(' ')}: ${stderr.trim() || err.message}`));
      else resolve(stdout);
    });
  });
}

/**
 * The system binary `name`, by absolute path. Directories under node_modules
 * are skipped: npm puts node_modules/.bin first on PATH, and there `nft` is
 * @vercel/nft (Node File Trace), not nftables.
 */
export function systemTool(name: string): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/sbin', '/sbin', '/usr/bin', '/bin'];
  for (const dir of dirs) {
    if (dir === '' || dir.split(sep).includes('node_modules')) continue;
    const file = join(dir, name);
    try {
      accessSync(file, constants.X_OK);
      return file;
    } catch {
      // Not here.
    }
  }
  return undefined;
}

/** One process in a lab namespace, spoken to in JSON lines. */
export class LabProcess {
  readonly child: ChildProcess;
  /** The first line the process printed (its 'ready' message). */
  ready: Record<string, unknown> = {};
  readonly #pending = new Map<number, { resolve: (v: any) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>();
  readonly #exited: Promise<unknown>;
  #next = 1;
  #exitInfo: string | undefined;

  constructor(child: ChildProcess, readonly name: string) {
    this.child = child;
    // 'error' instead of 'exit' when the process could not be spawned at all.
    const ended = new Promise<[unknown, unknown]>((resolve) => {
      child.once('exit', (code, signal) => resolve([code, signal]));
      child.once('error', (e) => resolve([`spawn failed: ${e.message}`, null]));
    });
    this.#exited = ended.then(([code, signal]) => {
      this.#exitInfo = `${name} exited (${String(code)} ${String(signal)})`;
      for (const p of this.#pending.values()) {
        clearTimeout(p.timer);
        p.reject(new Error(this.#exitInfo));
      }
      this.#pending.clear();
    });
    child.stdin!.on('error', () => {});
  }

  /** Waits for the process's first line (≤ `timeoutMs`). */
  async start(timeoutMs: number): Promise<this> {
    const lines = createInterface({ input: this.child.stdout! });
    let timer: NodeJS.Timeout | undefined;
    const first = new Promise<Record<string, unknown>>((resolve, reject) => {
      lines.on('line', (line) => {
        let msg: { id?: number; result?: unknown; error?: { code: string; message: string } } & Record<string, unknown>;
        try {
          msg = JSON.parse(line);
        } catch {
          process.stderr.write(`[${this.name}] ${line}\n`);
          return;
        }
        if (msg.id === undefined) return resolve(msg);
        const p = this.#pending.get(msg.id);
        if (p === undefined) return;
        this.#pending.delete(msg.id);
        clearTimeout(p.timer);
        if (msg.error !== undefined) p.reject(Object.assign(new Error(`${this.name}: ${msg.error.message}`), { code: msg.error.code }));
        else p.resolve(msg.result);
      });
      void this.#exited.then(() => reject(new Error(`${this.#exitInfo} before it was ready`)));
      timer = setTimeout(() => reject(new Error(`${this.name} not ready within ${timeoutMs} ms`)), timeoutMs);
    });
    try {
      this.ready = await first;
    } finally {
      clearTimeout(timer);
    }
    return this;
  }

  /** Sends a command; resolves with its result (≤ `timeoutMs`). */
  call<T = any>(cmd: string, args: Record<string, unknown> = {}, timeoutMs = 15_000): Promise<T> {
    if (this.#exitInfo !== undefined) return Promise.reject(new Error(this.#exitInfo));
    const id = this.#next++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new Error(`${this.name}: ${cmd} took longer than ${timeoutMs} ms`));
      }, timeoutMs);
      this.#pending.set(id, { resolve, reject, timer });
      this.child.stdin!.write(`${JSON.stringify({ id, cmd, ...args })}\n`);
    });
  }

  /** SIGKILLs the process (by its pid) if it is still running; resolves once it exited. */
  async kill(): Promise<void> {
    if (this.#exitInfo === undefined && this.child.exitCode === null && this.child.signalCode === null) {
      this.child.kill('SIGKILL');
      await this.#exited;
    }
  }
}

/**
 * Namespaces and the processes run in them, all removed by `close()`: the
 * part of a lab that does not depend on how its namespaces are wired.
 */
export class NamespaceLab {
  /** Namespaces created, in order. */
  readonly namespaces: string[] = [];
  readonly #processes: LabProcess[] = [];
  #closed = false;

  /**
   * @param ipTool iproute2's `ip`, by path.
   * @param label names the lab in the teardown error ("lab", "LAN lab").
   */
  protected constructor(
    protected readonly ipTool: string,
    private readonly label: string,
  ) {}

  /** Runs `__test__/lab/<script>` with node+tsx in namespace `ns`; killed at `close()`. */
  async spawn(ns: string, script: string, env: Record<string, string> = {}, name = `${script}@${ns}`, timeoutMs = 20_000): Promise<LabProcess> {
    if (this.#closed) throw new Error('lab is closed');
    if (!this.namespaces.includes(ns)) throw new Error(`${ns} is not a namespace of this lab`);
    const child = spawn(this.ipTool, ['netns', 'exec', ns, process.execPath, '--import', 'tsx', join(__dirname, script)], {
      cwd: ROOT,
      env: { ...process.env, ...env },
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    const p = new LabProcess(child, name);
    this.#processes.push(p);
    return p.start(timeoutMs);
  }

  /** Kills every process, then deletes every namespace, last first (and with them their links). Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.all(this.#processes.map((p) => p.kill()));
    const errors: string[] = [];
    for (const ns of [...this.namespaces].reverse()) {
      try {
        await run(this.ipTool, ['netns', 'del', ns]);
      } catch (e) {
        errors.push((e as Error).message);
      }
    }
    if (errors.length > 0) throw new Error(`${this.label} teardown: ${errors.join('; ')}`);
  }

  /** Creates a namespace with loopback up, recorded for teardown first. */
  protected async addNamespace(name: string): Promise<void> {
    await run(this.ipTool, ['netns', 'add', name]);
    this.namespaces.push(name);
    await this.ip(name, 'link', 'set', 'lo', 'up');
  }

  /** `ip -n <ns> <args>`. */
  protected ip(ns: string, ...args: string[]): Promise<string> {
    return run(this.ipTool, ['-n', ns, ...args]);
  }
}
