/**
 * `peersock demo`: two peers on loopback in one process. B dials A by key;
 * they exchange a stream message, datagrams, typed request/replies and a
 * conversation through Dispatcher, then B sends A a file (64 MiB by default)
 * with the progress bar, and both close. Prints each step with its timing.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import protobuf from 'protobufjs';

import { Dispatcher, encodeKey, keysEqual, PeerSocket, type CloseInfo, type Conversation, type PeerConnection, type PeerStream } from '../index';
import { expectPositionals, intOption } from './args';
import type { Command } from './command';
import { CliError, ExitCode, toCliError } from './exit';
import { formatBytes, Progress } from './progress';
import { receiveFile, sendFile, type TransferResult } from './transfer';

const DEADLINE_MS = 180_000;
const REQUESTS = 200;
/** Even: B says 1, A says 2, ... A says the last number. */
const CONVERSATION_STEPS = 20;
const PINGS = 20;
const PING_TIMEOUT_MS = 1000;

/** The demo's message types (protobufjs, reflected from .proto text). */
const types = protobuf.parse(`
  syntax = "proto3";
  package demo;
  message Ping { uint32 n = 1; }
  message Pong { uint32 n = 1; }
  message Count { uint32 step = 1; }
`).root;
const Ping = types.lookupType('demo.Ping');
const Pong = types.lookupType('demo.Pong');
const Count = types.lookupType('demo.Count');

const since = (t0: number): number => performance.now() - t0;
const ms = (v: number, digits = 1): string => `${v.toFixed(digits)} ms`;

/** Prints one step: name, time, what happened. */
function report(name: string, time: string, what: string): void {
  process.stdout.write(`  ${name.padEnd(16)}${time.padStart(11)}  ${what}\n`);
}

function check(ok: boolean, what: string): void {
  if (!ok) throw new CliError(`demo failed: ${what}`, ExitCode.Failure);
}

/** Hex SHA-256 of a file. */
async function fileHash(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const c of createReadStream(path)) h.update(c as Buffer);
  return h.digest('hex');
}

/** One datagram round trip in ms, or undefined if it did not come back in time. */
function ping(conn: PeerConnection, seq: number): Promise<number | undefined> {
  const payload = Buffer.alloc(64);
  payload.write(`ping ${seq}`);
  return new Promise((resolve) => {
    const t0 = performance.now();
    const onDatagram = (d: Uint8Array): void => {
      if (!Buffer.from(d).equals(payload)) return; // a late echo of an earlier ping
      clearTimeout(timer);
      conn.off('datagram', onDatagram);
      resolve(since(t0));
    };
    const timer = setTimeout(() => {
      conn.off('datagram', onDatagram);
      resolve(undefined);
    }, PING_TIMEOUT_MS);
    conn.on('datagram', onDatagram);
    conn.sendDatagram(payload);
  });
}

/** Runs the demo with a file of `sizeMiB`; throws CliError on the first failure. */
export async function runDemo(sizeMiB: number): Promise<void> {
  const tStart = performance.now();
  const dir = mkdtempSync(join(tmpdir(), 'peersock-demo-'));
  const sockets: PeerSocket[] = [];
  try {
    process.stdout.write('peersock demo: two peers on loopback, one process\n\n');
    const a = await PeerSocket.bind({ host: '127.0.0.1', port: 0 });
    sockets.push(a);
    const b = await PeerSocket.bind({ host: '127.0.0.1', port: 0 });
    sockets.push(b);
    process.stdout.write(`  A  ${encodeKey(a.publicKey)}  127.0.0.1:${a.address().port}\n`);
    process.stdout.write(`  B  ${encodeKey(b.publicKey)}  127.0.0.1:${b.address().port}\n\n`);

    // A: echoes stream messages and datagrams, answers Pings, counts along in
    // conversations, and receives files into `dir`.
    const server = new Dispatcher(a, { protocol: 'demo/1' });
    server.handle(Ping, (msg: { n: number }) => Pong.create({ n: msg.n + 1 }));
    server.onConversation(Count, (conv: Conversation) => {
      conv.on('message', (m: { step: number }) => void conv.send(Count.create({ step: m.step + 1 })).catch(() => undefined));
    });
    let accepted!: (c: PeerConnection) => void;
    const acceptedByA = new Promise<PeerConnection>((resolve) => (accepted = resolve));
    let fileArrived!: (r: Promise<TransferResult>) => void;
    const fileAtA = new Promise<Promise<TransferResult>>((resolve) => (fileArrived = resolve));
    const inbox = join(dir, 'received');
    mkdirSync(inbox);
    a.on('connection', (c: PeerConnection) => {
      c.on('datagram', (d: Uint8Array) => void c.sendDatagram(d));
      let streams = 0;
      c.on('stream', (s: PeerStream) => {
        // The first stream is the message echo, the second the file.
        if (streams++ === 0) {
          s.pipe(s);
          return;
        }
        const progress = (name: string, size: number): Progress => new Progress({ label: `A receives ${name}`, total: size });
        fileArrived(receiveFile(c, s, { dir: inbox, force: false, progress }));
      });
      accepted(c);
    });

    // Dial by key: the handshake proves A holds the key B dialed, and B's key to A.
    const dial = `${encodeKey(a.publicKey)}@127.0.0.1:${a.address().port}`;
    let t0 = performance.now();
    const conn = await b.connect(dial);
    const handshake = since(t0);
    check(keysEqual(conn.remotePublicKey, a.publicKey), 'B is connected to a key other than the one it dialed');
    const atA = await acceptedByA;
    check(keysEqual(atA.remotePublicKey, b.publicKey), "A sees a key other than B's");
    report('handshake', ms(handshake), `B dialed ${dial.slice(0, 12)}…; each side proved its key`);

    // A message through a stream, echoed.
    t0 = performance.now();
    const echo = conn.openStream();
    const chunks: Buffer[] = [];
    echo.on('data', (c: Buffer) => chunks.push(c));
    const echoed = new Promise<void>((resolve, reject) => {
      echo.on('end', resolve);
      echo.on('error', reject);
    });
    echo.end('hello from B');
    await echoed;
    check(Buffer.concat(chunks).toString() === 'hello from B', 'the stream echo came back different');
    report('stream echo', ms(since(t0)), '"hello from B" came back intact');

    // Datagrams: unreliable, so count losses rather than fail on one.
    const rtts: number[] = [];
    for (let i = 0; i < PINGS; i++) {
      const rtt = await ping(conn, i);
      if (rtt !== undefined) rtts.push(rtt);
    }
    check(rtts.length > 0, `none of ${PINGS} datagrams came back`);
    rtts.sort((x, y) => x - y);
    report('datagram RTT', ms(rtts[Math.floor(rtts.length / 2)]!, 3), `median of ${rtts.length}/${PINGS} echoed (max payload ${conn.maxDatagramSize} B)`);

    // Typed request/reply through Dispatcher.
    const client = new Dispatcher(b, { protocol: 'demo/1' });
    t0 = performance.now();
    const first = (await client.request(conn, Ping.create({ n: 41 }), { reply: Pong, timeout: 5000 })) as { n: number };
    const firstMs = since(t0);
    check(first.n === 42, `Ping 41 was answered with Pong ${first.n}`);
    const lat: number[] = [];
    for (let i = 0; i < REQUESTS; i++) {
      const t = performance.now();
      const r = (await client.request(conn, Ping.create({ n: i }), { reply: Pong, timeout: 5000 })) as { n: number };
      lat.push(since(t));
      check(r.n === i + 1, `Ping ${i} was answered with Pong ${r.n}`);
    }
    lat.sort((x, y) => x - y);
    report('request/reply', ms(firstMs, 3), `Ping{n:41} → Pong{n:42}; ${REQUESTS} more: p50 ${ms(lat[lat.length >> 1]!, 3)}, p99 ${ms(lat[Math.floor(lat.length * 0.99)]!, 3)}`);

    // A conversation: its own stream, messages in order both ways.
    t0 = performance.now();
    const conv = client.conversation(conn, Count);
    await conv.send(Count.create({ step: 1 })); // B says the odd numbers, A the even ones
    let last = -1;
    for await (const m of conv) {
      last = (m as { step: number }).step;
      if (last >= CONVERSATION_STEPS) break;
      await conv.send(Count.create({ step: last + 1 }));
    }
    await conv.end();
    check(last === CONVERSATION_STEPS, `the conversation stopped at step ${last}`);
    report('conversation', ms(since(t0)), `counted to ${CONVERSATION_STEPS} taking turns: ${CONVERSATION_STEPS / 2} round trips, in order, on its own stream`);

    // A file, with the progress bar, verified by SHA-256 on arrival.
    const size = sizeMiB * 1024 * 1024;
    const source = join(dir, `demo-${sizeMiB}MiB.bin`);
    writeFileSync(source, randomBytes(size));
    const sourceHash = await fileHash(source);
    // One bar is enough: A's, which counts bytes as they land on disk.
    const sent = await sendFile(conn, source);
    const got = await (await fileAtA);
    check(got.sha256 === sourceHash && sent.sha256 === sourceHash, 'the file arrived with a different SHA-256');
    check((await fileHash(got.path!)) === sourceHash, 'the file on disk differs from the one sent');
    const rate = size / (1024 * 1024) / (sent.ms / 1000);
    report('file transfer', ms(sent.ms, 0), `${formatBytes(size)} B → A, ${rate.toFixed(1)} MiB/s, SHA-256 verified`);

    // Close: B sends code 0 'bye'; A gets it as a remote close.
    t0 = performance.now();
    const closedAtA: Promise<CloseInfo> = atA.closed;
    const info = await conn.close({ code: 0, reason: 'bye' });
    check(info.error === undefined, `closing failed: ${info.error?.message ?? ''}`);
    const seen = await closedAtA;
    check(seen.remote && seen.code === 0 && seen.reason === 'bye', `A saw the close as code ${seen.code} "${seen.reason}"`);
    await a.close();
    await b.close();
    report('close', ms(since(t0)), `A got code ${seen.code} "${seen.reason}" from B; both sockets closed`);
    process.stdout.write(`\nok (${(since(tStart) / 1000).toFixed(1)} s)\n`);
  } finally {
    for (const s of sockets) s.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
}

export const demoCommand: Command = {
  name: 'demo',
  synopsis: 'demo [--size MIB]',
  summary: 'two peers in this process: messages, a conversation, a 64 MiB file',
  options: { size: { type: 'string' } },
  help: `Usage: peersock demo [--size MIB]

Starts two peers on loopback in this process. B dials A by key (each proves
its key), sends a message through a stream, pings with datagrams, makes
typed request/replies and a conversation through Dispatcher, then sends A a
file of random bytes with the progress bar (verified by SHA-256), and both
close. Prints each step with its timing; exits 1 on the first failure.

Options:
  --size MIB      size of the file, 1..4096 MiB (default 64)
  -h, --help      show this help`,
  async run(args) {
    expectPositionals(args, [], 'demo');
    const size = intOption(args, 'size', 1, 4096, 64, 'demo');
    const deadline = setTimeout(() => {
      process.stderr.write(`peersock: demo failed: not done after ${DEADLINE_MS / 1000} s\n`);
      process.exit(ExitCode.Failure);
    }, DEADLINE_MS);
    deadline.unref();
    try {
      await runDemo(size);
    } catch (e) {
      throw toCliError(e);
    } finally {
      clearTimeout(deadline);
    }
    return ExitCode.Ok;
  },
};
