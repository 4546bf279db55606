/**
 * Dispatcher: typed message handlers, request/reply, one-way sends and
 * conversations for one protocol on a PeerSocket. Several dispatchers
 * (protocols) can share a socket.
 */
import type { PeerConnection } from '../connection';
import { AbortError, ClosedError, HandlerFailedError, InvalidArgumentError, PeersockError } from '../errors';
import { keysEqual, parseDialString } from '../keys';
import type { PeerStream } from '../stream';
import { Conversation, type ConversationHost, type MessageContext } from './conversation';
import { DecodeError, MessageTooLargeError, NoHandlerError, RequestTimeoutError, remoteError } from './errors';
import { FrameReader, frame } from './framing';
import type { peersock } from './generated/envelope';
import { Deadline } from './deadlines';
import { CHANNEL_MESSAGES, type MessageHost } from './host';
import { Control, Envelope, MessageRouter, type Endpoint, type Waiter } from './router';
import { codecOf, typeOfMessage, type Codec, type RawMessage, type TypeLike } from './types';

/** Who to talk to: a connection, a dial string, or a key plus address (dialed when needed). */
export type Peer = PeerConnection | string | { publicKey: Uint8Array; host: string; port: number };

/** Options of a Dispatcher. */
export interface DispatcherOptions {
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
const RESOLVED = Promise.resolve();
const EMPTY = new Uint8Array(0);

/**
 * A request waiting for its reply: the router's waiter, a deadline, and the
 * abort listener (`handleEvent`) in one object.
 */
class PendingRequest extends Deadline implements Waiter {
  readonly protocol: string;
  #done = false;

  constructor(
    private readonly d: Dispatcher,
    private readonly waiters: Map<number, Waiter>,
    private readonly id: number,
    private readonly replyCodec: Codec | undefined,
    private readonly signal: AbortSignal | undefined,
    private readonly timeout: number,
    private readonly resolve: (v: any) => void,
    private readonly reject: (e: unknown) => void,
  ) {
    super();
    this.protocol = d.protocol;
  }

  settle(env: peersock.messages.Envelope | null, err?: PeersockError): void {
    if (this.#done) return;
    this.#done = true;
    this.waiters.delete(this.id);
    this.d._router.deadlines.cancel(this);
    this.signal?.removeEventListener('abort', this);
    if (env === null) {
      this.reject(err);
      return;
    }
    try {
      this.resolve(this.d._settleReply(env, this.replyCodec));
    } catch (e) {
      this.reject(e);
    }
  }

  expire(): void {
    this.settle(null, new RequestTimeoutError(`no reply within ${this.timeout} ms`));
  }

  /** The signal's abort. */
  handleEvent(): void {
    this.settle(null, new AbortError());
  }
}

function isConnection(peer: Peer): peer is PeerConnection {
  return peer !== null && typeof peer === 'object' && 'openStream' in peer;
}

/** Typed handlers, requests, sends and conversations for one protocol. */
export class Dispatcher implements Endpoint, ConversationHost {
  readonly protocol: string;
  readonly maxMessageSize: number;
  readonly stats: DispatcherStats = {
    requestsSent: 0, repliesReceived: 0, droppedReplies: 0, handled: 0, noHandler: 0, handlerErrors: 0, decodeErrors: 0,
    malformed: 0, tooLarge: 0, sentReliable: 0, sentUnreliable: 0, fellBackToReliable: 0, conversations: 0,
  };
  readonly #host: MessageHost;
  readonly #router: MessageRouter;
  readonly #timeout: number;
  readonly #types = new Map<string, Codec>();
  readonly #handlers = new Map<string, Handler>();
  readonly #convHandlers = new Map<string, (conv: Conversation, ctx: MessageContext) => void>();
  #closed = false;

  /** A dispatcher for `opts.protocol` on `socket` (a PeerSocket, or any MessageHost). */
  constructor(socket: MessageHost, opts: DispatcherOptions) {
    if (opts === null || typeof opts !== 'object') throw new InvalidArgumentError('options must be an object');
    if (typeof opts.protocol !== 'string' || opts.protocol.length === 0 || opts.protocol.length > 128) {
      throw new InvalidArgumentError('protocol must be a string of 1..128 characters');
    }
    const max = opts.maxMessageSize ?? DEFAULT_MAX;
    if (!Number.isInteger(max) || max <= 0 || max > 1 << 30) throw new InvalidArgumentError('maxMessageSize must be an integer 1..2^30');
    const timeout = opts.timeout ?? 10_000;
    if (!(timeout > 0)) throw new InvalidArgumentError('timeout must be positive');
    this.protocol = opts.protocol;
    this.maxMessageSize = max;
    this.#timeout = timeout;
    this.#host = socket;
    this.#router = MessageRouter.for(socket);
    this.#router.add(this);
  }

  /** Makes types known for decoding (replies, conversation messages). */
  register(...types: TypeLike[]): this {
    for (const t of types) {
      const c = codecOf(t);
      this.#types.set(c.name, c);
    }
    return this;
  }

  /** Handles requests and one-way messages of `type`; the return value is the reply. */
  handle<T = any>(type: TypeLike, fn: Handler<T>): this {
    if (typeof fn !== 'function') throw new InvalidArgumentError('handler must be a function');
    const c = codecOf(type);
    this.#types.set(c.name, c);
    this.#handlers.set(c.name, fn as Handler);
    return this;
  }

  /** Handles conversations whose first message has `type`. */
  onConversation(type: TypeLike, fn: (conv: Conversation, ctx: MessageContext) => void): this {
    if (typeof fn !== 'function') throw new InvalidArgumentError('handler must be a function');
    const c = codecOf(type);
    this.#types.set(c.name, c);
    this.#convHandlers.set(c.name, fn);
    return this;
  }

  /**
   * Sends a request and resolves with the decoded reply. A raw payload over
   * 64 KiB is sent from the caller's bytes, not a copy: leave them unchanged
   * until the promise settles.
   */
  request<R = any>(peer: Peer, msg: unknown, opts: RequestOptions = {}): Promise<R> {
    const { type, payload } = this.encode(msg, opts.type);
    const replyCodec = opts.reply !== undefined ? codecOf(opts.reply) : undefined;
    if (replyCodec !== undefined && this.#types.get(replyCodec.name) !== replyCodec) this.#types.set(replyCodec.name, replyCodec);
    const timeout = opts.timeout ?? this.#timeout;
    if (!(typeof timeout === 'number' && timeout > 0)) throw new InvalidArgumentError('timeout must be a positive number of ms');
    const signal = opts.signal;
    if (signal?.aborted) return Promise.reject(new AbortError());
    const reliable = opts.reliable !== false;
    const idempotent = opts.idempotent === true;
    // Fast path for a connection in hand: no promise hop before sending.
    if (isConnection(peer) && !this.#closed) return this.#request<R>(peer, type, payload, replyCodec, timeout, signal, reliable, idempotent);
    return this.#resolvePeer(peer, signal).then((conn) => this.#request<R>(conn, type, payload, replyCodec, timeout, signal, reliable, idempotent));
  }

  #request<R>(
    conn: PeerConnection,
    type: string,
    payload: Uint8Array,
    replyCodec: Codec | undefined,
    timeout: number,
    signal: AbortSignal | undefined,
    reliable: boolean,
    idempotent: boolean,
  ): Promise<R> {
    const st = this.#router.state(conn);
    if (st.closed) return Promise.reject(new ClosedError('connection is closed'));
    const id = st.nextId++;
    return new Promise<R>((resolve, reject) => {
      const req = new PendingRequest(this, st.waiters, id, replyCodec, signal, timeout, resolve, reject);
      st.waiters.set(id, req);
      this.#router.deadlines.add(req, timeout);
      if (signal !== undefined) signal.addEventListener('abort', req, { once: true });
      this.stats.requestsSent++;
      const sending = this.#transmit(conn, { id, protocol: this.protocol, type, payload }, reliable, idempotent);
      if (sending !== undefined) sending.catch((e: unknown) => req.settle(null, e as PeersockError));
    });
  }

  /** @internal Settles a request with its reply envelope. */
  _settleReply(env: peersock.messages.Envelope, replyCodec: Codec | undefined): unknown {
    this.stats.repliesReceived++;
    if (env.error) {
      throw remoteError(env.error.code ?? '', env.error.message ?? '');
    }
    return replyCodec !== undefined && env.type === replyCodec.name ? replyCodec.decode(env.payload) : this.decode(env.type, env.payload);
  }

  /** @internal */
  get _router(): MessageRouter {
    return this.#router;
  }

  /**
   * Fire-and-forget. Resolves once QUIC took the message (waits while the
   * peer is slow); bad arguments throw synchronously. A raw payload over
   * 64 KiB is sent from the caller's bytes, not a copy: leave them unchanged
   * until the promise settles.
   */
  send(peer: Peer, msg: unknown, opts: SendOptions = {}): Promise<void> {
    const { type, payload } = this.encode(msg, opts.type);
    const reliable = opts.reliable !== false;
    const idempotent = opts.idempotent === true;
    // Fast path for a connection in hand: no closures or promise hops per message.
    if (isConnection(peer)) {
      if (this.#closed) return Promise.reject(new ClosedError('dispatcher is closed'));
      try {
        return this.#sendOneway(peer, type, payload, reliable, idempotent);
      } catch (e) {
        return Promise.reject(e);
      }
    }
    return this.#resolvePeer(peer).then((conn) => this.#sendOneway(conn, type, payload, reliable, idempotent));
  }

  #sendOneway(conn: PeerConnection, type: string, payload: Uint8Array, reliable: boolean, idempotent: boolean): Promise<void> {
    const env = { id: this.#router.nextId(conn), protocol: this.protocol, type, payload, oneway: true };
    return this.#transmit(conn, env, reliable, idempotent) ?? RESOLVED;
  }

  /** Starts a conversation (in-regards-to) whose first message will be of `type`. */
  conversation(peer: Peer, type: TypeLike): Conversation {
    const codec = codecOf(type);
    this.#types.set(codec.name, codec);
    // A conversation is never early data: it waits for the handshake.
    const link = this.#resolvePeer(peer).then(async (conn) => {
      if (conn.early) await conn.handshake;
      const stream: PeerStream = conn._openChannelStream(CHANNEL_MESSAGES, false);
      // The conversation's id is its first message's id.
      return { conn, stream, reader: new FrameReader(this.#router.maxFrame), id: this.#router.nextId(conn) };
    });
    this.stats.conversations++;
    return new Conversation(this, link, false);
  }

  /** Stops receiving for this protocol; pending requests keep their timeouts. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#router.remove(this);
  }

  #transmit(conn: PeerConnection, env: peersock.messages.IEnvelope, reliable: boolean, idempotent = false): Promise<void> | undefined {
    // Only idempotent messages may be early data (a replay handles them
    // again); the rest wait until the handshake is confirmed.
    if (conn.early && !idempotent) return conn.handshake.then(() => this.#router.send(conn, env, reliable, this.stats));
    // The router picks datagram or stream (encoding once) and counts which.
    return this.#router.send(conn, env, reliable, this.stats);
  }

  async #resolvePeer(peer: Peer, signal?: AbortSignal): Promise<PeerConnection> {
    if (this.#closed) throw new ClosedError('dispatcher is closed');
    if (isConnection(peer)) return peer;
    const target = typeof peer === 'string' ? parseDialString(peer) : peer;
    if (target === null || typeof target !== 'object' || !(target.publicKey instanceof Uint8Array)) {
      throw new InvalidArgumentError('peer must be a PeerConnection, a dial string or { publicKey, host, port }');
    }
    const existing = this.#host.connections.find((c) => keysEqual(c.remotePublicKey, target.publicKey) && c.closeInfo === undefined);
    if (existing !== undefined) return existing;
    return this.#host.connect(target, signal !== undefined ? { signal } : {});
  }

  /** @internal Encodes a message; its type from the message, or `type` for raw bytes. */
  encode(msg: unknown, type?: string): { type: string; payload: Uint8Array } {
    let codec: Codec;
    if (type !== undefined) {
      let known = this.#types.get(type);
      if (known === undefined) {
        known = codecOf(type);
        this.#types.set(type, known);
      }
      codec = known;
    } else {
      const t = typeOfMessage(msg);
      if (t === undefined) throw new InvalidArgumentError('cannot tell the message type: pass a protobufjs message, or bytes with { type }');
      codec = codecOf(t);
    }
    const payload = codec.encode(msg);
    if (payload.length > this.maxMessageSize) {
      throw new MessageTooLargeError(`message of ${payload.length} bytes exceeds maxMessageSize ${this.maxMessageSize}`, { size: payload.length, limit: this.maxMessageSize });
    }
    return { type: codec.name, payload };
  }

  /** @internal Decodes with the known type of that name, or hands back raw bytes. */
  decode(type: string, payload: Uint8Array): unknown {
    const codec = this.#types.get(type);
    if (codec === undefined) return { type, bytes: payload } satisfies RawMessage;
    try {
      return codec.decode(payload);
    } catch (e) {
      this.stats.decodeErrors++;
      throw new DecodeError(`payload is not a valid ${type}`, { cause: e });
    }
  }

  /** @internal */
  nextId(conn: PeerConnection): number {
    return this.#router.nextId(conn);
  }

  /** @internal */
  _count(what: 'malformed' | 'tooLarge' | 'droppedReplies'): void {
    this.stats[what]++;
  }

  #context(conn: PeerConnection, env: peersock.messages.Envelope): MessageContext {
    return { remotePublicKey: conn.remotePublicKey, connection: conn, id: env.id, inReplyTo: env.inReplyTo, inRegardsTo: env.inRegardsTo, type: env.type, protocol: env.protocol };
  }

  /** @internal A request or one-way message. Handlers run concurrently. */
  _onMessage(conn: PeerConnection, env: peersock.messages.Envelope): void {
    const fn = this.#handlers.get(env.type);
    if (fn === undefined) {
      this.stats.noHandler++;
      this.#reply(conn, env, { error: { code: NoHandlerError.remote, message: `no handler for type "${env.type}" in protocol "${this.protocol}"` } });
      return;
    }
    let msg: unknown;
    try {
      msg = this.decode(env.type, env.payload);
    } catch (e) {
      this.#reply(conn, env, { error: { code: DecodeError.code, message: (e as Error).message } });
      return;
    }
    this.stats.handled++;
    let result: unknown;
    try {
      result = fn(msg, this.#context(conn, env));
    } catch (e) {
      this.#replyError(conn, env, e);
      return;
    }
    // A synchronous handler's reply is queued at once (same packet as the
    // ACK); a promise's when it settles. Handlers run concurrently.
    if (result instanceof Promise) {
      result.then(
        (r: unknown) => this.#replyResult(conn, env, r),
        (e: unknown) => this.#replyError(conn, env, e),
      );
    } else this.#replyResult(conn, env, result);
  }

  #replyResult(conn: PeerConnection, env: peersock.messages.Envelope, result: unknown): void {
    if (env.oneway) return;
    try {
      if (result === undefined || result === null) this.#reply(conn, env, { type: '', payload: EMPTY });
      else {
        const raw = result instanceof Uint8Array && typeOfMessage(result) === undefined;
        this.#reply(conn, env, this.encode(result, raw ? env.type : undefined));
      }
    } catch (e) {
      this.#replyError(conn, env, e);
    }
  }

  #replyError(conn: PeerConnection, env: peersock.messages.Envelope, e: unknown): void {
    this.stats.handlerErrors++;
    const code = e instanceof PeersockError ? e.code : HandlerFailedError.code;
    this.#reply(conn, env, { error: { code, message: e instanceof Error ? e.message : String(e) } });
  }

  #reply(conn: PeerConnection, env: peersock.messages.Envelope, body: peersock.messages.IEnvelope): void {
    if (env.oneway || conn.closeInfo !== undefined) return;
    body.id = this.#router.nextId(conn);
    body.protocol = this.protocol;
    body.inReplyTo = env.id;
    this.#router.send(conn, body, true)?.catch(() => {});
  }

  /** @internal A peer opened a conversation. */
  _onConversation(conn: PeerConnection, stream: PeerStream, reader: FrameReader, first: peersock.messages.Envelope, rest: Buffer[] = []): void {
    const fn = this.#convHandlers.get(first.type);
    if (fn === undefined) {
      this.stats.noHandler++;
      const end = Envelope.encode({ protocol: this.protocol, inRegardsTo: first.inRegardsTo, control: Control.END, error: { code: NoHandlerError.remote, message: `no conversation handler for type "${first.type}"` } }).finish();
      stream.end(frame(end));
      return;
    }
    this.stats.conversations++;
    stream.pause();
    const conv = new Conversation(this, { conn, stream, reader, id: first.inRegardsTo }, true);
    try {
      fn(conv, this.#context(conn, first));
    } catch {
      this.stats.handlerErrors++;
    }
    conv._deliver(first);
    conv._frames(rest);
  }
}
