/**
 * The punch strategy of introductions. The low-TTL round (TTL `punchTtl`)
 * opens this side's own NAT mapping towards the peer without reaching the
 * peer's NAT; a side behind a NAT also probes SPRAY random ports of the
 * peer's address in it (the bounded birthday attempt for a port-randomising
 * peer), and later opens PROBES extra sockets if no punch arrived. Full
 * punches go from the socket's own port with `sendRaw`; the path layer
 * (NatPaths) learns the direct address from the first punch that arrives.
 */
import { randomBytes } from 'node:crypto';

import type { PeerSocket } from '../peer-socket';
import type { AddressInfo } from '../transport';
import { isLocal } from './classify';
import type { NatPaths, Route } from './paths';
import { punchFrame } from './wire';

/** Full punches: one every PUNCH_INTERVAL ms. */
export const PUNCH_INTERVAL = 40;
/** Full punches per side, at most (one every PUNCH_INTERVAL ms, so about 2.4 s). */
export const MAX_PUNCHES = 60;
/** Random ports of the peer's address probed in the low-TTL round (behind a NAT). */
const SPRAY = 1024;
const SPRAY_CHUNK = 64;
/**
 * Probe sockets opened (behind a NAT) when no punch arrived within
 * PROBE_DELAY ms of full punching: against a peer's SPRAY ports, 256 random
 * mappings meet one with a chance of 1 - (1 - 1024/64512)^256 ≈ 98 %.
 */
const PROBES = 256;
const PROBE_DELAY = 250;
/** Probe sockets punch in this many rounds, this far apart, and close at the end of punching. */
const PROBE_ROUNDS = 3;
const PROBE_GAP = 200;
/** A pause of the punch loops; it does not keep the process alive on its own. */
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms).unref());

/** Punching for the routes of one socket. */
export class Puncher {
  readonly #socket: PeerSocket;
  readonly #nat: NatPaths;
  readonly #punchTtl: number;

  /** Punches from `socket` for routes of its path layer `nat`, the first round at TTL `punchTtl`. */
  constructor(socket: PeerSocket, nat: NatPaths, punchTtl: number) {
    this.#socket = socket;
    this.#nat = nat;
    this.#punchTtl = punchTtl;
  }

  /** Opens our own mapping towards `peer` (behind a NAT only): low-TTL punches, plus random ports. */
  async lowRound(route: Route, peer: AddressInfo, seenAs: AddressInfo): Promise<void> {
    if (isLocal(seenAs, this.#socket.address())) return; // no NAT of ours to open
    const nat = this.#nat;
    const frame = punchFrame(route.token);
    const frames: [Uint8Array, string, number][] = [];
    for (let i = 0; i < 3; i++) frames.push([frame, peer.address, peer.port]);
    await nat.sendLowTtl(frames, this.#punchTtl);
    // The birthday part: the peer's NAT may map it to another port towards us.
    const ports = new Set<number>();
    while (ports.size < SPRAY) {
      const p = 1024 + (randomBytes(2).readUInt16BE(0) % 64512);
      if (p !== peer.port) ports.add(p);
    }
    const list = [...ports];
    for (let i = 0; i < list.length; i += SPRAY_CHUNK) {
      if (route.direct !== undefined) return;
      await nat.sendLowTtl(list.slice(i, i + SPRAY_CHUNK).map((p) => [frame, peer.address, p]), this.#punchTtl);
      await sleep(1);
    }
  }

  /**
   * The birthday half on a port-randomising side: if no punch arrived soon,
   * PROBES extra sockets (each its own NAT mapping) punch the peer, whose
   * low-TTL round opened SPRAY random ports towards us. A hit becomes the
   * route's direct path; the other sockets close.
   */
  async probe(route: Route, peer: AddressInfo, seenAs: AddressInfo): Promise<void> {
    if (isLocal(seenAs, this.#socket.address())) return;
    const nat = this.#nat;
    const live = (): boolean => route.direct === undefined && nat.route(route.address) === route;
    await sleep(PROBE_DELAY);
    if (!live()) return;
    const probes = await nat.openProbes(route, PROBES);
    if (!live()) {
      nat.closeProbes(route);
      return;
    }
    const frame = punchFrame(route.token);
    const noop = (): void => {};
    for (let round = 0; round < PROBE_ROUNDS && live(); round++) {
      for (let i = 0; i < probes.length && live(); i += SPRAY_CHUNK) {
        for (const p of probes.slice(i, i + SPRAY_CHUNK)) p.send(frame, peer.port, peer.address, noop);
        await sleep(1);
      }
      await sleep(PROBE_GAP);
    }
    await sleep(Math.max(0, MAX_PUNCHES * PUNCH_INTERVAL - PROBE_DELAY - PROBE_ROUNDS * PROBE_GAP));
    nat.closeProbes(route);
  }

  /** Full punches towards `peer` until one arrives from the peer or `count` are sent. */
  async punch(route: Route, peer: AddressInfo, count: number): Promise<void> {
    const nat = this.#nat;
    const frame = punchFrame(route.token);
    for (let i = 0; i < count && route.direct === undefined && nat.route(route.address) === route; i++) {
      this.#socket.sendRaw(frame, peer.port, peer.address).catch(() => {}); // a lost punch
      await sleep(PUNCH_INTERVAL);
    }
  }
}
