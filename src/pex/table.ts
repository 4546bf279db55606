/**
 * The peer exchange's table (see peer-exchange.ts for the protocol): the
 * peers one socket recently connected to or heard of, bounded, keyed by
 * public key. Every change takes the next value of one counter (`seq`) and
 * moves the entry to the end of the map, so the entries changed after some
 * `seq` are a suffix of it; `epoch` names this table instance.
 */
import { randomInt } from 'node:crypto';
import { isIP } from 'node:net';

import type { AddressInfo } from '../transport';
import type { peersock } from './generated/peer-exchange';

/** One entry of the peer table, as `peers()` returns it. */
export interface PeerInfo {
  /** The peer's Ed25519 public key: dial it by this key. */
  publicKey: Uint8Array;
  /** Last known IP address and UDP port (the one port it listens and dials on). */
  address: string;
  port: number;
  /** When it was last connected to at that address (ms since the Unix epoch). */
  lastSeen: number;
  /** True when we connected to it ourselves; false when a correspondent told us. */
  direct: boolean;
}

/** What merging one reply did (counted into a SyncResult). */
export interface MergeResult {
  received: number;
  added: number;
  updated: number;
}

/** The exchange's counters the table keeps up to date. */
export interface TableStats {
  entriesSent: number;
  entriesReceived: number;
  invalid: number;
}

/** A stored entry. */
export interface Entry {
  publicKey: Uint8Array;
  address: string;
  port: number;
  lastSeen: number;
  /** The table's counter at this entry's last change. */
  seq: number;
  /** Hex key of the correspondent that told us; undefined when observed directly. */
  via: string | undefined;
}

/** A key as hex, the table's map key. */
export const hex = (key: Uint8Array): string => Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString('hex');

/** An IPv4-mapped IPv6 address as plain IPv4 (dialable from IPv4 sockets too). */
function normalizeAddress(address: string): string {
  const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  return m !== null ? m[1]! : address;
}

/** An entry as `peers()` shows it. */
export function info(e: Entry): PeerInfo {
  return { publicKey: new Uint8Array(e.publicKey), address: e.address, port: e.port, lastSeen: e.lastSeen, direct: e.via === undefined };
}

/** The versioned, bounded peer table of one exchange. */
export class PeerTable {
  /** This table instance; a requester seeing a new one starts over. */
  readonly epoch = randomInt(1, 0x1_0000_0000);
  /** Hex key of our own socket (never stored), once known. */
  self = '';
  readonly #max: number;
  readonly #stats: TableStats;
  #seq = 0;
  /** Hex key → entry, in ascending `seq` order (re-inserted on every change). */
  readonly #entries = new Map<string, Entry>();

  /** A table of `max` entries at most, counting into `stats`. */
  constructor(max: number, stats: TableStats) {
    this.#max = max;
    this.#stats = stats;
  }

  /** The change counter: it grows with every added or changed entry. */
  get seq(): number {
    return this.#seq;
  }

  /** The entry of a hex key, if any. */
  entry(k: string): Entry | undefined {
    return this.#entries.get(k);
  }

  /** Every entry, most recently seen first. */
  peers(): PeerInfo[] {
    return [...this.#entries.values()].sort((a, b) => b.lastSeen - a.lastSeen).map(info);
  }

  /** Entries changed after the requester's `since` (in our epoch), oldest change first, at most `limit`. */
  changesSince(req: peersock.pex.Request, requester: string): { peers: peersock.pex.IPeer[]; seq: number; more: boolean } {
    const since = req.epoch === this.epoch ? req.since : 0;
    const limit = req.limit > 0 ? Math.min(req.limit, this.#max) : this.#max;
    const peers: peersock.pex.IPeer[] = [];
    let scanned = since;
    let more = false;
    for (const [k, e] of this.#entries) {
      if (e.seq <= since) continue;
      // The requester knows where it is, and what it told us (at least as new).
      if (k !== requester && e.via !== requester) {
        if (peers.length === limit) {
          more = true;
          break;
        }
        peers.push({ publicKey: e.publicKey, address: e.address, port: e.port, lastSeen: e.lastSeen });
      }
      scanned = e.seq;
    }
    this.#stats.entriesSent += peers.length;
    return { peers, seq: more ? scanned : this.#seq, more };
  }

  /** Learned entries (from correspondent `from`): unknown ones are added; known ones replaced only by a newer `lastSeen`. */
  merge(peers: peersock.pex.IPeer[], from: string, result: MergeResult): void {
    const now = Date.now();
    for (const p of peers) {
      result.received++;
      this.#stats.entriesReceived++;
      const key = p.publicKey;
      const address = typeof p.address === 'string' ? normalizeAddress(p.address) : '';
      const port = p.port ?? 0;
      if (!(key instanceof Uint8Array) || key.length !== 32 || isIP(address) === 0 || !(port >= 1 && port <= 65535)) {
        this.#stats.invalid++;
        continue;
      }
      const k = hex(key);
      // Ourselves, and the correspondent itself: we know better.
      if (k === this.self || k === from) continue;
      // A clock ahead of ours must not make an entry unbeatable.
      const lastSeen = Math.min(Number(p.lastSeen ?? 0), now);
      const cur = this.#entries.get(k);
      if (cur !== undefined && !(lastSeen > cur.lastSeen)) continue;
      if (cur === undefined && this.#entries.size >= this.#max && lastSeen <= this.#oldest()!.lastSeen) continue;
      this.#put(k, { publicKey: cur?.publicKey ?? new Uint8Array(key), address, port, lastSeen, seq: 0, via: from });
      if (cur === undefined) result.added++;
      else result.updated++;
    }
  }

  /** A connection we are part of: its address is first-hand and current. */
  direct(publicKey: Uint8Array, addr: AddressInfo): void {
    const k = hex(publicKey);
    if (k === this.self) return;
    const cur = this.#entries.get(k);
    const lastSeen = Math.max(Date.now(), cur?.lastSeen ?? 0);
    this.#put(k, { publicKey: cur?.publicKey ?? new Uint8Array(publicKey), address: normalizeAddress(addr.address), port: addr.port, lastSeen, seq: 0, via: undefined });
  }

  /** Stores a changed entry under the next seq (last in the map) and evicts the least recently seen beyond the bound. */
  #put(k: string, e: Entry): void {
    e.seq = ++this.#seq;
    this.#entries.delete(k);
    this.#entries.set(k, e);
    if (this.#entries.size > this.#max) {
      const old = this.#oldest(k)!;
      this.#entries.delete(hex(old.publicKey));
    }
  }

  /** The least recently seen entry, other than `except`. */
  #oldest(except?: string): Entry | undefined {
    let min: Entry | undefined;
    for (const [k, e] of this.#entries) if (k !== except && (min === undefined || e.lastSeen < min.lastSeen)) min = e;
    return min;
  }
}
