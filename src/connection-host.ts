/**
 * What a PeerConnection needs from its socket (ConnectionHost), and the
 * shapes of its options and counters.
 */
import type { PeerConnection } from './connection';
import type { NativeEndpoint } from './native';
import type { IncomingStream } from './stream';
import type { AddressInfo, DatagramTransport } from './transport';

/** Options of `close()`. */
export interface CloseOptions {
  /** Application error code sent to the peer (default 0). */
  code?: number;
  /** Reason phrase sent to the peer (default ''). */
  reason?: string;
}

/** Connection counters read from the native side. */
export interface ConnectionStats {
  rttMs: number;
  cwnd: number;
  /** Largest UDP payload the path carries as far as known (grows with `pmtuDiscovery`). */
  pmtu: number;
  sentPackets: number;
  recvPackets: number;
  lostPackets: number;
  sentBytes: number;
  recvBytes: number;
}

/** What a connection needs from its socket. */
export interface ConnectionHost {
  readonly native: NativeEndpoint;
  readonly scratch: Buffer;
  kick(): void;
  connectionClosed(handle: number): void;
  /** A peer stream on a channel other than the application's: true if a subsystem claimed it. */
  channelStream(conn: PeerConnection, channel: number, stream: IncomingStream): boolean;
  /** A peer datagram on a channel other than the application's (dropped when unclaimed). */
  channelDatagram(conn: PeerConnection, channel: number, data: Uint8Array): void;
  /**
   * What `remoteAddress` reports for the core's peer address (the transport's
   * view: an introduced peer's virtual address becomes its real one once its
   * path is direct).
   */
  displayAddress?(addr: AddressInfo): AddressInfo;
  /** Moves a dialed connection to a new local socket. */
  _migrate?(conn: PeerConnection, host: string | undefined, transport: DatagramTransport | undefined): Promise<AddressInfo>;
}

/** Options of `migrate()`. */
export interface MigrateOptions {
  /** Local IP of the new socket (default: the socket's bound address). */
  host?: string;
  /** Use this transport instead of binding a UDP socket. */
  transport?: DatagramTransport;
}
