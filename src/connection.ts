/**
 * PeerConnection: one authenticated QUIC connection, dialed or accepted.
 * Its `remotePublicKey` is proven by the handshake on both sides.
 */
import { EventEmitter } from 'node:events';

import type { CloseOptions, ConnectionHost, ConnectionStats, MigrateOptions } from './connection-host';
import { ClosedError, InvalidArgumentError, PeersockError, closeError, errorFromNative, type CloseInfo } from './errors';
import type { ConnectionEvents } from './endpoint-driver';
import type { NativeEndpoint } from './native';
import type { ReceivingStream, StreamEnd } from './receive';
import { CHANNEL_APP } from './channels';
import { PeerReadStream, PeerStream, type IncomingStream, type StreamHost, type StreamOptions } from './stream';
import type { AddressInfo } from './transport';

export type { CloseInfo };

export type { CloseOptions, ConnectionHost, ConnectionStats, MigrateOptions } from './connection-host';


/**
 * One authenticated QUIC connection. Events: 'stream' (a peer's bidirectional
 * stream, a PeerStream), 'unidirectionalStream' (a peer's send-only stream, a
 * PeerReadStream), 'datagram', 'path', 'close', 'error'; on the dialing side
 * of a follow-peer dial also 'peerAddress' (AddressInfo: the core took the
 * peer's authentic packets from there; whoever dialed decides to follow).
 */
export class PeerConnection extends EventEmitter implements StreamHost, ConnectionEvents {
  /** The peer's Ed25519 public key, proven by the handshake. */
  readonly remotePublicKey: Uint8Array;
  /** Whether this side dialed. */
  readonly isClient: boolean;
  /** Resolves with how the connection ended; never rejects. */
  readonly closed: Promise<CloseInfo>;
  /** @internal Native handle. */
  readonly handle: number;
  #remoteAddress: AddressInfo;
  readonly #host: ConnectionHost;
  readonly #streams = new Map<number, StreamEnd>();
  /** Lowest peer stream ID of each kind not yet opened (bidi, uni). */
  #nextRemoteBidi: number;
  #nextRemoteUni: number;
  #closeInfo: CloseInfo | undefined;
  #resolveClosed!: (info: CloseInfo) => void;
  #closing = false;
  /**
   * Resolves once the handshake is complete and the peer accepted us; at
   * once except for `connect({ earlyData: true })`, where it rejects with
   * the connection's error if the handshake fails (e.g. the wrong key).
   */
  readonly handshake: Promise<void>;
  #early: boolean;
  #handshakeSettle: ((err?: PeersockError) => void) | undefined;
  #resumed = false;

  /** @internal Created by PeerSocket. */
  constructor(host: ConnectionHost, handle: number, remotePublicKey: Uint8Array, remoteAddress: AddressInfo, isClient: boolean, early = false) {
    super();
    this.#early = early;
    this.handshake = early
      ? new Promise<void>((resolve, reject) => {
          this.#handshakeSettle = (err) => (err === undefined ? resolve() : reject(err));
        })
      : Promise.resolve();
    // Nobody has to await it: a failure also closes the connection.
    this.handshake.catch(() => {});
    this.#host = host;
    this.handle = handle;
    this.remotePublicKey = remotePublicKey;
    this.#remoteAddress = { ...remoteAddress };
    this.isClient = isClient;
    // Peer-initiated IDs: the server's are odd (1, 3 then 5…), the client's even.
    this.#nextRemoteBidi = isClient ? 1 : 0;
    // The server's first unidirectional stream (3) is peersock's control stream.
    this.#nextRemoteUni = isClient ? 7 : 2;
    this.closed = new Promise((resolve) => {
      this.#resolveClosed = resolve;
    });
  }

  /**
   * Where the peer's packets come from now (changes with NAT rebinding). For
   * a peer reached through an introduction: its real address once the path
   * is direct, a virtual address in 100::/64 while it is relayed.
   */
  get remoteAddress(): AddressInfo {
    const a = { ...this.#remoteAddress };
    return this.#host.displayAddress?.(a) ?? a;
  }

  /**
   * @internal The peer address the core uses (virtual for introduced peers).
   * Not a copy (the relay reads it per forwarded packet): never modify it.
   */
  get _pathAddress(): Readonly<AddressInfo> {
    return this.#remoteAddress;
  }

  /** @internal */
  get native(): NativeEndpoint {
    return this.#host.native;
  }

  /** @internal */
  get scratch(): Buffer {
    return this.#host.scratch;
  }

  /** @internal */
  kick(): void {
    this.#host.kick();
  }

  /** @internal */
  streamClosed(id: number): void {
    this.#streams.delete(id);
  }

  /** @internal Streams this connection still tracks (tests check nothing leaks). */
  get _streamCount(): number {
    return this.#streams.size;
  }

  /** How it ended, once it has. */
  get closeInfo(): CloseInfo | undefined {
    return this.#closeInfo;
  }

  /**
   * True while a 0-RTT dial (`earlyData: true`) waits for its handshake:
   * what is sent now is early data, which the peer may receive twice.
   */
  get early(): boolean {
    return this.#early;
  }

  /** Whether the handshake resumed an earlier session (a session ticket). */
  get resumed(): boolean {
    if (this.#closeInfo === undefined) {
      try {
        this.#resumed = this.#host.native.connInfo(this.handle).resumed;
      } catch {
        // Gone natively: keep the last value.
      }
    }
    return this.#resumed;
  }

  /** The local address this connection sends from (changes with `migrate()`). */
  get localAddress(): AddressInfo {
    const i = this.#host.native.connInfo(this.handle);
    return { address: i.localAddress, port: i.localPort, family: i.localAddress.includes(':') ? 'IPv6' : 'IPv4' };
  }

  /**
   * Dialing side: moves the connection to a new local UDP socket (a fresh
   * port on `host`, default the socket's address). The peer validates the
   * new path and sees the new address; streams keep flowing. Resolves with
   * the new local address.
   */
  async migrate(opts: MigrateOptions = {}): Promise<AddressInfo> {
    if (opts === null || typeof opts !== 'object') throw new InvalidArgumentError('options must be an object');
    if (!this.isClient) throw new InvalidArgumentError('only the dialing side can migrate');
    this.#assertOpen();
    if (this.#host._migrate === undefined) throw new InvalidArgumentError('this socket cannot migrate');
    return this.#host._migrate(this, opts.host, opts.transport);
  }

  /** @internal The 0-RTT dial's handshake completed. */
  _handshakeDone(): void {
    if (!this.#early) return;
    this.#early = false;
    this.#resumed = this.resumed;
    this.#handshakeSettle?.();
    this.emit('handshake');
  }

  /** Opens a stream; bidirectional unless `unidirectional` is set. */
  openStream(opts: StreamOptions = {}): PeerStream {
    return this._openChannelStream(CHANNEL_APP, opts.unidirectional === true);
  }

  /** @internal Opens a stream on a channel (a subsystem's claimed tag; see PeerSocket.claimChannel). */
  _openChannelStream(channel: number, unidirectional: boolean): PeerStream {
    this.#assertOpen();
    let id: number;
    try {
      id = this.#host.native.openStream(this.handle, !unidirectional);
    } catch (e) {
      throw errorFromNative(e);
    }
    const s = new PeerStream(this, id, true, channel);
    this.#streams.set(id, s);
    this.#host.kick();
    return s;
  }

  /** Largest datagram payload that fits now (0 if the peer accepts none). */
  get maxDatagramSize(): number {
    if (this.#closeInfo !== undefined) return 0;
    try {
      // One byte goes to the channel tag.
      return Math.max(0, this.#host.native.maxDatagramSize(this.handle) - 1);
    } catch {
      return 0;
    }
  }

  /**
   * Sends an unreliable datagram. Returns false if it was dropped (the send
   * queue was full, or the connection is ending); throws ClosedError once it
   * is closed and DatagramTooLargeError if it cannot fit.
   */
  sendDatagram(data: Uint8Array): boolean {
    if (!(data instanceof Uint8Array)) throw new InvalidArgumentError('datagram must be a Uint8Array');
    return this._sendChannelDatagram(CHANNEL_APP, data);
  }

  /** @internal Sends a datagram tagged with a channel. */
  _sendChannelDatagram(channel: number, data: Uint8Array): boolean {
    this.#assertOpen();
    try {
      const queued = this.#host.native.sendDatagram(this.handle, channel, data);
      this.#host.kick();
      return queued;
    } catch (e) {
      const err = errorFromNative(e, { maxDatagramSize: this.maxDatagramSize });
      // Closed natively, its 'closed' event still on its way (a datagram
      // handler answering within the batch that ends the connection): the
      // datagram is dropped, as on a full queue, rather than thrown out of
      // the handler into the event loop.
      if (err instanceof ClosedError) return false;
      throw err;
    }
  }

  /** Round-trip time, congestion window and packet counters. */
  stats(): ConnectionStats {
    this.#assertOpen();
    const i = this.#host.native.connInfo(this.handle);
    return {
      rttMs: i.rttMs,
      cwnd: i.cwnd,
      pmtu: i.pmtu,
      sentPackets: i.sentPackets,
      recvPackets: i.recvPackets,
      lostPackets: i.lostPackets,
      sentBytes: i.sentBytes,
      recvBytes: i.recvBytes,
    };
  }

  /** Gracefully closes with a code and reason the peer receives. Idempotent. */
  close(opts: CloseOptions = {}): Promise<CloseInfo> {
    const code = opts.code ?? 0;
    const reason = opts.reason ?? '';
    if (!Number.isInteger(code) || code < 0 || code > Number.MAX_SAFE_INTEGER) {
      throw new InvalidArgumentError('close code must be a non-negative integer');
    }
    if (typeof reason !== 'string') throw new InvalidArgumentError('close reason must be a string');
    if (!this.#closing && this.#closeInfo === undefined) {
      this.#closing = true;
      try {
        this.#host.native.close(this.handle, code, reason);
        this.#host.kick();
      } catch {
        // Already gone natively; the closed event is on its way.
      }
    }
    return this.closed;
  }

  /** Abruptly ends the connection; streams fail with `err` (or ClosedError) at once. */
  destroy(err?: Error): void {
    if (this.#closeInfo !== undefined) return;
    const raw = (err as { appCode?: unknown } | undefined)?.appCode;
    const code = typeof raw === 'number' && Number.isInteger(raw) && raw >= 0 ? raw : err ? 1 : 0;
    try {
      this.#host.native.close(this.handle, code, err ? err.message.slice(0, 200) : 'destroyed');
      this.#host.kick();
    } catch {
      // Already gone natively.
    }
    const error = err === undefined ? undefined : err instanceof PeersockError ? err : errorFromNative(err);
    this._onClosed({ code, reason: err?.message ?? '', remote: false, error });
  }

  /** @internal A stream has something to read (a new peer stream first appears so). */
  _onReadable(stream: number): void {
    this.#streamFor(stream)?._onReadable();
  }

  /** @internal A stream whose write was cut short can take more. */
  _onWritable(stream: number): void {
    this.#streams.get(stream)?._onWritable();
  }

  /** @internal The peer sent STOP_SENDING on a stream. */
  _onStopped(stream: number, code: number): void {
    this.#streams.get(stream)?._onStopped(code);
  }

  /** @internal A datagram at `buf[offset..offset + length]`: its channel tag, then the payload. */
  _onDatagram(buf: Buffer, offset: number, length: number): void {
    if (length === 0) return;
    const bytes = new Uint8Array(buf.subarray(offset + 1, offset + length));
    const channel = buf[offset]!;
    if (channel === CHANNEL_APP) this.emit('datagram', bytes);
    else this.#host.channelDatagram(this, channel, bytes);
  }

  /** @internal The peer's packets now come from `addr`. */
  _onPath(addr: AddressInfo): void {
    // A QUIC client's peer never migrates: on the dialing side this is a
    // follow-peer dial's peer seen at a new address ('peerAddress'); what
    // dialed it decides whether to follow.
    if (this.isClient) {
      this.emit('peerAddress', addr);
      return;
    }
    this.#remoteAddress = addr;
    this.emit('path', this.remoteAddress);
  }


  /**
   * Finds the stream, or opens it and every lower peer stream of its kind
   * (QUIC opens streams implicitly in order, though their first bytes may
   * arrive in any order). IDs below the mark are closed: ignored.
   */
  #streamFor(id: number): StreamEnd | undefined {
    const s = this.#streams.get(id);
    if (s !== undefined) return s;
    const remoteInitiated = (id & 1) !== (this.isClient ? 0 : 1);
    if (!remoteInitiated || this.#closeInfo !== undefined || id < 0) return undefined;
    const uni = (id & 2) !== 0;
    const next = uni ? this.#nextRemoteUni : this.#nextRemoteBidi;
    if (id < next) return undefined;
    for (let k = next; k <= id; k += 4) this.#streams.set(k, uni ? new PeerReadStream(this, k) : new PeerStream(this, k, false));
    if (uni) this.#nextRemoteUni = id + 4;
    else this.#nextRemoteBidi = id + 4;
    return this.#streams.get(id);
  }

  /**
   * @internal A peer stream said which channel it is for. Application
   * streams go to 'stream' (bidirectional) or 'unidirectionalStream'
   * (receive-only), so an echo written for one never gets the other.
   */
  streamChannel(receiving: ReceivingStream, channel: number): void {
    // Only PeerStream and PeerReadStream have a receive half.
    const stream = receiving as IncomingStream;
    if (channel === CHANNEL_APP) {
      const event = stream instanceof PeerReadStream ? 'unidirectionalStream' : 'stream';
      if (this.listenerCount(event) > 0) this.emit(event, stream);
      // A dialer's stream can arrive with the handshake, before the code
      // awaiting connect() has run: give it one turn to attach a listener.
      else setImmediate(() => (this.listenerCount(event) > 0 ? this.emit(event, stream) : stream.destroy()));
      return;
    }
    if (this.#host.channelStream(this, channel, stream)) return;
    // Nobody takes it: refuse it rather than buffer it forever.
    stream.destroy();
  }

  /** @internal The connection ended (native event or destroy). */
  _onClosed(info: CloseInfo): void {
    if (this.#closeInfo !== undefined) return;
    this.#closeInfo = info;
    if (this.#early) {
      this.#early = false;
      this.#handshakeSettle?.(info.error ?? new ClosedError('connection closed during handshake'));
    }
    if (this.#streams.size > 0) {
      const streamErr = closeError(info);
      for (const s of [...this.#streams.values()]) s._onConnectionClosed(streamErr);
      this.#streams.clear();
    }
    this.#host.connectionClosed(this.handle);
    if (info.error !== undefined && this.listenerCount('error') > 0) this.emit('error', info.error);
    this.emit('close', info);
    this.#resolveClosed(info);
  }

  #assertOpen(): void {
    if (this.#closeInfo !== undefined || this.#closing) throw new ClosedError('connection is closed');
  }
}
