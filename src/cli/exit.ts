/**
 * Exit codes of the `peersock` tool and the one-line messages it prints for
 * failures. PeersockErrors are told apart by `code`, never by message.
 */
import { encodeKey, PeersockError } from '../index';

/** Process exit codes; documented in `peersock --help` and the README. */
export const ExitCode = {
  /** Everything worked. */
  Ok: 0,
  /** A runtime failure: I/O error, connection lost, the peer reset the stream... */
  Failure: 1,
  /** Bad command line: unknown option, bad value, missing argument; also `bench` outside the source tree. */
  Usage: 2,
  /** The peer's identity did not check out: it proved another key, or its certificate or ours was rejected. */
  Identity: 3,
  /** Nobody answered the handshake in time, or the peer went silent. */
  Timeout: 4,
  /** The peer refused the connection (its accept hook said no, or it is busy). */
  Refused: 5,
  /** A file transfer arrived with the wrong size or SHA-256; nothing was kept. */
  Verify: 6,
  /** Stopped by SIGINT or SIGTERM (128 + SIGINT). */
  Interrupted: 130,
} as const;

/** A failure the CLI reports as one line on stderr before exiting with `exitCode`. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
  ) {
    super(message);
  }
}

/** Exit codes by PeersockError code; anything else is a plain failure. */
const exitByCode: ReadonlyMap<string, number> = new Map([
  ['ERR_PEERSOCK_IDENTITY_MISMATCH', ExitCode.Identity],
  ['ERR_PEERSOCK_BAD_CERTIFICATE', ExitCode.Identity],
  ['ERR_PEERSOCK_PEER_REJECTED_CREDENTIALS', ExitCode.Identity],
  ['ERR_PEERSOCK_HANDSHAKE_TIMEOUT', ExitCode.Timeout],
  ['ERR_PEERSOCK_IDLE_TIMEOUT', ExitCode.Timeout],
  // Finding a peer by key: no record, no address of it answered, or out of time. Nobody answered.
  ['ERR_PEERSOCK_PEER_NOT_FOUND', ExitCode.Timeout],
  ['ERR_PEERSOCK_PEER_UNREACHABLE', ExitCode.Timeout],
  ['ERR_PEERSOCK_DISCOVERY_TIMEOUT', ExitCode.Timeout],
  ['ERR_PEERSOCK_CONNECTION_REFUSED', ExitCode.Refused],
]);

/** Replaces control characters (a peer chooses close reasons) so a message stays one harmless line. */
export function clean(text: string): string {
  let out = '';
  for (const ch of text) out += isControl(ch) ? '?' : ch;
  return out;
}

/** C0 and C1 control characters, DEL included: what a terminal may act on. */
export function isControl(ch: string): boolean {
  const c = ch.charCodeAt(0);
  return c < 0x20 || (c >= 0x7f && c <= 0x9f);
}

/** What a failed dial or connection was about, for the message. */
export interface FailureContext {
  /** `host:port` of the peer. */
  where?: string;
  /** The handshake time limit, in ms. */
  timeoutMs?: number;
}

/**
 * Turns any error into a CliError with a one-line message and its exit code.
 * PeersockErrors keep their `code` at the end of the line, in brackets.
 */
export function toCliError(err: unknown, ctx: FailureContext = {}): CliError {
  if (err instanceof CliError) return err;
  if (!(err instanceof PeersockError)) {
    const code = (err as { code?: unknown } | null)?.code;
    const message = err instanceof Error ? err.message : String(err);
    return new CliError(clean(typeof code === 'string' && !message.includes(code) ? `${message} [${code}]` : message), ExitCode.Failure);
  }
  const where = ctx.where ?? 'the peer';
  const key = (k: unknown): string => (k instanceof Uint8Array && k.length === 32 ? encodeKey(k) : 'unknown');
  let text: string;
  switch (err.code) {
    case 'ERR_PEERSOCK_IDENTITY_MISMATCH': {
      const e = err as PeersockError & { expected?: Uint8Array; actual?: Uint8Array };
      text = `identity mismatch: ${where} proved key ${key(e.actual)}, not the dialed key ${key(e.expected)}`;
      break;
    }
    case 'ERR_PEERSOCK_HANDSHAKE_TIMEOUT':
      text = `no answer from ${where}${ctx.timeoutMs === undefined ? '' : ` within ${ctx.timeoutMs / 1000} s`} (is it listening there?)`;
      break;
    case 'ERR_PEERSOCK_IDLE_TIMEOUT':
      text = `${where} went silent: the connection timed out`;
      break;
    case 'ERR_PEERSOCK_CONNECTION_REFUSED': {
      const reason = (err as PeersockError & { reason?: unknown }).reason;
      text = `${where} refused the connection${typeof reason === 'string' && reason !== '' ? `: ${reason}` : ''}`;
      break;
    }
    case 'ERR_PEERSOCK_PEER_REJECTED_CREDENTIALS':
      text = `${where} rejected our key`;
      break;
    default:
      text = err.message;
  }
  return new CliError(`${clean(text)} [${err.code}]`, exitByCode.get(err.code) ?? ExitCode.Failure);
}

/** Writes `peersock: <message>` on stderr. */
export function log(message: string): void {
  process.stderr.write(`peersock: ${message}\n`);
}
