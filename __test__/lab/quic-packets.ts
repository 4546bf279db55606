/**
 * Just enough of QUIC v1's invariant headers (RFC 8999/9000 §17) for the
 * relay to see what a datagram carries without decrypting it: the types of
 * its coalesced packets.
 */

/** The kind of one QUIC packet in a datagram. */
export type PacketKind = 'initial' | '0rtt' | 'handshake' | 'retry' | 'version-negotiation' | 'short' | 'not-quic';

const LONG_TYPES: PacketKind[] = ['initial', '0rtt', 'handshake', 'retry'];

/** Reads a QUIC variable-length integer at `off`: [value, bytes used], or null if truncated. */
function varint(b: Uint8Array, off: number): [number, number] | null {
  if (off >= b.length) return null;
  const len = 1 << (b[off]! >> 6);
  if (off + len > b.length) return null;
  let v = b[off]! & 0x3f;
  for (let i = 1; i < len; i++) v = v * 256 + b[off + i]!;
  return [v, len];
}

/**
 * The kinds of the packets coalesced in one datagram, in order. A packet
 * that does not parse ends the walk as 'not-quic' (garbage, or a corrupted header).
 */
export function packetKinds(d: Uint8Array): PacketKind[] {
  const kinds: PacketKind[] = [];
  let off = 0;
  // A datagram holds at most a few coalesced packets; the bound keeps a
  // hostile input from looping.
  for (let n = 0; n < 8 && off < d.length; n++) {
    const first = d[off]!;
    // Zeros after the last packet are padding (quiche pads datagrams this way).
    if (first === 0 && kinds.length > 0) return kinds;
    if ((first & 0x80) === 0) {
      kinds.push((first & 0x40) !== 0 ? 'short' : 'not-quic');
      return kinds;
    }
    if (off + 6 > d.length) return [...kinds, 'not-quic'];
    const version = ((d[off + 1]! << 24) | (d[off + 2]! << 16) | (d[off + 3]! << 8) | d[off + 4]!) >>> 0;
    if (version === 0) return [...kinds, 'version-negotiation'];
    let p = off + 5;
    const dcidLen = d[p]!;
    p += 1 + dcidLen;
    if (p >= d.length) return [...kinds, 'not-quic'];
    const scidLen = d[p]!;
    p += 1 + scidLen;
    const kind = LONG_TYPES[(first & 0x30) >> 4]!;
    kinds.push(kind);
    if (kind === 'retry') return kinds;
    if (kind === 'initial') {
      const tok = varint(d, p);
      if (tok === null) return [...kinds, 'not-quic'];
      p += tok[1] + tok[0];
    }
    const len = varint(d, p);
    if (len === null) return [...kinds, 'not-quic'];
    p += len[1] + len[0];
    if (p > d.length) return [...kinds, 'not-quic'];
    off = p;
  }
  return kinds;
}

/**
 * Whether a client datagram proves the client received the server's
 * Initial (RFC 9000 §8.1): it carries a Handshake or 1-RTT packet, which the
 * client can only seal with keys from the server's first flight.
 */
export function provesAddress(d: Uint8Array): boolean {
  return packetKinds(d).some((k) => k === 'handshake' || k === 'short');
}
