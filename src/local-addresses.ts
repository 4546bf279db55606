/**
 * The addresses of one socket's world: which IP families a socket bound at
 * an address can send to (the dialer's checks in dialing.ts, and which
 * addresses of a record discovery dials), and the addresses of this machine
 * where peers can reach it (what discovery publishes and announces on the
 * LAN, and the dial string the CLI prints).
 */
import { isIP } from 'node:net';
import { networkInterfaces } from 'node:os';

/** A socket's bound address and its family ('IPv4' or 'IPv6'), as `address()` returns them. */
export interface BoundAddress {
  address: string;
  family: string;
}

/**
 * Whether a socket bound at `local` can send to the IP address `ip`: one of
 * its own family, or IPv4 from a dual-stack socket (bound at `::`). False
 * for what is not an IP address.
 */
export function canDial(local: BoundAddress, ip: string): boolean {
  const v = isIP(ip);
  if (v === 0) return false;
  if (local.family === 'IPv4') return v === 4;
  return v === 6 || local.address === '::';
}

/**
 * The addresses on this machine where peers can reach a socket bound at
 * `local`: the bound address itself, or for a wildcard bind (0.0.0.0, ::)
 * every interface address the socket can use (canDial; link-local IPv6
 * left out), external ones only unless there are none (then loopback), the
 * socket's own family first.
 */
export function localHosts(local: BoundAddress): string[] {
  if (local.address !== '0.0.0.0' && local.address !== '::') return [local.address];
  const own = local.family === 'IPv6' ? 6 : 4;
  const all = Object.values(networkInterfaces()).flatMap((list) => list ?? []);
  const usable = all.filter((i) => canDial(local, i.address) && !i.address.toLowerCase().startsWith('fe80:'));
  const outside = usable.filter((i) => !i.internal);
  const hosts = (outside.length > 0 ? outside : usable).map((i) => i.address);
  // A stable sort: the interfaces' order within each family is kept.
  return hosts.sort((a, b) => Number(isIP(b) === own) - Number(isIP(a) === own));
}
