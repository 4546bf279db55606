/**
 * The introduction protocol's offer codec: what the introducer sends the
 * dialer (the reply to 'connect') and the target ('introduce'). Keys are 32
 * bytes, addresses `len · port(u16) · ip text` (see observed.ts), pair ids
 * u32 big-endian, tokens 16 bytes.
 */
import { DecodeError } from '../messages/errors';
import type { AddressInfo } from '../transport';
import { decodeObserved, encodeObserved } from './observed';
import { TOKEN_LENGTH } from './wire';

/** Why the introducer gives no relay (byte in the reply). */
export const RELAY_OK = 0;
export const RELAY_OFF = 1;
export const RELAY_LIMIT = 2;
export const RELAY_UNWANTED = 3;

function putAddr(parts: Uint8Array[], a: AddressInfo): void {
  const e = encodeObserved(a);
  parts.push(Uint8Array.of(e.length), e);
}

class Reader {
  off = 0;
  constructor(readonly b: Uint8Array) {}
  take(n: number): Uint8Array {
    if (this.off + n > this.b.length) throw new DecodeError('introduction: truncated message');
    const v = this.b.subarray(this.off, this.off + n);
    this.off += n;
    return v;
  }
  u8(): number {
    return this.take(1)[0]!;
  }
  u32(): number {
    return Buffer.from(this.take(4)).readUInt32BE(0);
  }
  addr(): AddressInfo {
    return decodeObserved(this.take(this.u8()));
  }
  end(): void {
    if (this.off !== this.b.length) throw new DecodeError('introduction: trailing bytes');
  }
}

/** `n` as 4 bytes, big-endian. */
export const u32 = (n: number): Uint8Array => {
  const b = Buffer.allocUnsafe(4);
  b.writeUInt32BE(n >>> 0, 0);
  return b;
};
/** The parts as one buffer. */
export const concat = (parts: Uint8Array[]): Uint8Array => Buffer.concat(parts);
/** The introducer's offer: sent to the dialer (reply) and to the target ('introduce'). */
export interface Offer {
  key: Uint8Array;
  pairId: number;
  relay: number;
  token: Uint8Array;
  peer: AddressInfo;
  you: AddressInfo;
}

/** @internal Exported for tests. */
export function encodeOffer(o: Offer): Uint8Array {
  const parts = [o.key, u32(o.pairId), Uint8Array.of(o.relay), o.token];
  putAddr(parts, o.peer);
  putAddr(parts, o.you);
  return concat(parts);
}

/** @internal Exported for tests: throws DecodeError on anything malformed. */
export function decodeOffer(b: Uint8Array): Offer {
  if (!(b instanceof Uint8Array)) throw new DecodeError('introduction: not bytes');
  const r = new Reader(b);
  const o = { key: new Uint8Array(r.take(32)), pairId: r.u32(), relay: r.u8(), token: new Uint8Array(r.take(TOKEN_LENGTH)), peer: r.addr(), you: r.addr() };
  r.end();
  if (o.pairId === 0 || o.relay > RELAY_UNWANTED) throw new DecodeError('introduction: bad pair');
  return o;
}

