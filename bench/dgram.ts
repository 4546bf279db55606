/**
 * Raw node:dgram ceiling: `dgram.ts recv` counts bytes received over a fixed
 * window; `dgram.ts send` sends 1452-byte datagrams as fast as it can, with a
 * bounded number in flight (send callbacks), so the kernel is never flooded
 * with more than a socket buffer's worth. Same 4 MiB buffers as peersock.
 */
import dgram from 'node:dgram';
import { once } from 'node:events';

import { serve } from './ipc';

const PAYLOAD = 1452;
const IN_FLIGHT = 64;
const sock = dgram.createSocket('udp4');

async function bind(): Promise<number> {
  sock.bind(0, '127.0.0.1');
  await once(sock, 'listening');
  try {
    sock.setRecvBufferSize(4 * 1024 * 1024);
    sock.setSendBufferSize(4 * 1024 * 1024);
  } catch {
    // Capped by the kernel: fine.
  }
  return sock.address().port;
}

/** Receiver: from the first datagram on, counts bytes for `ms`. */
function measure(p: { ms: number }): Promise<{ bytes: number; ms: number }> {
  return new Promise((resolve) => {
    let bytes = 0;
    let t0 = 0n;
    const onMsg = (m: Buffer): void => {
      if (t0 === 0n) {
        t0 = process.hrtime.bigint();
        setTimeout(() => {
          sock.off('message', onMsg);
          resolve({ bytes, ms: Number(process.hrtime.bigint() - t0) / 1e6 });
        }, p.ms);
      }
      bytes += m.length;
    };
    sock.on('message', onMsg);
  });
}

/** Sender: blasts to `port` for `ms`. */
function blast(p: { port: number; ms: number }): Promise<{ sent: number; errors: number }> {
  const buf = Buffer.alloc(PAYLOAD, 0x63);
  const deadline = Date.now() + p.ms;
  let sent = 0;
  let errors = 0;
  let inFlight = 0;
  return new Promise((resolve) => {
    const done = (err: Error | null): void => {
      inFlight--;
      if (err) errors++;
      else sent++;
      pump();
    };
    const pump = (): void => {
      if (Date.now() >= deadline) {
        if (inFlight === 0) resolve({ sent, errors });
        return;
      }
      while (inFlight < IN_FLIGHT) {
        inFlight++;
        sock.send(buf, p.port, '127.0.0.1', done);
      }
    };
    pump();
  });
}

serve({ bind, measure, blast });
