/**
 * The socket's argument checks, DNS and dial bookkeeping: what `bind` and
 * `connect` validate before anything reaches the core, how a host name
 * becomes an address of the socket's family, and the dials waiting for their
 * handshake (settled by the socket's 'connected'/'closed' events, an abort,
 * or the socket's close).
 */
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';

import type { PeerConnection } from './connection';
import { AbortError, InvalidArgumentError, errorFromNative, type PeersockError } from './errors';
import { assertKey, keyPair as makeKeyPair, parseDialString, type KeyPair } from './keys';
import { canDial } from './local-addresses';
import type { NativeEndpoint } from './native';
import { checkMs, checkPort, type BindOptions, type ConnectOptions, type DialTarget, type IntroducedTarget, type SocketExtension } from './options';
import type { AddressInfo } from './transport';

/** `bind`'s options, checked: the key pair, the host and the extensions to install. */
export function checkBindOptions(opts: BindOptions): { kp: KeyPair; host: string; extensions: SocketExtension[]; io: 'dgram' | 'native' } {
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
  // A socket given a transport drives it with the dgram driver unless told otherwise.
  const io = opts.io ?? (opts.transport !== undefined ? 'dgram' : defaultIo());
  if (io !== 'dgram' && io !== 'native') throw new InvalidArgumentError(`io must be 'dgram' or 'native', got ${String(io)}`);
  if (io === 'native' && opts.transport !== undefined) throw new InvalidArgumentError("io: 'native' owns its socket: it cannot take a transport");
  return { kp, host, extensions: [...extensions], io };
}

/** The default I/O driver: PEERSOCK_IO from the environment, else 'dgram'. */
function defaultIo(): 'dgram' | 'native' {
  const v = process.env.PEERSOCK_IO;
  return v === 'native' ? 'native' : 'dgram';
}

/** A dial target other than an introduced one, as key, host and port (no key: `anyKey`). */
export function parseTarget(target: Exclude<DialTarget, IntroducedTarget>, anyKey = false): { key: Uint8Array | undefined; host: string; port: number } {
  if (typeof target === 'string') {
    if (anyKey) throw new InvalidArgumentError('anyKey dials take { host, port }, not a dial string with a key');
    const { publicKey, host, port } = parseDialString(target);
    return { key: publicKey, host, port };
  }
  if (target === null || typeof target !== 'object') throw new InvalidArgumentError('target must be a dial string or { publicKey, host, port }');
  let key: Uint8Array | undefined;
  if (anyKey) {
    if (target.publicKey !== undefined) throw new InvalidArgumentError('anyKey dials learn the key: leave publicKey out (or dial it pinned without anyKey)');
  } else {
    key = assertKey(target.publicKey, 'publicKey');
  }
  if (typeof target.host !== 'string' || target.host.length === 0) throw new InvalidArgumentError('host must be a non-empty string');
  return { key, host: target.host, port: checkPort(target.port, 'port', false) };
}

/** `connect`'s arguments for an address dial, checked (synchronously: bad arguments throw). */
export function checkConnect(
  target: Exclude<DialTarget, IntroducedTarget>,
  opts: ConnectOptions,
  handshakeTimeout: number | undefined,
): { key: Uint8Array | undefined; host: string; port: number; timeout: number | undefined; signal: AbortSignal | undefined; early: boolean; keepAlive: number | undefined } {
  if (opts === null || typeof opts !== 'object') throw new InvalidArgumentError('options must be an object');
  if (opts.anyKey !== undefined && typeof opts.anyKey !== 'boolean') throw new InvalidArgumentError('anyKey must be a boolean');
  const anyKey = opts.anyKey === true;
  const { key, host, port } = parseTarget(target, anyKey);
  const timeout = checkMs(opts.timeout, 'timeout') ?? handshakeTimeout;
  const signal = opts.signal;
  if (signal !== undefined && !(signal instanceof AbortSignal)) throw new InvalidArgumentError('signal must be an AbortSignal');
  if (opts.earlyData !== undefined && typeof opts.earlyData !== 'boolean') throw new InvalidArgumentError('earlyData must be a boolean');
  const early = opts.earlyData === true;
  if (early && anyKey) throw new InvalidArgumentError('earlyData resumes a session of a known key: it cannot go with anyKey');
  const keepAlive = opts.keepAlive === false || opts.keepAlive === 0 ? 0 : checkMs(opts.keepAlive, 'keepAlive');
  return { key, host, port, timeout, signal, early, keepAlive };
}

/**
 * The address to dial for `host` from a socket bound at `local`: an IP as it
 * is (IPv4 mapped into IPv6 on a dual-stack socket), a name through DNS in the
 * socket's family. Throws InvalidArgumentError for what the socket cannot reach
 * (an IP of another family: canDial, local-addresses.ts).
 */
export async function resolveHost(host: string, local: AddressInfo): Promise<string> {
  const bare = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
  const localFamily = local.family;
  const v = isIP(bare);
  if (v !== 0) {
    if (!canDial(local, bare)) throw new InvalidArgumentError(`cannot dial IPv${v} ${bare} from an ${localFamily === 'IPv4' ? 'IPv4' : 'IPv6-only'} socket`);
    return localFamily === 'IPv6' && v === 4 ? `::ffff:${bare}` : bare;
  }
  try {
    const r = await lookup(bare, { family: localFamily === 'IPv6' ? 6 : 4 });
    return r.address;
  } catch (e) {
    throw new InvalidArgumentError(`cannot resolve host ${JSON.stringify(host)}`, { cause: e });
  }
}

interface PendingDial {
  resolve(conn: PeerConnection): void;
  reject(err: PeersockError): void;
  cleanup(): void;
}

/** Dials waiting for their handshake, by native handle. */
export class PendingDials {
  readonly #dials = new Map<number, PendingDial>();

  /**
   * Waits for dial `handle`'s handshake. On `signal`'s abort the dial is
   * forgotten, `cancel` closes it natively, and it rejects with AbortError.
   */
  wait(handle: number, signal: AbortSignal | undefined, cancel: () => void): Promise<PeerConnection> {
    return new Promise<PeerConnection>((resolve, reject) => {
      const onAbort = (): void => {
        if (this.take(handle) === undefined) return;
        cancel();
        reject(new AbortError());
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#dials.set(handle, { resolve, reject, cleanup: () => signal?.removeEventListener('abort', onAbort) });
    });
  }

  /** Removes dial `handle` (its abort listener too); undefined when it is not waiting. */
  take(handle: number): { resolve(conn: PeerConnection): void; reject(err: PeersockError): void } | undefined {
    const d = this.#dials.get(handle);
    if (d === undefined) return undefined;
    this.#dials.delete(handle);
    d.cleanup();
    return d;
  }

  /** Rejects every waiting dial with `err()`, after `each(handle)` (closing it natively, say). */
  rejectAll(err: () => PeersockError, each?: (handle: number) => void): void {
    for (const h of [...this.#dials.keys()]) {
      const d = this.take(h);
      each?.(h);
      d?.reject(err());
    }
  }
}

/** Per-dial choices beyond key, address and timeout. */
export interface DialExtras {
  /** Send 0-RTT data when a session ticket allows it. */
  early: boolean;
  /** Keep-alive in ms (0: off), undefined for the socket's. */
  keepAlive: number | undefined;
  /**
   * A peer whose packets reach the core as from an address a transport gave
   * it: the core reports authentic ones from elsewhere ('peerAddress').
   */
  followPeer?: boolean;
}

/** Starts a native dial; returns its handle. Native failures become PeersockErrors. */
export function openDial(
  native: NativeEndpoint,
  key: Uint8Array | undefined,
  address: string,
  port: number,
  timeout: number | undefined,
  ticket: Uint8Array | undefined,
  extra: DialExtras,
): number {
  const followPeer = extra.followPeer === true;
  try {
    if (key === undefined) return native.connectAny(address, port, { handshakeTimeoutMs: timeout, keepAliveMs: extra.keepAlive, followPeer });
    if (!extra.early && extra.keepAlive === undefined && !followPeer) return native.connect(key, address, port, timeout);
    return native.connectWith(key, address, port, { handshakeTimeoutMs: timeout, earlyData: extra.early, session: ticket, keepAliveMs: extra.keepAlive, followPeer });
  } catch (e) {
    throw errorFromNative(e);
  }
}
