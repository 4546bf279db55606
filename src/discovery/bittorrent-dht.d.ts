/**
 * The parts of `bittorrent-dht` (11.x, ESM only, no bundled types) that
 * dht.ts uses. Loaded with `await import('bittorrent-dht')`.
 */
declare module 'bittorrent-dht' {
  import { EventEmitter } from 'node:events';

  /** A host and port as bittorrent-dht passes them around. */
  interface DhtContact {
    host: string;
    port: number;
  }

  /** Constructor options used by peersock (others exist). */
  interface DhtOptions {
    /** Bootstrap nodes; peersock always passes an explicit list (never the default). */
    bootstrap: DhtContact[];
    /** BEP 44 signature check, (signature, signed bytes, public key) => valid. */
    verify: (sig: Uint8Array, msg: Uint8Array, pk: Uint8Array) => boolean;
    /** Stored BEP 44 items (LRU). */
    maxValues?: number;
    /** Stored BEP 5 peers. */
    maxPeers?: number;
    /** Lookup tables kept for later put/announce (LRU). */
    maxTables?: number;
    /** Lifetime of a stored BEP 5 peer, ms. */
    maxAge?: number;
    /** Per-query timeout, ms (k-rpc-socket). */
    timeout?: number;
    /** Parallel queries (k-rpc). */
    concurrency?: number;
    /** The UDP socket to use instead of a new dgram socket (k-rpc-socket). */
    socket?: unknown;
  }

  /** The reply value of a get: what the item holds (BEP 44 fields for a mutable item). */
  interface DhtGetResult {
    v: unknown;
    k?: unknown;
    sig?: unknown;
    seq?: unknown;
    salt?: unknown;
  }

  /** The BEP 44 put arguments of a mutable item. */
  interface DhtPutOptions {
    k: Buffer;
    v: Buffer;
    seq: number;
    salt?: Buffer;
    sign?: (buf: Buffer) => Buffer;
    sig?: Buffer;
  }

  /** A bittorrent-dht node. */
  export default class DHT extends EventEmitter {
    constructor(opts: DhtOptions);
    readonly nodeId: Buffer;
    listen(port: number, host: string): void;
    address(): { address: string; port: number; family: string };
    put(opts: DhtPutOptions, cb: (err: Error | null, hash: Buffer, n: number) => void): Buffer;
    get(key: Buffer, opts: { salt?: Buffer; cache?: boolean }, cb: (err: Error | null, res: DhtGetResult | null) => void): void;
    announce(infoHash: Buffer, port: number, cb: (err: Error | null) => void): void;
    lookup(infoHash: Buffer, cb: (err: Error | null, n?: number) => void): () => void;
    addNode(node: DhtContact): void;
    destroy(cb?: () => void): void;
  }
}
