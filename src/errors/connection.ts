/** Errors of sockets, connections and streams, and the general ones (L1 and below). */
import { PeersockError, nameClass, type PeersockErrorOptions } from './base';

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
