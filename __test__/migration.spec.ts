/**
 * Explicit local-address migration (issue 6): a dialed connection moves to
 * a fresh UDP socket on another loopback address mid-transfer; the server
 * sees the new address and the same key, and the streams keep flowing.
 */
import { once } from 'node:events';
import test from 'ava';

import type { PeerConnection } from '../src/connection';
import { ClosedError, InvalidArgumentError } from '../src/errors';
import type { AddressInfo } from '../src/transport';
import { Source, echo, pair, readAll, within, writeAll } from './helpers';

const MiB = 1024 * 1024;

test('a client moves from 127.0.0.1 to 127.0.0.2 mid-transfer of 4 MiB each way: new address and same key at the server, bytes intact', async (t) => {
  t.timeout(60_000);
  const { a, b, connAB, connBA } = await pair(t);
  echo(connBA);
  const paths: AddressInfo[] = [];
  connBA.on('path', (p: AddressInfo) => paths.push(p));
  const before = connBA.remoteAddress;
  t.is(before.address, '127.0.0.1');

  const s = connAB.openStream();
  const src = new Source(4 * MiB, 6);
  const back = readAll(s);
  let received = 0;
  let moved: Promise<AddressInfo> | undefined;
  let echoedAtMove = -1;
  s.on('data', (chunk: Buffer) => {
    received += chunk.length;
    // Move once a quarter of the echo is back: data is in flight both ways.
    if (moved === undefined && received >= MiB) {
      moved = connAB.migrate({ host: '127.0.0.2' });
      void moved.then(() => (echoedAtMove = received));
    }
  });
  const sent = await within(30_000, 'upload', writeAll(s, src));
  const got = await within(30_000, 'echo', back);
  t.truthy(moved, 'the migration ran mid-transfer');
  const local = await moved!;
  t.is(local.address, '127.0.0.2');
  t.not(local.port, a.address().port);
  t.true(echoedAtMove > 0 && echoedAtMove < 3 * MiB, `moved with ${echoedAtMove} of ${4 * MiB} bytes echoed`);
  t.is(got.bytes, sent.bytes);
  t.is(got.sha256, sent.sha256, 'SHA-256 of the echo equals what was sent');
  // The server saw the move: the same connection (same key), a new address.
  t.true(paths.length >= 1, 'path event at the server');
  t.is(connBA.remoteAddress.address, '127.0.0.2');
  t.is(connBA.remoteAddress.port, local.port);
  t.deepEqual(connBA.remotePublicKey, b.publicKey);
  t.is(a.connections.length, 1, 'no second connection');
  t.deepEqual(connAB.localAddress, { address: '127.0.0.2', port: local.port, family: 'IPv4' });
  t.log(`moved to ${local.address}:${local.port} with ${echoedAtMove} bytes of the echo back; server paths: ${paths.map((p) => `${p.address}:${p.port}`).join(', ')}`);

  // And it keeps working afterwards, both ways, on a new stream.
  const s2 = connAB.openStream();
  const back2 = readAll(s2);
  s2.end(Buffer.from('after the move'));
  t.is((await within(5000, 'second echo', back2)).bytes, 14);
});

test('migrate() is for the dialing side and an open connection; bad hosts are InvalidArgumentError', async (t) => {
  const { connAB, connBA } = await pair(t);
  await t.throwsAsync(connBA.migrate(), { instanceOf: InvalidArgumentError });
  await t.throwsAsync(connAB.migrate({ host: 'not-an-ip' }), { instanceOf: InvalidArgumentError });
  const closed: Promise<unknown> = once(connBA, 'close');
  await connAB.close();
  await closed;
  await t.throwsAsync((connAB as PeerConnection).migrate(), { instanceOf: ClosedError });
});
