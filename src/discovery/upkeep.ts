/**
 * What discovery keeps up for its socket: connections to the introducers
 * named in the record (reconnected with backoff, so a peer can always be
 * introduced to us), the addresses to publish (the public ones introducers
 * observe, the socket's own), and the published record (a higher `seq`
 * each time; refreshed before mainline nodes drop it and when the
 * addresses change).
 */
import type { PeerConnection } from '../connection';
import { InvalidArgumentError, PublishError } from '../errors';
import { keysEqual, parseDialString } from '../keys';
import { localHosts } from '../local-addresses';
import { NatObserver, normalizeAddress } from '../nat/observed';
import type { PeerSocket } from '../peer-socket';
import type { DhtNode } from './dht';
import { encodeRecord, type PeerAddress, type PeerRecord } from './record';

/** Options of discovery's upkeep (part of `DiscoveryOptions`). */
export interface UpkeepOptions {
  /** Dial strings `<key>@<host>:<port>` of peers that introduce and relay for this socket (natTraversal({ introducer: true }) there). */
  introducers?: string[];
  /** More addresses to publish (a port forward, say), ahead of the found ones. */
  addresses?: PeerAddress[];
  /** Publish again this often, in ms (default 30 minutes; BEP 44 items live about 2 hours). */
  refreshInterval?: number;
  /** Look for changed addresses this often, in ms, and publish when they changed (default 60000). */
  addressCheckInterval?: number;
}

/** Most addresses and introducers one record carries (it must fit BEP 44's 1000 bytes). */
export const MAX_PUBLISHED_ADDRESSES = 16;
export const MAX_INTRODUCERS = 8;
const BACKOFF_MIN = 1000;
const BACKOFF_MAX = 30_000;

/**
 * The socket's own addresses, as published: the bound one, or every
 * interface's it can use (loopback only when there is nothing else; see
 * localHosts), IPv4-mapped ones as plain IPv4.
 */
export function ownHosts(socket: PeerSocket): string[] {
  return localHosts(socket.address()).map(normalizeAddress);
}

export class Upkeep {
  readonly #socket: PeerSocket;
  readonly #dht: DhtNode | undefined;
  readonly #introducers: string[];
  readonly #extra: PeerAddress[];
  readonly #refreshMs: number;
  readonly #checkMs: number;
  readonly #changed: () => void;
  readonly #links = new Map<string, { conn: PeerConnection | undefined; observed: PeerAddress | undefined; backoff: number; timer: NodeJS.Timeout | undefined }>();
  #published: PeerRecord | undefined;
  #seq = -1;
  #refresh: NodeJS.Timeout | undefined;
  #check: NodeJS.Timeout | undefined;
  #publishing: Promise<PeerRecord> | undefined;
  #stopped = false;

  /** Checks the options (synchronously, before anything starts). */
  static check(opts: UpkeepOptions): void {
    const intro = opts.introducers ?? [];
    if (!Array.isArray(intro) || intro.length > MAX_INTRODUCERS) throw new InvalidArgumentError(`introducers must be an array of at most ${MAX_INTRODUCERS} dial strings`);
    for (const d of intro) parseDialString(d);
    const extra = opts.addresses ?? [];
    if (!Array.isArray(extra) || extra.some((a) => a === null || typeof a !== 'object' || typeof a.host !== 'string' || !Number.isInteger(a.port))) {
      throw new InvalidArgumentError('addresses must be an array of { host, port }');
    }
    for (const [v, what] of [
      [opts.refreshInterval, 'refreshInterval'],
      [opts.addressCheckInterval, 'addressCheckInterval'],
    ] as const) {
      if (v !== undefined && (typeof v !== 'number' || !Number.isFinite(v) || v < 1000)) throw new InvalidArgumentError(`${what} must be at least 1000 ms`);
    }
  }

  constructor(socket: PeerSocket, dht: DhtNode | undefined, opts: UpkeepOptions, changed: () => void) {
    this.#socket = socket;
    this.#dht = dht;
    this.#introducers = [...(opts.introducers ?? [])];
    this.#extra = (opts.addresses ?? []).map((a) => ({ host: a.host, port: a.port }));
    this.#refreshMs = opts.refreshInterval ?? 30 * 60_000;
    this.#checkMs = opts.addressCheckInterval ?? 60_000;
    this.#changed = changed;
  }

  get published(): PeerRecord | undefined {
    return this.#published;
  }

  /** Connects to the introducers and starts watching the addresses. */
  start(): void {
    for (const d of this.#introducers) {
      this.#links.set(d, { conn: undefined, observed: undefined, backoff: BACKOFF_MIN, timer: undefined });
      this.#link(d);
    }
    this.#check = setInterval(() => this.#recheck(), this.#checkMs);
    this.#check.unref();
  }

  /** What to publish: given addresses, then observed public ones, then the socket's own; each once. */
  addresses(): PeerAddress[] {
    const port = this.#socket.address().port;
    const out: PeerAddress[] = [];
    const seen = new Set<string>();
    const add = (a: PeerAddress): void => {
      const id = `${a.host}|${a.port}`;
      if (seen.has(id) || out.length >= MAX_PUBLISHED_ADDRESSES) return;
      seen.add(id);
      out.push(a);
    };
    this.#extra.forEach(add);
    for (const l of this.#links.values()) if (l.observed !== undefined) add(l.observed);
    for (const h of ownHosts(this.#socket)) add({ host: h, port });
    return out;
  }

  /** Signs and stores the record now (one publish at a time; a second call waits for the first, then publishes again). */
  publish(signal?: AbortSignal): Promise<PeerRecord> {
    const run = async (): Promise<PeerRecord> => {
      const addresses = this.addresses();
      let v: Uint8Array | undefined;
      let count = addresses.length;
      // Fewer addresses until the record fits BEP 44's 1000 bytes.
      while (v === undefined) {
        try {
          v = encodeRecord({ addresses: addresses.slice(0, count), introducers: this.#introducers });
        } catch (e) {
          if (count === 0) throw e;
          count--;
        }
      }
      const publicKey = this.#socket.publicKey;
      if (this.#seq < 0 && this.#dht !== undefined) {
        // A restart under the same key continues above what the DHT holds.
        const held = await this.#dht.get(publicKey, { signal }).catch(() => null);
        if (held !== null) this.#seq = held.seq;
      }
      const seq = Math.max(this.#seq + 1, Math.floor(Date.now() / 1000));
      const record: PeerRecord = { publicKey: new Uint8Array(publicKey), addresses: addresses.slice(0, count), introducers: [...this.#introducers], seq };
      if (this.#dht !== undefined) {
        const sign = (m: Uint8Array): Uint8Array => this.#socket._signStatement(m);
        const { stored } = await this.#dht.put({ publicKey, sign }, v, seq, { signal });
        if (stored === 0) throw new PublishError('no DHT node stored the record');
      }
      this.#seq = seq;
      this.#published = record;
      this.#schedule();
      return record;
    };
    const prev = this.#publishing ?? Promise.resolve(undefined);
    const next = prev.catch(() => undefined).then(run);
    this.#publishing = next;
    void next.catch(() => {}).finally(() => {
      if (this.#publishing === next) this.#publishing = undefined;
    });
    return next;
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#refresh);
    clearInterval(this.#check);
    for (const l of this.#links.values()) {
      clearTimeout(l.timer);
      if (l.conn !== undefined && l.conn.closeInfo === undefined) await l.conn.close().catch(() => {});
    }
    await this.#publishing?.catch(() => {});
  }

  #schedule(): void {
    clearTimeout(this.#refresh);
    if (this.#stopped) return;
    this.#refresh = setTimeout(() => void this.publish().catch(() => this.#schedule()), this.#refreshMs);
    this.#refresh.unref();
  }

  /** Publishes again (after a first publish) when the addresses differ from the published ones. */
  #recheck(): void {
    if (this.#stopped) return;
    this.#changed();
    const p = this.#published;
    if (p === undefined || this.#publishing !== undefined) return;
    const now = this.addresses();
    const same = now.length === p.addresses.length && now.every((a, i) => a.host === p.addresses[i]!.host && a.port === p.addresses[i]!.port);
    if (!same) void this.publish().catch(() => {});
  }

  /** Keeps a connection to introducer `d`, learning our public address through it when observedAddress() is installed. */
  #link(d: string): void {
    const l = this.#links.get(d);
    if (l === undefined || this.#stopped) return;
    const retry = (): void => {
      if (this.#stopped) return;
      l.timer = setTimeout(() => this.#link(d), l.backoff);
      l.timer.unref();
      l.backoff = Math.min(l.backoff * 2, BACKOFF_MAX);
    };
    const key = parseDialString(d).publicKey;
    const existing = this.#socket.connections.find((c) => c.closeInfo === undefined && keysEqual(c.remotePublicKey, key));
    const dial = existing !== undefined ? Promise.resolve(existing) : this.#socket.connect(d);
    dial.then(
      async (conn) => {
        if (this.#stopped) return;
        l.conn = conn;
        l.backoff = BACKOFF_MIN;
        conn.once('close', () => {
          l.conn = undefined;
          retry();
        });
        const observer = NatObserver.of(this.#socket);
        if (observer === undefined) return;
        try {
          const seen = await observer.observe(conn, { timeout: 5000 });
          l.observed = { host: normalizeAddress(seen.address), port: seen.port };
          this.#recheck();
        } catch {
          // The introducer does not answer observe: no public address from it.
        }
      },
      () => retry(),
    );
  }
}
