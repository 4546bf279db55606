/**
 * A peer in its own process whose event loop stalls: it busy-waits
 * `stallMs` every `everyMs` (starting when the first stream arrives), so the
 * stall blocks a real event loop, not the test's. Run by reliability.spec.ts
 * with an IPC channel:
 *
 *   → parent: { ready: true, port, publicKey: hex }
 *   ← parent: { cmd: 'status' }   → { status: { digest, stalls, stallsDuringTransfer, closed, errors } }
 *   ← parent: { cmd: 'exit' }     (closes the socket and exits)
 *
 * It accepts one connection, reads every byte of the first stream into a
 * SHA-256 and reports it. The process exits when its parent goes.
 */
import { createHash } from 'node:crypto';

import { PeerSocket } from '../../src/peer-socket';
import type { PeerConnection } from '../../src/connection';
import type { PeerStream } from '../../src/stream';

const stallMs = Number(process.env.STALL_MS ?? 200);
const everyMs = Number(process.env.STALL_EVERY_MS ?? 1000);

function busyWait(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until) {
    // Spin: the point is to hold the event loop.
  }
}

async function main(): Promise<void> {
  const socket = await PeerSocket.bind({ host: '127.0.0.1', port: 0 });
  let stalls = 0;
  let stallsDuringTransfer = 0;
  let transferring = false;
  let digest: { bytes: number; sha256: string } | undefined;
  let conn: PeerConnection | undefined;
  const errors: string[] = [];
  let timer: NodeJS.Timeout | undefined;
  const stall = (): void => {
    stalls++;
    if (transferring) stallsDuringTransfer++;
    busyWait(stallMs);
  };

  socket.on('error', (e: Error) => errors.push(`socket: ${e.message}`));
  socket.on('connection', (c: PeerConnection) => {
    conn = c;
    c.on('error', (e: Error) => errors.push(`connection: ${e.message}`));
    c.once('stream', (s: PeerStream) => {
      transferring = true;
      // The first stall hits as the transfer starts, then every `everyMs`.
      stall();
      timer = setInterval(stall, everyMs);
      const hash = createHash('sha256');
      let bytes = 0;
      s.on('data', (chunk: Buffer) => {
        hash.update(chunk);
        bytes += chunk.length;
      });
      s.on('error', (e: Error) => errors.push(`stream: ${e.message}`));
      s.on('end', () => {
        transferring = false;
        digest = { bytes, sha256: hash.digest('hex') };
        process.send?.({ done: digest });
      });
    });
  });

  process.on('message', (m: { cmd: string }) => {
    if (m.cmd === 'status') {
      const info = conn?.closeInfo;
      process.send?.({
        status: {
          digest,
          stalls,
          stallsDuringTransfer,
          closed: info === undefined ? null : { code: info.code, reason: info.reason, error: info.error?.code ?? null },
          errors,
        },
      });
    } else if (m.cmd === 'exit') {
      clearInterval(timer);
      void socket.close().then(() => process.exit(0));
    }
  });
  process.on('disconnect', () => process.exit(0));
  process.send?.({ ready: true, port: socket.address().port, publicKey: Buffer.from(socket.publicKey).toString('hex') });
}

void main();
