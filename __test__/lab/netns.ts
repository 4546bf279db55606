/**
 * The NAT lab: network namespaces joined by veth pairs, with nftables NATs,
 * built and torn down by each test (Linux, root). Nothing touches the host's
 * own interfaces or routes: every device is created inside a namespace of
 * the lab, and all addresses live in ranges that are routed nowhere.
 *
 *   "public" namespace  (<id>-pub): a router (forwarding on) standing for the
 *       internet; bridge br0 198.18.0.1/24 (RFC 2544 range); hosts there
 *       (observers, introducers) are extra addresses on br0, 198.18.0.10 and
 *       up. Each peer (or its NAT) has its own link to the router, v<i>
 *       198.18.<i>.1/24, so packets between two peers cross one router hop:
 *       a packet sent with TTL 2 from behind a NAT passes its own NAT and
 *       dies at the router, never reaching the far NAT (hole punching's
 *       first round relies on that, as on the internet).
 *   peer without NAT    (<id>-p<i>): eth0 198.18.<i>.2/24, default via 198.18.<i>.1.
 *   peer behind a NAT   (<id>-p<i>): eth0 10.<i>.0.2/24, default via 10.<i>.0.1
 *     NAT namespace     (<id>-nat<i>): lan 10.<i>.0.1/24, wan 198.18.<i>.2/24,
 *                       default via 198.18.<i>.1; forwarding on; nftables
 *                       masquerade on wan; only replies (ct established) come
 *                       back in.
 *
 * NAT kinds (nftables `masquerade` on the NAT's wan, Linux conntrack):
 * - 'preserve': plain `masquerade`. Linux keeps the source port when that
 *   mapping is free, so every destination sees the same address:port
 *   (measured: 200 of 200 fresh sockets kept their port towards two
 *   destinations).
 * - 'random': `masquerade random`. No existing mapping or port is reused:
 *   the port comes from a keyed hash of (source, destination, destination
 *   port), so each destination sees its own port (measured: 200 of 200
 *   sockets got two different ports; two destinations collide with a chance
 *   of about 1 in 64k).
 *
 * Processes run inside a namespace with `ip netns exec <ns> node --import tsx
 * <script>` and talk JSON lines over stdin/stdout (see `LabProcess` in
 * namespace.ts, which also spawns them and tears the namespaces down).
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ExecutionContext } from 'ava';

import { NamespaceLab, run, systemTool } from './namespace';

export { LabProcess } from './namespace';

/** How a peer reaches the public network. */
export type NatKind = 'none' | 'preserve' | 'random';

/** A peer's namespace and addresses. */
export interface LabPeer {
  /** Namespace the peer's process runs in. */
  ns: string;
  /** Its own interface address (10.i.0.2 behind a NAT, 198.18.i.2 without). */
  ip: string;
  /** The address the public side sees: the NAT's wan address, or `ip`. */
  publicIp: string;
  nat: NatKind;
  /** The NAT's namespace ('none': undefined). */
  natNs: string | undefined;
}

let labs = 0;

let IP = 'ip';
let NFT = 'nft';

/**
 * Why the lab cannot run here, or undefined when it can. The lab needs
 * Linux, root (CAP_NET_ADMIN and CAP_SYS_ADMIN for namespaces), iproute2's
 * `ip` and nftables' `nft`.
 */
export async function labUnavailable(): Promise<string | undefined> {
  if (process.platform !== 'linux') return `the NAT lab needs Linux network namespaces (platform: ${process.platform})`;
  if (process.getuid?.() !== 0) {
    return `the NAT lab needs root (uid ${process.getuid?.()}); run as root${process.env.CI ? ' (CI is set: CI must run this as root)' : ', e.g. sudo npx ava __test__/nat.spec.ts'}`;
  }
  const tools = [['ip', 'iproute2', ['-V'], /iproute2/], ['nft', 'nftables', ['--version'], /nftables/]] as const;
  for (const [tool, pkg, args, expect] of tools) {
    const path = systemTool(tool);
    const hint = `the NAT lab needs \`${tool}\` from ${pkg} (apt-get install ${pkg}; .ci/setup installs it)`;
    if (path === undefined) return `${hint}: not found`;
    try {
      const version = await run(path, [...args]);
      if (!expect.test(version)) return `${hint}: ${path} says ${JSON.stringify(version.trim())}`;
    } catch (e) {
      return `${hint}: ${(e as Error).message}`;
    }
    if (tool === 'ip') IP = path;
    else NFT = path;
  }
  return undefined;
}

/** A NAT lab: namespaces, links, NAT rules and processes, all removed by `close()`. */
export class NatLab extends NamespaceLab {
  /** Prefix of every namespace of this lab (unique per process and lab). */
  readonly id: string;
  readonly publicNs: string;
  #hosts = 0;
  #peers = 0;

  private constructor(id: string) {
    super(IP, 'lab');
    this.id = id;
    this.publicNs = `${id}-pub`;
  }

  /**
   * Builds the public namespace and registers `close()` at `t.teardown`.
   * Fails the test (never skips) when the lab cannot run here.
   */
  static async create(t: ExecutionContext): Promise<NatLab> {
    const why = await labUnavailable();
    if (why !== undefined) throw new Error(why);
    const lab = new NatLab(`psl${process.pid}x${++labs}`);
    t.teardown(() => lab.close());
    await lab.addNamespace(lab.publicNs);
    await lab.ip(lab.publicNs, 'link', 'add', 'br0', 'type', 'bridge');
    await lab.ip(lab.publicNs, 'addr', 'add', '198.18.0.1/24', 'dev', 'br0');
    await lab.ip(lab.publicNs, 'link', 'set', 'br0', 'up');
    await run(IP, ['netns', 'exec', lab.publicNs, 'sysctl', '-q', '-w', 'net.ipv4.ip_forward=1']);
    return lab;
  }

  /** Adds a public address (198.18.0.10 and up) in the public namespace, for an observer or introducer. */
  async addHost(): Promise<string> {
    const ip = `198.18.0.${10 + this.#hosts++}`;
    await this.ip(this.publicNs, 'addr', 'add', `${ip}/24`, 'dev', 'br0');
    return ip;
  }

  /** Adds a peer namespace, behind a NAT of `nat`'s kind (or directly on the public bridge). */
  async addPeer(nat: NatKind): Promise<LabPeer> {
    if (nat !== 'none' && nat !== 'preserve' && nat !== 'random') throw new Error(`unknown NAT kind ${String(nat)}`);
    const i = ++this.#peers;
    if (i > 50) throw new Error('at most 50 peers per lab');
    const ns = `${this.id}-p${i}`;
    const wanIp = `198.18.${i}.2`;
    await this.addNamespace(ns);
    if (nat === 'none') {
      await this.#link(ns, 'eth0', i);
      return { ns, ip: wanIp, publicIp: wanIp, nat, natNs: undefined };
    }
    const natNs = `${this.id}-nat${i}`;
    await this.addNamespace(natNs);
    await this.#link(natNs, 'wan', i);
    await this.ip(natNs, 'link', 'add', 'lan', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns);
    await this.ip(natNs, 'addr', 'add', `10.${i}.0.1/24`, 'dev', 'lan');
    await this.ip(natNs, 'link', 'set', 'lan', 'up');
    await this.ip(ns, 'addr', 'add', `10.${i}.0.2/24`, 'dev', 'eth0');
    await this.ip(ns, 'link', 'set', 'eth0', 'up');
    await this.ip(ns, 'route', 'add', 'default', 'via', `10.${i}.0.1`);
    await run(IP, ['netns', 'exec', natNs, 'sysctl', '-q', '-w', 'net.ipv4.ip_forward=1']);
    const masquerade = nat === 'random' ? 'masquerade random' : 'masquerade';
    await this.#nft(natNs, [
      'table ip lab {',
      '  chain postrouting { type nat hook postrouting priority srcnat; policy accept;',
      `    oifname "wan" ${masquerade}`,
      '  }',
      '  chain forward { type filter hook forward priority filter; policy drop;',
      '    ct state established,related accept',
      '    iifname "lan" oifname "wan" accept',
      '  }',
      '}',
      '',
    ].join('\n'));
    return { ns, ip: `10.${i}.0.2`, publicIp: wanIp, nat, natNs };
  }

  /**
   * Forgets every NAT mapping of `peer`'s NAT (`conntrack -F` in its
   * namespace), as a home router does when it reboots or its table
   * overflows: the next outbound packet gets a fresh mapping (a new port
   * behind a port-randomising NAT) and inbound packets to the old one are
   * dropped until then. Returns the number of entries it held.
   */
  async flushNat(peer: LabPeer): Promise<number> {
    if (peer.natNs === undefined) throw new Error(`peer ${peer.ns} has no NAT to flush`);
    const conntrack = systemTool('conntrack');
    if (conntrack === undefined) throw new Error('flushing a NAT needs `conntrack` from the conntrack package (apt-get install conntrack; .ci/setup installs it)');
    const count = Number((await run(IP, ['netns', 'exec', peer.natNs, conntrack, '-C'])).trim());
    await run(IP, ['netns', 'exec', peer.natNs, conntrack, '-F']);
    return count;
  }

  /**
   * Cuts the direct path between two peers for good: the router drops every
   * packet between their public addresses (both ways), while both still
   * reach the public hosts (an introducer and its relay).
   */
  async blockBetween(p: LabPeer, q: LabPeer): Promise<void> {
    await this.#nft(this.publicNs, [
      'table ip cut {',
      '  chain forward { type filter hook forward priority filter; policy accept;',
      `    ip saddr ${p.publicIp} ip daddr ${q.publicIp} drop`,
      `    ip saddr ${q.publicIp} ip daddr ${p.publicIp} drop`,
      '  }',
      '}',
      '',
    ].join('\n'));
  }

  /** A veth from `ns` (named `dev`, 198.18.`i`.2/24, default route) to the router's v`i` (198.18.`i`.1/24). */
  async #link(ns: string, dev: string, i: number): Promise<void> {
    const port = `v${i}`;
    await this.ip(this.publicNs, 'link', 'add', port, 'type', 'veth', 'peer', 'name', dev, 'netns', ns);
    await this.ip(this.publicNs, 'addr', 'add', `198.18.${i}.1/24`, 'dev', port);
    await this.ip(this.publicNs, 'link', 'set', port, 'up');
    await this.ip(ns, 'addr', 'add', `198.18.${i}.2/24`, 'dev', dev);
    await this.ip(ns, 'link', 'set', dev, 'up');
    await this.ip(ns, 'route', 'add', 'default', 'via', `198.18.${i}.1`);
  }

  /** Loads a ruleset into `ns` (all or nothing). */
  async #nft(ns: string, ruleset: string): Promise<void> {
    const dir = await mkdtemp(join(tmpdir(), 'peersock-lab-'));
    try {
      const file = join(dir, 'rules.nft');
      await writeFile(file, ruleset);
      await run(IP, ['netns', 'exec', ns, NFT, '-f', file]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }
}
