/** `peersock dht`: runs a mainline DHT node, e.g. the bootstrap node of a private network. */
import { networkInterfaces } from 'node:os';

import { DhtNode, InvalidArgumentError, PeersockError, type DhtNodeOptions } from '../index';
import { expectPositionals, hostOption, intOption, listOption, UsageError } from './args';
import { type Command } from './command';
import { CliError, ExitCode, log, toCliError } from './exit';
import { onInterrupt } from './net';

/**
 * The address other nodes should use to reach a node bound on `host`: a
 * wildcard bind names this machine's first external IPv4 address, or
 * loopback when it has none.
 */
function reachableHost(host: string): string {
  if (host !== '0.0.0.0') return host;
  const external = Object.values(networkInterfaces())
    .flat()
    .find((i) => i !== undefined && !i.internal && i.family === 'IPv4');
  return external?.address ?? '127.0.0.1';
}

export const dhtCommand: Command = {
  name: 'dht',
  synopsis: 'dht [--port N] [--bootstrap HOST:PORT]...',
  summary: 'run a mainline DHT node (a bootstrap node for a private network)',
  options: {
    port: { type: 'string', short: 'p' },
    host: { type: 'string' },
    bootstrap: { type: 'string', multiple: true },
  },
  help: `Usage: peersock dht [--port N] [--host H] [--bootstrap HOST:PORT]...

Runs a BitTorrent mainline DHT node (BEP 5 peers and BEP 44 signed items,
the records peersock peers publish under their keys) until interrupted. It
prints the address other nodes bootstrap from, <host>:<port>, as the first
line on stderr. It joins through the --bootstrap nodes it is given and no
others: without any, it starts a new DHT of its own (a private network whose
peers pass --bootstrap <this node> to listen, connect, send and receive).
To join the public mainline DHT, name its routers explicitly, e.g.
--bootstrap router.bittorrent.com:6881.

The node stores at most 1000 items and 10000 peers for others, and answers
at most 100 queries a second from one IP address.

Options:
  -p, --port N    UDP port, 0..65535 (default 0: any free port)
  --host H        local IPv4 address to bind (default 0.0.0.0)
  --bootstrap HOST:PORT
                  a DHT node to join through (repeat for several)
  -h, --help      show this help

Example:
  $ peersock dht --port 6881
  192.0.2.7:6881
  $ peersock listen --bootstrap 192.0.2.7:6881     (elsewhere)`,
  async run(args) {
    expectPositionals(args, [], 'dht');
    const port = intOption(args, 'port', 0, 65535, 0, 'dht');
    const host = hostOption(args, '0.0.0.0', 'dht');
    const opts: DhtNodeOptions = { bootstrap: listOption(args, 'bootstrap'), host, port };
    let node: DhtNode;
    try {
      node = await DhtNode.start(opts);
    } catch (e) {
      if (e instanceof InvalidArgumentError) throw new UsageError(e.message, 'dht');
      if (e instanceof PeersockError && e.code === 'ERR_PEERSOCK_SOCKET') throw new CliError(e.message, ExitCode.Failure);
      throw toCliError(e);
    }
    return new Promise<number>((resolve) => {
      const stop = onInterrupt(() => {
        stop();
        const { sent, received, rateLimited, malformed } = node.stats;
        log(`interrupted; ${received} messages received (${rateLimited} over the rate limit, ${malformed} malformed), ${sent} sent`);
        void node.destroy().then(() => resolve(ExitCode.Interrupted));
      });
      const a = node.address();
      process.stderr.write(`${reachableHost(a.host)}:${a.port}\n`);
    });
  },
};
