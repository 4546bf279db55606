/**
 * A small, strict bencode codec for the DHT code: the BEP 44 signature
 * input, the message checks of the DHT socket guard (dht-socket.ts), and the
 * test lab's hostile node. It decodes only what bencode allows (no floats, no
 * leading zeros, no trailing bytes), with a depth limit, and never throws
 * anything but `DecodeError` on bad input.
 */
import { DecodeError } from '../errors';

/** A decoded bencode value: integer, byte string, list or dictionary (keys as latin1 text). */
export type BValue = number | Uint8Array | BValue[] | BDict;
/** A bencode dictionary; keys are the raw key bytes read as latin1. */
export interface BDict {
  [key: string]: BValue;
}

/** How deeply lists and dictionaries may nest before decoding gives up. */
export const MAX_DEPTH = 32;

const I = 0x69; // 'i'
const L = 0x6c; // 'l'
const D = 0x64; // 'd'
const E = 0x65; // 'e'
const COLON = 0x3a;

/** Decodes one bencoded value filling all of `bytes`; throws DecodeError otherwise. */
export function bdecode(bytes: Uint8Array): BValue {
  const at = { i: 0 };
  const v = decodeAt(bytes, at, 0);
  if (at.i !== bytes.length) throw new DecodeError('bencode: trailing bytes');
  return v;
}

function decodeAt(b: Uint8Array, at: { i: number }, depth: number): BValue {
  if (at.i >= b.length) throw new DecodeError('bencode: truncated');
  const c = b[at.i]!;
  if (c === I) {
    const end = b.indexOf(E, at.i + 1);
    if (end < 0) throw new DecodeError('bencode: unterminated integer');
    const text = latin1(b, at.i + 1, end);
    if (!/^(0|-?[1-9][0-9]{0,18})$/.test(text)) throw new DecodeError('bencode: bad integer');
    at.i = end + 1;
    return Number(text);
  }
  if (c >= 0x30 && c <= 0x39) {
    const colon = b.indexOf(COLON, at.i);
    if (colon < 0 || colon - at.i > 7) throw new DecodeError('bencode: bad string length');
    const text = latin1(b, at.i, colon);
    if (!/^(0|[1-9][0-9]*)$/.test(text)) throw new DecodeError('bencode: bad string length');
    const n = Number(text);
    if (colon + 1 + n > b.length) throw new DecodeError('bencode: truncated string');
    at.i = colon + 1 + n;
    return b.subarray(colon + 1, colon + 1 + n);
  }
  if (c === L || c === D) {
    if (depth >= MAX_DEPTH) throw new DecodeError('bencode: nested too deeply');
    at.i++;
    if (c === L) {
      const list: BValue[] = [];
      while (b[at.i] !== E) list.push(decodeAt(b, at, depth + 1));
      at.i++;
      return list;
    }
    const dict: BDict = Object.create(null) as BDict;
    while (b[at.i] !== E) {
      const key = decodeAt(b, at, depth + 1);
      if (!(key instanceof Uint8Array)) throw new DecodeError('bencode: dictionary key is not a string');
      dict[latin1(key, 0, key.length)] = decodeAt(b, at, depth + 1);
    }
    at.i++;
    return dict;
  }
  throw new DecodeError('bencode: unexpected byte');
}

function latin1(b: Uint8Array, start: number, end: number): string {
  return Buffer.from(b.buffer, b.byteOffset + start, end - start).toString('latin1');
}

/** A value `bencode` can encode: strings are written as UTF-8 bytes; dictionary keys are sorted. */
export type BInput = number | string | Uint8Array | BInput[] | { [key: string]: BInput | undefined };

/** Encodes `value` (integers only; `undefined` dictionary entries are left out). */
export function bencode(value: BInput): Uint8Array {
  const parts: Buffer[] = [];
  encodeInto(value, parts, 0);
  return Buffer.concat(parts);
}

function encodeInto(v: BInput, parts: Buffer[], depth: number): void {
  if (depth > MAX_DEPTH) throw new DecodeError('bencode: nested too deeply');
  if (typeof v === 'number') {
    if (!Number.isSafeInteger(v)) throw new DecodeError('bencode: only safe integers');
    parts.push(Buffer.from(`i${v}e`, 'latin1'));
  } else if (typeof v === 'string' || v instanceof Uint8Array) {
    const bytes = typeof v === 'string' ? Buffer.from(v, 'utf8') : Buffer.from(v.buffer, v.byteOffset, v.byteLength);
    parts.push(Buffer.from(`${bytes.length}:`, 'latin1'), bytes);
  } else if (Array.isArray(v)) {
    parts.push(Buffer.from('l'));
    for (const item of v) encodeInto(item, parts, depth + 1);
    parts.push(Buffer.from('e'));
  } else {
    parts.push(Buffer.from('d'));
    const keys = Object.keys(v)
      .filter((k) => v[k] !== undefined)
      .sort((a, b) => Buffer.compare(Buffer.from(a, 'latin1'), Buffer.from(b, 'latin1')));
    for (const k of keys) {
      const key = Buffer.from(k, 'latin1');
      parts.push(Buffer.from(`${key.length}:`, 'latin1'), key);
      encodeInto(v[k]!, parts, depth + 1);
    }
    parts.push(Buffer.from('e'));
  }
}

/** The length of `v` once bencoded, for a byte string: digits, colon, bytes. */
export function bencodedStringLength(v: Uint8Array): number {
  return String(v.length).length + 1 + v.length;
}

/**
 * The bytes a BEP 44 mutable item's signature covers: the bencoded
 * dictionary `{salt?, seq, v}` without its outer `d` and `e`.
 */
export function signedPart(seq: number, v: BInput, salt?: Uint8Array): Uint8Array {
  const whole = bencode({ ...(salt !== undefined && salt.length > 0 ? { salt } : {}), seq, v });
  return whole.subarray(1, whole.length - 1);
}
