/**
 * A host of the LAN lab (lan.ts), run inside a namespace by `LanLab.spawn`.
 * It binds one PeerSocket that echoes every stream, starts one LanDiscovery
 * on its interface, and takes commands as JSON lines on stdin (one reply line
 * each on stdout). It exits when stdin closes (its parent went away).
 *
 *   env: IFACE (IPv4 address of eth0, required), MDNS_PORT (default 5353)
 *   → { ready: true, publicKey: hex, port }   (the QUIC socket's key and port)
 *   ← { id, cmd: 'advertise', topics: hex[] }                 → {}
 *   ← { id, cmd: 'resolve', publicKey: hex, timeout, first? } → { addresses: PeerAddress[], ms }
 *   ← { id, cmd: 'lookup', topic: hex, timeout }              → { peers: [{ host, port, publicKey: hex }], ms }
 *   ← { id, cmd: 'connect', publicKey: hex, host, port }      → { remotePublicKey: hex, echo }
 *   ← { id, cmd: 'close-discovery' }                          → { lateLookupMs, yielded } (a lookup made before, iterated after)
 *   ← { id, cmd: 'stats' }                                    → LanDiscoveryStats
 *   ← { id, cmd: 'legacy', publicKey: hex }  a query from an ephemeral port → its unicast reply { id, questions, answers: [{ type, ttl }] } or null
 *   ← { id, cmd: 'abort' }  a resolve and a lookup aborted after 150 ms, a lookup aborted before → { resolve: code, resolveMs, lookupMs, preAbortedMs, yielded }
 *   ← { id, cmd: 'misuse', valid? }  calls with bad (or valid) arguments → { advertise, resolve, lookup }: error codes
 *   ← { id, cmd: 'hostile', target: hex }  sends garbage and lying packets to the group
 *                                          → { sent, lieHost, liePort } (where the lies point)
 *   errors: { id, error: { code, message } }
 *
 * With MODE=discovery it runs the user's path instead: no LanDiscovery of its
 * own, but `Discovery.start(socket, { mdns: true })` on its echoing socket
 * (no bootstrap: the DHT is off; default mDNS options, so the multicast goes
 * wherever the namespace routes it).
 *   → { ready: true, publicKey: hex, port }
 *   ← { id, cmd: 'announce', topic: string }            → {}
 *   ← { id, cmd: 'resolve', publicKey: hex, timeout }   → { record: { source, seq, addresses, introducers } | null, ms }
 *   ← { id, cmd: 'connect', publicKey: hex, timeout }   → { remotePublicKey: hex, remoteAddress: PeerAddress, echo, ms }
 *   ← { id, cmd: 'lookup', topic: string, timeout }     → { peers: PeerAddress[], ms }
 *   ← { id, cmd: 'dial-any', host, port }               → { remotePublicKey: hex, echo } (anyKey: the handshake tells the key)
 */
import { createSocket } from 'node:dgram';
import { randomBytes } from 'node:crypto';
import * as dnsPacket from 'dns-packet';

import type { PeerConnection } from '../../src/connection';
import { Discovery } from '../../src/discovery/discovery';
import { LanDiscovery } from '../../src/discovery/mdns';
import { hostName, instanceName } from '../../src/discovery/mdns-records';
import { encodeKey, keyPair } from '../../src/keys';
import { PeerSocket } from '../../src/peer-socket';
import { out, serve, type Commands } from './command-loop';

const hex = (k: Uint8Array): string => Buffer.from(k).toString('hex');
const bytes = (h: unknown, len: number): Uint8Array => {
  if (typeof h !== 'string' || h.length !== len * 2 || !/^[0-9a-f]+$/.test(h)) throw new Error(`expected ${len * 2} hex characters`);
  return new Uint8Array(Buffer.from(h, 'hex'));
};

/** A PeerSocket on every address of the namespace that echoes every stream. */
async function echoSocket(): Promise<PeerSocket> {
  const socket = await PeerSocket.bind({ host: '0.0.0.0', port: 0 });
  socket.on('error', (e: Error) => process.stderr.write(`mdns-peer socket error: ${e.message}\n`));
  socket.on('connection', (c: PeerConnection) => {
    c.on('error', () => {});
    c.on('stream', (s) => {
      s.on('error', () => {});
      s.pipe(s);
    });
  });
  return socket;
}

/** Sends `text` on a new stream of `c`, ends it, and returns what came back (the peer echoes). */
async function echoOver(c: PeerConnection, text: string): Promise<string> {
  const s = c.openStream();
  let echo = '';
  const done = new Promise<void>((resolve, reject) => {
    s.on('data', (d: Buffer) => (echo += d.toString()));
    s.once('end', resolve);
    s.once('error', reject);
  });
  s.end(text);
  await done;
  return echo;
}

/** MODE=discovery: the Discovery facade with mDNS only (see the module comment). */
async function discoveryMain(): Promise<void> {
  const socket = await echoSocket();
  const discovery = await Discovery.start(socket, { mdns: true });
  const commands: Commands = {
    async announce(m) {
      discovery.announce(String(m.topic));
      return {};
    },
    async resolve(m) {
      const started = performance.now();
      const r = await discovery.resolve(bytes(m.publicKey, 32), { timeout: m.timeout });
      const record = r === null ? null : { source: r.source, seq: r.seq, addresses: r.addresses, introducers: r.introducers, publicKey: hex(r.publicKey) };
      return { record, ms: performance.now() - started };
    },
    async connect(m) {
      const started = performance.now();
      const c = await discovery.connect(bytes(m.publicKey, 32), { timeout: m.timeout });
      const ms = performance.now() - started;
      c.on('error', () => {});
      const echo = await echoOver(c, 'hello through Discovery');
      const result = { remotePublicKey: hex(c.remotePublicKey), remoteAddress: { host: c.remoteAddress.address, port: c.remoteAddress.port }, echo, ms };
      await c.close();
      return result;
    },
    async lookup(m) {
      const started = performance.now();
      const peers: unknown[] = [];
      for await (const p of discovery.lookup(String(m.topic), { timeout: m.timeout })) peers.push({ host: p.host, port: p.port });
      return { peers, ms: performance.now() - started };
    },
    async 'dial-any'(m) {
      const c = await socket.connect({ host: m.host, port: m.port }, { anyKey: true, timeout: 5000 });
      c.on('error', () => {});
      const echo = await echoOver(c, 'hello, whoever you are');
      const result = { remotePublicKey: hex(c.remotePublicKey), echo };
      await c.close();
      return result;
    },
  };
  serve(commands, () => Promise.allSettled([discovery.close(), socket.close()]));
  out({ ready: true, publicKey: hex(socket.publicKey), port: socket.address().port });
}

async function main(): Promise<void> {
  if (process.env.MODE === 'discovery') return discoveryMain();
  const iface = process.env.IFACE;
  if (iface === undefined) throw new Error('IFACE is required');
  const mdnsPort = Number(process.env.MDNS_PORT ?? 5353);
  const socket = await echoSocket();
  const lan = await LanDiscovery.start({ interface: iface, port: mdnsPort });
  const port = socket.address().port;

  const commands: Commands = {
    async advertise(m) {
      lan.advertise({ publicKey: socket.publicKey, port, topics: (m.topics as unknown[]).map((t) => bytes(t, 20)) });
      return {};
    },
    async resolve(m) {
      const started = performance.now();
      const addresses = await lan.resolve(bytes(m.publicKey, 32), { timeout: m.timeout, first: m.first === true });
      return { addresses, ms: performance.now() - started };
    },
    async lookup(m) {
      const started = performance.now();
      const peers: unknown[] = [];
      for await (const p of lan.lookup(bytes(m.topic, 20), { timeout: m.timeout })) peers.push({ host: p.host, port: p.port, publicKey: hex(p.publicKey) });
      return { peers, ms: performance.now() - started };
    },
    async connect(m) {
      const c = await socket.connect({ publicKey: bytes(m.publicKey, 32), host: m.host, port: m.port }, { timeout: 5000 });
      c.on('error', () => {});
      return { remotePublicKey: hex(c.remotePublicKey), echo: await echoOver(c, 'hello over mdns') };
    },
    async 'close-discovery'() {
      // A lookup made before close() and iterated after it ends at once.
      const early = lan.lookup(new Uint8Array(20), { timeout: 5000 });
      await lan.close();
      const started = performance.now();
      let yielded = 0;
      for await (const _ of early) yielded++;
      return { lateLookupMs: performance.now() - started, yielded };
    },
    stats: async () => lan.stats,
    async legacy(m) {
      // A one-shot query from an ephemeral port (like `dig -p 5353 @224.0.0.251`): the unicast reply, if any within 1 s.
      const sock = createSocket({ type: 'udp4' });
      await new Promise<void>((resolve) => sock.bind(0, iface, resolve));
      sock.setMulticastInterface(iface);
      const reply = new Promise<dnsPacket.Packet | null>((resolve) => {
        const timer = setTimeout(() => resolve(null), 1000);
        sock.on('message', (msg) => {
          clearTimeout(timer);
          resolve(dnsPacket.decode(msg));
        });
      });
      const query = dnsPacket.encode({ type: 'query', id: 4242, questions: [{ name: instanceName(bytes(m.publicKey, 32)), type: 'SRV' }] });
      sock.send(query, mdnsPort, '224.0.0.251');
      const r = await reply;
      sock.close();
      if (r === null) return null;
      return { id: r.id, questions: r.questions?.map((q) => q.name), answers: r.answers?.map((a) => ({ type: a.type, ttl: (a as { ttl?: number }).ttl })) };
    },
    async abort() {
      // A resolve and a lookup aborted after 150 ms of their 5 s: the resolve's error code, how long each ran.
      let started = performance.now();
      let resolve = 'no error';
      try {
        await lan.resolve(keyPair().publicKey, { timeout: 5000, signal: AbortSignal.timeout(150) });
      } catch (e) {
        resolve = (e as { code?: string }).code ?? String(e);
      }
      const resolveMs = performance.now() - started;
      started = performance.now();
      let yielded = 0;
      for await (const _ of lan.lookup(new Uint8Array(20), { timeout: 5000, signal: AbortSignal.timeout(150) })) yielded++;
      const lookupMs = performance.now() - started;
      started = performance.now();
      for await (const _ of lan.lookup(new Uint8Array(20), { timeout: 5000, signal: AbortSignal.abort() })) yielded++;
      return { resolve, resolveMs, lookupMs, preAbortedMs: performance.now() - started, yielded };
    },
    async misuse(m) {
      // Each call's error code: with bad arguments, or (valid: true) good ones.
      const code = async (fn: () => unknown): Promise<string> => {
        try {
          await fn();
          return 'no error';
        } catch (e) {
          return (e as { code?: string }).code ?? String(e);
        }
      };
      return {
        advertise: await code(() => lan.advertise({ publicKey: socket.publicKey, port: m.valid === true ? port : 0, topics: [] })),
        resolve: await code(() => lan.resolve(new Uint8Array(m.valid === true ? 32 : 31), { timeout: 10 })),
        lookup: await code(() => lan.lookup(new Uint8Array(m.valid === true ? 20 : 0), { timeout: 10 })),
      };
    },
    hostile: async (m) => ({ sent: await hostile(iface, mdnsPort, bytes(m.target, 32)), lieHost: LIE_HOST, liePort: LIE_PORT }),
  };

  serve(commands, () => Promise.allSettled([lan.close(), socket.close()]));
  out({ ready: true, publicKey: hex(socket.publicKey), port });
}

/** The address a lying answer points at; a LanDiscovery must never return it. */
const LIE_HOST = '10.215.0.99';
/** The port a lying answer names. */
const LIE_PORT = 9999;

/**
 * Sends to the group, from an ordinary UDP socket: random bytes, a truncated
 * packet, an oversized response (500 records, 8 KiB TXT), answers for
 * `target` that are inconsistent (TXT naming another key, port 0, a name
 * that is no key), a goodbye, and a flood of 300 queries for `target`.
 */
async function hostile(iface: string, port: number, target: Uint8Array): Promise<number> {
  const sock = createSocket({ type: 'udp4' });
  await new Promise<void>((resolve) => sock.bind(0, iface, resolve));
  sock.setMulticastInterface(iface);
  const send = (buf: Uint8Array): Promise<void> => new Promise((resolve) => sock.send(buf, port, '224.0.0.251', () => resolve()));
  const inst = instanceName(target);
  const other = keyPair().publicKey;
  const packets: Uint8Array[] = [];
  for (let i = 0; i < 100; i++) packets.push(randomBytes(1 + Math.floor(Math.random() * 1400)));
  const valid = dnsPacket.encode({ type: 'response', answers: [{ name: inst, type: 'SRV', ttl: 120, data: { port: LIE_PORT, target: 'x.local' } }] });
  packets.push(valid.subarray(0, valid.length - 5)); // truncated
  const srv = (p: number, tgt = hostName(target)): dnsPacket.Answer => ({ name: inst, type: 'SRV', ttl: 120, data: { port: p, target: tgt } });
  const lieA: dnsPacket.Answer = { name: 'liar.local', type: 'A', ttl: 120, data: LIE_HOST };
  packets.push(
    // TXT names another key: inconsistent, dropped.
    dnsPacket.encode({ type: 'response', answers: [srv(LIE_PORT, 'liar.local'), { name: inst, type: 'TXT', ttl: 120, data: [`pk=${encodeKey(other)}`] }, lieA] }),
    // Port 0: dropped.
    dnsPacket.encode({ type: 'response', answers: [srv(0, 'liar.local'), lieA] }),
    // A goodbye (ttl 0) pointing at the liar: dropped.
    dnsPacket.encode({ type: 'response', answers: [{ name: inst, type: 'SRV', ttl: 0, data: { port: LIE_PORT, target: 'liar.local' } }, lieA] }),
    // An SRV under a name that is not a key.
    dnsPacket.encode({ type: 'response', answers: [{ name: `${'l'.repeat(52)}._peersock._udp.local`, type: 'SRV', ttl: 120, data: { port: LIE_PORT, target: 'liar.local' } }, lieA] }),
    // Oversized: 500 records and an 8 KiB TXT (the SRV of the lie comes after the record cap).
    dnsPacket.encode({
      type: 'response',
      answers: [
        { name: inst, type: 'TXT', ttl: 120, data: Array.from({ length: 32 }, () => Buffer.alloc(255, 0x41)) },
        ...Array.from({ length: 500 }, (_, i): dnsPacket.Answer => ({ name: `n${i}.local`, type: 'A', ttl: 120, data: '10.215.0.98' })),
        srv(LIE_PORT, 'liar.local'),
        lieA,
      ],
    }),
  );
  for (let i = 0; i < 300; i++) packets.push(dnsPacket.encode({ type: 'query', questions: [{ name: inst, type: 'SRV' }] }));
  // Paced (5 packets, then 2 ms) so the receivers' socket buffers are not what drops the flood.
  for (let i = 0; i < packets.length; i++) {
    await send(packets[i]!);
    if (i % 5 === 4) await new Promise((resolve) => setTimeout(resolve, 2));
  }
  await new Promise<void>((resolve) => sock.close(() => resolve()));
  return packets.length;
}

main().catch((e: unknown) => {
  process.stderr.write(`mdns-peer: ${(e as Error).stack ?? String(e)}\n`);
  process.exit(1);
});
