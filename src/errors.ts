/**
 * The peersock error hierarchy. Every error has a stable `code`; callers branch
 * on `code` or `instanceof`, never on `message`, which may change.
 */
/** Options accepted by every peersock error: the lower-level error that caused it. */
export interface PeersockErrorOptions {
  /** The underlying error (a native error, a syscall error, an abort reason, ...). */
  cause?: unknown;
}

/** Base class of every error peersock throws or emits; `code` is stable across releases. */
export class PeersockError extends Error {
  /** A stable `ERR_PEERSOCK_*` string identifying the kind of failure. */
  readonly code: string;

  /** Use a subclass where one fits; `code` should be an `ERR_PEERSOCK_*` string. */
  constructor(code: string, message: string, options?: PeersockErrorOptions) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
  }

  static {
    nameClass(this, 'PeersockError');
  }
}

/** Sets `name` on the prototype, so stacks and `util.inspect` show the class name. */
function nameClass(ctor: { prototype: Error }, name: string): void {
  Object.defineProperty(ctor.prototype, 'name', { value: name, writable: true, configurable: true });
}

/** An argument was missing, of the wrong type or out of range (including a disabled feature). */
export class InvalidArgumentError extends PeersockError {
  /** The stable code carried by every instance. */
  static readonly code = 'ERR_PEERSOCK_INVALID_ARGUMENT';
  constructor(message: string, options?: PeersockErrorOptions) {
    super(InvalidArgumentError.code, message, options);
  }
  static {
    nameClass(this, 'InvalidArgumentError');
  }
}

/** The peer proved possession of a different key than the one we dialed. */
export class IdentityMismatchError extends PeersockError {
  /** The stable code carried by every instance. */
  static readonly code = 'ERR_PEERSOCK_IDENTITY_MISMATCH';
  /** The key we dialed, when known. */
  readonly expected: Uint8Array | undefined;
  /** The key the peer presented, when known. */
  readonly actual: Uint8Array | undefined;
  constructor(
    message = 'peer presented a different key than the one dialed',
    init: { expected?: Uint8Array | undefined; actual?: Uint8Array | undefined } & PeersockErrorOptions = {},
  ) {
    super(IdentityMismatchError.code, message, init);
    this.expected = init.expected;
    this.actual = init.actual;
  }
  static {
    nameClass(this, 'IdentityMismatchError');
  }
}

/** The peer's certificate was unusable: not exactly one, not Ed25519, or malformed. */
export class CertificateError extends PeersockError {
  /** The stable code carried by every instance. */
  static readonly code = 'ERR_PEERSOCK_BAD_CERTIFICATE';
  constructor(message = 'peer presented an unusable certificate', options?: PeersockErrorOptions) {
    super(CertificateError.code, message, options);
  }
  static {
    nameClass(this, 'CertificateError');
  }
}

/** The peer refused our certificate (for instance, it pinned a different key for us). */
export class PeerRejectedError extends PeersockError {
  /** The stable code carried by every instance. */
  static readonly code = 'ERR_PEERSOCK_PEER_REJECTED_CREDENTIALS';
  constructor(message = 'peer rejected our credentials', options?: PeersockErrorOptions) {
    super(PeerRejectedError.code, message, options);
  }
  static {
    nameClass(this, 'PeerRejectedError');
  }
}

/** The handshake did not complete within the configured time. */
export class HandshakeTimeoutError extends PeersockError {
  /** The stable code carried by every instance. */
  static readonly code = 'ERR_PEERSOCK_HANDSHAKE_TIMEOUT';
  constructor(message = 'handshake timed out', options?: PeersockErrorOptions) {
    super(HandshakeTimeoutError.code, message, options);
  }
  static {
    nameClass(this, 'HandshakeTimeoutError');
  }
}

/** The peer (or our own accept hook) refused the connection; `reason` says why. */
export class ConnectionRefusedError extends PeersockError {
  /** The stable code carried by every instance. */
  static readonly code = 'ERR_PEERSOCK_CONNECTION_REFUSED';
  /** The refusal reason sent by the refusing side ('' when none was given). */
  readonly reason: string;
  constructor(message = 'connection refused', init: { reason?: string } & PeersockErrorOptions = {}) {
    super(ConnectionRefusedError.code, message, init);
    this.reason = init.reason ?? '';
  }
  static {
    nameClass(this, 'ConnectionRefusedError');
  }
}

/** The peer closed the connection with an application error code and reason. */
export class PeerClosedError extends PeersockError {
  /** The stable code carried by every instance. */
  static readonly code = 'ERR_PEERSOCK_PEER_CLOSED';
  /** The application error code from the peer's CONNECTION_CLOSE frame. */
  readonly appCode: number;
  /** The reason phrase from the peer's CONNECTION_CLOSE frame. */
  readonly reason: string;
  constructor(message: string, init: { appCode: number; reason?: string } & PeersockErrorOptions) {
    super(PeerClosedError.code, message, init);
    this.appCode = init.appCode;
    this.reason = init.reason ?? '';
  }
  static {
    nameClass(this, 'PeerClosedError');
  }
}

/** The connection was silent for longer than the idle timeout and was dropped. */
export class IdleTimeoutError extends PeersockError {
  /** The stable code carried by every instance. */
  static readonly code = 'ERR_PEERSOCK_IDLE_TIMEOUT';
  constructor(message = 'connection idle timeout', options?: PeersockErrorOptions) {
    super(IdleTimeoutError.code, message, options);
  }
  static {
    nameClass(this, 'IdleTimeoutError');
  }
}

/** A QUIC transport error closed the connection; `local` is true when we detected it. */
export class TransportError extends PeersockError {
  /** The stable code carried by every instance. */
  static readonly code = 'ERR_PEERSOCK_TRANSPORT';
  /** The QUIC transport error code (RFC 9000 section 20.1, or a crypto error 0x1xx). */
  readonly errorCode: number;
  /** The reason phrase of the CONNECTION_CLOSE frame. */
  readonly reason: string;
  /** True when this endpoint raised the error, false when the peer sent it. */
  readonly local: boolean;
  constructor(
    message: string,
    init: { errorCode: number; reason?: string; local: boolean } & PeersockErrorOptions,
  ) {
    super(TransportError.code, message, init);
    this.errorCode = init.errorCode;
    this.reason = init.reason ?? '';
    this.local = init.local;
  }
  static {
    nameClass(this, 'TransportError');
  }
}

/** The peer reset the stream (RESET_STREAM): data it had sent may be lost. */
export class StreamResetError extends PeersockError {
  /** The stable code carried by every instance. */
  static readonly code = 'ERR_PEERSOCK_STREAM_RESET';
  /** The application error code from the RESET_STREAM frame. */
  readonly appCode: number;
  constructor(message: string, init: { appCode: number } & PeersockErrorOptions) {
    super(StreamResetError.code, message, init);
    this.appCode = init.appCode;
  }
  static {
    nameClass(this, 'StreamResetError');
  }
}

/** The peer asked us to stop sending on the stream (STOP_SENDING). */
export class StreamStoppedError extends PeersockError {
  /** The stable code carried by every instance. */
  static readonly code = 'ERR_PEERSOCK_STREAM_STOPPED';
  /** The application error code from the STOP_SENDING frame. */
  readonly appCode: number;
  constructor(message: string, init: { appCode: number } & PeersockErrorOptions) {
    super(StreamStoppedError.code, message, init);
    this.appCode = init.appCode;
  }
  static {
    nameClass(this, 'StreamStoppedError');
  }
}

/** A datagram was larger than the path allows; send it on a stream instead. */
export class DatagramTooLargeError extends PeersockError {
  /** The stable code carried by every instance. */
  static readonly code = 'ERR_PEERSOCK_DATAGRAM_TOO_LARGE';
  /** The largest datagram payload currently allowed, when known. */
  readonly maxSize: number | undefined;
  constructor(message = 'datagram too large', init: { maxSize?: number | undefined } & PeersockErrorOptions = {}) {
    super(DatagramTooLargeError.code, message, init);
    this.maxSize = init.maxSize;
  }
  static {
    nameClass(this, 'DatagramTooLargeError');
  }
}

/** The socket, connection or stream is already closed (or closing). */
export class ClosedError extends PeersockError {
  /** The stable code carried by every instance. */
  static readonly code = 'ERR_PEERSOCK_CLOSED';
  constructor(message = 'closed', options?: PeersockErrorOptions) {
    super(ClosedError.code, message, options);
  }
  static {
    nameClass(this, 'ClosedError');
  }
}

/** The peer's stream limit is reached; wait for a stream to finish and try again. */
export class StreamLimitError extends PeersockError {
  /** The stable code carried by every instance. */
  static readonly code = 'ERR_PEERSOCK_STREAM_LIMIT';
  constructor(message = 'stream limit reached', options?: PeersockErrorOptions) {
    super(StreamLimitError.code, message, options);
  }
  static {
    nameClass(this, 'StreamLimitError');
  }
}

/** The operation was aborted through its `AbortSignal`; `cause` is the signal's reason. */
export class AbortError extends PeersockError {
  /** The stable code carried by every instance. */
  static readonly code = 'ERR_PEERSOCK_ABORTED';
  constructor(message = 'the operation was aborted', options?: PeersockErrorOptions) {
    super(AbortError.code, message, options);
  }
  static {
    nameClass(this, 'AbortError');
  }
}

/** The UDP socket failed (bind, send, ...); `cause` is the system error. */
export class SocketError extends PeersockError {
  /** The stable code carried by every instance. */
  static readonly code = 'ERR_PEERSOCK_SOCKET';
  /** The system error code, e.g. `EADDRINUSE`, taken from `cause.code` unless given. */
  readonly syscallCode: string | undefined;
  constructor(message: string, init: { syscallCode?: string | undefined } & PeersockErrorOptions = {}) {
    super(SocketError.code, message, init);
    const causeCode = (init.cause as { code?: unknown } | undefined)?.code;
    this.syscallCode = init.syscallCode ?? (typeof causeCode === 'string' ? causeCode : undefined);
  }
  static {
    nameClass(this, 'SocketError');
  }
}

/** A bug or an unexpected native failure; please report it with the `cause`. */
export class InternalError extends PeersockError {
  /** The stable code carried by every instance. */
  static readonly code = 'ERR_PEERSOCK_INTERNAL';
  constructor(message = 'internal error', options?: PeersockErrorOptions) {
    super(InternalError.code, message, options);
  }
  static {
    nameClass(this, 'InternalError');
  }
}

/**
 * The introducer is not connected to the peer it was asked to introduce (or
 * was asked to introduce a peer to itself).
 */
export class NotConnectedError extends PeersockError {
  /** The stable code carried by every instance. */
  static readonly code = 'ERR_PEERSOCK_NOT_CONNECTED';
  constructor(message = 'not connected to that peer', options?: PeersockErrorOptions) {
    super(NotConnectedError.code, message, options);
  }
  static {
    nameClass(this, 'NotConnectedError');
  }
}

/** Too many operations of this kind are in progress (introductions, say); try again later. */
export class BusyError extends PeersockError {
  /** The stable code carried by every instance. */
  static readonly code = 'ERR_PEERSOCK_BUSY';
  constructor(message = 'busy', options?: PeersockErrorOptions) {
    super(BusyError.code, message, options);
  }
  static {
    nameClass(this, 'BusyError');
  }
}

/**
 * A message handler threw (or rejected with) something that is not a
 * PeersockError. Its code is what the requester's RemoteError carries as
 * `remoteCode`; `cause` is what the handler threw.
 */
export class HandlerFailedError extends PeersockError {
  /** The stable code carried by every instance. */
  static readonly code = 'ERR_PEERSOCK_HANDLER_FAILED';
  constructor(message = 'handler failed', options?: PeersockErrorOptions) {
    super(HandlerFailedError.code, message, options);
  }
  static {
    nameClass(this, 'HandlerFailedError');
  }
}

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
  if (info.remote) {
    return new PeerClosedError(`peer closed the connection (code ${info.code}${info.reason ? `: ${info.reason}` : ''})`, { appCode: info.code, reason: info.reason });
  }
  return new ClosedError('connection closed');
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
