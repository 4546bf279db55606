/**
 * Lab fixtures: two PeerSockets talking through a `Relay`, and a measured
 * bulk transfer. Every socket, relay and timer is released at `t.teardown`.
 */
import { once } from 'node:events';
import type { ExecutionContext } from 'ava';

import type { PeerConnection } from '../../src/connection';
import type { BindOptions } from '../../src/peer-socket';
import type { PeerSocket } from '../../src/peer-socket';
import type { PeerStream } from '../../src/stream';
import { Source, createSocket, readAll, writeAll, type Digest } from '../helpers';
import { Relay, type RelayOptions } from './relay';

/** Mixes the lab's base seed with a name, so each test has its own reproducible seed. */
export function seedFor(base: number, name: string): number {
  let h = (base ^ 0x811c9dc5) >>> 0;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

/** Options of `relayPair`. */
export interface RelayPairOptions {
  /** Relay options besides the target. */
  relay?: Omit<RelayOptions, 'target'>;
  /** Bind options of the accepting socket `a` (the server behind the relay). */
  a?: BindOptions;
  /** Bind options of the dialing socket `b`. */
  b?: BindOptions;
  /** Dial timeout (ms). */
  timeout?: number;
}

/** `b` dialed `a` through `relay`. */
export interface RelayPair {
  a: PeerSocket;
  b: PeerSocket;
  relay: Relay;
  /** b's connection (the client side, dialed at the relay with a's key). */
  client: PeerConnection;
  /** a's connection (the server side, sees the relay's upstream socket). */
  server: PeerConnection;
  /** Time from connect() to both sides holding their connection (ms). */
  connectMs: number;
}

/** Binds a relay in front of `a`; closed at teardown. */
export async function createRelay(t: ExecutionContext, a: PeerSocket, opts: Omit<RelayOptions, 'target'> = {}): Promise<Relay> {
  const { address, port } = a.address();
  const relay = await Relay.create({ ...opts, target: { address, port } });
  t.teardown(() => relay.close());
  return relay;
}

/** Two sockets on 127.0.0.1; `b` dials `a` through a relay. */
export async function relayPair(t: ExecutionContext, opts: RelayPairOptions = {}): Promise<RelayPair> {
  const a = await createSocket(t, opts.a);
  const b = await createSocket(t, opts.b);
  const relay = await createRelay(t, a, opts.relay);
  const accepted = once(a, 'connection') as Promise<[PeerConnection]>;
  const t0 = performance.now();
  const { host, port } = relay.address();
  const client = await b.connect({ publicKey: a.publicKey, host, port }, { timeout: opts.timeout });
  const [server] = await accepted;
  return { a, b, relay, client, server, connectMs: performance.now() - t0 };
}

/** What a bulk transfer measured. */
export interface Transfer {
  sent: Digest;
  received: Digest;
  ms: number;
  /** Application bytes per second, in MB/s (10^6). */
  mbps: number;
}

/**
 * Sends `bytes` of seeded data on a new stream of `from` and reads it on
 * `to`, hashing both ends; `onProgress` sees the bytes received so far.
 */
export async function transfer(
  from: PeerConnection,
  to: PeerConnection,
  bytes: number,
  seed: number,
  onProgress?: (received: number) => void,
): Promise<Transfer> {
  const incoming = new Promise<Digest>((resolve, reject) => {
    to.once('stream', (s: PeerStream) => {
      if (onProgress !== undefined) {
        let n = 0;
        s.on('data', (chunk: Buffer) => onProgress((n += chunk.length)));
      }
      readAll(s).then(resolve, reject);
    });
  });
  const s = from.openStream();
  const t0 = performance.now();
  const [sent, received] = await Promise.all([writeAll(s, new Source(bytes, seed)), incoming]);
  const ms = performance.now() - t0;
  return { sent, received, ms, mbps: bytes / ms / 1000 };
}

/** Formats a number of ms as seconds with one decimal. */
export function secs(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}
