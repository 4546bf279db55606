/**
 * Test helpers for the API tier (real UDP sockets on loopback). Every socket
 * is bound on port 0 and closed by a registered `t.teardown`, so tests share
 * no state and leave nothing behind, even when they fail.
 *
 * The lab's child processes (`lab/*.ts`) import this module too, so it
 * imports ava for its types only: nothing here may need ava at run time.
 */
import { createHash, type Hash } from 'node:crypto';
import { once } from 'node:events';
import type { ExecutionContext } from 'ava';

import type { PeerConnection } from '../src/connection';
import { PeerSocket, type BindOptions } from '../src/peer-socket';
import type { PeerReadStream, PeerStream } from '../src/stream';
import { UdpTransport, type DatagramTransport } from '../src/transport';

export { median, percentile } from '../bench/stats';

/** Loopback addresses a test can run on. */
export type Loopback = '127.0.0.1' | '::1';

/** Binds a socket on `opts.host` (default '127.0.0.1'), port 0; closed at teardown. */
export async function createSocket(t: ExecutionContext, opts: BindOptions = {}): Promise<PeerSocket> {
  const s = await PeerSocket.bind({ host: '127.0.0.1', ...opts, port: opts.port ?? 0 });
  t.teardown(() => s.close());
  return s;
}

/** What to dial to reach `s`: its key and the address it is bound on. */
export function target(s: PeerSocket): { publicKey: Uint8Array; host: string; port: number } {
  const { address, port } = s.address();
  return { publicKey: s.publicKey, host: address, port };
}

/** Options of `pair`: bind options shared by both sockets, plus per-side overrides. */
export interface PairOptions extends BindOptions {
  /** Extra bind options of the accepting socket `a`. */
  a?: BindOptions;
  /** Extra bind options of the dialing socket `b`. */
  b?: BindOptions;
}

/** Two connected sockets: `b` dialed `a`. */
export interface Pair {
  /** The accepting socket. */
  a: PeerSocket;
  /** The dialing socket. */
  b: PeerSocket;
  /** b's dialed connection to a (the client side). */
  connAB: PeerConnection;
  /** a's accepted connection from b (the server side). */
  connBA: PeerConnection;
}

/**
 * Binds two sockets on loopback (`opts.host`, default '127.0.0.1') and has
 * `b` dial `a`. Resolves once both sides hold their PeerConnection; both
 * sockets are closed at teardown.
 */
export async function pair(t: ExecutionContext, opts: PairOptions = {}): Promise<Pair> {
  const { a: aOpts, b: bOpts, ...shared } = opts;
  const a = await createSocket(t, { ...shared, ...aOpts });
  const b = await createSocket(t, { ...shared, ...bOpts });
  // Listen before dialing: 'connection' may fire before connect() resolves.
  const accepted = once(a, 'connection') as Promise<[PeerConnection]>;
  const connAB = await b.connect(target(a));
  const [connBA] = await accepted;
  return { a, b, connAB, connBA };
}

/**
 * A real UDP transport on `host` whose outgoing datagrams are dropped while
 * `drop(data, port, address)` returns true. Pass it as `transport` to
 * `createSocket`/`pair` (e.g. `pair(t, { b: { transport } })`) to cause loss.
 */
export async function lossyTransport(
  host: Loopback,
  drop: (data: Uint8Array, port: number, address: string) => boolean,
): Promise<DatagramTransport> {
  const udp = await UdpTransport.bind({ host, port: 0 });
  return {
    send: (data, port, address, done) => (drop(data, port, address) ? done() : udp.send(data, port, address, done)),
    onDatagram: (handler) => udp.onDatagram(handler),
    onError: (handler) => udp.onError(handler),
    address: () => udp.address(),
    close: () => udp.close(),
  };
}

/** Resolves with the next stream the peer opens on `conn`. */
export async function nextStream(conn: PeerConnection): Promise<PeerStream> {
  const [s] = (await once(conn, 'stream')) as [PeerStream];
  return s;
}

/** The next unidirectional stream the peer opens on `conn` (its 'unidirectionalStream' event). */
export async function nextUniStream(conn: PeerConnection): Promise<PeerReadStream> {
  const [s] = (await once(conn, 'unidirectionalStream')) as [PeerReadStream];
  return s;
}

/** Echoes every stream the peer opens on `conn` back on the same stream. */
export function echo(conn: PeerConnection): void {
  conn.on('stream', (s: PeerStream) => {
    s.on('error', () => {});
    s.pipe(s);
  });
}

/** What a byte source produced or a sink consumed. */
export interface Digest {
  bytes: number;
  sha256: string;
}

/**
 * Deterministic pseudo-random bytes: `total` bytes in `chunkSize` pieces,
 * with a running SHA-256. The pieces come from one pattern buffer rotated by
 * a seed, so generating them costs no crypto and no allocation per chunk.
 */
export class Source {
  readonly total: number;
  readonly chunkSize: number;
  #offset = 0;
  readonly #pattern: Buffer;
  readonly #hash: Hash = createHash('sha256');

  constructor(total: number, seed = 0, chunkSize = 64 * 1024) {
    this.total = total;
    this.chunkSize = chunkSize;
    // A pattern 2 chunks long lets any chunk be a single subarray of it.
    this.#pattern = Buffer.alloc(chunkSize * 2 + 251);
    let x = (seed * 2654435761 + 1) >>> 0;
    for (let i = 0; i < this.#pattern.length; i++) {
      x = (x * 1103515245 + 12345) >>> 0;
      this.#pattern[i] = x >>> 24;
    }
  }

  /** Bytes handed out so far. */
  get offset(): number {
    return this.#offset;
  }

  /** The next chunk (a fresh copy the caller may keep), or null when done. */
  next(): Buffer | null {
    if (this.#offset >= this.total) return null;
    const n = Math.min(this.chunkSize, this.total - this.#offset);
    // Rotate through the pattern by a prime stride so chunks differ.
    const start = ((this.#offset / this.chunkSize) * 251) % (this.#pattern.length - this.chunkSize);
    const chunk = Buffer.from(this.#pattern.subarray(start, start + n));
    this.#offset += n;
    this.#hash.update(chunk);
    return chunk;
  }

  /** The digest of everything handed out; call once, after `next()` returned null. */
  digest(): Digest {
    return { bytes: this.#offset, sha256: this.#hash.digest('hex') };
  }
}

/**
 * Writes the whole source to `s` honouring backpressure (`write()` false →
 * wait for 'drain'), then ends the stream unless `end` is false.
 * Resolves with the digest of what was written.
 */
export async function writeAll(s: PeerStream, src: Source, end = true): Promise<Digest> {
  for (let chunk = src.next(); chunk !== null; chunk = src.next()) {
    if (!s.write(chunk)) await drained(s);
  }
  if (end) s.end();
  return src.digest();
}

/** Resolves on 'drain'; rejects if the stream errors or closes first. */
export function drained(s: PeerStream): Promise<void> {
  return new Promise((resolve, reject) => {
    const cleanup = (): void => {
      s.off('drain', onDrain);
      s.off('error', onError);
      s.off('close', onClose);
    };
    const onDrain = (): void => {
      cleanup();
      resolve();
    };
    const onError = (err: Error): void => {
      cleanup();
      reject(err);
    };
    const onClose = (): void => {
      cleanup();
      reject(new Error('stream closed while waiting for drain'));
    };
    s.on('drain', onDrain);
    s.on('error', onError);
    s.on('close', onClose);
  });
}

/**
 * Reads `s` to its end, hashing as it goes; rejects if the stream errors.
 * Uses 'data'/'end' rather than `for await`, which would destroy the stream
 * (and so reset its write side) once the read side ends.
 */
export function readAll(s: PeerStream | PeerReadStream): Promise<Digest> {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256');
    let bytes = 0;
    s.on('data', (chunk: Buffer) => {
      hash.update(chunk);
      bytes += chunk.length;
    });
    s.once('end', () => resolve({ bytes, sha256: hash.digest('hex') }));
    s.once('error', reject);
  });
}

/** Rejects with a clear message if `p` does not settle within `ms`. */
export async function within<T>(ms: number, what: string, p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not done within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([p, limit]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Polls `cond` every 5 ms until it holds; resolves with the milliseconds
 * that took, rejects naming `what` if it does not hold within `ms`.
 */
export async function waitFor(what: string, ms: number, cond: () => boolean): Promise<number> {
  const start = performance.now();
  while (!cond()) {
    if (performance.now() - start > ms) throw new Error(`${what}: not within ${ms} ms`);
    await sleep(5);
  }
  return performance.now() - start;
}

/** Resolves after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
