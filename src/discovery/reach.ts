/**
 * Reaching a peer from its record: every direct address and every introducer
 * is tried at once, and the first connection that proves the key wins. The
 * others are aborted, and any that still completes is closed. A failure at
 * one address (an impostor there: IdentityMismatchError) only ends that
 * attempt.
 */
import type { PeerConnection } from '../connection';
import { AbortError, InternalError, InvalidArgumentError, PeersockError, PeerUnreachableError } from '../errors';
import { encodeKey, keysEqual, parseDialString } from '../keys';
import { canDial } from '../local-addresses';
import { NatTraversal } from '../nat/traversal';
import type { PeerSocket } from '../peer-socket';
import type { PeerAddress, PeerRecord } from './record';

/** One way tried, and why it failed. */
export interface Attempt {
  via: string;
  error: PeersockError;
}

/** The open connection of `socket` to `key`, if any. */
export function openConnectionTo(socket: PeerSocket, key: Uint8Array): PeerConnection | undefined {
  return socket.connections.find((c) => c.closeInfo === undefined && keysEqual(c.remotePublicKey, key));
}

function asPeersockError(e: unknown): PeersockError {
  return e instanceof PeersockError ? e : new InternalError(String(e), { cause: e });
}

/**
 * Dials `record.publicKey` every way the record offers, at once. Resolves
 * with the first connection that proved the key; rejects with
 * PeerUnreachableError listing every attempt, or AbortError when `signal`
 * fires first.
 */
export function reach(socket: PeerSocket, record: PeerRecord, signal: AbortSignal): Promise<PeerConnection> {
  const local = socket.address();
  const key = record.publicKey;
  const direct: PeerAddress[] = record.addresses.filter((a) => canDial(local, a.host));
  const traversal = NatTraversal.of(socket);
  const ways: Array<{ via: string; dial: (s: AbortSignal) => Promise<PeerConnection> }> = [];
  for (const a of direct) {
    ways.push({ via: `${a.host}:${a.port}`, dial: (s) => socket.connect({ publicKey: key, host: a.host, port: a.port }, { signal: s }) });
  }
  for (const intro of record.introducers) {
    ways.push({
      via: `introducer ${intro}`,
      dial: async (s) => {
        if (traversal === undefined) throw new InvalidArgumentError('dialing through an introducer needs natTraversal() on this socket');
        const parsed = parseDialString(intro);
        if (keysEqual(parsed.publicKey, key)) throw new InvalidArgumentError('a record cannot name its own key as introducer');
        const via = openConnectionTo(socket, parsed.publicKey) ?? (await socket.connect(intro, { signal: s }));
        return socket.connect({ publicKey: key, via }, { signal: s });
      },
    });
  }
  const attempts: Attempt[] = [];
  if (ways.length === 0) {
    return Promise.reject(new PeerUnreachableError(`the record of ${encodeKey(key)} has no address this socket can dial and no introducer`, { attempts }));
  }
  const inner = new AbortController();
  const onAbort = (): void => inner.abort();
  signal.addEventListener('abort', onAbort, { once: true });
  return new Promise<PeerConnection>((resolve, reject) => {
    let pending = ways.length;
    let won = false;
    const finish = (): void => {
      signal.removeEventListener('abort', onAbort);
      inner.abort();
    };
    for (const w of ways) {
      w.dial(inner.signal).then(
        (conn) => {
          pending--;
          if (won) {
            void conn.close().catch(() => {});
            return;
          }
          won = true;
          finish();
          resolve(conn);
        },
        (e: unknown) => {
          pending--;
          if (!won) attempts.push({ via: w.via, error: asPeersockError(e) });
          if (pending > 0 || won) return;
          finish();
          if (signal.aborted) reject(new AbortError());
          else reject(new PeerUnreachableError(`no address or introducer of ${encodeKey(key)} led to it (${attempts.length} tried)`, { attempts }));
        },
      );
    }
  });
}
