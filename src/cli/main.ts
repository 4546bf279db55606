/**
 * The `peersock` command line: picks the command, parses its options, runs
 * it, and turns failures into one line on stderr and an exit code.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { parseArgs, UsageError } from './args';
import { benchCommand } from './bench';
import { EXIT_CODES_HELP, type Command } from './command';
import { connectCommand } from './connect';
import { demoCommand } from './demo';
import { dhtCommand } from './dht';
import { CliError, ExitCode, toCliError } from './exit';
import { keygenCommand } from './keygen';
import { listenCommand } from './listen';
import { receiveCommand, sendCommand } from './send';

/** Every command, in the order `peersock --help` lists them. */
export const commands: readonly Command[] = [keygenCommand, listenCommand, connectCommand, sendCommand, receiveCommand, dhtCommand, demoCommand, benchCommand];

/** The package version, from package.json beside src/ or dist/. */
function version(): string {
  try {
    return (JSON.parse(readFileSync(join(__dirname, '..', '..', 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

/** `peersock --help`. */
export function topHelp(): string {
  const lines = commands.map((c) => `  ${c.synopsis}\n      ${c.summary}`);
  return `peersock: peer-to-peer QUIC sockets whose peers are named by Ed25519 keys

Usage: peersock <command> [options]
       peersock <command> --help

Commands:
${lines.join('\n')}

A peer's address is <key>@<host>:<port>: its public key (52 z-base-32
characters) and where it listens; write IPv6 hosts in brackets, [::1]:4433.
Every connection is mutually authenticated: dialing succeeds only if the
peer proves it holds <key>. listen and receive print their address as the
first line on stderr; stdout carries only data.

Options:
  -h, --help      show this help
  --version       print the version

${EXIT_CODES_HELP}`;
}

/** Runs the command line `argv` (without `node` and the script); resolves with the exit code. */
export async function runCli(argv: readonly string[]): Promise<number> {
  try {
    const [name, ...rest] = argv;
    if (name === '-h' || name === '--help' || (name === 'help' && rest.length === 0)) {
      process.stdout.write(`${topHelp()}\n`);
      return ExitCode.Ok;
    }
    if (name === '--version') {
      process.stdout.write(`${version()}\n`);
      return ExitCode.Ok;
    }
    if (name === undefined) throw new UsageError(`missing command: one of ${commands.map((c) => c.name).join(', ')}`);
    if (name === 'help') {
      const cmd = commands.find((c) => c.name === rest[0]);
      if (cmd === undefined || rest.length > 1) throw new UsageError(`unknown command ${JSON.stringify(rest.join(' '))}`);
      process.stdout.write(`${cmd.help}\n\n${EXIT_CODES_HELP}\n`);
      return ExitCode.Ok;
    }
    const cmd = commands.find((c) => c.name === name);
    if (cmd === undefined) {
      throw new UsageError(name.startsWith('-') ? `unknown option ${name} before the command` : `unknown command ${JSON.stringify(name)}`);
    }
    const args = parseArgs(rest, cmd.options, cmd.name);
    if (args.options['help'] === true) {
      process.stdout.write(`${cmd.help}\n\n${EXIT_CODES_HELP}\n`);
      return ExitCode.Ok;
    }
    return await cmd.run(args);
  } catch (e) {
    const err = e instanceof CliError ? e : toCliError(e);
    if (process.env['PEERSOCK_DEBUG'] !== undefined && e instanceof Error) process.stderr.write(`${e.stack ?? ''}\n`);
    process.stderr.write(`peersock: ${err.message}\n`);
    return err.exitCode;
  }
}

/**
 * Runs the command line and exits with its code once stdout has drained
 * (stdin or a dialing socket would otherwise keep the process alive).
 */
export function main(argv: readonly string[]): void {
  void runCli(argv).then((code) => {
    process.exitCode = code;
    process.stdout.write('', () => process.exit(code));
  });
}
