/** Errors of introductions, hole punching and relaying. */
import { PeersockError, type PeersockErrorOptions } from '../errors';

/** Why no path was found. */
export type NoPathReason = 'relay-off' | 'relay-limit' | 'relay-declined' | 'direct-off';

/**
 * An introduced peer could not be reached: no direct path within the punch
 * window, and no relay (the introducer relays nothing, or is at its limit,
 * or the dialer turned the relay off). `reason` says which.
 */
export class NoPathError extends PeersockError {
  /** The stable code carried by every instance. */
  static readonly code = 'ERR_PEERSOCK_NO_PATH';
  readonly reason: NoPathReason;
  constructor(message: string, init: { reason: NoPathReason } & PeersockErrorOptions) {
    super(NoPathError.code, message, init);
    this.reason = init.reason;
  }
  static {
    Object.defineProperty(this.prototype, 'name', { value: 'NoPathError', writable: true, configurable: true });
  }
}

/**
 * The introducer could not introduce us: it is not connected to the peer,
 * does not speak the protocol, or the request failed. `cause` has details.
 */
export class IntroductionError extends PeersockError {
  /** The stable code carried by every instance. */
  static readonly code = 'ERR_PEERSOCK_INTRODUCTION_FAILED';
  constructor(message: string, options?: PeersockErrorOptions) {
    super(IntroductionError.code, message, options);
  }
  static {
    Object.defineProperty(this.prototype, 'name', { value: 'IntroductionError', writable: true, configurable: true });
  }
}
