/** The base class of the peersock error hierarchy (see ../errors.ts). */
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
/** @internal */
export function nameClass(ctor: { prototype: Error }, name: string): void {
  Object.defineProperty(ctor.prototype, 'name', { value: name, writable: true, configurable: true });
}
