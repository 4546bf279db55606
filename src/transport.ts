/**
 * Datagram transports. This is the only file that imports `node:dgram`; tests
 * and other runtimes (a relay, a mobile shell) can supply their own transport.
 */
import dgram from 'node:dgram';
import { isIP } from 'node:net';

import { InvalidArgumentError, SocketError } from './errors';

/** A bound local address. */
export interface AddressInfo {
  address: string;
  family: 'IPv4' | 'IPv6';
  port: number;
}

/** Receives one datagram: the bytes (owned by the callee) and the sender. */
export type DatagramHandler = (data: Buffer, address: string, port: number) => void;

/**
 * What a PeerSocket needs from the network: send a datagram to an address,
 * and deliver received ones. `send` must not touch `data` after `done` runs.
 */
export interface DatagramTransport {
  /** Sends `data` to `address:port`; calls `done` once the bytes are no longer needed. */
  send(data: Uint8Array, port: number, address: string, done: (err?: Error | null) => void): void;
  /** Installs the receive handler (called once, before any datagram arrives). */
  onDatagram(handler: DatagramHandler): void;
  /** Installs the handler for errors of the transport as a whole. */
  onError(handler: (err: Error) => void): void;
  /** The bound address. */
  address(): AddressInfo;
  /** Sets the IP TTL of datagrams sent from now on (optional: hole punching's first round uses it). */
  setTTL?(ttl: number): void;
  /**
   * Optional, for transports that give peers addresses of their own (the NAT
   * path layer's virtual addresses): the address to report for a peer the
   * transport knows as `address:port` (undefined: that one as it is).
   */
  displayAddress?(address: string, port: number): AddressInfo | undefined;
  /**
   * Optional, for decorators that own addresses (the NAT path layer's
   * virtual ones): the prefixes (`[address, prefix length]`) whose datagrams
   * must go through this transport chain. A driver that sends below the
   * chain (the native I/O driver) hands datagrams to these back to it.
   */
  ownedPrefixes?(): ReadonlyArray<readonly [string, number]>;
  /** Optional, with `displayAddress`: calls `fn` when where `address:port` leads changed (connections report 'path'). */
  onPathChange?(fn: (address: string, port: number) => void): void;
  /** Stops receiving and releases the port. */
  close(): Promise<void>;
  /** True for a real UDP socket of this host (the NAT layer opens probe sockets beside it). */
  readonly realUdp?: boolean;
  /**
   * Optional, for transports below a decorator that translates some sources
   * (the NAT path layer: an introduced peer's real address): QUIC packets
   * from `address:port` must reach this transport's handler while claimed,
   * even where a driver would otherwise take them directly.
   */
  claimSource?(address: string, port: number, claimed: boolean): void;
}

/** Options of the default UDP transport. */
export interface UdpTransportOptions {
  host: string;
  port: number;
  /** Kernel receive/send buffer sizes to request, in bytes. */
  bufferSize?: number;
}

/** The default transport: one `node:dgram` socket. */
export class UdpTransport implements DatagramTransport {
  readonly realUdp = true;
  readonly #socket: dgram.Socket;
  #closed = false;

  private constructor(socket: dgram.Socket) {
    this.#socket = socket;
  }

  /** Binds a UDP socket at `host:port` (port 0 picks a free one). */
  static async bind(opts: UdpTransportOptions): Promise<UdpTransport> {
    const family = isIP(opts.host);
    if (family === 0) throw new InvalidArgumentError(`host must be an IP address, got ${JSON.stringify(opts.host)}`);
    // Destinations are always IP literals (from the core), so the resolver
    // answers at once: dgram then sends in the same tick instead of after a
    // deferred dns.lookup per datagram.
    const lookup = (host: string, _family: unknown, cb: (err: Error | null, address: string, family: number) => void): void => {
      const f = isIP(host);
      if (f === 0) cb(new SocketError(`not an IP address: ${host}`), '', 0);
      else cb(null, host, f);
    };
    const socket =
      family === 6
        ? dgram.createSocket({ type: 'udp6', ipv6Only: opts.host !== '::', lookup: lookup as never })
        : dgram.createSocket({ type: 'udp4', lookup: lookup as never });
    await new Promise<void>((resolve, reject) => {
      const onError = (err: Error) => reject(new SocketError(`cannot bind ${opts.host}:${opts.port}: ${err.message}`, { cause: err }));
      socket.once('error', onError);
      socket.bind(opts.port, opts.host, () => {
        socket.off('error', onError);
        resolve();
      });
    });
    const size = opts.bufferSize ?? 4 * 1024 * 1024;
    try {
      socket.setRecvBufferSize(size);
      socket.setSendBufferSize(size);
    } catch {
      // The kernel may cap buffer sizes; the defaults still work.
    }
    return new UdpTransport(socket);
  }

  send(data: Uint8Array, port: number, address: string, done: (err?: Error | null) => void): void {
    if (this.#closed) {
      done(new SocketError('transport closed'));
      return;
    }
    this.#socket.send(data, port, address, done);
  }

  onDatagram(handler: DatagramHandler): void {
    this.#socket.on('message', (msg, rinfo) => handler(msg, rinfo.address, rinfo.port));
  }

  onError(handler: (err: Error) => void): void {
    this.#socket.on('error', handler);
  }

  setTTL(ttl: number): void {
    if (!this.#closed) this.#socket.setTTL(ttl);
  }

  address(): AddressInfo {
    const a = this.#socket.address();
    return { address: a.address, family: a.family === 'IPv6' ? 'IPv6' : 'IPv4', port: a.port };
  }

  close(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#closed = true;
    return new Promise((resolve) => this.#socket.close(() => resolve()));
  }
}
