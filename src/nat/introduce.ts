/**
 * Introductions and hole punching (protocol 'peersock/introduce/1', raw
 * types). Three roles: dialer and target on every socket with natTraversal(),
 * introducer (and relay) only with natTraversal({ introducer: true }):
 *
 *   dialer A ──connect(key B)──▶ introducer I ──introduce(A, addresses)──▶ B
 *                                                 B: low-TTL round, replies
 *   A ◀──reply(B's address, token, pair id)── I
 *   A: low-TTL round, then ──ready──▶ I ──go──▶ B
 *   A and B: full punches to each other; a punch that arrives tells the
 *   receiver the sender's real address, and it answers once.
 *   A dials B's virtual address: direct once a punch arrived (then
 *   ──release──▶ I frees the relay pair), else relayed through I after the
 *   punch window (if I relays for this pair).
 *   Later, if the direct path dies (A sends and hears nothing back for
 *   DEAD_MS): A ──relay──▶ I opens a fresh pair ──relayed──▶ B, and both
 *   sides move to it (B once A's packets come relayed and no longer direct).
 *
 * The low-TTL round opens this side's own NAT mapping before full punches
 * (B first, A after its own; see punch.ts for the strategy); the offer's
 * encoding is in offer.ts. This file has the dialer's and the target's
 * roles; the introducer's is in introducer.ts.
 */
import type { PeerConnection } from '../connection';
import type { PeerSocket } from '../peer-socket';
import { AbortError, BusyError, ConnectionRefusedError, InvalidArgumentError } from '../errors';
import { keysEqual } from '../keys';
import { Dispatcher } from '../messages/dispatcher';
import { DecodeError, RemoteError } from '../messages/errors';
import type { AddressInfo } from '../transport';
import { IntroductionError, NoPathError, type NoPathReason } from './errors';
import { INTRODUCE_TIMEOUT, Introducer } from './introducer';
import { RELAY_LIMIT, RELAY_OK, concat, decodeOffer, u32, type Offer } from './offer';
import { VIRTUAL_PORT, type NatPaths, type RelayLeg, type Route } from './paths';
import { MAX_PUNCHES, Puncher } from './punch';
import type { RelayServer } from './relay';
import { TOKEN_LENGTH } from './wire';

export { decodeOffer, encodeOffer, type Offer } from './offer';

/** Protocol name of introductions. */
export const INTRODUCE_PROTOCOL = 'peersock/introduce/1';

/** Default punch window before falling back to the relay (ms). */
export const DEFAULT_DIRECT_TIMEOUT = 2000;
/** Default TTL of the first punch round (hyperdht's choice: past a home router and a carrier NAT). */
export const DEFAULT_PUNCH_TTL = 5;
/** Routes prepared for an introduced dialer that never came are dropped after this. */
const UNUSED_ROUTE_MS = 30_000;
/** Prepared routes nobody dialed yet, at most (as target). */
const MAX_WAITING = 256;

/**
 * A direct path is taken for dead when at least DEAD_SENDS datagrams went
 * out on it over DEAD_MS with nothing back (checked every WATCH_INTERVAL).
 */
const DEAD_MS = 1000;
const DEAD_SENDS = 3;
const WATCH_INTERVAL = 250;

/** Options of an introduced `connect` (see ConnectOptions). */
export interface IntroducedDialOptions {
  timeout: number;
  signal: AbortSignal | undefined;
  direct: boolean;
  relay: boolean;
  directTimeout: number;
}

/** How one socket's introductions behave (see NatTraversalOptions). */
export interface IntroductionOptions {
  /** Serve as introducer: answer 'connect', 'ready', 'release' and 'relay'. */
  introducer: boolean;
  /** IP TTL of the first punch round. */
  punchTtl: number;
}

/** Counters of introductions. */
export interface IntroductionStats {
  /** Introductions made as introducer. */
  introduced: number;
  /** Introductions received as target. */
  received: number;
  /** Introduced dials that went direct / relayed / found no path. */
  direct: number;
  relayed: number;
  failed: number;
  /** Relayed dials that moved to a direct path found later. */
  upgraded: number;
  /** Direct paths that died and moved to a fresh relay pair. */
  fellBack: number;
}

/** Relayed packets of pair `pairId` go to the introducer at the other end of `via`. */
const legVia = (via: PeerConnection, pairId: number): RelayLeg => {
  const a = via.remoteAddress;
  return { address: a.address, port: a.port, pairId };
};

/** The introduction protocol of one socket (all three roles). */
export class Introductions {
  readonly stats: IntroductionStats = { introduced: 0, received: 0, direct: 0, relayed: 0, failed: 0, upgraded: 0, fellBack: 0 };
  readonly #host: PeerSocket;
  readonly #nat: NatPaths;
  readonly #punches: Puncher;
  readonly #d: Dispatcher;
  /** The introducer role, when this socket serves it. */
  readonly #introducer: Introducer | undefined;
  /** As target: routes waiting for 'go', by introducer handle and pair id. */
  readonly #waiting = new Map<string, { route: Route; peer: AddressInfo; you: AddressInfo }>();

  /** Introductions on `host`, over its path layer `nat` (and its relay service, as introducer). */
  constructor(host: PeerSocket, nat: NatPaths, relay: RelayServer | undefined, opts: IntroductionOptions) {
    this.#host = host;
    this.#nat = nat;
    this.#punches = new Puncher(host, nat, opts.punchTtl);
    this.#d = new Dispatcher(host, { protocol: INTRODUCE_PROTOCOL, maxMessageSize: 256 });
    // Serving others (introducing, relaying) is opt-in; being introduced is not.
    if (opts.introducer) this.#introducer = new Introducer(host, this.#d, relay, this.stats);
    this.#d.handle('introduce', (msg: Uint8Array, ctx) => this.#onIntroduce(msg, ctx.connection));
    this.#d.handle('go', (msg: Uint8Array, ctx) => this.#onGo(msg, ctx.connection));
    this.#d.handle('relayed', (msg: Uint8Array, ctx) => this.#onRelayed(msg, ctx.connection));
    // The target side: a connection accepted at a prepared virtual address runs on its route.
    host.on('connection', (c: PeerConnection) => {
      const r = nat.route(c._pathAddress.address);
      if (r !== undefined && r.owner === undefined && keysEqual(r.remoteKey, c.remotePublicKey)) this.#adopt(r, c);
    });
  }

  // --- target --------------------------------------------------------------

  /** The introducer opened a fresh relay pair for a route of ours (the dialer's direct path died). */
  #onRelayed(msg: Uint8Array, introducer: PeerConnection): Uint8Array {
    if (!(msg instanceof Uint8Array) || msg.length !== 32 + TOKEN_LENGTH + 4) throw new DecodeError('relayed: expected key, token and pair id');
    const pairId = Buffer.from(msg).readUInt32BE(32 + TOKEN_LENGTH);
    const route = this.#nat.routeByToken(msg.subarray(32, 32 + TOKEN_LENGTH));
    if (pairId === 0 || route === undefined || !route.follow || route.via !== introducer || !keysEqual(route.remoteKey, msg.subarray(0, 32))) {
      throw new IntroductionError('relayed: no such introduction');
    }
    this.#nat.setRelay(route, legVia(introducer, pairId));
    return new Uint8Array(0);
  }

  async #onIntroduce(msg: Uint8Array, introducer: PeerConnection): Promise<Uint8Array> {
    const o = decodeOffer(msg);
    const nat = this.#nat;
    if (!this.#host._acceptPeer(o.key, o.peer)) throw new ConnectionRefusedError('refused by accept hook', { reason: 'refused by accept hook' });
    if (this.#waiting.size >= MAX_WAITING) throw new BusyError('too many introductions waiting');
    const relay = o.relay === RELAY_OK ? legVia(introducer, o.pairId) : undefined;
    const route = nat.create(o.key, o.token, relay, [o.peer], true, introducer);
    if (route === undefined) throw new IntroductionError('no free virtual address');
    nat.expireUnused(route, UNUSED_ROUTE_MS);
    this.stats.received++;
    const k = `${introducer.handle}|${o.pairId}`;
    this.#waiting.set(k, { route, peer: o.peer, you: o.you });
    setTimeout(() => this.#waiting.delete(k), UNUSED_ROUTE_MS).unref();
    await this.#punches.lowRound(route, o.peer, o.you);
    return new Uint8Array(0);
  }

  #onGo(msg: Uint8Array, introducer: PeerConnection): void {
    if (!(msg instanceof Uint8Array) || msg.length !== 4) return;
    const w = this.#waiting.get(`${introducer.handle}|${Buffer.from(msg).readUInt32BE(0)}`);
    if (w === undefined) return;
    void this.#punches.punch(w.route, w.peer, MAX_PUNCHES);
    void this.#punches.probe(w.route, w.peer, w.you);
  }

  // --- dialer ----------------------------------------------------------------

  /** `connect({ publicKey, via })`: introduction, punching, relay fallback. */
  async dial(key: Uint8Array, introducer: PeerConnection, o: IntroducedDialOptions): Promise<PeerConnection> {
    const deadline = performance.now() + o.timeout;
    const left = (): number => Math.max(1, deadline - performance.now());
    if (introducer.closeInfo !== undefined) throw new InvalidArgumentError('via: the connection is closed');
    if (keysEqual(key, this.#host.publicKey)) throw new InvalidArgumentError('cannot dial our own key');
    let raw: Uint8Array;
    try {
      raw = await this.#d.request<Uint8Array>(introducer, concat([key, Uint8Array.of(o.relay ? 1 : 0)]), { type: 'connect', reply: 'connect', timeout: left(), ...(o.signal !== undefined ? { signal: o.signal } : {}) });
    } catch (e) {
      this.stats.failed++;
      if (e instanceof RemoteError && e.remoteCode === ConnectionRefusedError.code) throw new ConnectionRefusedError(`connection refused by peer: ${e.message}`, { reason: e.message, cause: e });
      if (e instanceof AbortError) throw e;
      throw new IntroductionError(`introduction failed: ${(e as Error).message}`, { cause: e });
    }
    const offer = decodeOffer(raw);
    if (!keysEqual(offer.key, key)) throw new IntroductionError('the introducer answered for another key');
    const nat = this.#nat;
    const relayLeg = offer.relay === RELAY_OK ? legVia(introducer, offer.pairId) : undefined;
    const route = nat.create(key, offer.token, relayLeg, [offer.peer], false, introducer);
    if (route === undefined) throw new IntroductionError('no free virtual address');
    try {
      if (o.direct && (await this.#punchDirect(route, offer, introducer, Math.min(o.directTimeout, left()), o.signal))) route.kind = 'direct';
      else if (!o.relay) throw new NoPathError(o.direct ? 'no direct path, and the relay was declined' : 'direct and relay both off', { reason: o.direct ? 'relay-declined' : 'direct-off' });
      else if (relayLeg === undefined) {
        const reason: NoPathReason = offer.relay === RELAY_LIMIT ? 'relay-limit' : 'relay-off';
        throw new NoPathError(`no direct path, and the introducer does not relay (${reason})`, { reason });
      } else route.kind = 'relayed';
      if (o.signal?.aborted) throw new AbortError();
      const conn = await this.#host._dialAddress(key, route.address, VIRTUAL_PORT, { timeout: left(), signal: o.signal, followPeer: true });
      this.#adopt(route, conn);
      // The core took authentic packets from a new address (the peer's NAT moved it).
      conn.on('peerAddress', (addr: AddressInfo) => nat.peerMoved(route, addr));
      if (route.kind === 'direct') {
        this.stats.direct++;
        if (relayLeg !== undefined) this.#d.send(introducer, u32(offer.pairId), { type: 'release' }).catch(() => {});
        if (o.relay) this.#watch(route, conn);
      } else {
        this.stats.relayed++;
        // Punches still on their way may open a direct path: move there.
        const upgrade = (): void => {
          if (route.kind !== 'relayed' || conn.closeInfo !== undefined) return;
          nat.setKind(route, 'direct');
          route.onLearn = undefined;
          this.stats.upgraded++;
          this.#watch(route, conn);
        };
        if (o.direct && route.direct !== undefined) upgrade();
        else if (o.direct) route.onLearn = upgrade;
      }
      return conn;
    } catch (e) {
      this.stats.failed++;
      nat.release(route);
      throw e;
    }
  }

  /** Dialer: watches a direct path; when it dies, moves the connection to a fresh relay pair. */
  #watch(route: Route, conn: PeerConnection): void {
    const nat = this.#nat;
    const introducer = route.via as PeerConnection | undefined;
    if (introducer === undefined) return;
    const timer = setInterval(() => {
      if (conn.closeInfo !== undefined || introducer.closeInfo !== undefined || nat.route(route.address) !== route) {
        clearInterval(timer);
        return;
      }
      if (!nat.directSilent(route, DEAD_MS, DEAD_SENDS)) return;
      clearInterval(timer);
      void this.#fallBack(route, conn, introducer);
    }, WATCH_INTERVAL);
    timer.unref();
  }

  async #fallBack(route: Route, conn: PeerConnection, introducer: PeerConnection): Promise<void> {
    const nat = this.#nat;
    let pairId: number;
    try {
      const raw = await this.#d.request<Uint8Array>(introducer, concat([route.remoteKey, route.token]), { type: 'relay', reply: 'relay', timeout: INTRODUCE_TIMEOUT });
      if (!(raw instanceof Uint8Array) || raw.length !== 4) return;
      pairId = Buffer.from(raw).readUInt32BE(0);
    } catch {
      return; // no relay: the connection lives or dies by its direct path
    }
    if (pairId === 0 || conn.closeInfo !== undefined || nat.route(route.address) !== route) return;
    nat.setRelay(route, legVia(introducer, pairId));
    nat.setKind(route, 'relayed');
    this.stats.fellBack++;
  }

  /** Punches towards the offered address; true once a punch from the peer arrived within `window` ms. */
  #punchDirect(route: Route, offer: Offer, introducer: PeerConnection, window: number, signal: AbortSignal | undefined): Promise<boolean> {
    return new Promise<boolean>((resolve) => {
      let done = false;
      const finish = (ok: boolean): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        route.onLearn = undefined;
        resolve(ok);
      };
      const onAbort = (): void => finish(false);
      signal?.addEventListener('abort', onAbort, { once: true });
      const timer = setTimeout(() => finish(false), window);
      route.onLearn = () => finish(true);
      // Punching goes on for its bounded count after the window: a path
      // that opens late still moves a relayed connection to it.
      void (async () => {
        await this.#punches.lowRound(route, offer.peer, offer.you);
        this.#d.send(introducer, u32(offer.pairId), { type: 'ready' }).catch(() => {});
        void this.#punches.probe(route, offer.peer, offer.you);
        await this.#punches.punch(route, offer.peer, MAX_PUNCHES);
      })().catch(() => finish(false));
    });
  }

  /** Binds a route to its connection; the route is released when the connection closes. */
  #adopt(r: Route, conn: PeerConnection): void {
    this.#nat.adopt(r, conn);
    void conn.closed.then(() => this.#nat.release(r));
  }

  /** Stops answering. */
  close(): void {
    this.#d.close();
    this.#introducer?.close();
    this.#waiting.clear();
  }
}
