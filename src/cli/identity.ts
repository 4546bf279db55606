/**
 * Identity files of the `peersock` tool. The format, also described in
 * `peersock keygen --help`: UTF-8 text, lines starting with `#` are comments,
 * and the one other line is the 32-byte Ed25519 seed as 64 hex characters.
 * `keygen` writes the public key in a comment too, for people reading it.
 */
import { closeSync, fchmodSync, fstatSync, openSync, readSync, writeSync } from 'node:fs';

import { encodeKey, keyPair, type KeyPair } from '../index';
import { CliError, ExitCode } from './exit';

/** Key files are tiny; anything bigger is not one. */
const MAX_FILE_BYTES = 4096;

/** The text of a key file for `seed`. */
export function formatKeyFile(seed: Uint8Array): string {
  const { publicKey } = keyPair(seed);
  return [
    '# peersock secret key (Ed25519 seed, hex). Keep it private: whoever has it can act as this peer.',
    `# public key: ${encodeKey(publicKey)}`,
    Buffer.from(seed).toString('hex'),
    '',
  ].join('\n');
}

/**
 * Writes a fresh identity to `path` with mode 0600, refusing to replace an
 * existing file unless `overwrite`. Returns the key pair.
 */
export function writeKeyFile(path: string, seed: Uint8Array, overwrite: boolean): KeyPair {
  let fd: number;
  try {
    fd = openSync(path, overwrite ? 'w' : 'wx', 0o600);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') throw new CliError(`${path} already exists; pass --force to replace it`, ExitCode.Failure);
    throw new CliError(`cannot write ${path}: ${(e as Error).message}`, ExitCode.Failure);
  }
  try {
    // An existing file keeps its mode on open; make it private before the secret goes in.
    if (overwrite) fchmodSync(fd, 0o600);
    writeSync(fd, formatKeyFile(seed));
  } finally {
    closeSync(fd);
  }
  return keyPair(seed);
}

/** A key file's identity, and a warning to show when others may read the file. */
export interface LoadedKey {
  keyPair: KeyPair;
  warning: string | undefined;
}

/**
 * Reads an identity written by `keygen`. A missing or malformed file is a bad
 * argument (exit code 2). The warning is returned, not printed, so a listener
 * can print its address first.
 */
export function readKeyFile(path: string): LoadedKey {
  let warning: string | undefined;
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (e) {
    throw new CliError(`cannot read key file ${path}: ${(e as Error).message}`, ExitCode.Usage);
  }
  let text: string;
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new CliError(`key file ${path} is not a regular file`, ExitCode.Usage);
    if ((st.mode & 0o077) !== 0) {
      warning = `warning: key file ${path} is readable by others (mode ${(st.mode & 0o777).toString(8)}); run chmod 600 ${path}`;
    }
    const buf = Buffer.alloc(MAX_FILE_BYTES + 1);
    const n = readSync(fd, buf, 0, buf.length, 0);
    if (n > MAX_FILE_BYTES) throw new CliError(`key file ${path} is too big to be a peersock key`, ExitCode.Usage);
    text = buf.subarray(0, n).toString('utf8');
  } finally {
    closeSync(fd);
  }
  const lines = text.split(/\r?\n/).map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'));
  if (lines.length !== 1 || !/^[0-9a-fA-F]{64}$/.test(lines[0]!)) {
    throw new CliError(`key file ${path} is not a peersock key (expected one line of 64 hex characters; make one with peersock keygen)`, ExitCode.Usage);
  }
  return { keyPair: keyPair(new Uint8Array(Buffer.from(lines[0]!, 'hex'))), warning };
}
