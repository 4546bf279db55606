/**
 * A peersock server in its own process, so a test can SIGKILL it and start
 * it again with the same identity on the same port (stateless reset,
 * scenario 11). It echoes every stream and datagram.
 *
 *   env: SEED (64 hex chars), PORT (0 = any), RETRY ('1' = retry mode)
 *   → parent: { port, publicKey: hex }
 */
import type { PeerConnection } from '../../src/connection';
import { keyPair } from '../../src/keys';
import { PeerSocket } from '../../src/peer-socket';
import { dieWithParent } from './security-child';

async function main(): Promise<void> {
  dieWithParent();
  const seed = Buffer.from(process.env.SEED ?? '', 'hex');
  const s = await PeerSocket.bind({
    host: '127.0.0.1',
    port: Number(process.env.PORT ?? 0),
    keyPair: keyPair(new Uint8Array(seed)),
    retry: process.env.RETRY === '1',
  });
  s.on('connection', (c: PeerConnection) => {
    c.on('error', () => {});
    c.on('stream', (st) => {
      st.on('error', () => {});
      st.pipe(st);
    });
    c.on('datagram', (d: Uint8Array) => c.sendDatagram(d));
  });
  process.send!({ port: s.address().port, publicKey: Buffer.from(s.publicKey).toString('hex') });
}

void main();
