/**
 * The DNS records of LAN discovery (mDNS, RFC 6762, with DNS-SD naming, RFC
 * 6763): how a peer's key and topics become names, what a host answers, and
 * how a heard response becomes peers. Pure functions over multicast-dns's
 * decoded packets; the sockets are in mdns.ts.
 *
 * Names (z-base-32 keys as in keys.ts, 52 characters, one DNS label):
 *   service        _peersock._udp.local
 *   instance       <key>._peersock._udp.local      SRV (port, target), TXT
 *   host           <key>.local                     A / AAAA (the host's addresses)
 *   topic subtype  _<topic hex>._sub._peersock._udp.local   PTR → instance
 * TXT holds "v=1" and "pk=<key>", the full key again.
 *
 * A response is a hint, never a proof: anyone on the link can answer for any
 * name. Parsing only makes sure what it returns is well formed (a valid key,
 * port and IP address) and bounded; the QUIC handshake pins the key.
 */
import { isIP } from 'node:net';

import { InvalidArgumentError } from '../errors';
import { assertKey, decodeKey, encodeKey, ENCODED_KEY_LENGTH } from '../keys';

/** The DNS-SD service type of peersock records. */
export const SERVICE = '_peersock._udp.local';
/** The DNS-SD name listing every service type on the link. */
export const SERVICES_ENUMERATION = '_services._dns-sd._udp.local';
/** Longest topic in bytes: its hex and a leading underscore fill one DNS label (63 characters). */
export const MAX_TOPIC_LENGTH = 31;
/** Records a packet may carry before the rest is ignored (answers and additionals together). */
export const MAX_RECORDS_PER_PACKET = 64;
/** Addresses taken from one peer's answer. */
export const MAX_HOSTS_PER_PEER = 8;

/** One DNS resource record as multicast-dns encodes and decodes it (the fields used here). */
export interface MdnsRecord {
  name: string;
  type: string;
  ttl?: number;
  class?: string;
  flush?: boolean;
  data?: unknown;
}

/** What a host advertises: its key, its QUIC port, its topics and addresses. */
export interface Advertisement {
  publicKey: Uint8Array;
  port: number;
  topics: Uint8Array[];
  /** Addresses for the A/AAAA records. */
  hosts: string[];
}

/** A peer heard in a response: its key (from the instance name), port, addresses and topic names. */
export interface HeardPeer {
  publicKey: Uint8Array;
  port: number;
  hosts: string[];
  /** Lowercased names of the PTR records pointing at this peer's instance (topics, the service). */
  pointers: Set<string>;
}

/** The instance name of `publicKey`. */
export function instanceName(publicKey: Uint8Array): string {
  return `${encodeKey(publicKey)}.${SERVICE}`;
}

/** The host name of `publicKey` (target of its SRV record). */
export function hostName(publicKey: Uint8Array): string {
  return `${encodeKey(publicKey)}.local`;
}

/** The subtype name of `topic` (1..31 bytes; InvalidArgumentError otherwise). */
export function topicName(topic: Uint8Array): string {
  assertTopic(topic);
  return `_${Buffer.from(topic.buffer, topic.byteOffset, topic.length).toString('hex')}._sub.${SERVICE}`;
}

/** Checks a topic: a Uint8Array of 1..31 bytes (discovery's topic hashes are 20). */
export function assertTopic(topic: unknown): Uint8Array {
  if (!(topic instanceof Uint8Array) || topic.length < 1 || topic.length > MAX_TOPIC_LENGTH) {
    throw new InvalidArgumentError(`a topic must be a Uint8Array of 1..${MAX_TOPIC_LENGTH} bytes`);
  }
  return topic;
}

/** The key named by an instance name (any case), or undefined if it names none. */
export function keyOfInstance(name: string): Uint8Array | undefined {
  const lower = name.toLowerCase();
  if (lower.length !== ENCODED_KEY_LENGTH + 1 + SERVICE.length || !lower.endsWith(`.${SERVICE}`)) return undefined;
  try {
    return decodeKey(lower.slice(0, ENCODED_KEY_LENGTH));
  } catch {
    return undefined;
  }
}

/** True for an address worth dialing: an IP literal, not unspecified, multicast or broadcast. */
export function usableHost(host: unknown): host is string {
  if (typeof host !== 'string') return false;
  const v = isIP(host);
  if (v === 4) return !(host === '0.0.0.0' || host === '255.255.255.255' || /^2(2[4-9]|3\d)\./.test(host));
  if (v === 6) return !(host === '::' || /^ff/i.test(host));
  return false;
}

/** Every record of `ad` with `ttl` seconds: service and topic PTRs, SRV, TXT, A/AAAA. */
export function allRecords(ad: Advertisement, ttl: number): MdnsRecord[] {
  const inst = instanceName(ad.publicKey);
  return [
    { name: SERVICE, type: 'PTR', ttl, data: inst },
    ...ad.topics.map((t) => ({ name: topicName(t), type: 'PTR', ttl, data: inst })),
    ...instanceRecords(ad, ttl),
  ];
}

/** SRV and TXT of the instance, then the host's A/AAAA records. */
export function instanceRecords(ad: Advertisement, ttl: number): MdnsRecord[] {
  const inst = instanceName(ad.publicKey);
  const label = encodeKey(ad.publicKey);
  return [
    { name: inst, type: 'SRV', ttl, flush: true, data: { port: ad.port, target: hostName(ad.publicKey), priority: 0, weight: 0 } },
    { name: inst, type: 'TXT', ttl, flush: true, data: ['v=1', `pk=${label}`] },
    ...addressRecords(ad, ttl),
  ];
}

/** The host's A/AAAA records. */
function addressRecords(ad: Advertisement, ttl: number): MdnsRecord[] {
  const host = hostName(ad.publicKey);
  return ad.hosts.map((h) => ({ name: host, type: isIP(h) === 6 ? 'AAAA' : 'A', ttl, flush: true, data: h }));
}

/**
 * What `ad` answers to `questions` (only the first 32 are read): the answers
 * and the additional records, or undefined when nothing matches.
 */
export function answerQuestions(questions: unknown, ad: Advertisement, ttl: number): { answers: MdnsRecord[]; additionals: MdnsRecord[] } | undefined {
  if (!Array.isArray(questions)) return undefined;
  const inst = instanceName(ad.publicKey);
  const host = hostName(ad.publicKey);
  const topics = new Set(ad.topics.map((t) => topicName(t)));
  let pointer: string | undefined; // PTR name asked for
  let instance = false;
  let addresses = false;
  for (const q of questions.slice(0, 32) as Array<{ name?: unknown; type?: unknown }>) {
    if (q === null || typeof q !== 'object' || typeof q.name !== 'string') continue;
    const name = q.name.toLowerCase();
    const type = q.type;
    if (name === inst && (type === 'SRV' || type === 'TXT' || type === 'ANY')) instance = true;
    else if (name === host && (type === 'A' || type === 'AAAA' || type === 'ANY')) addresses = true;
    else if ((name === SERVICE || topics.has(name)) && (type === 'PTR' || type === 'ANY')) pointer = name;
    else if (name === SERVICES_ENUMERATION && (type === 'PTR' || type === 'ANY')) pointer ??= name;
  }
  const answers: MdnsRecord[] = [];
  const additionals: MdnsRecord[] = [];
  if (pointer === SERVICES_ENUMERATION) answers.push({ name: SERVICES_ENUMERATION, type: 'PTR', ttl, data: SERVICE });
  else if (pointer !== undefined) {
    answers.push({ name: pointer, type: 'PTR', ttl, data: inst });
    if (!instance) additionals.push(...instanceRecords(ad, ttl));
  }
  if (instance) answers.push(...instanceRecords(ad, ttl));
  else if (addresses) answers.push(...addressRecords(ad, ttl));
  return answers.length > 0 ? { answers, additionals } : undefined;
}

/** The records of a decoded packet (answers, then additionals), at most MAX_RECORDS_PER_PACKET, malformed ones dropped. */
function recordsOf(packet: unknown): MdnsRecord[] {
  if (packet === null || typeof packet !== 'object') return [];
  const p = packet as { answers?: unknown; additionals?: unknown };
  const out: MdnsRecord[] = [];
  for (const list of [p.answers, p.additionals]) {
    if (!Array.isArray(list)) continue;
    for (const r of list.slice(0, MAX_RECORDS_PER_PACKET - out.length)) {
      if (r !== null && typeof r === 'object' && typeof r.name === 'string' && typeof r.type === 'string') out.push(r as MdnsRecord);
    }
  }
  return out;
}

/** The text strings of a TXT record's data (Buffers or strings), at most 16. */
function txtStrings(data: unknown): string[] {
  const items = Array.isArray(data) ? data.slice(0, 16) : [data];
  return items.flatMap((d) => (typeof d === 'string' ? [d] : Buffer.isBuffer(d) ? [d.toString('utf8')] : []));
}

/**
 * The peers a response describes: one per live SRV record (ttl > 0) under
 * an instance name that decodes to a key, with a port 1..65535, whose TXT
 * (when present) names the same key. Its hosts are the usable A/AAAA records
 * of the SRV target, else `from` (the packet's source address). Anything
 * else in the packet is ignored; the function never throws on bad input.
 */
export function peersInResponse(packet: unknown, from: string): HeardPeer[] {
  const records = recordsOf(packet);
  const addrs = new Map<string, string[]>(); // host name → addresses
  const pointers = new Map<string, Set<string>>(); // instance name → PTR names
  const txtKeys = new Map<string, string[]>(); // instance name → pk= values
  for (const r of records) {
    const name = r.name.toLowerCase();
    if (r.ttl === 0) continue; // a goodbye: the record is being withdrawn
    if ((r.type === 'A' || r.type === 'AAAA') && usableHost(r.data)) {
      const list = addrs.get(name) ?? [];
      if (list.length < MAX_HOSTS_PER_PEER && !list.includes(r.data)) list.push(r.data);
      addrs.set(name, list);
    } else if (r.type === 'PTR' && typeof r.data === 'string') {
      const target = r.data.toLowerCase();
      const set = pointers.get(target) ?? new Set<string>();
      if (set.size < MAX_RECORDS_PER_PACKET) set.add(name);
      pointers.set(target, set);
    } else if (r.type === 'TXT') {
      const pk = txtStrings(r.data).filter((s) => s.startsWith('pk=')).map((s) => s.slice(3).toLowerCase());
      txtKeys.set(name, [...(txtKeys.get(name) ?? []), ...pk]);
    }
  }
  const peers: HeardPeer[] = [];
  const seen = new Set<string>();
  for (const r of records) {
    if (r.type !== 'SRV' || r.ttl === 0) continue;
    const name = r.name.toLowerCase();
    const publicKey = keyOfInstance(name);
    if (publicKey === undefined || seen.has(name)) continue;
    const srv = r.data as { port?: unknown; target?: unknown } | null | undefined;
    if (srv === null || typeof srv !== 'object') continue;
    const port = srv.port;
    if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535) continue;
    const label = name.slice(0, ENCODED_KEY_LENGTH);
    const pks = txtKeys.get(name);
    if (pks !== undefined && pks.some((k) => k !== label)) continue; // TXT names another key: inconsistent
    const hosts = typeof srv.target === 'string' ? (addrs.get(srv.target.toLowerCase()) ?? []) : [];
    if (hosts.length === 0 && usableHost(from)) hosts.push(from);
    if (hosts.length === 0) continue;
    seen.add(name);
    peers.push({ publicKey, port, hosts, pointers: pointers.get(name) ?? new Set() });
  }
  return peers;
}

/** Checks an advertisement's key, port, topics and hosts (InvalidArgumentError). */
export function checkAdvertisement(info: unknown): void {
  if (info === null || typeof info !== 'object') throw new InvalidArgumentError('advertise() takes { publicKey, port, topics }');
  const i = info as { publicKey?: unknown; port?: unknown; topics?: unknown; hosts?: unknown };
  assertKey(i.publicKey, 'publicKey');
  if (typeof i.port !== 'number' || !Number.isInteger(i.port) || i.port < 1 || i.port > 65535) throw new InvalidArgumentError('port must be an integer 1..65535');
  if (!Array.isArray(i.topics)) throw new InvalidArgumentError('topics must be an array of Uint8Array');
  i.topics.forEach(assertTopic);
  if (i.hosts !== undefined && !(Array.isArray(i.hosts) && i.hosts.every((h) => usableHost(h)))) {
    throw new InvalidArgumentError('hosts must be an array of IP addresses');
  }
}
