/**
 * A Dispatcher's options (and their checks), handler and counter types; the
 * public ones are re-exported by dispatcher.ts, where the package's index
 * takes them from.
 */
import type { PeerConnection } from '../connection';
import { InvalidArgumentError } from '../errors';
import type { MessageContext } from './conversation';
import { checkSignal, type LifecycleOptions } from './lifecycle';
import type { TypeLike } from './types';

/** Who to talk to: a connection, a dial string, or a key plus address (dialed when needed). */
export type Peer = PeerConnection | string | { publicKey: Uint8Array; host: string; port: number };

/** Options of a Dispatcher. */
export interface DispatcherOptions extends LifecycleOptions {
  /** Protocol name, e.g. 'chat/1'; messages of other protocols never reach this dispatcher. */
  protocol: string;
  /** Largest message payload sent or accepted, in bytes (default 16 MiB). */
  maxMessageSize?: number;
  /** Default request timeout in ms (default 10000). */
  timeout?: number;
}

/** Options of `request()`. */
export interface RequestOptions {
  /** The reply's type, for decoding (else: the registered type of its name, or raw). */
  reply?: TypeLike;
  /** The request's type when `msg` is a Uint8Array (a string type). */
  type?: string;
  /** Give up after this many ms. */
  timeout?: number;
  /** Abort the request. */
  signal?: AbortSignal;
  /** Send it in a datagram if it fits (default false). */
  reliable?: boolean;
  /**
   * Safe to handle twice: may ride in 0-RTT early data on a connection from
   * `connect({ earlyData: true })`. Anything else waits for the handshake
   * (default false).
   */
  idempotent?: boolean;
}

/** Options of `send()`. */
export interface SendOptions {
  /** Use a QUIC stream (true, default) or a datagram (false; falls back to a stream if too big). */
  reliable?: boolean;
  /** The message's type when `msg` is a Uint8Array. */
  type?: string;
  /** Safe to handle twice: may ride in 0-RTT early data (see RequestOptions.idempotent). */
  idempotent?: boolean;
}

/** Options of `conversation()`: `signal` destroys the conversation (AbortError) and aborts its dial. */
export type ConversationOptions = LifecycleOptions;

/** A handler: returns the reply (or nothing), or throws a PeersockError for an error reply. */
export type Handler<T = any, R = unknown> = (msg: T, ctx: MessageContext) => R | Promise<R>;

/** Counters of a dispatcher. */
export interface DispatcherStats {
  requestsSent: number;
  repliesReceived: number;
  /** Replies nobody waited for (late, duplicate, unknown id). */
  droppedReplies: number;
  handled: number;
  noHandler: number;
  handlerErrors: number;
  decodeErrors: number;
  malformed: number;
  tooLarge: number;
  sentReliable: number;
  sentUnreliable: number;
  /** Unreliable sends too big for a datagram, sent reliably instead. */
  fellBackToReliable: number;
  conversations: number;
}

const DEFAULT_MAX = 16 * 1024 * 1024;
const DEFAULT_TIMEOUT = 10_000;

/** Checked DispatcherOptions, defaults filled in; InvalidArgumentError for bad ones. */
export function checkDispatcherOptions(opts: DispatcherOptions): { protocol: string; maxMessageSize: number; timeout: number; signal: AbortSignal | undefined } {
  if (opts === null || typeof opts !== 'object') throw new InvalidArgumentError('options must be an object');
  if (typeof opts.protocol !== 'string' || opts.protocol.length === 0 || opts.protocol.length > 128) {
    throw new InvalidArgumentError('protocol must be a string of 1..128 characters');
  }
  const max = opts.maxMessageSize ?? DEFAULT_MAX;
  if (!Number.isInteger(max) || max <= 0 || max > 1 << 30) throw new InvalidArgumentError('maxMessageSize must be an integer 1..2^30');
  const timeout = opts.timeout ?? DEFAULT_TIMEOUT;
  if (!(timeout > 0)) throw new InvalidArgumentError('timeout must be positive');
  return { protocol: opts.protocol, maxMessageSize: max, timeout, signal: checkSignal(opts.signal) };
}
