/**
 * The relay's types and per-packet state: the public types (re-exported by
 * relay.ts), the release-time heap, client mappings, each client's random
 * flows, and each direction's lane of impairments and counters.
 */
import type dgram from 'node:dgram';

import { Prng } from './prng';

/** A direction through the relay: client→server or server→client. */
export type Direction = 'c2s' | 's2c';

/** What the relay does to packets of one direction, applied in this order. */
export interface Impairment {
  /** Independent loss probability per packet. */
  drop?: number;
  /** Loss in bursts: a long-run fraction `rate` of packets lost, each burst 1..`maxLen` packets (uniform). */
  burst?: { rate: number; maxLen: number };
  /** Gilbert-Elliott loss: good→bad with `p`, bad→good with `r` per packet; loss `lossBad` (1) / `lossGood` (0). */
  gilbert?: { p: number; r: number; lossBad?: number; lossGood?: number };
  /** Probability of flipping one random byte (XOR with a random non-zero value). */
  corrupt?: number;
  /** Probability of sending a packet twice. */
  duplicate?: number;
  /** With probability `p`, hold a packet back until `after` later packets passed (at most `maxHoldMs`, default 50). */
  reorder?: { p: number; after: number; maxHoldMs?: number };
  /** Bandwidth cap: serialise at `bytesPerSec`, dropping when more than `queueBytes` (default 64 KiB) wait. */
  rate?: { bytesPerSec: number; queueBytes?: number };
  /** Fixed one-way delay (ms). */
  delayMs?: number;
  /** Uniform jitter ± this many ms on top of the delay (may reorder, as netem does). */
  jitterMs?: number;
}

/** Counters of one direction. */
export interface DirectionStats {
  packetsIn: number;
  bytesIn: number;
  packetsOut: number;
  bytesOut: number;
  /** Lost to drop, burst or gilbert. */
  dropped: number;
  blackholed: number;
  filtered: number;
  /** Dropped by the rate limiter's full queue. */
  queueDropped: number;
  corrupted: number;
  duplicated: number;
  reordered: number;
  injected: number;
  sendErrors: number;
  /** Longest time between two forwarded packets (ms): the longest silence the receiving peer saw. */
  maxGapMs: number;
}

/** One client mapping: the client's address and the upstream socket that stands for it. */
export interface RelayClient {
  readonly address: string;
  readonly port: number;
  /** Where the server sees this client now (changes with `rebind`). */
  readonly upstream: { address: string; port: number };
  /** A client Handshake or 1-RTT packet has been forwarded (RFC 9000 §8.1). */
  readonly validated: boolean;
  /** Bytes/packets each way while not validated: c2s forwarded to the server, s2c sent by it. */
  readonly preValidation: { c2sBytes: number; c2sPackets: number; s2cBytes: number; s2cPackets: number };
}

/** What a filter sees besides the bytes. */
export interface PacketInfo {
  dir: Direction;
  /** 0-based index of this packet among those received in its direction. */
  index: number;
  client: RelayClient;
}

/** What became of a received packet (duplicates, reordering and delay come after). */
export type Verdict = 'filtered' | 'blackholed' | 'dropped' | 'corrupted' | 'passed';

/** A captured packet, as received. */
export interface CapturedPacket {
  data: Buffer;
  at: number;
  index: number;
  client: RelayClient;
}

export interface Timed {
  at: number;
  seq: number;
  client: Client;
  data: Buffer;
}

/** A binary min-heap of packets by release time (then arrival order). */
export class Heap {
  readonly items: Timed[] = [];
  get size(): number {
    return this.items.length;
  }
  peek(): Timed | undefined {
    return this.items[0];
  }
  #less(a: Timed, b: Timed): boolean {
    return a.at < b.at || (a.at === b.at && a.seq < b.seq);
  }
  push(x: Timed): void {
    const h = this.items;
    h.push(x);
    for (let i = h.length - 1; i > 0; ) {
      const p = (i - 1) >> 1;
      if (!this.#less(h[i]!, h[p]!)) break;
      [h[i], h[p]] = [h[p]!, h[i]!];
      i = p;
    }
  }
  pop(): Timed | undefined {
    const h = this.items;
    const top = h[0];
    const last = h.pop();
    if (h.length > 0 && last !== undefined) {
      h[0] = last;
      for (let i = 0; ; ) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && this.#less(h[l]!, h[m]!)) m = l;
        if (r < h.length && this.#less(h[r]!, h[m]!)) m = r;
        if (m === i) break;
        [h[i], h[m]] = [h[m]!, h[i]!];
        i = m;
      }
    }
    return top;
  }
}

export class Client implements RelayClient {
  readonly address: string;
  readonly port: number;
  readonly flows: Record<Direction, Flow>;
  sock: dgram.Socket | undefined;
  /** Packets towards the server waiting for the first upstream socket to bind (bounded). */
  readonly backlog: Buffer[] = [];
  validated = false;
  lastSeen = 0;
  readonly preValidation = { c2sBytes: 0, c2sPackets: 0, s2cBytes: 0, s2cPackets: 0 };

  /** `index`: the order in which the relay first heard from this client, which picks its PRNG streams. */
  constructor(address: string, port: number, seed: number, index: number) {
    this.address = address;
    this.port = port;
    this.flows = { c2s: new Flow(new Prng(seed, 2 * index + 1)), s2c: new Flow(new Prng(seed, 2 * index + 2)) };
  }

  get upstream(): { address: string; port: number } {
    const a = this.sock?.address();
    return { address: a?.address ?? '', port: a?.port ?? 0 };
  }
}

/**
 * The random state of one client's packets in one direction: its own PRNG
 * stream (so a flow's decisions do not depend on how other clients'
 * packets interleave with it) and its loss models' state.
 */
export class Flow {
  readonly rng: Prng;
  burstLeft = 0;
  gilbertBad = false;

  constructor(rng: Prng) {
    this.rng = rng;
  }

  /** The loss models, in order; true drops the packet. */
  lost(imp: Impairment): boolean {
    const { drop, burst, gilbert } = imp;
    const rng = this.rng;
    if (drop !== undefined && rng.chance(drop)) return true;
    if (burst !== undefined) {
      if (this.burstLeft > 0) {
        this.burstLeft--;
        return true;
      }
      // Start a burst with the probability that makes the long-run loss `rate`.
      const mean = (1 + burst.maxLen) / 2;
      if (rng.chance(burst.rate / (mean * (1 - burst.rate) + burst.rate))) {
        this.burstLeft = rng.int(1, burst.maxLen) - 1;
        return true;
      }
    }
    if (gilbert !== undefined) {
      this.gilbertBad = this.gilbertBad ? !rng.chance(gilbert.r) : rng.chance(gilbert.p);
      if (rng.chance(this.gilbertBad ? (gilbert.lossBad ?? 1) : (gilbert.lossGood ?? 0))) return true;
    }
    return false;
  }
}

/** The pipeline of one direction: impairments, their state and their counters. */
export class Lane {
  imp: Impairment;
  readonly stats: DirectionStats = {
    packetsIn: 0, bytesIn: 0, packetsOut: 0, bytesOut: 0, dropped: 0, blackholed: 0, filtered: 0,
    queueDropped: 0, corrupted: 0, duplicated: 0, reordered: 0, injected: 0, sendErrors: 0, maxGapMs: 0,
  };
  filter: ((data: Buffer, info: PacketInfo) => boolean) | undefined;
  tap: ((data: Buffer, info: PacketInfo, verdict: Verdict) => void) | undefined;
  holeUntil = 0;
  periodic: { t0: number; period: number; duration: number } | undefined;
  lastOut = 0;
  linkFreeAt = 0;
  held: { client: Client; data: Buffer; left: number; since: number }[] = [];
  holdTimer: NodeJS.Timeout | undefined;
  readonly heap = new Heap();
  timer: NodeJS.Timeout | undefined;
  timerAt = Infinity;
  seq = 0;
  readonly capture: CapturedPacket[] = [];

  constructor(imp: Impairment) {
    this.imp = imp;
  }

  holed(now: number): boolean {
    if (now < this.holeUntil) return true;
    const p = this.periodic;
    return p !== undefined && now >= p.t0 && (now - p.t0) % p.period < p.duration;
  }
}
