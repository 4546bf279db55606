/**
 * The introducer's role in introductions (protocol 'peersock/introduce/1',
 * see introduce.ts for the whole exchange), served only by sockets with
 * natTraversal({ introducer: true }): it answers 'connect' (introduce the
 * asker to a peer it is connected to, opening a relay pair when wanted),
 * 'ready' (pass 'go' on to the target), 'release' (the dialer went direct:
 * free the relay pair) and 'relay' (a fresh relay pair for a direct path that
 * died). Each requesting connection has at most MAX_CONCURRENT_PER_PEER
 * introductions in progress.
 */
import { randomBytes } from 'node:crypto';

import type { PeerConnection } from '../connection';
import type { PeerSocket } from '../peer-socket';
import { BusyError, NotConnectedError, errorFromCode } from '../errors';
import { keysEqual } from '../keys';
import type { Dispatcher } from '../messages/dispatcher';
import { DecodeError, RemoteError } from '../messages/errors';
import { IntroductionError, NoPathError } from './errors';
import { RELAY_LIMIT, RELAY_OFF, RELAY_OK, RELAY_UNWANTED, concat, encodeOffer, u32 } from './offer';
import { isVirtualAddress } from './paths';
import type { RelayServer } from './relay';
import { TOKEN_LENGTH } from './wire';

/** Time limit of the introducer's requests to the target (and of the dialer's 'relay' request), ms. */
export const INTRODUCE_TIMEOUT = 5000;
/** How long the introducer remembers a pair for 'ready' (ms). */
const INTRO_MEMORY_MS = 30_000;
/** Introductions one connection may have in progress at the introducer, at most. */
const MAX_CONCURRENT_PER_PEER = 4;

interface Introduced {
  a: PeerConnection;
  b: PeerConnection;
}

/** The introducer side of one socket's introductions: registers its handlers on the protocol's dispatcher. */
export class Introducer {
  readonly #host: PeerSocket;
  readonly #d: Dispatcher;
  readonly #relay: RelayServer | undefined;
  readonly #stats: { introduced: number };
  /** Pairs by id, for 'ready'. */
  readonly #pairs = new Map<number, Introduced>();
  /** Introductions in progress per requesting connection. */
  readonly #inFlight = new WeakMap<PeerConnection, number>();

  /** Serves introductions on `host` through dispatcher `d` (and relays with `relay`); counts them in `stats`. */
  constructor(host: PeerSocket, d: Dispatcher, relay: RelayServer | undefined, stats: { introduced: number }) {
    this.#host = host;
    this.#d = d;
    this.#relay = relay;
    this.#stats = stats;
    d.handle('connect', (msg: Uint8Array, ctx) => this.#onConnect(msg, ctx.connection));
    d.handle('ready', (msg: Uint8Array, ctx) => this.#onReady(msg, ctx.connection));
    d.handle('release', (msg: Uint8Array, ctx) => this.#onRelease(msg, ctx.connection));
    d.handle('relay', (msg: Uint8Array, ctx) => this.#onRelay(msg, ctx.connection));
  }

  async #onConnect(msg: Uint8Array, a: PeerConnection): Promise<Uint8Array> {
    if (!(msg instanceof Uint8Array) || msg.length !== 33) throw new DecodeError('connect: expected key and flags');
    const key = new Uint8Array(msg.subarray(0, 32));
    const b = this.#peerOf(a, key);
    return this.#limited(a, () => this.#introduce(a, b, key, (msg[32]! & 1) !== 0));
  }

  /** The introducer's connection to `key`, for a request from `a`; throws when there is none to use. */
  #peerOf(a: PeerConnection, key: Uint8Array): PeerConnection {
    const b = this.#host.connections.find((c) => c !== a && c.closeInfo === undefined && keysEqual(c.remotePublicKey, key));
    if (b === undefined || keysEqual(key, a.remotePublicKey)) throw new NotConnectedError('the introducer is not connected to that peer');
    // Addresses of introduced connections are virtual: nothing to tell, nowhere to relay to.
    if (isVirtualAddress(a._pathAddress.address) || isVirtualAddress(b._pathAddress.address)) {
      throw new IntroductionError('cannot introduce over an introduced connection');
    }
    return b;
  }

  /** Runs `work` for `a`, at most MAX_CONCURRENT_PER_PEER at a time. */
  async #limited<T>(a: PeerConnection, work: () => Promise<T>): Promise<T> {
    const busy = this.#inFlight.get(a) ?? 0;
    if (busy >= MAX_CONCURRENT_PER_PEER) throw new BusyError('too many introductions in progress');
    this.#inFlight.set(a, busy + 1);
    try {
      return await work();
    } finally {
      this.#inFlight.set(a, (this.#inFlight.get(a) ?? 1) - 1);
    }
  }

  async #introduce(a: PeerConnection, b: PeerConnection, key: Uint8Array, wantRelay: boolean): Promise<Uint8Array> {
    const relay = this.#relay;
    let pairId: number | undefined;
    let relayState = RELAY_UNWANTED;
    if (wantRelay) {
      if (relay === undefined) relayState = RELAY_OFF;
      else {
        pairId = relay.open(a, b);
        relayState = pairId === undefined ? RELAY_LIMIT : RELAY_OK;
      }
    }
    while (pairId === undefined || pairId === 0 || this.#pairs.has(pairId)) pairId = randomBytes(4).readUInt32BE(0);
    const id = pairId;
    this.#pairs.set(id, { a, b });
    setTimeout(() => this.#pairs.delete(id), INTRO_MEMORY_MS).unref();
    const token = new Uint8Array(randomBytes(TOKEN_LENGTH));
    const aAddr = a.remoteAddress;
    const bAddr = b.remoteAddress;
    try {
      await this.#d.request(b, encodeOffer({ key: a.remotePublicKey, pairId: id, relay: relayState, token, peer: aAddr, you: bAddr }), { type: 'introduce', timeout: INTRODUCE_TIMEOUT });
    } catch (e) {
      this.#pairs.delete(id);
      if (relayState === RELAY_OK) relay?.drop(id);
      // Pass the target's verdict on (refused by its accept hook, say).
      if (e instanceof RemoteError) throw errorFromCode(e.remoteCode, e.message, { cause: e });
      throw new IntroductionError(`the peer did not take the introduction: ${(e as Error).message}`, { cause: e });
    }
    this.#stats.introduced++;
    return encodeOffer({ key, pairId: id, relay: relayState, token, peer: bAddr, you: aAddr });
  }

  #onReady(msg: Uint8Array, from: PeerConnection): void {
    if (!(msg instanceof Uint8Array) || msg.length !== 4) return;
    const pair = this.#pairs.get(Buffer.from(msg).readUInt32BE(0));
    if (pair === undefined || pair.a !== from || pair.b.closeInfo !== undefined) return;
    this.#d.send(pair.b, msg, { type: 'go' }).catch(() => {});
  }

  /** The dialer went direct: its relay pair is not needed (frees a `maxPairs` slot at once). */
  #onRelease(msg: Uint8Array, from: PeerConnection): void {
    if (!(msg instanceof Uint8Array) || msg.length !== 4) return;
    const id = Buffer.from(msg).readUInt32BE(0);
    const pair = this.#pairs.get(id);
    if (pair === undefined || pair.a !== from) return;
    this.#relay?.drop(id);
  }

  /**
   * A dialer whose direct path died asks for a fresh relay pair to the peer
   * it was introduced to (its key and the introduction's token); the target
   * checks the token against its route and takes the pair.
   */
  async #onRelay(msg: Uint8Array, a: PeerConnection): Promise<Uint8Array> {
    if (!(msg instanceof Uint8Array) || msg.length !== 32 + TOKEN_LENGTH) throw new DecodeError('relay: expected key and token');
    const relay = this.#relay;
    if (relay === undefined) throw new NoPathError('the introducer does not relay (relay-off)', { reason: 'relay-off' });
    const b = this.#peerOf(a, new Uint8Array(msg.subarray(0, 32)));
    return this.#limited(a, async () => {
      const pairId = relay.open(a, b);
      if (pairId === undefined) throw new NoPathError('the introducer relays no more pairs (relay-limit)', { reason: 'relay-limit' });
      try {
        await this.#d.request(b, concat([a.remotePublicKey, msg.subarray(32), u32(pairId)]), { type: 'relayed', timeout: INTRODUCE_TIMEOUT });
      } catch (e) {
        relay.drop(pairId);
        if (e instanceof RemoteError) throw errorFromCode(e.remoteCode, e.message, { cause: e });
        throw new IntroductionError(`the peer did not take the relay: ${(e as Error).message}`, { cause: e });
      }
      return u32(pairId);
    });
  }

  /** Forgets the pairs it introduced. */
  close(): void {
    this.#pairs.clear();
  }
}
