/** `peersock bench`: runs the repository's benchmark (bench/run.ts), which is not in the package. */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';

import { expectPositionals, intOption } from './args';
import type { Command } from './command';
import { CliError, ExitCode } from './exit';

/** The repository root: this file is src/cli/bench.ts, or dist/cli/bench.js once built. */
export function sourceRoot(): string {
  return resolve(__dirname, '..', '..');
}

export const benchCommand: Command = {
  name: 'bench',
  synopsis: 'bench [--runs N]',
  summary: 'run the benchmark: both I/O drivers against node:tls and udx (source tree only)',
  options: { runs: { type: 'string' } },
  help: `Usage: peersock bench [--runs N]

Runs the benchmark of the source tree (node --import tsx bench/run.ts, as
npm run bench does): bulk throughput, request/reply latency, connections
per second and memory per idle connection, for both I/O drivers (dgram,
native) against node:tls and udx + secret-stream, client and server in
separate processes on loopback. It takes about five minutes, loads every
core, and writes bench/RESULTS.md.

The installed package has no bench/: there this command says so and exits 2.
Clone the repository, run npm ci && npm run build, then peersock bench.

Options:
  --runs N        runs per figure; the median is reported (default 5)
  -h, --help      show this help`,
  async run(args) {
    expectPositionals(args, [], 'bench');
    const runs = intOption(args, 'runs', 1, 1000, 0, 'bench');
    const root = sourceRoot();
    const script = join(root, 'bench', 'run.ts');
    if (!existsSync(script)) {
      throw new CliError(
        `the benchmark is not part of the installed package (no ${script}); run it from a clone of the peersock repository`,
        ExitCode.Usage,
      );
    }
    const env = runs === 0 ? process.env : { ...process.env, BENCH_RUNS: String(runs) };
    const child = spawn(process.execPath, ['--import', 'tsx', script], { cwd: root, stdio: 'inherit', env });
    const forward = (signal: NodeJS.Signals): void => void child.kill(signal);
    process.on('SIGINT', forward);
    process.on('SIGTERM', forward);
    try {
      return await new Promise<number>((done, fail) => {
        child.on('error', (e) => fail(new CliError(`cannot start the benchmark: ${e.message}`, ExitCode.Failure)));
        child.on('close', (code, signal) => done(code ?? (signal === null ? ExitCode.Failure : ExitCode.Interrupted)));
      });
    } finally {
      process.off('SIGINT', forward);
      process.off('SIGTERM', forward);
    }
  },
};
