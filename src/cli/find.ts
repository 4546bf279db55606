/**
 * Finding peers from the command line: `--bootstrap HOST:PORT` (a mainline
 * DHT node; repeatable), `--introducer KEY@HOST:PORT` (a peer that
 * introduces and relays for us; repeatable) and `--mdns` (the LAN). With any
 * of them, listen and receive publish their record, and connect and send
 * take a bare key. Nothing is contacted that the command line did not name.
 */
import { decodeKey, Discovery, InvalidArgumentError, natTraversal, observedAddress, type PeerConnection, type PeerSocket, type SocketExtension } from '../index';
import { dialArgument, flag, listOption, UsageError, type DialAddress, type OptionTable, type ParsedArgs } from './args';
import { log, toCliError } from './exit';
import { hostPort } from './net';

/** The options every finding command takes. */
export const FIND_OPTIONS: OptionTable = {
  bootstrap: { type: 'string', multiple: true },
  introducer: { type: 'string', multiple: true },
  mdns: { type: 'boolean' },
};

/** Their help lines. */
export const FIND_HELP = `  --bootstrap HOST:PORT
                  a mainline DHT node to join (repeat for several; e.g. one
                  run by \`peersock dht\`): peers are found by key alone
  --introducer KEY@HOST:PORT
                  a peer that introduces us and relays for us (repeat for
                  several); published in our record
  --mdns          find and be found on the local network (multicast DNS)`;

/** What the finding options asked for. */
export interface FindConfig {
  bootstrap: string[] | undefined;
  introducers: string[];
  mdns: boolean;
}

/** The finding options of `args`, or undefined when none was given. */
export function findOptions(args: ParsedArgs, command: string): FindConfig | undefined {
  const bootstrap = listOption(args, 'bootstrap');
  for (const b of bootstrap) {
    const m = /^(\[[^\]]+\]|[^:]+):(\d{1,5})$/.exec(b);
    const port = m === null ? NaN : Number(m[2]);
    if (m === null || !(port >= 1 && port <= 65535)) throw new UsageError(`bad --bootstrap ${JSON.stringify(b)}: must be HOST:PORT`, command);
  }
  const introducers = listOption(args, 'introducer');
  for (const d of introducers) dialArgument(d, command);
  const mdns = flag(args, 'mdns');
  if (bootstrap.length === 0 && introducers.length === 0 && !mdns) return undefined;
  if (introducers.length > 0 && bootstrap.length === 0 && !mdns) throw new UsageError('--introducer goes with --bootstrap or --mdns (it is published in the record they carry)', command);
  return { bootstrap: bootstrap.length > 0 ? bootstrap : undefined, introducers, mdns };
}

/** The extensions a finding socket binds with: introductions and observed addresses. */
export function findExtensions(cfg: FindConfig | undefined): SocketExtension[] {
  return cfg === undefined ? [] : [natTraversal(), observedAddress()];
}

/** Starts discovery on `socket` (closed with it); a listener also publishes its record. */
export async function startFinding(socket: PeerSocket, cfg: FindConfig, publish: boolean): Promise<Discovery> {
  let discovery: Discovery;
  try {
    discovery = await Discovery.start(socket, { bootstrap: cfg.bootstrap, mdns: cfg.mdns, introducers: cfg.introducers });
  } catch (e) {
    throw toCliError(e);
  }
  if (publish) await publishRecord(discovery);
  return discovery;
}

/** Publishes the record and says so on stderr; a failure is logged (discovery retries at its next refresh). */
export async function publishRecord(discovery: Discovery): Promise<void> {
  try {
    const r = await discovery.publish();
    log(`published record ${r.seq}: ${r.addresses.map((a) => hostPort(a.host, a.port)).join(', ') || 'no address'}${r.introducers.length > 0 ? `; ${r.introducers.length} introducer(s)` : ''}`);
  } catch (e) {
    log(`could not publish yet: ${toCliError(e).message}`);
  }
}

/** A peer argument: a dial string, or (with finding options) a bare key. */
export type PeerArgument = { kind: 'address'; to: DialAddress } | { kind: 'key'; publicKey: Uint8Array };

/** Parses a peer argument; a bare key needs --bootstrap or --mdns. */
export function peerArgument(text: string, cfg: FindConfig | undefined, command: string): PeerArgument {
  if (text.includes('@')) return { kind: 'address', to: dialArgument(text, command) };
  let publicKey: Uint8Array;
  try {
    publicKey = decodeKey(text);
  } catch (e) {
    if (e instanceof InvalidArgumentError) throw new UsageError(`bad peer ${JSON.stringify(text)}: give <key>@<host>:<port>, or a key with --bootstrap or --mdns`, command);
    throw e;
  }
  if (cfg === undefined || (cfg.bootstrap === undefined && !cfg.mdns)) throw new UsageError('a bare key needs --bootstrap or --mdns to find the peer', command);
  return { kind: 'key', publicKey };
}

/** The local address to bind for dialing `peer`. */
export function localHostForPeer(peer: PeerArgument, byAddress: (host: string) => string): string {
  return peer.kind === 'address' ? byAddress(peer.to.host) : '0.0.0.0';
}

/** Connects by key through discovery; failures become CliErrors with their exit codes. */
export async function connectByKey(discovery: Discovery, publicKey: Uint8Array, timeoutMs: number): Promise<PeerConnection> {
  try {
    return await discovery.connect(publicKey, { timeout: timeoutMs });
  } catch (e) {
    throw toCliError(e, { timeoutMs });
  }
}
