/**
 * Observed addresses: a peer asks a connected peer which address and port it
 * sees it from. Behind a NAT that is the NAT's mapping for this socket and
 * that peer, the address other peers may be told to reach it at.
 *
 * Wire format (protocol 'peersock/observe/1', raw types): the request
 * 'observe' has an empty payload; its reply carries the requester's port as
 * two bytes, big-endian, followed by its IP address as UTF-8 text.
 *
 * An answer is a claim, not a proof: a peer may lie about what it sees.
 * Asking several peers (`classifyNat`) shows disagreements.
 */
import { isIP } from 'node:net';

import type { PeerConnection } from '../connection';
import { InvalidArgumentError } from '../errors';
import { Dispatcher } from '../messages/dispatcher';
import { DecodeError } from '../messages/errors';
import type { PeerSocket } from '../peer-socket';
import type { AddressInfo } from '../transport';

/** Protocol name of the observed-address exchange. */
export const OBSERVE_PROTOCOL = 'peersock/observe/1';
/** The request's type name. */
const OBSERVE = 'observe';
const EMPTY = new Uint8Array(0);

/** Options of `observe()`. */
export interface ObserveOptions {
  /** Give up after this many ms (default 10000). */
  timeout?: number;
  /** Abort the request. */
  signal?: AbortSignal;
}

/** Counters of a NatObserver. */
export interface NatObserverStats {
  /** Requests answered (we told a peer where we see it). */
  answered: number;
  /** Requests sent (we asked where a peer sees us). */
  asked: number;
}

/** An IPv4-mapped IPv6 address as plain IPv4. */
export function normalizeAddress(address: string): string {
  const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  return m !== null ? m[1]! : address;
}

/** Encodes an address as the reply payload: port (u16, big-endian) then the IP as text. */
export function encodeObserved(addr: AddressInfo): Uint8Array {
  const text = Buffer.from(normalizeAddress(addr.address), 'utf8');
  const out = new Uint8Array(2 + text.length);
  out[0] = addr.port >> 8;
  out[1] = addr.port & 0xff;
  out.set(text, 2);
  return out;
}

/** Decodes a reply payload; throws DecodeError unless it is a valid IP and a port 1..65535. */
export function decodeObserved(bytes: Uint8Array): AddressInfo {
  if (!(bytes instanceof Uint8Array) || bytes.length < 4 || bytes.length > 2 + 45) throw new DecodeError('observed address: bad length');
  const port = (bytes[0]! << 8) | bytes[1]!;
  const address = Buffer.from(bytes.buffer, bytes.byteOffset + 2, bytes.length - 2).toString('utf8');
  const v = isIP(address);
  if (v === 0 || port === 0) throw new DecodeError('observed address: not an IP address and port');
  return { address, port, family: v === 4 ? 'IPv4' : 'IPv6' };
}

const observers = new WeakMap<PeerSocket, NatObserver>();

/**
 * Answers 'where do you see me from?' for every peer of one socket, and asks
 * peers the same. One per socket: use `NatObserver.for(socket)`.
 */
export class NatObserver {
  readonly stats: NatObserverStats = { answered: 0, asked: 0 };
  /** The socket it serves. */
  readonly socket: PeerSocket;
  readonly #dispatcher: Dispatcher;
  #closed = false;

  /** The socket's observer, created (and answering) on first use. */
  static for(socket: PeerSocket): NatObserver {
    let o = observers.get(socket);
    if (o === undefined || o.#closed) {
      o = new NatObserver(socket);
      observers.set(socket, o);
    }
    return o;
  }

  private constructor(socket: PeerSocket) {
    this.socket = socket;
    // Small messages; a peer gets nothing bigger than an address from us.
    this.#dispatcher = new Dispatcher(socket, { protocol: OBSERVE_PROTOCOL, maxMessageSize: 64 });
    this.#dispatcher.handle(OBSERVE, (_msg: Uint8Array, ctx) => {
      this.stats.answered++;
      return encodeObserved(ctx.connection.remoteAddress);
    });
  }

  /** Asks the peer on `conn` where it sees us from: our address as mapped on the way to it. */
  async observe(conn: PeerConnection, opts: ObserveOptions = {}): Promise<AddressInfo> {
    if (opts === null || typeof opts !== 'object') throw new InvalidArgumentError('options must be an object');
    this.stats.asked++;
    const reply = await this.#dispatcher.request<Uint8Array>(conn, EMPTY, {
      type: OBSERVE,
      reply: OBSERVE,
      ...(opts.timeout !== undefined ? { timeout: opts.timeout } : {}),
      ...(opts.signal !== undefined ? { signal: opts.signal } : {}),
    });
    return decodeObserved(reply);
  }

  /** Stops answering; `NatObserver.for` makes a new one. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#dispatcher.close();
  }
}

/** Makes `socket` answer observed-address requests (idempotent). */
export function enableObserve(socket: PeerSocket): NatObserver {
  return NatObserver.for(socket);
}

/**
 * Asks the peer on `conn` where it sees this socket from. The socket then
 * answers such requests too (see `enableObserve`).
 */
export function observeAddress(socket: PeerSocket, conn: PeerConnection, opts: ObserveOptions = {}): Promise<AddressInfo> {
  return NatObserver.for(socket).observe(conn, opts);
}
