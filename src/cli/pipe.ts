/**
 * Byte pipes between a PeerStream and local ends (stdin/stdout, or a child
 * process), for `connect` and `listen`.
 *
 * Half-close: local input EOF ends our side of the stream (FIN); the peer's
 * FIN ends the local output. With `stopInputAtRemoteEnd` (a terminal on
 * stdin) the peer's FIN also stops reading local input and ends our side, so
 * an interactive session ends when the peer is done; piped input is always
 * sent to its end, so a quick peer never truncates an upload.
 *
 * Closing without losing bytes: QUIC's CONNECTION_CLOSE discards anything
 * not yet delivered, so the side that closes must know both directions
 * arrived. The listener opens an empty unidirectional stream once it has read
 * the dialer's FIN ("I have all your bytes"); the dialer closes the
 * connection when it has that notice and the listener's FIN. A peer that
 * sends no notice (not the peersock CLI) gets LINGER_MS instead.
 */
import type { Readable, Writable } from 'node:stream';

import type { CloseInfo, PeerConnection, PeerReadStream, PeerStream } from '../index';
import { clean, CliError, ExitCode, toCliError } from './exit';

/** How long a finished side waits for the peer's notice or close before closing itself. */
export const LINGER_MS = 3000;

const EMPTY = new Uint8Array(0);

/** The local ends of a stream: where its bytes come from and go. */
export interface LocalEnds {
  /** What we send; null for none (our side ends at once). */
  input: Readable | null;
  /** Where the peer's bytes go. */
  output: Writable;
  /** End `output` at the peer's FIN (a child's stdin); otherwise flush it and leave it open (stdout). */
  endOutput: boolean;
  /** The peer's FIN also stops `input` and ends our side. */
  stopInputAtRemoteEnd: boolean;
  /** Open an empty unidirectional stream once the peer's FIN is read (the listener's notice). */
  notifyWhenRead: boolean;
  /** The peer's address, for messages. */
  where: string;
}

/** Describes how a connection ended before its stream was done, as a CliError. */
export function closeFailure(info: CloseInfo, where: string): CliError {
  if (info.error !== undefined) return toCliError(info.error, { where });
  if (info.remote) {
    const why = info.reason === '' ? '' : `: ${clean(info.reason)}`;
    return new CliError(`${where} closed the connection before the stream was done (code ${info.code}${why})`, ExitCode.Failure);
  }
  return new CliError('the connection closed before the stream was done', ExitCode.Failure);
}

/**
 * Pipes `stream` to and from `ends` until both directions are complete: the
 * peer's FIN is read (and written out) and our FIN is sent. Rejects with a
 * CliError if the stream or connection fails first. A closed output (EPIPE)
 * stops the pipe quietly: it resolves with `false`.
 */
export function pipeStream(conn: PeerConnection, stream: PeerStream, ends: LocalEnds): Promise<boolean> {
  const { input, output } = ends;
  return new Promise<boolean>((resolve, reject) => {
    let readDone = !stream.readable;
    let writeDone = !stream.writable;
    let settled = false;
    let streamError: Error | undefined;

    const settle = (err?: CliError, outputOpen = true): void => {
      if (settled) return;
      settled = true;
      conn.off('close', onConnClose);
      input?.unpipe(stream);
      stream.unpipe(output);
      if (err !== undefined) reject(err);
      else resolve(outputOpen);
    };
    const check = (): void => {
      if (readDone && writeDone) settle();
    };
    const stopInput = (): void => {
      if (input !== null) {
        input.unpipe(stream);
        input.pause();
      }
      if (!stream.writableEnded) stream.end();
    };
    const onConnClose = (info: CloseInfo): void => {
      // A close right after both FINs (a foreign peer) is fine; before, it cut something off.
      if (readDone && writeDone) settle();
      else if (stream.readableEnded && (writeDone || stream.writableFinished) && info.error === undefined) settle();
      else settle(closeFailure(info, ends.where));
    };

    stream.on('error', (e: Error) => {
      streamError ??= e;
    });
    stream.on('close', () => {
      if (settled || (stream.readableEnded && (writeDone || stream.writableFinished))) return;
      const info = conn.closeInfo;
      if (info !== undefined) settle(closeFailure(info, ends.where));
      else settle(toCliError(streamError ?? stream.closeError ?? new CliError('the stream closed early', ExitCode.Failure), { where: ends.where }));
    });
    conn.on('close', onConnClose);

    // Peer → local output.
    output.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'EPIPE' || e.code === 'ERR_STREAM_DESTROYED') {
        if (ends.endOutput) {
          // A child stopped reading: keep draining the stream so the peer is not blocked.
          stream.unpipe(output);
          stream.resume();
          return;
        }
        stream.destroy();
        settle(undefined, false);
        return;
      }
      settle(new CliError(`cannot write output: ${e.message}`, ExitCode.Failure));
    });
    if (stream.readable) {
      stream.pipe(output, { end: false });
      output.on('close', () => {
        // A child that exits closes its stdin, and unpiping pauses the stream:
        // keep reading (and dropping) so the peer's FIN still arrives.
        if (ends.endOutput && !stream.readableEnded) {
          stream.unpipe(output);
          stream.resume();
        }
      });
      stream.on('end', () => {
        const afterFlush = (): void => {
          readDone = true;
          if (ends.notifyWhenRead && conn.closeInfo === undefined) {
            try {
              const notice = conn.openStream({ unidirectional: true });
              notice.on('error', () => undefined);
              notice.end();
            } catch {
              // The connection is closing: the notice is moot.
            }
          }
          if (ends.stopInputAtRemoteEnd) stopInput();
          check();
        };
        if (ends.endOutput) {
          output.end();
          afterFlush();
        } else {
          output.write(EMPTY, afterFlush);
        }
      });
    }

    // Local input → peer.
    if (stream.writable) {
      stream.on('finish', () => {
        writeDone = true;
        check();
      });
      if (input === null) stream.end();
      else {
        input.on('end', () => {
          if (!stream.writableEnded) stream.end();
        });
        input.on('error', () => stopInput());
        input.pipe(stream, { end: false });
      }
    }
    check();
  });
}

/** Resolves once the peer opens and finishes a unidirectional stream: its "I have all your bytes" notice. */
export function waitForNotice(conn: PeerConnection): Promise<void> {
  return new Promise((resolve) => {
    // The CLI carries one conversation per connection; refuse extra ones.
    conn.on('stream', (s: PeerStream) => s.destroy());
    conn.on('unidirectionalStream', (s: PeerReadStream) => {
      s.on('error', () => undefined);
      s.on('end', () => resolve());
      s.resume();
    });
  });
}

/** Resolves after `ms`, or when `p` settles; whichever comes first. Never rejects. */
export function within<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(undefined), ms);
    p.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      () => {
        clearTimeout(timer);
        resolve(undefined);
      },
    );
  });
}

/** Makes a dialed stream visible to the listener now, before any input: sends the stream's first (empty) write. */
export function announce(stream: PeerStream): void {
  stream.write(EMPTY);
}
