/**
 * Discovery: find a peer by its key alone, on the internet through signed
 * records in the BitTorrent mainline DHT (BEP 44) and on the LAN through
 * mDNS, and peers of a topic through BEP 5 announcements; then connect with
 * the key pinned (the record is only a hint, the handshake is the proof).
 *
 *   const discovery = await Discovery.start(socket, { bootstrap: ['10.0.0.7:6881'], mdns: true });
 *   await discovery.publish();
 *   const conn = await discovery.connect(publicKey);
 *
 * Nothing is contacted that the caller did not name: the DHT is off without
 * `bootstrap`, mDNS is off unless `mdns` is set.
 */
import type { PeerConnection } from '../connection';
import { AbortError, ClosedError, DiscoveryTimeoutError, InvalidArgumentError, PeerNotFoundError, PeerUnreachableError, type PeersockError } from '../errors';
import { assertKey, encodeKey, keysEqual } from '../keys';
import { NatTraversal } from '../nat/traversal';
import type { PeerSocket } from '../peer-socket';
import { ownHosts, Upkeep, type UpkeepOptions } from './upkeep';
import { DhtNode, type DhtNodeOptions } from './dht';
import { LanDiscovery, type LanDiscoveryOptions } from './mdns';
import { mergeLookups } from './merge';
import { reach } from './reach';
import { decodeRecord, type PeerAddress, type PeerRecord } from './record';
import { topicHash } from './topic';

/** Options of `Discovery.start`. */
export interface DiscoveryOptions extends UpkeepOptions {
  /** Mainline DHT nodes to bootstrap from, `host:port`; the DHT is off without it (`[]`: a first node of a new DHT). */
  bootstrap?: string[];
  /** Settings of this socket's own DHT node (its UDP port, resource limits). */
  dht?: Omit<DhtNodeOptions, 'bootstrap'>;
  /** LAN discovery through mDNS (default false); an object sets its options. */
  mdns?: boolean | LanDiscoveryOptions;
  /** How long a resolved record is reused by `connect`, in ms (default 60000). */
  cacheTtl?: number;
  /** How long `resolve` listens on the LAN before asking the DHT, in ms (default 1000). */
  lanTimeout?: number;
}

/** A record as `resolve` returns it: signed and from the DHT, or heard on the LAN (unsigned, `seq` 0). */
export type ResolvedRecord = PeerRecord & { source: 'dht' | 'lan' };

/** Options of `resolve` and `connect`. */
export interface FindOptions {
  /** Give up after this many ms (resolve default 10000, connect default 20000). */
  timeout?: number;
  /** Abort. */
  signal?: AbortSignal;
}

/** Options of `announce` and `lookup`. */
export interface TopicOptions {
  /** Stop announcing / end the lookup. */
  signal?: AbortSignal;
  /** lookup: end after this many ms (default 10000). */
  timeout?: number;
}

/** Re-announce a topic this often: BEP 5 peers are kept about 30 minutes. */
const ANNOUNCE_EVERY = 15 * 60_000;
const active = new WeakMap<PeerSocket, Discovery>();

/** Discovery of peers by key and by topic for one socket (see the module comment). */
export class Discovery {
  readonly #socket: PeerSocket;
  readonly #dht: DhtNode | undefined;
  readonly #lan: LanDiscovery | undefined;
  readonly #upkeep: Upkeep;
  readonly #cache = new Map<string, { record: ResolvedRecord; until: number }>();
  readonly #cacheTtl: number;
  readonly #lanTimeout: number;
  readonly #topics = new Map<string, { hash: Uint8Array; timer: NodeJS.Timeout; stop: () => void }>();
  readonly #lookups = new Set<AbortController>();
  #closed: Promise<void> | undefined;

  private constructor(socket: PeerSocket, dht: DhtNode | undefined, lan: LanDiscovery | undefined, opts: DiscoveryOptions) {
    this.#socket = socket;
    this.#dht = dht;
    this.#lan = lan;
    this.#cacheTtl = ms(opts.cacheTtl, 'cacheTtl', 60_000);
    this.#lanTimeout = ms(opts.lanTimeout, 'lanTimeout', 1000);
    this.#upkeep = new Upkeep(socket, dht, opts, () => this.#advertiseLan());
  }

  /**
   * Starts discovery on a bound socket: its own DHT node (when `bootstrap`
   * is given), mDNS (when `mdns`), and connections to `introducers`, kept
   * open so peers can be introduced to this socket. One per socket; it
   * closes with the socket.
   */
  static async start(socket: PeerSocket, opts: DiscoveryOptions = {}): Promise<Discovery> {
    if (socket === null || typeof socket !== 'object' || typeof socket.connect !== 'function') throw new InvalidArgumentError('socket must be a bound PeerSocket');
    if (opts === null || typeof opts !== 'object') throw new InvalidArgumentError('options must be an object');
    if (socket._closing) throw new ClosedError('socket is closed');
    if (active.has(socket)) throw new InvalidArgumentError('this socket already runs discovery (Discovery.of(socket))');
    const bootstrap = opts.bootstrap;
    if (bootstrap !== undefined && (!Array.isArray(bootstrap) || bootstrap.some((b) => typeof b !== 'string'))) {
      throw new InvalidArgumentError('bootstrap must be an array of "host:port" strings');
    }
    if ((opts.introducers?.length ?? 0) > 0 && NatTraversal.of(socket) === undefined) {
      throw new InvalidArgumentError('introducers need the NAT traversal extension: bind with { extensions: [natTraversal()] }');
    }
    Upkeep.check(opts);
    const mdns = opts.mdns ?? false;
    if (typeof mdns !== 'boolean' && (mdns === null || typeof mdns !== 'object')) throw new InvalidArgumentError('mdns must be a boolean or options');
    const host = socket.address().family === 'IPv6' ? '::' : socket.address().address;
    const dht = bootstrap === undefined ? undefined : await DhtNode.start({ host: host === '::' ? '0.0.0.0' : host, ...opts.dht, bootstrap: [...bootstrap] });
    let lan: LanDiscovery | undefined;
    try {
      if (mdns !== false) lan = await LanDiscovery.start(mdns === true ? {} : mdns);
    } catch (e) {
      await dht?.destroy();
      throw e;
    }
    const d = new Discovery(socket, dht, lan, opts);
    active.set(socket, d);
    socket.once('close', () => void d.close());
    d.#upkeep.start();
    d.#advertiseLan();
    return d;
  }

  /** The discovery running on `socket`, if any. */
  static of(socket: PeerSocket): Discovery | undefined {
    return active.get(socket);
  }

  /**
   * @internal The addresses on this machine where peers can reach `socket`
   * (its own addresses as discovery publishes them: the bound one, or for a
   * wildcard bind the interfaces' of its families, external ones unless
   * there are none). Here for the CLI's dial string, which sees only the
   * public barrel.
   */
  static localHosts(socket: PeerSocket): string[] {
    return ownHosts(socket);
  }

  /** This socket's DHT node (undefined when the DHT is off). */
  get dht(): DhtNode | undefined {
    return this.#dht;
  }

  /** This socket's mDNS responder (undefined when mdns is off). */
  get lan(): LanDiscovery | undefined {
    return this.#lan;
  }

  /** The record last published (undefined before the first `publish`). */
  get published(): PeerRecord | undefined {
    return this.#upkeep.published;
  }

  /** The addresses this socket would publish now: observed public ones first, then its own. */
  addresses(): PeerAddress[] {
    return this.#upkeep.addresses();
  }

  /**
   * Signs and stores this socket's record (addresses and introducers) in the
   * DHT, with a `seq` above every earlier one, and keeps it fresh until
   * `close()`: again before mainline nodes drop it, and whenever the
   * addresses change. Also refreshes the LAN advertisement.
   */
  async publish(opts: { signal?: AbortSignal } = {}): Promise<PeerRecord> {
    this.#assertOpen();
    this.#advertiseLan();
    return this.#upkeep.publish(opts.signal);
  }

  /**
   * Finds `publicKey`'s record: on the LAN first (when mdns is on), then in
   * the DHT, where only a record signed by that key counts and the highest
   * `seq` wins. null when neither has one. A record found is kept for
   * `connect` (`cacheTtl`).
   */
  resolve(publicKey: Uint8Array, opts: FindOptions = {}): Promise<ResolvedRecord | null> {
    const key = assertKey(publicKey, 'publicKey');
    this.#assertOpen();
    return this.#resolveWithin(key, opts, deadline(opts, 10_000));
  }

  async #resolveWithin(key: Uint8Array, opts: FindOptions, { signal, done }: Deadline): Promise<ResolvedRecord | null> {
    try {
      const record = await this.#resolve(key, signal);
      if (record !== null) this.#cache.set(encodeKey(key), { record, until: Date.now() + this.#cacheTtl });
      return record;
    } catch (e) {
      throw translate(e, opts.signal);
    } finally {
      done();
    }
  }

  async #resolve(key: Uint8Array, signal: AbortSignal): Promise<ResolvedRecord | null> {
    if (this.#lan !== undefined) {
      const addresses = await this.#lan.resolve(key, { timeout: this.#lanTimeout, signal, first: true });
      if (addresses.length > 0) return { publicKey: new Uint8Array(key), addresses, introducers: [], seq: 0, source: 'lan' };
    }
    if (this.#dht === undefined) return null;
    const item = await this.#dht.get(key, { signal });
    if (item === null) return null;
    const record = decodeRecord(key, item.seq, item.v);
    return record === null ? null : { ...record, source: 'dht' };
  }

  /**
   * Connects to `publicKey` knowing nothing else: resolves it (a cached
   * record first), then tries every address and introducer of the record at
   * once and keeps the first connection that proves the key. A record that
   * leads nowhere is dropped from the cache and resolved once more.
   * Rejects with PeerNotFoundError, PeerUnreachableError (each way tried and
   * why, an impostor's address included), DiscoveryTimeoutError or AbortError.
   */
  connect(publicKey: Uint8Array, opts: FindOptions = {}): Promise<PeerConnection> {
    const key = assertKey(publicKey, 'publicKey');
    this.#assertOpen();
    if (keysEqual(key, this.#socket.publicKey)) throw new InvalidArgumentError('cannot connect to this socket itself');
    return this.#connectWithin(key, opts, deadline(opts, 20_000));
  }

  async #connectWithin(key: Uint8Array, opts: FindOptions, { signal, done }: Deadline): Promise<PeerConnection> {
    const id = encodeKey(key);
    try {
      const cached = this.#cache.get(id);
      if (cached !== undefined && cached.until > Date.now()) {
        try {
          return await reach(this.#socket, cached.record, signal);
        } catch (e) {
          if (!(e instanceof PeerUnreachableError)) throw e;
          this.#cache.delete(id);
        }
      }
      const record = await this.#resolve(key, signal);
      if (record === null) throw new PeerNotFoundError(`no record of ${id} was found`, { publicKey: new Uint8Array(key) });
      this.#cache.set(id, { record, until: Date.now() + this.#cacheTtl });
      try {
        return await reach(this.#socket, record, signal);
      } catch (e) {
        this.#cache.delete(id);
        if (!(e instanceof PeerUnreachableError) || record.source !== 'lan' || this.#dht === undefined) throw e;
        // Heard on the LAN but not reachable there: the signed record may know more.
        const item = await this.#dht.get(key, { signal });
        const signed = item === null ? null : decodeRecord(key, item.seq, item.v);
        if (signed === null) throw e;
        return await reach(this.#socket, signed, signal);
      }
    } catch (e) {
      throw translate(e, opts.signal);
    } finally {
      done();
    }
  }

  /**
   * Joins `topic` (bytes or a string): announces this socket's port under the
   * topic's info-hash in the DHT (BEP 5, renewed every 15 minutes) and on
   * the LAN, until `close()` or `signal` aborts.
   */
  announce(topic: Uint8Array | string, opts: TopicOptions = {}): void {
    this.#assertOpen();
    const hash = topicHash(topic);
    const id = Buffer.from(hash).toString('hex');
    if (opts.signal?.aborted || this.#topics.has(id)) return;
    const port = this.#socket.address().port;
    const send = (): void => void this.#dht?.announce(hash, port).catch(() => {});
    const timer = setInterval(send, ANNOUNCE_EVERY);
    timer.unref();
    const onAbort = (): void => stop();
    const stop = (): void => {
      clearInterval(timer);
      opts.signal?.removeEventListener('abort', onAbort);
      if (this.#topics.delete(id)) this.#advertiseLan();
    };
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    this.#topics.set(id, { hash, timer, stop });
    send();
    this.#advertiseLan();
  }

  /**
   * The peers of `topic`, as `{ host, port }`, from the LAN and the DHT,
   * each address once, until `timeout` (default 10000 ms), `signal` or
   * `close()`. They come with no proven key: dial them with
   * `socket.connect({ host, port }, { anyKey: true })` and judge
   * `conn.remotePublicKey`.
   */
  lookup(topic: Uint8Array | string, opts: TopicOptions = {}): AsyncIterable<PeerAddress> {
    this.#assertOpen();
    const hash = topicHash(topic);
    const timeout = ms(opts.timeout, 'timeout', 10_000);
    const ac = new AbortController();
    const sources: Array<(s: AbortSignal) => AsyncIterable<PeerAddress>> = [];
    if (this.#lan !== undefined) {
      const lan = this.#lan;
      sources.push((s) => lan.lookup(hash, { timeout, signal: s }));
    }
    if (this.#dht !== undefined) {
      const dht = this.#dht;
      sources.push((s) => dht.lookup(hash, { timeout, signal: s }));
    }
    return mergeLookups(sources, { outer: opts.signal, own: ac, timeout, track: this.#lookups });
  }

  /** Stops publishing, announcing and lookups, closes the DHT node and mDNS. Idempotent; never rejects. */
  close(): Promise<void> {
    this.#closed ??= (async () => {
      active.delete(this.#socket);
      for (const t of [...this.#topics.values()]) t.stop();
      for (const l of this.#lookups) l.abort();
      await this.#upkeep.stop();
      await Promise.allSettled([this.#lan?.close(), this.#dht?.destroy()]);
    })();
    return this.#closed;
  }

  #advertiseLan(): void {
    if (this.#lan === undefined || this.#closed !== undefined) return;
    this.#lan.advertise({
      publicKey: this.#socket.publicKey,
      port: this.#socket.address().port,
      topics: [...this.#topics.values()].map((t) => t.hash),
      hosts: ownHosts(this.#socket),
    });
  }

  #assertOpen(): void {
    if (this.#closed !== undefined) throw new ClosedError('discovery is closed');
  }
}

function ms(v: unknown, what: string, dflt: number): number {
  if (v === undefined) return dflt;
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) throw new InvalidArgumentError(`${what} must be a positive number of milliseconds`);
  return v;
}

/** One signal for the caller's abort and the time limit; `done` clears the timer. */
interface Deadline {
  signal: AbortSignal;
  done: () => void;
}

function deadline(opts: FindOptions, dflt: number): Deadline {
  if (opts === null || typeof opts !== 'object') throw new InvalidArgumentError('options must be an object');
  if (opts.signal !== undefined && !(opts.signal instanceof AbortSignal)) throw new InvalidArgumentError('signal must be an AbortSignal');
  const timeout = ms(opts.timeout, 'timeout', dflt);
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(new DiscoveryTimeoutError(`gave up after ${timeout} ms`)), timeout);
  const onAbort = (): void => ac.abort(new AbortError());
  if (opts.signal?.aborted) ac.abort(new AbortError());
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  return {
    signal: ac.signal,
    done: () => {
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
    },
  };
}

/** An error thrown under an aborted deadline becomes the deadline's reason (timeout or abort). */
function translate(e: unknown, outer: AbortSignal | undefined): unknown {
  if (e instanceof PeerNotFoundError || e instanceof InvalidArgumentError || e instanceof ClosedError) return e;
  if (e instanceof AbortError || (e instanceof PeerUnreachableError && e.attempts.every((a) => a.error instanceof AbortError))) {
    return outer?.aborted ? new AbortError() : new DiscoveryTimeoutError('finding or reaching the peer timed out', { cause: e as PeersockError });
  }
  return e;
}
