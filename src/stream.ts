/**
 * PeerStream: one QUIC stream as a node:stream Duplex.
 *
 * Writes complete only when quiche has taken the bytes, so `write()` returns
 * false once QUIC flow control (plus the Writable's high-water mark) is full
 * and 'drain' follows when the peer opens its window. Reads happen only while
 * the consumer asks for data: a paused reader leaves bytes in quiche, whose
 * flow control then holds the peer back.
 */
import { Duplex, type DuplexOptions } from 'node:stream';

import { ClosedError, InvalidArgumentError, PeersockError, StreamResetError, StreamStoppedError, errorFromNative } from './errors';
import type { NativeEndpoint } from './native';

/** What a stream needs from its connection. */
export interface StreamHost {
  /** Native connection handle. */
  readonly handle: number;
  /** The socket's native endpoint. */
  readonly native: NativeEndpoint;
  /** Schedules a flush of outgoing datagrams this turn. */
  kick(): void;
  /** Shared scratch buffer for reads. */
  readonly scratch: Buffer;
  /** Forget the stream. */
  streamClosed(id: number): void;
  /** A peer-initiated stream announced its channel (its first byte). */
  streamChannel(stream: PeerStream, channel: number): void;
}

/**
 * Every stream starts with one channel byte, so subsystems can share a
 * connection: 0 is the application's (`openStream`), 1 the dispatch layer's.
 */
export const CHANNEL_APP = 0;
export const CHANNEL_MESSAGES = 1;

/** Options of `openStream`. */
export interface StreamOptions {
  /** Send-only stream (the peer can only read). */
  unidirectional?: boolean;
}

/** An error carrying a QUIC application code for `destroy(err)`. */
interface WithAppCode {
  appCode?: unknown;
}

/** A QUIC stream as a Duplex. Read `id` for its QUIC stream ID. */
export class PeerStream extends Duplex {
  /** The QUIC stream ID. */
  readonly id: number;
  /** Whether this side opened it. */
  readonly local: boolean;
  /** Why the peer or the connection ended the stream, if it did. */
  closeError: PeersockError | undefined;
  readonly #host: StreamHost;
  #readWanted = false;
  #readDone: boolean;
  #writeDone: boolean;
  #pending: { chunk: Uint8Array; cb: (err?: Error | null) => void } | null = null;
  #gone = false;
  /** Local streams: the channel byte still to send before the first data. */
  #header: Uint8Array | null;
  /** Remote streams: whether the channel byte has been read. */
  #channelKnown: boolean;
  /** Set by the dispatch layer: received bytes go straight here, not through the Readable buffer. */
  #sink: ((chunk: Buffer) => void) | null = null;

  /** @internal Created by PeerConnection; `channel` for local streams only. */
  constructor(host: StreamHost, id: number, local: boolean, channel = CHANNEL_APP) {
    const uni = (id & 2) !== 0;
    // A unidirectional stream has only the initiator's write side. Declaring
    // the missing side absent (rather than ending it) keeps `readable`/`writable`
    // honest and lets the stream close once its one side is done.
    // (`readable`/`writable` are Duplex options @types/node 20 does not declare.)
    const opts: DuplexOptions & { readable: boolean; writable: boolean } = {
      allowHalfOpen: true,
      readable: !(uni && local),
      writable: !(uni && !local),
      readableHighWaterMark: 64 * 1024,
      writableHighWaterMark: 64 * 1024,
    };
    super(opts);
    this.#host = host;
    this.id = id;
    this.local = local;
    this.#readDone = uni && local;
    this.#writeDone = uni && !local;
    this.#header = local ? Uint8Array.of(channel) : null;
    this.#channelKnown = local;
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

  /** Whether this is a unidirectional stream. */
  get unidirectional(): boolean {
    return (this.id & 2) !== 0;
  }

  override _read(): void {
    this.#readWanted = true;
    this._pull();
  }

  /** @internal Data, FIN or a reset arrived. */
  _onReadable(): void {
    if (!this.#channelKnown) this.#readChannel();
    else if (this.#readWanted) this._pull();
  }

  /** Reads the peer's channel byte, then hands the stream to its owner. */
  #readChannel(): void {
    const host = this.#host;
    let r: number;
    try {
      r = host.native.streamRecv(host.handle, this.id, host.scratch.subarray(0, 1));
    } catch {
      this.destroy();
      return;
    }
    if (r === -1) return;
    host.kick();
    if (r === -2 || r < 2) {
      // Reset or finished before saying what it is for: nothing to deliver.
      this.#readDone = true;
      this.destroy();
      return;
    }
    this.#channelKnown = true;
    if (r % 2 === 1) {
      this.#readDone = true;
      this.push(null);
    }
    host.streamChannel(this, host.scratch[0]!);
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
    if (this.#readDone && this.#writeDone && this.writableFinished) return;
    this._fail(err);
  }

  /**
   * Ends the stream because of the peer or the connection. Without an
   * 'error' listener the error is kept in `closeError` instead of thrown:
   * a peer must never crash the host process.
   */
  _fail(err: PeersockError): void {
    this.closeError = err;
    if (this.listenerCount('error') > 0) this.destroy(err);
    else this.destroy();
  }

  private _pull(): void {
    const host = this.#host;
    while (this.#readWanted && !this.#readDone && !this.destroyed) {
      let r: number;
      try {
        r = host.native.streamRecv(host.handle, this.id, host.scratch);
      } catch (e) {
        this.destroy(errorFromNative(e));
        return;
      }
      if (r === -1) return; // nothing yet: wait for the readable event
      host.kick();
      if (r === -2) {
        const code = host.native.lastCode();
        this.#readDone = true;
        this._fail(new StreamResetError(`peer reset stream ${this.id} with code ${code}`, { appCode: code }));
        return;
      }
      const n = Math.floor(r / 2);
      const fin = r % 2 === 1;
      if (n > 0) {
        const chunk = Buffer.allocUnsafe(n);
        host.scratch.copy(chunk, 0, 0, n);
        if (this.#sink !== null) this.#sink(chunk);
        else this.#readWanted = this.push(chunk);
      }
      if (fin) {
        this.#readDone = true;
        this.push(null);
        this.#maybeForget();
      } else if (n < host.scratch.length) {
        // A short read took all there is: the next arrival is a readable event.
        return;
      }
    }
  }

  /**
   * @internal The dispatch layer's reader: every received chunk is handed to
   * `fn` as it arrives (no Readable buffering, no back-pressure), and the
   * Readable side only reports the end.
   */
  _sinkTo(fn: (chunk: Buffer) => void): void {
    this.#sink = fn;
    this.resume();
    this.#readWanted = true;
    if (this.#channelKnown) this._pull();
  }

  /**
   * @internal The dispatch layer's writer: hands `chunk` to QUIC at once when
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
    const raw = (err as WithAppCode | null)?.appCode;
    const code = typeof raw === 'number' && Number.isInteger(raw) && raw >= 0 ? raw : 0;
    if (!this.#gone) {
      try {
        if (!this.#readDone) host.native.streamShutdown(host.handle, this.id, 'read', code);
        if (!this.#writeDone) host.native.streamShutdown(host.handle, this.id, 'write', code);
        host.kick();
      } catch {
        // The connection is already gone; nothing to tell the peer.
      }
    }
    this.#readDone = true;
    this.#writeDone = true;
    const p = this.#pending;
    this.#pending = null;
    if (p !== null) p.cb(err ?? new ClosedError('stream destroyed'));
    host.streamClosed(this.id);
    cb(err);
  }

  #maybeForget(): void {
    if (this.#readDone && this.#writeDone) this.#host.streamClosed(this.id);
  }
}
