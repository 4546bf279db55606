/**
 * A lossy userspace UDP relay on loopback, for the reliability and security
 * lab. No kernel netem exists here, so this relay is how loss, delay and
 * rebinding are made: real dgram sockets, all decisions from a seeded PRNG
 * (one stream per client and direction, so a client's decisions do not
 * depend on how other clients' packets interleave with its own).
 *
 *   client ──► relay.address() ──► [impairments c2s] ──► upstream socket ──► server
 *   client ◄── relay.address() ◄── [impairments s2c] ◄── upstream socket ◄── server
 *
 * Usage:
 *
 *   const relay = await Relay.create({ target: server.address(), seed, c2s: { drop: 0.3 }, s2c: { drop: 0.3 } });
 *   t.teardown(() => relay.close());
 *   t.log(`seed ${relay.seed}`);
 *   const conn = await client.connect({ publicKey: server.publicKey, ...relay.address() });
 *
 * API (everything is bounded; `close()` clears every timer and socket):
 * - `Relay.create(opts: RelayOptions)`: binds the listening socket on `opts.host`
 *   (default 127.0.0.1, port 0). Each client source address gets its own upstream
 *   socket (on `opts.upstreamHost`, default `host`) towards `opts.target`, so the
 *   server sees one address per client, as behind a NAT.
 * - `relay.address()`: `{ host, port }` to dial (with the server's key).
 * - `relay.seed`: the seed in use (`opts.seed`, else `LAB_SEED`, else random).
 * - `relay.impair(dir, imp)`: replaces the impairments of 'c2s', 's2c' or 'both'
 *   (see `Impairment`: drop, burst, gilbert, duplicate, reorder, delayMs,
 *   jitterMs, corrupt, rate). Takes effect for the next packet.
 * - `relay.filter(dir, fn)`: `fn(data, info)` returning false drops the packet
 *   (before the impairments); `undefined` removes it. `relay.tap(dir, fn)`: `fn(data,
 *   info, verdict)` sees every packet and what became of it (for traces).
 * - `relay.blackhole(ms, dir?)`: drops everything for `ms` from now.
 *   `relay.scheduleBlackhole({ periodMs, durationMs, offsetMs?, dir? })`: on/off
 *   holes (the first one `offsetMs` from now); `relay.stopBlackholes()`.
 * - `relay.rebind({ address? })`: moves every client to a fresh upstream socket
 *   (new port; and address, e.g. '127.0.0.2'), closing the old one, as a NAT
 *   rebinding does. Resolves with the new upstream addresses.
 * - `relay.inject(dir, data, client?)`: sends bytes as if from the client ('c2s',
 *   from its upstream socket) or from the server ('s2c'), bypassing impairments.
 *   `relay.captured(dir)` lists packets kept when `opts.capture` > 0;
 *   `relay.replay(dir, packets)` injects them again.
 * - `relay.watch(marker)`: counts received datagrams containing `marker` (also
 *   `opts.markers`); `relay.markerHits(marker)` reads the count.
 * - `relay.stats()`: per direction packets/bytes in and out, drops by cause,
 *   corrupted, duplicated, reordered, injected, the longest gap between forwarded
 *   packets (the silence the receiver saw); per client
 *   the bytes each way before its address was validated (a client Handshake or
 *   1-RTT packet forwarded), and whether it has been.
 * - `relay.clients()`: the client mappings (`RelayClient`); at most `opts.maxClients`
 *   (default 256), the least recently heard forgotten first, as a NAT does.
 */
import dgram from 'node:dgram';
import { isIP } from 'node:net';
import { performance } from 'node:perf_hooks';

import { labSeed } from './prng';
import { provesAddress } from './quic-packets';
import {
  Client,
  Lane,
  type CapturedPacket,
  type Direction,
  type DirectionStats,
  type Impairment,
  type PacketInfo,
  type RelayClient,
  type Verdict,
} from './relay-state';

export type { CapturedPacket, Direction, DirectionStats, Impairment, PacketInfo, RelayClient, Verdict } from './relay-state';

/** Options of `Relay.create`. */
export interface RelayOptions {
  /** The server's address. */
  target: { address: string; port: number };
  /** Listening address (default '127.0.0.1'). */
  host?: string;
  /** Address of the upstream sockets (default `host`). */
  upstreamHost?: string;
  /** PRNG seed (default: LAB_SEED, else random). */
  seed?: number;
  c2s?: Impairment;
  s2c?: Impairment;
  /** Byte strings to count in received datagrams. */
  markers?: (string | Uint8Array)[];
  /** Packets kept per direction for `captured`/`replay` (default 0). */
  capture?: number;
  /** Client source addresses mapped at most (default 256); beyond it the least recently heard is forgotten. */
  maxClients?: number;
}

/** Most held-back packets per direction; more are forwarded at once. */
const MAX_HELD = 64;
/** Packets queued per direction for delay or rate at most; more are dropped (queueDropped). */
const MAX_QUEUED = 100_000;
/** Packets a client may queue while its first upstream socket binds. */
const MAX_BACKLOG = 256;

/** The relay. See the file comment for the API. */
export class Relay {
  readonly seed: number;
  readonly #listen: dgram.Socket;
  readonly #target: { address: string; port: number };
  readonly #upstreamHost: string;
  readonly #lanes: Record<Direction, Lane>;
  readonly #clients = new Map<string, Client>();
  readonly #markers = new Map<string, { bytes: Buffer; hits: number }>();
  readonly #captureLimit: number;
  readonly #maxClients: number;
  readonly #sockets = new Set<dgram.Socket>();
  #closed = false;
  #evicted = 0;
  #clientCount = 0;

  private constructor(listen: dgram.Socket, opts: RelayOptions, seed: number) {
    this.#listen = listen;
    this.#target = opts.target;
    this.#upstreamHost = opts.upstreamHost ?? opts.host ?? '127.0.0.1';
    this.seed = seed;
    this.#lanes = { c2s: new Lane(opts.c2s ?? {}), s2c: new Lane(opts.s2c ?? {}) };
    this.#captureLimit = opts.capture ?? 0;
    this.#maxClients = opts.maxClients ?? 256;
    for (const m of opts.markers ?? []) this.watch(m);
    this.#sockets.add(listen);
    listen.on('message', (msg, rinfo) => this.#fromClient(msg, rinfo.address, rinfo.port));
    listen.on('error', () => this.#lanes.c2s.stats.sendErrors++);
  }

  /** Binds the listening socket and returns the relay. */
  static async create(opts: RelayOptions): Promise<Relay> {
    const host = opts.host ?? '127.0.0.1';
    const listen = await bindSocket(host);
    return new Relay(listen, opts, (opts.seed ?? labSeed()) >>> 0);
  }

  /** Where clients dial. */
  address(): { host: string; port: number } {
    const a = this.#listen.address();
    return { host: a.address, port: a.port };
  }

  /** Replaces the impairments of one direction or both. */
  impair(dir: Direction | 'both', imp: Impairment): void {
    for (const l of this.#lanesOf(dir)) l.imp = { ...imp };
  }

  /** Installs (or removes) a filter: returning false drops the packet. */
  filter(dir: Direction | 'both', fn: ((data: Buffer, info: PacketInfo) => boolean) | undefined): void {
    for (const l of this.#lanesOf(dir)) l.filter = fn;
  }

  /** Calls `fn` with every received packet and its verdict (for traces); `undefined` removes it. */
  tap(dir: Direction | 'both', fn: ((data: Buffer, info: PacketInfo, verdict: Verdict) => void) | undefined): void {
    for (const l of this.#lanesOf(dir)) l.tap = fn;
  }

  /** Drops everything for `ms` from now. */
  blackhole(ms: number, dir: Direction | 'both' = 'both'): void {
    const until = performance.now() + ms;
    for (const l of this.#lanesOf(dir)) l.holeUntil = until;
  }

  /** Drops everything for `durationMs` in every `periodMs`, the first hole `offsetMs` from now. */
  scheduleBlackhole(o: { periodMs: number; durationMs: number; offsetMs?: number; dir?: Direction | 'both' }): void {
    if (!(o.periodMs > 0) || !(o.durationMs >= 0)) throw new Error('periodMs must be > 0 and durationMs ≥ 0');
    const t0 = performance.now() + (o.offsetMs ?? 0);
    for (const l of this.#lanesOf(o.dir ?? 'both')) l.periodic = { t0, period: o.periodMs, duration: o.durationMs };
  }

  /** Ends scheduled and one-off black holes. */
  stopBlackholes(): void {
    for (const l of this.#lanesOf('both')) {
      l.periodic = undefined;
      l.holeUntil = 0;
    }
  }

  /** Moves every client to a fresh upstream socket (new port; `address` if given) and closes the old one. */
  async rebind(opts: { address?: string } = {}): Promise<{ address: string; port: number }[]> {
    const moved: { address: string; port: number }[] = [];
    for (const c of this.#clients.values()) {
      const sock = await this.#upstreamSocket(c, opts.address ?? this.#upstreamHost);
      if (this.#closed) break;
      const old = c.sock;
      c.sock = sock;
      if (old !== undefined) this.#closeSocket(old);
      moved.push(c.upstream);
    }
    return moved;
  }

  /** Sends `data` as if from the client ('c2s') or the server ('s2c'), past the impairments. */
  inject(dir: Direction, data: Uint8Array, client?: RelayClient): void {
    const c = (client as Client | undefined) ?? [...this.#clients.values()].at(-1);
    if (c === undefined || this.#closed) return;
    this.#lanes[dir].stats.injected++;
    this.#send(dir, c, Buffer.from(data), false);
  }

  /** The packets kept of one direction (`opts.capture`). */
  captured(dir: Direction): CapturedPacket[] {
    return [...this.#lanes[dir].capture];
  }

  /** Injects captured packets again, to the same clients. */
  replay(dir: Direction, packets: CapturedPacket[]): void {
    for (const p of packets) this.inject(dir, p.data, p.client);
  }

  /** Counts received datagrams that contain `marker`. */
  watch(marker: string | Uint8Array): void {
    const bytes = Buffer.from(marker);
    if (bytes.length === 0) throw new Error('empty marker');
    const key = bytes.toString('hex');
    if (!this.#markers.has(key)) this.#markers.set(key, { bytes, hits: 0 });
  }

  /** Datagrams (either direction) that contained `marker` since it was watched. */
  markerHits(marker: string | Uint8Array): number {
    return this.#markers.get(Buffer.from(marker).toString('hex'))?.hits ?? 0;
  }

  /** The client mappings. */
  clients(): RelayClient[] {
    return [...this.#clients.values()];
  }

  /** Counters of both directions and of every client. */
  stats(): { c2s: DirectionStats; s2c: DirectionStats; clients: RelayClient[]; evicted: number } {
    const snap = (c: RelayClient): RelayClient => ({
      address: c.address,
      port: c.port,
      upstream: c.upstream,
      validated: c.validated,
      preValidation: { ...c.preValidation },
    });
    return { c2s: { ...this.#lanes.c2s.stats }, s2c: { ...this.#lanes.s2c.stats }, clients: this.clients().map(snap), evicted: this.#evicted };
  }

  /** Stops forwarding, clears every timer and closes every socket. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const l of this.#lanesOf('both')) {
      clearTimeout(l.timer);
      clearTimeout(l.holdTimer);
      l.heap.items.length = 0;
      l.held = [];
      l.capture.length = 0;
    }
    await Promise.all([...this.#sockets].map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
    this.#sockets.clear();
  }

  #lanesOf(dir: Direction | 'both'): Lane[] {
    return dir === 'both' ? [this.#lanes.c2s, this.#lanes.s2c] : [this.#lanes[dir]];
  }

  #closeSocket(s: dgram.Socket): void {
    if (!this.#sockets.delete(s)) return;
    s.close();
  }

  async #upstreamSocket(c: Client, host: string): Promise<dgram.Socket> {
    const sock = await bindSocket(host);
    if (this.#closed) {
      sock.close();
      return sock;
    }
    this.#sockets.add(sock);
    sock.on('message', (msg, rinfo) => {
      // Only the server's packets, and only on the client's current socket
      // (the old one of a rebinding is closed, as a NAT forgets it).
      if (sock !== c.sock || rinfo.port !== this.#target.port) return;
      this.#receive('s2c', c, msg);
    });
    sock.on('error', () => this.#lanes.s2c.stats.sendErrors++);
    return sock;
  }

  #fromClient(msg: Buffer, address: string, port: number): void {
    if (this.#closed) return;
    const key = `${address}|${port}`;
    let c = this.#clients.get(key);
    if (c === undefined) {
      // Full: forget the client heard from longest ago, as a NAT would.
      if (this.#clients.size >= this.#maxClients) this.#evictOldest();
      const fresh = new Client(address, port, this.seed, this.#clientCount++);
      c = fresh;
      this.#clients.set(key, fresh);
      void this.#upstreamSocket(fresh, this.#upstreamHost).then(
        (sock) => {
          if (this.#closed) return;
          fresh.sock = sock;
          for (const b of fresh.backlog.splice(0)) this.#emit('c2s', fresh, b);
        },
        () => this.#lanes.c2s.stats.sendErrors++,
      );
    }
    c.lastSeen = performance.now();
    this.#receive('c2s', c, msg);
  }

  #evictOldest(): void {
    let oldest: [string, Client] | undefined;
    for (const e of this.#clients) if (oldest === undefined || e[1].lastSeen < oldest[1].lastSeen) oldest = e;
    if (oldest === undefined) return;
    this.#clients.delete(oldest[0]);
    if (oldest[1].sock !== undefined) this.#closeSocket(oldest[1].sock);
    this.#evicted++;
  }

  /** One received datagram through the pipeline of its direction. */
  #receive(dir: Direction, c: Client, data: Buffer): void {
    if (this.#closed) return;
    const lane = this.#lanes[dir];
    const st = lane.stats;
    const now = performance.now();
    const index = st.packetsIn++;
    st.bytesIn += data.length;
    if (dir === 's2c' && !c.validated) {
      c.preValidation.s2cBytes += data.length;
      c.preValidation.s2cPackets++;
    }
    for (const m of this.#markers.values()) if (data.indexOf(m.bytes) !== -1) m.hits++;
    if (this.#captureLimit > 0) {
      if (lane.capture.length >= this.#captureLimit) lane.capture.shift();
      lane.capture.push({ data: Buffer.from(data), at: now, index, client: c });
    }
    if (lane.filter !== undefined && !lane.filter(data, { dir, index, client: c })) {
      st.filtered++;
      lane.tap?.(data, { dir, index, client: c }, 'filtered');
      return;
    }
    if (lane.holed(now)) {
      st.blackholed++;
      lane.tap?.(data, { dir, index, client: c }, 'blackholed');
      return;
    }
    const flow = c.flows[dir];
    const rng = flow.rng;
    if (flow.lost(lane.imp)) {
      st.dropped++;
      lane.tap?.(data, { dir, index, client: c }, 'dropped');
      return;
    }
    const imp = lane.imp;
    let out = data;
    if (imp.corrupt !== undefined && out.length > 0 && rng.chance(imp.corrupt)) {
      out = Buffer.from(out);
      out[rng.int(0, out.length - 1)]! ^= rng.int(1, 255);
      st.corrupted++;
    }
    lane.tap?.(data, { dir, index, client: c }, out === data ? 'passed' : 'corrupted');
    const copies = imp.duplicate !== undefined && rng.chance(imp.duplicate) ? 2 : 1;
    if (copies === 2) st.duplicated++;
    for (let i = 0; i < copies; i++) this.#reorderStage(dir, lane, c, out, now);
  }

  #reorderStage(dir: Direction, lane: Lane, c: Client, data: Buffer, now: number): void {
    const r = lane.imp.reorder;
    if (r !== undefined && lane.held.length < MAX_HELD && c.flows[dir].rng.chance(r.p)) {
      lane.stats.reordered++;
      lane.held.push({ client: c, data, left: Math.max(1, r.after), since: now });
      this.#armHold(dir, lane, r.maxHoldMs ?? 50);
      return;
    }
    this.#output(dir, lane, c, data, now);
    if (lane.held.length === 0) return;
    const due = lane.held.filter((h) => --h.left <= 0);
    if (due.length === 0) return;
    lane.held = lane.held.filter((h) => h.left > 0);
    for (const h of due) this.#output(dir, lane, h.client, h.data, now);
  }

  #armHold(dir: Direction, lane: Lane, maxHoldMs: number): void {
    if (lane.holdTimer !== undefined) return;
    const oldest = lane.held[0];
    if (oldest === undefined) return;
    lane.holdTimer = setTimeout(() => {
      lane.holdTimer = undefined;
      if (this.#closed) return;
      const now = performance.now();
      const due = lane.held.filter((h) => now - h.since >= maxHoldMs - 0.5);
      lane.held = lane.held.filter((h) => now - h.since < maxHoldMs - 0.5);
      for (const h of due) this.#output(dir, lane, h.client, h.data, now);
      this.#armHold(dir, lane, maxHoldMs);
    }, Math.max(0, oldest.since + maxHoldMs - performance.now()));
  }

  /** Rate limit, delay and jitter; then the packet leaves. */
  #output(dir: Direction, lane: Lane, c: Client, data: Buffer, now: number): void {
    const { rate, delayMs = 0, jitterMs = 0 } = lane.imp;
    let at = now;
    if (rate !== undefined) {
      const backlog = (Math.max(0, lane.linkFreeAt - now) * rate.bytesPerSec) / 1000;
      if (backlog + data.length > (rate.queueBytes ?? 64 * 1024)) {
        lane.stats.queueDropped++;
        return;
      }
      lane.linkFreeAt = Math.max(now, lane.linkFreeAt) + (data.length * 1000) / rate.bytesPerSec;
      at = lane.linkFreeAt;
    }
    at += delayMs + (jitterMs > 0 ? (c.flows[dir].rng.next() * 2 - 1) * jitterMs : 0);
    if (at <= now && lane.heap.size === 0) {
      this.#emit(dir, c, data);
      return;
    }
    if (lane.heap.size >= MAX_QUEUED) {
      lane.stats.queueDropped++;
      return;
    }
    lane.heap.push({ at, seq: lane.seq++, client: c, data });
    this.#armRelease(dir, lane);
  }

  #armRelease(dir: Direction, lane: Lane): void {
    const next = lane.heap.peek();
    if (next === undefined || (lane.timer !== undefined && lane.timerAt <= next.at)) return;
    clearTimeout(lane.timer);
    lane.timerAt = next.at;
    lane.timer = setTimeout(() => {
      lane.timer = undefined;
      lane.timerAt = Infinity;
      if (this.#closed) return;
      // Timers have 1 ms resolution: release what is due within it.
      const until = performance.now() + 0.5;
      for (let p = lane.heap.peek(); p !== undefined && p.at <= until; p = lane.heap.peek()) {
        lane.heap.pop();
        this.#emit(dir, p.client, p.data);
      }
      this.#armRelease(dir, lane);
    }, Math.max(0, Math.floor(next.at - performance.now())));
  }

  #emit(dir: Direction, c: Client, data: Buffer): void {
    this.#send(dir, c, data, true);
  }

  #send(dir: Direction, c: Client, data: Buffer, count: boolean): void {
    if (this.#closed) return;
    const lane = this.#lanes[dir];
    const st = lane.stats;
    if (count) {
      const now = performance.now();
      if (st.packetsOut > 0) st.maxGapMs = Math.max(st.maxGapMs, now - lane.lastOut);
      lane.lastOut = now;
    }
    if (dir === 'c2s') {
      if (c.sock === undefined) {
        if (c.backlog.length < MAX_BACKLOG) c.backlog.push(data);
        return;
      }
      if (!c.validated) {
        c.preValidation.c2sBytes += data.length;
        c.preValidation.c2sPackets++;
        if (provesAddress(data)) c.validated = true;
      }
      if (count) {
        st.packetsOut++;
        st.bytesOut += data.length;
      }
      c.sock.send(data, this.#target.port, this.#target.address, (err) => err && st.sendErrors++);
    } else {
      if (count) {
        st.packetsOut++;
        st.bytesOut += data.length;
      }
      this.#listen.send(data, c.port, c.address, (err) => err && st.sendErrors++);
    }
  }
}

async function bindSocket(host: string): Promise<dgram.Socket> {
  const sock = dgram.createSocket(isIP(host) === 6 ? { type: 'udp6', ipv6Only: true } : { type: 'udp4' });
  await new Promise<void>((resolve, reject) => {
    sock.once('error', reject);
    sock.bind(0, host, () => {
      sock.off('error', reject);
      resolve();
    });
  });
  try {
    sock.setRecvBufferSize(4 * 1024 * 1024);
    sock.setSendBufferSize(4 * 1024 * 1024);
  } catch {
    // The kernel may cap buffer sizes.
  }
  return sock;
}
