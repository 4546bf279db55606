/**
 * Hand-made QUIC v1 client Initials (RFC 9000 §17.2.2, RFC 9001 §5): sealed
 * with the Initial keys derived from their DCID, header-protected, padded to
 * 1200 bytes, carrying any token. A server gets through its cheap checks
 * (size, decryption) to the token with one of these, which a random payload
 * never does. The payload is a PING and padding: no TLS, so a server that
 * lets one in holds a handshake that never completes.
 *
 * Also: reading a Retry packet's token and source CID, and minting a
 * peersock retry token with a known identity seed (the format of
 * crates/peersock-core/src/retry.rs), to make expired or moved ones.
 */
import { createCipheriv, createHash, createHmac } from 'node:crypto';
import { isIPv4 } from 'node:net';

/** RFC 9001 §5.2. */
const INITIAL_SALT_V1 = Buffer.from('38762cf7f55934b34d179ae6a4c80cadccbb7f0a', 'hex');
const TAG_LEN = 16;
const PN_LEN = 4;

/** HKDF-Expand-Label (RFC 8446 §7.1), one HMAC block: outputs of at most 32 bytes. */
function expandLabel(secret: Buffer, label: string, len: number): Buffer {
  const full = Buffer.from(`tls13 ${label}`);
  const info = Buffer.concat([Buffer.from([len >> 8, len & 0xff, full.length]), full, Buffer.from([0, 1])]);
  return createHmac('sha256', secret).update(info).digest().subarray(0, len);
}

/** The client's Initial packet protection keys for a DCID (RFC 9001 §5.2). */
export function clientInitialKeys(dcid: Uint8Array): { key: Buffer; iv: Buffer; hp: Buffer } {
  const prk = createHmac('sha256', INITIAL_SALT_V1).update(dcid).digest();
  const secret = expandLabel(prk, 'client in', 32);
  return { key: expandLabel(secret, 'quic key', 16), iv: expandLabel(secret, 'quic iv', 12), hp: expandLabel(secret, 'quic hp', 16) };
}

/** A QUIC variable-length integer in its shortest form (values below 2^30). */
function varint(v: number): Buffer {
  if (v < 64) return Buffer.from([v]);
  if (v < 16384) return Buffer.from([0x40 | (v >> 8), v & 0xff]);
  const b = Buffer.alloc(4);
  b.writeUInt32BE((0x80 << 24) | v);
  return b;
}

/** What goes into a hand-made client Initial. */
export interface InitialSpec {
  /** Destination CID (8..20 bytes): its Initial keys seal the packet. */
  dcid: Uint8Array;
  /** Source CID (0..20 bytes). */
  scid: Uint8Array;
  /** The token field (empty: none). */
  token?: Uint8Array;
  /** Packet number (default 0). */
  pn?: number;
  /** Datagram size, at least 1200 for a client Initial (default 1200). */
  size?: number;
}

/**
 * A protected client Initial carrying a PING, padded to `size` bytes: what
 * a server decrypts with the keys of `dcid` exactly as it would a real one.
 */
export function clientInitial(spec: InitialSpec): Buffer {
  const token = Buffer.from(spec.token ?? new Uint8Array(0));
  const size = spec.size ?? 1200;
  const pn = spec.pn ?? 0;
  const pnBytes = Buffer.alloc(PN_LEN);
  pnBytes.writeUInt32BE(pn);
  const fixed = Buffer.concat([
    Buffer.from([0xc0 | (PN_LEN - 1), 0, 0, 0, 1, spec.dcid.length]),
    spec.dcid,
    Buffer.from([spec.scid.length]),
    spec.scid,
    varint(token.length),
    token,
  ]);
  // The Length field (two-byte form) covers the packet number, payload and tag.
  const plainLen = size - fixed.length - 2 - PN_LEN - TAG_LEN;
  if (plainLen < 1) throw new Error(`an Initial of ${size} bytes has no room for a payload`);
  const lengthField = Buffer.from([0x40 | ((PN_LEN + plainLen + TAG_LEN) >> 8), (PN_LEN + plainLen + TAG_LEN) & 0xff]);
  const header = Buffer.concat([fixed, lengthField, pnBytes]);
  const plain = Buffer.alloc(plainLen); // PADDING frames (0x00)...
  plain[0] = 0x01; // ...after one PING

  const { key, iv, hp } = clientInitialKeys(spec.dcid);
  const nonce = Buffer.from(iv);
  for (let i = 0; i < 8; i++) nonce[4 + i]! ^= Number((BigInt(pn) >> BigInt(8 * (7 - i))) & 0xffn);
  const aead = createCipheriv('aes-128-gcm', key, nonce);
  aead.setAAD(header);
  const sealed = Buffer.concat([aead.update(plain), aead.final(), aead.getAuthTag()]);

  // Header protection: the sample starts 4 bytes after the packet number's
  // start, which with a 4-byte packet number is the first sealed byte.
  const ecb = createCipheriv('aes-128-ecb', hp, null);
  ecb.setAutoPadding(false);
  const mask = ecb.update(sealed.subarray(0, 16));
  const pnOff = header.length - PN_LEN;
  header[0]! ^= mask[0]! & 0x0f;
  for (let i = 0; i < PN_LEN; i++) header[pnOff + i]! ^= mask[1 + i]!;
  return Buffer.concat([header, sealed]);
}

/** The source CID and token of a Retry packet (RFC 9000 §17.2.5), or null if `d` is not one. */
export function parseRetry(d: Uint8Array): { scid: Buffer; token: Buffer } | null {
  if (d.length < 7 || (d[0]! & 0xf0) !== 0xf0) return null;
  let off = 5;
  const dcidLen = d[off]!;
  off += 1 + dcidLen;
  const scidLen = d[off]!;
  if (off + 1 + scidLen > d.length - TAG_LEN) return null;
  const scid = Buffer.from(d.subarray(off + 1, off + 1 + scidLen));
  off += 1 + scidLen;
  return { scid, token: Buffer.from(d.subarray(off, d.length - TAG_LEN)) };
}

/** IPv6 (or v4-mapped IPv6) bytes of an address, as the token tag binds it. */
function ipBytes(address: string): Buffer {
  if (isIPv4(address)) return Buffer.concat([Buffer.alloc(10), Buffer.from([0xff, 0xff]), Buffer.from(address.split('.').map(Number))]);
  throw new Error(`only IPv4 addresses here, not ${address}`);
}

/**
 * A peersock retry token as the endpoint with identity `seed` (the first 32
 * bytes of a tweetnacl secret key) mints it for `peer` and original DCID
 * `odcid` at `mintedMs` (ms since the Unix epoch).
 */
export function mintRetryToken(seed: Uint8Array, peer: { address: string; port: number }, odcid: Uint8Array, mintedMs: number): Buffer {
  const key = createHash('sha256').update('peersock retry token v1').update(seed).digest();
  const ms = Buffer.alloc(8);
  ms.writeBigUInt64BE(BigInt(Math.floor(mintedMs)));
  const body = Buffer.concat([Buffer.from([1]), ms, Buffer.from([odcid.length]), odcid]);
  const port = Buffer.alloc(2);
  port.writeUInt16BE(peer.port);
  const tag = createHmac('sha256', key).update(body).update(ipBytes(peer.address)).update(port).digest().subarray(0, 16);
  return Buffer.concat([body, tag]);
}
