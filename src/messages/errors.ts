/**
 * Errors of the dispatch layer, all PeersockErrors with stable codes.
 */
import { PeersockError, type PeersockErrorOptions } from '../errors';

/** A message exceeds the configured maximum size. */
export class MessageTooLargeError extends PeersockError {
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
}

/** The remote handler failed; carries the remote's code and message. */
export class RemoteError extends PeersockError {
  static readonly code = 'ERR_PEERSOCK_REMOTE';
  /** The code the remote side reported (e.g. its PeersockError's code). */
  readonly remoteCode: string;
  constructor(remoteCode: string, message: string, options?: PeersockErrorOptions) {
    super(RemoteError.code, message, options);
    this.remoteCode = remoteCode;
  }
}

/** The remote side has no handler for the request's type (or protocol). */
export class NoHandlerError extends RemoteError {
  static readonly remote = 'ERR_PEERSOCK_NO_HANDLER';
  constructor(message: string, options?: PeersockErrorOptions) {
    super(NoHandlerError.remote, message, options);
  }
}

/** A request's reply did not arrive in time. */
export class RequestTimeoutError extends PeersockError {
  static readonly code = 'ERR_PEERSOCK_REQUEST_TIMEOUT';
  constructor(message = 'request timed out', options?: PeersockErrorOptions) {
    super(RequestTimeoutError.code, message, options);
  }
}

/** A payload could not be decoded as its declared type. */
export class DecodeError extends PeersockError {
  static readonly code = 'ERR_PEERSOCK_DECODE';
  constructor(message: string, options?: PeersockErrorOptions) {
    super(DecodeError.code, message, options);
  }
}

/** The conversation ended (by either side, or with its connection). */
export class ConversationEndedError extends PeersockError {
  static readonly code = 'ERR_PEERSOCK_CONVERSATION_ENDED';
  constructor(message = 'conversation ended', options?: PeersockErrorOptions) {
    super(ConversationEndedError.code, message, options);
  }
}

for (const C of [MessageTooLargeError, RemoteError, NoHandlerError, RequestTimeoutError, DecodeError, ConversationEndedError]) {
  Object.defineProperty(C.prototype, 'name', { value: C.name, configurable: true, writable: true });
}
