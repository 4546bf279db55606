/**
 * Socket errors (scenario 15), run by security.spec.ts inside a network
 * namespace of its own: loopback up, plus a veth pair on 10.99.0.1/24 whose
 * both ends stay in the namespace. From a socket bound to 127.0.0.1:
 * - 192.0.2.1 has no route: every send fails with ENETUNREACH;
 * - 10.99.0.2 routes through the veth, which a loopback source may not use:
 *   every send fails with EINVAL.
 * Nothing can leave the namespace. For each, one socket transfers 8 MiB to
 * a peer on loopback while it dials the failing address; prints one JSON
 * line: per case the send error codes seen, how the dial ended, whether the
 * transfer was intact and whether the other connection was touched.
 */
import type { PeerConnection } from '../../src/connection';
import type { PeersockError } from '../../src/errors';
import { keyPair } from '../../src/keys';
import { PeerSocket } from '../../src/peer-socket';
import { UdpTransport, type DatagramTransport } from '../../src/transport';
import { Source, readAll, target, writeAll } from '../helpers';

interface Case {
  sendErrors: string[];
  dialError: string;
  transfer: boolean;
  otherClosed: boolean;
}

async function run(unreachable: string): Promise<Case> {
  const sendErrors: string[] = [];
  const inner = await UdpTransport.bind({ host: '127.0.0.1', port: 0 });
  const transport: DatagramTransport = {
    send: (data, port, address, done) =>
      inner.send(data, port, address, (err) => {
        if (err) sendErrors.push(String((err as NodeJS.ErrnoException).code));
        done(err);
      }),
    onDatagram: (h) => inner.onDatagram(h),
    onError: (h) => inner.onError(h),
    address: () => inner.address(),
    close: () => inner.close(),
  };
  const a = await PeerSocket.bind({ host: '127.0.0.1', transport });
  const b = await PeerSocket.bind({ host: '127.0.0.1' });
  b.on('connection', (c: PeerConnection) => c.on('stream', (s) => s.pipe(s)));
  const conn = await a.connect(target(b));
  conn.on('error', () => {});
  const s = conn.openStream();
  const got = readAll(s);
  const sending = writeAll(s, new Source(8 * 1024 * 1024, 1));
  const dial = a.connect({ publicKey: keyPair().publicKey, host: unreachable, port: 4433 }, { timeout: 1500 }).then(
    () => 'connected?!',
    (e: PeersockError) => e.code,
  );
  const [sent, received, dialError] = await Promise.all([sending, got, dial]);
  const result = {
    sendErrors: [...new Set(sendErrors)],
    dialError,
    transfer: sent.sha256 === received.sha256 && received.bytes === sent.bytes,
    otherClosed: conn.closeInfo !== undefined,
  };
  await Promise.all([a.close(), b.close()]);
  return result;
}

async function main(): Promise<void> {
  const ipv4 = await run('192.0.2.1');
  const ipv6 = await run('10.99.0.2');
  console.log(JSON.stringify({ enetunreach: ipv4, einval: ipv6 }));
}

void main().catch((e) => {
  console.error(e);
  process.exit(1);
});
