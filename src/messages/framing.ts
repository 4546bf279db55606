/**
 * Length-prefixed framing of envelopes on a stream: a varint length, then
 * that many bytes. The reader refuses a frame larger than the limit as soon
 * as its length is known, before buffering any of it.
 */
import { MessageTooLargeError } from './errors';

/** Writes `n` as a protobuf-style varint into `out` at `off`; returns the new offset. */
export function writeVarint(out: Uint8Array, off: number, n: number): number {
  while (n >= 0x80) {
    out[off++] = (n % 0x80) | 0x80;
    n = Math.floor(n / 0x80);
  }
  out[off++] = n;
  return off;
}

/** Bytes a varint of `n` takes. */
export function varintLength(n: number): number {
  let len = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 0x80);
    len++;
  }
  return len;
}

/** Prefixes `body` with its varint length. */
export function frame(body: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(varintLength(body.length) + body.length);
  const off = writeVarint(out, 0, body.length);
  out.set(body, off);
  return out;
}

/** Frames bigger than this are assembled in place as their bytes arrive (default). */
const BIG_FRAME = 64 * 1024;
const EMPTY = Buffer.alloc(0);

/** Splits a byte stream into frames; `push` returns the complete ones. */
export class FrameReader {
  readonly #max: number;
  #chunks: Buffer[] = [];
  #buffered = 0;
  #need = -1; // body length of the frame being read, -1 while reading its length
  /** A big frame being assembled in place, and how much of it has arrived. */
  #body: Buffer | null = null;
  #bodyOff = 0;

  readonly #big: number;

  /** `bigFrame`: frames over this many bytes are assembled in place as they arrive. */
  constructor(maxFrame: number, bigFrame = BIG_FRAME) {
    this.#max = maxFrame;
    this.#big = bigFrame;
  }

  /** Bytes held for an incomplete frame. */
  get buffered(): number {
    return this.#buffered + this.#bodyOff;
  }

  /** Feeds bytes; returns the frames completed. Throws MessageTooLargeError. */
  push(chunk: Buffer): Buffer[] {
    const out: Buffer[] = [];
    if (this.#body !== null) {
      chunk = this.#fill(chunk, out);
      if (this.#body !== null) return out;
    }
    if (chunk.length > 0) {
      this.#chunks.push(chunk);
      this.#buffered += chunk.length;
    }
    for (;;) {
      if (this.#need < 0) {
        const len = this.#readLength();
        if (len < 0) return out;
        if (len > this.#max) throw new MessageTooLargeError(`peer announced a ${len}-byte message (limit ${this.#max})`, { size: len, limit: this.#max });
        this.#need = len;
      }
      if (this.#buffered < this.#need) {
        if (this.#need > this.#big && this.#buffered >= this.#need / 4) {
          // A big frame is assembled in place once a quarter of it has come
          // (so a peer cannot make us allocate much more than it sent): the
          // rest is copied a chunk at a time, not all at once when the last
          // one lands (a stall of milliseconds for 16 MiB).
          this.#body = Buffer.allocUnsafe(this.#need);
          this.#bodyOff = 0;
          const held = this.#chunks;
          this.#chunks = [];
          this.#buffered = 0;
          for (const c of held) this.#fill(c, out);
        }
        return out;
      }
      out.push(this.#take(this.#need));
      this.#need = -1;
    }
  }

  /** Copies what `chunk` has of the big frame being assembled; returns the rest. */
  #fill(chunk: Buffer, out: Buffer[]): Buffer {
    const body = this.#body!;
    const k = Math.min(chunk.length, body.length - this.#bodyOff);
    chunk.copy(body, this.#bodyOff, 0, k);
    this.#bodyOff += k;
    if (this.#bodyOff === body.length) {
      out.push(body);
      this.#body = null;
      this.#bodyOff = 0;
      this.#need = -1;
    }
    return k === chunk.length ? EMPTY : chunk.subarray(k);
  }

  /** Reads and consumes a varint length, or returns -1 if incomplete. */
  #readLength(): number {
    let value = 0;
    let scale = 1;
    let i = 0;
    for (const c of this.#chunks) {
      for (let j = 0; j < c.length; j++) {
        const b = c[j]!;
        value += (b & 0x7f) * scale;
        i++;
        if ((b & 0x80) === 0) {
          this.#take(i);
          return value;
        }
        scale *= 0x80;
        if (i >= 8) throw new MessageTooLargeError('malformed frame length', { size: Infinity, limit: this.#max });
      }
    }
    return -1;
  }

  #take(n: number): Buffer {
    this.#buffered -= n;
    const first = this.#chunks[0];
    if (first !== undefined && first.length >= n) {
      const part = first.subarray(0, n);
      if (first.length === n) this.#chunks.shift();
      else this.#chunks[0] = first.subarray(n);
      return part;
    }
    const out = Buffer.allocUnsafe(n);
    let off = 0;
    while (off < n) {
      const c = this.#chunks[0]!;
      const k = Math.min(c.length, n - off);
      c.copy(out, off, 0, k);
      off += k;
      if (k === c.length) this.#chunks.shift();
      else this.#chunks[0] = c.subarray(k);
    }
    return out;
  }
}
