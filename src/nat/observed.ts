/**
 * Observed addresses (the observedAddress() extension): a peer asks a
 * connected peer which address and port it sees it from. Behind a NAT that is
 * the NAT's mapping for this socket and that peer, the address other peers
 * may be told to reach it at.
 *
 *   const s = await PeerSocket.bind({ extensions: [observedAddress()] });
 *   await observeAddress(s, conn); // or NatObserver.of(s)!.observe(conn)
 *
 * Introductions (natTraversal()) do not use this protocol: the introducer
 * tells each side the address it sees the other at, in its offer (offer.ts,
 * same address encoding).
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
import { ClosedError, InvalidArgumentError } from '../errors';
import { Dispatcher } from '../messages/dispatcher';
import { DecodeError } from '../messages/errors';
import type { PeerSocket, SocketExtension } from '../peer-socket';
import type { AddressInfo } from '../transport';

/** Protocol name of the observed-address exchange. */
export const OBSERVE_PROTOCOL = 'peersock/observe/1';
/** The request's type name. */
const OBSERVE = 'observe';
const EMPTY = new Uint8Array(0);

/** Options of `observedAddress()`. */
export interface ObservedAddressOptions {
  /** Default time limit of a request in ms (default 10000). */
  timeout?: number;
}

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

const NOT_INSTALLED = 'the observed-address protocol is not installed: bind with { extensions: [observedAddress()] }';

const observers = new WeakMap<PeerSocket, NatObserver>();

/**
 * The observed-address protocol of one socket: answers 'where do you see me
 * from?' for every peer, and asks peers the same. Make one with
 * `observedAddress()` and install it with `PeerSocket.bind({ extensions: [...] })`;
 * the same object is then the installed observer (also found with
 * `NatObserver.of(socket)`). Built on public seams only: a Dispatcher of its own.
 */
export class NatObserver implements SocketExtension {
  readonly stats: NatObserverStats = { answered: 0, asked: 0 };
  readonly #timeout: number | undefined;
  #socket: PeerSocket | undefined;
  #dispatcher: Dispatcher | undefined;
  #closed = false;

  /** Checks the options (InvalidArgumentError); install it with `bind({ extensions: [...] })`. */
  constructor(opts: ObservedAddressOptions = {}) {
    if (opts === null || typeof opts !== 'object') throw new InvalidArgumentError('options must be an object');
    if (opts.timeout !== undefined && !(typeof opts.timeout === 'number' && opts.timeout > 0)) throw new InvalidArgumentError('timeout must be positive');
    this.#timeout = opts.timeout;
  }

  /** The observer installed on `socket`, if any. */
  static of(socket: PeerSocket): NatObserver | undefined {
    return observers.get(socket);
  }

  /**
   * The socket's observer, installed (and answering) now if it has none or
   * its observer was closed.
   * @deprecated Install it at bind: `PeerSocket.bind({ extensions: [observedAddress()] })`, then `NatObserver.of(socket)`.
   */
  static for(socket: PeerSocket): NatObserver {
    const o = observers.get(socket);
    if (o !== undefined && !o.#closed) return o;
    const fresh = new NatObserver();
    fresh.attach(socket);
    return fresh;
  }

  /** @internal Installs the protocol: the socket answers observed-address requests from now on. */
  attach(socket: PeerSocket): void {
    if (this.#socket !== undefined) throw new InvalidArgumentError('an observedAddress() extension serves one socket');
    if (this.#closed) throw new InvalidArgumentError('this observer is closed');
    const cur = observers.get(socket);
    if (cur !== undefined && !cur.#closed) throw new InvalidArgumentError('observedAddress() is already installed on this socket');
    // Small messages; a peer gets nothing bigger than an address from us.
    const dispatcher = new Dispatcher(socket, { protocol: OBSERVE_PROTOCOL, maxMessageSize: 64, ...(this.#timeout !== undefined ? { timeout: this.#timeout } : {}) });
    dispatcher.handle(OBSERVE, (_msg: Uint8Array, ctx) => {
      this.stats.answered++;
      return encodeObserved(ctx.connection.remoteAddress);
    });
    this.#socket = socket;
    this.#dispatcher = dispatcher;
    observers.set(socket, this);
  }

  /** @internal The socket is closing. */
  detach(): void {
    this.close();
  }

  /** The socket it serves (undefined until installed). */
  get socket(): PeerSocket | undefined {
    return this.#socket;
  }

  /**
   * Asks the peer on `conn` where it sees us from: our address as mapped on
   * the way to it. Rejects with InvalidArgumentError when not installed,
   * ClosedError once closed.
   */
  async observe(conn: PeerConnection, opts: ObserveOptions = {}): Promise<AddressInfo> {
    const d = this.#dispatcher;
    if (d === undefined) throw new InvalidArgumentError(NOT_INSTALLED);
    if (this.#closed) throw new ClosedError('the observer is closed');
    if (opts === null || typeof opts !== 'object') throw new InvalidArgumentError('options must be an object');
    this.stats.asked++;
    const reply = await d.request<Uint8Array>(conn, EMPTY, {
      type: OBSERVE,
      reply: OBSERVE,
      ...(opts.timeout !== undefined ? { timeout: opts.timeout } : {}),
      ...(opts.signal !== undefined ? { signal: opts.signal } : {}),
    });
    return decodeObserved(reply);
  }

  /** Stops answering and asking; the socket's protocol is free again (`NatObserver.for` installs a new one). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#dispatcher?.close();
  }
}

/**
 * The observed-address extension, for `PeerSocket.bind({ extensions: [observedAddress()] })`:
 * the socket answers peers asking where they are seen from, and can ask them
 * (`observeAddress`, `classifyNat`). Returns the observer itself.
 */
export function observedAddress(opts: ObservedAddressOptions = {}): NatObserver {
  return new NatObserver(opts);
}

/** The observer installed on `socket`; InvalidArgumentError naming the extension when there is none. */
export function installedObserver(socket: PeerSocket): NatObserver {
  const o = NatObserver.of(socket);
  if (o === undefined) throw new InvalidArgumentError(NOT_INSTALLED);
  return o;
}

/**
 * Installs the observed-address protocol on a bound socket, if it has none
 * (idempotent); returns its observer.
 * @deprecated Install it at bind: `PeerSocket.bind({ extensions: [observedAddress()] })`.
 */
export function enableObserve(socket: PeerSocket): NatObserver {
  return NatObserver.for(socket);
}

/**
 * Asks the peer on `conn` where it sees this socket from. Needs the
 * observedAddress() extension on this socket (else InvalidArgumentError), and
 * on the peer to get an answer (else NoHandlerError).
 */
export async function observeAddress(socket: PeerSocket, conn: PeerConnection, opts: ObserveOptions = {}): Promise<AddressInfo> {
  return installedObserver(socket).observe(conn, opts);
}
