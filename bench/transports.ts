/**
 * The transports under test behind one small interface, so the client and
 * server scripts run the same figures over each: peersock with either I/O
 * driver ('dgram': node:dgram; 'native': the addon owns the UDP socket),
 * node:tls and Holepunch's udx-native + secret-stream ('udx', bench/udx.ts).
 * node:tls uses TLS 1.3 with mutual certificate auth (peersock's handshake
 * also proves both sides' keys), Nagle off.
 */
import { once } from 'node:events';
import type { Duplex } from 'node:stream';
import tls from 'node:tls';

import { PeerSocket, type ConnectionStats, type NativeIoStats, type PeerConnection } from '../src/index';
import type { Cert } from './cert';
import { serveStream } from './protocol';
import { udxClient, udxListen } from './udx';

/** Transport names: peersock's two I/O drivers, node:tls, udx-native + secret-stream. */
export type Kind = 'dgram' | 'native' | 'tls' | 'udx';

/** The peersock kinds (their names are the `io` option's values). */
export const isPeersock = (k: Kind): k is 'dgram' | 'native' => k === 'dgram' || k === 'native';

/** Where a client dials: a loopback port and, for peersock and udx, the server key (hex). */
export interface Target {
  host: string;
  port: number;
  key?: string;
}

/** Socket options a peersock client or server may be bound with (the packet-size figures); the others ignore them. */
export interface Tuning {
  maxUdpPayload?: number;
  pmtuDiscovery?: boolean;
}

/** A listening server that runs `serveStream` on each stream. */
export interface Server {
  target: Target;
  /** Connections currently open. */
  count(): number;
  /** The native I/O driver's counters (peersock 'native' only). */
  io?(): NativeIoStats | undefined;
  close(): Promise<void>;
}

/** One dialed connection. */
export interface ClientConn {
  /** A fresh stream (peersock) or the socket itself (tls: call once). */
  stream(): Duplex;
  /** Graceful close, resolved once the transport reports it closed. */
  close(): Promise<void>;
  /** The connection's counters (peersock only). */
  stats?(): ConnectionStats;
}

/** A dialer bound once and reused for every connection. */
export interface Client {
  dial(t: Target): Promise<ClientConn>;
  /** The native I/O driver's counters (peersock 'native' only). */
  io?(): NativeIoStats | undefined;
  close(): Promise<void>;
}

const noop = (): void => {};
const HOST = '127.0.0.1';

/** Starts a server of `kind` on loopback port 0 (peersock: bound with `tuning`). */
export async function listen(kind: Kind, cert: Cert, tuning: Tuning = {}): Promise<Server> {
  if (isPeersock(kind)) {
    const sock = await PeerSocket.bind({ ...tuning, host: HOST, port: 0, io: kind });
    sock.on('error', noop);
    sock.on('connection', (conn: PeerConnection) => {
      conn.on('error', noop);
      conn.on('stream', serveStream);
    });
    return {
      target: { host: HOST, port: sock.address().port, key: Buffer.from(sock.publicKey).toString('hex') },
      count: () => sock.connections.length,
      io: () => sock.stats().io,
      close: () => sock.close(),
    };
  }
  if (kind === 'udx') return udxListen();
  const open = new Set<tls.TLSSocket>();
  const srv = tls.createServer(
    { key: cert.key, cert: cert.cert, ca: [cert.cert], requestCert: true, rejectUnauthorized: true, minVersion: 'TLSv1.3' },
    (s) => {
      s.setNoDelay(true);
      open.add(s);
      s.on('close', () => open.delete(s));
      serveStream(s);
    },
  );
  srv.on('tlsClientError', noop);
  srv.listen(0, HOST, 1024);
  await once(srv, 'listening');
  const addr = srv.address();
  if (addr === null || typeof addr === 'string') throw new Error('no TCP address');
  return {
    target: { host: HOST, port: addr.port },
    count: () => open.size,
    close: async () => {
      for (const s of open) s.destroy();
      await new Promise((r) => srv.close(r));
    },
  };
}

/** Makes a client of `kind` (peersock: bound with `tuning`). */
export async function client(kind: Kind, cert: Cert, tuning: Tuning = {}): Promise<Client> {
  if (isPeersock(kind)) {
    const sock = await PeerSocket.bind({ ...tuning, host: HOST, port: 0, io: kind });
    sock.on('error', noop);
    return {
      io: () => sock.stats().io,
      async dial(t) {
        const conn = await sock.connect({ publicKey: new Uint8Array(Buffer.from(t.key ?? '', 'hex')), host: t.host, port: t.port });
        conn.on('error', noop);
        return {
          stream: () => conn.openStream(),
          close: async () => {
            await conn.close();
          },
          stats: () => conn.stats(),
        };
      },
      close: () => sock.close(),
    };
  }
  if (kind === 'udx') return udxClient();
  // One context for every dial, as a real client would keep (building it per dial costs ~1 ms).
  const secureContext = tls.createSecureContext({ key: cert.key, cert: cert.cert, ca: [cert.cert], minVersion: 'TLSv1.3' });
  return {
    async dial(t) {
      const s = tls.connect({
        host: t.host,
        port: t.port,
        secureContext,
        checkServerIdentity: () => undefined, // pinned by `ca`; the cert has no IP SAN
      });
      s.on('error', noop);
      await once(s, 'secureConnect');
      s.setNoDelay(true);
      return {
        stream: () => s,
        close: async () => {
          if (s.destroyed) return;
          const closed = once(s, 'close');
          s.resume(); // the peer's FIN must be read for 'close' to come
          s.end();
          await closed;
        },
      };
    },
    close: async () => {},
  };
}
