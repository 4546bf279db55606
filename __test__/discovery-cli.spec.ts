/**
 * `peersock dht`: a DHT node other nodes bootstrap from, run as a real
 * process (src/cli.ts through tsx) on loopback. It prints its address first,
 * serves records between nodes that know only it, joins through the
 * --bootstrap nodes it is given, and exits 130 on SIGINT or SIGTERM.
 *
 * Then the finding options end to end, every process a real CLI on loopback
 * with a private DHT of one `peersock dht` node: receive and listen publish
 * their records, send and connect reach them by bare key; the usage errors
 * of a bare key, and the exit code of a key nobody published.
 */
import test from 'ava';
import { createHash, randomBytes } from 'node:crypto';
import { createSocket as createUdpSocket } from 'node:dgram';
import { once } from 'node:events';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

import { decodeRecord, encodeRecord } from '../src/discovery/record';
import { encodeKey, keyPair } from '../src/index';
import { lines, runCli, startCli, tempDir, type CliProcess } from './cli-helpers';
import { addr, startNode } from './lab/dht-net';
import { waitFor } from './helpers';

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

// Finding peers by key from the command line.

/** The key part of a dial string `<key>@<host>:<port>`. */
const keyOf = (dial: string): string => dial.split('@')[0]!;

/**
 * A private DHT for one test: a `peersock dht` on loopback. `stop()` interrupts
 * it and returns how many queries its default rate limit (100 a second per
 * address; every process here sends from 127.0.0.1) turned away.
 */
async function cliDht(t: import('ava').ExecutionContext): Promise<{ address: string; stop: () => Promise<number> }> {
  const proc = startCli(t, ['dht', '--host', '127.0.0.1', '--port', '0'], { input: null });
  const address = await proc.stderrLine(/^127\.0\.0\.1:\d+$/, 20_000);
  return {
    address,
    stop: async () => {
      proc.child.kill('SIGINT');
      const r = await proc.exited(10_000);
      const m = /\((\d+) over the rate limit/.exec(r.stderr);
      if (r.code !== 130 || m === null) throw new Error(`peersock dht did not stop cleanly (${r.code}): ${r.stderr}`);
      return Number(m[1]);
    },
  };
}

/** Starts `peersock <args> --host 127.0.0.1` and waits for its dial string and its "published record" line. */
async function publishing(t: import('ava').ExecutionContext, args: string[], input: string | null = null): Promise<{ proc: CliProcess; key: string; port: number }> {
  const proc = startCli(t, [...args, '--host', '127.0.0.1'], { input });
  const dial = await proc.stderrLine(/^[a-z0-9]{52}@127\.0\.0\.1:\d+$/, 30_000);
  const published = await proc.stderrLine(/published record|could not publish/, 30_000);
  const port = Number(dial.split(':').pop());
  t.regex(published, new RegExp(`^peersock: published record \\d+: 127\\.0\\.0\\.1:${port}$`), 'its loopback address and nothing else');
  return { proc, key: keyOf(dial), port };
}

test.serial('peersock receive --bootstrap publishes; peersock send --bootstrap FILE <bare key> delivers it, SHA-256 verified', async (t) => {
  t.timeout(90_000);
  const dht = await cliDht(t);
  const dir = tempDir(t);
  const outDir = path.join(dir, 'out');
  await import('node:fs/promises').then((fs) => fs.mkdir(outDir));
  const file = path.join(dir, 'payload.bin');
  const data = randomBytes(300_000);
  writeFileSync(file, data);

  const t0 = performance.now();
  const recv = await publishing(t, ['receive', '--bootstrap', dht.address, '--out', outDir]);
  const published = performance.now() - t0;
  t.is(lines(recv.proc.stderr())[0], `${recv.key}@127.0.0.1:${recv.port}`, 'the dial string is the first stderr line');
  // The hint follows the "published record" line: wait for it (bounded) instead of racing the log.
  const hint = new RegExp(`the sender runs: peersock send --bootstrap ${dht.address.replace(/\./g, '\\.')} <file> ${recv.key}`);
  await waitFor('the sender hint on stderr', 5000, () => hint.test(recv.proc.stderr()));

  const t1 = performance.now();
  const send = await runCli(t, ['send', '--bootstrap', dht.address, file, recv.key], {}, 60_000);
  t.is(send.code, 0, send.stderr);
  t.regex(send.stderr, new RegExp(`sending \\S*payload\\.bin \\(.*\\) to ${recv.key}`));
  const r = await recv.proc.exited(20_000);
  t.is(r.code, 0, r.stderr);
  t.regex(r.stderr, /receiving payload\.bin .* at 127\.0\.0\.1:\d+/, 'the sender came from loopback');
  const saved = r.stdout.toString().trim();
  t.is(saved, path.join(outDir, 'payload.bin'));
  const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
  t.is(sha(readFileSync(saved)), sha(data));
  t.true(send.stderr.includes(sha(data)) && r.stderr.includes(sha(data)), 'both ends report the same SHA-256');

  t.is(await dht.stop(), 0, 'the DHT node rate-limited nobody');
  t.log(`receive published in ${published.toFixed(0)} ms; send by key ran ${(performance.now() - t1).toFixed(0)} ms`);
});

test.serial('peersock listen --bootstrap + echo hi | peersock connect --bootstrap <bare key>: both get the other\'s bytes', async (t) => {
  t.timeout(90_000);
  const dht = await cliDht(t);
  const listen = await publishing(t, ['listen', '--bootstrap', dht.address], 'hello from listen\n');
  const t1 = performance.now();
  const conn = await runCli(t, ['connect', '--bootstrap', dht.address, listen.key], { input: 'hi\n' }, 60_000);
  t.is(conn.code, 0, conn.stderr);
  t.is(conn.stdout.toString(), 'hello from listen\n', "connect's stdout is listen's stdin");
  const l = await listen.proc.exited(20_000);
  t.is(l.code, 0, l.stderr);
  t.is(l.stdout.toString(), 'hi\n', "listen's stdout is connect's stdin");
  t.regex(l.stderr, /connection from [a-z0-9]{52} at 127\.0\.0\.1:\d+/);
  t.is(await dht.stop(), 0, 'the DHT node rate-limited nobody');
  t.log(`connect by key ran ${(performance.now() - t1).toFixed(0)} ms`);
});

test.serial('a bare key: exit 2 without --bootstrap or --mdns; exit 4 when the DHT has no record of it', async (t) => {
  t.timeout(90_000);
  const key = encodeKey(keyPair().publicKey);
  const dir = tempDir(t);
  const file = path.join(dir, 'f');
  writeFileSync(file, 'x');
  for (const args of [['connect', key], ['send', file, key], ['connect', '--introducer', `${key}@127.0.0.1:9`, key]]) {
    const r = await runCli(t, args);
    t.is(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    t.is(lines(r.stderr).length, 1, r.stderr);
    t.regex(r.stderr, /a bare key needs --bootstrap or --mdns|--introducer goes with --bootstrap or --mdns/);
  }
  const bad = await runCli(t, ['connect', '--bootstrap', '127.0.0.1:9', 'not-a-key']);
  t.is(bad.code, 2, bad.stderr);
  t.regex(bad.stderr, /bad peer "not-a-key"/);

  const dht = await cliDht(t);
  for (const args of [['connect', '--bootstrap', dht.address, key], ['send', '--bootstrap', dht.address, file, key]]) {
    const r = await runCli(t, args, {}, 60_000);
    t.is(r.code, 4, `${args.join(' ')}: ${r.stderr}`);
    t.is(lines(r.stderr).pop(), `peersock: no record of ${key} was found [ERR_PEERSOCK_PEER_NOT_FOUND]`);
    t.is(r.stdout.length, 0);
    t.log(`${args[0]}: not found in ${r.ms.toFixed(0)} ms`);
  }
  t.is(await dht.stop(), 0);
});

test.serial('a published key whose peer is gone: connect --bootstrap exits 4 once every address in the record failed or time ran out', async (t) => {
  t.timeout(90_000);
  const dht = await cliDht(t);
  const listen = await publishing(t, ['listen', '--bootstrap', dht.address]);
  listen.proc.child.kill('SIGINT');
  t.is((await listen.proc.exited(10_000)).code, 130);
  const r = await runCli(t, ['connect', '--timeout', '2', '--bootstrap', dht.address, listen.key], {}, 60_000);
  t.is(r.code, 4, r.stderr);
  t.regex(lines(r.stderr).pop() ?? '', /^peersock: .*\[ERR_PEERSOCK_(PEER_UNREACHABLE|DISCOVERY_TIMEOUT)\]$/);
  t.true(r.ms < 20_000, `gave up near its --timeout (${r.ms.toFixed(0)} ms)`);
  t.is(r.stdout.length, 0);
  t.is(await dht.stop(), 0);
  t.log(lines(r.stderr).pop());
});
