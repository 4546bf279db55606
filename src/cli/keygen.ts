/** `peersock keygen`: makes an identity file and prints its public key. */
import { randomBytes } from 'node:crypto';

import { encodeKey } from '../index';
import { flag, expectPositionals, stringOption } from './args';
import type { Command } from './command';
import { log } from './exit';
import { writeKeyFile } from './identity';

const DEFAULT_FILE = 'peersock.key';

export const keygenCommand: Command = {
  name: 'keygen',
  synopsis: 'keygen [--out FILE]',
  summary: 'make an identity; print its public key',
  options: { out: { type: 'string', short: 'o' }, force: { type: 'boolean', short: 'f' } },
  help: `Usage: peersock keygen [--out FILE] [--force]

Makes a new Ed25519 identity, writes its secret to FILE with mode 0600 and
prints its public key (52 z-base-32 characters) on stdout. Peers dial you as
<public key>@<host>:<port>; pass --key FILE to listen, connect, send or
receive to be this peer.

Options:
  -o, --out FILE  where to write the secret (default ./${DEFAULT_FILE})
  -f, --force     replace FILE if it exists (default: refuse)
  -h, --help      show this help

Key file format: UTF-8 text; lines starting with # are comments (keygen
writes the public key in one); the one other line is the 32-byte Ed25519
seed as 64 hex characters. Whoever holds the file can act as this peer.

Example:
  $ peersock keygen --out alice.key
  5bq7...  (the public key)`,
  async run(args) {
    expectPositionals(args, [], 'keygen');
    const path = stringOption(args, 'out') ?? DEFAULT_FILE;
    const kp = writeKeyFile(path, new Uint8Array(randomBytes(32)), flag(args, 'force'));
    process.stdout.write(`${encodeKey(kp.publicKey)}\n`);
    log(`wrote the secret key to ${path} (mode 0600)`);
    return 0;
  },
};
