/** Errors of finding peers by key or topic (the Discovery extension, L3). */
import { PeersockError, nameClass, type PeersockErrorOptions } from './base';

/** No record for the key was found: not on the LAN, not in the DHT (or none that verified). */
export class PeerNotFoundError extends PeersockError {
  /** The stable code carried by every instance. */
  static readonly code = 'ERR_PEERSOCK_PEER_NOT_FOUND';
  /** The key that was looked up. */
  readonly publicKey: Uint8Array | undefined;
  constructor(message = 'no record of the peer was found', init: { publicKey?: Uint8Array } & PeersockErrorOptions = {}) {
    super(PeerNotFoundError.code, message, init);
    this.publicKey = init.publicKey;
  }
  static {
    nameClass(this, 'PeerNotFoundError');
  }
}

/**
 * A record was found, but none of its addresses and introducers led to a
 * connection that proved the key. `attempts` holds each way tried and why it
 * failed (an IdentityMismatchError names an impostor at that address).
 */
export class PeerUnreachableError extends PeersockError {
  /** The stable code carried by every instance. */
  static readonly code = 'ERR_PEERSOCK_PEER_UNREACHABLE';
  /** Each address or introducer tried, with its error. */
  readonly attempts: ReadonlyArray<{ via: string; error: PeersockError }>;
  constructor(message: string, init: { attempts?: ReadonlyArray<{ via: string; error: PeersockError }> } & PeersockErrorOptions = {}) {
    super(PeerUnreachableError.code, message, init);
    this.attempts = init.attempts ?? [];
  }
  static {
    nameClass(this, 'PeerUnreachableError');
  }
}

/** Finding or reaching a peer took longer than the `timeout` given. */
export class DiscoveryTimeoutError extends PeersockError {
  /** The stable code carried by every instance. */
  static readonly code = 'ERR_PEERSOCK_DISCOVERY_TIMEOUT';
  constructor(message = 'finding the peer timed out', options?: PeersockErrorOptions) {
    super(DiscoveryTimeoutError.code, message, options);
  }
  static {
    nameClass(this, 'DiscoveryTimeoutError');
  }
}

/** `publish()` stored the record on no DHT node (none reachable, or each holds a higher `seq`). */
export class PublishError extends PeersockError {
  /** The stable code carried by every instance. */
  static readonly code = 'ERR_PEERSOCK_PUBLISH_FAILED';
  constructor(message = 'the record was not stored', options?: PeersockErrorOptions) {
    super(PublishError.code, message, options);
  }
  static {
    nameClass(this, 'PublishError');
  }
}
