/**
 * A conversation's sends that have to wait: for its stream (the opening
 * side may still be dialing) or for the stream to drain (the peer is not
 * reading). When the conversation fails or is destroyed they all reject at
 * once: the stream they wait for may never come or drain.
 */
import type { PeerStream } from '../stream';

/** A send waiting for the stream to drain. */
interface DrainWaiter {
  resolve: () => void;
  reject: (err: Error) => void;
}

/** The waiting sends of one conversation. */
export class SendWaits {
  readonly #ready = new Set<(err: Error) => void>();
  readonly #drain: DrainWaiter[] = [];
  #drainStream: PeerStream | undefined;
  readonly #onDrain = (): void => {
    this.#drainStream = undefined;
    for (const w of this.#drain.splice(0)) w.resolve();
  };

  /** Whether sends wait for the stream (later ones wait behind them, to keep their order). */
  get readyWaiting(): boolean {
    return this.#ready.size > 0;
  }

  /** Resolves once `ready` settles (either way: the caller checks what came of it), unless `fail()` comes first. */
  forReady(ready: Promise<void>): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.#ready.add(reject);
      const done = (): void => {
        if (this.#ready.delete(reject)) resolve();
      };
      ready.then(done, done);
    });
  }

  /** Settles at `s`'s next 'drain', with one listener for all senders waiting, unless `fail()` comes first. */
  afterDrain(s: PeerStream, resolve: () => void, reject: (err: Error) => void): void {
    this.#drain.push({ resolve, reject });
    if (this.#drainStream !== undefined) return;
    this.#drainStream = s;
    s.once('drain', this.#onDrain);
  }

  /** Rejects every waiting send with `err` and removes the 'drain' listener. */
  fail(err: Error): void {
    const ready = [...this.#ready];
    this.#ready.clear();
    for (const reject of ready) reject(err);
    this.#drainStream?.off('drain', this.#onDrain);
    this.#drainStream = undefined;
    for (const w of this.#drain.splice(0)) w.reject(err);
  }
}
