/**
 * BEP 44 items as a DhtNode checks them: the Ed25519 signature check it
 * gives bittorrent-dht, and the checks `get` makes itself on what a lookup
 * returns.
 */
import { createHash, createPublicKey, verify as cryptoVerify } from 'node:crypto';

import { keysEqual } from '../keys';
import { bencodedStringLength, signedPart } from './dht-bencode';
import { MAX_RECORD_VALUE } from './record';

/** A verified BEP 44 item: its value and sequence number. */
export interface DhtItem {
  v: Uint8Array;
  seq: number;
}

/** The DHT target of the item `k` publishes with `salt`: SHA-1 of the key then the salt (BEP 44). */
export function itemTarget(k: Uint8Array, salt: Uint8Array): Buffer {
  return createHash('sha1').update(k).update(salt).digest();
}

/** DER SubjectPublicKeyInfo header of a raw 32-byte Ed25519 public key. */
const ED25519_SPKI = Buffer.from('302a300506032b6570032100', 'hex');

/**
 * Checks an Ed25519 signature (used by bittorrent-dht for every item it
 * stores or receives, and by `get`); never throws, whatever a peer sent.
 * Signatures are made with tweetnacl (`put`), but checked with node:crypto
 * (OpenSSL): the same Ed25519, about 30 times faster, which matters to a
 * node that checks every reply of every lookup and every item it stores.
 */
export function verifySignature(sig: unknown, msg: unknown, pk: unknown): boolean {
  if (!(sig instanceof Uint8Array) || sig.length !== 64) return false;
  if (!(pk instanceof Uint8Array) || pk.length !== 32) return false;
  if (!(msg instanceof Uint8Array)) return false;
  try {
    const key = createPublicKey({ key: Buffer.concat([ED25519_SPKI, pk]), format: 'der', type: 'spki' });
    return cryptoVerify(null, msg, key, sig);
  } catch {
    return false;
  }
}

/**
 * The item in a get's result if it is a valid record item for `k`: its key
 * is `k`, its value a byte string within BEP 44's limit, its seq a
 * non-negative integer, and its signature verifies over (salt, seq, v).
 * bittorrent-dht checks the signature too; this does not rely on it.
 */
export function checkItem(res: unknown, k: Uint8Array, salt: Uint8Array): DhtItem | null {
  if (res === null || typeof res !== 'object') return null;
  const r = res as { v?: unknown; k?: unknown; sig?: unknown; seq?: unknown };
  if (!(r.v instanceof Uint8Array) || !(r.k instanceof Uint8Array) || !keysEqual(r.k, k)) return null;
  if (typeof r.seq !== 'number' || !Number.isSafeInteger(r.seq) || r.seq < 0) return null;
  if (r.v.length === 0 || bencodedStringLength(r.v) > MAX_RECORD_VALUE) return null;
  if (!verifySignature(r.sig, signedPart(r.seq, r.v, salt), k)) return null;
  return { v: new Uint8Array(r.v), seq: r.seq };
}
