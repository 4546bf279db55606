/**
 * The binding tier: two native endpoints in one process, datagrams carried
 * between them by the test (flush → recv), no sockets and no PeerSocket.
 * Checks the boundary itself: the generated constants, the event union,
 * keys and tickets as bytes, typed errors from the hot path.
 */
import test from 'ava';

import { keyPair, keysEqual } from '../src/index';
import {
  EV_DATAGRAM,
  EV_DETAIL,
  EV_READABLE,
  EV_SLOTS,
  FLUSH_ALL_SENT,
  META_HEAD,
  NO_TIMEOUT,
  createNativeEndpoint,
  type NativeEndpoint,
  type NativeEvent,
  type NativeOptions,
} from '../src/native';

/** One endpoint and its pretend address. */
interface Side {
  ep: NativeEndpoint;
  key: Uint8Array;
  address: string;
  port: number;
  /** Rare events seen so far. */
  events: NativeEvent[];
  /** Common events seen so far: [kind, conn, stream, code, payload?]. */
  common: Array<[number, number, number, number, Uint8Array | undefined]>;
}

function side(port: number, opts: NativeOptions = {}, secretKey = keyPair().secretKey): Side {
  const ep = createNativeEndpoint(secretKey, '127.0.0.1', port, opts);
  return { ep, key: ep.publicKey(), address: '127.0.0.1', port, events: [], common: [] };
}

const out = Buffer.alloc(1500 * 64);
const meta = new Uint32Array(META_HEAD + 2 * 64);
const slots = new Float64Array(EV_SLOTS * 64);
const dgrams = Buffer.alloc(64 * 1024);

/** Moves `from`'s pending datagrams to whichever of `sides` they are addressed to; returns how many. */
function carry(from: Side, sides: Side[]): number {
  let moved = 0;
  for (let round = 0; round < 100; round++) {
    const n = from.ep.flush(out, meta);
    let off = 0;
    for (let i = 0; i < n; i++) {
      const len = meta[META_HEAD + 2 * i]!;
      const dest = from.ep.address(meta[META_HEAD + 2 * i + 1]!);
      const to = sides.find((s) => dest !== null && s.address === dest[0] && s.port === dest[1]);
      if (to !== undefined) to.ep.recv(Buffer.from(out.subarray(off, off + len)), from.address, from.port);
      off += len;
      moved++;
    }
    if ((meta[1]! & FLUSH_ALL_SENT) !== 0) break;
  }
  return moved;
}

/** Takes every pending event of `s` into its lists. */
function drain(s: Side): void {
  for (let round = 0; round < 100; round++) {
    const n = s.ep.pollEvents(dgrams, slots);
    for (let i = 0; i < n; i++) {
      const o = i * EV_SLOTS;
      const kind = slots[o]!;
      if (kind === EV_DETAIL) {
        const ev = s.ep.eventDetail(slots[o + 4]!);
        if (ev !== null) s.events.push(ev);
        continue;
      }
      const payload = kind === EV_DATAGRAM ? new Uint8Array(dgrams.subarray(slots[o + 4]!, slots[o + 4]! + slots[o + 5]!)) : undefined;
      s.common.push([kind, slots[o + 1]!, slots[o + 2]!, slots[o + 3]!, payload]);
    }
    if (n === 0) return;
  }
}

/** Runs both sides until nothing moves (bounded). */
function settle(a: Side, b: Side): void {
  for (let i = 0; i < 50; i++) {
    const moved = carry(a, [b]) + carry(b, [a]);
    drain(a);
    drain(b);
    // Accept every incoming peer, as a listener without a hook does.
    for (const s of [a, b]) {
      for (const ev of s.events) {
        if (ev.kind === 'incoming' && !(ev as { taken?: boolean }).taken) {
          (ev as { taken?: boolean }).taken = true;
          s.ep.accept(ev.conn);
        }
      }
    }
    if (moved === 0) return;
  }
}

function find<K extends NativeEvent['kind']>(s: Side, kind: K): Extract<NativeEvent, { kind: K }> | undefined {
  return s.events.find((e): e is Extract<NativeEvent, { kind: K }> => e.kind === kind);
}

/** A connected pair: `a` dialed `b`. */
function pair(opts: NativeOptions = {}): { a: Side; b: Side; ca: number; cb: number } {
  const a = side(40001, opts);
  const b = side(40002, opts);
  const ca = a.ep.connect(b.key, b.address, b.port);
  settle(a, b);
  const connected = find(a, 'connected');
  const incoming = find(b, 'incoming');
  if (connected === undefined || incoming === undefined) throw new Error('no handshake');
  return { a, b, ca, cb: incoming.conn };
}

test('the generated constants are the numbers the buffers use', (t) => {
  t.is(META_HEAD, 3);
  t.is(EV_SLOTS, 6);
  t.is(NO_TIMEOUT, 0xffffffff);
  const { a } = pair();
  // After a drain, meta[2] is the µs until the timer (a connection has one), below NO_TIMEOUT.
  a.ep.flush(out, meta);
  t.true(meta[2]! < NO_TIMEOUT);
});

test('handshake in memory: incoming and connected carry the proven keys as bytes and the addresses', (t) => {
  const { a, b, ca, cb } = pair();
  const connected = find(a, 'connected')!;
  const incoming = find(b, 'incoming')!;
  t.is(connected.conn, ca);
  t.true(connected.remoteKey instanceof Uint8Array);
  t.true(keysEqual(connected.remoteKey, b.key));
  t.true(keysEqual(incoming.remoteKey, a.key));
  t.is(incoming.conn, cb);
  t.deepEqual([incoming.address, incoming.port, incoming.family], ['127.0.0.1', 40001, 4]);
  const info = a.ep.connInfo(ca);
  t.true(info.remoteKey instanceof Uint8Array && keysEqual(info.remoteKey, b.key));
  // The details are taken once.
  t.is(a.ep.eventDetail(0), null);
});

test('a stream and a datagram cross as numbered events', (t) => {
  const { a, b, ca, cb } = pair();
  const s = a.ep.openStream(ca, true);
  const msg = Buffer.from('hello over the binding');
  t.is(a.ep.streamSend(ca, s, msg, true), msg.length);
  t.true(a.ep.sendDatagram(ca, 7, Buffer.from('dgram')));
  settle(a, b);
  const readable = b.common.find(([k, c, st]) => k === EV_READABLE && c === cb && st === s);
  t.truthy(readable);
  const buf = Buffer.alloc(100);
  const r = b.ep.streamRecv(cb, s, buf);
  t.is(r, msg.length * 2 + 1); // 2n + fin
  t.is(buf.subarray(0, msg.length).toString(), msg.toString());
  const dg = b.common.find(([k]) => k === EV_DATAGRAM);
  t.deepEqual(dg?.[4], new Uint8Array([7, ...Buffer.from('dgram')])); // the channel tag first
});

test('a close reaches the peer as a closed event with its kind, code and reason', (t) => {
  const { a, b, ca, cb } = pair();
  a.ep.close(ca, 42, 'bye');
  settle(a, b);
  const closed = find(b, 'closed');
  t.truthy(closed);
  t.is(closed!.conn, cb);
  t.is(String(closed!.closeKind), 'peer');
  t.is(closed!.code, 42);
  t.is(closed!.reason, 'bye');
  t.is(String(find(a, 'closed')?.closeKind), 'local');
});

test('dialing the wrong key: identity_mismatch with both keys as bytes', (t) => {
  const a = side(40011);
  const b = side(40012);
  const wrong = keyPair().publicKey;
  a.ep.connect(wrong, b.address, b.port);
  settle(a, b);
  const closed = find(a, 'closed');
  t.is(String(closed?.closeKind), 'identity_mismatch');
  t.true(closed?.expectedKey !== undefined && keysEqual(closed.expectedKey, wrong));
  t.true(closed?.actualKey !== undefined && keysEqual(closed.actualKey, b.key));
  t.is(find(b, 'incoming'), undefined);
});

test('a session ticket crosses as bytes and resumes with early data', (t) => {
  const b = side(40022, { earlyData: true });
  const a = side(40021, { earlyData: true });
  a.ep.connect(b.key, b.address, b.port);
  settle(a, b);
  const session = find(a, 'session');
  t.truthy(session);
  t.true(session!.session instanceof Uint8Array && session!.session.length > 0);
  t.true(keysEqual(session!.remoteKey, b.key));
  const again = a.ep.connectWith(b.key, b.address, b.port, { session: session!.session, earlyData: true });
  t.true(a.ep.connInfo(again).early);
  settle(a, b);
  t.true(a.ep.connInfo(again).resumed);
  t.true(a.ep.connInfo(again).earlyDataAccepted);
});

test('bad input at the boundary: typed errors, never a crash', (t) => {
  const { a, ca } = pair();
  // The core's stable codes; errorFromNative turns them into PeersockErrors.
  const code = { code: 'INVALID_ARGUMENT' };
  t.throws(() => a.ep.recv('nope' as unknown as Uint8Array, '127.0.0.1', 1), code);
  t.throws(() => a.ep.recv(Buffer.alloc(10), 'not an ip', 1), code);
  t.throws(() => a.ep.recv(Buffer.alloc(10), '127.0.0.1', 70000), code);
  t.throws(() => a.ep.flush(out, new Uint32Array(2)), code);
  t.throws(() => a.ep.pollEvents(dgrams, new Uint32Array(6) as unknown as Float64Array), code);
  t.throws(() => a.ep.streamSend(ca, -1, Buffer.alloc(1), false), code);
  t.throws(() => a.ep.connectWith(keyPair().publicKey, '127.0.0.1', 1, { session: new Uint8Array(64 * 1024) }), code);
  t.throws(() => a.ep.connect(new Uint8Array(31), '127.0.0.1', 1), code);
  // Garbage datagrams are dropped, not thrown.
  t.notThrows(() => a.ep.recv(Buffer.from([0xc0, 1, 2, 3]), '127.0.0.1', 9));
  t.true(a.ep.stats().dropped >= 1);
});
