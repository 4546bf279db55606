/**
 * Conversation: a long-lived exchange (in-regards-to) on its own QUIC
 * stream, so each has its own flow control and a stalled one never delays
 * another. Both sides see the other's messages in order. Its lifecycle is
 * every resource's: `close()`, `destroy(err?)`, `closed` and a `signal`
 * (lifecycle.ts).
 */
import { EventEmitter } from 'node:events';

import type { PeerConnection } from '../connection';
import { ClosedError, PeersockError } from '../errors';
import type { PeerStream } from '../stream';
import { ConversationEndedError, DecodeError, remoteError } from './errors';
import { FrameReader, frame } from './framing';
import type { peersock } from './generated/envelope';
import { Lifecycle, abortError } from './lifecycle';
import { Control, Envelope, LARGE, largeHead } from './router';
import { SendWaits } from './send-waits';

/** What a message handler learns about the message. */
export interface MessageContext {
  /** The sender's public key. */
  remotePublicKey: Uint8Array;
  /** The connection it came over. */
  connection: PeerConnection;
  /** The message's id (unique per sender and connection). */
  id: number;
  /** The request it answers (0: none). */
  inReplyTo: number;
  /** Its conversation (0: none). */
  inRegardsTo: number;
  /** Its type name. */
  type: string;
  /** The dispatcher protocol. */
  protocol: string;
}

/** What a Conversation needs from its Dispatcher. */
export interface ConversationHost {
  readonly protocol: string;
  nextId(conn: PeerConnection): number;
  encode(msg: unknown, type?: string): { type: string; payload: Uint8Array };
  decode(type: string, payload: Uint8Array): unknown;
  /** Counts something dropped. */
  _count(what: 'malformed'): void;
  /** The conversation rides on `conn` now (its close ends the conversation: `_connectionClosed`). */
  _conversationAttached(conv: Conversation, conn: PeerConnection): void;
  /** The conversation ended ('end' was emitted). */
  _conversationEnded(conv: Conversation): void;
}

/** A conversation's connection, stream, frame reader and id. */
export interface ConversationLink {
  conn: PeerConnection;
  stream: PeerStream;
  reader: FrameReader;
  id: number;
}

/** Buffered messages above which the stream stops reading (back-pressure). */
const HIGH_WATER = 64;

/**
 * One side of a conversation. Events: 'message' (msg, ctx), 'end', 'error'.
 * Also an async iterable of messages, one at a time.
 *
 * Lifecycle: `close()` ends it gracefully (as `end()`), `destroy(err?)` at
 * once, `closed` resolves once it is over (with 'end'; never rejects), and
 * the `signal` given to `dispatcher.conversation()` destroys it with
 * AbortError.
 */
export class Conversation extends EventEmitter {
  readonly #host: ConversationHost;
  /** Sends waiting for the stream, or for it to drain. */
  readonly #waits = new SendWaits();
  readonly #life: Lifecycle;
  /**
   * Resolves once the conversation is over: ended by either side (`close()`,
   * `end()`, the peer's end), failed, or destroyed; with the 'end' event.
   * Never rejects.
   */
  readonly closed: Promise<void>;
  #id = 0;
  #conn: PeerConnection | undefined;
  #stream: PeerStream | undefined;
  #ready: Promise<void>;
  #opened: boolean;
  #queue: Array<{ msg: unknown; ctx: MessageContext }> = [];
  #wake: (() => void) | undefined;
  #ended = false;
  /** Why it ended, if not gracefully: what sends reject with. */
  #error: Error | undefined;
  /** Destroyed without an error: the iterator ends quietly. */
  #quiet = false;
  #endSent = false;
  #closing = false;

  /**
   * @internal `link` is the stream (the accepting side has it at once) or a
   * promise of it (the opening side may have to dial first). `signal`'s
   * abort destroys the conversation.
   */
  constructor(host: ConversationHost, link: ConversationLink | Promise<ConversationLink>, opened: boolean, signal?: AbortSignal) {
    super();
    this.#host = host;
    this.#opened = opened;
    this.#life = new Lifecycle(signal, (err) => this.destroy(err));
    this.closed = this.#life.closed;
    if (link instanceof Promise) {
      this.#ready = link.then((l) => {
        // Destroyed while dialing: the stream is not needed any more.
        if (this.#ended) l.stream.destroy();
        else this.#attach(l);
      });
      this.#ready.catch((e: unknown) => this.#fail(e instanceof PeersockError ? e : new ClosedError(String(e))));
    } else {
      this.#attach(link);
      this.#ready = Promise.resolve();
    }
    if (signal?.aborted) this.destroy(abortError(signal));
  }

  /** The conversation id (the id of its first message); 0 until connected. */
  get id(): number {
    return this.#id;
  }

  /** The connection, once known. */
  get connection(): PeerConnection | undefined {
    return this.#conn;
  }

  /** The peer's key, once connected. */
  get remotePublicKey(): Uint8Array | undefined {
    return this.#conn?.remotePublicKey;
  }

  /** Whether the conversation is over (either side ended it, or it failed). */
  get ended(): boolean {
    return this.#ended;
  }

  #attach({ conn, stream, reader, id }: ConversationLink): void {
    this.#conn = conn;
    this.#stream = stream;
    this.#id = id;
    stream.on('data', (chunk: Buffer) => {
      let frames: Buffer[];
      try {
        frames = reader.push(chunk);
      } catch (e) {
        this.#fail(e as PeersockError);
        stream.destroy();
        return;
      }
      this._frames(frames);
    });
    stream.on('end', () => this.#finish());
    stream.on('error', (e: Error) => this.#fail(new ConversationEndedError(`conversation ended: ${e.message}`, { cause: e })));
    stream.on('close', () => {
      if (!this.#ended) this.#fail(new ConversationEndedError('conversation stream closed', { cause: stream.closeError }));
    });
    this.#host._conversationAttached(this, conn);
    stream.resume();
  }

  /** @internal Its connection closed with `err`. */
  _connectionClosed(err: PeersockError): void {
    if (!this.#ended) this.#fail(new ConversationEndedError('connection closed', { cause: err }));
  }

  /** @internal Frames read by the router before the conversation existed, or from the stream. */
  _frames(frames: Buffer[]): void {
    for (const f of frames) {
      let env: peersock.messages.Envelope;
      try {
        env = Envelope.decode(f);
      } catch {
        this.#fail(new DecodeError('malformed envelope in conversation'));
        this.#stream?.destroy();
        return;
      }
      this._deliver(env);
    }
  }

  /** @internal One envelope of this conversation. */
  _deliver(env: peersock.messages.Envelope): void {
    if (this.#ended) return;
    if (env.inRegardsTo !== this.#id || env.protocol !== this.#host.protocol) {
      // Every envelope on a conversation's stream names that conversation;
      // one that names another is a peer's mistake: dropped and counted.
      this.#host._count('malformed');
      return;
    }
    if (env.control === Control.END) {
      if (env.error) this.#fail(remoteError(env.error.code ?? '', env.error.message ?? ''));
      else this.#finish();
      return;
    }
    let msg: unknown;
    try {
      msg = this.#host.decode(env.type, env.payload);
    } catch (e) {
      this.#emitError(e as PeersockError);
      return;
    }
    const ctx: MessageContext = {
      remotePublicKey: this.#conn!.remotePublicKey,
      connection: this.#conn!,
      id: env.id,
      inReplyTo: env.inReplyTo,
      inRegardsTo: env.inRegardsTo,
      type: env.type,
      protocol: env.protocol,
    };
    if (this.listenerCount('message') > 0) {
      this.emit('message', msg, ctx);
      return;
    }
    this.#queue.push({ msg, ctx });
    if (this.#queue.length >= HIGH_WATER) this.#stream?.pause();
    this.#wake?.();
  }

  /**
   * Sends a message of the conversation. Resolves once QUIC took it; waits
   * while the peer is not reading (per-conversation back-pressure). A raw
   * payload over 64 KiB is sent from the caller's bytes, not a copy: leave
   * them unchanged until the promise settles.
   */
  async send(msg: unknown, opts: { type?: string } = {}): Promise<void> {
    if (this.#ended || this.#endSent) throw this.#error ?? new ConversationEndedError();
    const { type, payload } = this.#host.encode(msg, opts.type);
    // Waiting for the stream, or behind sends that are: in order, and a
    // destroy() rejects at once.
    if (this.#stream === undefined || this.#waits.readyWaiting) await this.#waits.forReady(this.#ready);
    else await this.#ready;
    if (this.#ended) throw this.#error ?? new ConversationEndedError();
    const conn = this.#conn!;
    const fields = {
      id: this.#opened ? this.#host.nextId(conn) : this.#id,
      protocol: this.#host.protocol,
      type,
      inRegardsTo: this.#id,
      payload,
      control: this.#opened ? Control.NONE : Control.OPEN,
    };
    this.#opened = true;
    if (payload.length > LARGE) {
      // As for big one-way messages: the payload's own bytes follow the
      // frame's head, no multi-megabyte copy on the event loop.
      this.#stream!.write(largeHead(fields, payload.length));
      await this.#write(payload);
      return;
    }
    await this.#write(frame(Envelope.encode(fields).finish()));
  }

  #write(bytes: Uint8Array): Promise<void> {
    const s = this.#stream!;
    return new Promise((resolve, reject) => {
      const ok = s.write(bytes, (err) => {
        if (err) reject(err instanceof PeersockError ? err : new ClosedError(err.message));
      });
      if (ok) resolve();
      else this.#waits.afterDrain(s, resolve, reject);
    });
  }

  /** Ends the conversation for both sides (graceful). Idempotent. */
  async end(): Promise<void> {
    if (this.#endSent || this.#ended) return;
    await this.#sendEnd();
    this.#finish();
  }

  /**
   * Ends the conversation gracefully, as `end()`: messages already sent still
   * arrive, the peer sees a graceful end. Idempotent; resolves with `closed`.
   */
  close(): Promise<void> {
    if (!this.#closing) {
      this.#closing = true;
      this.end().catch((e: unknown) => this.destroy(e instanceof Error ? e : new ClosedError(String(e))));
    }
    return this.closed;
  }

  /**
   * Ends the conversation at once and resets its stream: sends still waiting
   * reject with `err` (ClosedError when none is given), as do later ones;
   * with `err`, 'error' is emitted and the iterator throws it, without, the
   * iterator just ends. 'end' is emitted and `closed` resolves. Idempotent.
   */
  destroy(err?: Error): void {
    if (this.#ended) return;
    this.#quiet = err === undefined;
    this.#fail(err ?? new ClosedError('conversation destroyed'));
  }

  /** Ends our side of the stream (with an END envelope once we have spoken). */
  async #sendEnd(): Promise<void> {
    if (this.#endSent) return;
    this.#endSent = true;
    await this.#ready.catch(() => {});
    const s = this.#stream;
    if (s === undefined || s.destroyed) return;
    if (this.#opened) {
      s.end(frame(Envelope.encode({ id: this.#host.nextId(this.#conn!), protocol: this.#host.protocol, inRegardsTo: this.#id, control: Control.END }).finish()));
    } else s.end();
  }

  #finish(): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#wake?.();
    this.emit('end');
    // The peer ended it: end our side too, so the stream completes and QUIC
    // frees it (`end()` would return at once now that #ended is set).
    if (!this.#endSent) void this.#sendEnd();
    this.#over();
  }

  #fail(err: Error): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#error = err;
    this.#wake?.();
    // Sends waiting for the stream or for it to drain would wait forever.
    this.#waits.fail(err);
    if (!this.#quiet) this.#emitError(err);
    this.emit('end');
    this.#stream?.destroy();
    this.#over();
  }

  /** It ended: its host forgets it, `closed` resolves. */
  #over(): void {
    this.#host._conversationEnded(this);
    this.#life.finish();
  }

  #emitError(err: Error): void {
    if (this.listenerCount('error') > 0) this.emit('error', err);
  }

  /** Messages in order, one at a time; ends when the conversation ends. */
  async *[Symbol.asyncIterator](): AsyncGenerator<unknown, void, undefined> {
    for (;;) {
      const next = this.#queue.shift();
      if (next !== undefined) {
        if (this.#queue.length < HIGH_WATER / 2) this.#stream?.resume();
        yield next.msg;
        continue;
      }
      if (this.#ended) {
        if (this.#error !== undefined && !this.#quiet && !(this.#error instanceof ConversationEndedError && this.#endSent)) throw this.#error;
        return;
      }
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
      });
      this.#wake = undefined;
    }
  }
}
