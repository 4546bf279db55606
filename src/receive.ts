/**
 * The receive half of a peer's stream, shared by PeerStream (a Duplex) and
 * PeerReadStream (an incoming unidirectional stream, a Readable): the
 * channel byte, the pull loop that reads from quiche only while the consumer
 * wants data, and the peer's reset.
 */
import { PeersockError, StreamResetError, errorFromNative } from './errors';
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
  streamChannel(stream: ReceivingStream, channel: number): void;
}

/** A stream the connection routes native events to. */
export interface StreamEnd {
  /** Data, FIN or a reset arrived. */
  _onReadable(): void;
  /** Send capacity is back. */
  _onWritable(): void;
  /** The peer sent STOP_SENDING. */
  _onStopped(code: number): void;
  /** The connection ended. */
  _onConnectionClosed(err: PeersockError): void;
  /** Ends the stream abruptly. */
  destroy(err?: Error): unknown;
}

/** A stream with a receive half, as the Receiver sees its owner. */
export type ReceivingStream = StreamEnd & {
  readonly id: number;
  readonly unidirectional: boolean;
  _sinkTo(fn: (chunk: Buffer) => void): void;
};

/** What the receive half needs from the stream that owns it. */
export interface ReceiveOwner {
  readonly destroyed: boolean;
  push(chunk: Buffer | null): boolean;
  destroy(err?: Error): unknown;
  /** Ends the stream because of the peer or the connection. */
  _fail(err: PeersockError): void;
  /** The FIN was read: forget the stream if its send half is done too. */
  _received(): void;
}

/** The receive half of one QUIC stream. */
export class Receiver {
  /** The consumer asked for data and quiche has not run dry since. */
  wanted = false;
  /** FIN or reset read, or this side never receives (a local unidirectional stream). */
  done: boolean;
  /** Whether the peer's channel byte has been read (always true for local streams). */
  channelKnown: boolean;
  /** Set by the dispatch layer: received bytes go straight here, not through the Readable buffer. */
  #sink: ((chunk: Buffer) => void) | null = null;
  readonly #host: StreamHost;
  readonly #id: number;
  readonly #owner: ReceiveOwner & ReceivingStream;

  constructor(host: StreamHost, id: number, owner: ReceiveOwner & ReceivingStream, done: boolean, channelKnown: boolean) {
    this.#host = host;
    this.#id = id;
    this.#owner = owner;
    this.done = done;
    this.channelKnown = channelKnown;
  }

  /** The Readable asked for data. */
  read(): void {
    this.wanted = true;
    this.pull();
  }

  /** Data, FIN or a reset arrived. */
  onReadable(): void {
    if (!this.channelKnown) this.#readChannel();
    else if (this.wanted) this.pull();
  }

  /** Reads the peer's channel byte, then hands the stream to its owner. */
  #readChannel(): void {
    const host = this.#host;
    let r: number;
    try {
      r = host.native.streamRecv(host.handle, this.#id, host.scratch.subarray(0, 1));
    } catch {
      this.#owner.destroy();
      return;
    }
    if (r === -1) return;
    host.kick();
    if (r === -2 || r < 2) {
      // Reset or finished before saying what it is for: nothing to deliver.
      this.done = true;
      this.#owner.destroy();
      return;
    }
    this.channelKnown = true;
    if (r % 2 === 1) {
      this.done = true;
      this.#owner.push(null);
    }
    host.streamChannel(this.#owner, host.scratch[0]!);
  }

  /** Moves what quiche holds into the Readable (or the sink) while the consumer wants it. */
  pull(): void {
    const host = this.#host;
    const owner = this.#owner;
    while (this.wanted && !this.done && !owner.destroyed) {
      let r: number;
      try {
        r = host.native.streamRecv(host.handle, this.#id, host.scratch);
      } catch (e) {
        owner.destroy(errorFromNative(e));
        return;
      }
      if (r === -1) return; // nothing yet: wait for the readable event
      host.kick();
      if (r === -2) {
        const code = host.native.lastCode();
        this.done = true;
        owner._fail(new StreamResetError(`peer reset stream ${this.#id} with code ${code}`, { appCode: code }));
        return;
      }
      const n = Math.floor(r / 2);
      const fin = r % 2 === 1;
      if (n > 0) {
        const chunk = Buffer.allocUnsafe(n);
        host.scratch.copy(chunk, 0, 0, n);
        if (this.#sink !== null) this.#sink(chunk);
        else this.wanted = owner.push(chunk);
      }
      if (fin) {
        this.done = true;
        owner.push(null);
        owner._received();
      } else if (n < host.scratch.length) {
        // A short read took all there is: the next arrival is a readable event.
        return;
      }
    }
  }

  /** Routes every received chunk to `fn` as it arrives (no buffering, no back-pressure). */
  sinkTo(fn: (chunk: Buffer) => void): void {
    this.#sink = fn;
    this.wanted = true;
    if (this.channelKnown) this.pull();
  }

  /** Tells the peer to stop sending (STOP_SENDING) unless the FIN or a reset was read. */
  stop(code: number): void {
    if (!this.done) this.#host.native.streamShutdown(this.#host.handle, this.#id, 'read', code);
    this.done = true;
  }
}

/** The QUIC application code an error passed to `destroy(err)` carries (`appCode`, default 0). */
export function appCodeOf(err: Error | null | undefined): number {
  const raw = (err as { appCode?: unknown } | null | undefined)?.appCode;
  return typeof raw === 'number' && Number.isInteger(raw) && raw >= 0 ? raw : 0;
}

/**
 * The error rule of peer streams: an error emitted with no 'error' listener
 * is not thrown when it is peersock's (a reset, a stop, the connection's
 * end: the peer's doing, never the application's). The stream is still
 * destroyed with it (`errored`), so `for await`, `pipeline` and `finished`
 * see it, and `closeError` keeps it. Errors of the application's own making
 * (its own `destroy(err)`) keep Node's behaviour.
 */
export function unheard(stream: { listenerCount(e: string): number; closeError: PeersockError | undefined }, event: string | symbol, err: unknown): boolean {
  if (event !== 'error' || !(err instanceof PeersockError) || stream.listenerCount('error') > 0) return false;
  stream.closeError ??= err;
  return true;
}
