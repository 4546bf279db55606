/**
 * PeerStream: one QUIC stream as a node:stream Duplex.
 *
 * Writes complete only when quiche has taken the bytes, so `write()` returns
 * false once QUIC flow control (plus the Writable's high-water mark) is full
 * and 'drain' follows when the peer opens its window. Reads happen only while
 * the consumer asks for data: a paused reader leaves bytes in quiche, whose
 * flow control then holds the peer back.
 */
import { Duplex, Readable, type DuplexOptions } from 'node:stream';

import { CHANNEL_APP } from './channels';
import { ClosedError, InvalidArgumentError, PeersockError, StreamStoppedError, errorFromNative } from './errors';
import { Receiver, appCodeOf, unheard, type ReceiveOwner, type StreamEnd, type StreamHost } from './receive';

export type { StreamHost } from './receive';

/** A stream the peer opened: bidirectional (PeerStream) or receive-only (PeerReadStream). */
export type IncomingStream = PeerStream | PeerReadStream;


/** Options of `openStream`. */
export interface StreamOptions {
  /** Send-only stream (the peer can only read). */
  unidirectional?: boolean;
}

/**
 * A QUIC stream as a Duplex: every stream this side opens, and the peer's
 * bidirectional streams. Read `id` for its QUIC stream ID.
 */
export class PeerStream extends Duplex implements StreamEnd, ReceiveOwner {
  /** The QUIC stream ID. */
  readonly id: number;
  /** Whether this side opened it. */
  readonly local: boolean;
  /** Why the peer or the connection ended the stream, if it did. */
  closeError: PeersockError | undefined;
  readonly #host: StreamHost;
  readonly #rx: Receiver;
  #writeDone: boolean;
  #pending: { chunk: Uint8Array; cb: (err?: Error | null) => void } | null = null;
  #gone = false;
  /** Local streams: the channel byte still to send before the first data. */
  #header: Uint8Array | null;

  /** @internal Created by PeerConnection; `channel` for local streams only. */
  constructor(host: StreamHost, id: number, local: boolean, channel = CHANNEL_APP) {
    const uni = (id & 2) !== 0;
    if (uni && !local) throw new InvalidArgumentError('a peer\'s unidirectional stream is a PeerReadStream');
    // A local unidirectional stream has only our write side. Declaring the
    // missing side absent (rather than ending it) keeps `readable` honest
    // and lets the stream close once its one side is done.
    // (`readable` is a Duplex option @types/node 20 does not declare.)
    const opts: DuplexOptions & { readable: boolean } = {
      allowHalfOpen: true,
      readable: !uni,
      readableHighWaterMark: 64 * 1024,
      writableHighWaterMark: 64 * 1024,
    };
    super(opts);
    this.#host = host;
    this.id = id;
    this.local = local;
    this.#rx = new Receiver(host, id, this, uni, local);
    this.#writeDone = false;
    this.#header = local ? Uint8Array.of(channel) : null;
  }

  /**
   * Sets how this stream's data is scheduled against the connection's other
   * streams: lower `urgency` (0..7) is sent first; streams of one urgency
   * share the path round robin when `incremental`, else one after another.
   * Every stream starts at urgency 3, incremental.
   */
  setPriority(urgency: number, incremental = true): this {
    if (!Number.isInteger(urgency) || urgency < 0 || urgency > 7) throw new InvalidArgumentError('urgency must be an integer 0..7');
    if (typeof incremental !== 'boolean') throw new InvalidArgumentError('incremental must be a boolean');
    if (this.#gone || this.#writeDone) return this;
    const host = this.#host;
    try {
      host.native.streamPriority(host.handle, this.id, urgency, incremental);
    } catch (e) {
      throw errorFromNative(e);
    }
    return this;
  }

  /** Whether this is a unidirectional stream (one this side opened: send-only). */
  get unidirectional(): boolean {
    return (this.id & 2) !== 0;
  }

  override _read(): void {
    this.#rx.read();
  }

  /** @internal Data, FIN or a reset arrived. */
  _onReadable(): void {
    this.#rx.onReadable();
  }

  /** @internal Send capacity is back. */
  _onWritable(): void {
    const p = this.#pending;
    if (p === null) return;
    this.#pending = null;
    this.#send(p.chunk, p.cb);
  }

  /** @internal The peer sent STOP_SENDING. */
  _onStopped(code: number): void {
    this.#writeDone = true;
    this._fail(new StreamStoppedError(`peer stopped stream ${this.id} with code ${code}`, { appCode: code }));
  }

  /** @internal The connection ended. */
  _onConnectionClosed(err: PeersockError): void {
    this.#gone = true;
    if (this.destroyed) return;
    if (this.#rx.done && this.#writeDone && this.writableFinished) return;
    this._fail(err);
  }

  /**
   * @internal Ends the stream because of the peer or the connection: it is
   * destroyed with `err` (so `for await`, `pipeline` and `finished` see it)
   * and `closeError` keeps it; see `emit` for who hears the 'error'.
   */
  _fail(err: PeersockError): void {
    this.closeError = err;
    this.destroy(err);
  }

  /** @internal The FIN was read. */
  _received(): void {
    this.#maybeForget();
  }

  /**
   * Emits like any EventEmitter, except that peersock's own errors (the
   * peer's reset or stop, the connection's end) are not thrown when nobody
   * listens for 'error': `closeError` keeps them. A listener that `pipe()`
   * added and removed again does not count.
   */
  override emit(event: string | symbol, ...args: unknown[]): boolean {
    if (unheard(this, event, args[0])) return false;
    return super.emit(event, ...args);
  }

  /**
   * Iterates the received chunks. Reading to the peer's FIN leaves this
   * side's writing open (QUIC half-close: `for await` then write the reply
   * and `end()`); leaving the loop early (break, return, throw) destroys the
   * stream, and a reset or the connection's end rejects the loop.
   */
  override async *[Symbol.asyncIterator](): AsyncIterableIterator<Buffer> {
    let complete = false;
    try {
      // Node's own iterator destroys a Duplex when the readable side ends,
      // write side and all: keep it from doing that, but only that.
      for await (const chunk of this.iterator({ destroyOnReturn: false })) yield chunk as Buffer;
      complete = true;
    } finally {
      if (!complete && !this.destroyed) this.destroy();
    }
  }

  /**
   * @internal A channel owner's reader (the dispatch layer's lanes): every received chunk is handed to
   * `fn` as it arrives (no Readable buffering, no back-pressure), and the
   * Readable side only reports the end.
   */
  _sinkTo(fn: (chunk: Buffer) => void): void {
    this.resume();
    this.#rx.sinkTo(fn);
  }

  /**
   * @internal A channel owner's batched writer (the dispatch layer's lane): hands `chunk` to QUIC at once when
   * nothing is queued before it (skipping the Writable machinery), else
   * queues it behind what is. Returns false once the stream is backed up.
   */
  _writeNow(chunk: Uint8Array): boolean {
    if (this.#header !== null || this.#pending !== null || this.writableLength > 0 || this.#gone || this.destroyed || this.writableEnded) {
      return this.write(chunk);
    }
    const n = this.#take(chunk);
    if (n instanceof Error) {
      this._fail(n);
      return false;
    }
    if (n === chunk.length) return true;
    return this.write(chunk.subarray(n));
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.#send(chunk, cb);
  }

  /** Hands `chunk` to QUIC: the bytes it took, or why it took none. */
  #take(chunk: Uint8Array): number | PeersockError {
    const host = this.#host;
    let n: number;
    try {
      n = host.native.streamSend(host.handle, this.id, chunk, false);
    } catch (e) {
      return errorFromNative(e);
    }
    host.kick();
    if (n === -1) {
      const code = host.native.lastCode();
      return new StreamStoppedError(`peer stopped stream ${this.id} with code ${code}`, { appCode: code });
    }
    return n;
  }

  #send(chunk: Uint8Array, cb: (err?: Error | null) => void): void {
    if (this.#header !== null) {
      chunk = Buffer.concat([this.#header, chunk]);
      this.#header = null;
    }
    if (this.#gone) {
      cb(new ClosedError('connection is closed'));
      return;
    }
    const n = this.#take(chunk);
    if (n instanceof Error) {
      cb(n);
      return;
    }
    if (n === chunk.length) {
      cb();
      return;
    }
    this.#pending = { chunk: chunk.subarray(n), cb };
  }

  override _final(cb: (err?: Error | null) => void): void {
    if (this.#writeDone) {
      cb();
      return;
    }
    if (this.#header !== null) {
      // Nothing was written: the channel byte still goes first.
      this.#send(new Uint8Array(0), (err) => (err ? cb(err) : this._final(cb)));
      return;
    }
    const host = this.#host;
    try {
      host.native.streamSend(host.handle, this.id, new Uint8Array(0), true);
    } catch (e) {
      cb(errorFromNative(e));
      return;
    }
    host.kick();
    this.#writeDone = true;
    this.#maybeForget();
    cb();
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    const host = this.#host;
    const code = appCodeOf(err);
    if (!this.#gone) {
      try {
        this.#rx.stop(code);
        if (!this.#writeDone) host.native.streamShutdown(host.handle, this.id, 'write', code);
        host.kick();
      } catch {
        // The connection is already gone; nothing to tell the peer.
      }
    }
    this.#rx.done = true;
    this.#writeDone = true;
    const p = this.#pending;
    this.#pending = null;
    if (p !== null) p.cb(err ?? new ClosedError('stream destroyed'));
    host.streamClosed(this.id);
    cb(err);
  }

  #maybeForget(): void {
    if (this.#rx.done && this.#writeDone) this.#host.streamClosed(this.id);
  }
}

/**
 * A unidirectional stream the peer opened: receive-only, so a Readable (an
 * echo such as `s.pipe(s)` can never write into it). Delivered by
 * PeerConnection's 'unidirectionalStream' event. `destroy(err)` asks the
 * peer to stop sending (STOP_SENDING with `err.appCode`, default 0).
 */
export class PeerReadStream extends Readable implements StreamEnd, ReceiveOwner {
  /** The QUIC stream ID. */
  readonly id: number;
  /** Always false: the peer opened it. */
  readonly local = false;
  /** Why the peer or the connection ended the stream, if it did. */
  closeError: PeersockError | undefined;
  readonly #host: StreamHost;
  readonly #rx: Receiver;
  #gone = false;

  /** @internal Created by PeerConnection. */
  constructor(host: StreamHost, id: number) {
    super({ highWaterMark: 64 * 1024 });
    this.#host = host;
    this.id = id;
    this.#rx = new Receiver(host, id, this, false, false);
  }

  /** Always true. */
  get unidirectional(): boolean {
    return true;
  }

  override _read(): void {
    this.#rx.read();
  }

  /** @internal */
  _onReadable(): void {
    this.#rx.onReadable();
  }

  /** @internal Never happens: this side does not send on it. */
  _onWritable(): void {}

  /** @internal Never happens: this side does not send on it. */
  _onStopped(): void {}

  /** @internal The connection ended. */
  _onConnectionClosed(err: PeersockError): void {
    this.#gone = true;
    if (this.destroyed || this.#rx.done) return;
    this._fail(err);
  }

  /** @internal See PeerStream's `_fail`. */
  _fail(err: PeersockError): void {
    this.closeError = err;
    this.destroy(err);
  }

  /** @internal The FIN was read. */
  _received(): void {
    this.#host.streamClosed(this.id);
  }

  /** See PeerStream's `emit`: peersock's errors are not thrown without a listener. */
  override emit(event: string | symbol, ...args: unknown[]): boolean {
    if (unheard(this, event, args[0])) return false;
    return super.emit(event, ...args);
  }

  /** @internal See PeerStream's `_sinkTo`. */
  _sinkTo(fn: (chunk: Buffer) => void): void {
    this.resume();
    this.#rx.sinkTo(fn);
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    if (!this.#gone) {
      try {
        this.#rx.stop(appCodeOf(err));
        this.#host.kick();
      } catch {
        // The connection is already gone.
      }
    }
    this.#rx.done = true;
    this.#host.streamClosed(this.id);
    cb(err);
  }
}
