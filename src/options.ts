/**
 * The options of `PeerSocket.bind` and `connect`, and their checks: every
 * value is validated here (InvalidArgumentError) before it reaches the core.
 */
import type { PeerConnection } from './connection';
import { InvalidArgumentError } from './errors';
import type { KeyPair } from './keys';
import type { NativeOptions } from './native';
import type { PeerSocket } from './peer-socket';
import type { SessionStore } from './sessions';
import type { AddressInfo, DatagramTransport } from './transport';

/** Decides whether a peer that proved `remotePublicKey` may connect. */
export type AcceptHook = (remotePublicKey: Uint8Array, remoteAddress: AddressInfo) => boolean;

/** Options of `PeerSocket.bind`. Times are in milliseconds. */
export interface BindOptions {
  /** This socket's identity (default: a fresh random key pair). */
  keyPair?: KeyPair;
  /** Local IP to bind (default '0.0.0.0'; '::' for dual stack). */
  host?: string;
  /** Local UDP port (default 0: any free port). */
  port?: number;
  /** Refuse peers: return false and the dialer gets ConnectionRefusedError. */
  accept?: AcceptHook;
  /** Supply datagrams some other way than node:dgram. */
  transport?: DatagramTransport;
  /**
   * The I/O driver: 'dgram' (default; node:dgram carries every datagram) or
   * 'native' (the addon owns the UDP socket and batches datagrams on Node's
   * loop, with GSO/GRO where the kernel has them: see README, "Choosing a
   * driver"). The environment variable PEERSOCK_IO sets the default.
   * 'native' excludes `transport`.
   */
  io?: 'dgram' | 'native';
  /** Close connections silent for this long (default 30000). */
  idleTimeout?: number;
  /** Send a keep-alive after this long without sending; false/0 disables (default 15000). */
  keepAlive?: number | false;
  /** Default time limit of `connect` (default 10000). */
  handshakeTimeout?: number;
  /**
   * Largest UDP payload sent (default 1452, for 1500-byte Ethernet); path MTU
   * discovery probes up to it. Unset, loopback peers (127.0.0.0/8, ::1) get
   * up to 16383 (9216 on macOS) once discovery has probed: bulk data in
   * about a twelfth of the packets. Set, it holds toward every peer. Raise it where
   * paths carry more (jumbo frames).
   */
  maxUdpPayload?: number;
  /**
   * Path MTU discovery (default true): packets start at 1200 bytes and grow
   * to the largest probe the path carried, up to `maxUdpPayload`, so a path
   * narrower than `maxUdpPayload` (a 1280-byte tunnel) still works. false:
   * every packet may be `maxUdpPayload` bytes, and a narrower path drops them.
   */
  pmtuDiscovery?: boolean;
  /** Initial connection receive window (default 4 MiB). */
  initialMaxData?: number;
  /** Initial receive window of each bidirectional stream (default 1 MiB). */
  initialMaxStreamData?: number;
  /**
   * Initial receive window of each unidirectional stream (default 256 KiB).
   * The dispatch layer's messages travel on these: a smaller window lets a
   * big message queue less in front of small ones. Windows grow by
   * auto-tuning (up to `maxStreamWindow`) where the path's round trip needs it.
   */
  initialMaxStreamDataUni?: number;
  /** Ceiling of the auto-tuned connection window (default 24 MiB). */
  maxConnectionWindow?: number;
  /** Ceiling of the auto-tuned stream window (default 16 MiB). */
  maxStreamWindow?: number;
  /** Concurrent bidirectional streams a peer may open (default 128). */
  maxStreamsBidi?: number;
  /** Concurrent unidirectional streams a peer may open (default 128). */
  maxStreamsUni?: number;
  /** Offer QUIC datagrams (default true). */
  datagrams?: boolean;
  /** Datagrams queued per connection each way (default 1024). */
  datagramQueue?: number;
  /** Connections held at most (default 10000). */
  maxConnections?: number;
  /** Incoming handshakes in progress at most (default 2000). */
  maxPendingHandshakes?: number;
  /** Validate each dialer's address with a stateless Retry round trip before keeping any state for it (default false). */
  retry?: boolean;
  /** Accept 0-RTT data from peers resuming a session: their idempotent messages are handled a round trip earlier, and can be replayed (default false). */
  earlyData?: boolean;
  /** Where session tickets for 0-RTT reconnects are kept, by peer key (default: a MemorySessionStore). */
  sessionStore?: SessionStore;
  /** Extensions installed at bind, in order (e.g. `natTraversal()`); see SocketExtension. */
  extensions?: SocketExtension[];
}

/**
 * Something that plugs into a socket at bind, the one way extensions attach:
 * it may wrap the socket's datagram transport (a decorator, before the socket
 * uses it), then gets the bound socket to install itself on its public seams.
 */
export interface SocketExtension {
  /** Wraps the transport the socket will use; returns the one it should use instead. */
  wrapTransport?(transport: DatagramTransport): DatagramTransport;
  /** Installs the extension on the bound socket (handlers, channels, dialers). */
  attach(socket: PeerSocket): void;
  /** The socket is closing: stop timers and answering. */
  detach?(): void;
}

/** Dials a `{ publicKey, via }` target (installed by an extension; see PeerSocket.setIntroducedDialer). */
export type IntroducedDialer = (target: IntroducedTarget, opts: ConnectOptions) => Promise<PeerConnection>;

/**
 * Where to dial: a dial string `<key>@<host>:<port>` or its parts. With
 * `{ anyKey: true }` the dial takes `{ host, port }` alone and learns the key
 * from the handshake.
 */
export type DialTarget = string | { publicKey: Uint8Array; host: string; port: number } | { publicKey?: undefined; host: string; port: number } | IntroducedTarget;

/** Dial a peer by key through an introducer: a peer both sides are connected to (its connection or key). */
export interface IntroducedTarget {
  publicKey: Uint8Array;
  via: PeerConnection | Uint8Array;
}

/** Options of `connect`. */
export interface ConnectOptions {
  /** Give up after this many ms (default: the socket's handshakeTimeout). */
  timeout?: number;
  /** Abort the dial. */
  signal?: AbortSignal;
  /** Resume with a stored session ticket and resolve at once, before the handshake, so idempotent messages ride in 0-RTT (default false). */
  earlyData?: boolean;
  /** This connection's keep-alive in ms; false/0 disables (default: the socket's). */
  keepAlive?: number | false;
  /**
   * Dial `{ host, port }` without pinning a key (default false): whoever
   * answers there must still prove the key of its certificate, and that key
   * is then `conn.remotePublicKey`, for the application to judge before it
   * trusts the peer. Meant for addresses found with no key attached (a DHT
   * topic lookup). Not with `earlyData` or a `publicKey`.
   */
  anyKey?: boolean;
  /** Introduced dials (`via`): try a hole-punched direct path (default true). */
  direct?: boolean;
  /** Introduced dials: fall back to relaying through the introducer (default true). */
  relay?: boolean;
  /** Introduced dials: punch this long before falling back to the relay (default 2000). */
  directTimeout?: number;
}

export function checkPort(port: unknown, what: string, allowZero: boolean): number {
  if (typeof port !== 'number' || !Number.isInteger(port) || port < (allowZero ? 0 : 1) || port > 65535) {
    throw new InvalidArgumentError(`${what} must be an integer ${allowZero ? 0 : 1}..65535, got ${String(port)}`);
  }
  return port;
}

export function checkMs(v: unknown, what: string): number | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) throw new InvalidArgumentError(`${what} must be a positive number of milliseconds`);
  return v;
}

export function nativeOptions(o: BindOptions): NativeOptions {
  const n: NativeOptions = {};
  const count = (v: unknown, what: string): number | undefined => {
    if (v === undefined) return undefined;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) throw new InvalidArgumentError(`${what} must be a non-negative integer`);
    return v;
  };
  n.idleTimeoutMs = checkMs(o.idleTimeout, 'idleTimeout');
  if (o.keepAlive === false || o.keepAlive === 0) n.keepAliveMs = 0;
  else n.keepAliveMs = checkMs(o.keepAlive, 'keepAlive');
  n.handshakeTimeoutMs = checkMs(o.handshakeTimeout, 'handshakeTimeout');
  n.maxUdpPayload = count(o.maxUdpPayload, 'maxUdpPayload');
  if (o.pmtuDiscovery !== undefined && typeof o.pmtuDiscovery !== 'boolean') throw new InvalidArgumentError('pmtuDiscovery must be a boolean');
  if (o.pmtuDiscovery !== undefined) n.pmtuDiscovery = o.pmtuDiscovery;
  n.initialMaxData = count(o.initialMaxData, 'initialMaxData');
  n.initialMaxStreamData = count(o.initialMaxStreamData, 'initialMaxStreamData');
  n.initialMaxStreamDataUni = count(o.initialMaxStreamDataUni, 'initialMaxStreamDataUni');
  n.maxConnectionWindow = count(o.maxConnectionWindow, 'maxConnectionWindow');
  n.maxStreamWindow = count(o.maxStreamWindow, 'maxStreamWindow');
  n.maxStreamsBidi = count(o.maxStreamsBidi, 'maxStreamsBidi');
  n.maxStreamsUni = count(o.maxStreamsUni, 'maxStreamsUni');
  if (o.datagrams !== undefined) n.datagrams = o.datagrams === true;
  const q = count(o.datagramQueue, 'datagramQueue');
  n.datagramRecvQueue = q;
  n.datagramSendQueue = q;
  n.maxConnections = count(o.maxConnections, 'maxConnections');
  n.maxPendingHandshakes = count(o.maxPendingHandshakes, 'maxPendingHandshakes');
  if (o.retry !== undefined) n.retry = o.retry === true;
  if (o.earlyData !== undefined) n.earlyData = o.earlyData === true;
  return n;
}

/** Options of `_dialAddress` (dials made by extensions). */
export interface AddressDialOptions {
  /** Handshake time limit in ms (default: the socket's). */
  timeout?: number | undefined;
  /** Abort the dial. */
  signal?: AbortSignal | undefined;
  /** Follow the peer to addresses it sends authentic packets from ('peerAddress' reports them). */
  followPeer?: boolean;
}
