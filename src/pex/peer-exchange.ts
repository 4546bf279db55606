/**
 * Peer exchange (the peerExchange() extension): each peer keeps a bounded
 * table of the peers it recently connected to (key + last known address,
 * most recent first) and shares it on request, sending a correspondent only
 * what changed since its last ask.
 *
 *   const s = await PeerSocket.bind({ extensions: [peerExchange({ maxPeers: 512 })] });
 *   const pex = PeerExchange.of(s)!; // or keep the object passed to bind
 *
 * Every table change takes the next value of one counter (`seq`). A request
 * carries the responder's (epoch, seq) from the requester's previous reply;
 * the responder answers with the entries changed after it. So the responder
 * keeps no state per correspondent, a lost reply costs nothing, and a
 * restart (new epoch) falls back to the whole table. Wire format:
 * peer-exchange.proto.
 *
 * Learned entries are claims, not proofs: a peer may lie about where another
 * key lives. Dialing by key pins the identity, so a false address only makes
 * that dial fail.
 *
 * Built on public seams only: a Dispatcher of its own (L2) and the socket's
 * 'connection' event and connections (L1).
 */
import type { PeerConnection } from '../connection';
import { InvalidArgumentError } from '../errors';
import { assertKey } from '../keys';
import { Dispatcher } from '../messages/dispatcher';
import { PeerSocket, type ConnectOptions, type DialTarget, type SocketExtension } from '../peer-socket';
import type { AddressInfo } from '../transport';
import { peersock } from './generated/peer-exchange';
import { PeerTable, hex, info, type PeerInfo } from './table';

export type { PeerInfo } from './table';

const { Request, Reply } = peersock.pex;

/** Default protocol name of the peer exchange. */
export const PEX_PROTOCOL = 'peersock/pex/1';
/** Default size of the peer table. */
export const DEFAULT_MAX_PEERS = 256;
/** Requests one `sync()` makes at most when replies come in pages. */
const MAX_PAGES = 8;

/** Options of `peerExchange()` (and `new PeerExchange()`). */
export interface PeerExchangeOptions {
  /** Peers remembered at most; the least recently seen go first (default 256). */
  maxPeers?: number;
  /** Dispatcher protocol name (default 'peersock/pex/1'). */
  protocol?: string;
  /** Request timeout of `sync()` in ms (default: the dispatcher's, 10000). */
  timeout?: number;
}

/** What one `sync()` (or `syncAll()`) did. */
export interface SyncResult {
  /** Entries the correspondent sent. */
  received: number;
  /** Entries that were new to us. */
  added: number;
  /** Entries that replaced an older address or time. */
  updated: number;
  /** Requests made (more than one when replies were cut into pages). */
  requests: number;
}

/** Counters of a PeerExchange. */
export interface PeerExchangeStats {
  requestsAnswered: number;
  entriesSent: number;
  entriesReceived: number;
  /** Received entries dropped as malformed (bad key, port or address). */
  invalid: number;
}

const NOT_INSTALLED = 'peer exchange is not installed: bind with { extensions: [peerExchange()] }';

/** The installed exchanges of each socket, by protocol name. */
const installed = new WeakMap<PeerSocket, Map<string, PeerExchange>>();

/**
 * The peer exchange of one socket: shares the table of recently connected
 * peers over a Dispatcher of its own. Make one with `peerExchange(opts)` and
 * install it with `PeerSocket.bind({ extensions: [...] })`; the same object
 * is then the installed exchange (also found with `PeerExchange.of(socket)`).
 */
export class PeerExchange implements SocketExtension {
  /** Peers remembered at most. */
  readonly maxPeers: number;
  /** Dispatcher protocol name. */
  readonly protocol: string;
  readonly stats: PeerExchangeStats = { requestsAnswered: 0, entriesSent: 0, entriesReceived: 0, invalid: 0 };
  #socket: PeerSocket | undefined;
  #dispatcher: Dispatcher | undefined;
  readonly #timeout: number | undefined;
  readonly #table: PeerTable;
  /** Hex key of a correspondent → its (epoch, seq) in its last reply to us. */
  readonly #cursors = new Map<string, { epoch: number; seq: number }>();
  /** Live connections we watch for path changes → their listener removers. */
  readonly #watched = new Map<PeerConnection, () => void>();
  readonly #onConnection = (conn: PeerConnection): void => this.observe(conn);
  #closed = false;

  /** Checks the options (InvalidArgumentError); install it with `bind({ extensions: [...] })`. */
  constructor(opts?: PeerExchangeOptions);
  /**
   * Installs at once on a bound socket.
   * @deprecated Install it at bind: `PeerSocket.bind({ extensions: [peerExchange(opts)] })`.
   */
  constructor(socket: PeerSocket, opts?: PeerExchangeOptions);
  constructor(socketOrOpts?: PeerSocket | PeerExchangeOptions, maybeOpts?: PeerExchangeOptions) {
    const socket = socketOrOpts instanceof PeerSocket ? socketOrOpts : undefined;
    const given = socket !== undefined ? maybeOpts : (socketOrOpts as PeerExchangeOptions | undefined);
    const opts: PeerExchangeOptions = given === undefined ? {} : given;
    if (opts === null || typeof opts !== 'object') throw new InvalidArgumentError('options must be an object');
    const max = opts.maxPeers ?? DEFAULT_MAX_PEERS;
    if (!Number.isInteger(max) || max < 1 || max > 65536) throw new InvalidArgumentError('maxPeers must be an integer 1..65536');
    const protocol = opts.protocol ?? PEX_PROTOCOL;
    // The Dispatcher's own checks, made here so a bad option fails at the factory, not at bind.
    if (typeof protocol !== 'string' || protocol.length === 0 || protocol.length > 128) throw new InvalidArgumentError('protocol must be a string of 1..128 characters');
    if (opts.timeout !== undefined && !(opts.timeout > 0)) throw new InvalidArgumentError('timeout must be positive');
    this.maxPeers = max;
    this.protocol = protocol;
    this.#timeout = opts.timeout;
    this.#table = new PeerTable(max, this.stats);
    if (socket !== undefined) this.attach(socket);
  }

  /** The exchange installed on `socket` for `protocol` (default 'peersock/pex/1'), if any. */
  static of(socket: PeerSocket, protocol: string = PEX_PROTOCOL): PeerExchange | undefined {
    return installed.get(socket)?.get(protocol);
  }

  /** @internal Installs the exchange: answers requests and records connections from now on. */
  attach(socket: PeerSocket): void {
    if (this.#socket !== undefined) throw new InvalidArgumentError('a peerExchange() extension serves one socket');
    if (this.#closed) throw new InvalidArgumentError('this peer exchange is closed');
    let mine = installed.get(socket);
    if (mine?.has(this.protocol)) throw new InvalidArgumentError(`a peer exchange for protocol "${this.protocol}" is already installed on this socket`);
    const dispatcher = new Dispatcher(socket, { protocol: this.protocol, ...(this.#timeout !== undefined ? { timeout: this.#timeout } : {}) });
    this.#socket = socket;
    this.#dispatcher = dispatcher;
    this.#table.self = hex(socket.publicKey);
    if (mine === undefined) installed.set(socket, (mine = new Map()));
    mine.set(this.protocol, this);
    dispatcher.handle(Request, (req: peersock.pex.Request, ctx) => {
      this.observe(ctx.connection);
      this.stats.requestsAnswered++;
      return Reply.create({ epoch: this.#table.epoch, ...this.#table.changesSince(req, hex(ctx.remotePublicKey)) });
    });
    socket.on('connection', this.#onConnection);
    for (const c of socket.connections) this.observe(c);
  }

  /** @internal The socket is closing. */
  detach(): void {
    this.close();
  }

  /** The socket it is installed on (undefined until installed). */
  get socket(): PeerSocket | undefined {
    return this.#socket;
  }

  /** The installed socket and dispatcher; throws InvalidArgumentError when not installed. */
  #installed(): { socket: PeerSocket; dispatcher: Dispatcher } {
    if (this.#socket === undefined || this.#dispatcher === undefined) throw new InvalidArgumentError(NOT_INSTALLED);
    return { socket: this.#socket, dispatcher: this.#dispatcher };
  }

  /** The table's change counter: it grows with every added or changed entry. */
  get seq(): number {
    return this.#table.seq;
  }

  /** The table, most recently seen first. */
  peers(): PeerInfo[] {
    return this.#table.peers();
  }

  /** The entry of one peer, if known. */
  get(publicKey: Uint8Array): PeerInfo | undefined {
    const e = this.#table.entry(hex(assertKey(publicKey, 'publicKey')));
    return e !== undefined ? info(e) : undefined;
  }

  /**
   * Records a connection made elsewhere (accepted ones and `connect()`'s
   * are recorded already). Idempotent; follows the peer's path changes.
   * Throws InvalidArgumentError when the exchange is not installed.
   */
  observe(conn: PeerConnection): void {
    this.#installed();
    if (this.#closed || this.#watched.has(conn)) return;
    this.#table.direct(conn.remotePublicKey, conn.remoteAddress);
    if (conn.closeInfo !== undefined) return;
    const onPath = (addr: AddressInfo): void => this.#table.direct(conn.remotePublicKey, addr);
    const stop = (): void => {
      conn.off('path', onPath);
      conn.off('close', stop);
      this.#watched.delete(conn);
    };
    conn.on('path', onPath);
    conn.on('close', stop);
    this.#watched.set(conn, stop);
  }

  /**
   * Dials a peer and records it. `target` is a dial target, or just a key
   * whose address is taken from the table. Always dials a new connection.
   */
  async connect(target: DialTarget | Uint8Array, opts: ConnectOptions = {}): Promise<PeerConnection> {
    const { socket } = this.#installed();
    let t: DialTarget;
    if (target instanceof Uint8Array) {
      const e = this.#table.entry(hex(assertKey(target, 'publicKey')));
      if (e === undefined) throw new InvalidArgumentError('that key is not in the peer table');
      t = { publicKey: e.publicKey, host: e.address, port: e.port };
    } else t = target;
    const conn = await socket.connect(t, opts);
    this.observe(conn);
    return conn;
  }

  /** Asks the peer on `conn` for what changed since its last reply to us, and merges it. */
  async sync(conn: PeerConnection, opts: { timeout?: number; signal?: AbortSignal } = {}): Promise<SyncResult> {
    const { dispatcher } = this.#installed();
    this.observe(conn);
    const from = hex(conn.remotePublicKey);
    const result: SyncResult = { received: 0, added: 0, updated: 0, requests: 0 };
    for (let page = 0; page < MAX_PAGES; page++) {
      const cur = this.#cursors.get(from);
      const req = Request.create({ since: cur?.seq ?? 0, epoch: cur?.epoch ?? 0, limit: this.maxPeers });
      const timeout = opts.timeout ?? this.#timeout;
      const reply = await dispatcher.request<peersock.pex.Reply>(conn, req, {
        reply: Reply,
        ...(timeout !== undefined ? { timeout } : {}),
        ...(opts.signal !== undefined ? { signal: opts.signal } : {}),
      });
      result.requests++;
      this.#table.merge(reply.peers.slice(0, this.maxPeers), from, result);
      // Replies of concurrent syncs may arrive out of order: never go back.
      const same = cur !== undefined && cur.epoch === reply.epoch;
      this.#cursors.delete(from);
      this.#cursors.set(from, { epoch: reply.epoch, seq: same ? Math.max(cur.seq, reply.seq) : reply.seq });
      if (this.#cursors.size > 2 * this.maxPeers) this.#cursors.delete(this.#cursors.keys().next().value!);
      if (!reply.more) break;
    }
    return result;
  }

  /** Syncs with every live connection recorded here, concurrently; failures are counted, not thrown. */
  async syncAll(opts: { timeout?: number; signal?: AbortSignal } = {}): Promise<SyncResult & { failed: number }> {
    this.#installed();
    const total = { received: 0, added: 0, updated: 0, requests: 0, failed: 0 };
    const results = await Promise.allSettled([...this.#watched.keys()].map((c) => this.sync(c, opts)));
    for (const r of results) {
      if (r.status === 'rejected') total.failed++;
      else {
        total.received += r.value.received;
        total.added += r.value.added;
        total.updated += r.value.updated;
        total.requests += r.value.requests;
      }
    }
    return total;
  }

  /**
   * Stops answering and recording; the table stays readable. The socket's
   * protocol is free again: another exchange may be installed on it (`new
   * PeerExchange(socket)`, say, after a restart).
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#dispatcher?.close();
    this.#socket?.off('connection', this.#onConnection);
    for (const stop of [...this.#watched.values()]) stop();
    const mine = this.#socket !== undefined ? installed.get(this.#socket) : undefined;
    if (mine?.get(this.protocol) === this) mine.delete(this.protocol);
  }
}

/**
 * The peer exchange extension, for `PeerSocket.bind({ extensions: [peerExchange(opts)] })`:
 * returns the exchange itself (use it once installed, or find it with `PeerExchange.of(socket)`).
 */
export function peerExchange(opts: PeerExchangeOptions = {}): PeerExchange {
  return new PeerExchange(opts);
}
