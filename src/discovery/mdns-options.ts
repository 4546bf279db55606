/**
 * The options, limits and small helpers of LAN discovery (mdns.ts): what
 * `LanDiscovery` takes and counts, the bounds it keeps, the addresses it
 * publishes by default, and its answer rate limit.
 */
import { isIPv4 } from 'node:net';
import { networkInterfaces } from 'node:os';

import { InvalidArgumentError } from '../errors';
import { usableHost, type MdnsRecord } from './mdns-records';
import type { PeerAddress } from './record';

/** Options of `LanDiscovery.start()`. */
export interface LanDiscoveryOptions {
  /** IPv4 address of the interface to multicast on (default: every interface). */
  interface?: string;
  /** mDNS UDP port (default 5353; tests use another). */
  port?: number;
  /** Multicast group (default 224.0.0.251). */
  ip?: string;
  /** Hear this host's own packets, so two instances on one host find each other (default true). */
  loopback?: boolean;
  /** TTL in seconds of the records this host answers with (default 120). */
  ttl?: number;
}

/** What `advertise()` publishes. */
export interface LanAdvertisement {
  /** This host's key (the instance name and the TXT record carry it). */
  publicKey: Uint8Array;
  /** The QUIC port peers dial. */
  port: number;
  /** Topic hashes (1..31 bytes; discovery uses 20), at most MAX_TOPICS. */
  topics: Uint8Array[];
  /** Addresses to publish instead of the interface's own (IP literals). */
  hosts?: string[];
}

/** Options of `resolve()`. */
export interface LanResolveOptions {
  /** How long to listen, in ms. */
  timeout: number;
  /** Rejects the resolve with AbortError. */
  signal?: AbortSignal;
  /** Resolve as soon as one answer arrived. */
  first?: boolean;
}

/** Options of `lookup()`. */
export interface LanLookupOptions {
  /** How long to listen, in ms. */
  timeout: number;
  /** Ends the lookup (quietly, like the timeout). */
  signal?: AbortSignal;
}

/** A peer of a topic, as heard: where it says it is, and the key it claims. */
export type LanPeer = PeerAddress & { publicKey: Uint8Array };

/** Counters of a LanDiscovery. */
export interface LanDiscoveryStats {
  /** Queries sent (each re-sent query counts). */
  queries: number;
  /** Queries this host answered. */
  answered: number;
  /** Matching queries left unanswered by the rate limit. */
  rateLimited: number;
  /** Responses heard (own included when `loopback`). */
  responses: number;
  /** Packets that did not decode as DNS, or whose handling failed. */
  malformed: number;
}

/** At most this many topics are advertised. */
export const MAX_TOPICS = 64;
/** Answers sent back to back before the rate applies. */
export const ANSWER_BURST = 20;
/** Answers a second after the burst. */
export const ANSWER_RATE = 20;
/** Distinct peers one lookup yields at most. */
export const MAX_LOOKUP_RESULTS = 1024;
/** Distinct addresses one resolve collects at most. */
export const MAX_RESOLVE_RESULTS = 32;
/** When a query is sent again, in ms after the first, within the timeout. */
export const RESEND_AT = [250, 1000, 3000];
/** Topic PTRs per announcement packet (keeps packets well under 1500 bytes). */
export const TOPICS_PER_PACKET = 6;
/** Longest timeout a timer takes, in ms. */
const MAX_TIMEOUT = 2 ** 31 - 1;

/** Checks resolve/lookup options: a timeout in ms (positive, within a timer's range), an optional AbortSignal. */
export function checkWait(opts: unknown): void {
  if (opts === null || typeof opts !== 'object') throw new InvalidArgumentError('options must be an object with a timeout');
  const o = opts as { timeout?: unknown; signal?: unknown };
  if (typeof o.timeout !== 'number' || !(o.timeout > 0) || o.timeout > MAX_TIMEOUT) throw new InvalidArgumentError('timeout must be a positive number of ms');
  if (o.signal !== undefined && !(o.signal instanceof AbortSignal)) throw new InvalidArgumentError('signal must be an AbortSignal');
}

/** What makes a record the same record (for withdrawing the ones an advertisement drops). */
export function recordId(r: MdnsRecord): string {
  return `${r.name.toLowerCase()}|${r.type}|${JSON.stringify(r.data)}`;
}

/** The topics, each once, in order. */
export function dedupeTopics(topics: Uint8Array[]): Uint8Array[] {
  const seen = new Set<string>();
  return topics.filter((t) => {
    const k = Buffer.from(t).toString('hex');
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

/**
 * Addresses of the interface holding `iface` (or of every non-internal
 * interface; of the internal ones if there is none): usable, no IPv6
 * link-local (it needs a scope), IPv4 first, at most 8.
 */
export function interfaceHosts(iface: string | undefined): string[] {
  const ifaces = Object.values(networkInterfaces()).filter((list) => list !== undefined);
  const chosen = iface !== undefined ? ifaces.filter((list) => list.some((a) => a.address === iface)) : ifaces.filter((list) => list.some((a) => !a.internal));
  const pool = (chosen.length > 0 ? chosen : ifaces).flat();
  const hosts = pool.filter((a) => usableHost(a.address) && !/^fe80:/i.test(a.address)).map((a) => a.address);
  return [...new Set([...hosts.filter((h) => isIPv4(h)), ...hosts.filter((h) => !isIPv4(h))])].slice(0, 8);
}

/** A token bucket: `burst` at once, then `rate` a second. */
export class TokenBucket {
  #tokens: number;
  #refilled = Date.now();

  constructor(
    readonly burst: number,
    readonly rate: number,
  ) {
    this.#tokens = burst;
  }

  /** Takes a token; false when there is none left. */
  take(): boolean {
    const now = Date.now();
    this.#tokens = Math.min(this.burst, this.#tokens + ((now - this.#refilled) / 1000) * this.rate);
    this.#refilled = now;
    if (this.#tokens < 1) return false;
    this.#tokens--;
    return true;
  }
}
