/**
 * Interop tier (issue 12): peersock against a second, independent QUIC
 * implementation, `quinn-peer` (crates/peersock-interop: quinn + rustls +
 * ring), which speaks peersock's wire protocol as the README describes it.
 * Both directions, mutual raw-key authentication, stream and datagram echo,
 * the accept confirmation split in two, key pinning, and every refusal of a
 * handshake on the accepting side, which must reach the dialer as a
 * CONNECTION_CLOSE within one round trip (quinn's idle timeout is 10 s; a
 * close that was swallowed shows up as a timeout).
 *
 * The binary is built by .ci/run (`cargo build --release -p peersock-interop`);
 * without it every test here fails, saying how to build it.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import test, { type ExecutionContext } from 'ava';

import type { PeerConnection } from '../src/connection';
import { IdentityMismatchError } from '../src/errors';
import { keyPair, keysEqual } from '../src/keys';
import type { PeerSocket } from '../src/peer-socket';
import type { PeerStream } from '../src/stream';
import { Source, createSocket, readAll, sleep, target, waitFor, within, writeAll } from './helpers';

const BIN = join(__dirname, '..', 'target', 'release', 'quinn-peer');
const MiB = 1024 * 1024;
/** A refusal must reach quinn well before its own 10 s idle timeout. */
const ONE_ROUND_TRIP_MS = 1000;

/** One line quinn-peer printed. */
interface QuinnEvent {
  event: string;
  [field: string]: unknown;
}

/** A running quinn-peer: its events as they arrive, and its exit. */
class QuinnPeer {
  readonly events: QuinnEvent[] = [];
  readonly exited: Promise<number | null>;
  stderr = '';
  readonly #child: ChildProcessWithoutNullStreams;
  #waiters: Array<() => void> = [];

  constructor(child: ChildProcessWithoutNullStreams) {
    this.#child = child;
    createInterface({ input: child.stdout }).on('line', (line) => {
      try {
        this.events.push(JSON.parse(line) as QuinnEvent);
      } catch {
        this.events.push({ event: 'unparsable', line });
      }
      for (const w of this.#waiters) w();
    });
    child.stderr.on('data', (d: Buffer) => (this.stderr += d.toString()));
    // 'close', not 'exit': only then has all of stdout been read.
    this.exited = new Promise((resolve) => child.once('close', (code) => resolve(code)));
  }

  /** The first event named `name` (that `match` accepts), waiting up to `ms`. */
  async next(name: string, ms: number, match: (e: QuinnEvent) => boolean = () => true): Promise<QuinnEvent> {
    const find = (): QuinnEvent | undefined => this.events.find((e) => e.event === name && match(e));
    return within(
      ms,
      `quinn-peer event '${name}' (seen: ${JSON.stringify(this.events)}; stderr: ${this.stderr})`,
      new Promise<QuinnEvent>((resolve) => {
        const check = (): void => {
          const e = find();
          if (e === undefined) return;
          this.#waiters = this.#waiters.filter((w) => w !== check);
          resolve(e);
        };
        this.#waiters.push(check);
        check();
      }),
    );
  }

  /** Its exit code, waiting up to `ms` (quinn-peer bounds every mode itself). */
  exit(ms: number): Promise<number | null> {
    return within(ms, `quinn-peer exit (seen: ${JSON.stringify(this.events)}; stderr: ${this.stderr})`, this.exited);
  }

  kill(): void {
    if (this.#child.exitCode === null && this.#child.signalCode === null) this.#child.kill('SIGKILL');
  }
}

/** Starts quinn-peer with `args`; killed at teardown if still running. */
function quinnPeer(t: ExecutionContext, args: string[]): QuinnPeer {
  if (!existsSync(BIN)) {
    throw new Error(`${BIN} is missing: build it with \`cargo build --release -p peersock-interop\` (.ci/run does this before the JavaScript tests)`);
  }
  const peer = new QuinnPeer(spawn(BIN, args, { stdio: ['pipe', 'pipe', 'pipe'] }));
  t.teardown(() => peer.kill());
  return peer;
}

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

/** A fresh seed and the identity peersock derives from it (quinn-peer must derive the same). */
function identity(): { seed: string; publicKey: Uint8Array } {
  const seed = randomBytes(32);
  return { seed: seed.toString('hex'), publicKey: keyPair(seed).publicKey };
}

/** A peersock listener as the README's quick example writes it: every stream and datagram echoed. */
async function echoListener(
  t: ExecutionContext,
  opts: Parameters<typeof createSocket>[1] = {},
): Promise<{ socket: PeerSocket; accepted: PeerConnection[] }> {
  const socket = await createSocket(t, opts);
  const accepted: PeerConnection[] = [];
  socket.on('connection', (conn: PeerConnection) => {
    accepted.push(conn);
    conn.on('stream', (s: PeerStream) => s.pipe(s));
    conn.on('datagram', (d: Uint8Array) => conn.sendDatagram(d));
  });
  return { socket, accepted };
}

/** quinn-peer dialing `socket` with extra flags. */
function quinnDial(t: ExecutionContext, socket: PeerSocket, flags: string[] = []): { peer: QuinnPeer; me: ReturnType<typeof identity> } {
  const me = identity();
  const { port } = socket.address();
  const peer = quinnPeer(t, ['dial', '--seed', me.seed, '--key', hex(socket.publicKey), '--addr', `127.0.0.1:${port}`, ...flags]);
  return { peer, me };
}

/** quinn-peer listening; resolves once it printed its port and key. */
async function quinnListen(t: ExecutionContext, flags: string[] = []): Promise<{ peer: QuinnPeer; port: number; publicKey: Uint8Array }> {
  const me = identity();
  const peer = quinnPeer(t, ['listen', '--seed', me.seed, ...flags]);
  const ev = await peer.next('listening', 10_000);
  t.is(ev.key, hex(me.publicKey), 'quinn-peer derives the same Ed25519 key from the seed as keyPair()');
  return { peer, port: ev.port as number, publicKey: me.publicKey };
}

/** quinn-peer's test payload (crates/peersock-interop `payload`): an xorshift32 byte pattern. */
function quinnPattern(n: number): Buffer {
  const out = Buffer.alloc(n);
  let x = 0x9e3779b9;
  for (let i = 0; i < n; i++) {
    x = (x ^ (x << 13)) >>> 0;
    x = (x ^ (x >>> 17)) >>> 0;
    x = (x ^ (x << 5)) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

/** Echoes `total` bytes on a new stream of `conn`; resolves with what was sent and what came back. */
async function streamEcho(conn: PeerConnection, total: number): Promise<{ sent: string; back: string; bytes: number }> {
  const s = conn.openStream();
  const [sent, back] = await Promise.all([writeAll(s, new Source(total, 7)), readAll(s)]);
  return { sent: sent.sha256, back: back.sha256, bytes: back.bytes };
}

/** Sends a datagram until its echo comes back (at most 10 tries, 300 ms each). */
async function datagramEcho(conn: PeerConnection): Promise<number> {
  for (let i = 1; i <= 10; i++) {
    const payload = Buffer.from(`peersock datagram ${i}`);
    const back = new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => done(false), 300);
      const onDgram = (d: Uint8Array): void => {
        if (Buffer.from(d).equals(payload)) done(true);
      };
      const done = (ok: boolean): void => {
        clearTimeout(timer);
        conn.off('datagram', onDgram);
        resolve(ok);
      };
      conn.on('datagram', onDgram);
    });
    conn.sendDatagram(payload);
    if (await back) return i;
  }
  throw new Error('no datagram echo in 10 tries');
}

// -- quinn dials peersock -----------------------------------------------------

test('quinn dials peersock: mutual raw-key authentication, 1 MiB stream echo and datagram echo', async (t) => {
  const { socket, accepted } = await echoListener(t);
  const { peer, me } = quinnDial(t, socket, ['--bytes', String(MiB)]);
  const code = await peer.exit(20_000);
  t.is(code, 0, `quinn-peer failed: ${JSON.stringify(peer.events)} ${peer.stderr}`);
  // quinn checked peersock's key (it pinned it) and reports the key proven.
  const hs = await peer.next('handshake', 0);
  t.is(hs.key, hex(socket.publicKey));
  // peersock saw quinn's key, proven by quinn's certificate.
  t.is(accepted.length, 1);
  t.true(keysEqual(accepted[0].remotePublicKey, me.publicKey), 'listener sees quinn-peer key as remotePublicKey');
  await peer.next('accepted', 0);
  const echo = await peer.next('stream_echo', 0);
  t.is(echo.bytes, MiB);
  t.true(echo.intact);
  const dg = await peer.next('datagram_echo', 0);
  t.true(dg.ok);
  t.log(`quinn -> peersock: handshake ${String(hs.ms)} ms, 1 MiB echo at ${String(echo.ms)} ms, datagram echo after ${String(dg.tries)} try(s)`);
});

test('pinning: quinn dials peersock pinning another key and fails the handshake; no connection reaches the listener', async (t) => {
  const { socket, accepted } = await echoListener(t);
  const { peer } = quinnDial(t, socket, ['--wrong-key']);
  t.is(await peer.exit(20_000), 2, JSON.stringify(peer.events));
  const closed = await peer.next('closed', 0);
  t.is(closed.local, true, 'quinn itself refused the certificate');
  t.is(closed.error_code, 0x12e, 'certificate_unknown');
  t.false(peer.events.some((e) => e.event === 'handshake'));
  await sleep(100);
  t.is(accepted.length, 0);
});

// -- peersock dials quinn -----------------------------------------------------

async function peersockDialsQuinn(t: ExecutionContext, flags: string[]): Promise<void> {
  // quinn opens a stream of its own (256 KiB) once it has echoed ours.
  const q = await quinnListen(t, ['--open-stream', String(256 * 1024), ...flags]);
  const b = await createSocket(t);
  const conn = await b.connect({ publicKey: q.publicKey, host: '127.0.0.1', port: q.port }, { timeout: 5000 });
  conn.on('stream', (s: PeerStream) => s.pipe(s));
  t.true(keysEqual(conn.remotePublicKey, q.publicKey));
  const seen = await q.peer.next('connection', 5000);
  t.is(seen.key, hex(b.publicKey), 'quinn-peer sees peersock key, proven by its certificate');
  // A stream peersock opens: 1 MiB echoed intact.
  const echo = await within(20_000, '1 MiB stream echo', streamEcho(conn, MiB));
  t.is(echo.bytes, MiB);
  t.is(echo.back, echo.sent);
  await q.peer.next('stream_echoed', 5000, (e) => e.bytes === MiB);
  // A stream quinn opens (the server's first bidirectional one, ID 1), echoed by peersock's s.pipe(s).
  const theirs = await q.peer.next('server_stream_echo', 10_000);
  t.like(theirs, { id: 1, bytes: 256 * 1024, intact: true });
  // A unidirectional stream peersock opens: the channel byte, then the payload.
  const uni = conn.openStream({ unidirectional: true });
  uni.end(quinnPattern(100_000));
  t.like(await q.peer.next('uni_received', 5000), { channel: 0, bytes: 100_000, intact: true });
  const tries = await within(5000, 'datagram echo', datagramEcho(conn));
  t.log(`peersock -> quinn${flags.length ? ` (${flags.join(' ')})` : ''}: 1 MiB echo intact both ways of opening, uni stream intact, datagram echo after ${tries} try(s)`);
  // A graceful close carries its code and reason across.
  await conn.close({ code: 0, reason: 'bye' });
  const closed = await q.peer.next('closed', 5000);
  t.like(closed, { is_app: true, error_code: 0, reason: 'bye' });
}

test('peersock dials quinn: mutual raw-key authentication, stream echo (either side opening), a unidirectional stream, datagram echo', async (t) => {
  await peersockDialsQuinn(t, []);
});

test('peersock dials quinn that sends the accepted byte and its FIN in separate packets', async (t) => {
  await peersockDialsQuinn(t, ['--split-confirm']);
});

// Toward a loopback peer, peersock's packets grow to 16383 bytes by default
// (9216 on macOS). quinn's path MTU discovery stops at 1452 unless told
// otherwise, and it is told 6000: quinn 0.11 puts up to 10 packets in one GSO
// send, so above ~6,500 bytes such a send passes the 65,507-byte UDP limit and
// fails with EMSGSIZE (seen with strace: with 16383, quinn counted those
// packets lost and its black-hole detector put its MTU back to 1200).
const QUINN_MTU = 6000;

test('big packets with quinn: on loopback peersock sends quinn ~16 KB packets, takes quinn\'s ~6 KB ones and acknowledges every probe; 8 MiB echo intact', async (t) => {
  const q = await quinnListen(t, ['--mtu-upper', String(QUINN_MTU)]);
  const b = await createSocket(t);
  const conn = await b.connect({ publicKey: q.publicKey, host: '127.0.0.1', port: q.port }, { timeout: 5000 });
  const loopbackMax = process.platform === 'darwin' ? 9216 : 16383;
  // Warm-up: both sides probe once the handshake is done.
  const warm = await within(20_000, 'warm-up echo', streamEcho(conn, MiB));
  t.is(warm.back, warm.sent);
  await waitFor('peersock path MTU toward quinn', 5000, () => conn.stats().pmtu >= loopbackMax);
  const s0 = conn.stats();
  const echo = await within(30_000, '8 MiB stream echo', streamEcho(conn, 8 * MiB));
  const s1 = conn.stats();
  t.is(echo.bytes, 8 * MiB);
  t.is(echo.back, echo.sent);
  // Data and ACKs share the counts; the data packets carry nearly all the bytes.
  const sentPer = (s1.sentBytes - s0.sentBytes) / (s1.sentPackets - s0.sentPackets);
  const recvPer = (s1.recvBytes - s0.recvBytes) / (s1.recvPackets - s0.recvPackets);
  t.true(sentPer > 3 * 1452, `peersock sent ${sentPer.toFixed(0)} B per packet`);
  t.true(recvPer > 2 * 1452, `peersock received ${recvPer.toFixed(0)} B per packet`);
  // quinn's probes (PING and PADDING, up to QUINN_MTU bytes): every one acknowledged by peersock.
  const qs = await q.peer.next('path_stats', 5000, (e) => (e.rx_bytes as number) > 8 * MiB);
  t.true((qs.probes as number) >= 3, `quinn sent ${String(qs.probes)} discovery probes`);
  t.is(qs.lost_probes, 0, 'quinn lost none of its probes');
  t.log(
    `8 MiB echo: peersock pmtu ${s1.pmtu}, sent ${sentPer.toFixed(0)} B and received ${recvPer.toFixed(0)} B per packet, counted ${s1.lostPackets - s0.lostPackets} lost; ` +
      `quinn: ${String(qs.probes)} probes, none lost, mtu ${String(qs.mtu)}, counted ${String(qs.lost_packets)} lost, black holes ${String(qs.black_holes)}`,
  );
  await conn.close();
});

test('pinning: peersock dials quinn with a key quinn does not hold: IdentityMismatchError', async (t) => {
  const q = await quinnListen(t);
  const b = await createSocket(t);
  const other = keyPair().publicKey;
  const err = await t.throwsAsync(b.connect({ publicKey: other, host: '127.0.0.1', port: q.port }, { timeout: 5000 }), {
    instanceOf: IdentityMismatchError,
  });
  t.true(keysEqual(err?.expected ?? new Uint8Array(), other));
  t.true(keysEqual(err?.actual ?? new Uint8Array(), q.publicKey));
  // quinn hears why: a crypto error, and no connection.
  const closed = await q.peer.next('closed', 5000);
  t.is(closed.local, false);
  t.true((closed.error_code as number) >= 0x100 && (closed.error_code as number) < 0x200, JSON.stringify(closed));
  t.false(q.peer.events.some((e) => e.event === 'connection'));
  t.log(`quinn heard CONNECTION_CLOSE 0x${(closed.error_code as number).toString(16)} after ${String(closed.ms)} ms`);
});

// -- refusals: every handshake failure on the accepting side is sent ----------
// Serial (ava runs these before the concurrent tests): each measures how fast
// the close arrives, which the 1 MiB echoes next door would slow down.

/**
 * quinn-peer dials `socket` with `flags`; asserts that it got a
 * CONNECTION_CLOSE from peersock (not its own timeout) within one round trip,
 * and that no connection reached the listener. Returns the close.
 */
async function refused(t: ExecutionContext, socket: PeerSocket, accepted: PeerConnection[], flags: string[], reason: keyof ReturnType<PeerSocket['stats']>['refusals']): Promise<QuinnEvent> {
  const before = accepted.length;
  const counted = socket.stats().refusals;
  const { peer } = quinnDial(t, socket, flags);
  const code = await peer.exit(20_000);
  const closed = peer.events.find((e) => e.event === 'closed');
  if (closed === undefined) {
    t.fail(`quinn-peer ${flags.join(' ')}: no CONNECTION_CLOSE arrived (exit ${String(code)}): ${JSON.stringify(peer.events)}`);
    return { event: 'none' };
  }
  t.is(code, 2);
  t.is(closed.local, false, `the close came from peersock: ${JSON.stringify(closed)}`);
  t.is(closed.is_app, false, 'a transport-level close');
  t.true((closed.ms as number) < ONE_ROUND_TRIP_MS, `close arrived after ${String(closed.ms)} ms`);
  t.is(accepted.length, before, 'no connection reached the application');
  const now = socket.stats().refusals;
  for (const [k, n] of Object.entries(now)) {
    t.is(n, counted[k as keyof typeof now] + (k === reason ? 1 : 0), `stats().refusals.${k} (this refusal: ${reason})`);
  }
  t.log(`${flags.join(' ') || 'refused'}: CONNECTION_CLOSE 0x${(closed.error_code as number).toString(16)} "${String(closed.reason)}" after ${String(closed.ms)} ms`);
  return closed;
}

test.serial('refusal: a dialer offering only ALPN h3 gets no_application_protocol (0x178)', async (t) => {
  const { socket, accepted } = await echoListener(t);
  const closed = await refused(t, socket, accepted, ['--alpn', 'h3'], 'alpn');
  t.is(closed.error_code, 0x178);
});

test.serial('refusal: a dialer offering no Ed25519 signature algorithm gets handshake_failure (0x128)', async (t) => {
  const { socket, accepted } = await echoListener(t);
  const closed = await refused(t, socket, accepted, ['--no-ed25519-sigalg'], 'signature');
  // BoringSSL has no scheme it can sign with: TLS alert handshake_failure (40).
  t.is(closed.error_code, 0x128, `error code 0x${(closed.error_code as number).toString(16)}`);
});

test.serial('refusal: a dialer presenting no certificate gets certificate_required (0x174)', async (t) => {
  const { socket, accepted } = await echoListener(t);
  const closed = await refused(t, socket, accepted, ['--no-client-cert'], 'noCertificate');
  t.is(closed.error_code, 0x174);
});

test.serial('refusal: a dialer presenting an ECDSA certificate gets bad_certificate or unsupported_certificate', async (t) => {
  const { socket, accepted } = await echoListener(t);
  const closed = await refused(t, socket, accepted, ['--ecdsa-cert'], 'badCertificate');
  t.true(closed.error_code === 0x12a || closed.error_code === 0x12b, `error code 0x${(closed.error_code as number).toString(16)}`);
});

test.serial('refusal: an accept hook that says no sends CONNECTION_REFUSED (0x2) with its reason', async (t) => {
  const asked: Uint8Array[] = [];
  const { socket, accepted } = await echoListener(t, {
    accept: (key) => {
      asked.push(key);
      return false;
    },
  });
  const closed = await refused(t, socket, accepted, [], 'application');
  t.is(closed.error_code, 0x2);
  t.is(closed.reason, 'refused by accept hook');
  t.is(asked.length, 1, 'the hook was asked once, with the proven key');
});

test.serial('refusal: a listener holding maxConnections sends CONNECTION_REFUSED (0x2)', async (t) => {
  const { socket, accepted } = await echoListener(t, { maxConnections: 1 });
  const first = await createSocket(t);
  const held = once(socket, 'connection');
  await first.connect(target(socket), { timeout: 5000 });
  await held;
  const closed = await refused(t, socket, accepted, [], 'busy');
  t.is(closed.error_code, 0x2);
  t.is(closed.reason, 'server busy');
  t.is(socket.connections.length, 1, 'the held connection is untouched');
});

test('the quinn-peer binary is built (a missing binary fails the tier, never skips it)', (t) => {
  t.true(existsSync(BIN), `${BIN} is missing: build it with \`cargo build --release -p peersock-interop\``);
});
