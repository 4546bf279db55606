/**
 * A request waiting for its reply: the router's waiter (by connection and
 * id), its deadline and its signal's abort listener in one object. It
 * settles once, by the reply, the timeout, the abort, its connection's close
 * or its dispatcher's destroy(), and then leaves nothing behind.
 */
import { AbortError } from '../errors';
import { Deadline, type Deadlines } from './deadlines';
import { RequestTimeoutError } from './errors';
import type { peersock } from './generated/envelope';
import type { Waiter } from './router';
import type { Codec } from './types';

/** What a pending request needs from its dispatcher. */
export interface RequestOwner {
  readonly protocol: string;
  /** Decodes a reply envelope, or throws the error it carries. */
  _settleReply(env: peersock.messages.Envelope, replyCodec: Codec | undefined): unknown;
  /** The request settled (whichever way). */
  _requestDone(req: PendingRequest): void;
}

/** The settle functions of a request's promise. */
export interface Settlers {
  resolve: (v: any) => void;
  reject: (e: unknown) => void;
}

/** One request waiting for its reply. */
export class PendingRequest extends Deadline implements Waiter {
  readonly protocol: string;
  #done = false;

  constructor(
    private readonly owner: RequestOwner,
    private readonly deadlines: Deadlines,
    private readonly waiters: Map<number, Waiter>,
    private readonly id: number,
    private readonly replyCodec: Codec | undefined,
    private readonly signal: AbortSignal | undefined,
    private readonly timeout: number,
    private readonly settlers: Settlers,
  ) {
    super();
    this.protocol = owner.protocol;
  }

  /** Waits: a waiter of the connection, a deadline, the abort listener. */
  start(): void {
    this.waiters.set(this.id, this);
    this.deadlines.add(this, this.timeout);
    this.signal?.addEventListener('abort', this, { once: true });
  }

  /** With the reply envelope, or null and the error to reject with. Once only. */
  settle(env: peersock.messages.Envelope | null, err?: Error): void {
    if (this.#done) return;
    this.#done = true;
    // Only its own entry: a later request may not reuse the id, but be exact.
    if (this.waiters.get(this.id) === this) this.waiters.delete(this.id);
    this.deadlines.cancel(this);
    this.signal?.removeEventListener('abort', this);
    if (env === null) this.settlers.reject(err);
    else {
      try {
        this.settlers.resolve(this.owner._settleReply(env, this.replyCodec));
      } catch (e) {
        this.settlers.reject(e);
      }
    }
    // After settling: whoever awaits the dispatcher's `closed` sees the request settled.
    this.owner._requestDone(this);
  }

  expire(): void {
    this.settle(null, new RequestTimeoutError(`no reply within ${this.timeout} ms`));
  }

  /** The signal's abort. */
  handleEvent(): void {
    this.settle(null, new AbortError());
  }
}
