/**
 * Topics: peers that announce the same topic find each other with BEP 5
 * (`announce_peer` / `get_peers`) on one info-hash derived from the topic.
 */
import { createHash } from 'node:crypto';

import { InvalidArgumentError } from '../errors';

/** The prefix hashed before a topic's bytes, so peersock topics do not collide with torrents. */
export const TOPIC_PREFIX = 'peersock/topic/v1\n';

/** The longest topic accepted, in bytes. */
export const MAX_TOPIC_LENGTH = 1024;

/**
 * The 20-byte info-hash of a topic: SHA-1 of the UTF-8 bytes of
 * `TOPIC_PREFIX` followed by the topic's bytes (a string topic is taken as
 * UTF-8). The same topic always gives the same hash, in every peersock
 * version that uses `peersock/topic/v1`. Anyone who knows the topic can
 * look up (and announce into) it: a topic is a meeting point, not a secret.
 * Throws InvalidArgumentError for an empty topic, one longer than
 * `MAX_TOPIC_LENGTH` bytes, or one that is neither a string nor a Uint8Array.
 */
export function topicHash(topic: Uint8Array | string): Uint8Array {
  let bytes: Uint8Array;
  if (typeof topic === 'string') bytes = Buffer.from(topic, 'utf8');
  else if (topic instanceof Uint8Array) bytes = topic;
  else throw new InvalidArgumentError('a topic must be a string or a Uint8Array');
  if (bytes.length === 0 || bytes.length > MAX_TOPIC_LENGTH) throw new InvalidArgumentError(`a topic must have 1..${MAX_TOPIC_LENGTH} bytes`);
  return new Uint8Array(createHash('sha1').update(TOPIC_PREFIX, 'utf8').update(bytes).digest());
}
