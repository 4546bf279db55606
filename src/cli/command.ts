/**
 * What every `peersock` command is made of, and the option helpers several
 * commands share (identity file, timeouts, allow-lists).
 */
import { decodeKey, encodeKey, InvalidArgumentError, keysEqual, type AcceptHook } from '../index';
import { stringOption, listOption, UsageError, type OptionTable, type ParsedArgs } from './args';
import { log } from './exit';
import { readKeyFile, type LoadedKey } from './identity';
import { hostPort } from './net';

/** One command of the tool. */
export interface Command {
  /** The word after `peersock`. */
  name: string;
  /** Synopsis and one-line summary, for `peersock --help`. */
  synopsis: string;
  summary: string;
  /** The text `peersock <name> --help` prints. */
  help: string;
  options: OptionTable;
  /** Runs the command; resolves with the exit code or throws a CliError. */
  run(args: ParsedArgs): Promise<number>;
}

/** The exit-code table, as help text. */
export const EXIT_CODES_HELP = `Exit codes:
  0    success
  1    failure: I/O error, connection lost, the peer reset or cut the stream
  2    bad usage: unknown option, bad value, missing argument or key file;
       also \`bench\` outside the source tree
  3    identity: the peer proved a different key than the one dialed, or a
       certificate was rejected (ERR_PEERSOCK_IDENTITY_MISMATCH and kin)
  4    timeout: nobody answered the handshake, or the peer went silent
  5    refused: the peer refused the connection (not allowed, or busy)
  6    verification: a file arrived with the wrong size or SHA-256; nothing
       was kept
  130  interrupted by SIGINT or SIGTERM`;

/** Help for the options that pick an identity and a time limit. */
export const KEY_HELP = `  --key FILE      identity to use, made by \`peersock keygen\` (default: a new
                  random one for this run)`;
export const TIMEOUT_HELP = `  --timeout SEC   give up dialing after SEC seconds (default 10)`;
export const ALLOW_HELP = `  --allow KEY     accept only this peer (repeat for several; default: anyone
                  who knows the address)`;

/** `--key FILE`: the identity to use, or undefined for a random one. */
export function keyOption(args: ParsedArgs): LoadedKey | undefined {
  const path = stringOption(args, 'key');
  return path === undefined ? undefined : readKeyFile(path);
}

/** `--timeout SEC` in milliseconds (default 10 s). */
export function timeoutOption(args: ParsedArgs, command: string): number {
  const text = stringOption(args, 'timeout');
  if (text === undefined) return 10_000;
  const s = /^[0-9]+(\.[0-9]+)?$/.test(text) ? Number(text) : NaN;
  if (!(s > 0 && s <= 86_400)) throw new UsageError(`bad --timeout ${JSON.stringify(text)}: must be a number of seconds, 0 < SEC <= 86400`, command);
  return Math.max(1, Math.round(s * 1000));
}

/** `--allow KEY...`: a predicate on peer keys (anyone when no key is given). */
export function allowOption(args: ParsedArgs, command: string): (key: Uint8Array) => boolean {
  const keys = listOption(args, 'allow').map((text) => {
    try {
      return decodeKey(text);
    } catch (e) {
      if (e instanceof InvalidArgumentError) throw new UsageError(`bad --allow key ${JSON.stringify(text)}: ${e.message}`, command);
      throw e;
    }
  });
  return keys.length === 0 ? () => true : (key) => keys.some((k) => keysEqual(k, key));
}

/** Who `listen` and `receive` let in; `release` frees the one slot of a single-peer command. */
export interface Admission {
  accept: AcceptHook;
  release(): void;
}

/**
 * The accept hook of `listen` and `receive`: only `allowed` keys, and with
 * `single`, one peer at a time. Refusals are logged (the dialer exits 5).
 */
export function admission(allowed: (key: Uint8Array) => boolean, single: boolean): Admission {
  let busy = false;
  return {
    accept: (key, address) => {
      const who = `${encodeKey(key)} at ${hostPort(address.address, address.port)}`;
      if (!allowed(key)) {
        log(`refused ${who}: not in --allow`);
        return false;
      }
      if (!single) return true;
      if (busy) {
        log(`refused ${who}: busy with another peer`);
        return false;
      }
      busy = true;
      return true;
    },
    release: () => {
      busy = false;
    },
  };
}
