/**
 * The LAN lab: one link-local segment for mDNS tests, built from network
 * namespaces and torn down by `close()` (Linux, root). Nothing touches the
 * host's own interfaces: every device lives in a namespace of the lab, and the
 * addresses (10.215.0.0/24) are routed nowhere, so no multicast leaves it.
 *
 *   bridge namespace (<id>-br): bridge br0 (no address, multicast snooping
 *       off so every port gets every group packet), one port per host.
 *   host namespace   (<id>-h<i>): eth0 10.215.0.<10+i>/24, multicast on,
 *       a route for 224.0.0.0/4 on eth0 (there is no default route).
 *
 * Processes run inside a host namespace with `ip netns exec <ns> node --import
 * tsx <script>` and talk JSON lines over stdin/stdout (`LabProcess`).
 */
import { execFile, spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, join, sep } from 'node:path';

import { labUnavailable, LabProcess } from './netns';

/** One host on the LAN. */
export interface LanHost {
  /** Its namespace. */
  ns: string;
  /** Its IPv4 address on the LAN (eth0). */
  ip: string;
}

const ROOT = join(__dirname, '..', '..');
const CMD_TIMEOUT = 10_000;
let labs = 0;

/** The system binary `name` by absolute path (node_modules/.bin skipped, as in netns.ts). */
function systemTool(name: string): string {
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
  throw new Error(`the LAN lab needs \`${name}\` (iproute2): not found`);
}

/** Runs a command (no shell), rejecting with its stderr on failure. */
function run(cmd: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { timeout: CMD_TIMEOUT }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${cmd} ${args.join(' ')}: ${stderr.trim() || err.message}`));
      else resolve(stdout);
    });
  });
}

/** A LAN of host namespaces on one bridge; `close()` removes all of it. */
export class LanLab {
  /** Prefix of every namespace of this lab (unique per process and lab). */
  readonly id: string;
  /** The hosts, in the order they were added. */
  readonly hosts: LanHost[] = [];
  /** Namespaces created, in order (the bridge's first). */
  readonly namespaces: string[] = [];
  readonly #processes: LabProcess[] = [];
  readonly #ipTool: string;
  #closed = false;

  private constructor(id: string, ipTool: string) {
    this.id = id;
    this.#ipTool = ipTool;
  }

  /** The bridge's namespace. */
  get bridgeNs(): string {
    return `${this.id}-br`;
  }

  /**
   * Builds a LAN with `hosts` host namespaces (1..20). Throws (never skips)
   * when the lab cannot run here; on a failure half-way, removes what it made.
   */
  static async create(hosts: number): Promise<LanLab> {
    if (!Number.isInteger(hosts) || hosts < 1 || hosts > 20) throw new Error('a LAN lab has 1..20 hosts');
    const why = await labUnavailable();
    if (why !== undefined) throw new Error(why);
    const lab = new LanLab(`psm${process.pid}x${++labs}`, systemTool('ip'));
    try {
      await lab.#ns(lab.bridgeNs);
      await lab.#ip(lab.bridgeNs, 'link', 'add', 'br0', 'type', 'bridge', 'mcast_snooping', '0');
      await lab.#ip(lab.bridgeNs, 'link', 'set', 'br0', 'up');
      for (let i = 1; i <= hosts; i++) await lab.#addHost(i);
    } catch (e) {
      await lab.close().catch(() => {});
      throw e;
    }
    return lab;
  }

  /** Runs `__test__/lab/<script>` with node+tsx in namespace `ns`; killed at `close()`. */
  async spawn(ns: string, script: string, env: Record<string, string> = {}, name = `${script}@${ns}`, timeoutMs = 20_000): Promise<LabProcess> {
    if (this.#closed) throw new Error('lab is closed');
    if (!this.namespaces.includes(ns)) throw new Error(`${ns} is not a namespace of this lab`);
    const child = spawn(this.#ipTool, ['netns', 'exec', ns, process.execPath, '--import', 'tsx', join(__dirname, script)], {
      cwd: ROOT,
      env: { ...process.env, ...env },
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    const p = new LabProcess(child, name);
    this.#processes.push(p);
    return p.start(timeoutMs);
  }

  /** Kills every process, then deletes every namespace (and with them their links). Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.all(this.#processes.map((p) => p.kill()));
    const errors: string[] = [];
    for (const ns of [...this.namespaces].reverse()) {
      try {
        await run(this.#ipTool, ['netns', 'del', ns]);
      } catch (e) {
        errors.push((e as Error).message);
      }
    }
    if (errors.length > 0) throw new Error(`LAN lab teardown: ${errors.join('; ')}`);
  }

  /** Host `i`: a namespace whose eth0 is a port of br0. */
  async #addHost(i: number): Promise<void> {
    const ns = `${this.id}-h${i}`;
    const ip = `10.215.0.${10 + i}`;
    const port = `p${i}`;
    await this.#ns(ns);
    await this.#ip(this.bridgeNs, 'link', 'add', port, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns);
    await this.#ip(this.bridgeNs, 'link', 'set', port, 'master', 'br0');
    await this.#ip(this.bridgeNs, 'link', 'set', port, 'up');
    await this.#ip(ns, 'addr', 'add', `${ip}/24`, 'dev', 'eth0');
    await this.#ip(ns, 'link', 'set', 'dev', 'eth0', 'multicast', 'on');
    await this.#ip(ns, 'link', 'set', 'eth0', 'up');
    await this.#ip(ns, 'route', 'add', '224.0.0.0/4', 'dev', 'eth0');
    this.hosts.push({ ns, ip });
  }

  /** Creates a namespace with loopback up, recorded for teardown first. */
  async #ns(name: string): Promise<void> {
    await run(this.#ipTool, ['netns', 'add', name]);
    this.namespaces.push(name);
    await this.#ip(name, 'link', 'set', 'lo', 'up');
  }

  #ip(ns: string, ...args: string[]): Promise<string> {
    return run(this.#ipTool, ['-n', ns, ...args]);
  }
}
