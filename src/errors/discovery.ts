/** Errors of peer discovery (src/discovery: the DHT node, records, topics). */
import { nameClass, PeersockError, type PeersockErrorOptions } from './base';

/**
 * A DHT operation found no node to do it: a put or announce that no DHT node
 * accepted (none reachable, or every one refused it, e.g. because it holds a
 * higher `seq`). `cause` has the last refusal, when there was one.
 */
export class DhtError extends PeersockError {
  /** The stable code carried by every instance. */
  static readonly code = 'ERR_PEERSOCK_DHT';
  constructor(message: string, options?: PeersockErrorOptions) {
    super(DhtError.code, message, options);
  }
  static {
    nameClass(this, 'DhtError');
  }
}
