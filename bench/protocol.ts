/**
 * The bench's stream protocol, shared by peersock and node:tls. The client's
 * first byte picks the mode: 'B' (bulk: the server counts bytes and, at FIN,
 * answers one JSON line {bytes, ms} timed from the first byte it received to
 * the last) or 'E' (echo everything back, FIN after FIN).
 */
import type { Duplex } from 'node:stream';

export const BULK = 0x42;
export const ECHO = 0x45;

/** What a bulk sink measured: payload bytes and ms from first to last byte. */
export interface BulkReport {
  bytes: number;
  ms: number;
}

/** Server side: serves one stream (a peersock stream or a TLS socket). */
export function serveStream(s: Duplex): void {
  s.on('error', () => {});
  let mode = 0;
  let bytes = 0;
  let t0 = 0n;
  s.on('data', (chunk: Buffer) => {
    if (mode === 0) {
      t0 = process.hrtime.bigint();
      mode = chunk[0]!;
      chunk = chunk.subarray(1);
    }
    if (mode === BULK) bytes += chunk.length;
    else if (chunk.length > 0) s.write(chunk);
  });
  s.on('end', () => {
    if (mode !== BULK) {
      s.end();
      return;
    }
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    s.end(JSON.stringify({ bytes, ms } satisfies BulkReport));
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
