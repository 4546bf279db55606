/**
 * LAN discovery over mDNS (issue 15): the record functions in process, then
 * hosts on one LAN bridge built from network namespaces (lab/lan.ts), with
 * no DHT: resolve a key and dial it pinned, look up a topic, resolve an
 * unknown key, survive garbage, stop answering after close(). No multicast
 * ever leaves the lab's namespaces. Needs root (CI runs as root); when the
 * lab cannot run, the LAN tests fail and say why — never a skip.
 */
import test from 'ava';
import { randomBytes } from 'node:crypto';

import { LanDiscovery } from '../src/discovery/mdns';
import { answerQuestions, hostName, instanceName, keyOfInstance, peersInResponse, topicName, type Advertisement } from '../src/discovery/mdns-records';
import { AbortError, ClosedError, InvalidArgumentError } from '../src/errors';
import { encodeKey, keyPair, keysEqual } from '../src/keys';
import { LanLab } from './lab/lan';
import type { LabProcess } from './lab/netns';

// Records, in process: no sockets.

const key = keyPair().publicKey;
const topic = randomBytes(20);
const ad: Advertisement = { publicKey: key, port: 4433, topics: [topic], hosts: ['10.1.2.3'] };

test('names: the instance label is the z-base-32 key and decodes back; topics are one label', (t) => {
  t.is(instanceName(key), `${encodeKey(key)}._peersock._udp.local`);
  t.true(keysEqual(keyOfInstance(instanceName(key).toUpperCase())!, key));
  t.is(keyOfInstance(`${'l'.repeat(52)}._peersock._udp.local`), undefined);
  t.is(keyOfInstance('foo._peersock._udp.local'), undefined);
  t.true(topicName(topic).split('.')[0]!.length <= 63);
  t.throws(() => topicName(new Uint8Array(32)), { instanceOf: InvalidArgumentError });
});

test('a query for the key is answered with SRV and TXT and the addresses; a topic query with its PTR', (t) => {
  const byKey = answerQuestions([{ name: instanceName(key), type: 'SRV' }], ad, 120)!;
  t.deepEqual(byKey.answers.map((r) => r.type), ['SRV', 'TXT', 'A']);
  const peers = peersInResponse({ answers: byKey.answers, additionals: byKey.additionals }, '10.9.9.9');
  t.is(peers.length, 1);
  t.true(keysEqual(peers[0]!.publicKey, key));
  t.deepEqual([peers[0]!.port, peers[0]!.hosts], [4433, ['10.1.2.3']]);
  const byTopic = answerQuestions([{ name: topicName(topic), type: 'PTR' }], ad, 120)!;
  t.deepEqual(byTopic.answers.map((r) => r.type), ['PTR']);
  const [peer] = peersInResponse({ answers: byTopic.answers, additionals: byTopic.additionals }, '10.9.9.9');
  t.true(peer!.pointers.has(topicName(topic)));
  t.is(answerQuestions([{ name: topicName(randomBytes(20)), type: 'PTR' }], ad, 120), undefined, 'another topic: no answer');
  t.is(answerQuestions([{ name: instanceName(keyPair().publicKey), type: 'SRV' }], ad, 120), undefined, 'another key: no answer');
});

test('hostile shapes parse to nothing, never throw', (t) => {
  const srv = { name: instanceName(key), type: 'SRV', ttl: 120, data: { port: 4433, target: hostName(key) } };
  const shapes: unknown[] = [
    null,
    42,
    'x',
    {},
    { answers: 'no' },
    { answers: [null, 1, 'a', { name: 5 }] },
    { answers: [{ ...srv, data: null }] },
    { answers: [{ ...srv, data: { port: 70000, target: 'x' } }] },
    { answers: [{ ...srv, data: { port: 1.5, target: 'x' } }] },
    { answers: [{ ...srv, ttl: 0 }] },
    { answers: [srv, { name: instanceName(key), type: 'TXT', data: [Buffer.from(`pk=${encodeKey(keyPair().publicKey)}`)] }] },
    { answers: [{ ...srv, name: 'x._peersock._udp.local' }] },
    { answers: [srv, { name: hostName(key), type: 'A', data: '224.0.0.251' }] },
  ];
  for (const s of shapes) t.deepEqual(peersInResponse(s, ''), [], JSON.stringify(s));
  // A valid SRV with no address record falls back to the packet's source; bad A records do not count.
  const fallback = peersInResponse({ answers: [srv, { name: hostName(key), type: 'A', data: 'not-an-ip' }] }, '10.0.0.7');
  t.deepEqual(fallback[0]!.hosts, ['10.0.0.7']);
  // The record cap: an SRV after 64 other records is not read.
  const filler = Array.from({ length: 64 }, (_, i) => ({ name: `n${i}.local`, type: 'A', ttl: 1, data: '10.0.0.1' }));
  t.deepEqual(peersInResponse({ answers: [...filler, srv] }, '10.0.0.7'), []);
});

test('bad options are InvalidArgumentError before any socket is opened', async (t) => {
  await t.throwsAsync(LanDiscovery.start({ interface: 'eth0' }), { instanceOf: InvalidArgumentError });
  await t.throwsAsync(LanDiscovery.start({ port: 0 }), { instanceOf: InvalidArgumentError });
  await t.throwsAsync(LanDiscovery.start({ ip: 'ff02::fb' }), { instanceOf: InvalidArgumentError });
  await t.throwsAsync(LanDiscovery.start({ ttl: 0 }), { instanceOf: InvalidArgumentError });
});

// The LAN lab: four hosts on one bridge, one mdns-peer process each.

interface Host {
  proc: LabProcess;
  ip: string;
  publicKey: string;
  port: number;
}

let lab: LanLab | undefined;
let hosts: Host[] = [];
const TOPIC = randomBytes(20).toString('hex');
const TOPIC_C = randomBytes(20).toString('hex');

test.before(async () => {
  lab = await LanLab.create(4);
  const l = lab;
  const procs = await Promise.all(l.hosts.map((h, i) => l.spawn(h.ns, 'mdns-peer.ts', { IFACE: h.ip }, `host${i + 1}`)));
  hosts = procs.map((proc, i) => ({ proc, ip: l.hosts[i]!.ip, publicKey: proc.ready.publicKey as string, port: proc.ready.port as number }));
  const [, b, c] = hosts;
  await b!.proc.call('advertise', { topics: [TOPIC] });
  await c!.proc.call('advertise', { topics: [TOPIC, TOPIC_C] });
});

test.after.always(async () => {
  await lab?.close();
});

test.serial('two namespaces on one LAN bridge with no DHT: A connects to B by key through mDNS', async (t) => {
  const [a, b] = hosts;
  const r = await a!.proc.call('resolve', { publicKey: b!.publicKey, timeout: 5000, first: true });
  t.deepEqual(r.addresses, [{ host: b!.ip, port: b!.port }]);
  t.true(r.ms < 2500, `first: true returns on the first answer (${r.ms} ms)`);
  const c = await a!.proc.call('connect', { publicKey: b!.publicKey, host: r.addresses[0].host, port: r.addresses[0].port });
  t.is(c.remotePublicKey, b!.publicKey, 'the handshake proved the key');
  t.is(c.echo, 'hello over mdns');
  t.log(`resolve ${r.ms.toFixed(1)} ms`);
});

test.serial('Two namespaces on one LAN bridge with no DHT: A connects to B by key through mDNS via Discovery.connect', async (t) => {
  // The user's path: Discovery.start(socket, { mdns: true }) with default mDNS options, on a LAN of its own.
  t.timeout(90_000);
  const lan2 = await LanLab.create(2);
  try {
    const [ha, hb] = lan2.hosts;
    const [a, b] = await Promise.all([lan2.spawn(ha!.ns, 'mdns-peer.ts', { MODE: 'discovery' }, 'facade-a'), lan2.spawn(hb!.ns, 'mdns-peer.ts', { MODE: 'discovery' }, 'facade-b')]);
    const keyB = b.ready.publicKey as string;
    const portB = b.ready.port as number;

    // A knows only B's key.
    const c = await a.call('connect', { publicKey: keyB, timeout: 10_000 });
    t.is(c.remotePublicKey, keyB, 'the handshake proved the key');
    t.is(c.echo, 'hello through Discovery');
    t.deepEqual(c.remoteAddress, { host: hb!.ip, port: portB }, "B's LAN address, as B advertised it");
    const r = await a.call('resolve', { publicKey: keyB, timeout: 5000 });
    t.is(r.record?.source, 'lan');
    t.is(r.record.publicKey, keyB);
    t.deepEqual(r.record.addresses, [{ host: hb!.ip, port: portB }]);
    t.true(r.ms < 1500, `the LAN answered within lanTimeout (${r.ms} ms)`);
    // An unknown key: with the DHT off there is nowhere else to look.
    const unknown = await a.call('resolve', { publicKey: Buffer.from(keyPair().publicKey).toString('hex'), timeout: 5000 });
    t.is(unknown.record, null);

    // A topic: B announces it, A finds B's port and learns B's key by dialing with anyKey.
    await b.call('announce', { topic: 'some-topic' });
    const found = await a.call('lookup', { topic: 'some-topic', timeout: 1500 });
    t.deepEqual(found.peers, [{ host: hb!.ip, port: portB }], 'B, once');
    const dialed = await a.call('dial-any', found.peers[0]);
    t.is(dialed.remotePublicKey, keyB);
    t.is(dialed.echo, 'hello, whoever you are');
    t.deepEqual((await a.call('lookup', { topic: 'another-topic', timeout: 800 })).peers, []);
    t.log(`connect by key ${c.ms.toFixed(1)} ms, resolve ${r.ms.toFixed(1)} ms, lookup ${found.ms.toFixed(0)} ms`);
  } finally {
    await lan2.close();
  }
});

test.serial('a topic lookup across namespaces finds every advertiser, once each, and only them', async (t) => {
  const [a, b, c] = hosts;
  const { peers, ms } = await a!.proc.call('lookup', { topic: TOPIC, timeout: 1500 });
  const sorted = (xs: Array<{ host: string; port: number; publicKey: string }>) => [...xs].sort((x, y) => x.host.localeCompare(y.host));
  t.deepEqual(sorted(peers), sorted([b!, c!].map((h) => ({ host: h.ip, port: h.port, publicKey: h.publicKey }))));
  t.true(ms >= 1400 && ms < 3000, `a lookup runs until its timeout (${ms} ms)`);
  const onlyC = await a!.proc.call('lookup', { topic: TOPIC_C, timeout: 1000 });
  t.deepEqual(onlyC.peers, [{ host: c!.ip, port: c!.port, publicKey: c!.publicKey }]);
  const none = await a!.proc.call('lookup', { topic: randomBytes(20).toString('hex'), timeout: 800 });
  t.deepEqual(none.peers, []);
  const fromB = await b!.proc.call('lookup', { topic: TOPIC, timeout: 800 });
  t.deepEqual(fromB.peers, [{ host: c!.ip, port: c!.port, publicKey: c!.publicKey }], 'B does not find itself');
});

test.serial('bad arguments on a started instance are InvalidArgumentError', async (t) => {
  const misuse = await hosts[0]!.proc.call('misuse');
  t.deepEqual(misuse, { advertise: InvalidArgumentError.code, resolve: InvalidArgumentError.code, lookup: InvalidArgumentError.code });
});

test.serial('an abort rejects a resolve with AbortError and ends a lookup quietly, both at once', async (t) => {
  const r = await hosts[0]!.proc.call('abort');
  t.is(r.resolve, AbortError.code);
  t.true(r.resolveMs < 1000 && r.lookupMs < 1000 && r.preAbortedMs < 100, JSON.stringify(r));
  t.is(r.yielded, 0);
});

test.serial('a change of topics is announced: a lookup already running hears it without asking again', async (t) => {
  const [a, , c] = hosts;
  const fresh = randomBytes(20).toString('hex');
  // Queries go out at 0 and 250 ms of a 950 ms lookup; C joins the topic at about 450 ms.
  const looking = a!.proc.call('lookup', { topic: fresh, timeout: 950 });
  await new Promise((resolve) => setTimeout(resolve, 450));
  await c!.proc.call('advertise', { topics: [TOPIC, TOPIC_C, fresh] });
  t.deepEqual((await looking).peers, [{ host: c!.ip, port: c!.port, publicKey: c!.publicKey }]);
  // Replaced without it: C no longer answers for it.
  await c!.proc.call('advertise', { topics: [TOPIC, TOPIC_C] });
  t.deepEqual((await a!.proc.call('lookup', { topic: fresh, timeout: 800 })).peers, []);
});

test.serial('a query from a port other than the mDNS port is answered by unicast, same id, short TTLs', async (t) => {
  const [a, b] = hosts;
  const r = await a!.proc.call('legacy', { publicKey: b!.publicKey });
  t.not(r, null, 'no unicast reply within 1 s');
  t.is(r.id, 4242);
  t.deepEqual(r.questions, [`${encodeKey(Buffer.from(b!.publicKey, 'hex'))}._peersock._udp.local`]);
  t.deepEqual(r.answers, [{ type: 'SRV', ttl: 10 }, { type: 'TXT', ttl: 10 }, { type: 'A', ttl: 10 }]);
});

test.serial('resolving an unknown key gives [] within the timeout', async (t) => {
  const [a] = hosts;
  const r = await a!.proc.call('resolve', { publicKey: Buffer.from(keyPair().publicKey).toString('hex'), timeout: 1200 });
  t.deepEqual(r.addresses, []);
  t.true(r.ms >= 1150 && r.ms < 2500, `${r.ms} ms`);
});

test.serial('garbage, oversized and lying packets on the mDNS port neither crash nor confuse a LanDiscovery', async (t) => {
  const [a, b, , d] = hosts;
  // Without first: A collects every address heard while D sends the lies.
  const answeredBefore = (await b!.proc.call('stats')).answered as number;
  const resolving = a!.proc.call('resolve', { publicKey: b!.publicKey, timeout: 2500 });
  const { sent, lieHost, liePort } = await d!.proc.call('hostile', { target: b!.publicKey });
  t.true(sent > 400);
  const r = await resolving;
  t.deepEqual(r.addresses, [{ host: b!.ip, port: b!.port }], 'only B itself; no lie was believed');
  t.false(JSON.stringify(r.addresses).includes(lieHost) || JSON.stringify(r.addresses).includes(String(liePort)));
  const [sa, sb] = await Promise.all([a!.proc.call('stats'), b!.proc.call('stats')]);
  t.true(sa.malformed > 0 && sb.malformed > 0, 'undecodable packets were counted');
  const answered = sb.answered - answeredBefore;
  t.true(sb.rateLimited > 0, `B did not answer the whole query flood of 300 (${answered} answered, ${sb.rateLimited} limited)`);
  t.true(answered <= 20 + 20 * 3, `at most the burst and 3 s of the rate: ${answered}`);
  t.log(`B: ${answered} answered, ${sb.rateLimited} rate-limited, ${sb.malformed} malformed; A: ${sa.malformed} malformed`);
  // Still answering, and right, afterwards.
  const again = await a!.proc.call('resolve', { publicKey: b!.publicKey, timeout: 3000, first: true });
  t.deepEqual(again.addresses, [{ host: b!.ip, port: b!.port }]);
});

test.serial('close() stops answering: a later resolve gets []', async (t) => {
  const [a, , , d] = hosts;
  await d!.proc.call('advertise', { topics: [] });
  const before = await a!.proc.call('resolve', { publicKey: d!.publicKey, timeout: 3000, first: true });
  t.deepEqual(before.addresses, [{ host: d!.ip, port: d!.port }]);
  const closed = await d!.proc.call('close-discovery');
  t.true(closed.lateLookupMs < 100 && closed.yielded === 0, `a lookup iterated after close() ends at once: ${JSON.stringify(closed)}`);
  const after = await a!.proc.call('resolve', { publicKey: d!.publicKey, timeout: 1500 });
  t.deepEqual(after.addresses, []);
  const misuse = await d!.proc.call('misuse', { valid: true });
  t.deepEqual(misuse, { advertise: ClosedError.code, resolve: ClosedError.code, lookup: ClosedError.code });

});
