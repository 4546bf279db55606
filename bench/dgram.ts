/**
 * Raw node:dgram ceiling: `dgram.ts recv` counts bytes received over a fixed
 * window; `dgram.ts send` sends 1452-byte datagrams as fast as it can, with a
 * bounded number in flight (send callbacks), so the kernel is never flooded
 * with more than a socket buffer's worth. Same 4 MiB buffers as peersock.
 * Also a request/reply floor: `echo` makes a socket answer every datagram
 * with itself; `pingpong` sends one small datagram at a time to it.
 */
import dgram from 'node:dgram';
import { once } from 'node:events';

import { serve } from './ipc';
import { percentile } from './stats';

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

/** Echo mode: every datagram goes back to its sender (until `echo` with on: false). */
function echo(p: { on: boolean }): void {
  sock.removeAllListeners('message');
  if (p.on) sock.on('message', (m: Buffer, r: dgram.RemoteInfo) => sock.send(m, r.port, r.address));
}

/**
 * Sequential `size`-byte datagrams to an echoing `port` for `ms`: round
 * trips/s and latency percentiles (µs). A datagram lost for 1 s ends the run.
 */
async function pingpong(p: { port: number; ms: number; size: number }): Promise<{ perSec: number; p50: number; p99: number; n: number; lost: number }> {
  const msg = Buffer.alloc(p.size, 0x70);
  const lat: number[] = [];
  let wake: (() => void) | undefined;
  const onMsg = (): void => {
    const w = wake;
    wake = undefined;
    w?.();
  };
  sock.on('message', onMsg);
  let lost = 0;
  const start = process.hrtime.bigint();
  const end = start + BigInt(p.ms) * 1_000_000n;
  let now = start;
  try {
    while (now < end && lat.length < 1_000_000) {
      const t0 = now;
      let timer: NodeJS.Timeout | undefined;
      const got = await new Promise<boolean>((resolve) => {
        wake = () => resolve(true);
        timer = setTimeout(() => resolve(false), 1000);
        sock.send(msg, p.port, '127.0.0.1');
      });
      clearTimeout(timer);
      now = process.hrtime.bigint();
      if (!got) {
        lost++;
        break;
      }
      lat.push(Number(now - t0) / 1000);
    }
  } finally {
    sock.off('message', onMsg);
  }
  const secs = Number(now - start) / 1e9;
  lat.sort((a, b) => a - b);
  return { perSec: lat.length / secs, p50: percentile(lat, 0.5), p99: percentile(lat, 0.99), n: lat.length, lost };
}

serve({ bind, measure, blast, echo, pingpong });
