/**
 * The Holepunch baseline ('udx'): a udx-native stream (libudx: reliable,
 * congestion-controlled streams over UDP) wrapped in @hyperswarm/secret-stream
 * (Noise, then libsodium secretstream), connected the way hyperdht connects a
 * direct (non-relayed) pair: the two sides run a Noise IK handshake outside
 * the stream (hyperdht carries it over the DHT; here it is one UDP datagram
 * each way on the same socket, carrying each side's udx stream id), each side
 * connects a framed raw stream to the other's id and hands the handshake's
 * keys to SecretStream, which then sends only its 56-byte header before data.
 * One socket per process; one stream per connection (no multiplexing: a
 * ClientConn's stream() is the connection itself, like node:tls).
 */
import { randomInt } from 'node:crypto';
import type { Duplex } from 'node:stream';

import SecretStream from '@hyperswarm/secret-stream';
import Handshake from '@hyperswarm/secret-stream/lib/handshake';
import UDX from 'udx-native';

import { serveStream } from './protocol';
import type { Client, ClientConn, Server, Target } from './transports';

const HOST = '127.0.0.1';
const HELLO = 0x01;
const REPLY = 0x02;
/** Noise messages travel without the 3-byte length Handshake puts in front. */
const PREFIX = 3;
const DIAL_MS = 5000;
/** Socket buffers as peersock and the node:dgram ceiling use. */
const BUFFER = 4 * 1024 * 1024;
const noop = (): void => {};

let nextStreamId = randomInt(1, 2 ** 31);
/** Stream ids are per udx instance (one per process here): a counter suffices. */
const streamId = (): number => (nextStreamId = (nextStreamId + 1) >>> 0 || 1);

function socket(udx: UDX): UDX.Socket {
  const sock = udx.createSocket();
  sock.bind(0, HOST);
  try {
    sock.setRecvBufferSize(BUFFER);
    sock.setSendBufferSize(BUFFER);
  } catch {
    // Capped by the kernel: fine.
  }
  return sock;
}

/** The keys of a completed handshake step, as SecretStream takes them. */
const keys = (step: NonNullable<ReturnType<Handshake['recv']>>, publicKey: Buffer): SecretStream.Handshake | undefined =>
  step.tx === null || step.rx === null || step.hash === null || step.remotePublicKey === null
    ? undefined
    : { tx: step.tx, rx: step.rx, hash: step.hash, publicKey, remotePublicKey: step.remotePublicKey };

/** Server: answers each HELLO with a REPLY and serves the new stream. */
export function udxListen(): Server {
  const udx = new UDX();
  const sock = socket(udx);
  const keyPair = SecretStream.keyPair();
  const open = new Set<SecretStream>();
  sock.on('message', (buf, from) => {
    if (buf.length < 5 + 1 || buf[0] !== HELLO) return;
    const remoteId = buf.readUInt32BE(1);
    const step = new Handshake(false, keyPair, null, 'IK').recv(buf.subarray(5));
    const hs = step === null ? undefined : keys(step, keyPair.publicKey);
    if (step?.data == null || hs === undefined) return;
    const id = streamId();
    const reply = Buffer.allocUnsafe(9 + step.data.length - PREFIX);
    reply[0] = REPLY;
    reply.writeUInt32BE(remoteId, 1);
    reply.writeUInt32BE(id, 5);
    step.data.copy(reply, 9, PREFIX);
    // The reply goes out before the stream's first packet (SecretStream's header), so the dialer has connected when that comes.
    sock.trySend(reply, from.port, from.host);
    const raw = udx.createStream(id, { framed: true });
    raw.on('error', noop);
    raw.connect(sock, remoteId, from.port, from.host);
    const s = new SecretStream(false, raw, { handshake: hs });
    open.add(s);
    s.on('close', () => open.delete(s));
    serveStream(s as unknown as Duplex);
  });
  return {
    target: { host: HOST, port: sock.address().port, key: keyPair.publicKey.toString('hex') },
    count: () => open.size,
    close: async () => {
      for (const s of open) s.destroy();
      await sock.close();
    },
  };
}

/** Client: one socket; each dial is a HELLO/REPLY exchange and a new stream. */
export function udxClient(): Client {
  const udx = new UDX();
  const sock = socket(udx);
  const keyPair = SecretStream.keyPair();
  /** Dials awaiting their REPLY, by the dialer's stream id. */
  const pending = new Map<number, (reply: Buffer) => void>();
  sock.on('message', (buf) => {
    if (buf.length < 9 + 1 || buf[0] !== REPLY) return;
    pending.get(buf.readUInt32BE(1))?.(buf);
  });
  return {
    dial(t: Target): Promise<ClientConn> {
      const id = streamId();
      const hs = new Handshake(true, keyPair, Buffer.from(t.key ?? '', 'hex'), 'IK');
      const first = hs.send();
      if (first?.data == null) return Promise.reject(new Error('udx: no Noise message'));
      const hello = Buffer.allocUnsafe(5 + first.data.length - PREFIX);
      hello[0] = HELLO;
      hello.writeUInt32BE(id, 1);
      first.data.copy(hello, 5, PREFIX);
      return new Promise<ClientConn>((resolve, reject) => {
        const timer = setTimeout(() => {
          pending.delete(id);
          reject(new Error(`udx: no reply from ${t.host}:${t.port} within ${DIAL_MS} ms`));
        }, DIAL_MS);
        // Runs inside the socket's message callback: the stream is connected before libudx reads the server's next packet.
        pending.set(id, (reply) => {
          pending.delete(id);
          clearTimeout(timer);
          const step = hs.recv(reply.subarray(9));
          const done = step === null ? undefined : keys(step, keyPair.publicKey);
          if (done === undefined) return reject(new Error('udx: Noise handshake failed'));
          const raw = udx.createStream(id, { framed: true });
          raw.on('error', noop);
          raw.connect(sock, reply.readUInt32BE(5), t.port, t.host);
          const s = new SecretStream(true, raw, { handshake: done });
          s.on('error', noop);
          resolve({
            stream: () => s as unknown as Duplex,
            close: async () => {
              if (s.destroyed) return;
              const closed = new Promise((r) => s.once('close', r));
              s.resume(); // the peer's end must be read for 'close' to come
              s.end();
              await closed;
            },
          });
        });
        sock.trySend(hello, t.port, t.host);
      });
    },
    close: () => sock.close(),
  };
}
