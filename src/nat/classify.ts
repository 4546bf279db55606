/**
 * NAT classification from observed addresses. Two or more peers at different
 * IP addresses each say where they see this socket from:
 *
 * - 'none': everyone sees the socket's own address and port (no NAT);
 * - 'consistent': everyone sees the same address and port, not ours (a NAT
 *   whose mapping does not depend on the destination: peers told that address
 *   can reach us once our side has sent towards them);
 * - 'per-destination': observers see different ports or addresses (the
 *   mapping changes with the destination, so the address one peer sees is of
 *   no use to another; direct paths need guessing or a relay).
 */
import { networkInterfaces } from 'node:os';

import type { PeerConnection } from '../connection';
import { InvalidArgumentError } from '../errors';
import type { PeerSocket } from '../peer-socket';
import type { AddressInfo } from '../transport';
import { installedObserver, normalizeAddress, type ObserveOptions } from './observed';

/** How this socket's address is mapped on the way out. */
export type NatType = 'none' | 'consistent' | 'per-destination';

/** What one observer saw. */
export interface Observation {
  /** The observer's key. */
  publicKey: Uint8Array;
  /** The observer's address (where we reach it). */
  observer: AddressInfo;
  /** Where it sees us from. */
  observed: AddressInfo;
}

/** The result of `classifyNat`. */
export interface NatClassification {
  type: NatType;
  /** The address peers can be told to reach us at: set for 'none' and 'consistent'. */
  publicAddress: AddressInfo | undefined;
  /** The socket's bound address. */
  local: AddressInfo;
  /** Every observation, in the order of the connections given. */
  observations: Observation[];
}

/** The IP addresses of this host's interfaces (the addresses an unspecified bind answers on). */
export function localAddresses(): Set<string> {
  const out = new Set<string>();
  for (const list of Object.values(networkInterfaces())) for (const i of list ?? []) out.add(normalizeAddress(i.address));
  return out;
}

/** True when `seen` is this socket's own address: same port, and the bound IP (or, bound to any, an interface's). */
export function isLocal(seen: AddressInfo, local: AddressInfo, interfaces: () => Set<string> = localAddresses): boolean {
  if (seen.port !== local.port) return false;
  const bound = normalizeAddress(local.address);
  const addr = normalizeAddress(seen.address);
  if (bound === '0.0.0.0' || bound === '::') return interfaces().has(addr);
  return addr === bound;
}

const same = (a: AddressInfo, b: AddressInfo): boolean => a.port === b.port && normalizeAddress(a.address) === normalizeAddress(b.address);

/** Classifies from observations already made (pure; exported for tests and custom observers). */
export function classifyObservations(local: AddressInfo, observations: Observation[], interfaces: () => Set<string> = localAddresses): NatClassification {
  const first = observations[0]?.observed;
  if (first === undefined) throw new InvalidArgumentError('no observations');
  let type: NatType;
  if (!observations.every((o) => same(o.observed, first))) type = 'per-destination';
  else type = isLocal(first, local, interfaces) ? 'none' : 'consistent';
  const publicAddress = type === 'per-destination' ? undefined : { ...first, address: normalizeAddress(first.address) };
  return { type, publicAddress, local, observations };
}

/**
 * Asks every peer on `conns` where it sees this socket from, concurrently,
 * and classifies the NAT. Needs the observedAddress() extension on this
 * socket (else InvalidArgumentError) and at least two connections to peers at
 * different IP addresses; rejects with the first failed request's error
 * (for instance RequestTimeoutError, or NoHandlerError when a peer does not
 * answer the protocol).
 */
export async function classifyNat(socket: PeerSocket, conns: PeerConnection[], opts: ObserveOptions = {}): Promise<NatClassification> {
  if (!Array.isArray(conns)) throw new InvalidArgumentError('conns must be an array of connections');
  const ips = new Set(conns.map((c) => normalizeAddress(c.remoteAddress.address)));
  if (ips.size < 2) throw new InvalidArgumentError('classifyNat needs connections to at least two peers at different IP addresses');
  const observer = installedObserver(socket);
  const observations = await Promise.all(
    conns.map(async (c): Promise<Observation> => ({ publicKey: c.remotePublicKey, observer: c.remoteAddress, observed: await observer.observe(c, opts) })),
  );
  return classifyObservations(socket.address(), observations);
}
