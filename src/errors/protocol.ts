/** Errors of the dispatch layer (src/messages) and of NAT traversal (src/nat). */
import { PeersockError, nameClass, type PeersockErrorOptions } from './base';

// ---- the dispatch layer (src/messages) ---------------------------------------

/** A message exceeds the configured maximum size. */
export class MessageTooLargeError extends PeersockError {
  /** The stable code carried by every instance. */
  static readonly code = 'ERR_PEERSOCK_MESSAGE_TOO_LARGE';
  /** Size of the message in bytes. */
  readonly size: number;
  /** The configured limit. */
  readonly limit: number;
  constructor(message: string, init: { size: number; limit: number } & PeersockErrorOptions) {
    super(MessageTooLargeError.code, message, init);
    this.size = init.size;
    this.limit = init.limit;
  }
  static {
    nameClass(this, 'MessageTooLargeError');
  }
}

/** The remote handler failed; carries the remote's code and message. */
export class RemoteError extends PeersockError {
  /** The stable code carried by every instance. */
  static readonly code = 'ERR_PEERSOCK_REMOTE';
  /** The code the remote side reported (e.g. its PeersockError's code). */
  readonly remoteCode: string;
  constructor(remoteCode: string, message: string, options?: PeersockErrorOptions) {
    super(RemoteError.code, message, options);
    this.remoteCode = remoteCode;
  }
  static {
    nameClass(this, 'RemoteError');
  }
}

/** The remote side has no handler for the request's type (or protocol). */
export class NoHandlerError extends RemoteError {
  /** The `remoteCode` of every instance: the code a peer sends when it has no handler. */
  static readonly remote = 'ERR_PEERSOCK_NO_HANDLER';
  constructor(message: string, options?: PeersockErrorOptions) {
    super(NoHandlerError.remote, message, options);
  }
  static {
    nameClass(this, 'NoHandlerError');
  }
}

/** A request's reply did not arrive in time. */
export class RequestTimeoutError extends PeersockError {
  /** The stable code carried by every instance. */
  static readonly code = 'ERR_PEERSOCK_REQUEST_TIMEOUT';
  constructor(message = 'request timed out', options?: PeersockErrorOptions) {
    super(RequestTimeoutError.code, message, options);
  }
  static {
    nameClass(this, 'RequestTimeoutError');
  }
}

/** A payload (or an envelope) could not be decoded as its declared type. */
export class DecodeError extends PeersockError {
  /** The stable code carried by every instance. */
  static readonly code = 'ERR_PEERSOCK_DECODE';
  constructor(message: string, options?: PeersockErrorOptions) {
    super(DecodeError.code, message, options);
  }
  static {
    nameClass(this, 'DecodeError');
  }
}

/** The conversation ended (by either side, or with its connection). */
export class ConversationEndedError extends PeersockError {
  /** The stable code carried by every instance. */
  static readonly code = 'ERR_PEERSOCK_CONVERSATION_ENDED';
  constructor(message = 'conversation ended', options?: PeersockErrorOptions) {
    super(ConversationEndedError.code, message, options);
  }
  static {
    nameClass(this, 'ConversationEndedError');
  }
}

// ---- NAT traversal (src/nat) --------------------------------------------------

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
  /** Which of the ways to reach the peer was missing. */
  readonly reason: NoPathReason;
  constructor(message: string, init: { reason: NoPathReason } & PeersockErrorOptions) {
    super(NoPathError.code, message, init);
    this.reason = init.reason;
  }
  static {
    nameClass(this, 'NoPathError');
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
    nameClass(this, 'IntroductionError');
  }
}

// ---- errors made from what crossed the wire ----------------------------------
