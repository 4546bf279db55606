/**
 * The non-QUIC datagrams of NAT traversal, sent from the QUIC socket's own
 * port: punches and relay frames. Every one starts with the 4-byte magic
 * 1f 70 73 6e; the first byte has the QUIC fixed bit (0x40) clear, so the
 * socket never hands them to the QUIC core (the core only sees datagrams with
 * that bit set), and the rest tells them apart from other raw datagrams.
 *
 *   punch:      magic · 0x01 · token (16 bytes)
 *   relay-to:   magic · 0x02 · pair id (u32, big-endian) · QUIC packet   (peer → relay)
 *   relay-from: magic · 0x03 · pair id (u32, big-endian) · QUIC packet   (relay → peer)
 *
 * The relayed QUIC packet is opaque to the relay: it is encrypted end to end
 * between the two peers' keys.
 */
export const MAGIC0 = 0x1f;
const MAGIC = [MAGIC0, 0x70, 0x73, 0x6e] as const;

/** Frame kinds (byte 4). */
export const PUNCH = 1;
export const RELAY_TO = 2;
export const RELAY_FROM = 3;

/** Bytes before the relayed packet. */
export const RELAY_HEADER = 9;
/** Length of a punch token. */
export const TOKEN_LENGTH = 16;
const PUNCH_LENGTH = 5 + TOKEN_LENGTH;

/** The frame kind of `d`, or 0 when it is not one of ours. */
export function frameKind(d: Uint8Array): number {
  if (d.length < 5 || d[0] !== MAGIC[0] || d[1] !== MAGIC[1] || d[2] !== MAGIC[2] || d[3] !== MAGIC[3]) return 0;
  const k = d[4]!;
  if (k === PUNCH) return d.length === PUNCH_LENGTH ? PUNCH : 0;
  if (k === RELAY_TO || k === RELAY_FROM) return d.length > RELAY_HEADER ? k : 0;
  return 0;
}

/** A punch datagram carrying `token`. */
export function punchFrame(token: Uint8Array): Buffer {
  const b = Buffer.allocUnsafe(PUNCH_LENGTH);
  b.set(MAGIC, 0);
  b[4] = PUNCH;
  b.set(token, 5);
  return b;
}

/** The token of a punch frame (a view). */
export function punchToken(d: Uint8Array): Uint8Array {
  return d.subarray(5, 5 + TOKEN_LENGTH);
}

/** A relay frame of `kind` around `packet` (copied). */
export function relayFrame(kind: number, pairId: number, packet: Uint8Array): Buffer {
  const b = Buffer.allocUnsafe(RELAY_HEADER + packet.length);
  b.set(MAGIC, 0);
  b[4] = kind;
  b.writeUInt32BE(pairId >>> 0, 5);
  b.set(packet, RELAY_HEADER);
  return b;
}

/** The pair id of a relay frame. */
export function relayPairId(d: Uint8Array): number {
  return ((d[5]! << 24) | (d[6]! << 16) | (d[7]! << 8) | d[8]!) >>> 0;
}
