/**
 * The envelope codec of the hot path: the generated protobufjs codec's
 * results, byte for byte and field for field, without its per-message
 * allocations (a Reader or Writer, a Buffer per string, per frame and per
 * message before the lane's concat).
 *
 * - `decodeEnvelope` reads the fields a message normally has straight from
 *   the received chunk, reuses the string of a protocol or type name it has
 *   seen before (the same bytes decode to the same string), and hands
 *   anything unusual (a nested error, an unknown field, a number past 2^49,
 *   a non-minimal tag) to `Envelope.decode`, so the result is always what
 *   `Envelope.decode` would return.
 * - `LaneWriter` appends framed envelopes to one buffer per lane and turn,
 *   writing what `Envelope.encodeDelimited` would write (the same fields,
 *   in the same order, with the same presence rule); envelopes it does not
 *   cover (an error, an out-of-range number) are encoded by protobufjs and
 *   appended.
 */
import { Writer } from 'protobufjs/minimal';

import { varintLength, writeVarint } from './framing';
import { peersock } from './generated/envelope';

const Envelope = peersock.messages.Envelope;
type Env = peersock.messages.Envelope;
type EnvData = peersock.messages.IEnvelope;

/** Field tags (field number << 3 | wire type) the fast paths handle. */
const TAG_ID = 0x08;
const TAG_PROTOCOL = 0x12;
const TAG_TYPE = 0x1a;
const TAG_IN_REPLY_TO = 0x20;
const TAG_IN_REGARDS_TO = 0x28;
const TAG_PAYLOAD = 0x32;
const TAG_CONTROL = 0x40;
const TAG_ONEWAY = 0x48;

/** Varints the fast decoder reads: at most 7 bytes (< 2^49, exact as a number). */
const MAX_FAST_VARINT = 7;

// ---------------------------------------------------------------- decoding

/** Names up to this many bytes are remembered (protocol and type names are short). */
const MAX_CACHED_NAME = 64;
const NAME_SLOTS = 16;
const nameBytes: Array<Uint8Array | undefined> = new Array<Uint8Array | undefined>(NAME_SLOTS).fill(undefined);
const nameStrings: string[] = new Array<string>(NAME_SLOTS).fill('');
let nextNameSlot = 0;

/** Node's Buffer method protobufjs reads strings with (not in @types/node). */
type Utf8Slicing = Buffer & { utf8Slice(start: number, end: number): string };

/** The string of `buf[start..end]` as protobufjs reads it (Node's UTF-8 decoder), from the cache when seen. */
function readName(buf: Buffer, start: number, end: number): string {
  const len = end - start;
  if (len === 0) return '';
  if (len > MAX_CACHED_NAME) return (buf as Utf8Slicing).utf8Slice(start, end);
  for (let s = 0; s < NAME_SLOTS; s++) {
    const b = nameBytes[s];
    if (b === undefined || b.length !== len) continue;
    let i = 0;
    while (i < len && b[i] === buf[start + i]) i++;
    if (i === len) return nameStrings[s]!;
  }
  const str = (buf as Utf8Slicing).utf8Slice(start, end);
  const slot = nextNameSlot;
  nextNameSlot = (slot + 1) % NAME_SLOTS;
  nameBytes[slot] = Uint8Array.prototype.slice.call(buf, start, end);
  nameStrings[slot] = str;
  return str;
}

const EMPTY = Buffer.alloc(0);

/** The envelope in `buf[start..end]`; throws as `Envelope.decode` does on malformed input. */
export function decodeEnvelope(buf: Buffer, start: number, end: number): Env {
  const m = fastDecode(buf, start, end);
  return m ?? Envelope.decode(buf.subarray(start, end));
}

/** The common envelope, or null for anything the generated decoder must read. */
function fastDecode(buf: Buffer, start: number, end: number): Env | null {
  const m = new Envelope();
  let p = start;
  while (p < end) {
    const tag = buf[p++]!;
    // A varint or a length (a varint too), minimal or not: at most 7 bytes here.
    let v = 0;
    let scale = 1;
    let k = 0;
    for (;;) {
      if (p >= end || k === MAX_FAST_VARINT) return null;
      const b = buf[p++]!;
      v += (b & 0x7f) * scale;
      k++;
      if ((b & 0x80) === 0) break;
      scale *= 0x80;
    }
    // Lengths, control and oneway are read by protobufjs as 32-bit varints,
    // which it cuts short past 4 bytes in ways of its own: leave those to it.
    if (k > 4 && tag !== TAG_ID && tag !== TAG_IN_REPLY_TO && tag !== TAG_IN_REGARDS_TO) return null;
    switch (tag) {
      case TAG_ID:
        m.id = v;
        break;
      case TAG_IN_REPLY_TO:
        m.inReplyTo = v;
        break;
      case TAG_IN_REGARDS_TO:
        m.inRegardsTo = v;
        break;
      case TAG_CONTROL:
        // int32: protobufjs keeps the low 32 bits, signed.
        if (v > 0x7fffffff) return null;
        m.control = v;
        break;
      case TAG_ONEWAY:
        m.oneway = v !== 0;
        break;
      case TAG_PROTOCOL:
      case TAG_TYPE:
      case TAG_PAYLOAD: {
        if (v > end - p) return null;
        const s = p;
        p += v;
        if (tag === TAG_PROTOCOL) m.protocol = readName(buf, s, p);
        else if (tag === TAG_TYPE) m.type = readName(buf, s, p);
        else m.payload = v === 0 ? Buffer.alloc(0) : buf.subarray(s, p);
        break;
      }
      default:
        return null;
    }
  }
  return m;
}

// ---------------------------------------------------------------- encoding

/** Names encoded as protobufjs writes them: the length varint, then the bytes. */
const encodedNames = new Map<string, Uint8Array>();
const MAX_ENCODED_NAMES = 256;

function encodedName(s: string): Uint8Array {
  let e = encodedNames.get(s);
  if (e === undefined) {
    // Writer.create(): the writer Envelope.encode uses (on Node, the Buffer
    // one, whose UTF-8 for long strings is Node's own).
    e = Writer.create().string(s).finish();
    if (encodedNames.size >= MAX_ENCODED_NAMES) encodedNames.clear();
    if (s.length <= MAX_CACHED_NAME) encodedNames.set(s, e);
  }
  return e;
}

const fastNumber = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

/**
 * Framed envelopes appended into one buffer: what a lane sends in one
 * write. `take()` hands the bytes over and starts a new buffer.
 */
export class LaneWriter {
  #buf: Buffer = EMPTY;
  #len = 0;
  #last = 256;

  /** Bytes appended since the last take. */
  get length(): number {
    return this.#len;
  }

  /** Appends `env` framed (a varint length, then the envelope), as `Envelope.encodeDelimited` writes it. */
  append(env: EnvData): void {
    const size = bodySize(env);
    if (size < 0) {
      this.#appendBytes(Envelope.encodeDelimited(env).finish());
      return;
    }
    const off = this.#reserve(varintLength(size) + size);
    const end = writeBody(this.#buf, writeVarint(this.#buf, off, size), env);
    this.#len = end;
  }

  /** The bytes appended, handed over (the writer starts a new buffer). */
  take(): Buffer {
    const out = this.#buf.subarray(0, this.#len);
    this.#last = Math.max(256, this.#len);
    this.#buf = EMPTY;
    this.#len = 0;
    return out;
  }

  /** Drops what was appended. */
  clear(): void {
    this.#len = 0;
  }

  #appendBytes(bytes: Uint8Array): void {
    const off = this.#reserve(bytes.length);
    this.#buf.set(bytes, off);
    this.#len = off + bytes.length;
  }

  /** Room for `n` more bytes; returns where they go. */
  #reserve(n: number): number {
    const need = this.#len + n;
    if (need > this.#buf.length) {
      const grown = Buffer.allocUnsafe(Math.max(need, this.#last, 2 * this.#buf.length));
      this.#buf.copy(grown, 0, 0, this.#len);
      this.#buf = grown;
    }
    return this.#len;
  }
}

/** Field bits of the envelope bodySize last sized (what writeBody writes). */
const F_ID = 1;
const F_PROTOCOL = 2;
const F_TYPE = 4;
const F_IN_REPLY_TO = 8;
const F_IN_REGARDS_TO = 16;
const F_PAYLOAD = 32;
const F_CONTROL = 64;
const F_ONEWAY = 128;
let present = 0;
let protocolBytes: Uint8Array = EMPTY;
let typeBytes: Uint8Array = EMPTY;

const hasOwn = Object.prototype.hasOwnProperty;

/**
 * The encoded size of `m`'s fields, or -1 when protobufjs must encode it.
 * Notes what is present for writeBody, which must follow at once. Present
 * means what it means to protobufjs: not null or undefined, and an own
 * property (a plain object literal's fields are its own: only other
 * objects, such as decoded Envelopes with defaults on their prototype, are
 * asked).
 */
function bodySize(m: EnvData): number {
  const plain = Object.getPrototypeOf(m) === Object.prototype;
  let f = 0;
  let n = 0;
  const { id, protocol, type, inReplyTo, inRegardsTo, payload, control, oneway } = m;
  if (id != null && (plain || hasOwn.call(m, 'id'))) {
    if (!fastNumber(id)) return -1;
    f |= F_ID;
    n += 1 + varintLength(id);
  }
  if (protocol != null && (plain || hasOwn.call(m, 'protocol'))) {
    if (typeof protocol !== 'string') return -1;
    f |= F_PROTOCOL;
    protocolBytes = encodedName(protocol);
    n += 1 + protocolBytes.length;
  }
  if (type != null && (plain || hasOwn.call(m, 'type'))) {
    if (typeof type !== 'string') return -1;
    f |= F_TYPE;
    typeBytes = encodedName(type);
    n += 1 + typeBytes.length;
  }
  if (inReplyTo != null && (plain || hasOwn.call(m, 'inReplyTo'))) {
    if (!fastNumber(inReplyTo)) return -1;
    f |= F_IN_REPLY_TO;
    n += 1 + varintLength(inReplyTo);
  }
  if (inRegardsTo != null && (plain || hasOwn.call(m, 'inRegardsTo'))) {
    if (!fastNumber(inRegardsTo)) return -1;
    f |= F_IN_REGARDS_TO;
    n += 1 + varintLength(inRegardsTo);
  }
  if (payload != null && (plain || hasOwn.call(m, 'payload'))) {
    if (!(payload instanceof Uint8Array)) return -1;
    f |= F_PAYLOAD;
    n += 1 + varintLength(payload.length) + payload.length;
  }
  if (m.error != null && (plain || hasOwn.call(m, 'error'))) return -1;
  if (control != null && (plain || hasOwn.call(m, 'control'))) {
    const c = control as unknown;
    if (!(typeof c === 'number' && Number.isInteger(c) && c >= 0 && c < 0x80)) return -1;
    f |= F_CONTROL;
    n += 2;
  }
  if (oneway != null && (plain || hasOwn.call(m, 'oneway'))) {
    f |= F_ONEWAY;
    n += 2;
  }
  present = f;
  return n;
}

/** Writes the fields bodySize just sized at `off`; returns the end. */
function writeBody(out: Buffer, off: number, m: EnvData): number {
  const f = present;
  if ((f & F_ID) !== 0) {
    out[off++] = TAG_ID;
    off = writeVarint(out, off, m.id as number);
  }
  if ((f & F_PROTOCOL) !== 0) {
    out[off++] = TAG_PROTOCOL;
    out.set(protocolBytes, off);
    off += protocolBytes.length;
  }
  if ((f & F_TYPE) !== 0) {
    out[off++] = TAG_TYPE;
    out.set(typeBytes, off);
    off += typeBytes.length;
  }
  if ((f & F_IN_REPLY_TO) !== 0) {
    out[off++] = TAG_IN_REPLY_TO;
    off = writeVarint(out, off, m.inReplyTo as number);
  }
  if ((f & F_IN_REGARDS_TO) !== 0) {
    out[off++] = TAG_IN_REGARDS_TO;
    off = writeVarint(out, off, m.inRegardsTo as number);
  }
  if ((f & F_PAYLOAD) !== 0) {
    const p = m.payload!;
    out[off++] = TAG_PAYLOAD;
    off = writeVarint(out, off, p.length);
    // A byte loop beats TypedArray#set's call only for the shortest
    // payloads (Node 20, Uint8Array and Buffer alternating: 8 B 18 vs 24 ns,
    // 16 B 28 vs 20, 64 B 95 vs 19).
    if (p.length <= 8) for (let i = 0; i < p.length; i++) out[off + i] = p[i]!;
    else out.set(p, off);
    off += p.length;
  }
  if ((f & F_CONTROL) !== 0) {
    out[off++] = TAG_CONTROL;
    out[off++] = m.control as number;
  }
  if ((f & F_ONEWAY) !== 0) {
    out[off++] = TAG_ONEWAY;
    out[off++] = m.oneway ? 1 : 0;
  }
  return off;
}
