/**
 * Keep-alive for NAT mappings (issue 6): a PING at the configured interval
 * while a connection is idle, counted at the lab relay; it holds a
 * connection open past its idle timeout, and without it the same connection
 * idles out.
 */
import { performance } from 'node:perf_hooks';
import test from 'ava';

import { IdleTimeoutError } from '../src/errors';
import { createSocket, sleep, target } from './helpers';
import { createRelay } from './lab/setup';

const IDLE = 1000;

test('keepAlive 200 ms holds an idle connection open for 3 s past a 1 s idle timeout; the relay counts one ping per interval', async (t) => {
  t.timeout(20_000);
  const server = await createSocket(t, { idleTimeout: IDLE, keepAlive: 0 });
  const client = await createSocket(t, { idleTimeout: IDLE, keepAlive: 200 });
  const relay = await createRelay(t, server);
  const conn = await client.connect({ publicKey: server.publicKey, ...relay.address() });
  await sleep(300); // the handshake's trailing packets
  const c2s0 = relay.stats().c2s.packetsIn;
  const s2c0 = relay.stats().s2c.packetsIn;
  const t0 = performance.now();
  await sleep(3000);
  const secs = (performance.now() - t0) / 1000;
  const pings = relay.stats().c2s.packetsIn - c2s0;
  const acks = relay.stats().s2c.packetsIn - s2c0;
  t.is(conn.closeInfo, undefined, 'still open after 3 s without application traffic');
  t.log(`${pings} client packets (pings) and ${acks} server packets in ${secs.toFixed(2)} s: one ping per ${((secs * 1000) / pings).toFixed(0)} ms`);
  // One per 200 ms: about 15 in 3 s (timer slack makes it a little fewer).
  t.true(pings >= 11 && pings <= 18, `${pings} pings`);
  // The connection still carries data.
  const s = conn.openStream({ unidirectional: true });
  s.end('still here');
});

test('per-connection keepAlive overrides the socket default; without keep-alive the same idle connection times out', async (t) => {
  t.timeout(20_000);
  const server = await createSocket(t, { idleTimeout: IDLE, keepAlive: 0 });
  const client = await createSocket(t, { idleTimeout: IDLE, keepAlive: 0 });
  const kept = await client.connect(target(server), { keepAlive: 200 });
  const t0 = performance.now();
  const off = await client.connect(target(server));
  const info = await off.closed;
  const after = performance.now() - t0;
  t.true(info.error instanceof IdleTimeoutError, `closed with ${String(info.error)}`);
  t.true(after >= IDLE - 50 && after < IDLE + 2000, `idled out after ${after.toFixed(0)} ms`);
  await sleep(3000 - after);
  t.is(kept.closeInfo, undefined, 'the connection with its own keep-alive stayed open');
});

test('keep-alive is on by default (15 s, below common 30 s NAT timeouts)', async (t) => {
  // The default interval only shows as a deadline: a connection with a 16 s
  // idle timeout survives 20 s only if something pinged before 16 s.
  t.timeout(40_000);
  const server = await createSocket(t, { idleTimeout: 16_000, keepAlive: 0 });
  const client = await createSocket(t, { idleTimeout: 16_000 });
  const relay = await createRelay(t, server);
  const conn = await client.connect({ publicKey: server.publicKey, ...relay.address() });
  await sleep(300);
  const c2s0 = relay.stats().c2s.packetsIn;
  await sleep(20_000);
  t.is(conn.closeInfo, undefined, 'still open after 20 s');
  const pings = relay.stats().c2s.packetsIn - c2s0;
  t.true(pings >= 1 && pings <= 3, `${pings} pings in 20 s`);
});
