/** Option checks and the promise wrapper shared by DhtNode's operations. */
import { AbortError, InvalidArgumentError, RequestTimeoutError } from '../errors';

/** Options of `get` and `lookup`. */
export interface DhtQueryOptions {
  /** Abort the operation. */
  signal?: AbortSignal;
  /** Give up after this many ms. */
  timeout?: number;
}

/** `v` if it is a positive integer (or Infinity when allowed), `fallback` if undefined; else InvalidArgumentError. */
export function positive(v: number | undefined, fallback: number, name: string, allowInfinity = false): number {
  if (v === undefined) return fallback;
  if (typeof v !== 'number' || !(v > 0) || (!Number.isInteger(v) && !(allowInfinity && v === Infinity))) {
    throw new InvalidArgumentError(`${name} must be a positive integer${allowInfinity ? ' or Infinity' : ''}`);
  }
  return v;
}

/** Parses `host:port` (IPv4 literal or host name) for the bootstrap list. */
export function parseHostPort(text: string): { host: string; port: number } {
  if (typeof text !== 'string') throw new InvalidArgumentError('a bootstrap node must be a "host:port" string');
  const colon = text.lastIndexOf(':');
  const host = text.slice(0, colon);
  const port = /^[0-9]{1,5}$/.test(text.slice(colon + 1)) ? Number(text.slice(colon + 1)) : NaN;
  if (colon <= 0 || host.includes(':') || /[\s@/[\]]/.test(host) || !(port >= 1 && port <= 65535)) {
    throw new InvalidArgumentError(`bad bootstrap node ${JSON.stringify(text)}: must be host:port with an IPv4 address or host name`);
  }
  return { host, port };
}

/**
 * Runs `start(cb)` as a promise that also ends on `signal` (AbortError),
 * after `timeout` ms (RequestTimeoutError), or when the node is destroyed
 * (ClosedError, through `inFlight`: bittorrent-dht drops the callbacks of
 * operations a destroy cuts short).
 */
export function settle<T>(what: string, opts: DhtQueryOptions, inFlight: Set<(err: Error) => void>, start: (done: (err: Error | null, value?: T) => void) => void): Promise<T> {
  const { signal, timeout } = opts;
  if (timeout !== undefined && !(typeof timeout === 'number' && timeout > 0)) throw new InvalidArgumentError('timeout must be positive');
  if (signal?.aborted === true) return Promise.reject(new AbortError(`${what} aborted`, { cause: signal.reason }));
  return new Promise<T>((resolve, reject) => {
    let timer: NodeJS.Timeout | undefined;
    const finish = (err: Error | null, value?: T): void => {
      inFlight.delete(once);
      if (timer !== undefined) clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      if (err !== null) reject(err);
      else resolve(value as T);
    };
    let settled = false;
    const once = (err: Error | null, value?: T): void => {
      if (settled) return;
      settled = true;
      finish(err, value);
    };
    const onAbort = (): void => once(new AbortError(`${what} aborted`, { cause: signal?.reason }));
    signal?.addEventListener('abort', onAbort, { once: true });
    inFlight.add(once);
    if (timeout !== undefined) timer = setTimeout(() => once(new RequestTimeoutError(`${what} timed out after ${timeout} ms`)), timeout);
    start(once);
  });
}

/** `infoHash` as a Buffer if it is 20 bytes; else InvalidArgumentError. */
export function assertInfoHash(infoHash: Uint8Array): Buffer {
  if (!(infoHash instanceof Uint8Array) || infoHash.length !== 20) throw new InvalidArgumentError('infoHash must be a Uint8Array of 20 bytes');
  return Buffer.from(infoHash);
}

