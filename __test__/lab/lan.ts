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
 * tsx <script>` and talk JSON lines over stdin/stdout (`LabProcess`; spawning
 * and teardown are namespace.ts's `NamespaceLab`, shared with the NAT lab).
 */
import { NamespaceLab, systemTool } from './namespace';
import { labUnavailable } from './netns';

/** One host on the LAN. */
export interface LanHost {
  /** Its namespace. */
  ns: string;
  /** Its IPv4 address on the LAN (eth0). */
  ip: string;
}

let labs = 0;

/** iproute2's `ip` by absolute path (node_modules/.bin skipped). */
function ipTool(): string {
  const path = systemTool('ip');
  if (path === undefined) throw new Error('the LAN lab needs `ip` (iproute2): not found');
  return path;
}

/** A LAN of host namespaces on one bridge; `close()` removes all of it. */
export class LanLab extends NamespaceLab {
  /** Prefix of every namespace of this lab (unique per process and lab). */
  readonly id: string;
  /** The hosts, in the order they were added. */
  readonly hosts: LanHost[] = [];

  private constructor(id: string, ipTool: string) {
    super(ipTool, 'LAN lab');
    this.id = id;
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
    const lab = new LanLab(`psm${process.pid}x${++labs}`, ipTool());
    try {
      await lab.addNamespace(lab.bridgeNs);
      await lab.ip(lab.bridgeNs, 'link', 'add', 'br0', 'type', 'bridge', 'mcast_snooping', '0');
      await lab.ip(lab.bridgeNs, 'link', 'set', 'br0', 'up');
      for (let i = 1; i <= hosts; i++) await lab.#addHost(i);
    } catch (e) {
      await lab.close().catch(() => {});
      throw e;
    }
    return lab;
  }

  /** Host `i`: a namespace whose eth0 is a port of br0. */
  async #addHost(i: number): Promise<void> {
    const ns = `${this.id}-h${i}`;
    const ip = `10.215.0.${10 + i}`;
    const port = `p${i}`;
    await this.addNamespace(ns);
    await this.ip(this.bridgeNs, 'link', 'add', port, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns);
    await this.ip(this.bridgeNs, 'link', 'set', port, 'master', 'br0');
    await this.ip(this.bridgeNs, 'link', 'set', port, 'up');
    await this.ip(ns, 'addr', 'add', `${ip}/24`, 'dev', 'eth0');
    await this.ip(ns, 'link', 'set', 'dev', 'eth0', 'multicast', 'on');
    await this.ip(ns, 'link', 'set', 'eth0', 'up');
    await this.ip(ns, 'route', 'add', '224.0.0.0/4', 'dev', 'eth0');
    this.hosts.push({ ns, ip });
  }
}
