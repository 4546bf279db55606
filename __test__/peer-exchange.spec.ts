/**
 * Peer exchange over real loopback sockets: a line of peers learns the
 * whole network, syncs are incremental (only changes travel), the table is
 * bounded and most recent first, replies come in pages, a restarted table
 * is sent whole, and second-hand claims never beat fresher first-hand ones.
 * Installed as the peerExchange() extension at bind (and the deprecated
 * `new PeerExchange(socket)`, which installs at once).
 */
import test, { type ExecutionContext } from 'ava';
import { join } from 'node:path';
import protobuf from 'protobufjs';

import { Dispatcher, InvalidArgumentError, PEX_PROTOCOL, PeerExchange, encodeKey, keysEqual, peerExchange, type PeerSocket, type SyncResult } from '../src/index';
import { createSocket, pair, sleep, target, waitFor } from './helpers';

interface Node {
  socket: PeerSocket;
  pex: PeerExchange;
}

/** A socket with the peerExchange() extension (closed with the socket). */
async function node(t: ExecutionContext, maxPeers?: number): Promise<Node> {
  const pex = peerExchange(maxPeers !== undefined ? { maxPeers } : {});
  const socket = await createSocket(t, { extensions: [pex] });
  return { socket, pex };
}

/** n peers in a line: p1 dials p0, p2 dials p1, and so on. */
async function line(t: ExecutionContext, n: number): Promise<Node[]> {
  const nodes: Node[] = [];
  for (let i = 0; i < n; i++) {
    const p = await node(t);
    if (i > 0) await p.pex.connect(target(nodes[i - 1]!.socket));
    nodes.push(p);
  }
  // The dialed side records its peer when the handshake reaches it.
  await waitFor('every peer of the line recorded', 5000, () => nodes.every((p, i) => (i === 0 ? 0 : 1) + (i === n - 1 ? 0 : 1) === p.pex.peers().length));
  return nodes;
}

/**
 * Rounds of "everyone syncs with everyone it is connected to" until a round
 * changes nothing (at most `max`). Returns the entries each node received.
 */
async function gossip(t: ExecutionContext, nodes: Node[], max = 10): Promise<{ rounds: number; received: number[] }> {
  const received = nodes.map(() => 0);
  for (let round = 1; round <= max; round++) {
    const results = await Promise.all(nodes.map((p) => p.pex.syncAll()));
    results.forEach((r, i) => (received[i]! += r.received));
    t.true(results.every((r) => r.failed === 0), 'no sync failed');
    if (results.every((r) => r.added + r.updated === 0)) return { rounds: round, received };
  }
  throw new Error(`no convergence within ${max} rounds`);
}

function knowsEveryone(t: ExecutionContext, nodes: Node[]): void {
  for (const [i, p] of nodes.entries()) {
    const peers = p.pex.peers();
    t.is(peers.length, nodes.length - 1, `p${i} knows ${nodes.length - 1} peers`);
    t.false(peers.some((e) => keysEqual(e.publicKey, p.socket.publicKey)), `p${i} does not list itself`);
    for (const [j, q] of nodes.entries()) {
      if (i === j) continue;
      const e = p.pex.get(q.socket.publicKey);
      t.truthy(e, `p${i} knows p${j}`);
      t.deepEqual({ address: e?.address, port: e?.port }, { address: '127.0.0.1', port: q.socket.address().port }, `p${i} has p${j}'s listening address`);
    }
  }
}

test('a line of five peers learns every key and address, and each learned address dials', async (t) => {
  const nodes = await line(t, 5);
  const { rounds } = await gossip(t, nodes);
  t.true(rounds <= 6, `converged in ${rounds} rounds`);
  knowsEveryone(t, nodes);
  // p0 never met p4: it learned p4's address second-hand, three hops away.
  const [p0, , , , p4] = nodes as [Node, Node, Node, Node, Node];
  const learned = p0.pex.get(p4.socket.publicKey)!;
  t.false(learned.direct);
  const conn = await p0.pex.connect(p4.socket.publicKey);
  t.true(keysEqual(conn.remotePublicKey, p4.socket.publicKey), `dialed ${encodeKey(p4.socket.publicKey)} by key and learned address`);
  t.true(p0.pex.get(p4.socket.publicKey)!.direct, 'the dial made the entry first-hand');
  // Also by an explicit target built from peers().
  const e = p4.pex.peers().find((x) => keysEqual(x.publicKey, p0.socket.publicKey))!;
  const back = await p4.socket.connect({ publicKey: e.publicKey, host: e.address, port: e.port });
  t.true(keysEqual(back.remotePublicKey, p0.socket.publicKey));
});

test('sync is incremental: nothing new sends zero entries; a newcomer travels as its one entry', async (t) => {
  const nodes = await line(t, 5);
  await gossip(t, nodes);
  // A settled network: one more round of every sync carries no entries.
  const sentBefore = nodes.reduce((n, p) => n + p.pex.stats.entriesSent, 0);
  const quiet = await Promise.all(nodes.map((p) => p.pex.syncAll()));
  t.is(quiet.reduce((n, r) => n + r.requests, 0), 8, 'eight syncs (both ends of four links)');
  t.is(quiet.reduce((n, r) => n + r.received, 0), 0, 'zero entries received');
  t.is(nodes.reduce((n, p) => n + p.pex.stats.entriesSent, 0), sentBefore, 'zero entries sent');

  // p5 joins at the end of the line.
  const p5 = await node(t);
  await p5.pex.connect(target(nodes[4]!.socket));
  await waitFor('p4 records p5', 5000, () => nodes[4]!.pex.get(p5.socket.publicKey) !== undefined);
  const all = [...nodes, p5];
  const { received } = await gossip(t, all);
  // Each old peer received p5's entry and nothing else; p4 met it itself.
  t.deepEqual(received.slice(0, 5), [1, 1, 1, 1, 0]);
  t.is(received[5], 4, 'p5 got p0..p3 from p4, once');
  knowsEveryone(t, all);
});

test('the table is bounded, most recent first, and excludes the socket itself', async (t) => {
  const hub = await node(t, 2);
  const dialers: Node[] = [];
  for (let i = 0; i < 3; i++) {
    const d = await node(t);
    await d.pex.connect(target(hub.socket));
    await waitFor('the hub records the dialer', 5000, () => hub.pex.get(d.socket.publicKey) !== undefined);
    dialers.push(d);
    await sleep(3); // distinct lastSeen times
  }
  const peers = hub.pex.peers();
  t.is(peers.length, 2);
  t.true(keysEqual(peers[0]!.publicKey, dialers[2]!.socket.publicKey), 'most recent first');
  t.true(keysEqual(peers[1]!.publicKey, dialers[1]!.socket.publicKey));
  t.true(peers[0]!.lastSeen > peers[1]!.lastSeen);
  t.is(hub.pex.get(dialers[0]!.socket.publicKey), undefined, 'the least recent was evicted');
  // A peer syncing with the hub never learns itself.
  await dialers[1]!.pex.sync(dialers[1]!.socket.connections[0]!);
  t.deepEqual(dialers[1]!.pex.peers().map((e) => encodeKey(e.publicKey)).sort(), [hub, dialers[2]!].map((n) => encodeKey(n.socket.publicKey)).sort());
});

test('replies come in pages of the requester\'s size; a restarted table is sent whole', async (t) => {
  const hub = await node(t);
  const small = await node(t, 2);
  for (let i = 0; i < 3; i++) await (await node(t)).pex.connect(target(hub.socket));
  const conn = await small.pex.connect(target(hub.socket));
  await waitFor('the hub records 4 peers', 5000, () => hub.pex.peers().length === 4);
  const first: SyncResult = await small.pex.sync(conn);
  t.is(first.requests, 2, 'three entries in pages of two');
  t.is(first.received, 3);
  t.is(small.pex.peers().length, 2);
  t.is((await small.pex.sync(conn)).received, 0);

  // The hub restarts its exchange (new epoch, counter from zero): the
  // requester's old position means nothing and it gets everything again.
  hub.pex.close();
  t.is(PeerExchange.of(hub.socket), undefined, 'closed: no longer installed');
  // The deprecated form installs on the bound socket at once.
  const again = new PeerExchange(hub.socket);
  t.teardown(() => again.close());
  t.is(PeerExchange.of(hub.socket), again);
  t.is(again.peers().length, 4, 'a new table starts from the live connections');
  t.is(again.seq, 4);
  const r = await small.pex.sync(conn);
  t.deepEqual({ requests: r.requests, received: r.received }, { requests: 2, received: 3 }, 'all three again, in two pages');
  t.is(again.stats.requestsAnswered, 2);
  t.is((await small.pex.sync(conn)).received, 0, 'and incremental from the new epoch on');
});

test('second-hand claims: invalid ones are dropped, older ones never beat first-hand, newer ones win', async (t) => {
  const us = await node(t);
  const liar = await createSocket(t);
  const friend = await node(t);
  const { root } = protobuf.loadSync(join(__dirname, '../src/pex/peer-exchange.proto'));
  const Request = root.lookupType('peersock.pex.Request');
  const Reply = root.lookupType('peersock.pex.Reply');
  const now = Date.now();
  let claims: object[] = [];
  new Dispatcher(liar, { protocol: 'peersock/pex/1' }).handle(Request, () => Reply.create({ epoch: 7, seq: 1, peers: claims }));
  await us.pex.connect(target(friend.socket));
  const conn = await us.pex.connect(target(liar));
  const stranger = new Uint8Array(32).fill(9);
  const bogus = { address: '10.9.9.9', port: 9 };
  claims = [
    { publicKey: friend.socket.publicKey, ...bogus, lastSeen: now - 60_000 }, // older than our own dial
    { publicKey: us.socket.publicKey, ...bogus, lastSeen: now }, // ourselves
    { publicKey: liar.publicKey, ...bogus, lastSeen: now + 1e9 }, // the correspondent itself
    { publicKey: new Uint8Array(31), ...bogus, lastSeen: now },
    { publicKey: stranger, address: 'example.com', port: 9, lastSeen: now },
    { publicKey: stranger, address: '10.9.9.9', port: 0, lastSeen: now },
    { publicKey: stranger, address: '::ffff:10.1.2.3', port: 4000, lastSeen: now - 1000 },
  ];
  const r = await us.pex.sync(conn);
  t.deepEqual({ received: r.received, added: r.added, updated: r.updated }, { received: 7, added: 1, updated: 0 });
  t.is(us.pex.stats.invalid, 3);
  t.like(us.pex.get(friend.socket.publicKey), { address: '127.0.0.1', port: friend.socket.address().port, direct: true });
  t.like(us.pex.get(liar.publicKey), { address: '127.0.0.1', port: liar.address().port, direct: true });
  t.like(us.pex.get(stranger), { address: '10.1.2.3', port: 4000, direct: false }, 'IPv4-mapped addresses are stored as IPv4');
  // A newer claim wins (its time clamped to ours: a fast clock gains nothing).
  claims = [{ publicKey: friend.socket.publicKey, ...bogus, lastSeen: Date.now() + 1e9 }];
  t.is((await us.pex.sync(conn)).updated, 1);
  const e = us.pex.get(friend.socket.publicKey)!;
  t.like(e, { ...bogus, direct: false });
  t.true(e.lastSeen <= Date.now());
});

test('peerExchange() installed at bind: the object passed is the installed exchange; closing the socket stops it', async (t) => {
  const pa = peerExchange();
  const pb = peerExchange({ maxPeers: 8, timeout: 2000 });
  t.is(pa.socket, undefined);
  const { a, b, connAB } = await pair(t, { a: { extensions: [pa] }, b: { extensions: [pb] } });
  t.is(PeerExchange.of(a), pa);
  t.is(PeerExchange.of(b, PEX_PROTOCOL), pb);
  t.is(pa.socket, a);
  t.is(pb.maxPeers, 8);
  // Both recorded the connection from the socket's own 'connection' (a) and the dial (b, once it syncs).
  await waitFor('a records b', 5000, () => pa.get(b.publicKey) !== undefined);
  t.like(await pb.sync(connAB), { requests: 1, received: 0 });
  t.true(pb.get(a.publicKey)!.direct);
  t.is(pa.stats.requestsAnswered, 1);
  await a.close();
  t.is(PeerExchange.of(a), undefined, 'the socket closed it (detach)');
  t.is(pa.peers().length, 1, 'the table stays readable');
});

test('a peer exchange that is not installed throws InvalidArgumentError naming peerExchange(); nothing answers for it', async (t) => {
  const pex = peerExchange();
  const { a, b, connAB } = await pair(t, { b: { extensions: [peerExchange()] } });
  t.is(PeerExchange.of(a), undefined);
  t.deepEqual(pex.peers(), []);
  t.is(pex.get(a.publicKey), undefined);
  t.throws(() => pex.observe(connAB), { instanceOf: InvalidArgumentError, message: /peerExchange\(\)/ });
  for (const p of [pex.sync(connAB), pex.syncAll(), pex.connect(a.publicKey)]) {
    await t.throwsAsync(p, { instanceOf: InvalidArgumentError, message: /peerExchange\(\)/ });
  }
  // b asks a, which has no exchange: the request fails.
  await t.throwsAsync(PeerExchange.of(b)!.sync(connAB, { timeout: 500 }));
});

test('peerExchange(): options checked at the factory; one socket per exchange, one exchange per protocol per socket', async (t) => {
  for (const bad of [{ maxPeers: 0 }, { maxPeers: 1.5 }, { protocol: '' }, { protocol: 'x'.repeat(129) }, { timeout: 0 }]) {
    t.throws(() => peerExchange(bad), { instanceOf: InvalidArgumentError }, JSON.stringify(bad));
  }
  t.throws(() => peerExchange(null as never), { instanceOf: InvalidArgumentError });
  const pex = peerExchange();
  const s1 = await createSocket(t, { extensions: [pex] });
  const s2 = await createSocket(t);
  t.throws(() => pex.attach(s2), { instanceOf: InvalidArgumentError, message: /serves one socket/ });
  t.throws(() => new PeerExchange(s1), { instanceOf: InvalidArgumentError, message: /already installed/ });
  // Another protocol is another exchange, with a table of its own.
  const other = new PeerExchange(s1, { protocol: 'my-pex/1' });
  t.is(PeerExchange.of(s1, 'my-pex/1'), other);
  t.is(PeerExchange.of(s1), pex);
  // A closed exchange cannot be installed again.
  const closed = peerExchange();
  closed.close();
  t.throws(() => closed.attach(s2), { instanceOf: InvalidArgumentError, message: /closed/ });
  t.is(PeerExchange.of(s2), undefined);
});
