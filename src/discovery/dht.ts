/**
 * A BitTorrent mainline DHT node (BEP 5 peers, BEP 44 signed items) on its
 * own UDP socket, built on the `bittorrent-dht` package: the engine behind
 * finding a peer by its key alone (peer records, record.ts) and peers by
 * topic (topic.ts).
 *
 *   const node = await DhtNode.start({ bootstrap: ['192.0.2.7:6881'] });
 *   await node.put(keyPair, encodeRecord({ addresses, introducers: [] }), seq);
 *   const item = await node.get(publicKey); // { v, seq } | null, signature checked
 *
 * Every DhtNode is a full DHT node: it answers other nodes' queries and
 * stores their items and peers, within limits (DhtNodeOptions). It contacts
 * only the bootstrap nodes it is given: nothing defaults to the public
 * mainline routers (`MAINLINE_BOOTSTRAP` is there to be passed explicitly).
 * IPv4 only, like bittorrent-dht's compact node and peer lists.
 */
import { createSocket } from 'node:dgram';
import { isIP } from 'node:net';

import type DHT from 'bittorrent-dht';
import nacl from 'tweetnacl';

import { ClosedError, DhtError, InvalidArgumentError, SocketError } from '../errors';
import { assertKey, keysEqual, type KeyPair } from '../keys';
import { bencodedStringLength, signedPart } from './dht-bencode';
import { checkItem, itemTarget, verifySignature as verify, type DhtItem } from './dht-item';
import { assertInfoHash, parseHostPort, positive, settle, type DhtQueryOptions } from './dht-options';
import { GuardedDhtSocket, type DhtNodeStats } from './dht-socket';
import { MAX_LOOKUP_PEERS } from './merge';
import { MAX_RECORD_VALUE, RECORD_SALT, type PeerAddress } from './record';

export type { DhtNodeStats } from './dht-socket';
export type { DhtItem } from './dht-item';
export type { DhtQueryOptions } from './dht-options';

/**
 * The public mainline DHT bootstrap nodes, for users to pass explicitly as
 * `bootstrap` to join the real DHT. Nothing in peersock uses them by default.
 */
export const MAINLINE_BOOTSTRAP: readonly string[] = Object.freeze([
  'router.bittorrent.com:6881',
  'dht.transmissionbt.com:6881',
  'router.utorrent.com:6881',
  'dht.libtorrent.org:25401',
]);

/** Options of `DhtNode.start`. */
export interface DhtNodeOptions {
  /** DHT nodes to join through, as `host:port` (IPv4 or host name). Required; `[]` starts a new DHT. */
  bootstrap: string[];
  /** Local IPv4 address to bind (default 0.0.0.0). */
  host?: string;
  /** UDP port to bind (default 0: any free port). */
  port?: number;
  /** BEP 44 items stored for other nodes, least recently used evicted first (default 1000). */
  maxStoredItems?: number;
  /**
   * BEP 5 peers stored for other nodes, all info-hashes together (default
   * 10000). Past the limit the older half is dropped, so up to twice this
   * many may be held for a moment.
   */
  maxStoredPeers?: number;
  /** How long a stored BEP 5 peer is kept, ms (default 30 minutes, as BEP 5 nodes do). */
  peerMaxAge?: number;
  /**
   * Queries answered per source IP address per one-second window (default
   * 100); further queries in that window are dropped unanswered. `Infinity`
   * turns the limit off (a loopback lab, where every node shares 127.0.0.1).
   */
  maxRequestsPerSecondPerAddress?: number;
  /** Source addresses tracked per window (default 10000); queries from more addresses are dropped. */
  maxTrackedAddresses?: number;
  /** Time to wait for one DHT query's reply, ms (default 2000). */
  queryTimeout?: number;
  /** `start` resolves after this many ms even if bootstrapping goes on (default 10000). */
  bootstrapTimeout?: number;
  /** Keys whose highest seen `seq` is remembered by `get` (default 1000, least recently used evicted). */
  maxSeenKeys?: number;
}

type DhtCtor = typeof DHT;
type DhtInstance = InstanceType<DhtCtor>;

/**
 * Signs BEP 44 items for `publicKey` without handing over the secret key (a
 * PeerSocket's identity signs through one).
 */
export interface ItemSigner {
  publicKey: Uint8Array;
  /** The Ed25519 signature of `message` by `publicKey`'s secret key. */
  sign(message: Uint8Array): Uint8Array;
}

/**
 * A mainline DHT node on its own UDP socket. `start` binds and bootstraps;
 * `put`/`get` store and fetch this peer's signed record (BEP 44, salt
 * `RECORD_SALT`), `announce`/`lookup` join and search topics (BEP 5).
 *
 * Resource limits (DhtNodeOptions): stored items and stored peers are
 * bounded; queries are rate-limited per source IP address; malformed
 * messages are dropped before the DHT code sees them (dht-socket.ts).
 * Stored items are evicted by use, not age: bittorrent-dht keeps no expiry
 * for them, so an item lives until `maxStoredItems` newer ones push it out.
 */
export class DhtNode {
  /** Messages sent and received, queries, and what the guard dropped. */
  readonly stats: DhtNodeStats;
  readonly #dht: DhtInstance;
  readonly #seen = new Map<string, DhtItem>();
  readonly #maxSeen: number;
  readonly #lookups = new Set<() => void>();
  readonly #inFlight = new Set<(err: Error) => void>();
  #destroyed: Promise<void> | undefined;

  private constructor(dht: DhtInstance, stats: DhtNodeStats, maxSeen: number) {
    this.#dht = dht;
    this.stats = stats;
    this.#maxSeen = maxSeen;
  }

  /**
   * Binds a UDP socket and joins the DHT through `bootstrap`. Resolves once
   * the node has bootstrapped, or bootstrapping failed (no node answered),
   * or `bootstrapTimeout` passed; the node then keeps serving and filling
   * its routing table. Rejects with SocketError if the port cannot be bound,
   * InvalidArgumentError for bad options.
   */
  static async start(opts: DhtNodeOptions): Promise<DhtNode> {
    if (opts === null || typeof opts !== 'object') throw new InvalidArgumentError('options must be an object');
    if (!Array.isArray(opts.bootstrap)) throw new InvalidArgumentError('bootstrap must be an array of "host:port" (use [] to start a new DHT)');
    const bootstrap = opts.bootstrap.map(parseHostPort);
    const host = opts.host ?? '0.0.0.0';
    if (isIP(host) !== 4) throw new InvalidArgumentError(`host ${JSON.stringify(host)} must be an IPv4 address: the DHT is IPv4 only`);
    const port = opts.port ?? 0;
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw new InvalidArgumentError('port must be 0..65535');
    const limits = {
      maxRequestsPerSecondPerAddress: positive(opts.maxRequestsPerSecondPerAddress, 100, 'maxRequestsPerSecondPerAddress', true),
      maxTrackedAddresses: positive(opts.maxTrackedAddresses, 10_000, 'maxTrackedAddresses'),
    };
    const maxValues = positive(opts.maxStoredItems, 1000, 'maxStoredItems');
    const maxPeers = positive(opts.maxStoredPeers, 10_000, 'maxStoredPeers');
    const maxAge = positive(opts.peerMaxAge, 30 * 60_000, 'peerMaxAge');
    const timeout = positive(opts.queryTimeout, 2000, 'queryTimeout');
    const bootstrapTimeout = positive(opts.bootstrapTimeout, 10_000, 'bootstrapTimeout');
    const maxSeen = positive(opts.maxSeenKeys, 1000, 'maxSeenKeys');

    const { default: Dht } = await import('bittorrent-dht');
    const stats: DhtNodeStats = { sent: 0, received: 0, queriesSent: 0, queriesReceived: 0, rateLimited: 0, malformed: 0 };
    const socket = new GuardedDhtSocket(createSocket('udp4'), limits, stats);
    // `host` is deliberately not passed: bittorrent-dht reads it as the address to announce itself at.
    const dht = new Dht({ bootstrap, verify, maxValues, maxPeers, maxAge, timeout, socket });
    const node = new DhtNode(dht, stats, maxSeen);
    try {
      await new Promise<void>((resolve, reject) => {
        const onError = (err: Error): void => {
          dht.off('listening', onListening);
          reject(new SocketError(`cannot bind the DHT socket to ${host}:${port}: ${(err as { code?: string }).code ?? err.message}`, { cause: err }));
        };
        const onListening = (): void => {
          dht.off('error', onError);
          resolve();
        };
        dht.once('error', onError);
        dht.once('listening', onListening);
        dht.listen(port, host);
      });
    } catch (e) {
      await node.destroy();
      throw e;
    }
    dht.on('error', () => {}); // socket errors after bind: the DHT carries on (k-rpc reports most as warnings)
    dht.on('warning', () => {});
    dht.setMaxListeners(0); // one 'peer' listener per lookup in progress
    await new Promise<void>((resolve) => {
      if ((dht as unknown as { ready?: boolean }).ready === true) return resolve();
      const timer = setTimeout(done, bootstrapTimeout);
      function done(): void {
        clearTimeout(timer);
        dht.off('ready', done);
        resolve();
      }
      dht.once('ready', done);
    });
    return node;
  }

  /** The bound UDP address of this node. */
  address(): { host: string; port: number } {
    const a = this.#dht.address();
    return { host: a.address, port: a.port };
  }

  /**
   * Stores a BEP 44 mutable item under `keyPair.publicKey` with the salt
   * `RECORD_SALT`, value `v` (at most `MAX_RECORD_VALUE` bytes bencoded) and
   * sequence number `seq`, signed with the key pair (Ed25519, tweetnacl), on
   * the DHT nodes closest to it. Resolves with how many nodes stored it;
   * rejects with DhtError if none did (none reachable, or each holds a
   * higher seq), AbortError on `signal`. An aborted put may still reach
   * nodes: the DHT requests already sent are not recalled.
   */
  async put(keyPair: KeyPair | ItemSigner, v: Uint8Array, seq: number, opts: { signal?: AbortSignal } = {}): Promise<{ stored: number }> {
    this.#assertOpen();
    if (keyPair === null || typeof keyPair !== 'object') throw new InvalidArgumentError('keyPair must be a key pair or a signer');
    const k = assertKey(keyPair.publicKey, 'keyPair.publicKey');
    const signer = 'sign' in keyPair && typeof keyPair.sign === 'function' ? keyPair : undefined;
    const secretKey = 'secretKey' in keyPair ? keyPair.secretKey : undefined;
    if (signer === undefined && (!(secretKey instanceof Uint8Array) || secretKey.length !== 64)) throw new InvalidArgumentError('keyPair.secretKey must be 64 bytes (tweetnacl format)');
    if (!(v instanceof Uint8Array) || v.length === 0) throw new InvalidArgumentError('v must be a non-empty Uint8Array');
    if (bencodedStringLength(v) > MAX_RECORD_VALUE) throw new InvalidArgumentError(`v is ${bencodedStringLength(v)} bytes bencoded; BEP 44 allows ${MAX_RECORD_VALUE}`);
    if (!Number.isSafeInteger(seq) || seq < 0) throw new InvalidArgumentError('seq must be a non-negative safe integer');
    const salt = Buffer.from(RECORD_SALT);
    const value = Buffer.from(v);
    const message = signedPart(seq, value, salt);
    let sig: Buffer;
    if (signer !== undefined) {
      sig = Buffer.from(signer.sign(message));
      if (!verify(sig, message, k)) throw new InvalidArgumentError('the signer does not sign for keyPair.publicKey');
    } else {
      if (!keysEqual(secretKey!.subarray(32), k)) throw new InvalidArgumentError('keyPair.secretKey does not match keyPair.publicKey');
      sig = Buffer.from(nacl.sign.detached(message, secretKey!));
    }
    const stored = await settle<number>('DHT put', opts, this.#inFlight, (done) => {
      this.#dht.put({ k: Buffer.from(k), v: value, seq, salt, sig }, (err, _hash, n) => {
        if (n > 0) done(null, n);
        else done(new DhtError(`no DHT node stored the item${err !== null ? `: ${err.message}` : ''}`, { cause: err ?? undefined }));
      });
    });
    this.#remember(k, { v: new Uint8Array(value), seq });
    return { stored };
  }

  /**
   * Fetches the item `publicKey` published with the salt `RECORD_SALT`:
   * asks the nodes closest to it, keeps only replies whose Ed25519
   * signature verifies for that key and salt and whose value fits BEP 44's
   * limit, and takes the highest `seq`. Never returns a lower seq than the
   * highest this node has seen for the key (the item seen then is returned
   * instead; up to `maxSeenKeys` keys are remembered). Resolves null when no
   * node has a valid item. Rejects with RequestTimeoutError after
   * `timeout` ms, AbortError on `signal` (the lookup itself then runs to its
   * end in the background, bounded by the query timeout).
   */
  async get(publicKey: Uint8Array, opts: DhtQueryOptions = {}): Promise<DhtItem | null> {
    this.#assertOpen();
    const k = assertKey(publicKey, 'publicKey');
    const salt = Buffer.from(RECORD_SALT);
    const target = itemTarget(k, salt);
    const res = await settle<unknown>('DHT get', opts, this.#inFlight, (done) => {
      this.#dht.get(target, { salt, cache: false }, (err, r) => done(err, r));
    });
    const item = checkItem(res, k, salt);
    const key = Buffer.from(k).toString('hex');
    const prev = this.#seen.get(key);
    if (item === null) return null;
    if (prev !== undefined && prev.seq >= item.seq) {
      this.#remember(k, prev);
      return { v: new Uint8Array(prev.v), seq: prev.seq };
    }
    this.#remember(k, item);
    return { v: new Uint8Array(item.v), seq: item.seq };
  }

  /**
   * Announces (BEP 5 `announce_peer`) that this machine serves `infoHash`
   * (20 bytes) on UDP `port`, to the nodes closest to it. Nodes record the
   * address the announce came from with that port, for about
   * `peerMaxAge`; announce again before then to stay listed. Rejects with
   * DhtError if no node took it, AbortError on `signal`.
   */
  async announce(infoHash: Uint8Array, port: number, opts: { signal?: AbortSignal } = {}): Promise<void> {
    this.#assertOpen();
    const ih = assertInfoHash(infoHash);
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw new InvalidArgumentError('port must be 1..65535');
    await settle<void>('DHT announce', opts, this.#inFlight, (done) => {
      this.#dht.announce(ih, port, (err) => done(err === null ? null : new DhtError(`no DHT node took the announce: ${err.message}`, { cause: err })));
    });
  }

  /**
   * Looks up the peers announced for `infoHash` (BEP 5 `get_peers`): yields
   * each address once, as replies arrive, and ends when the lookup has asked
   * every close node, after `timeout` ms, on `signal`, or when the node is
   * destroyed (ending early is not an error), or once it has yielded
   * MAX_LOOKUP_PEERS (4096) addresses. Breaking out of the loop stops the
   * lookup.
   */
  lookup(infoHash: Uint8Array, opts: DhtQueryOptions = {}): AsyncIterable<PeerAddress> {
    this.#assertOpen();
    const ih = assertInfoHash(infoHash);
    if (opts.timeout !== undefined && !(typeof opts.timeout === 'number' && opts.timeout > 0)) throw new InvalidArgumentError('timeout must be positive');
    return this.#lookup(ih, opts);
  }

  async *#lookup(ih: Buffer, opts: DhtQueryOptions): AsyncGenerator<PeerAddress> {
    const queue: PeerAddress[] = [];
    const seen = new Set<string>();
    let ended = false;
    let wake: (() => void) | undefined;
    const poke = (): void => {
      const w = wake;
      wake = undefined;
      w?.();
    };
    const end = (): void => {
      ended = true;
      poke();
    };
    const onPeer = (peer: { host: string; port: number }, hash: Buffer): void => {
      if (ended || !ih.equals(hash)) return;
      const id = `${peer.host}:${peer.port}`;
      if (seen.has(id)) return;
      seen.add(id);
      queue.push({ host: peer.host, port: peer.port });
      // As many as a Discovery lookup takes: a node that floods fake peers
      // ends the lookup instead of filling memory.
      if (seen.size >= MAX_LOOKUP_PEERS) end();
      poke();
    };
    this.#dht.on('peer', onPeer);
    const stop = this.#dht.lookup(ih, end);
    this.#lookups.add(end);
    opts.signal?.addEventListener('abort', end, { once: true });
    const timer = opts.timeout !== undefined ? setTimeout(end, opts.timeout) : undefined;
    if (opts.signal?.aborted === true) end();
    try {
      for (;;) {
        if (queue.length > 0) yield queue.shift()!;
        else if (ended) return;
        else await new Promise<void>((resolve) => (wake = resolve));
      }
    } finally {
      this.#dht.off('peer', onPeer);
      stop();
      this.#lookups.delete(end);
      opts.signal?.removeEventListener('abort', end);
      if (timer !== undefined) clearTimeout(timer);
    }
  }

  /** True once `destroy` was called. */
  get destroyed(): boolean {
    return this.#destroyed !== undefined;
  }

  /**
   * Closes the socket and stops every timer; lookups in progress end, and
   * puts, gets and announces in progress reject with ClosedError. Idempotent.
   */
  destroy(): Promise<void> {
    this.#destroyed ??= new Promise<void>((resolve) => {
      for (const end of this.#lookups) end();
      for (const fail of this.#inFlight) fail(new ClosedError('the DHT node was destroyed'));
      this.#dht.destroy(() => resolve());
    });
    return this.#destroyed;
  }

  #assertOpen(): void {
    if (this.#destroyed !== undefined) throw new ClosedError('the DHT node is destroyed');
  }

  /** Records `item` as the highest seen for `k` (most recently used last). */
  #remember(k: Uint8Array, item: DhtItem): void {
    const key = Buffer.from(k).toString('hex');
    this.#seen.delete(key);
    this.#seen.set(key, item);
    if (this.#seen.size > this.#maxSeen) this.#seen.delete(this.#seen.keys().next().value!);
  }
}
