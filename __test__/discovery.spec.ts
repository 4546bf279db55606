/**
 * Discovery end to end on loopback: PeerSockets that find each other by key
 * alone through a private DHT (never the public one), records that must not
 * be trusted, topics, and the errors of connect.
 */
import { randomBytes } from 'node:crypto';
import test, { type ExecutionContext } from 'ava';

import { Discovery, type DiscoveryOptions } from '../src/discovery/discovery';
import { encodeRecord } from '../src/discovery/record';
import { AbortError, DiscoveryTimeoutError, IdentityMismatchError, InvalidArgumentError, PeerNotFoundError, PeerUnreachableError } from '../src/errors';
import { keyPair, keysEqual, type KeyPair } from '../src/keys';
import type { PeerConnection } from '../src/connection';
import type { PeerSocket } from '../src/peer-socket';
import { createSocket, echo, readAll } from './helpers';
import { LAB_OPTIONS, addr, startDhtNet } from './lab/dht-net';

/** A socket running discovery on the lab DHT `boot`; both closed at teardown. */
async function peer(t: ExecutionContext, boot: string[], opts: DiscoveryOptions = {}, kp: KeyPair = keyPair()): Promise<{ socket: PeerSocket; discovery: Discovery; kp: KeyPair }> {
  const socket = await createSocket(t, { keyPair: kp });
  const discovery = await Discovery.start(socket, { bootstrap: boot, dht: LAB_OPTIONS, ...opts });
  t.teardown(() => discovery.close());
  return { socket, discovery, kp };
}

async function echoOnce(conn: PeerConnection, n: number): Promise<void> {
  const s = conn.openStream();
  const got = readAll(s);
  const data = randomBytes(n);
  s.end(data);
  const d = await got;
  if (d.bytes !== n) throw new Error(`echo returned ${d.bytes} of ${n} bytes`);
}

test('a socket knowing only a key and a bootstrap node connects, with the key pinned', async (t) => {
  const nodes = await startDhtNet(t, 20);
  const boot = [addr(nodes[0]!)];
  const b = await peer(t, boot);
  b.socket.on('connection', echo);
  const record = await b.discovery.publish();
  t.true(record.addresses.some((a) => a.host === '127.0.0.1' && a.port === b.socket.address().port));
  const a = await peer(t, boot);
  const found = await a.discovery.resolve(b.socket.publicKey);
  t.is(found?.source, 'dht');
  t.is(found?.seq, record.seq);
  t.deepEqual(found?.addresses, record.addresses);
  const started = performance.now();
  const conn = await a.discovery.connect(b.socket.publicKey, { timeout: 10_000 });
  t.log(`connect by key: ${(performance.now() - started).toFixed(1)} ms (resolve cached from the resolve before)`);
  t.true(keysEqual(conn.remotePublicKey, b.socket.publicKey));
  await echoOnce(conn, 100_000);
  // A fresh socket with no cache: resolve + dial.
  const c = await peer(t, boot);
  const t0 = performance.now();
  const conn2 = await c.discovery.connect(b.socket.publicKey);
  t.log(`connect by key, cold: ${(performance.now() - t0).toFixed(1)} ms`);
  await echoOnce(conn2, 1000);
});

test('publish: seq only grows, and a restart under the same key continues above the stored seq', async (t) => {
  const nodes = await startDhtNet(t, 20);
  const boot = [addr(nodes[0]!)];
  const kp = keyPair();
  const b = await peer(t, boot, {}, kp);
  const r1 = await b.discovery.publish();
  const r2 = await b.discovery.publish();
  t.true(r2.seq > r1.seq);
  await b.discovery.close();
  await b.socket.close();
  const again = await peer(t, boot, {}, kp);
  const r3 = await again.discovery.publish();
  t.true(r3.seq > r2.seq, `${r3.seq} > ${r2.seq}`);
  const a = await peer(t, boot);
  t.is((await a.discovery.resolve(kp.publicKey))?.seq, r3.seq);
});

test("a record pointing at an impostor's address: that dial fails with IdentityMismatchError and the next address is used", async (t) => {
  const nodes = await startDhtNet(t, 20);
  const boot = [addr(nodes[0]!)];
  const b = await peer(t, boot);
  b.socket.on('connection', echo);
  const impostor = await createSocket(t);
  impostor.on('connection', echo);
  const dht = b.discovery.dht!;
  const real = { host: '127.0.0.1', port: b.socket.address().port };
  const fake = { host: '127.0.0.1', port: impostor.address().port };
  // Only the impostor: unreachable, and the attempt says why.
  await dht.put(b.kp, encodeRecord({ addresses: [fake], introducers: [] }), 1000);
  const a = await peer(t, boot);
  const err = await t.throwsAsync(a.discovery.connect(b.socket.publicKey, { timeout: 5000 }), { instanceOf: PeerUnreachableError });
  t.is(err?.attempts.length, 1);
  t.true(err?.attempts[0]?.error instanceof IdentityMismatchError);
  t.true(keysEqual((err?.attempts[0]?.error as IdentityMismatchError).actual!, impostor.publicKey));
  // The impostor first, then the real address: connected to the real key.
  await dht.put(b.kp, encodeRecord({ addresses: [fake, real], introducers: [] }), 1001);
  const seen: PeerConnection[] = [];
  impostor.on('connection', (c: PeerConnection) => seen.push(c));
  const conn = await a.discovery.connect(b.socket.publicKey, { timeout: 5000 });
  t.true(keysEqual(conn.remotePublicKey, b.socket.publicKey));
  await echoOnce(conn, 1000);
  t.is(seen.length, 0, 'the impostor never completed a handshake with the dialer');
});

test('connect: PeerNotFoundError with no record, DiscoveryTimeoutError past the timeout, AbortError on abort, InvalidArgumentError on bad input', async (t) => {
  const nodes = await startDhtNet(t, 20);
  const boot = [addr(nodes[0]!)];
  const a = await peer(t, boot);
  const nobody = keyPair().publicKey;
  const nf = await t.throwsAsync(a.discovery.connect(nobody, { timeout: 10_000 }), { instanceOf: PeerNotFoundError });
  t.is(nf?.code, 'ERR_PEERSOCK_PEER_NOT_FOUND');
  t.is(await a.discovery.resolve(nobody), null);
  // A record whose only address never answers (a bound UDP port that drops everything).
  const silent = await peer(t, boot);
  const hole = await import('node:dgram').then((d) => d.createSocket('udp4'));
  await new Promise<void>((r) => hole.bind(0, '127.0.0.1', r));
  t.teardown(() => hole.close());
  await silent.discovery.dht!.put(silent.kp, encodeRecord({ addresses: [{ host: '127.0.0.1', port: hole.address().port }], introducers: [] }), 5);
  const started = performance.now();
  const to = await t.throwsAsync(a.discovery.connect(silent.kp.publicKey, { timeout: 1500 }), { instanceOf: DiscoveryTimeoutError });
  const took = performance.now() - started;
  t.is(to?.code, 'ERR_PEERSOCK_DISCOVERY_TIMEOUT');
  t.true(took >= 1400 && took < 4000, `${took} ms`);
  const ac = new AbortController();
  setTimeout(() => ac.abort(), 200);
  await t.throwsAsync(a.discovery.connect(silent.kp.publicKey, { timeout: 10_000, signal: ac.signal }), { instanceOf: AbortError });
  t.throws(() => void a.discovery.connect(new Uint8Array(5)), { instanceOf: InvalidArgumentError });
  t.throws(() => void a.discovery.connect(a.socket.publicKey), { instanceOf: InvalidArgumentError });
  t.throws(() => void a.discovery.resolve(new Uint8Array(3)), { instanceOf: InvalidArgumentError });
  await t.throwsAsync(Discovery.start(a.socket, { bootstrap: boot }), { instanceOf: InvalidArgumentError });
  t.is(Discovery.of(a.socket), a.discovery);
});

test('topics: 10 sockets announce one topic; a lookup yields all 10, and anyKey dials learn each key', async (t) => {
  const nodes = await startDhtNet(t, 20);
  const boot = [addr(nodes[0]!)];
  const topic = `room-${randomBytes(4).toString('hex')}`;
  const members = await Promise.all(Array.from({ length: 10 }, () => peer(t, boot)));
  for (const m of members) {
    m.socket.on('connection', echo);
    m.discovery.announce(topic);
  }
  const a = await peer(t, boot);
  const want = new Map(members.map((m) => [m.socket.address().port, m.socket.publicKey]));
  const found = new Map<number, string>();
  const started = performance.now();
  // Announcements travel while the lookup runs: look again (bounded) until all 10 are in.
  for (let round = 0; round < 5 && found.size < 10; round++) {
    for await (const p of a.discovery.lookup(topic, { timeout: 3000 })) {
      if (want.has(p.port)) found.set(p.port, p.host);
      if (found.size === 10) break;
    }
  }
  t.log(`lookup found ${found.size} of 10 in ${(performance.now() - started).toFixed(0)} ms`);
  t.is(found.size, 10);
  for (const [port, host] of found) {
    const conn = await a.socket.connect({ host, port }, { anyKey: true });
    t.true(keysEqual(conn.remotePublicKey, want.get(port)!));
    await echoOnce(conn, 100);
  }
});

test('publish keeps the record fresh: republished with a higher seq every refreshInterval, until close()', async (t) => {
  const nodes = await startDhtNet(t, 20);
  const boot = [addr(nodes[0]!)];
  const b = await peer(t, boot, { refreshInterval: 1000 });
  const first = await b.discovery.publish();
  const a = await peer(t, boot, { cacheTtl: 1 });
  let seen = first.seq;
  const started = performance.now();
  while (seen <= first.seq + 1 && performance.now() - started < 6000) {
    await new Promise((r) => setTimeout(r, 250));
    seen = (await a.discovery.resolve(b.socket.publicKey))?.seq ?? seen;
  }
  t.log(`seq ${first.seq} -> ${seen} in ${(performance.now() - started).toFixed(0)} ms without a publish() call`);
  t.true(seen >= first.seq + 2, 'two refreshes happened');
  await b.discovery.close();
  const last = (await a.discovery.resolve(b.socket.publicKey))!.seq;
  await new Promise((r) => setTimeout(r, 2500));
  t.is((await a.discovery.resolve(b.socket.publicKey))!.seq, last, 'no refresh after close()');
});
