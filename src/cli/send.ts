/** `peersock send` and `peersock receive`: one file, SHA-256 verified, with progress. */
import { statSync } from 'node:fs';

import { encodeKey, type PeerConnection, type PeerStream } from '../index';
import { expectPositionals, flag, hostOption, intOption, stringOption, UsageError } from './args';
import { admission, ALLOW_HELP, allowOption, KEY_HELP, keyOption, TIMEOUT_HELP, timeoutOption, type Command } from './command';
import { CliError, ExitCode, log, toCliError } from './exit';
import { bindSocket, dial, dialString, hostPort, localHostFor, onInterrupt } from './net';
import { LINGER_MS, within } from './pipe';
import { connectByKey, FIND_HELP, FIND_OPTIONS, findExtensions, findOptions, localHostForPeer, peerArgument, startFinding } from './find';
import { formatBytes, Progress } from './progress';
import { ABORT_CODE, receiveFile, sendFile, type ProgressFactory } from './transfer';

/** Progress on stderr: a bar on a terminal, lines otherwise. */
const progressOn =
  (verb: string): ProgressFactory =>
  (name, size) =>
    new Progress({ label: `${verb} ${name}`, total: size });

const PROTOCOL_HELP = `The sender announces the file's name and size, sends the bytes, then their
SHA-256. The receiver writes into a temporary file, keeps it only if size and
hash match, and tells the sender. Both show progress (bytes, rate, ETA) on
stderr: a bar on a terminal, a line a second otherwise.`;

export const sendCommand: Command = {
  name: 'send',
  synopsis: 'send <file> <key>@<host>:<port> | send --bootstrap HOST:PORT <file> <key>',
  summary: 'send a file to a peer running receive (SHA-256 verified)',
  options: { key: { type: 'string' }, timeout: { type: 'string' }, ...FIND_OPTIONS },
  help: `Usage: peersock send [--key FILE] [--timeout SEC] <file> <key>@<host>:<port>
       peersock send [--bootstrap HOST:PORT]... [--mdns] <file> <key>

Sends <file> to a peer running \`peersock receive\`, which printed the
address. Exits 0 once the receiver has verified the file. With --bootstrap
or --mdns the receiver may be given by its key alone (see connect --help).

${PROTOCOL_HELP}

Options:
${KEY_HELP}
${TIMEOUT_HELP}
${FIND_HELP}
  -h, --help      show this help

Exit codes as for connect, and 6 if the receiver saw a different SHA-256.

Example:
  $ peersock send photo.jpg 5bq7...@192.0.2.7:4433`,
  async run(args) {
    const [file, address] = expectPositionals(args, ['file', 'key@host:port'], 'send');
    let size: number;
    try {
      const st = statSync(file!);
      if (!st.isFile()) throw new UsageError(`${file} is not a regular file`, 'send');
      size = st.size;
    } catch (e) {
      if (e instanceof UsageError) throw e;
      throw new UsageError(`cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, 'send');
    }
    const find = findOptions(args, 'send');
    const peer = peerArgument(address!, find, 'send');
    const timeoutMs = timeoutOption(args, 'send');
    const key = keyOption(args);
    if (key?.warning !== undefined) log(key.warning);
    const socket = await bindSocket({ keyPair: key?.keyPair, host: localHostForPeer(peer, localHostFor), port: 0, dialer: true, extensions: findExtensions(find) });
    const stop = onInterrupt(() => {
      for (const c of socket.connections) void c.close({ code: ABORT_CODE, reason: 'the sender was interrupted' });
      void socket.close().then(() => process.exit(ExitCode.Interrupted));
    });
    try {
      const discovery = find === undefined ? undefined : await startFinding(socket, find, false);
      const conn = peer.kind === 'address' ? await dial(socket, peer.to, timeoutMs) : await connectByKey(discovery!, peer.publicKey, timeoutMs);
      log(`sending ${file} (${formatBytes(size)}) to ${encodeKey(conn.remotePublicKey)}`);
      const r = await sendFile(conn, file!, progressOn('send'));
      await conn.close({ code: 0, reason: 'done' });
      log(`sent ${r.name}: ${formatBytes(r.size)} in ${(r.ms / 1000).toFixed(1)} s; the receiver verified SHA-256 ${r.sha256}`);
      return ExitCode.Ok;
    } finally {
      stop();
      await socket.close();
    }
  },
};

export const receiveCommand: Command = {
  name: 'receive',
  synopsis: 'receive [--out DIR]',
  summary: 'receive one file from a peer running send',
  options: {
    out: { type: 'string', short: 'o' },
    key: { type: 'string' },
    port: { type: 'string', short: 'p' },
    host: { type: 'string' },
    allow: { type: 'string', multiple: true },
    force: { type: 'boolean', short: 'f' },
    ...FIND_OPTIONS,
  },
  help: `Usage: peersock receive [--out DIR] [--key FILE] [--port N] [--host H] [--allow KEY]... [--force]
                        [--bootstrap HOST:PORT]... [--mdns] [--introducer KEY@HOST:PORT]...

Waits for one file from \`peersock send\`. Prints the address to dial,
<key>@<host>:<port>, as the first line on stderr; on success prints the
saved file's path on stdout and exits 0. Exits 6 (keeping nothing) if the
bytes do not match the size or SHA-256 the sender announced.

${PROTOCOL_HELP}

Options:
  -o, --out DIR   directory to save into (default: the current directory)
${KEY_HELP}
  -p, --port N    UDP port, 0..65535 (default 0: any free port)
  --host H        local IP address to bind (default 0.0.0.0; :: for IPv6)
${ALLOW_HELP}
  -f, --force     replace a file of the same name (default: refuse)
${FIND_HELP}
  -h, --help      show this help

With --bootstrap or --mdns the receiver publishes its record, so senders
need only its key.

Example:
  $ peersock receive --out ~/Downloads
  5bq7...@192.0.2.7:40123`,
  async run(args) {
    expectPositionals(args, [], 'receive');
    const dir = stringOption(args, 'out') ?? '.';
    try {
      if (!statSync(dir).isDirectory()) throw new Error('not a directory');
    } catch (e) {
      throw new UsageError(`bad --out ${JSON.stringify(dir)}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, 'receive');
    }
    const port = intOption(args, 'port', 0, 65535, 0, 'receive');
    const host = hostOption(args, '0.0.0.0', 'receive');
    const allowed = allowOption(args, 'receive');
    const force = flag(args, 'force');
    const key = keyOption(args);
    const find = findOptions(args, 'receive');

    const gate = admission(allowed, true);
    const socket = await bindSocket({ keyPair: key?.keyPair, host, port, accept: gate.accept, extensions: findExtensions(find) });
    // SIGINT is handled before the address is out: whoever reads it may interrupt us at once.
    let interrupted = false;
    let wakeWaiter = (): void => undefined;
    const stop = onInterrupt(() => {
      interrupted = true;
      wakeWaiter();
      // Mid-transfer: tell the sender, which makes receiveFile fail below.
      for (const c of socket.connections) void c.close({ code: ABORT_CODE, reason: 'the receiver was interrupted' });
    });
    const address = dialString(socket);
    process.stderr.write(`${address}\n`);
    if (key?.warning !== undefined) log(key.warning);
    if (find !== undefined) {
      await startFinding(socket, find, true);
      log(`waiting for a file; the sender runs: peersock send ${find.bootstrap !== undefined ? find.bootstrap.map((b) => `--bootstrap ${b} `).join('') : '--mdns '}<file> ${encodeKey(socket.publicKey)}`);
    } else log(`waiting for a file; the sender runs: peersock send <file> ${address}`);

    try {
      const { conn, stream } = await new Promise<{ conn: PeerConnection; stream: PeerStream }>((resolve, reject) => {
        wakeWaiter = () => reject(new CliError('interrupted', ExitCode.Interrupted));
        if (interrupted) wakeWaiter();
        socket.on('connection', (conn: PeerConnection) => {
          let taken = false;
          conn.on('stream', (stream: PeerStream) => {
            if (taken) return stream.destroy();
            taken = true;
            resolve({ conn, stream });
          });
          void conn.closed.then(() => {
            if (!taken) gate.release(); // left without sending: wait for the next sender
          });
        });
      });
      const from = encodeKey(conn.remotePublicKey);
      try {
        const r = await receiveFile(conn, stream, {
          dir,
          force,
          progress: progressOn('receive'),
          onHeader: (h) => log(`receiving ${h.name} (${formatBytes(h.size)}) from ${from} at ${hostPort(conn.remoteAddress.address, conn.remoteAddress.port)}`),
        });
        // The sender closes once it has the verdict.
        await within(conn.closed, LINGER_MS);
        log(`received ${r.name}: ${formatBytes(r.size)} in ${(r.ms / 1000).toFixed(1)} s, SHA-256 ${r.sha256} verified`);
        process.stdout.write(`${r.path}\n`);
        return ExitCode.Ok;
      } catch (e) {
        if (interrupted) throw new CliError('interrupted', ExitCode.Interrupted);
        const err = toCliError(e);
        if (err.exitCode === ExitCode.Verify) await within(conn.closed, LINGER_MS);
        else void conn.close({ code: ABORT_CODE, reason: err.message.slice(0, 200) });
        throw err;
      }
    } finally {
      stop();
      await socket.close();
    }
  },
};
