/**
 * The `peersock` command-line tool, driven as a user would: real processes
 * (src/cli.ts through tsx) talking over loopback, checked by their output,
 * files and exit codes. Tests run one at a time: each starts several Node
 * processes, and the machine's cores are shared.
 */
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createSocket as createUdpSocket } from 'node:dgram';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import test, { type ExecutionContext } from 'ava';

import { decodeKey, encodeKey, keyPair, PeerSocket, type PeerConnection } from '../src/index';
import { encodeHeader } from '../src/cli/transfer';
import { CLI_ARGS, DIAL_RE, lines, ROOT, runCli, startCli, startListener, tempDir, type Exit } from './cli-helpers';

const COMMANDS = ['keygen', 'listen', 'connect', 'send', 'receive', 'demo', 'bench', 'dht'];
const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

/** Asserts a failure: exit `code`, nothing on stdout, exactly one line on stderr matching every pattern. */
function failsWith(t: ExecutionContext, r: Exit, code: number, ...patterns: RegExp[]): void {
  t.is(r.code, code, `exit code; stderr: ${r.stderr}`);
  t.is(r.stdout.length, 0, 'nothing on stdout');
  const l = lines(r.stderr);
  t.is(l.length, 1, `one line on stderr, got: ${JSON.stringify(r.stderr)}`);
  for (const p of patterns) t.regex(l[0] ?? '', p);
}

/** Makes an identity with `keygen` in `dir`; returns its file and public key. */
async function keygen(t: ExecutionContext, dir: string, name: string): Promise<{ file: string; key: string }> {
  const file = path.join(dir, name);
  const r = await runCli(t, ['keygen', '--out', file]);
  t.is(r.code, 0, r.stderr);
  return { file, key: r.stdout.toString().trim() };
}

/** Runs a few things at a time (a dozen tsx start-ups at once would crowd two cores). */
async function inBatches<T, R>(items: readonly T[], size: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = [];
  for (let i = 0; i < items.length; i += size) out.push(...(await Promise.all(items.slice(i, i + size).map(fn))));
  return out;
}

test.serial('--help, at top level and on every command, prints usage and the exit codes and exits 0', async (t) => {
  const runs = await inBatches([['--help'], ['help', 'send'], ...COMMANDS.map((c) => [c, '--help']), ['listen', '-h']], 3, async (args) => ({
    args,
    r: await runCli(t, args),
  }));
  for (const { args, r } of runs) {
    const what = `peersock ${args.join(' ')}`;
    t.is(r.code, 0, what);
    t.is(r.stderr, '', what);
    const text = r.stdout.toString();
    t.regex(text, /Usage: peersock/, what);
    t.regex(text, /Exit codes:[\s\S]*\b2 +bad usage[\s\S]*\b3 +identity[\s\S]*\b4 +timeout/, what);
  }
  const top = runs[0]!.r.stdout.toString();
  for (const c of COMMANDS) t.regex(top, new RegExp(`^  ${c}\\b`, 'm'), `top-level help lists ${c}`);
});

test.serial('bad arguments exit 2 with one line on stderr', async (t) => {
  const dir = tempDir(t);
  const notKey = path.join(dir, 'not-a-key');
  writeFileSync(notKey, 'hello\n');
  const someKey = encodeKey(keyPair().publicKey);
  const cases: Array<[string[], RegExp]> = [
    [[], /missing command/],
    [['frobnicate'], /unknown command "frobnicate"/],
    [['listen', '--bogus'], /unknown option --bogus/],
    [['listen', '--port', '70000'], /bad --port "70000"/],
    [['listen', '--port'], /--port needs a value/],
    [['listen', '--host', 'example.com'], /bad --host/],
    [['listen', '--exec', ' '], /--exec needs a command/],
    [['listen', '--key', notKey], /not a peersock key/],
    [['connect'], /missing <key@host:port>/],
    [['connect', 'nokey@127.0.0.1:1'], /bad address/],
    [['connect', `${someKey}@127.0.0.1`], /bad address: .*no port/],
    [['connect', `${someKey}@127.0.0.1:1`, 'extra'], /unexpected argument "extra"/],
    [['connect', '--timeout', 'soon', `${someKey}@127.0.0.1:1`], /bad --timeout/],
    [['connect', '--key', path.join(dir, 'missing.key'), `${someKey}@127.0.0.1:1`], /cannot read key file/],
    [['send', path.join(dir, 'missing.bin'), `${someKey}@127.0.0.1:1`], /cannot read .*missing\.bin/],
    [['send', dir, `${someKey}@127.0.0.1:1`], /is not a regular file/],
    [['receive', '--out', path.join(dir, 'nowhere')], /bad --out/],
    [['receive', '--allow', 'xyz'], /bad --allow key/],
    [['keygen', 'extra'], /unexpected argument/],
    [['keygen', '--force=yes'], /--force takes no value/],
    [['demo', '--size', '0'], /bad --size/],
  ];
  const runs = await inBatches(cases, 3, async ([args, re]) => ({ args, re, r: await runCli(t, args) }));
  for (const { args, re, r } of runs) {
    t.log(`peersock ${args.join(' ')} → ${r.stderr.trim()}`);
    failsWith(t, r, 2, /^peersock: /, re);
  }
});

test.serial('keygen writes a private key file and prints a key that round-trips', async (t) => {
  const dir = tempDir(t);
  const file = path.join(dir, 'me.key');
  const r = await runCli(t, ['keygen', '--out', file]);
  t.is(r.code, 0, r.stderr);
  const printed = r.stdout.toString().trim();
  t.regex(printed, /^[ybndrfg8ejkmcpqxot1uwisza345h769]{52}$/);
  t.is(encodeKey(decodeKey(printed)), printed, 'the printed key decodes and re-encodes to itself');
  t.is(statSync(file).mode & 0o777, 0o600, 'the key file is private');

  // The documented format: # comments, then the seed as 64 hex characters.
  const body = readFileSync(file, 'utf8').split('\n').filter((l) => l !== '' && !l.startsWith('#'));
  t.is(body.length, 1);
  t.regex(body[0]!, /^[0-9a-f]{64}$/);
  t.deepEqual(keyPair(Buffer.from(body[0]!, 'hex')).publicKey, decodeKey(printed), 'the seed in the file is the printed key');

  // Never overwritten by accident; --force replaces it.
  const again = await runCli(t, ['keygen', '--out', file]);
  failsWith(t, again, 1, /already exists/);
  t.is(readFileSync(file, 'utf8').includes(body[0]!), true, 'the old key is intact');
  const forced = await runCli(t, ['keygen', '--out', file, '--force']);
  t.is(forced.code, 0);
  t.not(forced.stdout.toString().trim(), printed, 'a new key');

  // Default file name, in the working directory.
  const cwd = await runCli(t, ['keygen'], { cwd: dir });
  t.is(cwd.code, 0, cwd.stderr);
  t.true(existsSync(path.join(dir, 'peersock.key')));
});

test.serial('listen + connect pipe data both ways, half-close, and both exit 0', async (t) => {
  const dir = tempDir(t);
  const id = await keygen(t, dir, 'listener.key');
  const fromListener = `listener says ${randomBytes(2000).toString('hex')}\n`;
  const fromConnect = `connect says ${randomBytes(3000).toString('hex')}\n`;
  const { proc: listener, address } = await startListener(t, ['listen', '--key', id.file], { input: fromListener });
  t.is(address.split('@')[0], id.key, 'the listener is the identity from its key file');

  const c = await runCli(t, ['connect', address], { input: fromConnect });
  t.is(c.code, 0, c.stderr);
  t.is(c.stdout.toString(), fromListener, "connect printed the listener's stdin");
  t.is(c.stderr, '', 'connect says nothing on stderr when all is well');

  const l = await listener.exited(10_000);
  t.is(l.code, 0, l.stderr);
  t.is(l.stdout.toString(), fromConnect, "listen printed connect's stdin");
  t.regex(l.stderr, /^peersock: connection from [a-z0-9]{52} at 127\.0\.0\.1:\d+$/m);
});

test.serial('listen --exec runs the command per stream with the stream as its stdin/stdout', async (t) => {
  const dir = tempDir(t);
  const client = await keygen(t, dir, 'client.key');
  // The command sees who connected (a key proven by the handshake), then echoes.
  const { proc: listener, address } = await startListener(t, ['listen', '--exec', 'printf "%s\\n" "$PEERSOCK_REMOTE_KEY"; cat']);

  const big = randomBytes(2 * 1024 * 1024);
  const c1 = await runCli(t, ['connect', '--key', client.file, address], { input: big });
  t.is(c1.code, 0, c1.stderr);
  const expected = Buffer.concat([Buffer.from(`${client.key}\n`), big]);
  t.is(c1.stdout.length, expected.length, 'every byte came back');
  t.true(c1.stdout.equals(expected), 'the key line, then the 2 MiB echoed intact');

  // It keeps serving: a second peer (a random identity) gets its own run of the command.
  const c2 = await runCli(t, ['connect', address], { input: 'second\n' });
  t.is(c2.code, 0, c2.stderr);
  const [key2, echo2] = lines(c2.stdout.toString());
  t.regex(key2 ?? '', /^[a-z0-9]{52}$/);
  t.not(key2, client.key);
  t.is(echo2, 'second');

  listener.child.kill('SIGTERM');
  const l = await listener.exited(10_000);
  t.is(l.code, 130, 'stopped by a signal: exit 130');
});

test.serial('listen --exec: a command that exits without reading still ends the session cleanly', async (t) => {
  const { proc: listener, address } = await startListener(t, ['listen', '--exec', 'echo one-shot']);
  // stdin stays open until the command's output has arrived (and the command has exited),
  // so our FIN reaches a stream whose command is gone.
  const c = startCli(t, ['connect', address], { input: null });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no output from the command')), 20_000);
    c.child.stdout!.on('data', () => {
      if (c.stdout().toString() === 'one-shot\n') {
        clearTimeout(timer);
        resolve();
      }
    });
  });
  await listener.stderrLine(/^peersock: connection from /);
  await new Promise((resolve) => setTimeout(resolve, 300));
  c.child.stdin!.end('nobody reads this\n');
  const r = await c.exited(15_000);
  t.is(r.code, 0, r.stderr);
  t.is(r.stdout.toString(), 'one-shot\n');
  await listener.stderrLine(/left$/);
  t.notRegex(listener.stderr(), /before the stream was done/, 'the listener read our FIN before we closed');
  listener.child.kill('SIGTERM');
  t.is((await listener.exited(10_000)).code, 130);
});

test.serial('connect to the right address but the wrong key fails fast with exit 3', async (t) => {
  const { proc: listener, address } = await startListener(t, ['listen'], { input: 'still here\n' });
  const hostPort = address.split('@')[1]!;
  const wrong = encodeKey(keyPair().publicKey);
  const r = await runCli(t, ['connect', `${wrong}@${hostPort}`], { input: 'secret\n' });
  failsWith(t, r, 3, /identity mismatch/, /ERR_PEERSOCK_IDENTITY_MISMATCH/, new RegExp(`not the dialed key ${wrong}`));
  t.true(r.ms < 5000, `took ${Math.round(r.ms)} ms`);

  // The listener never saw the impostor's dialer as a peer: the real key still gets through.
  const ok = await runCli(t, ['connect', address], { input: '' });
  t.is(ok.code, 0, ok.stderr);
  t.is(ok.stdout.toString(), 'still here\n');
  t.is((await listener.exited(10_000)).code, 0);
});

test.serial('connect gives up after --timeout with exit 4 when nobody answers', async (t) => {
  // A UDP port that swallows everything: nothing there speaks QUIC.
  const sink = createUdpSocket('udp4');
  await new Promise<void>((resolve) => sink.bind(0, '127.0.0.1', resolve));
  t.teardown(() => sink.close());
  const key = encodeKey(keyPair().publicKey);
  const r = await runCli(t, ['connect', '--timeout', '1', `${key}@127.0.0.1:${sink.address().port}`]);
  failsWith(t, r, 4, /no answer from 127\.0\.0\.1:\d+ within 1 s/, /ERR_PEERSOCK_HANDSHAKE_TIMEOUT/);
  t.true(r.ms < 6000, `took ${Math.round(r.ms)} ms`);
});

test.serial('a listener with --allow refuses other peers: exit 5', async (t) => {
  const dir = tempDir(t);
  const stranger = await keygen(t, dir, 'stranger.key');
  const { proc: listener, address } = await startListener(t, ['listen', '--allow', encodeKey(keyPair().publicKey)], { input: null });
  const r = await runCli(t, ['connect', '--key', stranger.file, address]);
  failsWith(t, r, 5, /refused the connection/, /ERR_PEERSOCK_CONNECTION_REFUSED/);
  await listener.stderrLine(new RegExp(`^peersock: refused ${stranger.key} at 127\\.0\\.0\\.1:\\d+: not in --allow$`));
});

test.serial('send / receive: a 3 MiB file arrives intact, verified by SHA-256', async (t) => {
  const dir = tempDir(t);
  const inbox = path.join(dir, 'inbox');
  mkdirSync(inbox);
  const data = randomBytes(3 * 1024 * 1024 + 123);
  const file = path.join(dir, 'random.bin');
  writeFileSync(file, data);

  const { proc: receiver, address } = await startListener(t, ['receive', '--out', inbox]);
  const s = await runCli(t, ['send', file, address]);
  t.is(s.code, 0, s.stderr);
  const r = await receiver.exited(15_000);
  t.is(r.code, 0, r.stderr);

  const saved = path.join(inbox, 'random.bin');
  t.is(r.stdout.toString(), `${saved}\n`, 'receive prints the saved path on stdout');
  t.deepEqual(readdirSync(inbox), ['random.bin'], 'no temporary files left behind');
  t.is(sha256(readFileSync(saved)), sha256(data));
  t.regex(s.stderr, new RegExp(`receiver verified SHA-256 ${sha256(data)}`));
  t.regex(r.stderr, new RegExp(`SHA-256 ${sha256(data)} verified`));
  // Not a terminal: plain progress lines, no bar redrawn with \r or escapes.
  for (const e of [s.stderr, r.stderr]) {
    t.false(/[\r\u001b]/.test(e), 'no carriage returns or escape sequences');
    t.regex(e, /^peersock: (send|receive) random\.bin: 3\.0 MiB in [\d.]+ s, [\d.]+ (KiB|MiB|GiB)\/s$/m);
  }
});

test.serial('receive discards a file whose SHA-256 does not match and exits 6', async (t) => {
  const dir = tempDir(t);
  const { proc: receiver, address } = await startListener(t, ['receive', '--out', dir]);

  // A sender that lies about the hash, built on the public API and the CLI's header encoding.
  const socket = await PeerSocket.bind({ host: '127.0.0.1', port: 0 });
  t.teardown(() => socket.close());
  const conn: PeerConnection = await socket.connect(address, { timeout: 5000 });
  const stream = conn.openStream();
  const body = randomBytes(200_000);
  stream.write(encodeHeader({ name: 'forged.bin', size: body.length }));
  stream.write(body);
  stream.end(Buffer.from(sha256(randomBytes(8)), 'hex'));
  const verdict: Buffer[] = [];
  for await (const c of stream) verdict.push(c as Buffer);
  await conn.close();
  t.like(JSON.parse(Buffer.concat(verdict).toString()), { ok: false, error: 'SHA-256 mismatch: the bytes received are not the bytes sent' });

  const r = await receiver.exited(10_000);
  t.is(r.code, 6, r.stderr);
  t.regex(lines(r.stderr).pop() ?? '', /^peersock: SHA-256 mismatch.*discarded forged\.bin$/);
  t.deepEqual(readdirSync(dir), [], 'nothing kept, no temporary file');
});

test.serial('send to a receiver that already has the file: both fail with a clear line, nothing replaced', async (t) => {
  const dir = tempDir(t);
  const inbox = path.join(dir, 'inbox');
  mkdirSync(inbox);
  writeFileSync(path.join(inbox, 'same.txt'), 'original');
  const file = path.join(dir, 'same.txt');
  writeFileSync(file, 'replacement');
  const { proc: receiver, address } = await startListener(t, ['receive', '--out', inbox]);
  const s = await runCli(t, ['send', file, address]);
  t.is(s.code, 1);
  t.regex(lines(s.stderr).pop() ?? '', /^peersock: the receiver gave up: .*same\.txt already exists/);
  const r = await receiver.exited(10_000);
  t.is(r.code, 1);
  t.regex(lines(r.stderr).pop() ?? '', /already exists/);
  t.is(readFileSync(path.join(inbox, 'same.txt'), 'utf8'), 'original');
  t.deepEqual(readdirSync(inbox), ['same.txt']);
});

test.serial('send draws a progress bar on a terminal (tmux)', async (t) => {
  const dir = tempDir(t);
  const data = randomBytes(6 * 1024 * 1024);
  const file = path.join(dir, 'bar.bin');
  writeFileSync(file, data);
  const inbox = path.join(dir, 'inbox');
  mkdirSync(inbox);
  const { proc: receiver, address } = await startListener(t, ['receive', '--out', inbox]);

  // A private tmux server and session, killed at teardown whatever happens.
  const name = `peersock-cli-${process.pid}-${randomBytes(4).toString('hex')}`;
  const tmux = (...args: string[]): string => execFileSync('tmux', ['-L', name, ...args], { encoding: 'utf8', timeout: 10_000 });
  t.teardown(() => {
    try {
      tmux('kill-server');
    } catch {
      // Already gone.
    }
  });
  const q = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;
  const cmd = [process.execPath, ...CLI_ARGS, 'send', file, address].map(q).join(' ');
  tmux('new-session', '-d', '-s', name, '-x', '120', '-y', '20', `${cmd}; echo EXIT=$?; sleep 60`);

  let pane = '';
  const deadline = Date.now() + 30_000;
  while (!/EXIT=\d+/.test(pane) && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 250));
    pane = tmux('capture-pane', '-p', '-t', name);
  }
  t.log(pane.trimEnd());
  t.regex(pane, /EXIT=0/, 'send succeeded inside tmux');
  const bar = pane.split('\n').find((l) => l.startsWith('send bar.bin ['));
  t.truthy(bar, 'a bar line');
  t.regex(bar ?? '', /^send bar\.bin \[#+\] 100% +6\.0 MiB \/ 6\.0 MiB +[\d.]+ (KiB|MiB|GiB)\/s +in [\d.]+ s$/);
  t.notRegex(pane, /peersock: send bar\.bin:/, 'no plain progress lines on a terminal');

  const r = await receiver.exited(10_000);
  t.is(r.code, 0, r.stderr);
  t.is(sha256(readFileSync(path.join(inbox, 'bar.bin'))), sha256(data));
});

test.serial('demo runs two peers in one process: request/reply, conversation, file, timings', async (t) => {
  const r = await runCli(t, ['demo', '--size', '4'], {}, 90_000);
  t.is(r.code, 0, r.stderr);
  const out = r.stdout.toString();
  t.log(out.trimEnd());
  for (const step of ['handshake', 'stream echo', 'datagram RTT', 'request/reply', 'conversation', 'file transfer', 'close']) {
    t.regex(out, new RegExp(`^  ${step.replace('/', '\\/')} +[\\d.]+ ms  `, 'm'), step);
  }
  t.regex(out, /Ping\{n:41\} → Pong\{n:42\}/);
  t.regex(out, /4\.0 MiB B → A, [\d.]+ MiB\/s, SHA-256 verified/);
  t.regex(out, /^ok \([\d.]+ s\)$/m);
});

test.serial('the built bin (dist/cli.js) runs with a shebang; bench exits 2 where bench/ is absent', async (t) => {
  const built = path.join(ROOT, 'dist', 'cli.js');
  if (!existsSync(built)) {
    t.fail('dist/cli.js is missing: run npm run build:ts first');
    return;
  }
  t.is(readFileSync(built, 'utf8').split('\n')[0], '#!/usr/bin/env node');

  // An installed package: dist/, native/ and package.json, no bench/ (package.json "files").
  const pkg = tempDir(t);
  cpSync(path.join(ROOT, 'dist'), path.join(pkg, 'dist'), { recursive: true });
  symlinkSync(path.join(ROOT, 'native'), path.join(pkg, 'native'));
  symlinkSync(path.join(ROOT, 'node_modules'), path.join(pkg, 'node_modules'));
  writeFileSync(path.join(pkg, 'package.json'), JSON.stringify({ name: 'peersock', version: '9.9.9-test' }));
  const bin = path.join(pkg, 'dist', 'cli.js');

  const version = await runCli(t, [bin, '--version'], { command: process.execPath, cwd: pkg });
  t.is(version.stdout.toString(), '9.9.9-test\n', 'the version comes from the package root');
  const help = await runCli(t, [bin, 'bench', '--help'], { command: process.execPath, cwd: pkg });
  t.is(help.code, 0);
  const bench = await runCli(t, [bin, 'bench'], { command: process.execPath, cwd: pkg });
  failsWith(t, bench, 2, /benchmark is not part of the installed package/);
});

test.serial('receive prints its address first, then how to send to it; SIGINT exits 130', async (t) => {
  const { proc, address } = await startListener(t, ['receive', '--out', tempDir(t)]);
  t.regex(address, DIAL_RE);
  t.is(await proc.stderrLine(/waiting for a file/), `peersock: waiting for a file; the sender runs: peersock send <file> ${address}`);
  proc.child.kill('SIGINT');
  const r = await proc.exited(10_000);
  t.is(r.code, 130, `${r.signal} ${r.stderr}`);
  t.regex(lines(r.stderr).pop() ?? '', /^peersock: interrupted$/);
});
