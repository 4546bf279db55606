/**
 * The NAT lab (issue 6, first slice): observed addresses and NAT
 * classification from peers in network namespaces behind nftables NATs, and
 * a direct connection from behind a NAT. Needs root (CI runs as root); when
 * the lab cannot run, every test here fails and says why — never a skip.
 */
import { EventEmitter } from 'node:events';
import test, { type ExecutionContext } from 'ava';


import { ClosedError, InvalidArgumentError } from '../src/errors';
import { Dispatcher } from '../src/messages/dispatcher';
import { DecodeError, NoHandlerError } from '../src/messages/errors';
import { classifyNat, classifyObservations, type NatClassification, type Observation } from '../src/nat/classify';
import { NatObserver, decodeObserved, encodeObserved, enableObserve, observeAddress, observedAddress } from '../src/nat/observed';
import { DIRECT_HOLD_MS, MOVE_SILENCE_MS, NatPaths, VIRTUAL_PORT } from '../src/nat/paths';
import { RELAY_FROM, relayFrame } from '../src/nat/wire';
import type { AddressInfo, DatagramTransport } from '../src/transport';
import { pair } from './helpers';
import { NatLab, type LabProcess, type NatKind } from './lab/netns';

// Without the lab: the protocol on loopback, and the classification rules.

test('observedAddress() installed at bind: each side asks where the other sees it, and answers', async (t) => {
  const [oa, ob] = [observedAddress(), observedAddress({ timeout: 5000 })];
  const { a, b, connAB, connBA } = await pair(t, { a: { extensions: [oa] }, b: { extensions: [ob] } });
  t.is(NatObserver.of(a), oa, 'the object passed to bind is the installed observer');
  t.is(NatObserver.of(b), ob);
  t.is(oa.socket, a);
  t.deepEqual(await observeAddress(b, connAB), { address: '127.0.0.1', port: b.address().port, family: 'IPv4' });
  t.deepEqual(await oa.observe(connBA), { address: '127.0.0.1', port: a.address().port, family: 'IPv4' });
  t.deepEqual(oa.stats, { answered: 1, asked: 1 });
  t.deepEqual(ob.stats, { answered: 1, asked: 1 });
});

test('without observedAddress(): asking is an InvalidArgumentError naming the extension; the peer does not answer', async (t) => {
  const { a, b, connAB, connBA } = await pair(t, { a: { extensions: [observedAddress()] } });
  t.is(NatObserver.of(b), undefined);
  for (const p of [observeAddress(b, connAB), classifyNat(b, [connAB, { ...connAB, remoteAddress: { address: '127.0.0.2', port: 1, family: 'IPv4' } } as typeof connAB])]) {
    const err = await t.throwsAsync(p, { instanceOf: InvalidArgumentError });
    t.regex(err!.message, /observedAddress\(\)/);
  }
  // b speaks no messages protocol at all: a's request is not answered.
  await t.throwsAsync(observeAddress(a, connBA, { timeout: 500 }));
  t.is(NatObserver.of(a)!.stats.asked, 1);
  // An observer made but not installed cannot ask either.
  await t.throwsAsync(observedAddress().observe(connAB), { instanceOf: InvalidArgumentError });
});

test('observedAddress(): one per socket, one socket each, options checked; closing the socket closes it', async (t) => {
  t.throws(() => observedAddress({ timeout: 0 }), { instanceOf: InvalidArgumentError });
  t.throws(() => observedAddress(null as never), { instanceOf: InvalidArgumentError });
  const o = observedAddress();
  const { a, b, connAB } = await pair(t, { a: { extensions: [observedAddress()] }, b: { extensions: [o] } });
  t.throws(() => o.attach(a), { instanceOf: InvalidArgumentError, message: /serves one socket/ });
  t.throws(() => observedAddress().attach(b), { instanceOf: InvalidArgumentError, message: /already installed/ });
  // The deprecated late install finds the installed one.
  t.is(enableObserve(b), o);
  t.is(NatObserver.for(b), o);
  await b.close();
  await t.throwsAsync(o.observe(connAB), { instanceOf: ClosedError });
});

test('enableObserve (deprecated) still installs the protocol on a bound socket, once', async (t) => {
  const { a, b, connAB, connBA } = await pair(t);
  const oa = enableObserve(a);
  t.is(enableObserve(a), oa, 'idempotent');
  t.is(NatObserver.of(a), oa);
  const ob = NatObserver.for(b);
  t.deepEqual(await observeAddress(b, connAB), { address: '127.0.0.1', port: b.address().port, family: 'IPv4' });
  t.deepEqual(await observeAddress(a, connBA), { address: '127.0.0.1', port: a.address().port, family: 'IPv4' });
  t.is(oa.stats.answered, 1);
  t.is(ob.stats.asked, 1);
  // Closed, it frees the protocol: NatObserver.for installs a fresh one.
  oa.close();
  await t.throwsAsync(observeAddress(a, connBA), { instanceOf: ClosedError });
  const again = NatObserver.for(a);
  t.not(again, oa);
  t.is(NatObserver.of(a), again);
  t.deepEqual(await observeAddress(b, connAB), { address: '127.0.0.1', port: b.address().port, family: 'IPv4' });
  t.is(again.stats.answered, 1);
});

test('a peer that does not answer the protocol gives NoHandlerError', async (t) => {
  const { a, b, connAB } = await pair(t, { b: { extensions: [observedAddress()] } });
  // a takes messages, but of another protocol only.
  new Dispatcher(a, { protocol: 'other/1' });
  await t.throwsAsync(observeAddress(b, connAB, { timeout: 5000 }), { instanceOf: NoHandlerError });
});

test('classifyNat needs peers at two different IP addresses', async (t) => {
  const { b, connAB } = await pair(t, { b: { extensions: [observedAddress()] } });
  await t.throwsAsync(classifyNat(b, [connAB, connAB]), { instanceOf: InvalidArgumentError });
});

test('observed addresses round-trip; malformed replies are DecodeErrors', (t) => {
  for (const a of [{ address: '198.18.0.1', port: 1, family: 'IPv4' }, { address: '2001:db8::1', port: 65535, family: 'IPv6' }] as AddressInfo[]) {
    t.deepEqual(decodeObserved(encodeObserved(a)), a);
  }
  t.deepEqual(decodeObserved(encodeObserved({ address: '::ffff:10.0.0.1', port: 9, family: 'IPv6' })), { address: '10.0.0.1', port: 9, family: 'IPv4' });
  for (const bad of [new Uint8Array(0), new Uint8Array([0, 0, 0x31, 0x2e, 0x31]), new Uint8Array([0, 80, ...Buffer.from('not an ip')]), new Uint8Array(60)]) {
    t.throws(() => decodeObserved(bad), { instanceOf: DecodeError });
  }
});

test('classification rules: none, consistent, per-destination', (t) => {
  const obs = (...seen: [string, number][]): Observation[] =>
    seen.map(([address, port], i) => ({ publicKey: new Uint8Array(32), observer: { address: `198.18.0.${10 + i}`, port: 1, family: 'IPv4' }, observed: { address, port, family: 'IPv4' } }));
  const local = { address: '0.0.0.0', port: 5000, family: 'IPv4' } as const;
  const ifaces = (): Set<string> => new Set(['127.0.0.1', '198.18.0.101']);
  t.is(classifyObservations(local, obs(['198.18.0.101', 5000], ['198.18.0.101', 5000]), ifaces).type, 'none');
  t.is(classifyObservations({ ...local, address: '198.18.0.101' }, obs(['198.18.0.101', 5000], ['198.18.0.101', 5000]), ifaces).type, 'none');
  const c = classifyObservations(local, obs(['198.18.0.7', 5000], ['198.18.0.7', 5000]), ifaces);
  t.is(c.type, 'consistent');
  t.deepEqual(c.publicAddress, { address: '198.18.0.7', port: 5000, family: 'IPv4' });
  t.is(classifyObservations(local, obs(['198.18.0.101', 5001], ['198.18.0.101', 5001]), ifaces).type, 'consistent');
  const p = classifyObservations(local, obs(['198.18.0.7', 5000], ['198.18.0.7', 5001]), ifaces);
  t.is(p.type, 'per-destination');
  t.is(p.publicAddress, undefined);
  t.is(classifyObservations(local, obs(['198.18.0.101', 5000], ['198.18.0.7', 5000]), ifaces).type, 'per-destination');
  t.throws(() => classifyObservations(local, [], ifaces), { instanceOf: InvalidArgumentError });
});

test("an accepting side's route follows the peer to the direct path and is not flipped back by relayed stragglers", async (t) => {
  const fed: string[] = [];
  const sent: string[] = [];
  const transport = { send: (_d: Uint8Array, port: number, address: string, done: () => void) => (sent.push(`${address}:${port}`), done()), onDatagram: () => {}, close: async () => {} } as unknown as DatagramTransport;
  const paths = new NatPaths(transport);
  paths.onDatagram((_d, address) => void fed.push(address));
  const relay = { address: '198.18.0.9', port: 7000, pairId: 5 };
  const direct = { address: '198.18.0.2', port: 4000, family: 'IPv4' } as const;
  const r = paths.create(new Uint8Array(32), new Uint8Array(16).fill(3), relay, [direct], true)!;
  const events: string[] = [];
  const conn = Object.assign(new EventEmitter(), { closeInfo: undefined, remoteAddress: { address: r.address, port: 1 } });
  conn.on('path', () => events.push(r.kind));
  r.owner = conn;
  // What the socket does on the path layer's path change: the connection reports 'path'.
  paths.onPathChange(() => conn.emit('path', conn.remoteAddress));
  const quic = Buffer.from([0x41, 1, 2, 3]);
  const relayed = (): boolean => paths.intercept(relayFrame(RELAY_FROM, relay.pairId, quic), relay.address, relay.port);

  t.true(relayed());
  t.true(paths.intercept(quic, direct.address, direct.port));
  t.deepEqual(events, ['relayed', 'direct']);
  // Relayed packets still in flight after the peer moved: delivered, the route stays direct.
  t.true(relayed());
  t.true(relayed());
  t.deepEqual(events, ['relayed', 'direct']);
  t.is(r.kind, 'direct');
  paths.send(quic, VIRTUAL_PORT, r.address, () => {});
  t.deepEqual(sent, [`${direct.address}:${direct.port}`]);
  t.is(fed.length, 4);
  t.true(fed.every((a) => a === r.address), 'fed to the core from the virtual address');
  // The peer went back to the relay for good: after DIRECT_HOLD_MS without direct packets, the route follows.
  await new Promise((resolve) => setTimeout(resolve, DIRECT_HOLD_MS + 100));
  t.true(relayed());
  t.deepEqual(events, ['relayed', 'direct', 'relayed']);
  await paths.close();
});

test("a dialing side's direct route follows its peer to a new address only after the current one fell silent", async (t) => {
  const sent: string[] = [];
  const transport = { send: (_d: Uint8Array, port: number, address: string, done: () => void) => (sent.push(`${address}:${port}`), done()), onDatagram: () => {}, close: async () => {} } as unknown as DatagramTransport;
  const paths = new NatPaths(transport);
  paths.onDatagram(() => {});
  const old = { address: '198.18.0.2', port: 4000, family: 'IPv4' } as const;
  const moved = { address: '198.18.0.2', port: 5555, family: 'IPv4' } as const;
  const r = paths.create(new Uint8Array(32), new Uint8Array(16).fill(4), undefined, [old], false)!;
  const other = paths.create(new Uint8Array(32), new Uint8Array(16).fill(5), undefined, [{ address: '198.18.0.3', port: 6000, family: 'IPv4' }], false)!;
  r.direct = { ...old };
  r.kind = 'direct';
  const events: string[] = [];
  const conn = Object.assign(new EventEmitter(), { closeInfo: undefined, _pathAddress: { address: r.address, port: 1 }, remoteAddress: { address: r.address, port: 1 } });
  conn.on('path', () => events.push(`${r.direct!.address}:${r.direct!.port}`));
  r.owner = conn;
  // What the socket does on the path layer's path change: the connection reports 'path'.
  paths.onPathChange(() => conn.emit('path', conn.remoteAddress));
  const quic = Buffer.from([0x41, 1, 2, 3]);

  // Packets still come from the current address: a copy seen elsewhere does not take the path.
  t.true(paths.intercept(quic, old.address, old.port));
  paths.peerMoved(r, moved);
  t.deepEqual(r.direct, old);
  // Another route's address is never taken.
  await new Promise((resolve) => setTimeout(resolve, MOVE_SILENCE_MS + 50));
  paths.peerMoved(r, { address: '198.18.0.3', port: 6000, family: 'IPv4' });
  t.deepEqual(r.direct, old);
  t.deepEqual(events, []);
  // Silent long enough: the route moves, says so, and sends there.
  paths.peerMoved(r, moved);
  t.deepEqual(r.direct, moved);
  t.deepEqual(events, ['198.18.0.2:5555']);
  paths.send(quic, VIRTUAL_PORT, r.address, () => {});
  t.deepEqual(sent, ['198.18.0.2:5555']);
  // Its packets from there now reach the core as the peer's (a known address of the route).
  t.true(paths.intercept(quic, moved.address, moved.port));
  t.is(other.direct, undefined);
  await paths.close();
});

// The lab.

interface Ready {
  publicKey: string;
  address: AddressInfo;
}

const ready = (p: LabProcess): Ready => p.ready as unknown as Ready;

/** Two observers at two public addresses and one peer behind `nat`; the peer classifies its NAT. */
async function classify(t: ExecutionContext, nat: NatKind): Promise<{ result: NatClassification; publicIp: string; localPort: number }> {
  const lab = await NatLab.create(t);
  const ips = [await lab.addHost(), await lab.addHost()];
  const peer = await lab.addPeer(nat);
  const [o1, o2, p] = await Promise.all([
    ...ips.map((ip, i) => lab.spawn(lab.publicNs, 'nat-peer.ts', { HOST: ip }, `observer${i + 1}`)),
    lab.spawn(peer.ns, 'nat-peer.ts', {}, `peer(${nat})`),
  ]);
  for (const o of [o1!, o2!]) await p!.call('connect', { publicKey: ready(o).publicKey, host: ready(o).address.address, port: ready(o).address.port });
  const result = await p!.call<NatClassification>('classify', { publicKeys: [ready(o1!).publicKey, ready(o2!).publicKey] });
  t.log(`${nat}: local ${peer.ip}:${ready(p!).address.port} → ${result.type}; seen as ${result.observations.map((o) => `${o.observed.address}:${o.observed.port}`).join(', ')}`);
  return { result, publicIp: peer.publicIp, localPort: ready(p!).address.port };
}

test('no NAT: observers see the bound address and port, classified none', async (t) => {
  const { result, publicIp, localPort } = await classify(t, 'none');
  t.is(result.type, 'none');
  t.deepEqual(result.publicAddress, { address: publicIp, port: localPort, family: 'IPv4' });
});

test('port-preserving masquerade: both observers see the NAT address with our port, classified consistent', async (t) => {
  const { result, publicIp, localPort } = await classify(t, 'preserve');
  t.is(result.type, 'consistent');
  t.deepEqual(result.publicAddress, { address: publicIp, port: localPort, family: 'IPv4' });
  for (const o of result.observations) t.deepEqual(o.observed, { address: publicIp, port: localPort, family: 'IPv4' });
});

test('port-randomising masquerade: each observer sees its own port, classified per-destination', async (t) => {
  const { result, publicIp } = await classify(t, 'random');
  t.is(result.type, 'per-destination');
  t.is(result.publicAddress, undefined);
  const [a, b] = result.observations.map((o) => o.observed);
  t.is(a!.address, publicIp);
  t.is(b!.address, publicIp);
  t.not(a!.port, b!.port);
});

test('a peer behind a port-preserving NAT dials a public peer by key; unsolicited packets to its mapping are dropped', async (t) => {
  const lab = await NatLab.create(t);
  const strangerIp = await lab.addHost();
  const [natted, open] = [await lab.addPeer('preserve'), await lab.addPeer('none')];
  const [a, b, stranger] = await Promise.all([
    lab.spawn(natted.ns, 'nat-peer.ts', {}, 'natted'),
    lab.spawn(open.ns, 'nat-peer.ts', {}, 'public'),
    lab.spawn(lab.publicNs, 'nat-peer.ts', { HOST: strangerIp }, 'stranger'),
  ]);
  const ra = ready(a), rb = ready(b);

  const started = performance.now();
  const dialed = await a.call<{ remoteAddress: AddressInfo }>('connect', { publicKey: rb.publicKey, host: open.ip, port: rb.address.port });
  t.log(`connected in ${(performance.now() - started).toFixed(0)} ms`);
  t.deepEqual(dialed.remoteAddress, { address: open.ip, port: rb.address.port, family: 'IPv4' });

  // The public peer sees the NAT's address and (port-preserving) our port, and says so when asked.
  const mapped = { address: natted.publicIp, port: ra.address.port, family: 'IPv4' };
  const seen = await b.call<{ publicKey: string; remoteAddress: AddressInfo }[]>('connections');
  t.deepEqual(seen.map((c) => c.publicKey), [ra.publicKey]);
  t.deepEqual(seen[0]!.remoteAddress, mapped);
  t.deepEqual(await a.call('observe', { publicKey: rb.publicKey }), mapped);
  t.deepEqual(await b.call('observe', { publicKey: ra.publicKey }), { address: open.ip, port: rb.address.port, family: 'IPv4' });
  t.deepEqual(await a.call('echo', { publicKey: rb.publicKey, bytes: 256 * 1024 }), { bytes: 256 * 1024 });

  // The NAT only lets replies in: a peer the natted side never sent to cannot reach the mapping.
  const err = await t.throwsAsync(stranger.call('connect', { publicKey: ra.publicKey, host: natted.publicIp, port: ra.address.port, timeout: 1500 }));
  t.is((err as Error & { code?: string }).code, 'ERR_PEERSOCK_HANDSHAKE_TIMEOUT');
});
