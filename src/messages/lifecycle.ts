/**
 * The lifecycle the dispatch layer's resources (Dispatcher, Conversation)
 * share with PeerSocket and PeerConnection: `close()` is graceful and
 * idempotent, `destroy(err?)` is immediate, `closed` resolves once the
 * resource is over and never rejects. A resource may also be given an
 * AbortSignal: its abort destroys the resource with AbortError (the signal's
 * reason as `cause`), as an aborted `connect()` or `request()` rejects with
 * AbortError at once.
 */
import { AbortError, InvalidArgumentError } from '../errors';

/** The `signal` option of a resource. */
export interface LifecycleOptions {
  /**
   * Destroys the resource when aborted: what is pending fails with
   * AbortError (the signal's reason as `cause`). An already aborted signal
   * gives a resource that is destroyed from the start.
   */
  signal?: AbortSignal | undefined;
}

/** `signal` itself when it is undefined or an AbortSignal; InvalidArgumentError otherwise. */
export function checkSignal(signal: unknown): AbortSignal | undefined {
  if (signal !== undefined && !(signal instanceof AbortSignal)) throw new InvalidArgumentError('signal must be an AbortSignal');
  return signal;
}

/** The error an aborted signal destroys a resource with. */
export function abortError(signal: AbortSignal): AbortError {
  return new AbortError(undefined, { cause: signal.reason });
}

/**
 * A resource's `closed` promise and its signal's abort listener. The owner
 * checks `signal.aborted` itself once it is set up (an aborted signal fires
 * no 'abort' event).
 */
export class Lifecycle {
  /** Resolves once `finish()` ran; never rejects. */
  readonly closed: Promise<void>;
  #resolve!: () => void;
  #done = false;
  readonly #signal: AbortSignal | undefined;
  readonly #onAbort: (() => void) | undefined;

  /** `destroy` is called (once at most) when `signal` aborts before `finish()`. */
  constructor(signal: AbortSignal | undefined, destroy: (err: AbortError) => void) {
    this.closed = new Promise<void>((resolve) => {
      this.#resolve = resolve;
    });
    this.#signal = signal;
    if (signal !== undefined && !signal.aborted) {
      const onAbort = (): void => destroy(abortError(signal));
      this.#onAbort = onAbort;
      signal.addEventListener('abort', onAbort, { once: true });
    }
  }

  /** Whether the resource is over (`finish()` ran). */
  get done(): boolean {
    return this.#done;
  }

  /** The resource is over: the abort listener goes and `closed` resolves. Idempotent. */
  finish(): void {
    if (this.#done) return;
    this.#done = true;
    if (this.#onAbort !== undefined) this.#signal?.removeEventListener('abort', this.#onAbort);
    this.#resolve();
  }
}
