/**
 * Command-line parsing for the `peersock` tool: a small option parser with
 * one-line errors (node:util's parseArgs explains too much for a usage line),
 * and validators for the values the commands take.
 */
import { isIP } from 'node:net';

import { InvalidArgumentError, parseDialString } from '../index';
import { CliError, ExitCode } from './exit';

/** One option of a command: `--name VALUE` (string) or `--name` (flag). */
export interface OptionSpec {
  /** 'string' takes a value (`--port 4433` or `--port=4433`); 'boolean' is a flag. */
  type: 'string' | 'boolean';
  /** One-letter alias, e.g. 'o' for `-o`. */
  short?: string;
  /** May be given several times; the values are collected in order. */
  multiple?: boolean;
}

/** The option table of a command, by long name. */
export type OptionTable = Record<string, OptionSpec>;

/** What `parseArgs` returns: option values by long name, and the positional words. */
export interface ParsedArgs {
  options: Record<string, string | boolean | string[] | undefined>;
  positionals: string[];
}

/** A bad command line: one line on stderr, exit code 2. `command` names where to look for help. */
export class UsageError extends CliError {
  constructor(message: string, command?: string) {
    const help = command === undefined ? 'peersock --help' : `peersock ${command} --help`;
    super(`${message} (see ${help})`, ExitCode.Usage);
  }
}

/**
 * Parses `argv` (the words after the command name) against `table`. Every
 * command also takes `--help`/`-h`. `--` ends the options. Throws UsageError.
 */
export function parseArgs(argv: readonly string[], table: OptionTable, command: string): ParsedArgs {
  const specs: OptionTable = { help: { type: 'boolean', short: 'h' }, ...table };
  const shorts = new Map<string, string>();
  for (const [name, spec] of Object.entries(specs)) if (spec.short !== undefined) shorts.set(spec.short, name);

  const options: ParsedArgs['options'] = {};
  const positionals: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const word = argv[i]!;
    if (word === '--') {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (!word.startsWith('-') || word === '-') {
      positionals.push(word);
      continue;
    }
    let name: string | undefined;
    let inline: string | undefined;
    if (word.startsWith('--')) {
      const eq = word.indexOf('=');
      name = eq < 0 ? word.slice(2) : word.slice(2, eq);
      inline = eq < 0 ? undefined : word.slice(eq + 1);
    } else if (word.length === 2) {
      name = shorts.get(word[1]!);
    }
    const spec = name === undefined ? undefined : specs[name];
    if (name === undefined || spec === undefined) throw new UsageError(`unknown option ${word}`, command);
    if (spec.type === 'boolean') {
      if (inline !== undefined) throw new UsageError(`option --${name} takes no value`, command);
      options[name] = true;
      continue;
    }
    let value = inline;
    if (value === undefined) {
      if (i + 1 >= argv.length) throw new UsageError(`option --${name} needs a value`, command);
      value = argv[++i]!;
    }
    if (spec.multiple === true) options[name] = [...((options[name] as string[] | undefined) ?? []), value];
    else if (options[name] !== undefined) throw new UsageError(`option --${name} given twice`, command);
    else options[name] = value;
  }
  return { options, positionals };
}

/** Requires exactly `names.length` positional words, naming the missing or extra ones. */
export function expectPositionals(args: ParsedArgs, names: readonly string[], command: string): string[] {
  if (args.positionals.length < names.length) {
    throw new UsageError(`missing ${names.slice(args.positionals.length).map((n) => `<${n}>`).join(' ')}`, command);
  }
  if (args.positionals.length > names.length) {
    throw new UsageError(`unexpected argument ${JSON.stringify(args.positionals[names.length])}`, command);
  }
  return args.positionals.slice();
}

/** A string option's value, or undefined when absent. */
export function stringOption(args: ParsedArgs, name: string): string | undefined {
  const v = args.options[name];
  return typeof v === 'string' ? v : undefined;
}

/** A repeatable option's values (empty when absent). */
export function listOption(args: ParsedArgs, name: string): string[] {
  const v = args.options[name];
  return Array.isArray(v) ? v : [];
}

/** Whether a flag was given. */
export function flag(args: ParsedArgs, name: string): boolean {
  return args.options[name] === true;
}

/** An integer option within [min, max], or `fallback` when absent. */
export function intOption(args: ParsedArgs, name: string, min: number, max: number, fallback: number, command: string): number {
  const text = stringOption(args, name);
  if (text === undefined) return fallback;
  const n = /^[0-9]+$/.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    throw new UsageError(`bad --${name} ${JSON.stringify(text)}: must be an integer ${min}..${max}`, command);
  }
  return n;
}

/** A local address to bind: an IPv4 or IPv6 literal (no host names: a bind needs one address). */
export function hostOption(args: ParsedArgs, fallback: string, command: string): string {
  const text = stringOption(args, 'host') ?? fallback;
  const bare = text.startsWith('[') && text.endsWith(']') ? text.slice(1, -1) : text;
  if (isIP(bare) === 0) throw new UsageError(`bad --host ${JSON.stringify(text)}: must be an IP address such as 127.0.0.1 or ::`, command);
  return bare;
}

/** A parsed dial string: the peer's key, host and port. */
export type DialAddress = ReturnType<typeof parseDialString>;

/** Parses a `<key>@<host>:<port>` argument; a malformed one is a usage error. */
export function dialArgument(text: string, command: string): DialAddress {
  try {
    return parseDialString(text);
  } catch (e) {
    if (e instanceof InvalidArgumentError) throw new UsageError(`bad address: ${e.message}`, command);
    throw e;
  }
}
