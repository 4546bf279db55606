/**
 * Peer records: what a peer publishes about itself in the DHT, as the value
 * (`v`) of a BEP 44 mutable item stored under its own Ed25519 key with the
 * salt `RECORD_SALT`. The item's signature and `seq` are BEP 44's (dht.ts);
 * this module only turns the record's fields into bytes and back.
 *
 * Wire format of `v` (version 1), a byte string whose bencoded form must fit
 * BEP 44's 1000 bytes:
 *
 *   u8 version = 1
 *   u8 address count, then per address:
 *     u8 family (4 or 6), the IP address (4 or 16 bytes), u16 port (big-endian, 1..65535)
 *   u8 introducer count, then per introducer:
 *     u8 length (1..255), that many bytes of UTF-8 dial string `<key>@<host>:<port>`
 *
 * Nothing may follow. A record is a hint, not a proof: whoever dials one of
 * its addresses still pins the key in the QUIC handshake.
 */
import { isIP } from 'node:net';

import { InvalidArgumentError } from '../errors';
import { KEY_LENGTH, parseDialString } from '../keys';
import { bencodedStringLength } from './dht-bencode';

/** The BEP 44 salt of a peersock record: UTF-8 `peersock/v1`, naming peersock and the record's version. */
export const RECORD_SALT: Uint8Array = new Uint8Array(Buffer.from('peersock/v1', 'utf8'));

/** BEP 44's limit, in bytes, on the bencoded value of an item. */
export const MAX_RECORD_VALUE = 1000;

/** The format version written in the first byte of `v`. */
export const RECORD_VERSION = 1;

/** An IP address (v4 or v6, no host names) and UDP port a peer may be reached at. */
export interface PeerAddress {
  /** IPv4 or IPv6 address, as text. */
  host: string;
  /** UDP port, 1..65535. */
  port: number;
}

/** A decoded, signature-checked record. */
export interface PeerRecord {
  /** The key the record was published under (and signed by). */
  publicKey: Uint8Array;
  /** Where the peer says it listens, in its order of preference. */
  addresses: PeerAddress[];
  /** Dial strings `<key>@<host>:<port>` of peers that will introduce (or relay for) it. */
  introducers: string[];
  /** The BEP 44 sequence number; a higher one supersedes a lower one. */
  seq: number;
}

/**
 * Encodes a record's fields as the BEP 44 value `v`. Throws
 * InvalidArgumentError if an address is not an IP address with a port
 * 1..65535, an introducer is not a valid dial string (at most 255 bytes), or
 * the whole would exceed `MAX_RECORD_VALUE` bytes once bencoded.
 */
export function encodeRecord(fields: { addresses: PeerAddress[]; introducers: string[] }): Uint8Array {
  if (fields === null || typeof fields !== 'object') throw new InvalidArgumentError('record fields must be an object');
  const { addresses, introducers } = fields;
  if (!Array.isArray(addresses) || !Array.isArray(introducers)) throw new InvalidArgumentError('addresses and introducers must be arrays');
  if (addresses.length > 255 || introducers.length > 255) throw new InvalidArgumentError('a record holds at most 255 addresses and 255 introducers');
  const parts: Uint8Array[] = [Uint8Array.of(RECORD_VERSION, addresses.length)];
  for (const a of addresses) {
    if (a === null || typeof a !== 'object' || typeof a.host !== 'string') throw new InvalidArgumentError('an address must be { host, port }');
    if (!Number.isInteger(a.port) || a.port < 1 || a.port > 65535) throw new InvalidArgumentError(`bad port ${String(a.port)}: must be 1..65535`);
    const ip = ipToBytes(a.host);
    if (ip === null) throw new InvalidArgumentError(`${JSON.stringify(a.host)} is not an IP address`);
    const entry = new Uint8Array(1 + ip.length + 2);
    entry[0] = ip.length === 4 ? 4 : 6;
    entry.set(ip, 1);
    entry[1 + ip.length] = a.port >> 8;
    entry[2 + ip.length] = a.port & 0xff;
    parts.push(entry);
  }
  parts.push(Uint8Array.of(introducers.length));
  for (const text of introducers) {
    if (typeof text !== 'string') throw new InvalidArgumentError('an introducer must be a dial string');
    parseDialString(text); // throws InvalidArgumentError
    const bytes = Buffer.from(text, 'utf8');
    if (bytes.length > 255) throw new InvalidArgumentError('an introducer dial string may have at most 255 bytes');
    parts.push(Uint8Array.of(bytes.length), bytes);
  }
  const v = new Uint8Array(Buffer.concat(parts));
  if (bencodedStringLength(v) > MAX_RECORD_VALUE) {
    throw new InvalidArgumentError(`the record is ${bencodedStringLength(v)} bytes bencoded; BEP 44 allows ${MAX_RECORD_VALUE}: publish fewer addresses or introducers`);
  }
  return v;
}

/**
 * Decodes the value `v` of an item published under `publicKey` with sequence
 * number `seq` (whose signature the caller has checked). Returns null for
 * anything malformed: a bad key or seq, an oversized value, an unknown
 * version, a bad address or dial string, trailing bytes. Never throws.
 */
export function decodeRecord(publicKey: Uint8Array, seq: number, v: Uint8Array): PeerRecord | null {
  if (!(publicKey instanceof Uint8Array) || publicKey.length !== KEY_LENGTH) return null;
  if (!Number.isSafeInteger(seq) || seq < 0) return null;
  if (!(v instanceof Uint8Array) || v.length < 2 || bencodedStringLength(v) > MAX_RECORD_VALUE) return null;
  if (v[0] !== RECORD_VERSION) return null;
  let i = 1;
  const addresses: PeerAddress[] = [];
  const nAddresses = v[i++]!;
  for (let n = 0; n < nAddresses; n++) {
    const family = v[i++];
    const size = family === 4 ? 4 : family === 6 ? 16 : 0;
    if (size === 0 || i + size + 2 > v.length) return null;
    const host = bytesToIp(v.subarray(i, i + size));
    const port = (v[i + size]! << 8) | v[i + size + 1]!;
    if (port === 0) return null;
    addresses.push({ host, port });
    i += size + 2;
  }
  if (i >= v.length) return null;
  const introducers: string[] = [];
  const nIntroducers = v[i++]!;
  for (let n = 0; n < nIntroducers; n++) {
    const len = v[i++];
    if (len === undefined || len === 0 || i + len > v.length) return null;
    const bytes = v.subarray(i, i + len);
    const text = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString('utf8');
    if (!Buffer.from(text, 'utf8').equals(bytes)) return null; // not valid UTF-8
    try {
      parseDialString(text);
    } catch {
      return null;
    }
    introducers.push(text);
    i += len;
  }
  if (i !== v.length) return null;
  return { publicKey: new Uint8Array(publicKey), addresses, introducers, seq };
}

/** The 4 or 16 bytes of an IP address literal (IPv4-mapped IPv6 becomes IPv4), or null. */
export function ipToBytes(host: string): Uint8Array | null {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(host);
  if (mapped !== null) host = mapped[1]!;
  const kind = host.includes('%') ? 0 : isIP(host); // no zone ids: they mean nothing to another machine
  if (kind === 4) return Uint8Array.from(host.split('.').map(Number));
  if (kind !== 6) return null;
  let text = host;
  const tail: number[] = [];
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4 !== null) {
    tail.push(...v4[1]!.split('.').map(Number));
    text = `${text.slice(0, v4.index)}0:0`; // placeholder groups, replaced below
  }
  const [head, rest] = text.includes('::') ? text.split('::') : [text, undefined];
  const left = head === '' ? [] : head!.split(':');
  const right = rest === undefined || rest === '' ? [] : rest.split(':');
  const groups = rest === undefined ? left : [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right];
  const out = new Uint8Array(16);
  groups.forEach((g, k) => {
    const n = parseInt(g, 16);
    out[2 * k] = n >> 8;
    out[2 * k + 1] = n & 0xff;
  });
  if (tail.length === 4) out.set(tail, 12);
  return out;
}

/** The text form of 4 or 16 address bytes (IPv6 in RFC 5952 form: lowercase, longest zero run as `::`). */
export function bytesToIp(b: Uint8Array): string {
  if (b.length === 4) return Array.from(b).join('.');
  const groups: number[] = [];
  for (let k = 0; k < 8; k++) groups.push((b[2 * k]! << 8) | b[2 * k + 1]!);
  let best = -1;
  let bestLen = 1;
  for (let k = 0; k < 8; ) {
    if (groups[k] !== 0) {
      k++;
      continue;
    }
    let e = k;
    while (e < 8 && groups[e] === 0) e++;
    if (e - k > bestLen) {
      best = k;
      bestLen = e - k;
    }
    k = e;
  }
  const hex = groups.map((g) => g.toString(16));
  if (best < 0) return hex.join(':');
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
}
