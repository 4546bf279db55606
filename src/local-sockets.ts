/**
 * Further local sockets of one PeerSocket, for connections that migrate to
 * another local address or port. Each is registered with the native
 * endpoint under a local index; the core picks the index per datagram sent
 * (a connection's active path), and datagrams received on a socket are fed
 * in with its index.
 */
import { InvalidArgumentError } from './errors';
import type { NativeEndpoint } from './native';
import { UdpTransport, type DatagramTransport } from './transport';

/** At most this many extra sockets per PeerSocket. */
const MAX_LOCALS = 16;

export class LocalSockets {
  readonly #native: NativeEndpoint;
  readonly #onDatagram: (data: Buffer, address: string, port: number, local: number) => void;
  readonly #byIndex = new Map<number, DatagramTransport>();

  constructor(native: NativeEndpoint, onDatagram: (data: Buffer, address: string, port: number, local: number) => void) {
    this.#native = native;
    this.#onDatagram = onDatagram;
  }

  /** Binds `transport` (default: a UDP socket on `host`, any port) and returns its local index. */
  async add(host: string, transport?: DatagramTransport): Promise<number> {
    if (this.#byIndex.size >= MAX_LOCALS) throw new InvalidArgumentError(`at most ${MAX_LOCALS} extra local sockets`);
    const t = transport ?? (await UdpTransport.bind({ host, port: 0 }));
    const a = t.address();
    let index: number;
    try {
      index = this.#native.addLocalAddress(a.address, a.port);
    } catch (e) {
      await t.close();
      throw e;
    }
    t.onDatagram((data, address, port) => this.#onDatagram(data, address, port, index));
    t.onError(() => {
      // A failed send is a lost packet; QUIC recovers or times out.
    });
    this.#byIndex.set(index, t);
    return index;
  }

  /** The socket of a local index (undefined for 0, the main one). */
  get(index: number): DatagramTransport | undefined {
    return this.#byIndex.get(index);
  }

  async close(): Promise<void> {
    const all = [...this.#byIndex.values()];
    this.#byIndex.clear();
    await Promise.all(all.map((t) => t.close()));
  }
}
