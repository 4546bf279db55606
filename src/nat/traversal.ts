/**
 * The NAT traversal extension: install it at bind to dial peers by key
 * through an introducer (`connect({ publicKey, via })`) and to be dialed that
 * way. Serving others (introducing two peers, relaying their packets) is
 * opt-in: `natTraversal({ introducer: true })`.
 *
 *   const s = await PeerSocket.bind({ extensions: [natTraversal()] });
 *
 * It is built on public seams only: it wraps the socket's transport with the
 * NAT path layer (virtual addresses, relay frames, probes), speaks its
 * protocol through a Dispatcher, receives relay frames as 'raw' datagrams and
 * sends punches and relayed packets with `sendRaw`.
 */
import { PeerConnection } from '../connection';
import { AbortError, ClosedError, InvalidArgumentError } from '../errors';
import { assertKey, keysEqual } from '../keys';
import { checkMs, type ConnectOptions, type IntroducedTarget, type SocketExtension } from '../options';
import type { PeerSocket } from '../peer-socket';
import type { AddressInfo, DatagramTransport } from '../transport';
import { DEFAULT_DIRECT_TIMEOUT, DEFAULT_PUNCH_TTL, Introductions, type IntroductionStats } from './introduce';
import { NatPaths, type PathKind, type PathStats, type Route } from './paths';
import { RelayServer, checkRelayOptions, type RelayOptions, type RelayStats } from './relay';
import { RELAY_TO, frameKind } from './wire';

/** Options of `natTraversal()`. */
export interface NatTraversalOptions {
  /** Introduce peers connected to this socket to each other when they ask (default false). */
  introducer?: boolean;
  /** As introducer: relay the pairs it introduces, within these limits; false: never (default: on, see RelayOptions). */
  relay?: RelayOptions | false;
  /** IP TTL of the first punch round: past our own NAT, not as far as the peer's (default 5). */
  punchTtl?: number;
}

/** The path of a connection: 'direct' for ordinary ones, or the route of an introduced one. */
export interface ConnectionPath {
  kind: PathKind;
  /** The peer's real address when known (direct or punched). */
  direct: AddressInfo | undefined;
  /** The relay's address, when the introducer relays this pair. */
  relay: AddressInfo | undefined;
  /** Counters of the route (introduced connections only). */
  stats: PathStats | undefined;
}

const installed = new WeakMap<PeerSocket, NatTraversal>();
const noop = (): void => {};

/** The NAT traversal extension of one socket. */
export class NatTraversal implements SocketExtension {
  readonly #introducer: boolean;
  readonly #relayOptions: RelayOptions | false;
  readonly #punchTtl: number;
  #paths: NatPaths | undefined;
  #relay: RelayServer | undefined;
  #intro: Introductions | undefined;

  /** Checks the options (InvalidArgumentError); install it with `bind({ extensions: [...] })`. */
  constructor(opts: NatTraversalOptions = {}) {
    if (opts === null || typeof opts !== 'object') throw new InvalidArgumentError('options must be an object');
    if (opts.introducer !== undefined && typeof opts.introducer !== 'boolean') throw new InvalidArgumentError('introducer must be a boolean');
    checkRelayOptions(opts.relay);
    if (opts.punchTtl !== undefined && (!Number.isInteger(opts.punchTtl) || opts.punchTtl < 1 || opts.punchTtl > 255)) throw new InvalidArgumentError('punchTtl must be an integer 1..255');
    this.#introducer = opts.introducer === true;
    this.#relayOptions = opts.relay ?? {};
    this.#punchTtl = opts.punchTtl ?? DEFAULT_PUNCH_TTL;
  }

  /** The extension installed on `socket`, if any. */
  static of(socket: PeerSocket): NatTraversal | undefined {
    return installed.get(socket);
  }

  /** @internal The path layer goes between the socket and its transport. */
  wrapTransport(transport: DatagramTransport): DatagramTransport {
    if (this.#paths !== undefined) throw new InvalidArgumentError('a natTraversal() extension serves one socket');
    this.#paths = new NatPaths(transport);
    return this.#paths;
  }

  /** @internal */
  attach(socket: PeerSocket): void {
    const paths = this.#paths;
    if (paths === undefined || installed.has(socket)) throw new InvalidArgumentError('natTraversal() must be installed once, at bind');
    installed.set(socket, this);
    if (this.#introducer && this.#relayOptions !== false) {
      const relay = new RelayServer((frame, port, address) => socket.sendRaw(frame, port, address).catch(noop), this.#relayOptions);
      this.#relay = relay;
      socket.on('raw', (data: Buffer, from: AddressInfo) => {
        if (frameKind(data) === RELAY_TO) relay.forward(data, from.address, from.port);
      });
    }
    const intro = new Introductions(socket, paths, this.#relay, { introducer: this.#introducer, punchTtl: this.#punchTtl });
    this.#intro = intro;
    socket.setIntroducedDialer((target, opts) => this.#dial(socket, intro, target, opts));
  }

  /** @internal */
  detach(): void {
    this.#intro?.close();
    this.#relay?.close();
  }

  /** The path layer (undefined until installed). */
  get paths(): NatPaths | undefined {
    return this.#paths;
  }

  /** The relay service (undefined unless this socket introduces and relays). */
  get relay(): RelayServer | undefined {
    return this.#relay;
  }

  /** Counters of introductions (undefined until installed). */
  get stats(): IntroductionStats | undefined {
    return this.#intro?.stats;
  }

  /** The route `conn` runs on (undefined: an ordinary connection). */
  routeOf(conn: PeerConnection): Route | undefined {
    return this.#paths?.routeOf(conn._pathAddress.address, conn);
  }

  /** `connect({ publicKey, via })`: checks synchronously, then introduction, punching, relay fallback. */
  #dial(socket: PeerSocket, intro: Introductions, target: IntroducedTarget, opts: ConnectOptions): Promise<PeerConnection> {
    const key = assertKey(target.publicKey, 'publicKey');
    let via = target.via;
    if (via instanceof Uint8Array) {
      const k = assertKey(via, 'via');
      const c = socket.connections.find((x) => x.closeInfo === undefined && keysEqual(x.remotePublicKey, k));
      if (c === undefined) throw new InvalidArgumentError('via: no open connection to that key');
      via = c;
    } else if (!(via instanceof PeerConnection)) throw new InvalidArgumentError('via must be a PeerConnection or a public key');
    const timeout = checkMs(opts.timeout, 'timeout') ?? socket.handshakeTimeout ?? 10_000;
    const directTimeout = checkMs(opts.directTimeout, 'directTimeout') ?? DEFAULT_DIRECT_TIMEOUT;
    const signal = opts.signal;
    if (signal !== undefined && !(signal instanceof AbortSignal)) throw new InvalidArgumentError('signal must be an AbortSignal');
    if (opts.direct === false && opts.relay === false) throw new InvalidArgumentError('direct and relay cannot both be false');
    if (socket._closing) return Promise.reject(new ClosedError('socket is closed'));
    if (signal?.aborted) return Promise.reject(new AbortError());
    return intro.dial(key, via, { timeout, signal, direct: opts.direct !== false, relay: opts.relay !== false, directTimeout });
  }
}

/**
 * The NAT traversal extension, for `PeerSocket.bind({ extensions: [natTraversal()] })`:
 * dial and be dialed through introducers; `{ introducer: true }` also serves others.
 */
export function natTraversal(opts: NatTraversalOptions = {}): NatTraversal {
  return new NatTraversal(opts);
}

/**
 * How `conn` (a connection of `socket`) travels. Introduced connections run
 * on a virtual address (100::x); this says where their packets really go.
 */
export function connectionPath(socket: PeerSocket, conn: PeerConnection): ConnectionPath {
  const r = NatTraversal.of(socket)?.routeOf(conn);
  if (r === undefined) return { kind: 'direct', direct: { ...conn._pathAddress }, relay: undefined, stats: undefined };
  const relay = r.relay !== undefined ? { address: r.relay.address, port: r.relay.port, family: r.relay.address.includes(':') ? 'IPv6' as const : 'IPv4' as const } : undefined;
  return { kind: r.kind, direct: r.direct, relay, stats: { ...r.stats } };
}

/** The relay counters of `socket` (undefined when it relays for nobody). */
export function relayStats(socket: PeerSocket): RelayStats | undefined {
  const r = NatTraversal.of(socket)?.relay;
  return r === undefined ? undefined : { ...r.stats };
}
