/**
 * The UDP socket a DhtNode hands to bittorrent-dht: a node:dgram socket with
 * a guard in front of the DHT code. Every datagram that arrives is decoded
 * (strict bencode, dht-bencode.ts) and its fields checked against what the
 * KRPC messages of BEP 5 and BEP 44 may hold; anything else is dropped before
 * bittorrent-dht sees it (some wrongly typed fields, e.g. an integer token,
 * would otherwise throw inside its message handler). Queries are then limited
 * per source IP address. Also counts what is sent and received.
 */
import type { RemoteInfo, Socket } from 'node:dgram';
import { EventEmitter } from 'node:events';

import { bdecode, bencode, type BDict, type BValue } from './dht-bencode';
import { MAX_RECORD_VALUE } from './record';

/** Counters of a DhtNode's traffic. */
export interface DhtNodeStats {
  /** DHT messages sent (queries, replies and errors). */
  sent: number;
  /** DHT messages received (every datagram, including dropped ones). */
  received: number;
  /** Queries this node sent (its own lookups, puts, announces, pings). */
  queriesSent: number;
  /** Queries from other nodes that passed the checks and the rate limit. */
  queriesReceived: number;
  /** Queries dropped because their source address was over its rate. */
  rateLimited: number;
  /** Datagrams dropped as malformed (bad bencode or badly typed fields). */
  malformed: number;
}

/** The limits the guard enforces. */
export interface DhtSocketLimits {
  /** Queries accepted per source IP address in each one-second window; Infinity for no limit. */
  maxRequestsPerSecondPerAddress: number;
  /** Source addresses tracked per window; queries from further addresses are dropped in that window. */
  maxTrackedAddresses: number;
}

/** Field checks: each names a field of `a` (queries) or `r` (replies) and what it must be. */
type Check = (v: BValue | undefined) => boolean;
const absentOr = (f: Check): Check => (v) => v === undefined || f(v);
const bytes = (min: number, max: number): Check => (v) => v instanceof Uint8Array && v.length >= min && v.length <= max;
const int: Check = (v) => typeof v === 'number';
const anyValue: Check = (v) => v !== undefined && bencode(v).length <= MAX_RECORD_VALUE;
const listOf = (f: Check): Check => (v) => Array.isArray(v) && v.every(f);
const ID = bytes(20, 20);

/** What the arguments of each query we answer must look like (fields not listed are ignored). */
const QUERY_ARGS: Record<string, Record<string, Check>> = {
  ping: {},
  find_node: { target: ID },
  get_peers: { info_hash: ID },
  announce_peer: { info_hash: ID, token: bytes(1, 64), port: absentOr(int), implied_port: absentOr(int) },
  get: { target: ID, seq: absentOr(int) },
  put: {
    token: bytes(1, 64),
    v: anyValue,
    k: absentOr(bytes(32, 32)),
    sig: absentOr(bytes(64, 64)),
    salt: absentOr(bytes(0, 64)),
    seq: absentOr(int),
    cas: absentOr(int),
  },
};

/** What the fields of a reply, when present, must look like. */
const REPLY_FIELDS: Record<string, Check> = {
  id: ID,
  nodes: bytes(0, 65_535),
  token: bytes(0, 64),
  values: listOf(bytes(0, 18)),
  k: bytes(32, 32),
  sig: bytes(64, 64),
  seq: int,
};

function isDict(v: BValue | undefined): v is BDict {
  return v !== undefined && typeof v === 'object' && !(v instanceof Uint8Array) && !Array.isArray(v);
}

function text(v: BValue | undefined): string | undefined {
  return v instanceof Uint8Array ? Buffer.from(v).toString('latin1') : undefined;
}

/**
 * The KRPC kind of a datagram ('q' query, 'r' reply, 'e' error), or null if
 * it is not a well-formed message bittorrent-dht can safely handle.
 */
export function checkMessage(datagram: Uint8Array): 'q' | 'r' | 'e' | null {
  let msg: BValue;
  try {
    msg = bdecode(datagram);
  } catch {
    return null;
  }
  if (!isDict(msg) || !bytes(1, 32)(msg['t'])) return null;
  const y = text(msg['y']);
  if (y === 'q') {
    const q = text(msg['q']);
    const a = msg['a'];
    if (q === undefined || !isDict(a) || !ID(a['id'])) return null;
    const spec = QUERY_ARGS[q];
    if (spec === undefined) return 'q'; // bittorrent-dht ignores queries it does not know
    for (const [field, check] of Object.entries(spec)) if (!check(a[field])) return null;
    if (q === 'put' && (a['k'] === undefined) !== (a['sig'] === undefined)) return null;
    return 'q';
  }
  if (y === 'r') {
    const r = msg['r'];
    if (!isDict(r)) return null;
    for (const [field, check] of Object.entries(REPLY_FIELDS)) if (r[field] !== undefined && !check(r[field])) return null;
    if (r['v'] !== undefined && !anyValue(r['v'])) return null;
    return 'r';
  }
  if (y === 'e') return Array.isArray(msg['e']) ? 'e' : null;
  return null;
}

/** A query we sent: bencode 2 (k-rpc-socket's encoder) sorts keys, so `y` comes last. */
const QUERY_TAIL = Buffer.from('1:y1:qe', 'latin1');

/**
 * The socket bittorrent-dht runs on (duck-typed as the node:dgram socket
 * k-rpc-socket expects): checks and rate-limits what comes in, counts what
 * goes out.
 */
export class GuardedDhtSocket extends EventEmitter {
  readonly #socket: Socket;
  readonly #limits: DhtSocketLimits;
  readonly #stats: DhtNodeStats;
  readonly #counts = new Map<string, number>();
  #windowStart = 0;
  #closed = false;

  /** Wraps `socket` (not yet bound); `stats` is updated in place. */
  constructor(socket: Socket, limits: DhtSocketLimits, stats: DhtNodeStats) {
    super();
    this.#socket = socket;
    this.#limits = limits;
    this.#stats = stats;
    socket.on('message', (buf: Buffer, rinfo: RemoteInfo) => this.#onMessage(buf, rinfo));
    socket.on('listening', () => this.emit('listening'));
    socket.on('error', (err: Error) => this.emit('error', err));
    socket.on('close', () => {
      this.#closed = true;
      this.emit('close');
    });
  }

  #onMessage(buf: Buffer, rinfo: RemoteInfo): void {
    this.#stats.received++;
    const kind = checkMessage(buf);
    if (kind === null) {
      this.#stats.malformed++;
      return;
    }
    if (kind === 'q') {
      if (!this.#allow(rinfo.address)) {
        this.#stats.rateLimited++;
        return;
      }
      this.#stats.queriesReceived++;
    }
    this.emit('message', buf, rinfo);
  }

  /** Counts a query from `address` in the current one-second window; false when over the limit. */
  #allow(address: string): boolean {
    const limit = this.#limits.maxRequestsPerSecondPerAddress;
    if (limit === Infinity) return true;
    const now = Date.now();
    if (now - this.#windowStart >= 1000) {
      this.#counts.clear();
      this.#windowStart = now;
    }
    const n = this.#counts.get(address) ?? 0;
    if (n >= limit) return false;
    if (n === 0 && this.#counts.size >= this.#limits.maxTrackedAddresses) return false;
    this.#counts.set(address, n + 1);
    return true;
  }

  /** Binds the underlying socket (same arguments as dgram's bind). */
  bind(port: number, host: string, cb?: () => void): void {
    this.#socket.bind(port, host, cb);
  }

  /** The bound address. */
  address(): { address: string; port: number; family: string } {
    return this.#socket.address();
  }

  /** dgram's send(buf, offset, length, port, host, cb); a send after close is dropped. */
  send(buf: Buffer, offset: number, length: number, port: number, host: string, cb?: (err: Error | null) => void): void {
    if (this.#closed) {
      cb?.(null);
      return;
    }
    this.#stats.sent++;
    if (length >= QUERY_TAIL.length && buf.subarray(offset + length - QUERY_TAIL.length, offset + length).equals(QUERY_TAIL)) this.#stats.queriesSent++;
    this.#socket.send(buf, offset, length, port, host, cb);
  }

  /** Closes the underlying socket ('close' follows). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#socket.close();
  }
}
