/**
 * A private mainline DHT for the netns lab, run inside a namespace by
 * `NatLab.spawn`: COUNT nodes (default 5) on HOST, the first on PORT
 * (default 6881), the others bootstrapping from it. Prints
 * `{ ready: true, address: { address, port } }` (the first node) and exits
 * when stdin closes.
 */
import { createInterface } from 'node:readline';

import { DhtNode } from '../../src/discovery/dht';

async function main(): Promise<void> {
  const host = process.env.HOST ?? '0.0.0.0';
  const count = Number(process.env.COUNT ?? 5);
  // Lab peers share few addresses: no per-address rate limit here.
  const opts = { host, maxRequestsPerSecondPerAddress: Infinity };
  const first = await DhtNode.start({ ...opts, port: Number(process.env.PORT ?? 6881), bootstrap: [] });
  const boot = `${first.address().host}:${first.address().port}`;
  const rest = await Promise.all(Array.from({ length: count - 1 }, () => DhtNode.start({ ...opts, bootstrap: [boot] })));
  const lines = createInterface({ input: process.stdin });
  lines.on('line', () => {});
  lines.on('close', () => {
    void Promise.allSettled([first, ...rest].map((n) => n.destroy())).finally(() => process.exit(0));
    setTimeout(() => process.exit(0), 2000).unref();
  });
  process.stdout.write(`${JSON.stringify({ ready: true, address: { address: first.address().host, port: first.address().port } })}\n`);
}

main().catch((e: unknown) => {
  process.stderr.write(`dht-boot: ${(e as Error).stack ?? String(e)}\n`);
  process.exit(1);
});
