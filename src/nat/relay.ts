/**
 * The relay side of a socket: for pairs of peers it introduced, it forwards
 * opaque QUIC packets between the two (relay-to frames in, relay-from frames
 * out). It reads nothing: the packets are encrypted end to end between the
 * peers' keys, and a frame is only accepted from the address of one of the
 * pair's two connections to this socket.
 *
 * Limits: at most `maxPairs` pairs at once (an introduction beyond that gets
 * no relay), `bytesPerSecond` per pair (a token bucket; frames over the rate
 * are dropped and QUIC's congestion control slows down), and a pair is
 * dropped when either connection to it closes or nothing was relayed for
 * `idleTimeout` ms.
 */
import { randomBytes } from 'node:crypto';

import type { PeerConnection } from '../connection';
import { InvalidArgumentError } from '../errors';
import { RELAY_FROM, RELAY_HEADER, relayPairId } from './wire';

/** Relay limits (`BindOptions.relay`; `false` turns relaying off). */
export interface RelayOptions {
  /** Pairs relayed at once, at most (default 32). */
  maxPairs?: number;
  /** Bytes per second per pair, both directions together (default 8 MiB/s). */
  bytesPerSecond?: number;
  /** Drop a pair after this many ms without a relayed packet (default 30000). */
  idleTimeout?: number;
}

/** Counters of a relay. */
export interface RelayStats {
  /** Pairs open now. */
  pairs: number;
  /** Pairs opened since the socket was bound. */
  pairsOpened: number;
  /** Introductions that got no relay because `maxPairs` pairs were open. */
  pairsRefused: number;
  /** Packets and bytes (QUIC payload) forwarded. */
  packets: number;
  bytes: number;
  /** Frames dropped: over the rate limit, or of an unknown pair or sender. */
  droppedRate: number;
  droppedUnknown: number;
}

interface Pair {
  id: number;
  a: PeerConnection;
  b: PeerConnection;
  tokens: number;
  refilled: number;
  lastUsed: number;
  bytes: number;
}

type Send = (data: Uint8Array, port: number, address: string) => void;

function positive(v: unknown, what: string, integer: boolean): void {
  if (v === undefined) return;
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0 || (integer && !Number.isInteger(v))) {
    throw new InvalidArgumentError(`relay.${what} must be a positive ${integer ? 'integer' : 'number'}`);
  }
}

/** Checks `BindOptions.relay`; throws InvalidArgumentError when malformed. */
export function checkRelayOptions(o: unknown): void {
  if (o === undefined || o === false) return;
  if (o === null || typeof o !== 'object') throw new InvalidArgumentError('relay must be false or an object');
  const r = o as RelayOptions;
  positive(r.maxPairs, 'maxPairs', true);
  positive(r.bytesPerSecond, 'bytesPerSecond', false);
  positive(r.idleTimeout, 'idleTimeout', false);
}

/** Forwards packets for introduced pairs, within limits. */
export class RelayServer {
  readonly stats: RelayStats = { pairs: 0, pairsOpened: 0, pairsRefused: 0, packets: 0, bytes: 0, droppedRate: 0, droppedUnknown: 0 };
  readonly maxPairs: number;
  readonly bytesPerSecond: number;
  readonly idleTimeout: number;
  readonly #burst: number;
  readonly #send: Send;
  readonly #pairs = new Map<number, Pair>();
  #sweeper: NodeJS.Timeout | undefined;

  constructor(send: Send, opts: RelayOptions) {
    checkRelayOptions(opts);
    this.#send = send;
    this.maxPairs = opts.maxPairs ?? 32;
    this.bytesPerSecond = opts.bytesPerSecond ?? 8 * 1024 * 1024;
    this.idleTimeout = opts.idleTimeout ?? 30_000;
    // A tenth of a second of traffic may come at once (at least a few full packets).
    this.#burst = Math.max(this.bytesPerSecond / 10, 16 * 1024);
  }

  /** Opens a pair between two connections of this socket; undefined when `maxPairs` are open. */
  open(a: PeerConnection, b: PeerConnection): number | undefined {
    if (this.#pairs.size >= this.maxPairs) {
      this.stats.pairsRefused++;
      return undefined;
    }
    let id = 0;
    while (id === 0 || this.#pairs.has(id)) id = randomBytes(4).readUInt32BE(0);
    const now = performance.now();
    const pair: Pair = { id, a, b, tokens: this.#burst, refilled: now, lastUsed: now, bytes: 0 };
    this.#pairs.set(id, pair);
    this.stats.pairs = this.#pairs.size;
    this.stats.pairsOpened++;
    const drop = (): void => this.#drop(pair);
    void a.closed.then(drop);
    void b.closed.then(drop);
    this.#sweep();
    return id;
  }

  /** Bytes relayed for pair `id` so far (undefined: no such pair). */
  pairBytes(id: number): number | undefined {
    return this.#pairs.get(id)?.bytes;
  }

  /** A relay-to frame from `address:port`: forward it to the pair's other side (in place). */
  forward(frame: Buffer, address: string, port: number): void {
    const pair = this.#pairs.get(relayPairId(frame));
    let to: PeerConnection;
    if (pair !== undefined && same(pair.a, address, port)) to = pair.b;
    else if (pair !== undefined && same(pair.b, address, port)) to = pair.a;
    else {
      this.stats.droppedUnknown++;
      return;
    }
    const now = performance.now();
    pair.tokens = Math.min(this.#burst, pair.tokens + ((now - pair.refilled) / 1000) * this.bytesPerSecond);
    pair.refilled = now;
    if (pair.tokens < frame.length) {
      this.stats.droppedRate++;
      return;
    }
    pair.tokens -= frame.length;
    pair.lastUsed = now;
    const n = frame.length - RELAY_HEADER;
    pair.bytes += n;
    this.stats.packets++;
    this.stats.bytes += n;
    frame[4] = RELAY_FROM;
    const dest = to._pathAddress;
    this.#send(frame, dest.port, dest.address);
  }

  /** Drops pair `id` (an introduction that failed, or a pair that went direct). */
  drop(id: number): void {
    const p = this.#pairs.get(id);
    if (p !== undefined) this.#drop(p);
  }

  #drop(pair: Pair): void {
    if (this.#pairs.get(pair.id) !== pair) return;
    this.#pairs.delete(pair.id);
    this.stats.pairs = this.#pairs.size;
  }

  /** Drops idle pairs now and then while there are any. */
  #sweep(): void {
    if (this.#sweeper !== undefined) return;
    this.#sweeper = setInterval(() => {
      const now = performance.now();
      for (const p of [...this.#pairs.values()]) if (now - p.lastUsed > this.idleTimeout) this.#drop(p);
      if (this.#pairs.size === 0) {
        clearInterval(this.#sweeper);
        this.#sweeper = undefined;
      }
    }, Math.min(this.idleTimeout, 5000));
    this.#sweeper.unref();
  }

  /** Drops every pair. */
  close(): void {
    this.#pairs.clear();
    this.stats.pairs = 0;
    if (this.#sweeper !== undefined) clearInterval(this.#sweeper);
    this.#sweeper = undefined;
  }
}

function same(c: PeerConnection, address: string, port: number): boolean {
  const r = c._pathAddress;
  return r.port === port && r.address === address;
}
