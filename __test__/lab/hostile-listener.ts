/**
 * A listener written the way applications write them, in its own process,
 * for the hostile-peer table (hostile.spec.ts): if anything peersock does
 * throws uncaught, this process dies and the test sees it. It installs no
 * 'uncaughtException' handler; it handles only what its own code is handed
 * (its `for await` loop's rejection, `pipeline`'s callback), as the README
 * asks of applications.
 *
 *   env: IDIOM (pipe | pipeline | for-await | data | dispatcher | conversation)
 *   → parent: { port, publicKey: hex }, then { state } for each 'state' message
 */
import { once } from 'node:events';
import { PassThrough, pipeline } from 'node:stream';

import type { PeerConnection } from '../../src/connection';
import { Dispatcher } from '../../src/messages/dispatcher';
import { PeerSocket } from '../../src/peer-socket';
import type { PeerStream } from '../../src/stream';
import { dieWithParent } from './security-child';

/** Small limits so that floods reach them, and a short idle timeout for the vanishing peer. */
export const LISTENER_LIMITS = { maxStreamsBidi: 24, maxStreamsUni: 24, idleTimeout: 1200 };
/** The dispatcher protocol of the message idioms. */
export const PROTOCOL = 'hostile/1';

/** What the listener reports when asked. */
export interface ListenerState {
  connections: number;
  /** Streams the live connections still track. */
  streams: number;
  /** process.getActiveResourcesInfo(), counted by kind. */
  resources: Record<string, number>;
  /** Dispatcher counters (message idioms). */
  dispatcher?: Record<string, number>;
  /** 'hello' requests this listener sent that are still waiting. */
  helloPending: number;
}

const idioms: Record<string, (socket: PeerSocket) => void> = {
  // The README's quick example.
  pipe(socket) {
    socket.on('connection', (conn: PeerConnection) => {
      conn.on('stream', (s: PeerStream) => s.pipe(s));
      conn.on('datagram', (d: Uint8Array) => conn.sendDatagram(d));
    });
  },
  pipeline(socket) {
    socket.on('connection', (conn: PeerConnection) => {
      conn.on('stream', (s: PeerStream) => pipeline(s, new PassThrough(), s, () => {}));
    });
  },
  'for-await'(socket) {
    socket.on('connection', (conn: PeerConnection) => {
      conn.on('stream', (s: PeerStream) => {
        void (async () => {
          for await (const chunk of s) if (!s.write(chunk)) await once(s, 'drain');
          s.end();
        })().catch(() => {});
      });
    });
  },
  // A bare 'data' handler and no 'error' listener anywhere.
  data(socket) {
    socket.on('connection', (conn: PeerConnection) => {
      conn.on('stream', (s: PeerStream) => {
        s.on('data', (chunk: Buffer) => s.write(chunk));
        s.on('end', () => s.end());
      });
    });
  },
  dispatcher(socket) {
    const d = messages(socket);
    d.handle('echo', (bytes: Uint8Array) => bytes);
    d.handle('boom', () => {
      throw new Error('handler bug');
    });
    d.handle('async-boom', async () => {
      await new Promise((resolve) => setImmediate(resolve));
      throw new TypeError('async handler bug');
    });
  },
  conversation(socket) {
    const d = messages(socket);
    d.onConversation('chat', (conv) => {
      // No 'error' listener: a conversation emits 'error' only to listeners added.
      conv.on('message', (m: Uint8Array) => void conv.send(m, { type: 'chat' }).catch(() => {}));
    });
    d.onConversation('chat-boom', () => {
      throw new Error('conversation handler bug');
    });
  },
};

let dispatcher: Dispatcher | undefined;
let helloPending = 0;

/** A dispatcher that also asks every peer 'hello' once (so a peer can answer it twice). */
function messages(socket: PeerSocket): Dispatcher {
  const d = new Dispatcher(socket, { protocol: PROTOCOL });
  dispatcher = d;
  socket.on('connection', (conn: PeerConnection) => {
    helloPending++;
    d.request(conn, new Uint8Array([1]), { type: 'hello', timeout: 3000 })
      .catch(() => {})
      .finally(() => helloPending--);
  });
  return d;
}

function state(socket: PeerSocket): ListenerState {
  const resources: Record<string, number> = {};
  for (const r of process.getActiveResourcesInfo()) resources[r] = (resources[r] ?? 0) + 1;
  const conns = socket.connections;
  return {
    connections: conns.length,
    streams: conns.reduce((n, c) => n + c._streamCount, 0),
    resources,
    dispatcher: dispatcher === undefined ? undefined : { ...dispatcher.stats },
    helloPending,
  };
}

async function main(): Promise<void> {
  dieWithParent();
  const idiom = idioms[process.env.IDIOM ?? ''];
  if (idiom === undefined) throw new Error(`unknown IDIOM ${String(process.env.IDIOM)}`);
  const socket = await PeerSocket.bind({ host: '127.0.0.1', port: 0, ...LISTENER_LIMITS });
  idiom(socket);
  process.on('message', (m) => {
    if (m === 'state') process.send!({ state: state(socket) });
  });
  process.send!({ port: socket.address().port, publicKey: Buffer.from(socket.publicKey).toString('hex') });
}

// Imported by hostile.spec.ts for its constants: run only as the child.
if (require.main === module) void main();
