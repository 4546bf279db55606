/**
 * What the dispatch layer needs from below: a small host interface, not
 * PeerSocket itself. A PeerSocket is one; anything that offers the same seams
 * (a test double, another socket kind) can carry Dispatchers too.
 */
import type { ChannelHandler } from '../channels';
import type { PeerConnection } from '../connection';

/** The channel tag of the dispatch layer's streams and datagrams. */
export const CHANNEL_MESSAGES = 1;

/** Where to dial a peer by key and address. */
export interface HostDialTarget {
  publicKey: Uint8Array;
  host: string;
  port: number;
}

/** The seams a Dispatcher uses: a claimed channel, a before-flush hook, and connections. */
export interface MessageHost {
  /** Open connections, to find one to a peer's key. */
  readonly connections: readonly PeerConnection[];
  /** Dials a peer when no connection to it is open. */
  connect(target: HostDialTarget, opts?: { signal?: AbortSignal }): Promise<PeerConnection>;
  /** Routes every connection's streams and datagrams on `tag` to `handler`. */
  claimChannel(tag: number, handler: ChannelHandler): void;
  /** Runs `fn` before each flush of outgoing datagrams; returns its remover. */
  onBeforeFlush(fn: () => void): () => void;
}
