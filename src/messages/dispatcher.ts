/**
 * Dispatcher: typed message handlers, request/reply, one-way sends and
 * conversations for one protocol on a PeerSocket. Several dispatchers
 * (protocols) can share a socket. Its lifecycle is every resource's:
 * `close()`, `destroy(err?)`, `closed` and a `signal` option (lifecycle.ts).
 */
import type { PeerConnection } from '../connection';
import { AbortError, ClosedError, HandlerFailedError, InvalidArgumentError, PeersockError } from '../errors';
import type { PeerStream } from '../stream';
import { Conversation, type ConversationHost, type MessageContext } from './conversation';
import { checkDispatcherOptions, type ConversationOptions, type DispatcherOptions, type DispatcherStats, type Handler, type Peer, type RequestOptions, type SendOptions } from './dispatcher-options';
import { DecodeError, NoHandlerError, remoteError } from './errors';
import { FrameReader, frame } from './framing';
import type { peersock } from './generated/envelope';
import { CHANNEL_MESSAGES, type MessageHost } from './host';
import { InFlight } from './in-flight';
import { Lifecycle, abortError, checkSignal } from './lifecycle';
import { PendingRequest, type RequestOwner } from './pending-request';
import { isConnection, resolvePeer } from './peers';
import { Control, Envelope, MessageRouter, type Endpoint } from './router';
import { TypeRegistry } from './type-registry';
import { typeOfMessage, type Codec, type TypeLike } from './types';

export type { ConversationOptions, DispatcherOptions, DispatcherStats, Handler, Peer, RequestOptions, SendOptions } from './dispatcher-options';

const RESOLVED = Promise.resolve();
const EMPTY = new Uint8Array(0);

const closedError = (): ClosedError => new ClosedError('dispatcher is closed');

/**
 * Typed handlers, requests, sends and conversations for one protocol.
 *
 * Lifecycle: `close()` stops taking new work and resolves `closed` once what
 * is in flight is done; `destroy(err?)` fails it at once; `closed` never
 * rejects; `opts.signal`'s abort destroys it with AbortError.
 */
export class Dispatcher implements Endpoint, ConversationHost, RequestOwner {
  readonly protocol: string;
  readonly maxMessageSize: number;
  readonly stats: DispatcherStats = {
    requestsSent: 0, repliesReceived: 0, droppedReplies: 0, handled: 0, noHandler: 0, handlerErrors: 0, decodeErrors: 0,
    malformed: 0, tooLarge: 0, sentReliable: 0, sentUnreliable: 0, fellBackToReliable: 0, conversations: 0,
  };
  readonly #host: MessageHost;
  readonly #router: MessageRouter;
  readonly #timeout: number;
  readonly #types: TypeRegistry;
  readonly #handlers = new Map<string, Handler>();
  readonly #convHandlers = new Map<string, (conv: Conversation, ctx: MessageContext) => void>();
  readonly #life: Lifecycle;
  readonly #inFlight = new InFlight(() => this.#drained());
  /** Taking new work: neither close() nor destroy() has been called. */
  #open = true;
  /** The last send promise that had to wait, and its tracked form (shared by the sends waiting with it). */
  #lastSending: Promise<void> | undefined;
  #lastTracked: Promise<void> | undefined;
  /**
   * Resolves once the dispatcher is closed: `close()` finished (nothing left
   * in flight) or `destroy()` ran. Never rejects.
   */
  readonly closed: Promise<void>;

  /** A dispatcher for `opts.protocol` on `socket` (a PeerSocket, or any MessageHost). */
  constructor(socket: MessageHost, opts: DispatcherOptions) {
    const { protocol, maxMessageSize, timeout, signal } = checkDispatcherOptions(opts);
    this.protocol = protocol;
    this.maxMessageSize = maxMessageSize;
    this.#types = new TypeRegistry(maxMessageSize, () => this.stats.decodeErrors++);
    this.#timeout = timeout;
    this.#host = socket;
    this.#router = MessageRouter.for(socket);
    this.#router.add(this);
    this.#life = new Lifecycle(signal, (err) => this.destroy(err));
    this.closed = this.#life.closed;
    if (signal?.aborted) this.destroy(abortError(signal));
  }

  /** Makes types known for decoding (replies, conversation messages). */
  register(...types: TypeLike[]): this {
    for (const t of types) this.#types.add(t);
    return this;
  }

  /** Handles requests and one-way messages of `type`; the return value is the reply. */
  handle<T = any>(type: TypeLike, fn: Handler<T>): this {
    if (typeof fn !== 'function') throw new InvalidArgumentError('handler must be a function');
    this.#handlers.set(this.#types.add(type).name, fn as Handler);
    return this;
  }

  /** Handles conversations whose first message has `type`. */
  onConversation(type: TypeLike, fn: (conv: Conversation, ctx: MessageContext) => void): this {
    if (typeof fn !== 'function') throw new InvalidArgumentError('handler must be a function');
    this.#convHandlers.set(this.#types.add(type).name, fn);
    return this;
  }

  /**
   * Sends a request and resolves with the decoded reply. A raw payload over
   * 64 KiB is sent from the caller's bytes, not a copy: leave them unchanged
   * until the promise settles.
   */
  request<R = any>(peer: Peer, msg: unknown, opts: RequestOptions = {}): Promise<R> {
    const { type, payload } = this.encode(msg, opts.type);
    const replyCodec = opts.reply !== undefined ? this.#types.add(opts.reply) : undefined;
    const timeout = opts.timeout ?? this.#timeout;
    if (!(typeof timeout === 'number' && timeout > 0)) throw new InvalidArgumentError('timeout must be a positive number of ms');
    const signal = opts.signal;
    if (signal?.aborted) return Promise.reject(new AbortError());
    const reliable = opts.reliable !== false;
    const idempotent = opts.idempotent === true;
    if (!this.#open) return Promise.reject(closedError());
    // Fast path for a connection in hand: no promise hop before sending.
    if (isConnection(peer)) return this.#request<R>(peer, type, payload, replyCodec, timeout, signal, reliable, idempotent);
    return this.#inFlight.track(resolvePeer(this.#host, peer, signal).then((conn) => this.#request<R>(conn, type, payload, replyCodec, timeout, signal, reliable, idempotent)));
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
    // Destroyed while dialing: the caller's promise has already failed.
    if (this.#life.done) return Promise.reject(closedError());
    const st = this.#router.state(conn);
    if (st.closed) return Promise.reject(new ClosedError('connection is closed'));
    const id = st.nextId++;
    return new Promise<R>((resolve, reject) => {
      const req = new PendingRequest(this, this.#router.deadlines, st.waiters, id, replyCodec, signal, timeout, { resolve, reject });
      req.start();
      this.#inFlight.addRequest(req);
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

  /** @internal A request settled. */
  _requestDone(req: PendingRequest): void {
    this.#inFlight.requestDone(req);
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
    if (!this.#open) return Promise.reject(closedError());
    // Fast path for a connection in hand: no closures or promise hops per
    // message, unless it has to wait (the lane backed up, the handshake).
    if (isConnection(peer)) {
      try {
        const sending = this.#sendOneway(peer, type, payload, reliable, idempotent);
        if (sending === undefined) return RESOLVED;
        // Sends waiting on the same drain share one tracked promise.
        if (sending !== this.#lastSending) {
          this.#lastSending = sending;
          this.#lastTracked = this.#inFlight.track(sending);
        }
        return this.#lastTracked!;
      } catch (e) {
        return Promise.reject(e);
      }
    }
    return this.#inFlight.track(resolvePeer(this.#host, peer).then((conn) => this.#sendOneway(conn, type, payload, reliable, idempotent)));
  }

  #sendOneway(conn: PeerConnection, type: string, payload: Uint8Array, reliable: boolean, idempotent: boolean): Promise<void> | undefined {
    // Destroyed while dialing: the caller's promise has already failed.
    if (this.#life.done) throw closedError();
    const env = { id: this.#router.nextId(conn), protocol: this.protocol, type, payload, oneway: true };
    return this.#transmit(conn, env, reliable, idempotent);
  }

  /**
   * Starts a conversation (in-regards-to) whose first message will be of
   * `type`. `opts.signal`'s abort destroys it (and aborts its dial).
   */
  conversation(peer: Peer, type: TypeLike, opts: ConversationOptions = {}): Conversation {
    const signal = checkSignal(opts?.signal);
    this.#types.add(type);
    const open = this.#open;
    // A conversation is never early data: it waits for the handshake.
    const link = open
      ? resolvePeer(this.#host, peer, signal).then(async (conn) => {
          if (conn.early) await conn.handshake;
          const stream: PeerStream = conn._openChannelStream(CHANNEL_MESSAGES, false);
          // The conversation's id is its first message's id.
          return { conn, stream, reader: new FrameReader(this.#router.maxFrame), id: this.#router.nextId(conn) };
        })
      : Promise.reject(closedError());
    this.stats.conversations++;
    const conv = new Conversation(this, link, false, signal);
    if (open && !conv.ended) this.#inFlight.addConversation(conv);
    return conv;
  }

  /**
   * Graceful and idempotent: new requests, sends and conversations fail with
   * ClosedError at once, the peer's new ones are refused (NoHandlerError),
   * open conversations are ended (as `conv.close()`), and `closed` resolves
   * once what is in flight is done: pending requests (their reply, timeout
   * or abort), running handlers (their reply sent), sends waiting for QUIC.
   * A handler that never settles keeps it waiting: `destroy()` cuts it short.
   */
  close(): Promise<void> {
    if (this.#open) {
      this.#open = false;
      this.#router.remove(this);
      this.#inFlight.closeConversations();
      this.#drained();
    }
    return this.closed;
  }

  /**
   * Immediate and idempotent: pending requests and sends reject with `err`
   * (ClosedError when none is given), running handlers' requests get an
   * error reply (code ERR_PEERSOCK_CLOSED) and their results are dropped,
   * open conversations are destroyed with `err`; `closed` resolves.
   */
  destroy(err?: Error): void {
    if (this.#life.done) return;
    this.#open = false;
    this.#router.remove(this);
    this.#inFlight.abort(err ?? new ClosedError('dispatcher destroyed'), err, (h) =>
      this.#reply(h.conn, h.env, { error: { code: ClosedError.code, message: `the dispatcher of protocol "${this.protocol}" was destroyed` } }),
    );
    this.#life.finish();
  }

  /** close() ran and nothing is left in flight: closed. */
  #drained(): void {
    if (!this.#open && this.#inFlight.idle) this.#life.finish();
  }

  /** @internal What is in flight, by kind. */
  get _inFlight(): { requests: number; sends: number; handlers: number; conversations: number } {
    return this.#inFlight.counts;
  }

  #transmit(conn: PeerConnection, env: peersock.messages.IEnvelope, reliable: boolean, idempotent = false): Promise<void> | undefined {
    // Only idempotent messages may be early data (a replay handles them
    // again); the rest wait until the handshake is confirmed.
    if (conn.early && !idempotent) return conn.handshake.then(() => this.#router.send(conn, env, reliable, this.stats));
    // The router picks datagram or stream (encoding once) and counts which.
    return this.#router.send(conn, env, reliable, this.stats);
  }

  /** @internal Encodes a message; its type from the message, or `type` for raw bytes. */
  encode(msg: unknown, type?: string): { type: string; payload: Uint8Array } {
    return this.#types.encode(msg, type);
  }

  /** @internal Decodes with the known type of that name, or hands back raw bytes. */
  decode(type: string, payload: Uint8Array): unknown {
    return this.#types.decode(type, payload);
  }

  /** @internal */
  nextId(conn: PeerConnection): number {
    return this.#router.nextId(conn);
  }

  /** @internal */
  _count(what: 'malformed' | 'tooLarge' | 'droppedReplies'): void {
    this.stats[what]++;
  }

  /** @internal A conversation of this dispatcher rides on `conn` now. */
  _conversationAttached(conv: Conversation, conn: PeerConnection): void {
    this.#inFlight.attached(conv, conn);
  }

  /** @internal A conversation of this dispatcher ended. */
  _conversationEnded(conv: Conversation): void {
    this.#inFlight.conversationEnded(conv);
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
    // ACK); a promise's when it settles. Handlers run concurrently; close()
    // waits for the running ones.
    if (result instanceof Promise) {
      const running = this.#inFlight.handlerStarted(conn, env);
      result.then(
        (r: unknown) => this.#inFlight.handlerDone(running, () => this.#replyResult(conn, env, r)),
        (e: unknown) => this.#inFlight.handlerDone(running, () => this.#replyError(conn, env, e)),
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
    this.#inFlight.addConversation(conv);
    try {
      fn(conv, this.#context(conn, first));
    } catch {
      this.stats.handlerErrors++;
    }
    conv._deliver(first);
    conv._frames(rest);
  }
}
