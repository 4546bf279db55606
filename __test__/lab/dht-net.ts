/**
 * A private BitTorrent DHT on loopback for the discovery tests: DhtNodes on
 * 127.0.0.1 that bootstrap only from each other (never the public mainline
 * nodes), and a hostile node that answers `get` with whatever item a test
 * hands it. Everything is destroyed at teardown.
 */
import { createSocket as createUdpSocket, type RemoteInfo } from 'node:dgram';
import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import type { ExecutionContext } from 'ava';

import { bdecode, bencode, type BDict, type BInput } from '../../src/discovery/dht-bencode';
import { DhtNode, type DhtNodeOptions } from '../../src/discovery/dht';

/**
 * Options every lab node shares: loopback only, no per-address rate limit
 * (every lab node sends from 127.0.0.1, so a per-IP limit would throttle the
 * whole lab as if it were one host), and a short query timeout (a loopback
 * reply takes well under a millisecond).
 */
export const LAB_OPTIONS: Omit<DhtNodeOptions, 'bootstrap'> = { host: '127.0.0.1', maxRequestsPerSecondPerAddress: Infinity, queryTimeout: 500, bootstrapTimeout: 5000 };

/** `host:port` of a node. */
export function addr(node: DhtNode): string {
  const a = node.address();
  return `${a.host}:${a.port}`;
}

/** Starts one lab node bootstrapping from `bootstrap`; destroyed at teardown. */
export async function startNode(t: ExecutionContext, bootstrap: string[], opts: Partial<DhtNodeOptions> = {}): Promise<DhtNode> {
  const node = await DhtNode.start({ ...LAB_OPTIONS, ...opts, bootstrap });
  t.teardown(() => node.destroy());
  return node;
}

/** Runs `fn` over `items` with at most `limit` calls in flight; results in order. */
export async function pool<T, R>(items: readonly T[], limit: number, fn: (item: T, i: number) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

/**
 * A private DHT of `n` nodes: the first starts alone, the others bootstrap
 * from the first two already running (in batches of 5).
 */
export async function startDhtNet(t: ExecutionContext, n: number, opts: Partial<DhtNodeOptions> = {}): Promise<DhtNode[]> {
  const nodes = [await startNode(t, [], opts)];
  while (nodes.length < n) {
    const seeds = nodes.slice(0, 2).map(addr);
    const batch = await pool(Array.from({ length: Math.min(5, n - nodes.length) }), 5, () => startNode(t, seeds, opts));
    nodes.push(...batch);
  }
  return nodes;
}

/** What the hostile node puts in the `r` of its reply to a `get`, or null to answer with no item. */
export type HostileAnswer = (target: Uint8Array) => BDict | Record<string, BInput> | null;

/** A hostile DHT node: answers ping and find_node with no nodes, and get with `answer`. */
export interface HostileNode {
  /** `host:port` to bootstrap from. */
  address: string;
  /** Replaces the answer to `get`. */
  answer: HostileAnswer;
  /** Queries received, by `q`. */
  queries: Map<string, number>;
  close(): Promise<void>;
}

/** Starts a hostile node on 127.0.0.1; closed at teardown. */
export async function startHostileNode(t: ExecutionContext, answer: HostileAnswer): Promise<HostileNode> {
  const sock = createUdpSocket('udp4');
  const id = randomBytes(20);
  const node: HostileNode = {
    address: '',
    answer,
    queries: new Map(),
    close: () => new Promise<void>((resolve) => sock.close(() => resolve())),
  };
  sock.on('message', (buf: Buffer, rinfo: RemoteInfo) => {
    let msg: BDict;
    try {
      msg = bdecode(buf) as BDict;
    } catch {
      return;
    }
    const q = Buffer.from(msg['q'] as Uint8Array).toString();
    node.queries.set(q, (node.queries.get(q) ?? 0) + 1);
    const a = msg['a'] as BDict;
    let r: Record<string, BInput> = { id };
    if (q === 'find_node' || q === 'get_peers') r = { id, nodes: new Uint8Array(0), token: randomBytes(4) };
    if (q === 'get') r = { id, token: randomBytes(4), nodes: new Uint8Array(0), ...(node.answer(a['target'] as Uint8Array) ?? {}) };
    const reply = bencode({ t: msg['t'] as Uint8Array, y: 'r', r });
    sock.send(reply, rinfo.port, rinfo.address);
  });
  sock.bind(0, '127.0.0.1');
  await once(sock, 'listening');
  node.address = `127.0.0.1:${sock.address().port}`;
  let closed = false;
  const close = node.close;
  node.close = async () => {
    if (closed) return;
    closed = true;
    await close();
  };
  t.teardown(() => node.close());
  return node;
}
