/** `peersock listen`: waits for peers and pipes their streams to stdin/stdout or to a command. */
import { spawn } from 'node:child_process';

import { encodeKey, type PeerConnection, type PeerSocket, type PeerStream } from '../index';
import { expectPositionals, hostOption, intOption, stringOption, UsageError } from './args';
import { admission, ALLOW_HELP, allowOption, KEY_HELP, keyOption, type Command } from './command';
import { CliError, ExitCode, log, toCliError } from './exit';
import { bindSocket, dialString, hostPort, onInterrupt } from './net';
import { LINGER_MS, pipeStream, within } from './pipe';
import { FIND_HELP, FIND_OPTIONS, findExtensions, findOptions, publishRecord, startFinding } from './find';

/** `host:port` of a connection's peer. */
function peerAddress(conn: PeerConnection): string {
  const a = conn.remoteAddress;
  return hostPort(a.address, a.port);
}

export const listenCommand: Command = {
  name: 'listen',
  synopsis: 'listen [--key FILE] [--port N] [--exec CMD]',
  summary: 'wait for a peer; pipe its stream to stdin/stdout, or run CMD per stream',
  options: {
    key: { type: 'string' },
    port: { type: 'string', short: 'p' },
    host: { type: 'string' },
    exec: { type: 'string', short: 'e' },
    allow: { type: 'string', multiple: true },
    ...FIND_OPTIONS,
  },
  help: `Usage: peersock listen [--key FILE] [--port N] [--host H] [--allow KEY]... [--exec CMD]
                       [--bootstrap HOST:PORT]... [--mdns] [--introducer KEY@HOST:PORT]...

Binds a UDP port and prints the address peers dial, <key>@<host>:<port>, as
the first line on stderr (stdout carries only the peer's bytes). Later
stderr lines, prefixed "peersock:", report connections and refused peers.

Without --exec: serves one peer, like nc -l. Its stream is piped to stdout
and stdin to it, with the same half-close rules as connect: the end of stdin
ends our side; listen exits 0 once both sides have ended, and stops reading
a terminal stdin when the peer ends first. Other peers are refused while it
is busy.

With --exec CMD: serves every peer and stream until interrupted, running
CMD (through /bin/sh) per stream with the stream as its stdin and stdout;
its stderr is ours. CMD sees PEERSOCK_REMOTE_KEY and PEERSOCK_REMOTE_ADDRESS.
Anyone who knows the address can run CMD unless --allow restricts who may
connect.

Options:
${KEY_HELP}
  -p, --port N    UDP port, 0..65535 (default 0: any free port)
  --host H        local IP address to bind (default 0.0.0.0; :: for IPv6)
${ALLOW_HELP}
  -e, --exec CMD  run CMD per stream instead of using stdin/stdout
${FIND_HELP}
  -h, --help      show this help

With --bootstrap or --mdns, listen publishes its record (addresses and
introducers, signed with its key) and keeps it fresh, so peers can connect
with its key alone: peersock connect --bootstrap HOST:PORT <key>.

Example:
  $ peersock listen --port 4433 --exec 'tr a-z A-Z'
  5bq7...@192.0.2.7:4433
  $ echo hi | peersock connect 5bq7...@192.0.2.7:4433     (elsewhere)
  HI`,
  async run(args) {
    expectPositionals(args, [], 'listen');
    const port = intOption(args, 'port', 0, 65535, 0, 'listen');
    const host = hostOption(args, '0.0.0.0', 'listen');
    const exec = stringOption(args, 'exec');
    if (exec !== undefined && exec.trim() === '') throw new UsageError('--exec needs a command', 'listen');
    const allowed = allowOption(args, 'listen');
    const key = keyOption(args);
    const find = findOptions(args, 'listen');

    const gate = admission(allowed, exec === undefined);
    const socket = await bindSocket({ keyPair: key?.keyPair, host, port, accept: gate.accept, extensions: findExtensions(find) });
    const discovery = find === undefined ? undefined : await startFinding(socket, find, false);
    // Printed once SIGINT is handled: whoever reads the address may interrupt us at once.
    const ready = (): void => {
      process.stderr.write(`${dialString(socket)}\n`);
      if (key?.warning !== undefined) log(key.warning);
      // After the address line (always the first on stderr), and once SIGINT is handled.
      if (discovery !== undefined) void publishRecord(discovery);
    };
    return exec === undefined ? servePlain(socket, ready, gate.release) : serveExec(socket, ready, exec);
  },
};

/** Serves one peer's stream on stdin/stdout; resolves with the exit code. Calls `ready` once interruptible. */
function servePlain(socket: PeerSocket, ready: () => void, free: () => void): Promise<number> {
  return new Promise<number>((resolve) => {
    let settled = false;
    const finish = async (code: number, err?: CliError): Promise<void> => {
      if (settled) return;
      settled = true;
      stop();
      if (err !== undefined) log(err.message);
      for (const c of socket.connections) void c.close({ code: code === 0 ? 0 : 1, reason: code === ExitCode.Interrupted ? 'interrupted' : 'listener stopped' });
      await socket.close();
      resolve(code);
    };
    const stop = onInterrupt(() => void finish(ExitCode.Interrupted));
    ready();

    socket.on('connection', (conn: PeerConnection) => {
      const who = `${encodeKey(conn.remotePublicKey)} at ${peerAddress(conn)}`;
      log(`connection from ${who}`);
      let served = false;
      conn.on('stream', (stream: PeerStream) => {
        if (served) {
          stream.destroy();
          return;
        }
        served = true;
        void (async () => {
          try {
            const ends = { output: process.stdout, endOutput: false, stopInputAtRemoteEnd: process.stdin.isTTY === true, notifyWhenRead: true, where: peerAddress(conn) };
            await pipeStream(conn, stream, { ...ends, input: stream.writable ? process.stdin : null });
            // The dialer closes once it has our FIN and our notice; close ourselves if it does not.
            if ((await within(conn.closed, LINGER_MS)) === undefined) await conn.close({ code: 0, reason: 'done' });
            log(`done with ${who}`);
            await finish(ExitCode.Ok);
          } catch (e) {
            await finish(toCliError(e).exitCode, toCliError(e));
          }
        })();
      });
      void conn.closed.then((info) => {
        if (served) return;
        // Left without opening a stream: wait for the next peer.
        log(`${who} left without a stream${info.error === undefined ? '' : ` (${info.error.message})`}`);
        free();
      });
    });
  });
}

/** Runs `cmd` per stream until interrupted; resolves with the exit code. Calls `ready` once interruptible. */
function serveExec(socket: PeerSocket, ready: () => void, cmd: string): Promise<number> {
  const children = new Set<ReturnType<typeof spawn>>();
  return new Promise<number>((resolve) => {
    onInterrupt(() => {
      for (const child of children) child.kill('SIGTERM');
      for (const c of socket.connections) void c.close({ code: 1, reason: 'interrupted' });
      void socket.close().then(() => resolve(ExitCode.Interrupted));
    });
    ready();

    socket.on('connection', (conn: PeerConnection) => {
      const remoteKey = encodeKey(conn.remotePublicKey);
      const where = peerAddress(conn);
      log(`connection from ${remoteKey} at ${where}`);
      void conn.closed.then((info) => log(`${remoteKey} at ${where} left${info.error === undefined ? '' : `: ${toCliError(info.error).message}`}`));
      conn.on('stream', (stream: PeerStream) => {
        const child = spawn(cmd, {
          shell: true,
          stdio: ['pipe', 'pipe', 'inherit'],
          env: { ...process.env, PEERSOCK_REMOTE_KEY: remoteKey, PEERSOCK_REMOTE_ADDRESS: where },
        });
        children.add(child);
        child.on('error', (e) => log(`cannot run ${cmd}: ${e.message}`));
        child.on('close', (code, signal) => {
          children.delete(child);
          if (code !== 0) log(`${cmd} exited with ${code === null ? signal : `code ${code}`} (stream ${stream.id} of ${remoteKey})`);
        });
        pipeStream(conn, stream, {
          input: child.stdout!,
          output: child.stdin!,
          endOutput: true,
          stopInputAtRemoteEnd: false,
          notifyWhenRead: true,
          where,
        }).catch((e: unknown) => {
          log(`stream ${stream.id} of ${remoteKey}: ${toCliError(e).message}`);
          if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
        });
      });
    });
  });
}
