/**
 * The socket's connections by native handle, the dials waiting for their
 * handshake, and what the rare native events do to them: an incoming peer
 * is asked about (accept hook) and admitted or refused, a dial settles on
 * 'connected' or 'closed', a session ticket goes to the store, a path
 * change or a close reaches its connection. Failed sends and transport path
 * changes are reported to the connections of that address.
 */
import type { PeerConnection } from './connection';
import { PendingDials } from './dialing';
import { ClosedError, SocketError } from './errors';
import { closeInfoFromEvent } from './errors/convert';
import type { NativeEndpoint, NativeEvent } from './native';
import type { SessionStore } from './sessions';
import type { AddressInfo } from './transport';

/** What the table needs from its socket. */
export interface TableHost {
  readonly native: NativeEndpoint;
  readonly sessions: SessionStore;
  /** Why a new peer is refused now (the socket is closing), or undefined. */
  closingReason(): string | undefined;
  /** The accept hook's answer (true without a hook; a throwing hook refuses). */
  admits(key: Uint8Array, addr: AddressInfo): boolean;
  /** The address to report for a peer address (the transport's view). */
  displayAddress(addr: AddressInfo): AddressInfo;
  /** A PeerConnection for a handle whose handshake is done. */
  create(handle: number, key: Uint8Array, addr: AddressInfo, isClient: boolean): PeerConnection;
  /** An accepted peer: the socket's 'connection' event. */
  accepted(conn: PeerConnection): void;
}

type IncomingEvent = Extract<NativeEvent, { kind: 'incoming' }>;
type ConnectedEvent = Extract<NativeEvent, { kind: 'connected' }>;

/** The peer address of an event that carries one. */
function addressOf(ev: { address: string; port: number; family: number }): AddressInfo {
  return { address: ev.address, port: ev.port, family: ev.family === 6 ? 'IPv6' : 'IPv4' };
}

/** Connections by handle, pending dials, and the rare events' effects. */
export class ConnectionTable {
  readonly #host: TableHost;
  readonly #conns = new Map<number, PeerConnection>();
  /** Dials waiting for 'connected' or 'closed'. */
  readonly dials = new PendingDials();

  constructor(host: TableHost) {
    this.#host = host;
  }

  /** The connection of a handle. */
  get(handle: number): PeerConnection | undefined {
    return this.#conns.get(handle);
  }

  /** Registers a connection (one usable before its handshake: 0-RTT). */
  add(conn: PeerConnection): void {
    this.#conns.set(conn.handle, conn);
  }

  /** Forgets a closed connection. */
  delete(handle: number): void {
    this.#conns.delete(handle);
  }

  /** The live connections, in order of arrival. */
  values(): PeerConnection[] {
    return [...this.#conns.values()];
  }

  get size(): number {
    return this.#conns.size;
  }

  /**
   * The graceful end of them all: pending dials fail (and are closed
   * natively), connections close with code 0, and those still open after a
   * second are destroyed. `kick` sends what the closes queued.
   */
  async closeAll(kick: () => void): Promise<void> {
    const native = this.#host.native;
    this.dials.rejectAll(
      () => new ClosedError('socket closed while dialing'),
      (h) => {
        try {
          native.close(h, 0, 'socket closed');
        } catch {
          // Already gone.
        }
      },
    );
    const conns = this.values();
    for (const c of conns) void c.close({ code: 0, reason: 'socket closed' });
    kick();
    if (conns.length === 0) return;
    let timer: NodeJS.Timeout | undefined;
    const limit = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, 1000);
    });
    await Promise.race([Promise.all(conns.map((c) => c.closed)), limit]);
    clearTimeout(timer);
    for (const c of this.#conns.values()) c.destroy();
  }

  /** The immediate end: connections fail with `err` (or ClosedError), dials with ClosedError. */
  destroyAll(err?: Error): void {
    for (const c of this.values()) c.destroy(err);
    this.dials.rejectAll(() => new ClosedError('socket destroyed'));
  }

  /** A rare native event (see the binding's NativeEvent). */
  onEvent(ev: NativeEvent): void {
    switch (ev.kind) {
      case 'incoming':
        this.#onIncoming(ev);
        return;
      case 'session':
        try {
          this.#host.sessions.set(new Uint8Array(ev.remoteKey), new Uint8Array(ev.session));
        } catch {
          // A store that refuses it: the next dial is a full handshake.
        }
        return;
      case 'connected': {
        const d = this.dials.take(ev.conn);
        if (d === undefined) {
          this.#conns.get(ev.conn)?._handshakeDone();
          return;
        }
        d.resolve(this.#create(ev, true));
        return;
      }
      case 'path':
        this.#conns.get(ev.conn)?._onPath(addressOf(ev));
        return;
      case 'closed': {
        const d = this.dials.take(ev.conn);
        if (d !== undefined) {
          const info = closeInfoFromEvent(ev);
          d.reject(info.error ?? new ClosedError(`connection closed during handshake (code ${info.code})`));
          return;
        }
        this.#conns.get(ev.conn)?._onClosed(closeInfoFromEvent(ev));
        return;
      }
    }
  }

  /** The transport says where `address:port` leads changed: its connections report 'path'. */
  pathChanged(address: string, port: number): void {
    for (const c of this.#conns.values()) {
      const p = c._pathAddress;
      if (p.port === port && p.address === address && c.closeInfo === undefined) c.emit('path', c.remoteAddress);
    }
  }

  /**
   * A failed send (EMSGSIZE, ENETUNREACH, EINVAL…) is a lost packet: QUIC
   * retransmits or times out. It is reported as 'error' on the connections
   * to that address only (when they listen), never thrown.
   */
  sendFailed(err: Error, address: string, port: number): void {
    const wrapped = new SocketError(`send to ${address}:${port} failed: ${err.message}`, { cause: err });
    for (const c of this.#conns.values()) {
      const r = c._pathAddress;
      if (r.port === port && r.address === address && c.listenerCount('error') > 0) c.emit('error', wrapped);
    }
  }

  #onIncoming(ev: IncomingEvent): void {
    const host = this.#host;
    const key = new Uint8Array(ev.remoteKey);
    const closing = host.closingReason();
    const ok = closing === undefined && host.admits(key, host.displayAddress(addressOf(ev)));
    // The hook may have closed the socket.
    const refusal = host.closingReason() ?? (ok ? undefined : 'refused by accept hook');
    try {
      if (refusal !== undefined) {
        host.native.refuse(ev.conn, refusal);
        return;
      }
      host.native.accept(ev.conn);
    } catch {
      return; // already gone
    }
    host.accepted(this.#create(ev, false));
  }

  #create(ev: IncomingEvent | ConnectedEvent, isClient: boolean): PeerConnection {
    const conn = this.#host.create(ev.conn, new Uint8Array(ev.remoteKey), addressOf(ev), isClient);
    this.#conns.set(ev.conn, conn);
    return conn;
  }
}
