/**
 * Virtual paths: an introduced peer is dialed (or accepted) at a virtual
 * address in 100::/64 (RFC 6666, routed nowhere), and this table decides per
 * packet where that address really is: a punched direct address, or a relay
 * (the introducer, which forwards the opaque QUIC packets). The QUIC core
 * never knows: the connection's peer address stays the virtual one, so the
 * path can change (relay → direct) without a QUIC migration.
 *
 * One table per socket (PeerSocket creates it). The socket hands it every
 * received datagram first (`intercept`) and every datagram the core sends to
 * a virtual address (`send`).
 */
import type { PeerConnection } from '../connection';
import { UdpTransport, type AddressInfo, type DatagramTransport } from '../transport';
import { RelayServer, type RelayOptions, type RelayStats } from './relay';
import { PUNCH, RELAY_FROM, RELAY_HEADER, RELAY_TO, frameKind, punchFrame, punchToken, relayFrame, relayPairId } from './wire';

/** The port every virtual address is dialed at. */
export const VIRTUAL_PORT = 1;
const VIRTUAL_PREFIX = '100::';
const MAX_SLOT = 0xfffe;
/** Punches sent back to newly seen addresses of one route, at most. */
const MAX_PUNCH_REPLIES = 16;
/** Probe sockets (birthday punching) open at once per socket, at most. */
const MAX_PROBES = 512;
/**
 * The accepting side follows the path of the peer's packets, but once a
 * direct packet arrived, relayed ones take the route back only after this
 * long without direct packets: relayed packets still in flight when the
 * dialer moved to the direct path must not flip it back and forth.
 */
export const DIRECT_HOLD_MS = 1000;
/**
 * Dialing side: a peer seen at a new real address (authentic packets, its
 * NAT moved it) is followed there once its current address has been silent
 * this long; while packets still come from the current address, someone
 * replaying them from elsewhere cannot take the path away.
 */
export const MOVE_SILENCE_MS = 250;
/** The TTL of ordinary datagrams, restored after a low-TTL round. */
export const DEFAULT_TTL = 64;

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

const addrKey = (address: string, port: number): string => `${address}|${port}`;
const pairKey = (leg: RelayLeg): string => `${addrKey(leg.address, leg.port)}|${leg.pairId}`;

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
  /** The connection to the introducer that made this route (for a fresh relay pair later). */
  via: PeerConnection | undefined;
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
  /** The connection using this route, once there is one. */
  conn: PeerConnection | undefined;
  readonly stats: PathStats = { sentDirect: 0, sentRelayed: 0, recvDirect: 0, recvRelayed: 0, bytesRelayed: 0 };
  /** Called when a punch from the peer arrives from a new address. */
  onLearn: ((addr: AddressInfo) => void) | undefined;
  /** @internal */
  punchReplies = 0;
  /** @internal */
  expiry: NodeJS.Timeout | undefined;
  /** @internal Addresses registered for this route in the table. */
  readonly reals: string[] = [];

  constructor(slot: number, remoteKey: Uint8Array, token: Uint8Array, relay: RelayLeg | undefined, follow: boolean, via?: PeerConnection) {
    this.slot = slot;
    this.address = `${VIRTUAL_PREFIX}${slot.toString(16)}`;
    this.remoteKey = remoteKey;
    this.token = token;
    this.relay = relay;
    this.follow = follow;
    this.via = via;
  }
}

/** What the table needs from its socket. */
export interface PathHost {
  /** Feeds a QUIC datagram to the core as if it came from `address:port`. */
  _feed(data: Uint8Array, address: string, port: number): void;
}

/**
 * Sets where a route's packets go; its connection hears 'path' (with its new
 * `remoteAddress`) when that changes.
 */
export function setRouteKind(r: Route, kind: PathKind): void {
  if (r.kind === kind) return;
  r.kind = kind;
  const c = r.conn;
  if (c !== undefined && c.closeInfo === undefined) c.emit('path', c.remoteAddress);
}

/** The virtual-path table and relay of one socket. */
export class NatPaths {
  /** Forwards for introduced pairs; undefined when relaying is off. */
  readonly relay: RelayServer | undefined;
  readonly #host: PathHost;
  readonly #transport: DatagramTransport;
  readonly #bySlot = new Map<number, Route>();
  readonly #byReal = new Map<string, Route>();
  readonly #byPair = new Map<string, Route>();
  readonly #byToken = new Map<string, Route>();
  #nextSlot = 1;
  #probeCount = 0;
  readonly #noop = (): void => {};

  constructor(host: PathHost, transport: DatagramTransport, relay: RelayOptions | false | undefined) {
    this.#host = host;
    this.#transport = transport;
    this.relay = relay === false ? undefined : new RelayServer((d, port, address) => this.#transport.send(d, port, address, this.#noop), relay ?? {});
  }

  /** Routes in use. */
  get size(): number {
    return this.#bySlot.size;
  }

  /** The route of a virtual address, if any. */
  route(address: string): Route | undefined {
    if (!isVirtualAddress(address)) return undefined;
    return this.#bySlot.get(Number.parseInt(address.slice(VIRTUAL_PREFIX.length), 16));
  }

  /** The route a connection runs on (undefined: an ordinary connection). */
  routeOf(conn: PeerConnection): Route | undefined {
    const r = this.route(conn._pathAddress.address);
    return r !== undefined && (r.conn === conn || r.conn === undefined) ? r : undefined;
  }

  /** Allocates a route; `candidates` are real addresses whose QUIC packets belong to it. */
  create(remoteKey: Uint8Array, token: Uint8Array, relay: RelayLeg | undefined, candidates: AddressInfo[], follow: boolean, via?: PeerConnection): Route | undefined {
    if (this.#bySlot.size >= MAX_SLOT) return undefined;
    let slot = this.#nextSlot;
    while (this.#bySlot.has(slot)) slot = (slot % MAX_SLOT) + 1;
    this.#nextSlot = (slot % MAX_SLOT) + 1;
    const r = new Route(slot, remoteKey, token, relay, follow, via);
    this.#bySlot.set(slot, r);
    this.#byToken.set(Buffer.from(token).toString('hex'), r);
    if (relay !== undefined) this.#byPair.set(pairKey(relay), r);
    for (const c of candidates) this.#addReal(r, c.address, c.port);
    return r;
  }

  /** The route of an introduction's token, if any. */
  routeByToken(token: Uint8Array): Route | undefined {
    return this.#byToken.get(Buffer.from(token).toString('hex'));
  }

  /** Points a route's relayed packets at another relay pair. */
  setRelay(r: Route, leg: RelayLeg): void {
    if (this.#bySlot.get(r.slot) !== r) return;
    if (r.relay !== undefined) this.#byPair.delete(pairKey(r.relay));
    r.relay = leg;
    this.#byPair.set(pairKey(leg), r);
  }

  /**
   * Whether `r`'s direct path looks dead: at least `sends` datagrams went
   * out on it over `ms` with nothing back. (One unanswered datagram is no
   * sign: a last ACK is never answered.)
   */
  directSilent(r: Route, ms: number, sends: number): boolean {
    return r.kind === 'direct' && r.unanswered >= sends && performance.now() - r.unansweredSince >= ms;
  }

  /** Forgets a route (its connection ended, or it was never used). */
  release(r: Route): void {
    if (this.#bySlot.get(r.slot) !== r) return;
    this.#bySlot.delete(r.slot);
    this.#byToken.delete(Buffer.from(r.token).toString('hex'));
    if (r.relay !== undefined) this.#byPair.delete(pairKey(r.relay));
    for (const k of r.reals) if (this.#byReal.get(k) === r) this.#byReal.delete(k);
    if (r.expiry !== undefined) clearTimeout(r.expiry);
    r.onLearn = undefined;
    r.probe = undefined;
    this.closeProbes(r);
  }

  /**
   * Opens up to `count` extra UDP sockets for `r` (birthday punching from
   * behind a port-randomising NAT: each socket gets its own mapping). Only
   * for the default transport; bounded per socket by MAX_PROBES.
   */
  async openProbes(r: Route, count: number): Promise<UdpTransport[]> {
    if (!(this.#transport instanceof UdpTransport)) return [];
    const n = Math.max(0, Math.min(count, MAX_PROBES - this.#probeCount));
    this.#probeCount += n;
    const host = this.#transport.address().address;
    const opened = await Promise.all(Array.from({ length: n }, () => UdpTransport.bind({ host, port: 0, bufferSize: 256 * 1024 }).catch(() => undefined)));
    const list: UdpTransport[] = [];
    for (const p of opened) {
      if (p === undefined) {
        this.#probeCount--;
        continue;
      }
      if (this.#bySlot.get(r.slot) !== r) {
        this.#probeCount--;
        void p.close();
        continue;
      }
      p.onDatagram((d, address, port) => this.#onProbeDatagram(r, p, d, address, port));
      p.onError(() => {});
      r.probes.push(p);
      list.push(p);
    }
    return list;
  }

  /** Closes `r`'s probe sockets except the one its direct path uses. */
  closeProbes(r: Route): void {
    const keep = r.probe;
    for (const p of r.probes) {
      if (p === keep) continue;
      this.#probeCount--;
      void p.close();
    }
    r.probes = keep !== undefined ? [keep] : [];
  }

  #onProbeDatagram(r: Route, p: UdpTransport, data: Buffer, address: string, port: number): void {
    if (this.#bySlot.get(r.slot) !== r || data.length === 0) return;
    if ((data[0]! & 0x40) === 0) {
      if (frameKind(data) !== PUNCH || !Buffer.from(punchToken(data)).equals(r.token)) return;
      p.send(punchFrame(r.token), port, address, this.#noop);
      this.#learn(r, address, port, p);
      return;
    }
    if (r.probe !== p || r.direct === undefined || r.direct.address !== address || r.direct.port !== port) return;
    r.stats.recvDirect++;
    r.heardDirect();
    if (r.follow) setRouteKind(r, 'direct');
    this.#host._feed(data, r.address, VIRTUAL_PORT);
  }

  /** A punch from the peer arrived at `address:port` (on probe socket `probe`, or our own port). */
  #learn(r: Route, address: string, port: number, probe: UdpTransport | undefined): void {
    if (r.direct !== undefined) return; // the first path found stays
    r.direct = { address, port, family: address.includes(':') ? 'IPv6' : 'IPv4' };
    r.probe = probe;
    this.closeProbes(r);
    r.onLearn?.(r.direct);
  }

  /** Binds a route to its connection; the route is released when the connection closes. */
  adopt(r: Route, conn: PeerConnection): void {
    r.conn = conn;
    if (r.expiry !== undefined) clearTimeout(r.expiry);
    r.expiry = undefined;
    void conn.closed.then(() => this.release(r));
  }

  /** Releases `r` after `ms` unless a connection adopted it first. */
  expireUnused(r: Route, ms: number): void {
    if (r.expiry !== undefined) clearTimeout(r.expiry);
    r.expiry = setTimeout(() => {
      if (r.conn === undefined) this.release(r);
    }, ms);
    r.expiry.unref();
  }

  #addReal(r: Route, address: string, port: number): void {
    const k = addrKey(address, port);
    const owner = this.#byReal.get(k);
    if (owner !== undefined && owner !== r) return; // first route to claim an address keeps it
    if (owner === undefined) {
      this.#byReal.set(k, r);
      r.reals.push(k);
    }
  }

  /**
   * A datagram arrived: punches and relay frames are consumed here, QUIC
   * packets from an introduced peer's real address are fed to the core as
   * from its virtual address. Returns false for anything else.
   */
  intercept(data: Buffer, address: string, port: number): boolean {
    if ((data[0]! & 0x40) === 0) {
      const kind = frameKind(data);
      if (kind === 0) return false;
      if (kind === PUNCH) this.#onPunch(data, address, port);
      else if (kind === RELAY_TO) this.relay?.forward(data, address, port);
      else if (kind === RELAY_FROM) this.#onRelayed(data, address, port);
      return true;
    }
    if (this.#byReal.size === 0) return false;
    const r = this.#byReal.get(addrKey(address, port));
    if (r === undefined) return false;
    r.stats.recvDirect++;
    if (r.follow && r.probe === undefined) {
      // Per packet: a new object only when the peer's address changed.
      if (r.direct === undefined || r.direct.port !== port || r.direct.address !== address) {
        r.direct = { address, port, family: address.includes(':') ? 'IPv6' : 'IPv4' };
      }
      r.heardDirect();
      setRouteKind(r, 'direct');
    } else if (r.direct !== undefined && r.direct.port === port && r.direct.address === address) r.heardDirect();
    this.#host._feed(data, r.address, VIRTUAL_PORT);
    return true;
  }

  /**
   * Dialing side: the core took an authentic packet of `conn` from `addr`, an
   * address its route does not know (the peer's NAT gave it a new mapping;
   * a QUIC client would drop it). A direct route moves there once its
   * current address has been silent for MOVE_SILENCE_MS.
   */
  peerMoved(conn: PeerConnection, addr: AddressInfo): void {
    const r = this.routeOf(conn);
    if (r === undefined || r.follow || r.kind !== 'direct' || r.probe !== undefined) return;
    if (performance.now() - r.lastDirectAt < MOVE_SILENCE_MS) return;
    this.#addReal(r, addr.address, addr.port);
    if (this.#byReal.get(addrKey(addr.address, addr.port)) !== r) return; // another route's address
    r.direct = { address: addr.address, port: addr.port, family: addr.family };
    r.heardDirect();
    if (r.conn !== undefined && r.conn.closeInfo === undefined) r.conn.emit('path', r.conn.remoteAddress);
  }

  #onPunch(data: Buffer, address: string, port: number): void {
    const r = this.#byToken.get(Buffer.from(punchToken(data)).toString('hex'));
    if (r === undefined) return;
    const k = addrKey(address, port);
    if (r.reals.includes(k) && r.direct !== undefined) return; // seen and answered before
    this.#addReal(r, address, port);
    // Answer once per new address, so the far side learns ours as well.
    if (r.punchReplies++ < MAX_PUNCH_REPLIES) this.sendFrame(punchFrame(r.token), address, port);
    this.#learn(r, address, port, undefined);
  }

  #onRelayed(data: Buffer, address: string, port: number): void {
    const r = this.#byPair.get(pairKey({ address, port, pairId: relayPairId(data) }));
    if (r === undefined) return;
    r.stats.recvRelayed++;
    r.stats.bytesRelayed += data.length - RELAY_HEADER;
    if (r.follow && (r.kind !== 'direct' || performance.now() - r.lastDirectAt > DIRECT_HOLD_MS)) setRouteKind(r, 'relayed');
    const packet = data.subarray(RELAY_HEADER);
    if ((packet[0]! & 0x40) === 0) return;
    this.#host._feed(packet, r.address, VIRTUAL_PORT);
  }

  /** The core sends `data` to a virtual address: send it along the route's current path. */
  send(data: Uint8Array, address: string, done: (err?: Error | null) => void): void {
    const r = this.route(address);
    if (r === undefined) {
      done();
      return;
    }
    if (r.kind === 'direct' && r.direct !== undefined) {
      r.stats.sentDirect++;
      if (r.unanswered++ === 0) r.unansweredSince = performance.now();
      (r.probe ?? this.#transport).send(data, r.direct.port, r.direct.address, done);
      return;
    }
    if (r.kind === 'relayed' && r.relay !== undefined) {
      r.stats.sentRelayed++;
      r.stats.bytesRelayed += data.length;
      const frame = relayFrame(RELAY_TO, r.relay.pairId, data);
      done();
      this.#transport.send(frame, r.relay.port, r.relay.address, this.#noop);
      return;
    }
    done(); // no path yet: a lost packet, QUIC sends it again
  }

  /** Sends one of our frames from the socket's port (errors are lost packets). */
  sendFrame(frame: Uint8Array, address: string, port: number): void {
    this.#transport.send(frame, port, address, this.#noop);
  }

  /**
   * Sends frames with the IP TTL set to `ttl`, then restores the default
   * once they are out. Datagrams the socket sends meanwhile leave with the
   * low TTL too (and are lost like any packet); the round is short.
   */
  async sendLowTtl(frames: [Uint8Array, string, number][], ttl: number): Promise<void> {
    const t = this.#transport;
    if (t.setTTL === undefined || frames.length === 0) return;
    try {
      t.setTTL(ttl);
    } catch {
      return; // a transport that cannot: no low-TTL round
    }
    try {
      await Promise.all(frames.map(([f, address, port]) => new Promise<void>((resolve) => t.send(f, port, address, () => resolve()))));
    } finally {
      try {
        t.setTTL(DEFAULT_TTL);
      } catch {
        // Closed meanwhile.
      }
    }
  }

  /** Forgets every route and pair (the socket is closing). */
  close(): void {
    for (const r of [...this.#bySlot.values()]) this.release(r);
    this.relay?.close();
  }
}

/** The path of a connection: 'direct' for ordinary ones, or the route of an introduced one. */
export interface ConnectionPath {
  kind: PathKind;
  /** The peer's real address when known (direct or punched). */
  direct: AddressInfo | undefined;
  /** The relay's address, when the introducer relays this pair. */
  relay: AddressInfo | undefined;
  /** Counters of the route (introduced connections only). */
  stats: PathStats | undefined;
}

/**
 * How `conn` (a connection of `socket`) travels. Introduced connections run
 * on a virtual address (100::x, their `remoteAddress`); this says where their
 * packets really go.
 */
export function connectionPath(socket: { readonly _nat: NatPaths }, conn: PeerConnection): ConnectionPath {
  const r = socket._nat.routeOf(conn);
  if (r === undefined) return { kind: 'direct', direct: { ...conn._pathAddress }, relay: undefined, stats: undefined };
  const relay = r.relay !== undefined ? { address: r.relay.address, port: r.relay.port, family: r.relay.address.includes(':') ? 'IPv6' as const : 'IPv4' as const } : undefined;
  return { kind: r.kind, direct: r.direct, relay, stats: { ...r.stats } };
}

/** The relay counters of `socket` (undefined when its relay is off). */
export function relayStats(socket: { readonly _nat: NatPaths }): RelayStats | undefined {
  const r = socket._nat.relay;
  return r === undefined ? undefined : { ...r.stats };
}
