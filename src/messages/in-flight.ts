/**
 * What a Dispatcher has in flight, for `close()` to wait for and `destroy()`
 * to cut short: requests waiting for their replies, sends waiting for QUIC
 * (or for a dial), handlers still running, and open conversations. It also
 * ends conversations with their connection: one reaction to a connection's
 * `closed` per dispatcher, not one per conversation (that kept every ended
 * conversation alive until its connection closed).
 */
import type { PeerConnection } from '../connection';
import { closeError, type PeersockError } from '../errors';
import type { peersock } from './generated/envelope';
import type { PendingRequest } from './pending-request';

/** A handler still running, and what it handles. */
export interface RunningHandler {
  readonly conn: PeerConnection;
  readonly env: peersock.messages.Envelope;
}

/** What InFlight needs of a conversation. */
export interface TrackedConversation {
  readonly connection: PeerConnection | undefined;
  close(): Promise<void>;
  destroy(err?: Error): void;
  /** Its connection closed with `err`. */
  _connectionClosed(err: PeersockError): void;
}

/** The open conversations on one connection, and the connection's close error once it closed. */
interface ConnWatch {
  readonly convs: Set<TrackedConversation>;
  err: PeersockError | undefined;
}

/** A dispatcher's work in flight. */
export class InFlight {
  readonly #requests = new Set<PendingRequest>();
  /** Rejecters of the tracked sends (and dials). */
  readonly #sends = new Set<(err: Error) => void>();
  readonly #handlers = new Set<RunningHandler>();
  readonly #convs = new Set<TrackedConversation>();
  readonly #byConn = new WeakMap<PeerConnection, ConnWatch>();

  /** `changed` runs after something in flight finished. */
  constructor(private readonly changed: () => void) {}

  /** Nothing is in flight. */
  get idle(): boolean {
    return this.#requests.size === 0 && this.#sends.size === 0 && this.#handlers.size === 0 && this.#convs.size === 0;
  }

  /** How much is in flight, by kind (for tests and debugging). */
  get counts(): { requests: number; sends: number; handlers: number; conversations: number } {
    return { requests: this.#requests.size, sends: this.#sends.size, handlers: this.#handlers.size, conversations: this.#convs.size };
  }

  addRequest(r: PendingRequest): void {
    this.#requests.add(r);
  }

  requestDone(r: PendingRequest): void {
    if (this.#requests.delete(r)) this.changed();
  }

  /** A promise settling as `p` does, unless `abort()` rejects it first. */
  track<T>(p: Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.#sends.add(reject);
      p.then(
        (v) => {
          if (!this.#sends.delete(reject)) return;
          resolve(v);
          this.changed();
        },
        (e: unknown) => {
          if (!this.#sends.delete(reject)) return;
          reject(e);
          this.changed();
        },
      );
    });
  }

  handlerStarted(conn: PeerConnection, env: peersock.messages.Envelope): RunningHandler {
    const h = { conn, env };
    this.#handlers.add(h);
    return h;
  }

  /** The handler settled: `answer` runs unless `abort()` already answered for it. */
  handlerDone(h: RunningHandler, answer: () => void): void {
    if (!this.#handlers.delete(h)) return;
    try {
      answer();
    } finally {
      this.changed();
    }
  }

  addConversation(c: TrackedConversation): void {
    this.#convs.add(c);
  }

  /** `c` rides on `conn` now: the connection's close ends it. */
  attached(c: TrackedConversation, conn: PeerConnection): void {
    let w = this.#byConn.get(conn);
    if (w === undefined) {
      const watch: ConnWatch = { convs: new Set(), err: undefined };
      w = watch;
      this.#byConn.set(conn, watch);
      void conn.closed.then((info) => {
        watch.err = closeError(info);
        const convs = [...watch.convs];
        watch.convs.clear();
        for (const x of convs) x._connectionClosed(watch.err);
      });
    }
    const err = w.err;
    if (err !== undefined) queueMicrotask(() => c._connectionClosed(err));
    else w.convs.add(c);
  }

  conversationEnded(c: TrackedConversation): void {
    const conn = c.connection;
    if (conn !== undefined) this.#byConn.get(conn)?.convs.delete(c);
    if (this.#convs.delete(c)) this.changed();
  }

  /** Ends every open conversation gracefully (close()). */
  closeConversations(): void {
    for (const c of [...this.#convs]) void c.close();
  }

  /**
   * destroy(): requests and sends reject with `err`, `answer` replies for
   * each running handler, conversations are destroyed with `given` (their
   * own ClosedError when undefined).
   */
  abort(err: Error, given: Error | undefined, answer: (h: RunningHandler) => void): void {
    for (const r of [...this.#requests]) r.settle(null, err);
    const sends = [...this.#sends];
    this.#sends.clear();
    for (const reject of sends) reject(err);
    const handlers = [...this.#handlers];
    this.#handlers.clear();
    for (const h of handlers) answer(h);
    for (const c of [...this.#convs]) c.destroy(given);
  }
}
