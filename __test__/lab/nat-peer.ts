/**
 * A peer of the NAT lab, run inside a namespace by `NatLab.spawn`. It binds
 * one PeerSocket, answers observed-address requests and echoes streams, and
 * takes commands as JSON lines on stdin (one reply line each on stdout). It
 * exits when stdin closes (its parent went away).
 *
 *   env: HOST (default 0.0.0.0), PORT (default 0), PUNCH_TTL (NatTraversalOptions.punchTtl),
 *        RELAY ('off' or NatTraversalOptions.relay as JSON), IDLE_TIMEOUT and KEEP_ALIVE (ms)
 *   → { ready: true, publicKey: hex, address: { address, port, family } }
 *   ← { id, cmd: 'connect', publicKey: hex, host, port, timeout? }  → { remoteAddress }
 *   ← { id, cmd: 'observe', publicKey: hex }                       → { address, port, family }
 *   ← { id, cmd: 'classify', publicKeys: hex[] }                   → NatClassification (keys as hex)
 *   ← { id, cmd: 'echo', publicKey: hex, bytes }                   → { bytes } echoed back
 *   ← { id, cmd: 'stats' }                                         → socket.stats()
 *   ← { id, cmd: 'connections' }                                   → [{ publicKey: hex, remoteAddress }]
 *   ← { id, cmd: 'connect-via', publicKey, via: hex, timeout?, direct?, relay?, directTimeout? }
 *                                                    → { ms, path: ConnectionPath, remoteAddress }
 *   ← { id, cmd: 'path', publicKey: hex }                          → ConnectionPath
 *   ← { id, cmd: 'relay-stats' }                                   → RelayStats (null: relay off)
 *   ← { id, cmd: 'transfer', publicKey: hex, bytes }               → { ms, ok } (the peer hashes what it got)
 *   ← { id, cmd: 'ping', publicKey: hex }                          → { reply, ms } (a request/reply)
 *   ← { id, cmd: 'discover', bootstrap: string[], introducers?: string[], publish?: boolean }
 *                                                    → the published record (addresses), or null
 *   ← { id, cmd: 'connect-key', publicKey: hex, timeout? }         → { ms, path, remoteAddress } (Discovery.connect)
 *   Streams opened to this peer are echoed, except ones starting with
 *   "SHA256\n": those are hashed and answered with the hex digest.
 *   errors: { id, error: { code, message } }
 */
import type { PeerConnection } from '../../src/connection';
import { keysEqual } from '../../src/keys';
import { classifyNat } from '../../src/nat/classify';
import { createHash, randomBytes } from 'node:crypto';

import { Dispatcher } from '../../src/messages/dispatcher';
import { observeAddress, observedAddress } from '../../src/nat/observed';
import { connectionPath, natTraversal, relayStats, type NatTraversalOptions } from '../../src/nat/traversal';
import { PeerSocket, type BindOptions } from '../../src/peer-socket';
import { Discovery } from '../../src/discovery/discovery';
import { out, serve, type Commands } from './command-loop';

const hex = (k: Uint8Array): string => Buffer.from(k).toString('hex');
const key = (h: unknown): Uint8Array => {
  if (typeof h !== 'string' || !/^[0-9a-f]{64}$/.test(h)) throw new Error('publicKey must be 64 hex characters');
  return new Uint8Array(Buffer.from(h, 'hex'));
};

async function main(): Promise<void> {
  const opts: BindOptions = { host: process.env.HOST ?? '0.0.0.0', port: Number(process.env.PORT ?? 0) };
  // Every lab peer may introduce (and relay for) the others, as every socket did before issue 13.
  const nat: NatTraversalOptions = { introducer: true };
  if (process.env.PUNCH_TTL !== undefined) nat.punchTtl = Number(process.env.PUNCH_TTL);
  if (process.env.IDLE_TIMEOUT !== undefined) opts.idleTimeout = Number(process.env.IDLE_TIMEOUT);
  if (process.env.KEEP_ALIVE !== undefined) opts.keepAlive = Number(process.env.KEEP_ALIVE);
  if (process.env.RELAY !== undefined) nat.relay = process.env.RELAY === 'off' ? false : JSON.parse(process.env.RELAY);
  // Both NAT extensions: introductions (natTraversal) and observed addresses (observedAddress, for 'observe' and 'classify').
  opts.extensions = [natTraversal(nat), observedAddress()];
  const socket = await PeerSocket.bind(opts);
  const lab = new Dispatcher(socket, { protocol: 'lab/1' });
  lab.handle('ping', (m: Uint8Array) => Buffer.concat([Buffer.from('pong:'), m]));
  socket.on('error', (e: Error) => process.stderr.write(`nat-peer socket error: ${e.message}\n`));
  socket.on('connection', (c: PeerConnection) => {
    c.on('error', (e: Error) => process.stderr.write(`nat-peer connection error: ${e.message}\n`));
    c.on('stream', (s) => {
      s.on('error', () => {});
      s.once('readable', () => {
        const head = s.read(7) as Buffer | null;
        if (head !== null && head.toString() === 'SHA256\n') {
          const h = createHash('sha256');
          s.on('data', (d: Buffer) => h.update(d));
          s.once('end', () => s.end(h.digest('hex')));
          return;
        }
        if (head !== null) s.write(head);
        s.pipe(s);
      });
    });
  });

  const conn = (h: unknown): PeerConnection => {
    const k = key(h);
    const c = socket.connections.find((x) => keysEqual(x.remotePublicKey, k) && x.closeInfo === undefined);
    if (c === undefined) throw new Error(`no connection to ${String(h)}`);
    return c;
  };

  const commands: Commands = {
    async connect(m) {
      const c = await socket.connect({ publicKey: key(m.publicKey), host: m.host, port: m.port }, { timeout: m.timeout ?? 5000 });
      c.on('error', () => {});
      return { remoteAddress: c.remoteAddress };
    },
    observe: async (m) => observeAddress(socket, conn(m.publicKey)),
    async classify(m) {
      const r = await classifyNat(socket, (m.publicKeys as unknown[]).map(conn));
      return { ...r, observations: r.observations.map((o) => ({ ...o, publicKey: hex(o.publicKey) })) };
    },
    async echo(m) {
      const s = conn(m.publicKey).openStream();
      const body = Buffer.alloc(Number(m.bytes), 0x5a);
      let got = 0;
      const done = new Promise<number>((resolve, reject) => {
        s.on('data', (d: Buffer) => (got += d.length));
        s.once('end', () => resolve(got));
        s.once('error', reject);
      });
      s.end(body);
      return { bytes: await done };
    },
    stats: async () => socket.stats(),
    connections: async () => socket.connections.map((c) => ({ publicKey: hex(c.remotePublicKey), remoteAddress: c.remoteAddress })),
    async 'connect-via'(m) {
      const started = performance.now();
      const opt = { timeout: m.timeout ?? 5000, ...(m.direct !== undefined ? { direct: m.direct } : {}), ...(m.relay !== undefined ? { relay: m.relay } : {}), ...(m.directTimeout !== undefined ? { directTimeout: m.directTimeout } : {}) };
      const c = await socket.connect({ publicKey: key(m.publicKey), via: conn(m.via) }, opt);
      const ms = performance.now() - started;
      c.on('error', () => {});
      return { ms, path: connectionPath(socket, c), remoteAddress: c.remoteAddress };
    },
    path: async (m) => connectionPath(socket, conn(m.publicKey)),
    'relay-stats': async () => relayStats(socket) ?? null,
    async transfer(m) {
      const body = randomBytes(Number(m.bytes));
      const want = createHash('sha256').update(body).digest('hex');
      const started = performance.now();
      const s = conn(m.publicKey).openStream();
      let got = '';
      const done = new Promise<void>((resolve, reject) => {
        s.on('data', (d: Buffer) => (got += d.toString()));
        s.once('end', resolve);
        s.once('error', reject);
      });
      s.write('SHA256\n');
      s.end(body);
      await done;
      return { ms: performance.now() - started, ok: got === want };
    },
    async discover(m) {
      const d = await Discovery.start(socket, { bootstrap: m.bootstrap, introducers: m.introducers ?? [], dht: { host: '0.0.0.0' } });
      if (m.publish !== true) return null;
      // Wait for the public address from the introducer (observe), bounded, then publish.
      for (let i = 0; i < 50 && (m.introducers ?? []).length > 0 && !d.addresses().some((a) => !a.host.startsWith('10.')); i++) await new Promise((r) => setTimeout(r, 100));
      const r = await d.publish();
      return { seq: r.seq, addresses: r.addresses, introducers: r.introducers };
    },
    async 'connect-key'(m) {
      const started = performance.now();
      const c = await Discovery.of(socket)!.connect(key(m.publicKey), { timeout: m.timeout ?? 10_000 });
      const ms = performance.now() - started;
      c.on('error', () => {});
      return { ms, path: connectionPath(socket, c), remoteAddress: c.remoteAddress };
    },
    async ping(m) {
      const started = performance.now();
      const reply = await lab.request<Uint8Array>(conn(m.publicKey), Buffer.from('hi'), { type: 'ping', reply: 'ping', timeout: 5000 });
      return { reply: Buffer.from(reply).toString(), ms: performance.now() - started };
    },
  };

  // Until the parent closes our stdin (or dies); then close the socket and leave.
  serve(commands, () => socket.close());
  out({ ready: true, publicKey: hex(socket.publicKey), address: socket.address() });
}

main().catch((e: unknown) => {
  process.stderr.write(`nat-peer: ${(e as Error).stack ?? String(e)}\n`);
  process.exit(1);
});
