/**
 * Discovery against peers and DHT nodes that misbehave, on loopback only
 * (a private DHT, never the public one): the record's real peer accepts the
 * handshake and hangs up at once; DHT nodes flood a topic lookup with fake
 * peers and answer `get` with garbage. Discovery must settle (a typed error
 * or a connection), within its deadline, leak no connection, yield at most
 * MAX_LOOKUP_PEERS addresses, and keep the process alive.
 */
import { randomBytes } from 'node:crypto';
import { createSocket as createUdpSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { once } from 'node:events';
import test, { type ExecutionContext } from 'ava';

import { bdecode, bencode, type BDict, type BInput } from '../src/discovery/dht-bencode';
import { Discovery, type DiscoveryOptions } from '../src/discovery/discovery';
import { MAX_LOOKUP_PEERS } from '../src/discovery/merge';
import { AbortError, DiscoveryTimeoutError, PeerNotFoundError, PeersockError, PeerUnreachableError } from '../src/errors';
import { keyPair, keysEqual } from '../src/keys';
import type { PeerConnection } from '../src/connection';
import type { PeerSocket } from '../src/peer-socket';
import { createSocket, waitFor, within } from './helpers';
import { LAB_OPTIONS, addr, startDhtNet } from './lab/dht-net';

/** A socket running discovery on the lab DHT `boot`; both closed at teardown. */
async function peer(t: ExecutionContext, boot: string[], opts: DiscoveryOptions = {}): Promise<{ socket: PeerSocket; discovery: Discovery }> {
  const socket = await createSocket(t);
  const discovery = await Discovery.start(socket, { bootstrap: boot, dht: LAB_OPTIONS, ...opts });
  t.teardown(() => discovery.close());
  return { socket, discovery };
}

const open = (s: PeerSocket): PeerConnection[] => s.connections.filter((c) => c.closeInfo === undefined);

test('the real peer accepts the handshake and hangs up at once: connect settles each time (the connection, closed, or a typed error), leaking nothing', async (t) => {
  t.timeout(60_000);
  const nodes = await startDhtNet(t, 6);
  const boot = [addr(nodes[0]!)];
  const b = await peer(t, boot);
  let mode: 'close' | 'destroy' = 'close';
  let accepted = 0;
  b.socket.on('connection', (c: PeerConnection) => {
    accepted++;
    if (mode === 'close') void c.close({ code: 7, reason: 'go away' });
    else c.destroy(new Error('reset'));
  });
  await b.discovery.publish();
  const a = await peer(t, boot);
  const outcomes = new Map<string, number>();
  const ROUNDS = 10;
  for (let i = 0; i < ROUNDS; i++) {
    mode = i % 2 === 0 ? 'close' : 'destroy';
    const started = performance.now();
    // Settles well before its own 8 s timeout: the hang-up arrives in a round trip.
    const got = await within(6000, `connect ${i} settles`, a.discovery.connect(b.socket.publicKey, { timeout: 8000 }).catch((e: unknown) => e));
    const ms = performance.now() - started;
    if (got instanceof Error) {
      t.true(got instanceof PeersockError, `round ${i}: a typed error, got ${String(got)}`);
      t.false(got instanceof DiscoveryTimeoutError, `round ${i}: not a timeout (${ms.toFixed(0)} ms)`);
      // The hang-up reaches the dialer with its handshake: the dial fails, and the error says why.
      if (got instanceof PeerUnreachableError) {
        t.true(got.attempts.length >= 1 && got.attempts.every((a) => a.error instanceof PeersockError && !(a.error instanceof AbortError)), 'each attempt failed for a reason of its own');
      }
      const why = got instanceof PeerUnreachableError ? ` (${got.attempts.map((a) => `${a.error.constructor.name}: ${a.error.message}`).join('; ')})` : '';
      const what = `${mode}: ${got.constructor.name}${why}`;
      outcomes.set(what, (outcomes.get(what) ?? 0) + 1);
    } else {
      const conn = got as PeerConnection;
      t.true(keysEqual(conn.remotePublicKey, b.socket.publicKey), 'the key is still proven');
      const info = await within(3000, `connection ${i} closes`, conn.closed);
      t.true(info.remote || info.error !== undefined, `round ${i}: closed by the peer (${JSON.stringify(info)})`);
      outcomes.set(`${mode}: connection, closed`, (outcomes.get(`${mode}: connection, closed`) ?? 0) + 1);
    }
  }
  t.log(`${ROUNDS} connects, ${accepted} accepted by the peer: ${[...outcomes].map(([k, n]) => `${k} x${n}`).join(', ')}`);
  t.true(accepted >= 1, 'the peer did complete handshakes');
  await waitFor('no open connection left on either side', 3000, () => open(a.socket).length === 0 && open(b.socket).length === 0);
  // Both sockets still work: a well-behaved connection afterwards.
  mode = 'close';
  b.socket.removeAllListeners('connection');
  b.socket.on('connection', () => {});
  const conn = await a.discovery.connect(b.socket.publicKey, { timeout: 5000 });
  t.is(conn.closeInfo, undefined);
  await conn.close();
});

/** One UDP socket of a hostile DHT node, with a fixed node id. */
interface HostileSocket {
  sock: Socket;
  id: Buffer;
  port: number;
}

/** `n` random compact IPv4 peers (6 bytes), all in 127.0.0.0/8: nothing is ever sent off this machine. */
function fakePeers(n: number): Uint8Array[] {
  return Array.from({ length: n }, () => {
    const b = randomBytes(6);
    b[0] = 127;
    if (b[4] === 0 && b[5] === 0) b[5] = 1;
    return b;
  });
}

/** The garbage a hostile node answers `get` with, in turn: each is dropped by the guard or fails the signature check. */
const GARBAGE_GETS: Array<() => Record<string, BInput>> = [
  () => ({ v: randomBytes(2000), k: randomBytes(32), sig: randomBytes(64), seq: 1 }), // oversized value
  () => ({ v: randomBytes(200), k: randomBytes(31), sig: randomBytes(64), seq: 1 }), // short key
  () => ({ v: randomBytes(200), k: randomBytes(32), sig: randomBytes(64), seq: 2 ** 40 }), // bad signature
  () => ({ v: { a: [1, 2, { b: 'c' }] }, k: randomBytes(32), sig: randomBytes(64), seq: 1 }), // not a byte string
  () => ({ v: randomBytes(100), seq: 'x' }), // badly typed seq
  () => ({ v: randomBytes(100), k: randomBytes(32), sig: randomBytes(63), seq: -5 }),
  () => ({ values: [randomBytes(3), randomBytes(17), new Uint8Array(0)], v: randomBytes(10) }), // peers of odd lengths
];

/**
 * A hostile DHT node on `count` loopback sockets: each answers find_node,
 * get_peers and get with all of its sockets as the closest nodes, get_peers
 * with `perReply` fake peers (a reply near 64 KB), get with garbage, and
 * some replies with undecodable bytes.
 */
async function startFlooder(t: ExecutionContext, count: number, perReply: number): Promise<{ sockets: HostileSocket[]; queries: Map<string, number> }> {
  const queries = new Map<string, number>();
  const sockets: HostileSocket[] = [];
  for (let i = 0; i < count; i++) {
    const sock = createUdpSocket('udp4');
    sock.bind(0, '127.0.0.1');
    await once(sock, 'listening');
    t.teardown(() => new Promise<void>((r) => sock.close(() => r())));
    sockets.push({ sock, id: randomBytes(20), port: sock.address().port });
  }
  const nodes = (): Uint8Array => Buffer.concat(sockets.map((s) => Buffer.concat([s.id, Buffer.from([127, 0, 0, 1]), Buffer.from([s.port >> 8, s.port & 255])])));
  let turn = 0;
  for (const me of sockets) {
    me.sock.on('message', (buf: Buffer, rinfo: RemoteInfo) => {
      let msg: BDict;
      try {
        msg = bdecode(buf) as BDict;
      } catch {
        return;
      }
      const q = Buffer.from((msg['q'] as Uint8Array | undefined) ?? []).toString();
      if (msg['y'] === undefined || Buffer.from(msg['y'] as Uint8Array).toString() !== 'q') return;
      queries.set(q, (queries.get(q) ?? 0) + 1);
      const reply = (r: Record<string, BInput>): void => void me.sock.send(bencode({ t: msg['t'] as Uint8Array, y: 'r', r: { id: me.id, ...r } }), rinfo.port, rinfo.address);
      const n = turn++;
      if (n % 5 === 4) {
        // Undecodable bytes with the query's transaction id, and a reply of the wrong shape.
        me.sock.send(Buffer.concat([Buffer.from('d1:t'), Buffer.from(`${(msg['t'] as Uint8Array).length}:`), msg['t'] as Uint8Array, randomBytes(40)]), rinfo.port, rinfo.address);
        me.sock.send(bencode({ t: msg['t'] as Uint8Array, y: 'r', r: [1, 2, 3] }), rinfo.port, rinfo.address);
      }
      if (q === 'get_peers') reply({ token: randomBytes(8), nodes: nodes(), values: fakePeers(perReply) });
      else if (q === 'get') reply({ token: randomBytes(8), nodes: nodes(), ...GARBAGE_GETS[n % GARBAGE_GETS.length]!() });
      else if (q === 'find_node') reply({ nodes: nodes() });
      else reply({});
    });
  }
  return { sockets, queries };
}

test('hostile DHT nodes flood a topic lookup with fake peers and answer get with garbage: bounded, within the deadline, no crash', async (t) => {
  t.timeout(60_000);
  const SOCKETS = 6;
  const PER_REPLY = 7000; // 7000 x 8 bytes: one reply near UDP's 64 KB limit
  const flood = await startFlooder(t, SOCKETS, PER_REPLY);
  const net = await startDhtNet(t, 3);
  const boot = [`127.0.0.1:${flood.sockets[0]!.port}`, addr(net[0]!)];
  // A query timeout longer than the lookups' deadlines: only the deadline can end them early.
  const a = await peer(t, boot, { dht: { ...LAB_OPTIONS, queryTimeout: 5000 } });
  const dht = a.discovery.dht!;
  const crashes: unknown[] = [];
  const onCrash = (e: unknown): void => void crashes.push(e);
  process.on('uncaughtException', onCrash);
  t.teardown(() => void process.off('uncaughtException', onCrash));

  for (let round = 0; round < 3; round++) {
    const TIMEOUT = 8000;
    const seen = new Set<string>();
    let yielded = 0;
    const started = performance.now();
    for await (const p of a.discovery.lookup(`flooded topic ${round}`, { timeout: TIMEOUT })) {
      yielded++;
      seen.add(`${p.host}|${p.port}`);
      if (yielded > MAX_LOOKUP_PEERS + 10) break; // a broken cap must not run the test long
    }
    const ms = performance.now() - started;
    t.log(`round ${round}: lookup yielded ${yielded} addresses (${seen.size} distinct) in ${ms.toFixed(0)} ms; ${flood.queries.get('get_peers') ?? 0} get_peers answered so far`);
    t.is(seen.size, yielded, 'each address once');
    // One reply alone carries more distinct peers than the cap.
    t.is(yielded, MAX_LOOKUP_PEERS, `exactly ${MAX_LOOKUP_PEERS}, got ${yielded}`);
    t.true(ms < TIMEOUT / 2, `a full lookup ends at once, not at its ${TIMEOUT} ms deadline: ${ms.toFixed(0)} ms`);
  }
  t.true((flood.queries.get('get_peers') ?? 0) >= 1);
  // DhtNode.lookup used directly is bounded the same way.
  {
    let yielded = 0;
    const started = performance.now();
    for await (const _ of dht.lookup(randomBytes(20), { timeout: 8000 })) {
      if (++yielded > MAX_LOOKUP_PEERS + 10) break;
    }
    const ms = performance.now() - started;
    t.is(yielded, MAX_LOOKUP_PEERS, `DhtNode.lookup: exactly ${MAX_LOOKUP_PEERS}, got ${yielded}`);
    t.true(ms < 4000, `DhtNode.lookup ends once full: ${ms.toFixed(0)} ms`);
  }

  // get through the same hostile nodes: garbage never becomes a record.
  const owner = keyPair();
  for (let round = 0; round < 3; round++) {
    const started = performance.now();
    const got = await within(6000, `resolve ${round}`, a.discovery.resolve(owner.publicKey, { timeout: 3000 }).catch((e: unknown) => e));
    const ms = performance.now() - started;
    t.true(got === null || got instanceof DiscoveryTimeoutError, `round ${round}: no record (${String(got)})`);
    t.true(ms < 4500, `${ms.toFixed(0)} ms`);
  }
  const err = await within(6000, 'connect', a.discovery.connect(owner.publicKey, { timeout: 3000 }).catch((e: unknown) => e));
  t.true(err instanceof PeerNotFoundError || err instanceof DiscoveryTimeoutError, String(err));
  t.true((flood.queries.get('get') ?? 0) >= 1, 'the hostile nodes were asked');
  t.true(dht.stats.malformed > 0, `the guard dropped malformed replies (${dht.stats.malformed})`);

  // A genuine record still resolves past the hostile nodes, and the node keeps serving.
  const b = await peer(t, [addr(net[1]!)]);
  const mine = await b.discovery.publish();
  // This node's query timeout is 5 s (above): one query that goes
  // unanswered (a datagram dropped on the busy loopback, where every node
  // shares one source address and its per-address query budget) holds the
  // lookup that long, so the deadline leaves room for two.
  const t0 = performance.now();
  const found = await a.discovery.resolve(b.socket.publicKey, { timeout: 15_000 }).catch((e: unknown) => e);
  t.log(`resolve took ${(performance.now() - t0).toFixed(0)} ms`);
  t.log(`a genuine record after the flood: ${found === null ? 'null' : found instanceof Error ? found.message : `seq ${(found as { seq: number }).seq}`}`);
  t.is((found as { seq?: number } | null)?.seq, mine.seq, 'the genuine record resolves');
  t.deepEqual(crashes, []);
  t.false(dht.destroyed);
});
