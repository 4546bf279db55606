/**
 * A route of the NAT path layer: one introduced peer, its virtual address in
 * 100::/64 (dialed or accepted at port VIRTUAL_PORT) and the paths to it.
 */
import type { AddressInfo, UdpTransport } from '../transport';

/** The port every virtual address is dialed at. */
export const VIRTUAL_PORT = 1;
/** The prefix of virtual addresses (RFC 6666, routed nowhere). */
export const VIRTUAL_PREFIX = '100::';

/** How an introduced connection's packets travel. */
export type PathKind = 'pending' | 'direct' | 'relayed';

/** Per-route counters (datagrams and bytes, each way, per path). */
export interface PathStats {
  sentDirect: number;
  sentRelayed: number;
  recvDirect: number;
  recvRelayed: number;
  bytesRelayed: number;
}

/** Where a route's relayed packets go: the relay's address and the pair id it assigned. */
export interface RelayLeg {
  address: string;
  port: number;
  pairId: number;
}

/** True for a virtual address of this module (100::x). */
export function isVirtualAddress(address: string): boolean {
  return address.startsWith(VIRTUAL_PREFIX);
}

/** One introduced peer: its virtual address and the paths to it. */
export class Route {
  readonly slot: number;
  /** The virtual address the core dials/accepts (port VIRTUAL_PORT). */
  readonly address: string;
  readonly remoteKey: Uint8Array;
  /** Punch token shared with the peer by the introducer. */
  readonly token: Uint8Array;
  /** Where relayed packets go (set anew when a dead direct path falls back to a fresh relay pair). */
  relay: RelayLeg | undefined;
  /** Who made this route: the connection to the introducer (for a fresh relay pair later). */
  via: object | undefined;
  /** The punched direct address (once a punch from the peer arrived; the first one wins). */
  direct: AddressInfo | undefined;
  /** The probe socket the direct path runs on (undefined: the socket's own port). */
  probe: UdpTransport | undefined;
  /** @internal Probe sockets open for this route. */
  probes: UdpTransport[] = [];
  /** Where sends go now. */
  kind: PathKind = 'pending';
  /** Accepting side: take the path of the peer's QUIC packets (see DIRECT_HOLD_MS). */
  readonly follow: boolean;
  /** @internal When the last QUIC packet came on the direct path (performance.now()). */
  lastDirectAt = -Infinity;
  /** @internal Direct sends since the last direct receive, and when the first of them left. */
  unanswered = 0;
  unansweredSince = 0;

  /** @internal A QUIC packet of the peer came on the direct path. */
  heardDirect(): void {
    this.lastDirectAt = performance.now();
    this.unanswered = 0;
  }
  /** What uses this route (its connection), once something does; see `adopt`. */
  owner: object | undefined;
  readonly stats: PathStats = { sentDirect: 0, sentRelayed: 0, recvDirect: 0, recvRelayed: 0, bytesRelayed: 0 };
  /** Called when a punch from the peer arrives from a new address. */
  onLearn: ((addr: AddressInfo) => void) | undefined;
  /** @internal */
  punchReplies = 0;
  /** @internal */
  expiry: NodeJS.Timeout | undefined;
  /** @internal Addresses registered for this route in the table. */
  readonly reals: string[] = [];

  constructor(slot: number, remoteKey: Uint8Array, token: Uint8Array, relay: RelayLeg | undefined, follow: boolean, via?: object) {
    this.slot = slot;
    this.address = `${VIRTUAL_PREFIX}${slot.toString(16)}`;
    this.remoteKey = remoteKey;
    this.token = token;
    this.relay = relay;
    this.follow = follow;
    this.via = via;
  }
}

