/**
 * Who a Dispatcher talks to: a connection in hand, or a peer named by a dial
 * string or by key and address, reached over an open connection to that key
 * or dialed.
 */
import type { PeerConnection } from '../connection';
import { InvalidArgumentError } from '../errors';
import { keysEqual, parseDialString } from '../keys';
import type { Peer } from './dispatcher-options';
import type { MessageHost } from './host';

/** Whether `peer` is a connection (not a dial string or a key and address). */
export function isConnection(peer: Peer): peer is PeerConnection {
  return peer !== null && typeof peer === 'object' && 'openStream' in peer;
}

/** The connection to `peer`: itself, an open one to its key, or a new dial (aborted by `signal`). */
export async function resolvePeer(host: MessageHost, peer: Peer, signal?: AbortSignal): Promise<PeerConnection> {
  if (isConnection(peer)) return peer;
  const target = typeof peer === 'string' ? parseDialString(peer) : peer;
  if (target === null || typeof target !== 'object' || !(target.publicKey instanceof Uint8Array)) {
    throw new InvalidArgumentError('peer must be a PeerConnection, a dial string or { publicKey, host, port }');
  }
  const existing = host.connections.find((c) => keysEqual(c.remotePublicKey, target.publicKey) && c.closeInfo === undefined);
  if (existing !== undefined) return existing;
  return host.connect(target, signal !== undefined ? { signal } : {});
}
