/**
 * The bench's stream protocol, shared by every transport. The client's
 * first byte picks the mode: 'B' (bulk: the server counts bytes and, at FIN,
 * answers one JSON line {bytes, ms, cpuUs} timed from the first byte it
 * received to the last, cpuUs its process's CPU time meanwhile), 'E' (echo everything back, FIN after FIN), 'F' (frames: 4-byte
 * big-endian length-prefixed messages; the server parses and counts them and
 * at FIN answers {bytes, ms, messages}) or 'P' (framed echo: each complete
 * frame is written back as it is).
 */
import type { Duplex } from 'node:stream';

export const BULK = 0x42;
export const ECHO = 0x45;
export const FRAMES = 0x46;
export const FRAMED_ECHO = 0x50;

/** The dispatch-layer bench's protocol name (msg-server.ts, msg-client.ts). */
export const MSG_PROTOCOL = 'bench/1';

/** Bytes of a frame's length prefix (big-endian u32). */
export const PREFIX = 4;

/** One frame: a 4-byte length, then `size` bytes of `fill`. */
export function makeFrame(size: number, fill: number): Buffer {
  const f = Buffer.alloc(PREFIX + size, fill);
  f.writeUInt32BE(size, 0);
  return f;
}

/**
 * Finds frame boundaries in a byte stream (frames may span chunks) without
 * copying: `scan` counts the frames a chunk completes.
 */
export class FrameScanner {
  /** Frames completed so far. */
  frames = 0;
  /** Header bytes of the current frame read so far (0..3), or 4 while in its body. */
  #hdr = 0;
  #len = 0;
  /** Body bytes of the current frame still to come. */
  #rem = 0;

  /** Scans `c`; returns the offset just past the last frame it completes, or -1. */
  scan(c: Buffer): number {
    const n = c.length;
    let i = 0;
    let end = -1;
    while (i < n) {
      if (this.#hdr === 4) {
        const k = Math.min(this.#rem, n - i);
        i += k;
        this.#rem -= k;
        if (this.#rem > 0) break;
        this.#hdr = 0;
        this.frames++;
        end = i;
        continue;
      }
      if (this.#hdr === 0 && n - i >= PREFIX) {
        this.#len = c.readUInt32BE(i);
        i += PREFIX;
      } else {
        this.#len = this.#len * 256 + c[i++]!;
        if (++this.#hdr < PREFIX) continue;
      }
      this.#hdr = 4;
      this.#rem = this.#len;
      this.#len = 0;
      if (this.#rem === 0) {
        this.#hdr = 0;
        this.frames++;
        end = i;
      }
    }
    return end;
  }
}

/** What a bulk sink measured: payload bytes and ms from first to last byte. */
export interface BulkReport {
  bytes: number;
  ms: number;
  /** Frames counted (mode 'F' only). */
  messages?: number;
  /** The server process's CPU time (user + system, µs) from first byte to FIN. */
  cpuUs: number;
}

/** A bulk run as the client returns it: the server's report and the client process's CPU time meanwhile. */
export interface BulkResult extends BulkReport {
  /** The client process's CPU time (user + system, µs) from its first write to the server's report. */
  clientCpuUs: number;
}

/** Server side: serves one stream (a peersock stream, a TLS socket or a SecretStream). */
export function serveStream(s: Duplex): void {
  s.on('error', () => {});
  let mode = 0;
  let bytes = 0;
  let t0 = 0n;
  let cpu0: NodeJS.CpuUsage | undefined;
  const scanner = new FrameScanner();
  /** Framed echo: bytes of the frame not yet complete. */
  let held: Buffer[] = [];
  s.on('data', (chunk: Buffer) => {
    if (mode === 0) {
      t0 = process.hrtime.bigint();
      cpu0 = process.cpuUsage();
      mode = chunk[0]!;
      chunk = chunk.subarray(1);
    }
    if (mode === BULK) bytes += chunk.length;
    else if (mode === FRAMES) {
      bytes += chunk.length;
      scanner.scan(chunk);
    } else if (mode === FRAMED_ECHO) {
      const end = scanner.scan(chunk);
      if (end < 0) {
        if (chunk.length > 0) held.push(chunk);
        return;
      }
      held.push(chunk.subarray(0, end));
      s.write(held.length === 1 ? held[0]! : Buffer.concat(held));
      held = end < chunk.length ? [chunk.subarray(end)] : [];
    } else if (chunk.length > 0) s.write(chunk);
  });
  s.on('end', () => {
    if (mode !== BULK && mode !== FRAMES) {
      s.end();
      return;
    }
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    const cpu = process.cpuUsage(cpu0);
    const cpuUs = cpu.user + cpu.system;
    const report: BulkReport = mode === FRAMES ? { bytes, ms, cpuUs, messages: scanner.frames } : { bytes, ms, cpuUs };
    s.end(JSON.stringify(report));
  });
}

/** Client side: counts bytes arriving on a stream so a caller can await "n more". */
export class Reader {
  #have = 0;
  #want = 0;
  #wake: (() => void) | undefined;
  #fail: ((e: Error) => void) | undefined;
  #chunks: Buffer[] | undefined;
  #ended = false;

  constructor(s: Duplex, keep = false) {
    if (keep) this.#chunks = [];
    s.on('data', (c: Buffer) => {
      this.#have += c.length;
      this.#chunks?.push(c);
      if (this.#wake !== undefined && this.#have >= this.#want) this.#settle();
    });
    s.on('end', () => {
      this.#ended = true;
      this.#settle();
    });
    s.on('error', (e: Error) => {
      const f = this.#fail;
      this.#wake = this.#fail = undefined;
      f?.(e);
    });
  }

  #settle(): void {
    const w = this.#wake;
    this.#wake = this.#fail = undefined;
    w?.();
  }

  /** Resolves once `n` more bytes (counted from the last call) have arrived. */
  need(n: number): Promise<void> {
    this.#want += n;
    if (this.#have >= this.#want) return Promise.resolve();
    if (this.#ended) return Promise.reject(new Error('stream ended early'));
    return new Promise((resolve, reject) => {
      this.#wake = () => (this.#have >= this.#want ? resolve() : reject(new Error('stream ended early')));
      this.#fail = reject;
    });
  }

  /** Resolves with everything received once the peer sends FIN. */
  all(): Promise<Buffer> {
    const done = (): Buffer => Buffer.concat(this.#chunks ?? []);
    if (this.#ended) return Promise.resolve(done());
    this.#want = Infinity;
    return new Promise((resolve, reject) => {
      this.#wake = () => resolve(done());
      this.#fail = reject;
    });
  }
}

/** Client side: counts frames arriving on a stream so a caller can await "one more". */
export class FrameWaiter {
  readonly #scanner = new FrameScanner();
  #want = 0;
  #wake: (() => void) | undefined;
  #fail: ((e: Error) => void) | undefined;

  constructor(s: Duplex) {
    s.on('data', (c: Buffer) => {
      this.#scanner.scan(c);
      if (this.#wake !== undefined && this.#scanner.frames >= this.#want) this.#settle(undefined);
    });
    s.on('end', () => this.#settle(new Error('stream ended early')));
    s.on('error', (e: Error) => this.#settle(e));
  }

  #settle(e: Error | undefined): void {
    const w = this.#wake;
    const f = this.#fail;
    this.#wake = this.#fail = undefined;
    if (e === undefined) w?.();
    else f?.(e);
  }

  /** Resolves once one more complete frame (counted from the last call) has arrived. */
  next(): Promise<void> {
    this.#want++;
    if (this.#scanner.frames >= this.#want) return Promise.resolve();
    return new Promise((resolve, reject) => {
      this.#wake = resolve;
      this.#fail = reject;
    });
  }
}
