/**
 * PeerSocket: one UDP port that both listens and dials, a facade over the
 * EndpointDriver (src/endpoint-driver.ts: the I/O pump, timer and native
 * event decoding). It owns the connections, the channel registry, the
 * before-flush hooks, raw datagrams and the extensions installed at bind.
 * Argument checks, DNS and starting a dial are in src/dialing.ts; the
 * connections by handle, pending dials and what the handshake events do to
 * them in src/connection-table.ts.
 */
import { EventEmitter } from 'node:events';
import { isIP } from 'node:net';

import { PeerConnection, type ConnectionHost } from './connection';
import { ChannelRegistry, type ChannelHandler } from './channels';
import type { IncomingStream } from './stream';
import { AbortError, ClosedError, InvalidArgumentError, SocketError, errorFromNative } from './errors';
import { EndpointDriver, type Driver, type DriverHost } from './endpoint-driver';
import { NativeIoDriver } from './native-driver';
import { NativeUdpTransport } from './native-transport';
import { checkBindOptions, checkConnect, openDial, resolveHost, type DialExtras } from './dialing';
import { ConnectionTable } from './connection-table';
import { socketStats, type SocketStats } from './socket-stats';
import { createNativeEndpoint, type NativeEndpoint } from './native';
import { UdpTransport, type AddressInfo, type DatagramTransport } from './transport';
import { MemorySessionStore, type SessionStore } from './sessions';
import { LocalSockets } from './local-sockets';
import { signStatement } from './keys';
import {
  checkPort,
  nativeOptions,
  type AcceptHook,
  type AddressDialOptions,
  type BindOptions,
  type ConnectOptions,
  type DialTarget,
  type IntroducedDialer,
  type SocketExtension,
} from './options';

export type { SocketStats } from './socket-stats';
export type { AcceptHook, AddressDialOptions, BindOptions, ConnectOptions, DialTarget, IntroducedDialer, IntroducedTarget, SocketExtension } from './options';

/**
 * A peer-to-peer QUIC socket. Events: 'connection' (PeerConnection),
 * 'raw' (non-QUIC datagram: bytes, {address, port}), 'error', 'close'.
 */
export class PeerSocket extends EventEmitter implements ConnectionHost {
  /** This socket's name: its Ed25519 public key. */
  readonly publicKey: Uint8Array;
  /** Resolves once the socket is closed; never rejects. */
  readonly closed: Promise<void>;
  /** @internal */
  readonly native: NativeEndpoint;
  /** @internal Shared read buffer of all streams. */
  readonly scratch = Buffer.allocUnsafe(64 * 1024);
  readonly #transport: DatagramTransport;
  /** Session tickets by peer key, for `connect({ earlyData: true })`. */
  readonly sessions: SessionStore;
  readonly #locals: LocalSockets;
  readonly #extensions: SocketExtension[];
  #introducedDialer: IntroducedDialer | undefined;
  readonly #accept: AcceptHook | undefined;
  readonly #handshakeTimeout: number | undefined;
  readonly #table: ConnectionTable;
  readonly #driver: Driver;
  #closing: Promise<void> | undefined;
  readonly #channels = new ChannelRegistry();
  /** Run before every flush (subsystems batching writes, like the dispatch layer's lanes). */
  #beforeFlush: (() => void)[] = [];
  #closedFlag = false;
  #secretKey: Uint8Array | undefined;
  #resolveClosed!: () => void;

  private constructor(native: NativeEndpoint, transport: DatagramTransport, opts: BindOptions, publicKey: Uint8Array, extensions: SocketExtension[], nativeIo?: NativeUdpTransport) {
    super();
    this.native = native;
    this.#transport = transport;
    this.#accept = opts.accept;
    this.#handshakeTimeout = opts.handshakeTimeout;
    this.publicKey = publicKey;
    this.sessions = opts.sessionStore ?? new MemorySessionStore();
    this.#table = new ConnectionTable({
      native,
      sessions: this.sessions,
      closingReason: () => (this.#closing !== undefined ? 'socket closing' : undefined),
      admits: (key, addr) => this.#admits(key, addr),
      displayAddress: (addr) => this.displayAddress(addr),
      create: (handle, key, addr, isClient) => new PeerConnection(this, handle, key, addr, isClient),
      accepted: (conn) => this.emit('connection', conn),
    });
    const driverHost: DriverHost = {
      connection: (handle) => this.#table.get(handle),
      onDetail: (ev) => this.#table.onEvent(ev),
      transportFor: (local) => this.#locals.get(local) ?? this.#transport,
      beforeFlush: () => {
        for (const fn of this.#beforeFlush) fn();
      },
      sendFailed: (err, address, port) => this.#table.sendFailed(err, address, port),
    };
    this.#driver = nativeIo !== undefined ? new NativeIoDriver(native, driverHost, nativeIo) : new EndpointDriver(native, driverHost);
    this.closed = new Promise((resolve) => {
      this.#resolveClosed = resolve;
    });
    this.#extensions = extensions;
    this.#locals = new LocalSockets(native, (data, address, port, local) => {
      if (!this.#closedFlag) this.#driver.feedLocal(data, address, port, local);
    });
    transport.onDatagram((data, address, port) => this.#onDatagram(data, address, port));
    transport.onError((err) => {
      if (this.listenerCount('error') > 0) this.emit('error', new SocketError(err.message, { cause: err }));
    });
    transport.onPathChange?.((address, port) => this.#table.pathChanged(address, port));
  }

  /** Binds a socket that can accept and dial at once. */
  static override async bind(opts: BindOptions = {}): Promise<PeerSocket> {
    const { kp, host, extensions, io } = checkBindOptions(opts);
    const nopts = nativeOptions(opts);
    let native: NativeEndpoint;
    try {
      native = createNativeEndpoint(kp.secretKey, host, 0, nopts);
    } catch (e) {
      throw errorFromNative(e);
    }
    const own = opts.transport === undefined;
    let nativeIo: NativeUdpTransport | undefined;
    if (io === 'native') nativeIo = NativeUdpTransport.open(native, host, opts.port ?? 0);
    const bound = nativeIo ?? opts.transport ?? (await UdpTransport.bind({ host, port: opts.port ?? 0 }));
    let transport: DatagramTransport = bound;
    let socket: PeerSocket | undefined;
    try {
      for (const e of extensions) if (e.wrapTransport !== undefined) transport = e.wrapTransport(transport);
      const a = transport.address();
      native.setLocalAddress(a.address, a.port);
      for (const [prefix, len] of transport.ownedPrefixes?.() ?? []) nativeIo?.routeToJs(prefix, len);
      // Filled as each attaches: the socket's close detaches only those.
      const attached: SocketExtension[] = [];
      socket = new PeerSocket(native, transport, opts, new Uint8Array(kp.publicKey), attached, nativeIo);
      socket.#secretKey = new Uint8Array(kp.secretKey);
      for (const e of extensions) {
        e.attach(socket);
        attached.push(e);
      }
      return socket;
    } catch (e) {
      // An extension refused (installed twice, already used elsewhere):
      // nothing of this bind may outlive it.
      if (socket !== undefined) socket.destroy();
      else if (own) void bound.close().catch(() => {});
      throw e;
    }
  }

  /** The bound local address. */
  address(): AddressInfo {
    return this.#transport.address();
  }

  /** Live connections (dialed and accepted). */
  get connections(): PeerConnection[] {
    return this.#table.values();
  }

  /** Endpoint counters: datagrams in, dropped, accepted, refused (and why)… */
  stats(): SocketStats {
    return socketStats(this.native);
  }

  /**
   * Dials a peer by key. Resolves once the peer proved the key and accepted
   * us; rejects with IdentityMismatchError, ConnectionRefusedError,
   * HandshakeTimeoutError, AbortError… Bad arguments throw synchronously.
   */
  connect(target: DialTarget, opts: ConnectOptions = {}): Promise<PeerConnection> {
    if (typeof target === 'object' && target !== null && 'via' in target) {
      if (this.#introducedDialer === undefined) throw new InvalidArgumentError('connect({ publicKey, via }) needs the NAT traversal extension: bind with { extensions: [natTraversal()] }');
      return this.#introducedDialer(target, opts);
    }
    const d = checkConnect(target, opts, this.#handshakeTimeout);
    if (this.#closing !== undefined) return Promise.reject(new ClosedError('socket is closed'));
    if (d.signal?.aborted) return Promise.reject(new AbortError());
    return this.#dial(d.key, d.host, d.port, d.timeout, d.signal, false, { early: d.early, keepAlive: d.keepAlive });
  }

  /**
   * Installs what dials `{ publicKey, via }` targets (the NAT traversal
   * extension does). It must check its arguments synchronously, like connect.
   */
  setIntroducedDialer(dialer: IntroducedDialer): void {
    if (typeof dialer !== 'function') throw new InvalidArgumentError('dialer must be a function');
    this.#introducedDialer = dialer;
  }

  /** @internal Whether the socket is closing (extensions refuse new work then). */
  get _closing(): boolean {
    return this.#closing !== undefined;
  }

  /** The handshake time limit of `connect` (bind's `handshakeTimeout`), if set. */
  get handshakeTimeout(): number | undefined {
    return this.#handshakeTimeout;
  }

  /**
   * @internal Dials an address as it is, without DNS or family checks (an
   * address a transport decorator gave the peer, like the NAT path layer's).
   */
  _dialAddress(key: Uint8Array, address: string, port: number, opts: AddressDialOptions = {}): Promise<PeerConnection> {
    if (this.#closing !== undefined) return Promise.reject(new ClosedError('socket is closed'));
    return this.#dial(key, address, port, opts.timeout, opts.signal, true, { early: false, keepAlive: undefined, followPeer: opts.followPeer === true });
  }

  /** @internal Asks the accept hook about a peer before it dials us (introductions). */
  _acceptPeer(key: Uint8Array, addr: AddressInfo): boolean {
    return this.#closing === undefined && this.#admits(key, addr);
  }

  #admits(key: Uint8Array, addr: AddressInfo): boolean {
    if (this.#accept === undefined) return true;
    try {
      return this.#accept(key, addr) === true;
    } catch {
      return false;
    }
  }

  async #dial(
    key: Uint8Array | undefined,
    host: string,
    port: number,
    timeout: number | undefined,
    signal: AbortSignal | undefined,
    resolved = false,
    extra: DialExtras = { early: false, keepAlive: undefined },
  ): Promise<PeerConnection> {
    const address = resolved ? host : await resolveHost(host, this.#transport.address());
    if (signal?.aborted) throw new AbortError();
    if (this.#closing !== undefined) throw new ClosedError('socket is closed');
    const handle = openDial(this.native, key, address, port, timeout, extra.early && key !== undefined ? this.sessions.get(key) : undefined, extra);
    this.#kick();
    // Resumed with early data: usable now; the handshake confirms later.
    if (extra.early && key !== undefined && this.native.connInfo(handle).early) {
      const family = isIP(address) === 6 ? 'IPv6' : 'IPv4';
      const conn = new PeerConnection(this, handle, new Uint8Array(key), { address, port, family }, true, true);
      this.#table.add(conn);
      return conn;
    }
    return this.#table.dials.wait(handle, signal, () => {
      try {
        this.native.close(handle, 0, 'aborted');
        this.#kick();
      } catch {
        // Already gone.
      }
    });
  }

  /** @internal Signs a statement published under this socket's key (a DHT record); see keys.ts signStatement. */
  _signStatement(message: Uint8Array): Uint8Array {
    return signStatement(message, this.#secretKey!);
  }

  /** Sends a non-QUIC datagram from this socket's port (hole punching). */
  sendRaw(data: Uint8Array, port: number, address: string): Promise<void> {
    if (!(data instanceof Uint8Array)) throw new InvalidArgumentError('data must be a Uint8Array');
    if (data.length > 0 && (data[0]! & 0x40) !== 0) throw new InvalidArgumentError('raw datagrams must have the QUIC fixed bit (0x40) clear');
    checkPort(port, 'port', false);
    if (isIP(address) === 0) throw new InvalidArgumentError('address must be an IP address');
    if (this.#closing !== undefined) return Promise.reject(new ClosedError('socket is closed'));
    const copy = Buffer.from(data);
    return new Promise((resolve, reject) => {
      this.#transport.send(copy, port, address, (err) => (err ? reject(new SocketError(err.message, { cause: err })) : resolve()));
    });
  }

  /** Closes every connection gracefully (bounded wait), then the port. Idempotent. */
  close(): Promise<void> {
    if (this.#closing !== undefined) return this.#closing;
    this.#closing = (async () => {
      await this.#table.closeAll(() => this.#kick());
      this.#shutdown();
      await Promise.all([this.#transport.close(), this.#locals.close()]);
      this.emit('close');
      this.#resolveClosed();
    })();
    return this.#closing;
  }

  /** Closes at once: connections fail with `err` (or ClosedError). */
  destroy(err?: Error): void {
    if (this.#closedFlag) return;
    this.#table.destroyAll(err);
    // Let the close frames go out, then stop.
    this.#driver.flushNow();
    this.#shutdown();
    void Promise.all([this.#transport.close(), this.#locals.close()]).then(() => {
      this.emit('close');
      this.#resolveClosed();
    });
    this.#closing ??= this.closed;
  }

  #shutdown(): void {
    this.#closedFlag = true;
    for (const e of this.#extensions) {
      try {
        e.detach?.();
      } catch {
        // An extension's failure to stop must not keep the socket open.
      }
    }
    this.#driver.stop();
  }

  /** @internal */
  kick(): void {
    this.#kick();
  }

  /** @internal */
  connectionClosed(handle: number): void {
    this.#table.delete(handle);
  }

  /**
   * Claims channel `tag` (1..255; 0 is the application's) for a subsystem:
   * the peer's streams and datagrams on it go to `handler`, and the
   * subsystem sends on it with the connection's channel methods. Throws
   * InvalidArgumentError when another handler holds the tag.
   */
  claimChannel(tag: number, handler: ChannelHandler): void {
    this.#channels.claim(tag, handler);
  }

  /** Gives a claimed channel up; the peer's streams on it are refused from now on. */
  releaseChannel(tag: number, handler: ChannelHandler): void {
    this.#channels.release(tag, handler);
  }

  /**
   * Runs `fn` right before every flush of outgoing datagrams (to write what
   * was batched during the task). Returns a function that removes it.
   */
  onBeforeFlush(fn: () => void): () => void {
    if (typeof fn !== 'function') throw new InvalidArgumentError('fn must be a function');
    this.#beforeFlush = [...this.#beforeFlush, fn];
    return () => {
      this.#beforeFlush = this.#beforeFlush.filter((f) => f !== fn);
    };
  }

  /** @internal A peer stream on a claimed channel (see ConnectionHost). */
  channelStream(conn: PeerConnection, channel: number, stream: IncomingStream): boolean {
    const h = this.#channels.get(channel);
    if (h === undefined) return false;
    h.stream(conn, stream);
    return true;
  }

  /** @internal A peer datagram on a claimed channel. */
  channelDatagram(conn: PeerConnection, channel: number, data: Uint8Array): void {
    this.#channels.get(channel)?.datagram(conn, data);
  }

  /** @internal The address to report for a peer address (the transport's view; see DatagramTransport.displayAddress). */
  displayAddress(addr: AddressInfo): AddressInfo {
    return this.#transport.displayAddress?.(addr.address, addr.port) ?? addr;
  }

  #kick(): void {
    this.#driver.kick();
  }

  #onDatagram(data: Buffer, address: string, port: number): void {
    if (this.#closedFlag) return;
    // QUIC packets have the fixed bit set; anything else is for the raw hook.
    if (data.length === 0 || (data[0]! & 0x40) === 0) {
      if (this.listenerCount('raw') > 0) this.emit('raw', data, { address, port });
      return;
    }
    this.#driver.feed(data, address, port);
  }

  /** @internal Moves a dialed connection to a fresh local socket on `host`. */
  async _migrate(conn: PeerConnection, host: string | undefined, transport: DatagramTransport | undefined): Promise<AddressInfo> {
    if (this.#closing !== undefined) throw new ClosedError('socket is closed');
    const h = host ?? this.#transport.address().address;
    if (typeof h !== 'string' || isIP(h) === 0) throw new InvalidArgumentError(`host must be an IP address, got ${String(h)}`);
    let local: number;
    try {
      local = await this.#locals.add(h, transport);
      this.native.migrate(conn.handle, local);
    } catch (e) {
      throw errorFromNative(e);
    }
    this.#kick();
    return this.#locals.get(local)!.address();
  }
}
