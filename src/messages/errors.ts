/**
 * Errors of the dispatch layer. The classes live in src/errors.ts with every
 * other peersock error; this module re-exports them for the layer's code.
 */
import { NoHandlerError, RemoteError } from '../errors';

export { ConversationEndedError, DecodeError, MessageTooLargeError, NoHandlerError, RemoteError, RequestTimeoutError } from '../errors';

/** The error a remote's error reply (its code and message) becomes: NoHandlerError for a missing handler, else RemoteError. */
export function remoteError(code: string, message: string): RemoteError {
  return code === NoHandlerError.remote ? new NoHandlerError(message) : new RemoteError(code, message);
}
