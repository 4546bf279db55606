/**
 * Errors from elsewhere: a connection's close, a code that crossed the wire,
 * a native error's code.
 */
import type { CloseKindName, NativeEvent } from '../native';
import { PeersockError, type PeersockErrorOptions } from './base';
import {
  AbortError,
  BusyError,
  CertificateError,
  ClosedError,
  ConnectionRefusedError,
  DatagramTooLargeError,
  HandlerFailedError,
  HandshakeTimeoutError,
  IdentityMismatchError,
  IdleTimeoutError,
  InternalError,
  InvalidArgumentError,
  NotConnectedError,
  PeerClosedError,
  PeerRejectedError,
  SocketError,
  StreamLimitError,
  TransportError,
} from './connection';
import { DhtError } from './discovery';
import { DiscoveryTimeoutError, PeerNotFoundError, PeerUnreachableError, PublishError } from './lookup';
import { ConversationEndedError, DecodeError, IntroductionError, NoHandlerError, RequestTimeoutError } from './protocol';

/** How a connection ended (PeerConnection's `closeInfo`, `closed` and 'close'). */
export interface CloseInfo {
  /** Application (or transport) error code of the close. */
  code: number;
  /** Reason phrase of the close. */
  reason: string;
  /** True when the remote side closed it. */
  remote: boolean;
  /** Set when the end was a failure (timeout, protocol error, identity…). */
  error?: PeersockError | undefined;
}

/** How a connection ended, as `closeError` needs it: CloseInfo's fields. */
export type ClosedBy = Pick<CloseInfo, 'code' | 'reason' | 'remote' | 'error'>;

/**
 * The error that whatever was still pending on a connection (a stream, a
 * request, a conversation) fails with when the connection ends: the close's
 * own error for a failure, PeerClosedError (the peer's `appCode` and
 * `reason`) when the peer closed it, ClosedError when we closed it.
 */
export function closeError(info: ClosedBy): PeersockError {
  if (info.error !== undefined) return info.error;
  // Made by an event of the peer or the network, not at a call of the
  // application's: a JavaScript stack would show only the event loop, and
  // every stream this error destroys has Node format it (a stream's
  // destroy reads err.stack), which cost more than the rest of a short
  // connection's close. So none is recorded.
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    if (info.remote) {
      return new PeerClosedError(`peer closed the connection (code ${info.code}${info.reason ? `: ${info.reason}` : ''})`, { appCode: info.code, reason: info.reason });
    }
    return new ClosedError('connection closed');
  } finally {
    Error.stackTraceLimit = limit;
  }
}

type CodeMapper = (message: string, options: PeersockErrorOptions) => PeersockError;

/**
 * Every code whose class can be rebuilt from a code and a message alone. The
 * classes that carry numbers or a reason the wire does not (PeerClosedError,
 * TransportError, StreamResetError, StreamStoppedError, MessageTooLargeError,
 * NoPathError, RemoteError) are not here: their codes stay a PeersockError.
 */
const wireCodes: ReadonlyMap<string, CodeMapper> = new Map<string, CodeMapper>([
  [InvalidArgumentError.code, (m, o) => new InvalidArgumentError(m, o)],
  [IdentityMismatchError.code, (m, o) => new IdentityMismatchError(m, o)],
  [CertificateError.code, (m, o) => new CertificateError(m, o)],
  [PeerRejectedError.code, (m, o) => new PeerRejectedError(m, o)],
  [HandshakeTimeoutError.code, (m, o) => new HandshakeTimeoutError(m, o)],
  [ConnectionRefusedError.code, (m, o) => new ConnectionRefusedError(m, { ...o, reason: m })],
  [IdleTimeoutError.code, (m, o) => new IdleTimeoutError(m, o)],
  [DatagramTooLargeError.code, (m, o) => new DatagramTooLargeError(m, o)],
  [ClosedError.code, (m, o) => new ClosedError(m, o)],
  [StreamLimitError.code, (m, o) => new StreamLimitError(m, o)],
  [AbortError.code, (m, o) => new AbortError(m, o)],
  [SocketError.code, (m, o) => new SocketError(m, o)],
  [InternalError.code, (m, o) => new InternalError(m, o)],
  [NotConnectedError.code, (m, o) => new NotConnectedError(m, o)],
  [BusyError.code, (m, o) => new BusyError(m, o)],
  [HandlerFailedError.code, (m, o) => new HandlerFailedError(m, o)],
  [NoHandlerError.remote, (m, o) => new NoHandlerError(m, o)],
  [RequestTimeoutError.code, (m, o) => new RequestTimeoutError(m, o)],
  [DecodeError.code, (m, o) => new DecodeError(m, o)],
  [ConversationEndedError.code, (m, o) => new ConversationEndedError(m, o)],
  [IntroductionError.code, (m, o) => new IntroductionError(m, o)],
  [DhtError.code, (m, o) => new DhtError(m, o)],
  [PeerNotFoundError.code, (m, o) => new PeerNotFoundError(m, o)],
  [PeerUnreachableError.code, (m, o) => new PeerUnreachableError(m, o)],
  [DiscoveryTimeoutError.code, (m, o) => new DiscoveryTimeoutError(m, o)],
  [PublishError.code, (m, o) => new PublishError(m, o)],
]);

/**
 * Rebuilds an error from a code and message that crossed the wire (a remote
 * handler's error, passed on): an instance of the code's class when the code
 * is known and its class needs nothing else, else a PeersockError with that code.
 */
export function errorFromCode(code: string, message: string, options: PeersockErrorOptions = {}): PeersockError {
  const mapper = wireCodes.get(code);
  return mapper !== undefined ? mapper(message, options) : new PeersockError(code, message, options);
}

/** What the caller knows that a native error code cannot carry. */
export interface NativeErrorContext {
  /** The connection's current maximum datagram size, copied into DatagramTooLargeError. */
  maxDatagramSize?: number | undefined;
}

type NativeMapper = (message: string, cause: unknown, context: NativeErrorContext) => PeersockError;

/** The core's stable error codes (crates/peersock-core) and the class each becomes. */
const nativeCodes: ReadonlyMap<string, NativeMapper> = new Map<string, NativeMapper>([
  ['INVALID_ARGUMENT', (m, cause) => new InvalidArgumentError(m, { cause })],
  ['UNKNOWN_CONNECTION', (m, cause) => new ClosedError(m, { cause })],
  ['CLOSED', (m, cause) => new ClosedError(m, { cause })],
  ['STREAM_STATE', (m, cause) => new ClosedError(m, { cause })],
  ['STREAM_LIMIT', (m, cause) => new StreamLimitError(m, { cause })],
  ['DATAGRAM_TOO_LARGE', (m, cause, ctx) => new DatagramTooLargeError(m, { cause, maxSize: ctx.maxDatagramSize })],
  ['DATAGRAM_DISABLED', (m, cause) => new InvalidArgumentError(m, { cause })],
  ['TLS', (m, cause) => new InternalError(m, { cause })],
  ['INTERNAL', (m, cause) => new InternalError(m, { cause })],
]);

/**
 * Converts an error thrown by the native binding into a PeersockError, by its
 * `code` only (the message is copied, never parsed). PeersockErrors pass through;
 * anything unrecognised becomes an InternalError with the original as `cause`.
 */
export function errorFromNative(err: unknown, context: NativeErrorContext = {}): PeersockError {
  if (err instanceof PeersockError) return err;
  const code = typeof err === 'object' && err !== null ? (err as { code?: unknown }).code : undefined;
  const message = err instanceof Error ? err.message : String(err);
  const mapper = typeof code === 'string' ? nativeCodes.get(code) : undefined;
  if (mapper !== undefined) return mapper(message, err, context);
  return new InternalError(message === '' ? 'internal error' : message, { cause: err });
}

/** @internal Turns a native `closed` event into CloseInfo (error set for failures). */
export function closeInfoFromEvent(ev: Extract<NativeEvent, { kind: 'closed' }>): CloseInfo {
  const { code, reason } = ev;
  const kind: CloseKindName = ev.closeKind;
  const remote = kind === 'peer' || kind === 'peer_transport' || kind === 'refused' || kind === 'peer_rejected_credentials' || kind === 'stateless_reset';
  let error: PeersockError | undefined;
  switch (kind) {
    case 'local':
    case 'peer':
      break;
    case 'peer_transport':
    case 'local_transport':
      if (code !== 0 || kind === 'local_transport') {
        error = new TransportError(`connection closed by ${remote ? 'peer' : 'us'} with transport error 0x${code.toString(16)}${reason ? `: ${reason}` : ''}`, { errorCode: code, reason, local: !remote });
      }
      break;
    case 'idle_timeout':
      error = new IdleTimeoutError();
      break;
    case 'handshake_timeout':
      error = new HandshakeTimeoutError();
      break;
    case 'identity_mismatch':
      error = new IdentityMismatchError(undefined, {
        expected: ev.expectedKey !== undefined ? new Uint8Array(ev.expectedKey) : undefined,
        actual: ev.actualKey !== undefined ? new Uint8Array(ev.actualKey) : undefined,
      });
      break;
    case 'bad_certificate':
      error = new CertificateError(`peer presented an unusable certificate: ${reason}`);
      break;
    case 'peer_rejected_credentials':
      error = new PeerRejectedError(`peer rejected our credentials (TLS alert ${code - 0x100})`);
      break;
    case 'stateless_reset':
      // The peer lost the connection's state (it restarted): it said so.
      error = new TransportError(`peer reset the connection (stateless reset: it no longer knows it)${reason ? `: ${reason}` : ''}`, { errorCode: code, reason, local: false });
      break;
    case 'refused':
      error = new ConnectionRefusedError(`connection refused by peer${reason ? `: ${reason}` : ''}`, { reason });
      break;
    default:
      error = new TransportError(`connection closed (${kind})`, { errorCode: code, reason, local: true });
  }
  return { code, reason, remote, error };
}
