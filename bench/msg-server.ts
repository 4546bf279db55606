/**
 * Dispatch-layer bench server: `msg-server.ts <dgram|native>` (the I/O
 * driver), one PeerSocket with a Dispatcher for protocol 'bench/1'.
 * Handlers (raw string types, Uint8Array payloads):
 *   ping        echoes the payload (the reply)
 *   note        one-way; counted, timed from the first one to `noteReport`
 *   noteReport  replies {messages, ms} as JSON and resets the count
 *   big         one-way; answered by a one-way `bigArrived` (its size)
 * Commands: listen {tuning?} → Target (bound with `tuning`), stats → the
 * dispatcher's counters.
 */
import { Dispatcher, PeerSocket, type PeerConnection } from '../src/index';
import { serve } from './ipc';
import { MSG_PROTOCOL as PROTOCOL } from './protocol';
import type { Target, Tuning } from './transports';

const io = process.argv[2] === 'native' ? 'native' : 'dgram';
const noop = (): void => {};
let dispatcher: Dispatcher | undefined;
let notes = 0;
let firstNote = 0n;

serve({
  async listen(p?: { tuning?: Tuning }) {
    const sock = await PeerSocket.bind({ ...p?.tuning, host: '127.0.0.1', port: 0, io });
    sock.on('error', noop);
    sock.on('connection', (conn: PeerConnection) => conn.on('error', noop));
    const d = new Dispatcher(sock, { protocol: PROTOCOL });
    dispatcher = d;
    d.handle('ping', (bytes: Uint8Array) => bytes);
    d.handle('note', () => {
      if (notes++ === 0) firstNote = process.hrtime.bigint();
    });
    d.handle('noteReport', () => {
      // Notes and this request share the sender's lane: it arrives right after the last note.
      const ms = notes === 0 ? 0 : Number(process.hrtime.bigint() - firstNote) / 1e6;
      const report = { messages: notes, ms };
      notes = 0;
      return Buffer.from(JSON.stringify(report));
    });
    d.handle('big', (bytes: Uint8Array, ctx) => {
      d.send(ctx.connection, Buffer.from(String(bytes.length)), { type: 'bigArrived' }).catch(noop);
    });
    return { host: '127.0.0.1', port: sock.address().port, key: Buffer.from(sock.publicKey).toString('hex') } satisfies Target;
  },
  stats: () => dispatcher?.stats,
});
