/**
 * LAN discovery over multicast DNS (the `multicast-dns` package): a host
 * advertises its key, QUIC port and topics on the local link, and finds the
 * addresses of a key, or the peers of a topic, with no DHT and no server.
 *
 *   const lan = await LanDiscovery.start({ interface: '192.168.1.20' });
 *   lan.advertise({ publicKey: socket.publicKey, port: socket.address().port, topics: [topic] });
 *   const addrs = await lan.resolve(key, { timeout: 1000, first: true });
 *   for await (const p of lan.lookup(topic, { timeout: 2000 })) { ... }
 *   await lan.close();
 *
 * Names and records are in mdns-records.ts. Queries are re-sent a few times
 * within a timeout (multicast is lossy); answers go to the group, so every
 * waiting asker hears them. A host answers at most `ANSWER_BURST` queries at
 * once and `ANSWER_RATE` a second after that: a flood of queries cannot make
 * it flood the link. Malformed packets are dropped and counted.
 *
 * What is heard is a hint: anyone on the link can answer for any key. Dial
 * the addresses pinned to the key (`connect({ publicKey, host, port })`); the
 * QUIC handshake proves it.
 */
import { isIPv4 } from 'node:net';
import makeMdns from 'multicast-dns';

import { AbortError, ClosedError, InvalidArgumentError, SocketError } from '../errors';
import { assertKey, keysEqual } from '../keys';
import {
  ANSWER_BURST,
  ANSWER_RATE,
  checkWait,
  dedupeTopics,
  interfaceHosts,
  MAX_LOOKUP_RESULTS,
  MAX_RESOLVE_RESULTS,
  MAX_TOPICS,
  recordId,
  RESEND_AT,
  TokenBucket,
  TOPICS_PER_PACKET,
  type LanAdvertisement,
  type LanDiscoveryOptions,
  type LanDiscoveryStats,
  type LanLookupOptions,
  type LanPeer,
  type LanResolveOptions,
} from './mdns-options';
import { allRecords, answerQuestions, assertTopic, checkAdvertisement, instanceName, peersInResponse, SERVICE, topicName, type Advertisement, type HeardPeer, type MdnsRecord } from './mdns-records';
import type { PeerAddress } from './record';

export { ANSWER_BURST, ANSWER_RATE, MAX_LOOKUP_RESULTS, MAX_RESOLVE_RESULTS, MAX_TOPICS } from './mdns-options';
export type { LanAdvertisement, LanDiscoveryOptions, LanDiscoveryStats, LanLookupOptions, LanPeer, LanResolveOptions } from './mdns-options';
export type { PeerAddress } from './record';

type Listener = (peer: HeardPeer) => void;

/** mDNS discovery on one link: advertises this host, resolves keys, looks up topics. */
export class LanDiscovery {
  /** Counters, for tests and diagnostics. */
  readonly stats: LanDiscoveryStats = { queries: 0, answered: 0, rateLimited: 0, responses: 0, malformed: 0 };
  readonly #mdns: makeMdns.MulticastDNS;
  readonly #opts: LanDiscoveryOptions;
  readonly #ttl: number;
  readonly #listeners = new Set<Listener>();
  readonly #timers = new Set<NodeJS.Timeout>();
  #ad: Advertisement | undefined;
  #explicitHosts = false;
  readonly #bucket = new TokenBucket(ANSWER_BURST, ANSWER_RATE);
  #closed = false;

  private constructor(mdns: makeMdns.MulticastDNS, opts: LanDiscoveryOptions) {
    this.#mdns = mdns;
    this.#opts = opts;
    this.#ttl = opts.ttl ?? 120;
    mdns.on('warning', () => this.stats.malformed++);
    mdns.on('error', () => {}); // after start: a late socket error; the instance stays usable or silent
    mdns.on('query', (q: unknown, rinfo: { address?: unknown; port?: unknown }) => this.#guard(() => this.#onQuery(q, rinfo)));
    mdns.on('response', (r: unknown, rinfo: { address?: unknown }) => this.#guard(() => this.#onResponse(r, rinfo)));
  }

  /**
   * Opens the mDNS socket (bound to the mDNS port on every address, joined to
   * the group on `interface` or every interface). Rejects with
   * InvalidArgumentError for bad options, SocketError when it cannot bind.
   */
  static async start(opts: LanDiscoveryOptions = {}): Promise<LanDiscovery> {
    if (opts === null || typeof opts !== 'object') throw new InvalidArgumentError('options must be an object');
    if (opts.interface !== undefined && !isIPv4(opts.interface)) throw new InvalidArgumentError('interface must be an IPv4 address');
    if (opts.ip !== undefined && !isIPv4(opts.ip)) throw new InvalidArgumentError('ip must be an IPv4 multicast address');
    if (opts.port !== undefined && !(Number.isInteger(opts.port) && opts.port >= 1 && opts.port <= 65535)) throw new InvalidArgumentError('port must be an integer 1..65535');
    if (opts.ttl !== undefined && !(Number.isInteger(opts.ttl) && opts.ttl >= 1 && opts.ttl <= 86_400)) throw new InvalidArgumentError('ttl must be an integer 1..86400 (seconds)');
    const mdns = makeMdns({
      type: 'udp4',
      port: opts.port ?? 5353,
      ...(opts.ip !== undefined ? { ip: opts.ip } : {}),
      ...(opts.interface !== undefined ? { interface: opts.interface } : {}),
      // Bound to a unicast address, Linux delivers no multicast: bind the wildcard.
      bind: '0.0.0.0',
      loopback: opts.loopback ?? true,
      reuseAddr: true,
    });
    await new Promise<void>((resolve, reject) => {
      const onError = (e: Error): void => {
        mdns.destroy();
        reject(new SocketError(`mDNS socket: ${e.message}`, { cause: e }));
      };
      mdns.once('error', onError);
      mdns.once('ready', () => {
        mdns.removeListener('error', onError);
        resolve();
      });
    });
    return new LanDiscovery(mdns, { ...opts });
  }

  /**
   * What this host advertises: answers matching queries from now on, and
   * announces it (an unsolicited response, sent twice a second apart).
   * Replaces the previous advertisement; records it no longer has are
   * withdrawn (sent with TTL 0). Throws InvalidArgumentError for a bad key,
   * port, topic or host, ClosedError once closed.
   */
  advertise(info: LanAdvertisement): void {
    if (this.#closed) throw new ClosedError('LAN discovery is closed');
    checkAdvertisement(info);
    if (info.topics.length > MAX_TOPICS) throw new InvalidArgumentError(`at most ${MAX_TOPICS} topics are advertised on the LAN`);
    const old = this.#ad;
    this.#explicitHosts = info.hosts !== undefined;
    const ad: Advertisement = {
      publicKey: Uint8Array.from(info.publicKey),
      port: info.port,
      topics: dedupeTopics(info.topics.map((t) => Uint8Array.from(t))),
      hosts: info.hosts !== undefined ? [...new Set(info.hosts)] : interfaceHosts(this.#opts.interface),
    };
    this.#ad = ad;
    if (old !== undefined) {
      const kept = new Set(allRecords(ad, 1).map(recordId));
      const gone = allRecords(old, 0).filter((r) => !kept.has(recordId(r)));
      if (gone.length > 0) void this.#announce(gone);
    }
    void this.#announce(allRecords(ad, this.#ttl));
    this.#later(1000, () => {
      if (this.#ad === ad) void this.#announce(allRecords(ad, this.#ttl));
    });
  }

  /**
   * Asks the link for `publicKey`'s addresses: resolves with every address
   * heard within `timeout` ms (deduplicated, at most MAX_RESOLVE_RESULTS), or
   * with the first answer's addresses when `first`; [] if none. Rejects with
   * AbortError on abort, ClosedError when closed before it starts (closing
   * during a resolve ends it with what was heard).
   */
  resolve(publicKey: Uint8Array, opts: LanResolveOptions): Promise<PeerAddress[]> {
    try {
      assertKey(publicKey, 'publicKey');
      checkWait(opts);
      if (this.#closed) throw new ClosedError('LAN discovery is closed');
      if (opts.signal?.aborted) throw new AbortError('resolve aborted', { cause: opts.signal.reason });
    } catch (e) {
      return Promise.reject(e);
    }
    const key = Uint8Array.from(publicKey);
    const name = instanceName(key);
    const found = new Map<string, PeerAddress>();
    return new Promise<PeerAddress[]>((resolve, reject) => {
      const stop = this.#listen(
        opts,
        (peer) => {
          if (!keysEqual(peer.publicKey, key)) return;
          for (const host of peer.hosts) {
            if (found.size < MAX_RESOLVE_RESULTS) found.set(`${host}|${peer.port}`, { host, port: peer.port });
          }
          if (opts.first === true && found.size > 0) stop(undefined);
        },
        (err) => (err !== undefined ? reject(err) : resolve([...found.values()])),
        () =>
          this.#query([
            { name, type: 'SRV' },
            { name, type: 'TXT' },
          ]),
      );
    });
  }

  /**
   * Peers advertising `topic` on the link, as they answer: { host, port,
   * publicKey }, each host:port and key once (at most MAX_LOOKUP_RESULTS),
   * until `timeout` ms, an abort or close() (all end it quietly). This
   * host's own advertisement (its current key) is left out. Throws
   * InvalidArgumentError for a bad topic or options, ClosedError once closed.
   */
  lookup(topic: Uint8Array, opts: LanLookupOptions): AsyncIterable<LanPeer> {
    assertTopic(topic);
    checkWait(opts);
    if (this.#closed) throw new ClosedError('LAN discovery is closed');
    const name = topicName(topic);
    return {
      [Symbol.asyncIterator]: () => this.#lookup(name, opts),
    };
  }

  /** Stops answering, withdraws the advertisement (TTL 0), ends every resolve and lookup, closes the socket. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
    const ad = this.#ad;
    this.#ad = undefined;
    if (ad !== undefined) await this.#announce(allRecords(ad, 0));
    for (const l of [...this.#listeners]) l(CLOSING);
    await new Promise<void>((resolve) => this.#mdns.destroy(() => resolve()));
  }

  /** The async iterator of one lookup: a queue fed by the response listener. */
  async *#lookup(name: string, opts: LanLookupOptions): AsyncGenerator<LanPeer> {
    const queue: LanPeer[] = [];
    const seen = new Set<string>();
    let done = false;
    let wake: (() => void) | undefined;
    const stop = this.#listen(
      opts,
      (peer) => {
        if (!peer.pointers.has(name)) return;
        const own = this.#ad?.publicKey;
        if (own !== undefined && keysEqual(own, peer.publicKey)) return;
        const key = Buffer.from(peer.publicKey).toString('hex');
        for (const host of peer.hosts) {
          const id = `${key}|${host}|${peer.port}`;
          if (seen.has(id) || seen.size >= MAX_LOOKUP_RESULTS) continue;
          seen.add(id);
          queue.push({ host, port: peer.port, publicKey: Uint8Array.from(peer.publicKey) });
        }
        wake?.();
      },
      () => {
        done = true;
        wake?.();
      },
      () => this.#query([{ name, type: 'PTR' }]),
      true,
    );
    try {
      while (true) {
        const next = queue.shift();
        if (next !== undefined) {
          yield next;
          continue;
        }
        if (done) return;
        await new Promise<void>((resolve) => (wake = resolve));
        wake = undefined;
      }
    } finally {
      stop(undefined);
    }
  }

  /**
   * Runs one wait: `onPeer` for every peer heard, `ask()` now and at
   * RESEND_AT within the timeout, then `end` once (timeout, `stop()`, close,
   * or abort: AbortError unless `quietAbort`). Returns `stop`.
   */
  #listen(opts: { timeout: number; signal?: AbortSignal }, onPeer: Listener, end: (err: Error | undefined) => void, ask: () => void, quietAbort = false): (err: Error | undefined) => void {
    const timers: NodeJS.Timeout[] = [];
    let ended = false;
    const stop = (err: Error | undefined): void => {
      if (ended) return;
      ended = true;
      for (const t of timers) clearTimeout(t);
      this.#listeners.delete(listener);
      opts.signal?.removeEventListener('abort', onAbort);
      end(err);
    };
    const listener: Listener = (peer) => (peer === CLOSING ? stop(undefined) : onPeer(peer));
    const onAbort = (): void => stop(quietAbort ? undefined : new AbortError('aborted', { cause: opts.signal?.reason }));
    // Already over: a lookup iterated after close() or with an aborted signal ends at once.
    if (this.#closed || opts.signal?.aborted) {
      queueMicrotask(() => (this.#closed ? stop(undefined) : onAbort()));
      return stop;
    }
    this.#listeners.add(listener);
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    timers.push(setTimeout(() => stop(undefined), opts.timeout));
    for (const at of RESEND_AT) if (at < opts.timeout) timers.push(setTimeout(ask, at));
    ask();
    return stop;
  }

  /**
   * Answers a query that names this host's records: to the group, or
   * straight back to the asker when it did not send from the mDNS port (a
   * "legacy unicast" query, e.g. `dig -p 5353 @224.0.0.251`; RFC 6762 §6.7:
   * same id, questions echoed, TTLs of at most 10 s).
   */
  #onQuery(packet: unknown, rinfo: { address?: unknown; port?: unknown }): void {
    const ad = this.#ad;
    if (ad === undefined || this.#closed) return;
    if (!this.#explicitHosts) ad.hosts = interfaceHosts(this.#opts.interface);
    const q = packet as { id?: unknown; questions?: unknown } | null;
    const legacy = typeof rinfo?.port === 'number' && rinfo.port !== (this.#opts.port ?? 5353) && typeof rinfo.address === 'string';
    const reply = answerQuestions(q?.questions, ad, legacy ? Math.min(10, this.#ttl) : this.#ttl);
    if (reply === undefined) return;
    if (!this.#bucket.take()) {
      this.stats.rateLimited++;
      return;
    }
    this.stats.answered++;
    const res = { answers: reply.answers as never, additionals: reply.additionals as never };
    if (!legacy) return this.#mdns.respond(res, () => {});
    const id = typeof q?.id === 'number' ? q.id : 0;
    const questions = Array.isArray(q?.questions) ? q.questions.slice(0, 32) : [];
    this.#mdns.respond({ ...res, id, questions } as never, { address: rinfo.address as string, port: rinfo.port as number }, () => {});
  }

  #onResponse(packet: unknown, rinfo: { address?: unknown }): void {
    this.stats.responses++;
    if (this.#listeners.size === 0) return;
    const from = typeof rinfo?.address === 'string' ? rinfo.address : '';
    for (const peer of peersInResponse(packet, from)) {
      for (const l of [...this.#listeners]) l(peer);
    }
  }

  /**
   * Sends `records` as unsolicited responses; resolves once sent. Topic PTRs
   * go TOPICS_PER_PACKET to a packet, each with the instance's SRV, TXT and
   * addresses, so every packet alone tells a listener where the topic's peer is.
   */
  #announce(records: MdnsRecord[]): Promise<void> {
    const topicPtrs = records.filter((r) => r.type === 'PTR' && r.name.endsWith(`._sub.${SERVICE}`));
    const rest = records.filter((r) => !topicPtrs.includes(r));
    const instance = rest.filter((r) => r.type !== 'PTR');
    const packets: MdnsRecord[][] = [rest];
    for (let i = 0; i < topicPtrs.length; i += TOPICS_PER_PACKET) packets.push([...topicPtrs.slice(i, i + TOPICS_PER_PACKET), ...instance]);
    return Promise.all(packets.map((answers) => new Promise<void>((resolve) => this.#mdns.respond({ answers: answers as never }, () => resolve())))).then(() => {});
  }

  #query(questions: Array<{ name: string; type: 'SRV' | 'TXT' | 'PTR' }>): void {
    if (this.#closed) return;
    this.stats.queries++;
    this.#mdns.query({ questions }, () => {});
  }

  #later(ms: number, fn: () => void): void {
    const t = setTimeout(() => {
      this.#timers.delete(t);
      fn();
    }, ms);
    t.unref();
    this.#timers.add(t);
  }

  /** Runs a packet handler; a hostile packet that makes it throw is counted, never crashes the process. */
  #guard(fn: () => void): void {
    try {
      fn();
    } catch {
      this.stats.malformed++;
    }
  }
}

/** Sentinel passed to listeners when the instance closes. */
const CLOSING = { publicKey: new Uint8Array(0), port: 0, hosts: [], pointers: new Set<string>() } as HeardPeer;
