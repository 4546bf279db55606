/**
 * The NAT path layer, a DatagramTransport decorator (L0): an introduced peer
 * is dialed (or accepted) at a virtual address in 100::/64 (RFC 6666, routed
 * nowhere), and this table decides per packet where that address really is:
 * a punched direct address, or a relay (the introducer, which forwards the
 * opaque QUIC packets). The QUIC core never knows: the connection's peer
 * address stays the virtual one, so the path can change (relay → direct)
 * without a QUIC migration.
 *
 * It wraps the socket's transport (the NAT traversal extension installs it at
 * bind): received punches and relay-from frames are consumed here, QUIC
 * packets from an introduced peer's real address are handed up as from its
 * virtual address, and what the socket sends to a virtual address goes along
 * the route's path. Everything else (relay-to frames for the relay service,
 * other raw datagrams, ordinary QUIC packets) passes through unchanged.
 */
import { UdpTransport, type AddressInfo, type DatagramHandler, type DatagramTransport } from '../transport';
import { ProbeSockets } from './probes';
import { VIRTUAL_PORT, VIRTUAL_PREFIX, Route, isVirtualAddress, type PathKind, type RelayLeg } from './route';
import { PUNCH, RELAY_FROM, RELAY_HEADER, RELAY_TO, frameKind, punchFrame, punchToken, relayFrame, relayPairId } from './wire';

const MAX_SLOT = 0xfffe;
/** Punches sent back to newly seen addresses of one route, at most. */
const MAX_PUNCH_REPLIES = 16;
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

const addrKey = (address: string, port: number): string => `${address}|${port}`;
const pairKey = (leg: RelayLeg): string => `${addrKey(leg.address, leg.port)}|${leg.pairId}`;

export { Route, VIRTUAL_PORT, isVirtualAddress } from './route';
export type { PathKind, PathStats, RelayLeg } from './route';

/** Called when where a virtual address leads changed (its connection then reports 'path'). */
export type PathChangeHandler = (address: string, port: number) => void;

/** The virtual-path table of one socket, as a decorator of its transport. */
export class NatPaths implements DatagramTransport {
  readonly #transport: DatagramTransport;
  #deliver: DatagramHandler = () => {};
  readonly #pathChange: PathChangeHandler[] = [];
  readonly #bySlot = new Map<number, Route>();
  readonly #byReal = new Map<string, Route>();
  readonly #byPair = new Map<string, Route>();
  readonly #byToken = new Map<string, Route>();
  #nextSlot = 1;
  readonly #probes = new ProbeSockets();
  readonly #noop = (): void => {};

  /** Wraps `transport`: the socket sends and receives through this table from now on. */
  constructor(transport: DatagramTransport) {
    this.#transport = transport;
  }

  /** The wrapped transport's receive handler is ours; what is not a path's goes to `handler`. */
  onDatagram(handler: DatagramHandler): void {
    this.#deliver = handler;
    this.#transport.onDatagram((data, address, port) => {
      if (data.length === 0 || !this.intercept(data, address, port)) handler(data, address, port);
    });
  }

  /** Errors of the wrapped transport. */
  onError(handler: (err: Error) => void): void {
    this.#transport.onError(handler);
  }

  /** The wrapped transport's address. */
  address(): AddressInfo {
    return this.#transport.address();
  }

  /** Sets the wrapped transport's TTL (when it can). */
  setTTL(ttl: number): void {
    if (this.#transport.setTTL === undefined) throw new Error('the transport cannot set the TTL');
    this.#transport.setTTL(ttl);
  }

  /** Forgets every route, then closes the wrapped transport. */
  async close(): Promise<void> {
    for (const r of [...this.#bySlot.values()]) this.release(r);
    await this.#transport.close();
  }

  /** An introduced peer's virtual address as its real one, once its path is direct. */
  displayAddress(address: string, _port: number): AddressInfo | undefined {
    if (this.#bySlot.size === 0) return undefined;
    const r = this.route(address);
    return r !== undefined && r.kind === 'direct' && r.direct !== undefined ? { ...r.direct } : undefined;
  }

  /** The virtual addresses (100::/64) are this layer's: their datagrams must come through it. */
  ownedPrefixes(): ReadonlyArray<readonly [string, number]> {
    return [[VIRTUAL_PREFIX, 64], ...(this.#transport.ownedPrefixes?.() ?? [])];
  }

  /** Calls `fn` whenever where a virtual address leads changes. */
  onPathChange(fn: PathChangeHandler): void {
    this.#pathChange.push(fn);
  }

  /** Sets where a route's packets go; its connection hears 'path' when that changes. */
  setKind(r: Route, kind: PathKind): void {
    if (r.kind === kind) return;
    r.kind = kind;
    this.#changed(r);
  }

  #changed(r: Route): void {
    if (r.owner === undefined) return;
    for (const fn of this.#pathChange) fn(r.address, VIRTUAL_PORT);
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

  /** The route of `owner` at virtual address `address` (undefined: an ordinary connection). */
  routeOf(address: string, owner: object): Route | undefined {
    const r = this.route(address);
    return r !== undefined && (r.owner === owner || r.owner === undefined) ? r : undefined;
  }

  /** Allocates a route; `candidates` are real addresses whose QUIC packets belong to it. */
  create(remoteKey: Uint8Array, token: Uint8Array, relay: RelayLeg | undefined, candidates: AddressInfo[], follow: boolean, via?: object): Route | undefined {
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
    for (const k of r.reals) {
      if (this.#byReal.get(k) !== r) continue;
      this.#byReal.delete(k);
      this.#claim(k, false);
    }
    if (r.expiry !== undefined) clearTimeout(r.expiry);
    r.onLearn = undefined;
    r.probe = undefined;
    this.closeProbes(r);
  }

  /**
   * Opens up to `count` extra UDP sockets for `r` (birthday punching from
   * behind a port-randomising NAT: each socket gets its own mapping). Only
   * for the default transport; bounded per socket (see probes.ts).
   */
  async openProbes(r: Route, count: number): Promise<UdpTransport[]> {
    if (this.#transport.realUdp !== true) return [];
    const host = this.#transport.address().address;
    return this.#probes.open(r, count, host, () => this.#bySlot.get(r.slot) === r, (p, d, address, port) => this.#onProbeDatagram(r, p, d, address, port));
  }

  /** Closes `r`'s probe sockets except the one its direct path uses. */
  closeProbes(r: Route): void {
    this.#probes.close(r);
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
    if (r.follow) this.setKind(r, 'direct');
    this.#deliver(data, r.address, VIRTUAL_PORT);
  }

  /** A punch from the peer arrived at `address:port` (on probe socket `probe`, or our own port). */
  #learn(r: Route, address: string, port: number, probe: UdpTransport | undefined): void {
    if (r.direct !== undefined) return; // the first path found stays
    r.direct = { address, port, family: address.includes(':') ? 'IPv6' : 'IPv4' };
    r.probe = probe;
    this.closeProbes(r);
    r.onLearn?.(r.direct);
  }

  /** Binds a route to what uses it (its connection); release it when that ends. */
  adopt(r: Route, owner: object): void {
    r.owner = owner;
    if (r.expiry !== undefined) clearTimeout(r.expiry);
    r.expiry = undefined;
  }

  /** Releases `r` after `ms` unless a connection adopted it first. */
  expireUnused(r: Route, ms: number): void {
    if (r.expiry !== undefined) clearTimeout(r.expiry);
    r.expiry = setTimeout(() => {
      if (r.owner === undefined) this.release(r);
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
      this.#claim(k, true);
    }
  }

  /** QUIC packets from `key` (a peer's real address) are ours to translate, or no longer: tell a driver below (the native one). */
  #claim(key: string, claimed: boolean): void {
    const t = this.#transport;
    if (t.claimSource === undefined) return;
    const i = key.lastIndexOf('|');
    t.claimSource(key.slice(0, i), Number(key.slice(i + 1)), claimed);
  }

  /**
   * A datagram arrived: punches and relay-from frames are consumed here, QUIC
   * packets from an introduced peer's real address are handed up as from its
   * virtual address. Returns false for anything else (relay-to frames, which
   * are the relay service's, included).
   */
  intercept(data: Buffer, address: string, port: number): boolean {
    if ((data[0]! & 0x40) === 0) {
      const kind = frameKind(data);
      if (kind === 0 || kind === RELAY_TO) return false;
      if (kind === PUNCH) this.#onPunch(data, address, port);
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
      this.setKind(r, 'direct');
    } else if (r.direct !== undefined && r.direct.port === port && r.direct.address === address) r.heardDirect();
    this.#deliver(data, r.address, VIRTUAL_PORT);
    return true;
  }

  /**
   * Dialing side: the core took an authentic packet of route `r`'s
   * connection from `addr`, an address the route does not know (the peer's
   * NAT gave it a new mapping; a QUIC client would drop it). A direct route
   * moves there once its current address has been silent for MOVE_SILENCE_MS.
   */
  peerMoved(r: Route, addr: AddressInfo): void {
    if (this.#bySlot.get(r.slot) !== r || r.follow || r.kind !== 'direct' || r.probe !== undefined) return;
    if (performance.now() - r.lastDirectAt < MOVE_SILENCE_MS) return;
    this.#addReal(r, addr.address, addr.port);
    if (this.#byReal.get(addrKey(addr.address, addr.port)) !== r) return; // another route's address
    r.direct = { address: addr.address, port: addr.port, family: addr.family };
    r.heardDirect();
    this.#changed(r);
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
    if (r.follow && (r.kind !== 'direct' || performance.now() - r.lastDirectAt > DIRECT_HOLD_MS)) this.setKind(r, 'relayed');
    const packet = data.subarray(RELAY_HEADER);
    if ((packet[0]! & 0x40) === 0) return;
    this.#deliver(packet, r.address, VIRTUAL_PORT);
  }

  /** Sends `data`: to a virtual address along the route's current path, elsewhere as it is. */
  send(data: Uint8Array, port: number, address: string, done: (err?: Error | null) => void): void {
    if (!isVirtualAddress(address)) {
      this.#transport.send(data, port, address, done);
      return;
    }
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

}
