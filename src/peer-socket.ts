/**
 * PeerSocket: one UDP port that both listens and dials. It drives the native
 * endpoint: datagram in → native recv → one flush per event-loop turn → one
 * timer for the earliest deadline → events drained in batches.
 */
import { EventEmitter } from 'node:events';
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';

import { PeerConnection, closeInfoFromEvent, hexToKey, type ConnectionHost } from './connection';
import { ChannelRegistry, type ChannelHandler } from './channels';
import type { IncomingStream } from './stream';
import {
  AbortError,
  ClosedError,
  InvalidArgumentError,
  PeersockError,
  SocketError,
  errorFromNative,
} from './errors';
import { assertKey, keyPair as makeKeyPair, parseDialString } from './keys';
import { createNativeEndpoint, type NativeEndpoint, type NativeEvent } from './native';
import { UdpTransport, type AddressInfo, type DatagramTransport } from './transport';
import { MemorySessionStore, type SessionStore } from './sessions';
import { LocalSockets } from './local-sockets';
import {
  checkMs,
  checkPort,
  nativeOptions,
  type AcceptHook,
  type BindOptions,
  type ConnectOptions,
  type DialTarget,
  type IntroducedDialer,
  type SocketExtension,
} from './options';

export type { AcceptHook, BindOptions, ConnectOptions, DialTarget, IntroducedDialer, IntroducedTarget, SocketExtension } from './options';

/** Options of `_dialAddress` (dials made by extensions). */
export interface AddressDialOptions {
  timeout?: number | undefined;
  signal?: AbortSignal | undefined;
  /** Follow the peer to addresses it sends authentic packets from ('peerAddress' reports them). */
  followPeer?: boolean;
}

/** Endpoint counters; each only grows. */
export interface SocketStats {
  connections: number;
  datagramsIn: number;
  /** Datagrams dropped without an answer (garbage, unknown connection, bad retry token). */
  dropped: number;
  /** Incoming handshakes started. */
  accepted: number;
  /** Incoming handshakes refused, all reasons (the sum of `refusals`); each refusal is sent to the dialer. */
  refused: number;
  /** Refusals by reason, with the QUIC error code the dialer receives. */
  refusals: {
    /** No common ALPN (0x178 no_application_protocol). */
    alpn: number;
    /** No Ed25519 signature algorithm offered (0x128 handshake_failure). */
    signature: number;
    /** No client certificate (0x174 certificate_required). */
    noCertificate: number;
    /** Not one Ed25519 certificate, or signed by another key (0x12a bad_certificate, 0x133 decrypt_error). */
    badCertificate: number;
    /** The accept hook said no, or the socket was closing (0x2 CONNECTION_REFUSED). */
    application: number;
    /** `maxConnections` reached (0x2 CONNECTION_REFUSED, "server busy"). */
    busy: number;
    /** `maxPendingHandshakes` reached (0x2 CONNECTION_REFUSED). */
    pending: number;
    /** Any other handshake error of ours (a protocol violation, another TLS alert). */
    other: number;
  };
  resetsSent: number;
}

interface PendingDial {
  resolve(conn: PeerConnection): void;
  reject(err: PeersockError): void;
  cleanup(): void;
}

/** A send batch buffer, reused once every datagram in it has been sent. */
interface Batch {
  buf: Buffer;
  inFlight: number;
}

const BATCH_DATAGRAMS = 64;
/** `flush`'s meta: numbers before the per-datagram pairs, flag bits, "no timer". */
const META_HEAD = 3;
const FLUSH_EVENTS = 1;
const FLUSH_ALL_SENT = 2;
const NO_TIMEOUT = 0xffffffff;
/** `pollEvents` output: numbers per event, events per call, kind names by number. */
const EV_SLOTS = 6;
const EV_BATCH = 256;
const EV_DETAIL = 5;
const EV_KINDS = ['', 'readable', 'writable', 'stopped', 'datagram'];
/**
 * Datagrams sent per drain before yielding to the event loop: a whole
 * congestion window can be thousands of packets, and sending them in one go
 * would keep incoming packets (small requests, ACKs) waiting behind it.
 * 64 (one batch) rather than 256: a request's p50 while 16 MiB messages
 * stream fell from 0.78-0.88 ms to 0.49-0.69 ms (idle 0.22-0.30 ms), bulk
 * throughput the same within noise (3 interleaved runs each).
 */
const MAX_PER_DRAIN = 64;

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
  readonly #conns = new Map<number, PeerConnection>();
  readonly #dials = new Map<number, PendingDial>();
  readonly #addrCache = new Map<number, [string, number, DatagramTransport]>();
  #addrGeneration = 0;
  readonly #freeBatches: Batch[] = [];
  readonly #meta = new Uint32Array(META_HEAD + 2 * BATCH_DATAGRAMS);
  /** What the last flush said: FLUSH_* flags, and µs until the timer is due. */
  #flushFlags = 0;
  #flushTimeout = NO_TIMEOUT;
  readonly #dgramBuf = Buffer.allocUnsafe(256 * 1024);
  readonly #evSlots = new Float64Array(EV_SLOTS * EV_BATCH);
  /** The one object common events are handed on in (never kept by callees). */
  readonly #ev: NativeEvent = { kind: '', conn: 0, stream: 0, code: 0, offset: 0, length: 0 };
  #polling = false;
  readonly #maxPayload: number;
  #flushScheduled = false;
  #timer: NodeJS.Timeout | undefined;
  #timerAt = Infinity;
  #closing: Promise<void> | undefined;
  readonly #channels = new ChannelRegistry();
  /** Run before every flush (subsystems batching writes, like the dispatch layer's lanes). */
  #beforeFlush: (() => void)[] = [];
  #closedFlag = false;
  #resolveClosed!: () => void;
  /** A flush is queued for the end of the current task (after its microtasks). */
  #flushDeferred = false;
  readonly #onImmediate = (): void => {
    this.#flushScheduled = false;
    this.#turn();
  };
  readonly #onMicrotask = (): void => {
    process.nextTick(this.#onTick);
  };
  readonly #onTick = (): void => this.#process();
  readonly #onTimer = (): void => {
    this.#timer = undefined;
    this.#timerAt = Infinity;
    if (this.#closedFlag) return;
    this.native.onTimeout();
    this.#turn();
  };

  private constructor(native: NativeEndpoint, transport: DatagramTransport, opts: BindOptions, publicKey: Uint8Array, extensions: SocketExtension[]) {
    super();
    this.native = native;
    this.#transport = transport;
    this.#accept = opts.accept;
    this.#handshakeTimeout = opts.handshakeTimeout;
    this.publicKey = publicKey;
    this.#maxPayload = native.maxUdpPayload();
    this.closed = new Promise((resolve) => {
      this.#resolveClosed = resolve;
    });
    this.#extensions = extensions;
    this.sessions = opts.sessionStore ?? new MemorySessionStore();
    this.#locals = new LocalSockets(native, (data, address, port, local) => this.#onLocalDatagram(data, address, port, local));
    transport.onDatagram((data, address, port) => this.#onDatagram(data, address, port));
    transport.onError((err) => {
      if (this.listenerCount('error') > 0) this.emit('error', new SocketError(err.message, { cause: err }));
    });
    transport.onPathChange?.((address, port) => this.#pathChanged(address, port));
  }

  /** Binds a socket that can accept and dial at once. */
  static override async bind(opts: BindOptions = {}): Promise<PeerSocket> {
    if (opts === null || typeof opts !== 'object') throw new InvalidArgumentError('options must be an object');
    const kp = opts.keyPair ?? makeKeyPair();
    assertKey(kp.publicKey, 'keyPair.publicKey');
    if (!(kp.secretKey instanceof Uint8Array) || kp.secretKey.length !== 64) throw new InvalidArgumentError('keyPair.secretKey must be a 64-byte Uint8Array');
    if (opts.accept !== undefined && typeof opts.accept !== 'function') throw new InvalidArgumentError('accept must be a function');
    const host = opts.host ?? '0.0.0.0';
    if (typeof host !== 'string' || isIP(host) === 0) throw new InvalidArgumentError(`host must be an IP address, got ${String(host)}`);
    checkPort(opts.port ?? 0, 'port', true);
    const store = opts.sessionStore;
    if (store !== undefined && (store === null || typeof store.get !== 'function' || typeof store.set !== 'function' || typeof store.delete !== 'function')) {
      throw new InvalidArgumentError('sessionStore must have get, set and delete');
    }
    const extensions = opts.extensions ?? [];
    if (!Array.isArray(extensions) || extensions.some((e) => e === null || typeof e !== 'object' || typeof e.attach !== 'function')) {
      throw new InvalidArgumentError('extensions must be an array of extensions (objects with attach())');
    }
    const nopts = nativeOptions(opts);
    let native: NativeEndpoint;
    try {
      native = createNativeEndpoint(kp.secretKey, host, 0, nopts);
    } catch (e) {
      throw errorFromNative(e);
    }
    let transport = opts.transport ?? (await UdpTransport.bind({ host, port: opts.port ?? 0 }));
    for (const e of extensions) if (e.wrapTransport !== undefined) transport = e.wrapTransport(transport);
    const a = transport.address();
    native.setLocalAddress(a.address, a.port);
    const socket = new PeerSocket(native, transport, opts, new Uint8Array(kp.publicKey), [...extensions]);
    for (const e of extensions) e.attach(socket);
    return socket;
  }

  /** The bound local address. */
  address(): AddressInfo {
    return this.#transport.address();
  }

  /** Live connections (dialed and accepted). */
  get connections(): PeerConnection[] {
    return [...this.#conns.values()];
  }

  /** Endpoint counters: datagrams in, dropped, accepted, refused (and why)… */
  stats(): SocketStats {
    const s = this.native.stats();
    return {
      connections: s.connections,
      datagramsIn: s.datagramsIn,
      dropped: s.dropped,
      accepted: s.accepted,
      refused: s.refused,
      refusals: {
        alpn: s.refusedAlpn,
        signature: s.refusedSignature,
        noCertificate: s.refusedNoCert,
        badCertificate: s.refusedBadCert,
        application: s.refusedByApp,
        busy: s.refusedBusy,
        pending: s.refusedPending,
        other: s.refusedOther,
      },
      resetsSent: s.resetsSent,
    };
  }

  /**
   * Dials a peer by key. Resolves once the peer proved the key and accepted
   * us; rejects with IdentityMismatchError, ConnectionRefusedError,
   * HandshakeTimeoutError, AbortError… Bad arguments throw synchronously.
   */
  connect(target: DialTarget, opts: ConnectOptions = {}): Promise<PeerConnection> {
    let key: Uint8Array;
    let host: string;
    let port: number;
    if (typeof target === 'object' && target !== null && 'via' in target) {
      if (this.#introducedDialer === undefined) throw new InvalidArgumentError('connect({ publicKey, via }) needs the NAT traversal extension: bind with { extensions: [natTraversal()] }');
      return this.#introducedDialer(target, opts);
    }
    if (typeof target === 'string') {
      ({ publicKey: key, host, port } = parseDialString(target));
    } else if (target !== null && typeof target === 'object') {
      key = assertKey(target.publicKey, 'publicKey');
      if (typeof target.host !== 'string' || target.host.length === 0) throw new InvalidArgumentError('host must be a non-empty string');
      host = target.host;
      port = checkPort(target.port, 'port', false);
    } else {
      throw new InvalidArgumentError('target must be a dial string or { publicKey, host, port }');
    }
    const timeout = checkMs(opts.timeout, 'timeout') ?? this.#handshakeTimeout;
    const signal = opts.signal;
    if (signal !== undefined && !(signal instanceof AbortSignal)) throw new InvalidArgumentError('signal must be an AbortSignal');
    if (this.#closing !== undefined) return Promise.reject(new ClosedError('socket is closed'));
    if (signal?.aborted) return Promise.reject(new AbortError());
    const early = opts.earlyData === true;
    if (opts.earlyData !== undefined && typeof opts.earlyData !== 'boolean') throw new InvalidArgumentError('earlyData must be a boolean');
    const keepAlive = opts.keepAlive === false || opts.keepAlive === 0 ? 0 : checkMs(opts.keepAlive, 'keepAlive');
    return this.#dial(key, host, port, timeout, signal, false, { early, keepAlive });
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
    if (this.#closing !== undefined) return false;
    if (this.#accept === undefined) return true;
    try {
      return this.#accept(key, addr) === true;
    } catch {
      return false;
    }
  }

  async #dial(
    key: Uint8Array,
    host: string,
    port: number,
    timeout: number | undefined,
    signal: AbortSignal | undefined,
    resolved = false,
    extra: { early: boolean; keepAlive: number | undefined; followPeer?: boolean } = { early: false, keepAlive: undefined },
  ): Promise<PeerConnection> {
    const address = resolved ? host : await this.#resolve(host);
    if (signal?.aborted) throw new AbortError();
    if (this.#closing !== undefined) throw new ClosedError('socket is closed');
    let handle: number;
    const ticket = extra.early ? this.sessions.get(key) : undefined;
    // A peer whose packets reach the core as from an address a transport
    // gave it: the core reports authentic ones from elsewhere ('peerAddress').
    const followPeer = extra.followPeer === true;
    try {
      handle =
        extra.early || extra.keepAlive !== undefined || followPeer
          ? this.native.connectWith(key, address, port, {
              handshakeTimeoutMs: timeout,
              earlyData: extra.early,
              session: ticket === undefined ? undefined : Buffer.from(ticket).toString('hex'),
              keepAliveMs: extra.keepAlive,
              followPeer,
            })
          : this.native.connect(key, address, port, timeout);
    } catch (e) {
      throw errorFromNative(e);
    }
    this.#kick();
    // Resumed with early data: usable now; the handshake confirms later.
    if (extra.early && this.native.connInfo(handle).early) {
      const family = isIP(address) === 6 ? 'IPv6' : 'IPv4';
      const conn = new PeerConnection(this, handle, new Uint8Array(key), { address, port, family }, true, true);
      this.#conns.set(handle, conn);
      return conn;
    }
    return new Promise<PeerConnection>((resolve, reject) => {
      const onAbort = (): void => {
        const d = this.#dials.get(handle);
        if (d === undefined) return;
        this.#dials.delete(handle);
        d.cleanup();
        try {
          this.native.close(handle, 0, 'aborted');
          this.#kick();
        } catch {
          // Already gone.
        }
        reject(new AbortError());
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#dials.set(handle, {
        resolve,
        reject,
        cleanup: () => signal?.removeEventListener('abort', onAbort),
      });
    });
  }

  async #resolve(host: string): Promise<string> {
    const bare = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
    const localFamily = this.#transport.address().family;
    if (isIP(bare) !== 0) {
      if (isIP(bare) === 6 && localFamily === 'IPv4') throw new InvalidArgumentError(`cannot dial IPv6 ${bare} from an IPv4 socket`);
      if (isIP(bare) === 4 && localFamily === 'IPv6' && this.#transport.address().address !== '::') {
        throw new InvalidArgumentError(`cannot dial IPv4 ${bare} from an IPv6-only socket`);
      }
      return localFamily === 'IPv6' && isIP(bare) === 4 ? `::ffff:${bare}` : bare;
    }
    try {
      const r = await lookup(bare, { family: localFamily === 'IPv6' ? 6 : 4 });
      return r.address;
    } catch (e) {
      throw new InvalidArgumentError(`cannot resolve host ${JSON.stringify(host)}`, { cause: e });
    }
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
      for (const [h, d] of this.#dials) {
        this.#dials.delete(h);
        d.cleanup();
        d.reject(new ClosedError('socket closed while dialing'));
        try {
          this.native.close(h, 0, 'socket closed');
        } catch {
          // Already gone.
        }
      }
      const conns = [...this.#conns.values()];
      for (const c of conns) void c.close({ code: 0, reason: 'socket closed' });
      this.#kick();
      if (conns.length > 0) {
        let timer: NodeJS.Timeout | undefined;
        const limit = new Promise<void>((resolve) => {
          timer = setTimeout(resolve, 1000);
        });
        await Promise.race([Promise.all(conns.map((c) => c.closed)), limit]);
        clearTimeout(timer);
        for (const c of this.#conns.values()) c.destroy();
      }
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
    for (const c of [...this.#conns.values()]) c.destroy(err);
    for (const [, d] of this.#dials) {
      d.cleanup();
      d.reject(new ClosedError('socket destroyed'));
    }
    this.#dials.clear();
    // Let the close frames go out, then stop.
    this.#drain();
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
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** @internal */
  kick(): void {
    this.#kick();
  }

  /** @internal */
  connectionClosed(handle: number): void {
    this.#conns.delete(handle);
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

  /** The transport says where `address:port` leads changed: its connections report 'path'. */
  #pathChanged(address: string, port: number): void {
    for (const c of this.#conns.values()) {
      const p = c._pathAddress;
      if (p.port === port && p.address === address && c.closeInfo === undefined) c.emit('path', c.remoteAddress);
    }
  }

  /**
   * Something was queued for sending: flush once the current task and its
   * microtasks are done, so everything queued in this task (a reply made by
   * an async handler, the next request after an awaited reply) leaves in
   * as few packets as possible, together with the pending ACKs.
   */
  #kick(): void {
    if (this.#flushDeferred || this.#closedFlag) return;
    this.#flushDeferred = true;
    // The microtask runs after the ones already queued; its nextTick runs
    // once the whole microtask queue (and what it adds) is empty.
    queueMicrotask(this.#onMicrotask);
  }

  #onDatagram(data: Buffer, address: string, port: number): void {
    if (this.#closedFlag) return;
    // QUIC packets have the fixed bit set; anything else is for the raw hook.
    if (data.length === 0 || (data[0]! & 0x40) === 0) {
      if (this.listenerCount('raw') > 0) this.emit('raw', data, { address, port });
      return;
    }
    this._feed(data, address, port);
  }

  /** @internal Feeds one QUIC datagram to the core and schedules a turn. */
  #onLocalDatagram(data: Buffer, address: string, port: number, local: number): void {
    if (this.#closedFlag || data.length === 0 || (data[0]! & 0x40) === 0) return;
    try {
      this.native.recvOn(data, address, port, local);
    } catch {
      return;
    }
    this.#scheduleTurn();
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

  _feed(data: Uint8Array, address: string, port: number): void {
    try {
      this.native.recv(data, address, port);
    } catch {
      // An address the core cannot represent (e.g. scoped IPv6): drop.
      return;
    }
    this.#scheduleTurn();
  }

  /**
   * Received datagrams are batched per event-loop turn: all that arrive in
   * one poll phase (on any local socket) are handled by one turn.
   */
  #scheduleTurn(): void {
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    setImmediate(this.#onImmediate);
  }

  /** Handles pending events, then flushes at the end of the task. */
  #turn(): void {
    if (this.#closedFlag) return;
    this.#poll();
    this.#kick();
  }

  /** The end of a task: flush, handle what that decided, repeat; re-arm the timer. */
  #process(): void {
    if (this.#closedFlag) {
      this.#flushDeferred = false;
      return;
    }
    // Kicks while this loop runs (lane writes in #drain, handlers) are
    // covered by the loop itself, so the flag stays set until it ends.
    // After a complete drain only handling events can queue more to send,
    // and the last flush says whether there are any (and when the timer is
    // due): the usual task is one flush and no further native call.
    let quiet = false;
    let more = false;
    for (let round = 0; round < 16 && !quiet && !more; round++) {
      this.#drain();
      const flags = this.#flushFlags;
      more = (flags & FLUSH_ALL_SENT) === 0;
      // Sending can itself decide things (a close frame out means closed).
      const events = (flags & FLUSH_EVENTS) !== 0 ? this.#poll() : 0;
      quiet = !more && events === 0;
    }
    this.#flushDeferred = false;
    if (more) {
      // Let received datagrams in before sending the rest of the window.
      if (!this.#flushScheduled) {
        this.#flushScheduled = true;
        setImmediate(this.#onImmediate);
      }
    } else if (!quiet) this.#kick();
    if (quiet) {
      const us = this.#flushTimeout;
      this.#armAt(us === NO_TIMEOUT ? undefined : us / 1000);
    } else this.#arm();
  }

  /** Writes every pending datagram to the transport; returns how many. */
  #drain(): number {
    for (const fn of this.#beforeFlush) fn();
    let total = 0;
    for (;;) {
      const batch = this.#freeBatches.pop() ?? { buf: Buffer.allocUnsafe(this.#maxPayload * BATCH_DATAGRAMS), inFlight: 0 };
      const meta = this.#meta;
      const count = this.native.flush(batch.buf, meta);
      const flags = meta[1]!;
      this.#flushFlags = flags;
      this.#flushTimeout = meta[2]!;
      if (count === 0) {
        this.#freeBatches.push(batch);
        return total;
      }
      total += count;
      if (meta[0] !== this.#addrGeneration) {
        this.#addrGeneration = meta[0]!;
        this.#addrCache.clear();
      }
      let off = 0;
      batch.inFlight = count;
      const done = (): void => {
        if (--batch.inFlight === 0 && this.#freeBatches.length < 8) this.#freeBatches.push(batch);
      };
      for (let i = 0; i < count; i++) {
        const len = meta[META_HEAD + 2 * i]!;
        const id = meta[META_HEAD + 1 + 2 * i]!;
        let dest = this.#addrCache.get(id);
        if (dest === undefined) {
          const a = this.native.address(id);
          if (a === null || a === undefined) {
            done();
            off += len;
            continue;
          }
          // a[3]: the local socket to send from (0: the main one; see migrate).
          dest = [a[0], a[1], this.#locals.get(a[3]) ?? this.#transport];
          this.#addrCache.set(id, dest);
        }
        const [address, port, from] = dest;
        from.send(batch.buf.subarray(off, off + len), port, address, (err) => {
          if (err) this.#onSendError(err, address, port);
          done();
        });
        off += len;
      }
      if ((flags & FLUSH_ALL_SENT) !== 0 || total >= MAX_PER_DRAIN) return total;
    }
  }

  /**
   * A failed send (EMSGSIZE, ENETUNREACH, EINVAL…) is a lost packet: QUIC
   * retransmits or times out. It is reported as 'error' on the connections
   * to that address only (when they listen), never thrown.
   */
  #onSendError(err: Error, address: string, port: number): void {
    const wrapped = new SocketError(`send to ${address}:${port} failed: ${err.message}`, { cause: err });
    for (const c of this.#conns.values()) {
      const r = c._pathAddress;
      if (r.port === port && r.address === address && c.listenerCount('error') > 0) c.emit('error', wrapped);
    }
  }

  #arm(): void {
    this.#armAt(this.native.timeout() ?? undefined);
  }

  /** Arms the one timer for `t` ms from now (none when undefined). */
  #armAt(t: number | undefined): void {
    // Lazy: a timer already due no later than needed stays armed and, if
    // it fires early, finds nothing due (onTimeout is harmless then) and
    // re-arms. Only an earlier deadline re-arms now. Deadlines move with
    // every packet (loss-probe timer armed by a send, dropped by the ACK),
    // and clearing and setting a timer per packet costs more than the
    // occasional early wake-up.
    if (t === undefined) return;
    const at = Date.now() + t;
    if (this.#timer !== undefined) {
      if (this.#timerAt <= at + 1) return;
      clearTimeout(this.#timer);
    }
    this.#timerAt = at;
    this.#timer = setTimeout(this.#onTimer, Math.max(0, Math.ceil(t)));
  }

  /**
   * Takes the core's pending events and acts on them; returns how many.
   * Common events arrive as numbers (see the binding's `pollEvents`) and
   * are handed on in one reused object; the rare ones as full objects.
   */
  #poll(): number {
    if (this.#polling) return 0; // never re-entered: the slots would be overwritten
    this.#polling = true;
    let total = 0;
    try {
      const slots = this.#evSlots;
      for (;;) {
        const n = this.native.pollEvents(this.#dgramBuf, slots);
        for (let i = 0; i < n; i++) {
          const o = i * EV_SLOTS;
          const kind = slots[o]!;
          if (kind === EV_DETAIL) {
            const detail = this.native.eventDetail(slots[o + 4]!);
            if (detail !== null && detail !== undefined) this.#dispatch(detail);
            continue;
          }
          const ev = this.#ev;
          ev.kind = EV_KINDS[kind] ?? 'unknown';
          ev.conn = slots[o + 1]!;
          ev.stream = slots[o + 2]!;
          ev.code = slots[o + 3]!;
          ev.offset = slots[o + 4]!;
          ev.length = slots[o + 5]!;
          this.#conns.get(ev.conn)?._onEvent(ev, this.#dgramBuf);
        }
        total += n;
        if (n < EV_BATCH) return total;
      }
    } finally {
      this.#polling = false;
    }
  }

  #dispatch(ev: NativeEvent): void {
    switch (ev.kind) {
      case 'incoming':
        this.#onIncoming(ev);
        return;
      case 'session':
        try {
          if (ev.remoteKey !== undefined && ev.session !== undefined) this.sessions.set(hexToKey(ev.remoteKey), new Uint8Array(Buffer.from(ev.session, 'hex')));
        } catch {
          // A store that refuses it: the next dial is a full handshake.
        }
        return;
      case 'connected': {
        const d = this.#dials.get(ev.conn);
        if (d === undefined) {
          this.#conns.get(ev.conn)?._handshakeDone();
          return;
        }
        this.#dials.delete(ev.conn);
        d.cleanup();
        const conn = this.#newConnection(ev, true);
        d.resolve(conn);
        return;
      }
      case 'closed': {
        const d = this.#dials.get(ev.conn);
        if (d !== undefined) {
          this.#dials.delete(ev.conn);
          d.cleanup();
          const info = closeInfoFromEvent(ev);
          d.reject(info.error ?? new ClosedError(`connection closed during handshake (code ${info.code})`));
          return;
        }
        break;
      }
      default:
        break;
    }
    this.#conns.get(ev.conn)?._onEvent(ev, this.#dgramBuf);
  }

  #onIncoming(ev: NativeEvent): void {
    const key = hexToKey(ev.remoteKey ?? '');
    const addr = this.displayAddress({ address: ev.address ?? '', port: ev.port ?? 0, family: ev.family === 6 ? 'IPv6' : 'IPv4' });
    let ok = true;
    if (this.#accept !== undefined) {
      try {
        ok = this.#accept(key, addr) === true;
      } catch {
        ok = false;
      }
    }
    if (!ok || this.#closing !== undefined) {
      try {
        this.native.refuse(ev.conn, this.#closing !== undefined ? 'socket closing' : 'refused by accept hook');
      } catch {
        // Already gone.
      }
      return;
    }
    try {
      this.native.accept(ev.conn);
    } catch {
      return;
    }
    const conn = this.#newConnection(ev, false);
    this.emit('connection', conn);
  }

  #newConnection(ev: NativeEvent, isClient: boolean): PeerConnection {
    const addr: AddressInfo = { address: ev.address ?? '', port: ev.port ?? 0, family: ev.family === 6 ? 'IPv6' : 'IPv4' };
    const conn = new PeerConnection(this, ev.conn, hexToKey(ev.remoteKey ?? ''), addr, isClient);
    this.#conns.set(ev.conn, conn);
    return conn;
  }
}
