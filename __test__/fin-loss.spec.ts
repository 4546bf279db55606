/**
 * A stream's end must reach the reader whatever packets are lost on the way,
 * on both I/O drivers, through the lab relay (real UDP on loopback).
 *
 * The loss pattern that used to lose it (the core's `fin_after_loss.rs` has
 * the same at the packet level, and the quiche patch
 * `patches/quiche-0.29.3-fin-on-duplicate-data.patch` the fix): the reader
 * has read all of a stream's data but its acknowledgements were lost, the
 * writer then ends the stream and that datagram is lost too. The writer's
 * probe retransmits the stream's data, now carrying the FIN; quiche took the
 * final size from it but, the data being duplicate, kept nothing to read, so
 * the stream never ended for the reader (and the later FIN frame was ignored
 * as known) while the writer had the FIN acknowledged. The native driver's
 * kernel buffers overflowing under 100 concurrent streams made such bursts.
 */
import { once } from 'node:events';
import test from 'ava';

import type { PeerStream } from '../src/stream';
import { sleep, waitFor, within } from './helpers';
import { relayPair } from './lab/setup';

const STREAMS = 100;
/** Small: every stream's data and every FIN fit in the initial congestion window. */
const LEN = 8;

interface Got {
  bytes: number;
  ended: boolean;
}

const finsThroughABurst = test.macro({
  async exec(t, io: 'dgram' | 'native') {
    t.timeout(40_000);
    const { client, server, relay } = await relayPair(t, { a: { io }, b: { io } });
    const got = new Map<number, Got>();
    server.on('stream', (s: PeerStream) => {
      const g: Got = { bytes: 0, ended: false };
      got.set(s.id, g);
      s.on('data', (c: Buffer) => (g.bytes += c.length));
      s.once('end', () => (g.ended = true));
    });
    // The handshake's last packets acknowledged, the data below is the
    // oldest a probe retransmits.
    await sleep(200);

    // 1. Every stream's data arrives and is read; every acknowledgement is lost.
    relay.filter('s2c', () => false);
    const streams = Array.from({ length: STREAMS }, (_, i) => {
      const s = client.openStream();
      s.write(Buffer.alloc(LEN, i));
      return s;
    });
    await waitFor('every stream read', 10_000, () => got.size === STREAMS && [...got.values()].every((g) => g.bytes === LEN));
    t.true([...got.values()].every((g) => !g.ended));

    // 2. The writers finish; the datagrams carrying the FINs are lost (all
    //    of them: quiche sends one per stream; or as many as come while the
    //    count still grows).
    const lostBefore = relay.stats().c2s.filtered;
    const lost = () => relay.stats().c2s.filtered - lostBefore;
    relay.filter('c2s', () => false);
    await Promise.all(streams.map((s) => new Promise<void>((resolve) => s.end(resolve))));
    await waitFor('the FINs sent', 5_000, () => lost() > 0);
    for (let i = 0, seen = -1; i < 100 && lost() < STREAMS && lost() !== seen; i++) {
      seen = lost();
      await sleep(20);
    }

    // 3. The path is clean again: every end must reach the reader.
    relay.filter('c2s', undefined);
    relay.filter('s2c', undefined);
    try {
      await waitFor('every FIN read', 10_000, () => [...got.values()].every((g) => g.ended));
    } catch (e) {
      const missing = [...got.entries()].filter(([, g]) => !g.ended).map(([id]) => id);
      t.fail(`${missing.length} of ${STREAMS} streams never ended for the reader (ids ${missing.slice(0, 8).join(', ')}): ${String(e)}`);
    }
    t.true([...got.values()].every((g) => g.bytes === LEN), 'every byte read once');
    t.is(client.closeInfo, undefined);
    t.is(server.closeInfo, undefined);
    const closing = once(server, 'close');
    await within(5_000, 'close', client.close());
    await within(5_000, 'peer close', closing);
  },
  title: (_, io) => `100 streams end through a burst that loses their FINs and the acknowledgements of their data (${io} driver)`,
});

test.serial(finsThroughABurst, 'dgram');
test.serial(finsThroughABurst, 'native');
