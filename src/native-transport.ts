/**
 * The UDP socket of the native I/O driver (`bind({ io: 'native' })`), seen
 * as a DatagramTransport: the addon owns and reads the socket; what reaches
 * this transport's handler is only what the driver leaves for JavaScript
 * (non-QUIC datagrams: hole punching, relay frames), and what it sends is
 * only what JavaScript sends itself (raw datagrams, relay frames, datagrams
 * a decorator routed). QUIC packets to and from ordinary addresses never
 * cross into JavaScript (see crates/peersock-node/src/netio.rs).
 */
import { InvalidArgumentError, errorFromNative } from './errors';
import type { NativeEndpoint } from './native';
import type { AddressInfo, DatagramHandler, DatagramTransport } from './transport';

/** The native driver's socket as a transport. */
export class NativeUdpTransport implements DatagramTransport {
  readonly realUdp = true;
  readonly #native: NativeEndpoint;
  #address: AddressInfo = { address: '', port: 0, family: 'IPv4' };
  #handler: DatagramHandler | undefined;
  #closed = false;
  /** The driver's entry point, called by the addon with the `WORK_*` bits of what JavaScript has to do (set by the driver). */
  onWork: (work: number) => void = () => {};

  private constructor(native: NativeEndpoint) {
    this.#native = native;
  }

  /** Opens the addon's socket on `host:port` (throws InvalidArgumentError or SocketError-like native errors). */
  static open(native: NativeEndpoint, host: string, port: number): NativeUdpTransport {
    const t = new NativeUdpTransport(native);
    let bound: [string, number];
    try {
      bound = native.ioOpen(host, port, (work) => t.onWork(work));
    } catch (e) {
      throw errorFromNative(e);
    }
    t.#address = { address: bound[0], port: bound[1], family: bound[0].includes(':') ? 'IPv6' : 'IPv4' };
    return t;
  }

  send(data: Uint8Array, port: number, address: string, done: (err?: Error | null) => void): void {
    if (this.#closed) {
      done(new Error('socket is closed'));
      return;
    }
    try {
      this.#native.ioSendTo(data, address, port);
    } catch (e) {
      done(e instanceof Error ? e : new Error(String(e)));
      return;
    }
    done(null);
  }

  onDatagram(handler: DatagramHandler): void {
    this.#handler = handler;
  }

  /** @internal A non-QUIC datagram the driver read (see NativeIoDriver). */
  _deliver(data: Buffer, address: string, port: number): void {
    if (!this.#closed) this.#handler?.(data, address, port);
  }

  onError(_handler: (err: Error) => void): void {
    // Failed sends are reported per connection by the driver; the socket itself raises nothing else.
  }

  address(): AddressInfo {
    return { ...this.#address };
  }

  setTTL(ttl: number): void {
    if (!Number.isInteger(ttl) || ttl < 1 || ttl > 255) throw new InvalidArgumentError('ttl must be an integer 1..255');
    if (!this.#closed) this.#native.ioSetTtl(ttl);
  }

  /** QUIC packets from `address:port` go to this transport's handler while claimed (see DatagramTransport). */
  claimSource(address: string, port: number, claimed: boolean): void {
    if (!this.#closed) this.#native.ioClaimSource(address, port, claimed);
  }

  /** Datagrams to `address/prefixLen` go to JavaScript, to be sent through the transport chain. */
  routeToJs(address: string, prefixLen: number): void {
    this.#native.ioRouteToJs(address, prefixLen);
  }

  close(): Promise<void> {
    if (!this.#closed) {
      this.#closed = true;
      this.#native.ioClose();
    }
    return Promise.resolve();
  }
}
