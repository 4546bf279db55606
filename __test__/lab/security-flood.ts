/**
 * Floods a UDP port on loopback from its own process (scenarios 12 and 13),
 * as fast as it can, bounded by a count and a time.
 *
 *   env: PORT, KIND ('initial' | 'garbage'), COUNT, SECONDS, HOST (default 127.0.0.1),
 *        RATE (datagrams per second; 0 or unset = as fast as possible)
 *   → parent: { ready: true } once the pool is built; starts on { cmd: 'go' }
 *   → parent: { sent, ms } when done
 *
 * 'initial': 1200-byte datagrams with a QUIC v1 Initial header (random
 * 16-byte DCID, empty token) and a junk payload: what a spoofing attacker
 * sends to make a server spend work. 'garbage': an even mix of random bytes
 * of every length up to 1500, truncated packets (0–40 bytes), long headers
 * (Initial, 0-RTT, Handshake, Retry; v1 and unknown versions) and short
 * headers with random 16-byte DCIDs, each with a junk body.
 */
import { randomBytes, randomFillSync } from 'node:crypto';
import dgram from 'node:dgram';

import { dieWithParent } from './security-child';

const port = Number(process.env.PORT);
const host = process.env.HOST ?? '127.0.0.1';
const kind = process.env.KIND ?? 'garbage';
const count = Number(process.env.COUNT ?? 1_000_000);
const seconds = Number(process.env.SECONDS ?? 30);
const rate = Number(process.env.RATE ?? 0);

function initial(): Buffer {
  const p = randomBytes(1200);
  p[0] = 0xc0 | (p[0]! & 0x0f);
  p.writeUInt32BE(1, 1);
  p[5] = 16; // DCID length
  p[22] = 8; // SCID length
  p[31] = 0; // token length
  return p;
}

function garbage(i: number): Buffer {
  switch (i % 6) {
    case 0:
      return randomBytes(1 + (i % 1500));
    case 1:
      return randomBytes(i % 41);
    case 2:
      return initial();
    case 3: {
      // Long header of another type or version, junk after it.
      const p = randomBytes(40 + (i % 1300));
      p[0] = 0xc0 | (((i >> 3) & 3) << 4) | (p[0]! & 0x0f);
      p.writeUInt32BE(i % 5 === 0 ? 0x1a2a3a4a : 1, 1);
      p[5] = i % 21; // DCID length, sometimes over 20
      return p;
    }
    case 4: {
      // Short header: fixed bit set, random DCID, junk.
      const p = randomBytes(22 + (i % 1400));
      p[0] = 0x40 | (p[0]! & 0x3f);
      return p;
    }
    default: {
      // A truncated Initial.
      return initial().subarray(0, 1 + (i % 1199));
    }
  }
}

async function main(): Promise<void> {
  dieWithParent();
  const pool = Array.from({ length: 4096 }, (_, i) => (kind === 'initial' ? initial() : garbage(i)));
  const sock = dgram.createSocket(host.includes(':') ? 'udp6' : 'udp4');
  await new Promise<void>((r) => sock.bind(0, host, r));
  sock.on('error', () => {});
  process.send!({ ready: true });
  await new Promise<void>((r) => process.once('message', () => r()));
  const start = performance.now();
  const deadline = start + seconds * 1000;
  let sent = 0;
  let inFlight = 0;
  while (sent < count && performance.now() < deadline) {
    let batch = 256;
    if (rate > 0) {
      batch = Math.min(batch, Math.floor(((performance.now() - start) / 1000) * rate) - sent);
      if (batch <= 0) {
        await new Promise((r) => setTimeout(r, 1));
        continue;
      }
    }
    for (let k = 0; k < batch && sent < count; k++, sent++) {
      const p = pool[sent % pool.length]!;
      // Vary the pool a little each round so the endpoint never sees the
      // same bytes twice in a row (DCIDs differ).
      if (sent % pool.length === 0 && sent > 0 && p.length >= 14) randomFillSync(p, 6, 8);
      inFlight++;
      sock.send(p, port, host, () => inFlight--);
    }
    // Let the send callbacks run: bounded memory, no unbounded queue.
    while (inFlight > 4096) await new Promise((r) => setImmediate(r));
    await new Promise((r) => setImmediate(r));
  }
  while (inFlight > 0) await new Promise((r) => setImmediate(r));
  const ms = performance.now() - start;
  sock.close();
  process.send!({ sent, ms }, () => process.exit(0));
}

void main();
