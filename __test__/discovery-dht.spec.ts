/**
 * The DHT layer of discovery (src/discovery/dht.ts, record.ts, topic.ts) on
 * a private BitTorrent DHT on loopback (lab/dht-net.ts): records published
 * by 50 sockets resolve from every other one, and still after 30 % of the DHT
 * is killed; forged, rolled-back, oversized and malformed items are
 * rejected; topics find every announcer; the resource limits hold. Nothing
 * here contacts any address but 127.0.0.1.
 */
import test from 'ava';
import { createSocket as createUdpSocket } from 'node:dgram';
import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import nacl from 'tweetnacl';

import { bencode, signedPart } from '../src/discovery/dht-bencode';
import { DhtNode, MAINLINE_BOOTSTRAP } from '../src/discovery/dht';
import { decodeRecord, encodeRecord, MAX_RECORD_VALUE, RECORD_SALT, type PeerAddress } from '../src/discovery/record';
import { topicHash } from '../src/discovery/topic';
import { AbortError, DhtError, Discovery, InvalidArgumentError, PeerSocket, keyPair, type KeyPair } from '../src/index';
import { median, sleep, waitFor } from './helpers';
import { LAB_OPTIONS, addr, pool, startDhtNet, startHostileNode, startNode } from './lab/dht-net';

/** A signed BEP 44 reply for `kp` with the record salt, as a hostile node would send it. */
function signedItem(kp: KeyPair, v: Uint8Array, seq: number, signer: KeyPair = kp): Record<string, Uint8Array | number> {
  return { k: kp.publicKey, seq, v, sig: nacl.sign.detached(signedPart(seq, v, RECORD_SALT), signer.secretKey) };
}

function record(port: number): Uint8Array {
  return encodeRecord({ addresses: [{ host: '127.0.0.1', port }], introducers: [] });
}

test('50 sockets publish through a 20-node DHT; each resolves every other, and still after 30 % of the nodes are killed', async (t) => {
  t.timeout(85_000);
  const infra = await startDhtNet(t, 20);
  const seeds = infra.map(addr);
  const t0 = performance.now();
  // 50 PeerSockets, each running Discovery (its own DhtNode, itself a DHT node), each publishing its record.
  const peers = await pool(Array.from({ length: 50 }), 10, async (_, i) => {
    const socket = await PeerSocket.bind({ host: '127.0.0.1', port: 0 });
    t.teardown(() => socket.close());
    const discovery = await Discovery.start(socket, { bootstrap: [seeds[i % 20]!, seeds[(i + 7) % 20]!], dht: LAB_OPTIONS });
    t.teardown(() => discovery.close());
    return { socket, discovery, dht: discovery.dht! };
  });
  await pool(peers, 10, (p) => p.discovery.publish());
  t.log(`started and published 50 sockets in ${Math.round(performance.now() - t0)} ms`);
  const ports = peers.map((p) => p.socket.address().port);
  const port = (j: number): number => ports[j]!;

  /** Every socket of `from` resolves every key of `targets` but its own; returns times (ms) and failures. */
  const resolveAll = async (from: number[], targets: number[]): Promise<{ times: number[]; failures: number; queries: number }> => {
    const jobs = from.flatMap((i) => targets.filter((j) => j !== i).map((j) => [i, j] as const));
    const before = from.reduce((s, i) => s + peers[i]!.dht.stats.queriesSent, 0);
    let failures = 0;
    const times = await pool(jobs, from.length === 1 ? 1 : 32, async ([i, j]) => {
      const s = performance.now();
      const rec = await peers[i]!.discovery.resolve(peers[j]!.socket.publicKey, { timeout: 20_000 });
      if (rec?.source !== 'dht' || !rec.addresses.some((a) => a.port === port(j))) failures++;
      return performance.now() - s;
    });
    const queries = from.reduce((s, i) => s + peers[i]!.dht.stats.queriesSent, 0) - before;
    return { times, failures, queries };
  };
  const report = (what: string, r: { times: number[]; failures: number; queries: number }, wall: number): void => {
    const n = r.times.length;
    t.log(`${what}: ${n - r.failures}/${n} resolved in ${Math.round(wall)} ms; median ${median(r.times).toFixed(1)} ms, worst ${Math.max(...r.times).toFixed(1)} ms; ${(r.queries / n).toFixed(1)} DHT queries sent per resolve`);
  };

  const all = peers.map((_, i) => i);
  let s = performance.now();
  const first = await resolveAll(all, all);
  report('all 50 x 49', first, performance.now() - s);
  t.is(first.times.length, 50 * 49);
  t.is(first.failures, 0, 'every socket resolves every other one');
  // The same without 32 resolves competing for two cores: one at a time.
  const alone = await resolveAll([0], all.slice(1, 26));
  report('one at a time, 25 resolves', alone, alone.times.reduce((a, b) => a + b, 0));
  t.is(alone.failures, 0);

  // Kill 30 % of the DHT's 70 nodes: 6 of the 20 infrastructure nodes and 15 sockets (their DHT nodes go with them).
  const killedInfra = infra.slice(0, 6);
  const killed = all.slice(35);
  await Promise.all([...killedInfra.map((n) => n.destroy()), ...killed.map(async (i) => {
    await peers[i]!.discovery.close();
    await peers[i]!.socket.close();
  })]);
  const survivors = all.slice(0, 35);
  s = performance.now();
  // Each survivor resolves 14 others (killed sockets' records included): 490 resolves.
  const sample = survivors.flatMap((i) => Array.from({ length: 14 }, (_, k) => [i, (i + 1 + k * 3) % 50] as const));
  const r = await (async () => {
    let failures = 0;
    const times: number[] = [];
    const before = survivors.reduce((sum, i) => sum + peers[i]!.dht.stats.queriesSent, 0);
    await pool(sample, 32, async ([i, j]) => {
      const st = performance.now();
      // The DHT node itself: a fresh lookup each time, not discovery's cached record from before the kill.
      const rec = await peers[i]!.dht.get(peers[j]!.socket.publicKey, { timeout: 20_000 });
      times.push(performance.now() - st);
      const decoded = rec === null ? null : decodeRecord(peers[j]!.socket.publicKey, rec.seq, rec.v);
      if (decoded === null || !decoded.addresses.some((a) => a.port === port(j))) failures++;
    });
    return { times, failures, queries: survivors.reduce((sum, i) => sum + peers[i]!.dht.stats.queriesSent, 0) - before };
  })();
  report('after killing 21 of 70 nodes, 35 x 14', r, performance.now() - s);
  t.is(r.times.length, 490);
  t.true(r.failures <= 490 * 0.01, `${r.failures} of 490 resolves failed`);
});

test("a record with another key's signature is neither stored by DHT nodes nor returned by get", async (t) => {
  const net = await startDhtNet(t, 8);
  const owner = keyPair();
  const forger = keyPair();
  const v = record(4000);
  // A raw bittorrent-dht client puts an item under owner's key signed by forger.
  const { default: RawDht } = await import('bittorrent-dht');
  const raw = new RawDht({ bootstrap: [{ host: '127.0.0.1', port: net[0]!.address().port }], verify: () => true });
  t.teardown(() => new Promise<void>((resolve) => raw.destroy(() => resolve())));
  raw.listen(0, '127.0.0.1');
  await once(raw, 'ready');
  const forged = Buffer.from(nacl.sign.detached(signedPart(1, v, RECORD_SALT), forger.secretKey));
  const n = await new Promise<number>((resolve) => raw.put({ k: Buffer.from(owner.publicKey), v: Buffer.from(v), seq: 1, salt: Buffer.from(RECORD_SALT), sig: forged }, (_e, _h, count) => resolve(count)));
  t.is(n, 0, 'no DHT node accepted the forged put');
  const resolver = await startNode(t, [addr(net[1]!)]);
  t.is(await resolver.get(owner.publicKey), null);

  // The same put signed by the owner is stored and found: the test can tell the two apart.
  const good = Buffer.from(nacl.sign.detached(signedPart(1, v, RECORD_SALT), owner.secretKey));
  const m = await new Promise<number>((resolve) => raw.put({ k: Buffer.from(owner.publicKey), v: Buffer.from(v), seq: 1, salt: Buffer.from(RECORD_SALT), sig: good }, (_e, _h, count) => resolve(count)));
  t.true(m > 0);
  t.deepEqual((await resolver.get(owner.publicKey))?.seq, 1);
});

test('get rejects what a hostile node answers: a forged signature, a wrong key, a wrong salt, an oversized value; malformed bytes fail decodeRecord', async (t) => {
  const owner = keyPair();
  const other = keyPair();
  let answer: Record<string, Uint8Array | number> | null = null;
  const hostile = await startHostileNode(t, () => answer);
  const node = await startNode(t, [hostile.address]);

  answer = signedItem(owner, record(4000), 3);
  const ok = await node.get(owner.publicKey);
  t.is(ok?.seq, 3, 'a well-signed item is taken (the hostile node can answer)');
  t.is(decodeRecord(owner.publicKey, ok!.seq, ok!.v)?.addresses[0]?.port, 4000);

  const fresh = await startNode(t, [hostile.address]); // has seen nothing for owner yet
  answer = signedItem(owner, record(4001), 9, other);
  t.is(await fresh.get(owner.publicKey), null, 'signed by another key');
  answer = signedItem(other, record(4001), 9);
  t.is(await fresh.get(owner.publicKey), null, 'an item of another key');
  answer = { k: owner.publicKey, seq: 9, v: record(4001), sig: nacl.sign.detached(signedPart(9, record(4001), Buffer.from('other/v1')), owner.secretKey) };
  t.is(await fresh.get(owner.publicKey), null, 'signed with another salt');
  const big = new Uint8Array(MAX_RECORD_VALUE);
  answer = signedItem(owner, big, 9);
  t.is(await fresh.get(owner.publicKey), null, 'oversized value');
  answer = { ...signedItem(owner, record(4001), 9), seq: -1 };
  t.is(await fresh.get(owner.publicKey), null, 'negative seq');

  const garbage = Uint8Array.of(1, 3, 4, 127, 0);
  answer = signedItem(owner, garbage, 9);
  const item = await fresh.get(owner.publicKey);
  t.is(item?.seq, 9, 'a validly signed item is returned by get...');
  t.is(decodeRecord(owner.publicKey, item!.seq, item!.v), null, '...but its malformed value does not decode');
  t.true(hostile.queries.get('get')! >= 7);
});

test('get never goes back to a lower seq than it has seen for a key', async (t) => {
  const owner = keyPair();
  let answer: Record<string, Uint8Array | number> | null = signedItem(owner, record(5005), 5);
  const hostile = await startHostileNode(t, () => answer);
  const node = await startNode(t, [hostile.address]);
  t.is((await node.get(owner.publicKey))?.seq, 5);
  answer = signedItem(owner, record(5003), 3); // an old record, replayed
  const back = await node.get(owner.publicKey);
  t.is(back?.seq, 5);
  t.is(decodeRecord(owner.publicKey, back!.seq, back!.v)?.addresses[0]?.port, 5005, 'the seq-5 record, not the replayed one');
  answer = signedItem(owner, record(5006), 6);
  t.is((await node.get(owner.publicKey))?.seq, 6, 'a higher seq is taken');
  // put: a DHT node holding seq 6 refuses seq 2, and a put nobody stores is a typed error.
  const net = await startDhtNet(t, 4);
  const pub = await startNode(t, [addr(net[0]!)]);
  await pub.put(owner, record(1), 6);
  await t.throwsAsync(pub.put(owner, record(1), 2), { instanceOf: DhtError, code: 'ERR_PEERSOCK_DHT', message: /sequence number less than current/ });
});

test('records: encode/decode round trip with IPv4 and IPv6; bad fields and oversized records are refused', (t) => {
  const kp = keyPair();
  const intro = `${'y'.repeat(52)}@198.51.100.7:4433`;
  const addresses: PeerAddress[] = [
    { host: '192.0.2.1', port: 1 },
    { host: '2001:db8::1', port: 65535 },
    { host: '::ffff:198.51.100.2', port: 4433 },
    { host: '::', port: 7 },
  ];
  const v = encodeRecord({ addresses, introducers: [intro] });
  t.deepEqual(decodeRecord(kp.publicKey, 7, v), {
    publicKey: kp.publicKey,
    addresses: [addresses[0], addresses[1], { host: '198.51.100.2', port: 4433 }, addresses[3]],
    introducers: [intro],
    seq: 7,
  });
  for (const bad of [{ host: 'example.com', port: 1 }, { host: '192.0.2.1', port: 0 }, { host: '192.0.2.1', port: 70000 }, { host: 'fe80::1%eth0', port: 1 }]) {
    t.throws(() => encodeRecord({ addresses: [bad], introducers: [] }), { instanceOf: InvalidArgumentError }, JSON.stringify(bad));
  }
  t.throws(() => encodeRecord({ addresses: [], introducers: ['not a dial string'] }), { instanceOf: InvalidArgumentError });
  const many = Array.from({ length: 60 }, (_, i) => ({ host: `2001:db8::${i + 1}`, port: 1000 + i }));
  t.throws(() => encodeRecord({ addresses: many, introducers: [] }), { instanceOf: InvalidArgumentError, message: /BEP 44 allows 1000/ });
  const fits = encodeRecord({ addresses: many.slice(0, 50), introducers: [] });
  t.true(fits.length + 4 <= MAX_RECORD_VALUE);

  // Malformed values: truncated, trailing bytes, unknown version or family, port 0, bad dial string.
  const good = encodeRecord({ addresses: [{ host: '192.0.2.1', port: 4433 }], introducers: [intro] });
  t.not(decodeRecord(kp.publicKey, 1, good), null);
  const cases: Uint8Array[] = [
    good.subarray(0, good.length - 1),
    Uint8Array.from([...good, 0]),
    Uint8Array.from([2, ...good.subarray(1)]),
    Uint8Array.from([1, 1, 5, 192, 0, 2, 1, 0x11, 0x51, 0]),
    Uint8Array.from([1, 1, 4, 192, 0, 2, 1, 0, 0, 0]),
    Uint8Array.from([1, 0, 1, 3, 0x61, 0x40, 0x62]),
    Uint8Array.from([1, 0, 1, 2, 0xc3, 0x28]),
    new Uint8Array(0),
    new Uint8Array(MAX_RECORD_VALUE),
  ];
  for (const [i, c] of cases.entries()) t.is(decodeRecord(kp.publicKey, 1, c), null, `case ${i}`);
  t.is(decodeRecord(kp.publicKey, -1, good), null);
  t.is(decodeRecord(kp.publicKey.subarray(1), 1, good), null);
  t.is(decodeRecord(kp.publicKey, 1, 'x' as unknown as Uint8Array), null);
});

test('topics: 10 nodes announce one topic with distinct ports; a lookup from another node yields all 10', async (t) => {
  const net = await startDhtNet(t, 12);
  const seeds = net.map(addr);
  const hash = topicHash('peersock test topic');
  t.is(hash.length, 20);
  t.deepEqual(hash, topicHash(new TextEncoder().encode('peersock test topic')));
  t.notDeepEqual(hash, topicHash('another topic'));
  const announcers = await pool(Array.from({ length: 10 }), 5, (_, i) => startNode(t, [seeds[i]!]));
  await pool(announcers, 5, (node, i) => node.announce(hash, 30_000 + i));
  const seeker = await startNode(t, [seeds[11]!]);
  const s = performance.now();
  const found = new Set<number>();
  for await (const peer of seeker.lookup(hash, { timeout: 10_000 })) {
    t.is(peer.host, '127.0.0.1');
    found.add(peer.port);
  }
  const ms = performance.now() - s;
  t.log(`lookup found ${found.size} peers in ${Math.round(ms)} ms`);
  t.deepEqual([...found].sort(), Array.from({ length: 10 }, (_, i) => 30_000 + i));
  t.true(ms < 10_000);
  // Another topic has no peers.
  const none: PeerAddress[] = [];
  for await (const peer of seeker.lookup(topicHash('nobody here'), { timeout: 10_000 })) none.push(peer);
  t.deepEqual(none, []);
  // Abort ends a lookup early, quietly.
  const ac = new AbortController();
  ac.abort();
  const after: PeerAddress[] = [];
  for await (const peer of seeker.lookup(hash, { signal: ac.signal })) after.push(peer);
  t.true(after.length <= 10);
  await t.throwsAsync(seeker.get(keyPair().publicKey, { signal: ac.signal }), { instanceOf: AbortError });
});

test('limits: a node stores at most maxStoredItems items (least recently stored go first)', async (t) => {
  const limited = await startNode(t, [], { maxStoredItems: 5 });
  const pub = await startNode(t, [addr(limited)]);
  const keys = Array.from({ length: 10 }, () => keyPair());
  for (const [i, kp] of keys.entries()) await pub.put(kp, record(6000 + i), 1);
  const reader = await startNode(t, [addr(limited)]);
  const found = await pool(keys, 5, async (kp) => (await reader.get(kp.publicKey)) !== null);
  t.deepEqual(found, [false, false, false, false, false, true, true, true, true, true]);
});

test('limits: queries over maxRequestsPerSecondPerAddress are dropped; malformed ones too, and the node keeps serving', async (t) => {
  const node = await startNode(t, [], { maxRequestsPerSecondPerAddress: 10 });
  const port = node.address().port;
  const sock = createUdpSocket('udp4');
  t.teardown(() => sock.close());
  let replies = 0;
  sock.on('message', () => replies++);
  sock.bind(0, '127.0.0.1');
  await once(sock, 'listening');
  const id = randomBytes(20);
  // Malformed: integer token / info_hash / id, bad bencode. bittorrent-dht alone would throw on the first two.
  const bad = [
    bencode({ t: 'aa', y: 'q', q: 'put', a: { id, token: 1, v: 'x', k: randomBytes(32), sig: randomBytes(64) } }),
    bencode({ t: 'aa', y: 'q', q: 'get_peers', a: { id, info_hash: 5 } }),
    bencode({ t: 'aa', y: 'q', q: 'ping', a: { id: 7 } }),
    Buffer.from('d1:t2:aa1:y1:q1:q4:ping1:ad2:id'),
  ];
  for (const b of bad) sock.send(b, port, '127.0.0.1');
  await sleep(100);
  t.is(replies, 0);
  t.is(node.stats.malformed, bad.length);
  // Wait for the start of a fresh one-second window, then send 50 pings at once.
  await sleep(1000 - (Date.now() % 1000) + 50);
  for (let i = 0; i < 50; i++) sock.send(bencode({ t: Buffer.from([0, i + 1]), y: 'q', q: 'ping', a: { id } }), port, '127.0.0.1');
  await sleep(300);
  t.log(`${replies} of 50 pings answered, ${node.stats.rateLimited} dropped`);
  t.true(replies >= 10 && replies <= 20, `${replies} answered`);
  t.true(node.stats.rateLimited >= 30);
  await sleep(1100);
  const r0 = replies;
  sock.send(bencode({ t: 'zz', y: 'q', q: 'ping', a: { id } }), port, '127.0.0.1');
  await waitFor('a ping answered in a later window', 3000, () => replies === r0 + 1);
});

test('destroy ends what is in flight: a get rejects with ClosedError, a lookup ends; timeouts and aborts are typed', async (t) => {
  // A bootstrap node that never answers: the node's queries wait for their timeout.
  const silent = createUdpSocket('udp4');
  t.teardown(() => silent.close());
  silent.bind(0, '127.0.0.1');
  await once(silent, 'listening');
  const node = await startNode(t, [`127.0.0.1:${silent.address().port}`], { queryTimeout: 5000, bootstrapTimeout: 200 });
  const kp = keyPair();
  await t.throwsAsync(node.get(kp.publicKey, { timeout: 50 }), { code: 'ERR_PEERSOCK_REQUEST_TIMEOUT' });
  const ac = new AbortController();
  const aborted = node.get(kp.publicKey, { signal: ac.signal });
  ac.abort();
  await t.throwsAsync(aborted, { instanceOf: AbortError });
  const pending = node.get(kp.publicKey);
  const seen: PeerAddress[] = [];
  const looking = (async () => {
    for await (const p of node.lookup(topicHash('x'))) seen.push(p);
  })();
  await sleep(50);
  const s = performance.now();
  await node.destroy();
  await t.throwsAsync(pending, { code: 'ERR_PEERSOCK_CLOSED' });
  await looking;
  t.true(performance.now() - s < 1000, 'promptly, not after the 5 s query timeout');
  t.deepEqual(seen, []);
});

test('options: bootstrap is required and never defaults; bad options and arguments throw InvalidArgumentError', async (t) => {
  t.deepEqual([...MAINLINE_BOOTSTRAP], ['router.bittorrent.com:6881', 'dht.transmissionbt.com:6881', 'router.utorrent.com:6881', 'dht.libtorrent.org:25401']);
  await t.throwsAsync(DhtNode.start({} as never), { instanceOf: InvalidArgumentError, message: /bootstrap/ });
  await t.throwsAsync(DhtNode.start({ bootstrap: ['nope'] }), { instanceOf: InvalidArgumentError });
  await t.throwsAsync(DhtNode.start({ bootstrap: [], host: '::1' }), { instanceOf: InvalidArgumentError });
  await t.throwsAsync(DhtNode.start({ bootstrap: [], maxStoredItems: 0 }), { instanceOf: InvalidArgumentError });
  const node = await startNode(t, []);
  const other = await DhtNode.start({ bootstrap: [], host: '127.0.0.1', port: node.address().port }).catch((e: unknown) => e);
  t.is((other as { code?: string }).code, 'ERR_PEERSOCK_SOCKET', 'a port in use is a SocketError');
  const kp = keyPair();
  await t.throwsAsync(node.put(kp, new Uint8Array(MAX_RECORD_VALUE), 1), { instanceOf: InvalidArgumentError });
  await t.throwsAsync(node.put(kp, record(1), -1), { instanceOf: InvalidArgumentError });
  await t.throwsAsync(node.put({ publicKey: kp.publicKey, secretKey: keyPair().secretKey }, record(1), 1), { instanceOf: InvalidArgumentError });
  t.throws(() => node.lookup(new Uint8Array(19)), { instanceOf: InvalidArgumentError });
  t.throws(() => topicHash(''), { instanceOf: InvalidArgumentError });
  // Alone, a put finds no node: a typed error, fast.
  await t.throwsAsync(node.put(kp, record(1), 1), { instanceOf: DhtError, code: 'ERR_PEERSOCK_DHT' });
  await node.destroy();
  await t.throwsAsync(node.get(kp.publicKey), { code: 'ERR_PEERSOCK_CLOSED' });
});
