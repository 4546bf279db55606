/**
 * `peersock dht`: a DHT node other nodes bootstrap from, run as a real
 * process (src/cli.ts through tsx) on loopback. It prints its address first,
 * serves records between nodes that know only it, joins through the
 * --bootstrap nodes it is given, and exits 130 on SIGINT or SIGTERM.
 */
import test from 'ava';
import { createSocket as createUdpSocket } from 'node:dgram';
import { once } from 'node:events';

import { decodeRecord, encodeRecord } from '../src/discovery/record';
import { keyPair } from '../src/index';
import { lines, runCli, startCli } from './cli-helpers';
import { addr, startNode } from './lab/dht-net';

/** A UDP port that was free a moment ago. */
async function freePort(): Promise<number> {
  const s = createUdpSocket('udp4');
  s.bind(0, '127.0.0.1');
  await once(s, 'listening');
  const { port } = s.address();
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

test.serial('peersock dht --port N --bootstrap HOST:PORT: prints its address, others bootstrap from it, SIGTERM exits 130', async (t) => {
  t.timeout(60_000);
  const seed = await startNode(t, []); // the node the CLI bootstraps from
  const port = await freePort();
  const proc = startCli(t, ['dht', '--host', '127.0.0.1', '--port', String(port), '--bootstrap', addr(seed)], { input: null });
  const first = await proc.stderrLine(/./, 20_000);
  t.is(first, `127.0.0.1:${port}`, 'the first stderr line is the address to bootstrap from');

  // Two nodes that know only the CLI's node: one publishes, the other resolves.
  const pub = await startNode(t, [first]);
  const reader = await startNode(t, [first]);
  const kp = keyPair();
  const { stored } = await pub.put(kp, encodeRecord({ addresses: [{ host: '127.0.0.1', port: 4433 }], introducers: [] }), 1);
  t.true(stored >= 1);
  const item = await reader.get(kp.publicKey, { timeout: 10_000 });
  t.is(item === null ? null : decodeRecord(kp.publicKey, item.seq, item.v)?.addresses[0]?.port, 4433);
  // The CLI's node joined through --bootstrap: the seed heard from it.
  t.true(seed.stats.queriesReceived >= 1, 'the CLI node contacted its --bootstrap node');

  proc.child.kill('SIGTERM');
  const r = await proc.exited(10_000);
  t.is(r.code, 130, r.stderr);
  t.regex(lines(r.stderr).pop() ?? '', /^peersock: interrupted; \d+ messages received/);
  t.is(r.stdout.length, 0, 'nothing on stdout');
});

test.serial('peersock dht alone starts a new DHT; SIGINT exits 130; bad options exit 2', async (t) => {
  const proc = startCli(t, ['dht', '--host', '127.0.0.1'], { input: null });
  const first = await proc.stderrLine(/./, 20_000);
  t.regex(first, /^127\.0\.0\.1:[0-9]{1,5}$/);
  const node = await startNode(t, [first]);
  const kp = keyPair();
  t.true((await node.put(kp, encodeRecord({ addresses: [], introducers: [] }), 1)).stored >= 1, 'the lone CLI node stores a record');
  proc.child.kill('SIGINT');
  t.is((await proc.exited(10_000)).code, 130);

  for (const args of [['dht', '--bootstrap', 'nope'], ['dht', '--host', '::1'], ['dht', '--port', '70000'], ['dht', 'extra']]) {
    const r = await runCli(t, args);
    t.is(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    t.is(lines(r.stderr).length, 1);
  }
});
