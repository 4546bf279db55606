/** `peersock connect`: stdin/stdout over one stream to a peer, like netcat. */
import { expectPositionals } from './args';
import { KEY_HELP, keyOption, TIMEOUT_HELP, timeoutOption, type Command } from './command';
import { ExitCode, log } from './exit';
import { bindSocket, dial, hostPort, localHostFor, onInterrupt } from './net';
import { announce, LINGER_MS, pipeStream, waitForNotice, within } from './pipe';
import { connectByKey, FIND_HELP, FIND_OPTIONS, findExtensions, findOptions, localHostForPeer, peerArgument, startFinding } from './find';

export const connectCommand: Command = {
  name: 'connect',
  synopsis: 'connect <key>@<host>:<port> | connect --bootstrap HOST:PORT <key>',
  summary: 'pipe stdin/stdout over a stream to a peer',
  options: { key: { type: 'string' }, timeout: { type: 'string' }, ...FIND_OPTIONS },
  help: `Usage: peersock connect [--key FILE] [--timeout SEC] <key>@<host>:<port>
       peersock connect [--bootstrap HOST:PORT]... [--mdns] [--introducer KEY@HOST:PORT]... <key>

Dials the peer, which must prove it holds <key>, opens one stream and pipes
stdin to it and it to stdout. At the end of stdin our side of the stream is
ended (the peer sees EOF) while output keeps flowing. connect exits 0 once
both sides have ended. When the peer ends its side first, a terminal stdin
is no longer read (the session is over); piped or file input is still sent
to its end.

With --bootstrap or --mdns the peer may be given by its key alone: its
record is looked up (the LAN first, then the DHT) and every address and
introducer in it is tried; the peer must still prove the key.

Options:
${KEY_HELP}
${TIMEOUT_HELP}
${FIND_HELP}
  -h, --help      show this help

Fails with one line on stderr and exit code 3 if the peer proves a
different key (ERR_PEERSOCK_IDENTITY_MISMATCH), 4 if nobody answers in
time or no record of the key is found, 5 if the peer refuses us, 1 if the
connection is lost.

Example:
  $ echo hello | peersock connect 5bq7...@192.0.2.7:4433
  $ echo hello | peersock connect --bootstrap 192.0.2.1:6881 5bq7...`,
  async run(args) {
    const [address] = expectPositionals(args, ['key@host:port'], 'connect');
    const find = findOptions(args, 'connect');
    const peer = peerArgument(address!, find, 'connect');
    const timeoutMs = timeoutOption(args, 'connect');
    const key = keyOption(args);
    if (key?.warning !== undefined) log(key.warning);
    const socket = await bindSocket({ keyPair: key?.keyPair, host: localHostForPeer(peer, localHostFor), port: 0, dialer: true, extensions: findExtensions(find) });
    try {
      const discovery = find === undefined ? undefined : await startFinding(socket, find, false);
      const conn = peer.kind === 'address' ? await dial(socket, peer.to, timeoutMs) : await connectByKey(discovery!, peer.publicKey, timeoutMs);
      const where = hostPort(conn.remoteAddress.address, conn.remoteAddress.port);
      const notice = waitForNotice(conn);
      const stop = onInterrupt(() => {
        void conn.close({ code: 1, reason: 'interrupted' }).then(() => process.exit(ExitCode.Interrupted));
      });
      try {
        const stream = conn.openStream();
        announce(stream);
        const outputOpen = await pipeStream(conn, stream, {
          input: process.stdin,
          output: process.stdout,
          endOutput: false,
          // A person at a terminal is done when the peer is; piped input is sent to its end.
          stopInputAtRemoteEnd: process.stdin.isTTY === true,
          notifyWhenRead: false,
          where,
        });
        // Both FINs are through; close once the peer says it has all our bytes.
        if (outputOpen && conn.closeInfo === undefined) await within(Promise.race([notice, conn.closed]), LINGER_MS);
        await conn.close({ code: 0, reason: 'done' });
      } finally {
        stop();
      }
      return ExitCode.Ok;
    } finally {
      await socket.close();
    }
  },
};
