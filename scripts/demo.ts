/**
 * `npm run demo`: the `peersock demo` command from the source tree (two peers
 * on loopback in one process: a stream echo, datagrams, request/reply and a
 * conversation through Dispatcher, a 64 MiB file with the progress bar,
 * timings). Arguments are passed on, e.g. `npm run demo -- --size 8`.
 */
import { main } from '../src/cli/main';

main(['demo', ...process.argv.slice(2)]);
