/**
 * The file-transfer protocol of `peersock send` / `receive`, on one
 * bidirectional stream opened by the sender:
 *
 *   sender → receiver: "PSF1", u32 big-endian header length, the header as
 *                      UTF-8 JSON {"name", "size"}, `size` bytes of the file,
 *                      the file's 32-byte SHA-256, then FIN.
 *   receiver → sender: the verdict as UTF-8 JSON, {"ok": true, "sha256"} or
 *                      {"ok": false, "error"}, then FIN.
 *
 * The receiver writes into a temporary file beside the target and renames it
 * only when size and hash match. The sender closes the connection once it has
 * the verdict; a receiver that gives up early (bad header, file exists, disk
 * error) closes the connection with code 1 and the reason instead.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, existsSync, renameSync, statSync, unlinkSync, type WriteStream } from 'node:fs';
import { basename, join } from 'node:path';
import type { Readable, Writable } from 'node:stream';

import type { PeerConnection, PeerStream } from '../index';
import { clean, CliError, ExitCode, isControl, toCliError } from './exit';
import type { Progress } from './progress';

/** First bytes of a transfer, so a receiver recognises a stray `connect` at once. */
export const MAGIC = Buffer.from('PSF1', 'latin1');
/** Largest header or verdict accepted. */
const MAX_JSON_BYTES = 16 * 1024;
const DIGEST_BYTES = 32;
/** File reads per chunk. */
const READ_CHUNK = 256 * 1024;
/** Close code of a receiver that gives up before the verdict (its reason says why). */
export const ABORT_CODE = 1;

/** What the sender announces. */
export interface FileHeader {
  name: string;
  size: number;
}

/** Makes progress reporting optional: given the file's name and size, returns a Progress or nothing. */
export type ProgressFactory = (name: string, size: number) => Progress | undefined;

/** The outcome of a transfer, on either side. */
export interface TransferResult {
  name: string;
  size: number;
  sha256: string;
  ms: number;
  /** Receiver only: where the file was written. */
  path?: string;
}

/** The bytes that start a transfer: magic, header length, header. */
export function encodeHeader(h: FileHeader): Buffer {
  const json = Buffer.from(JSON.stringify({ name: h.name, size: h.size }), 'utf8');
  const len = Buffer.alloc(4);
  len.writeUInt32BE(json.length);
  return Buffer.concat([MAGIC, len, json]);
}

/** Checks a file name from a peer: a plain name, no directories, nothing that escapes `--out`. */
export function checkFileName(name: unknown): string {
  if (typeof name !== 'string' || name === '' || name === '.' || name === '..' || Buffer.byteLength(name) > 255) {
    throw new CliError(`the sender announced a bad file name ${JSON.stringify(clean(String(name)))}`, ExitCode.Failure);
  }
  if (name.includes('/') || name.includes('\\') || [...name].some(isControl)) {
    throw new CliError(`the sender announced a file name with a path or control characters: ${JSON.stringify(clean(name))}`, ExitCode.Failure);
  }
  return name;
}

/**
 * Pull-based reading of a Readable with back-pressure, without the async
 * iterator (which destroys a Duplex when it finishes: the verdict still has
 * to go out). `next()` resolves with a chunk, or null at the end.
 */
export class ChunkReader {
  readonly #stream: Readable;
  readonly #chunks: Buffer[] = [];
  #ended = false;
  #error: Error | undefined;
  #wake: (() => void) | undefined;

  constructor(stream: Readable, describeError: (stream: Readable) => Error) {
    this.#stream = stream;
    const wake = (): void => {
      const w = this.#wake;
      this.#wake = undefined;
      w?.();
    };
    stream.on('data', (c: Buffer) => {
      this.#chunks.push(c);
      if (this.#chunks.length >= 4) stream.pause();
      wake();
    });
    stream.on('end', () => {
      this.#ended = true;
      wake();
    });
    stream.on('error', (e: Error) => {
      this.#error ??= e;
      wake();
    });
    stream.on('close', () => {
      if (!this.#ended) this.#error ??= describeError(stream);
      wake();
    });
  }

  /** The next chunk, or null once the peer has finished; throws if the stream failed first. */
  async next(): Promise<Buffer | null> {
    for (;;) {
      const c = this.#chunks.shift();
      if (c !== undefined) {
        if (this.#chunks.length < 2) this.#stream.resume();
        return c;
      }
      if (this.#ended) return null;
      if (this.#error !== undefined) throw this.#error;
      await new Promise<void>((resolve) => (this.#wake = resolve));
    }
  }

  /** Exactly `n` bytes; the rest of the last chunk is kept for later. Throws CliError at a premature end. */
  async exact(n: number, what: string): Promise<Buffer> {
    const parts: Buffer[] = [];
    let have = 0;
    while (have < n) {
      const c = await this.next();
      if (c === null) throw new CliError(`the transfer ended inside the ${what}`, ExitCode.Failure);
      const take = Math.min(c.length, n - have);
      parts.push(c.subarray(0, take));
      have += take;
      if (take < c.length) this.#chunks.unshift(c.subarray(take));
    }
    return Buffer.concat(parts, n);
  }

  /** Everything up to the end, at most `limit` bytes. */
  async rest(limit: number, what: string): Promise<Buffer> {
    const parts: Buffer[] = [];
    let have = 0;
    for (let c = await this.next(); c !== null; c = await this.next()) {
      have += c.length;
      if (have > limit) throw new CliError(`the ${what} is too long`, ExitCode.Failure);
      parts.push(c);
    }
    return Buffer.concat(parts, have);
  }
}

/** Writes with back-pressure: resolves once `w` can take more, rejects if it fails or closes first. */
export async function writeAll(w: Writable, chunk: Uint8Array): Promise<void> {
  const gone = (): Error => w.errored ?? new Error('the stream closed while writing');
  if (w.destroyed) throw gone();
  if (w.write(chunk)) return;
  if (w.destroyed) throw gone(); // 'close' may already have been emitted: nothing more will come
  await new Promise<void>((resolve, reject) => {
    const done = (err?: Error): void => {
      w.off('drain', onDrain);
      w.off('error', onError);
      w.off('close', onClose);
      if (err === undefined) resolve();
      else reject(err);
    };
    const onDrain = (): void => done();
    const onError = (e: Error): void => done(e);
    const onClose = (): void => done(new Error('the stream closed while writing'));
    w.on('drain', onDrain);
    w.on('error', onError);
    w.on('close', onClose);
  });
}

/** Destroys a file stream and waits until its descriptor is closed (it may still be opening). */
async function closeFile(w: WriteStream): Promise<void> {
  if (w.closed) return;
  const closed = new Promise<void>((resolve) => w.once('close', () => resolve()));
  w.destroy();
  await closed;
}

/** Why a stream of `conn` ended early, as a CliError (the receiver's abort reason when it gave one). */
function streamFailure(conn: PeerConnection, stream: PeerStream, err: unknown, peerRole: string): CliError {
  const info = conn.closeInfo;
  if (info !== undefined && info.remote && info.code === ABORT_CODE) {
    return new CliError(`the ${peerRole} gave up: ${clean(info.reason)}`, ExitCode.Failure);
  }
  if (info?.error !== undefined) return toCliError(info.error);
  if (stream.closeError !== undefined) return toCliError(stream.closeError);
  if (err instanceof CliError) return err;
  if (info !== undefined) return new CliError(`the ${peerRole} closed the connection before the transfer finished`, ExitCode.Failure);
  return toCliError(err);
}

/**
 * Sends the file at `path` on a new stream of `conn` and waits for the
 * receiver's verdict. Throws CliError: Verify (6) when the receiver saw a
 * different SHA-256, Failure (1) for anything else.
 */
export async function sendFile(conn: PeerConnection, path: string, progressFor?: ProgressFactory): Promise<TransferResult> {
  const st = statSync(path);
  const name = basename(path);
  const size = st.size;
  const t0 = performance.now();
  const stream = conn.openStream();
  const failure = new Error('stream closed');
  const reader = new ChunkReader(stream, () => failure);
  const progress = progressFor?.(name, size);
  const hash = createHash('sha256');
  let sent = 0;
  try {
    await writeAll(stream, encodeHeader({ name, size }));
    if (size > 0) {
      for await (const chunk of createReadStream(path, { start: 0, end: size - 1, highWaterMark: READ_CHUNK })) {
        const c = chunk as Buffer;
        hash.update(c);
        await writeAll(stream, c);
        sent += c.length;
        progress?.update(sent);
      }
    }
    if (sent !== size) throw new CliError(`${path} changed while it was being sent (${sent} of ${size} bytes)`, ExitCode.Failure);
    const digest = hash.digest();
    stream.end(digest);
    progress?.done();
    const verdictBytes = await reader.rest(MAX_JSON_BYTES, 'verdict');
    let verdict: { ok?: unknown; sha256?: unknown; error?: unknown };
    try {
      verdict = JSON.parse(verdictBytes.toString('utf8')) as typeof verdict;
    } catch {
      throw new CliError('the receiver answered something other than a verdict (is it peersock receive?)', ExitCode.Failure);
    }
    if (verdict.ok !== true) {
      const why = typeof verdict.error === 'string' ? clean(verdict.error) : 'no reason given';
      throw new CliError(`the receiver rejected the file: ${why}`, ExitCode.Verify);
    }
    return { name, size, sha256: digest.toString('hex'), ms: performance.now() - t0 };
  } catch (e) {
    progress?.abort();
    if (e instanceof CliError && e.exitCode === ExitCode.Verify) throw e;
    throw streamFailure(conn, stream, e, 'receiver');
  }
}

/** Options of `receiveFile`. */
export interface ReceiveOptions {
  /** Directory to write into. */
  dir: string;
  /** Replace an existing file of the same name. */
  force: boolean;
  progress?: ProgressFactory;
  /** Called with the header once it is accepted, before the bytes arrive. */
  onHeader?: (h: FileHeader) => void;
}

/**
 * Receives one file from `stream` into `opts.dir`, verifies it and sends the
 * verdict. Throws CliError: Verify (6) for a size or SHA-256 mismatch (the
 * sender is told), Failure (1) for anything that makes the receiver give up
 * early; the caller then closes the connection with ABORT_CODE and the message.
 */
export async function receiveFile(conn: PeerConnection, stream: PeerStream, opts: ReceiveOptions): Promise<TransferResult> {
  const t0 = performance.now();
  const reader = new ChunkReader(stream, () => new Error('stream closed'));
  let part: string | undefined;
  let out: WriteStream | undefined;
  let progress: Progress | undefined;
  try {
    const magic = await reader.exact(MAGIC.length + 4, 'header');
    if (!magic.subarray(0, MAGIC.length).equals(MAGIC)) {
      throw new CliError('the peer did not start a file transfer (is it peersock send?)', ExitCode.Failure);
    }
    const len = magic.readUInt32BE(MAGIC.length);
    if (len > MAX_JSON_BYTES) throw new CliError(`the transfer header is too long (${len} bytes)`, ExitCode.Failure);
    let header: { name?: unknown; size?: unknown };
    try {
      header = JSON.parse((await reader.exact(len, 'header')).toString('utf8')) as typeof header;
    } catch (e) {
      if (e instanceof CliError) throw e;
      throw new CliError('the transfer header is not valid JSON', ExitCode.Failure);
    }
    const name = checkFileName(header.name);
    const size = header.size;
    if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) {
      throw new CliError(`the sender announced a bad size ${JSON.stringify(size)}`, ExitCode.Failure);
    }
    const target = join(opts.dir, name);
    if (!opts.force && existsSync(target)) throw new CliError(`${target} already exists (receive --force replaces it)`, ExitCode.Failure);
    opts.onHeader?.({ name, size });

    part = join(opts.dir, `.peersock-${randomBytes(6).toString('hex')}.part`);
    const file = createWriteStream(part, { flags: 'wx' });
    out = file;
    const fileError = new Promise<never>((_, reject) => file.on('error', reject));
    fileError.catch(() => undefined);
    progress = opts.progress?.(name, size);
    const hash = createHash('sha256');
    let got = 0;
    let tail = Buffer.alloc(0);
    for (let c = await reader.next(); c !== null; c = await reader.next()) {
      const body = c.subarray(0, Math.max(0, Math.min(c.length, size - got)));
      if (body.length > 0) {
        hash.update(body);
        got += body.length;
        await Promise.race([writeAll(file, body), fileError]);
        progress?.update(got);
      }
      if (body.length < c.length) {
        tail = Buffer.concat([tail, c.subarray(body.length)]);
        if (tail.length > DIGEST_BYTES) break;
      }
    }
    file.end();
    await Promise.race([new Promise<void>((resolve) => file.on('close', () => resolve())), fileError]);
    out = undefined;

    const digest = hash.digest();
    let problem: string | undefined;
    if (got < size) problem = `size mismatch: got ${got} of ${size} bytes`;
    else if (tail.length !== DIGEST_BYTES) problem = `size mismatch: ${tail.length - DIGEST_BYTES} bytes more than announced`;
    else if (!tail.equals(digest)) problem = 'SHA-256 mismatch: the bytes received are not the bytes sent';
    if (problem !== undefined) {
      progress?.abort();
      unlinkSync(part);
      part = undefined;
      stream.end(JSON.stringify({ ok: false, error: problem }));
      throw new CliError(`${problem}; discarded ${name}`, ExitCode.Verify);
    }
    if (!opts.force && existsSync(target)) throw new CliError(`${target} appeared while receiving; kept nothing`, ExitCode.Failure);
    renameSync(part, target);
    part = undefined;
    progress?.done();
    const sha256 = digest.toString('hex');
    stream.end(JSON.stringify({ ok: true, sha256 }));
    return { name, size, sha256, ms: performance.now() - t0, path: target };
  } catch (e) {
    progress?.abort();
    if (out !== undefined) await closeFile(out);
    if (part !== undefined) {
      try {
        unlinkSync(part);
      } catch {
        // Never created, or already gone.
      }
    }
    if (e instanceof CliError) throw e;
    throw streamFailure(conn, stream, e, 'sender');
  }
}
