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

/** Where a complete frame is: `buf[start..end]` (valid for as long as the caller keeps `buf`). */
export type FrameSink = (buf: Buffer, start: number, end: number) => void;

/**
 * Splits a byte stream into frames: `each` hands every complete one to a
 * function as a position in the received chunk (no copy, no view), `push`
 * returns them as Buffers. A frame split over chunks is assembled into a
 * Buffer of its own.
 */
export class FrameReader {
  readonly #max: number;
  #chunks: Buffer[] = [];
  /** Bytes of `#chunks[0]` already consumed. */
  #headOff = 0;
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

  /** Feeds bytes; returns the frames completed. Throws MessageTooLargeError (and then returns none). */
  push(chunk: Buffer): Buffer[] {
    const out: Buffer[] = [];
    this.each(chunk, (buf, start, end) => out.push(start === 0 && end === buf.length ? buf : buf.subarray(start, end)));
    return out;
  }

  /**
   * Feeds bytes and calls `fn` with each frame completed, in order. Throws
   * MessageTooLargeError once a frame's length is over the limit (frames
   * before it were delivered). The reader's state is consistent whenever
   * `fn` runs.
   */
  each(chunk: Buffer, fn: FrameSink): void {
    if (this.#body !== null) {
      chunk = this.#fill(chunk, fn);
      if (this.#body !== null) return;
    }
    if (chunk.length > 0) {
      this.#chunks.push(chunk);
      this.#buffered += chunk.length;
    }
    for (;;) {
      if (this.#need < 0) {
        const len = this.#readLength();
        if (len < 0) return;
        if (len > this.#max) throw new MessageTooLargeError(`peer announced a ${len}-byte message (limit ${this.#max})`, { size: len, limit: this.#max });
        this.#need = len;
      }
      const need = this.#need;
      if (this.#buffered < need) {
        if (need > this.#big && this.#buffered >= need / 4) {
          // A big frame is assembled in place once a quarter of it has come
          // (so a peer cannot make us allocate much more than it sent): the
          // rest is copied a chunk at a time, not all at once when the last
          // one lands (a stall of milliseconds for 16 MiB).
          this.#body = Buffer.allocUnsafe(need);
          this.#bodyOff = 0;
          const held = this.#chunks;
          const off = this.#headOff;
          this.#chunks = [];
          this.#headOff = 0;
          this.#buffered = 0;
          for (let i = 0; i < held.length; i++) this.#fill(i === 0 ? held[0]!.subarray(off) : held[i]!, fn);
        }
        return;
      }
      this.#need = -1;
      if (need === 0) {
        fn(EMPTY, 0, 0);
        continue;
      }
      const first = this.#chunks[0]!;
      const start = this.#headOff;
      if (first.length - start >= need) {
        // The common case: the frame lies in one chunk.
        this.#skip(need);
        fn(first, start, start + need);
      } else {
        const body = this.#copyOut(need);
        fn(body, 0, need);
      }
    }
  }

  /** Copies what `chunk` has of the big frame being assembled; returns the rest. */
  #fill(chunk: Buffer, fn: FrameSink): Buffer {
    const body = this.#body!;
    const k = Math.min(chunk.length, body.length - this.#bodyOff);
    chunk.copy(body, this.#bodyOff, 0, k);
    this.#bodyOff += k;
    if (this.#bodyOff === body.length) {
      this.#body = null;
      this.#bodyOff = 0;
      this.#need = -1;
      fn(body, 0, body.length);
    }
    return k === chunk.length ? EMPTY : chunk.subarray(k);
  }

  /** Reads and consumes a varint length, or returns -1 if incomplete. */
  #readLength(): number {
    let value = 0;
    let scale = 1;
    let i = 0;
    const chunks = this.#chunks;
    for (let c = 0; c < chunks.length; c++) {
      const b = chunks[c]!;
      for (let j = c === 0 ? this.#headOff : 0; j < b.length; j++) {
        const x = b[j]!;
        value += (x & 0x7f) * scale;
        i++;
        if ((x & 0x80) === 0) {
          this.#skip(i);
          return value;
        }
        scale *= 0x80;
        if (i >= 8) throw new MessageTooLargeError('malformed frame length', { size: Infinity, limit: this.#max });
      }
    }
    return -1;
  }

  /** Consumes `n` held bytes. */
  #skip(n: number): void {
    this.#buffered -= n;
    while (n > 0) {
      const first = this.#chunks[0]!;
      const left = first.length - this.#headOff;
      if (n < left) {
        this.#headOff += n;
        return;
      }
      n -= left;
      this.#chunks.shift();
      this.#headOff = 0;
    }
  }

  /** Consumes `n` held bytes spread over chunks, copied into one Buffer. */
  #copyOut(n: number): Buffer {
    const out = Buffer.allocUnsafe(n);
    let off = 0;
    while (off < n) {
      const c = this.#chunks[0]!;
      const k = Math.min(c.length - this.#headOff, n - off);
      c.copy(out, off, this.#headOff, this.#headOff + k);
      off += k;
      this.#skip(k);
    }
    return out;
  }
}
