/**
 * The channel registry of a socket. Every stream and datagram starts with one
 * channel tag byte, so subsystems share a connection: 0 is the application's
 * (`openStream`, `sendDatagram`), and a subsystem (the dispatch layer, say)
 * claims another tag; the socket routes the peer's streams and datagrams on
 * that tag to it. A peer's stream on a tag nobody claimed is refused.
 */
import type { PeerConnection } from './connection';
import { InvalidArgumentError } from './errors';
import type { IncomingStream } from './stream';

/** The application's channel: `openStream`, `sendDatagram`, 'stream', 'datagram'. */
export const CHANNEL_APP = 0;

/** What a subsystem implements to receive one channel's traffic of every connection. */
export interface ChannelHandler {
  /** A peer opened a stream on the channel (its tag byte already read). */
  stream(conn: PeerConnection, stream: IncomingStream): void;
  /** A peer's datagram on the channel (without the tag byte). */
  datagram(conn: PeerConnection, data: Uint8Array): void;
}

/** Channel tags claimed on one socket, and their handlers. */
export class ChannelRegistry {
  readonly #handlers: (ChannelHandler | undefined)[] = [];

  /** Claims `tag` (1..255) for `handler`; throws InvalidArgumentError when it is taken. */
  claim(tag: number, handler: ChannelHandler): void {
    if (!Number.isInteger(tag) || tag < 1 || tag > 255) throw new InvalidArgumentError(`channel tag must be an integer 1..255, got ${String(tag)}`);
    if (handler === null || typeof handler !== 'object' || typeof handler.stream !== 'function' || typeof handler.datagram !== 'function') {
      throw new InvalidArgumentError('a channel handler must have stream() and datagram()');
    }
    if (this.#handlers[tag] !== undefined && this.#handlers[tag] !== handler) throw new InvalidArgumentError(`channel ${tag} is already claimed`);
    this.#handlers[tag] = handler;
  }

  /** Gives `tag` up, if `handler` holds it. */
  release(tag: number, handler: ChannelHandler): void {
    if (this.#handlers[tag] === handler) this.#handlers[tag] = undefined;
  }

  /** The handler of `tag`, if claimed. */
  get(tag: number): ChannelHandler | undefined {
    return this.#handlers[tag];
  }
}
