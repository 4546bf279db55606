/**
 * Dialing a key alone through NATs (issue 15): in the netns lab a private
 * DHT and an introducer sit on the public side; B, behind a NAT of each
 * kind, publishes its record naming the introducer; A, behind another,
 * knows only B's key and the bootstrap node, connects and moves 4 MiB.
 * When the lab cannot run, these tests fail and say why.
 */
import test, { type ExecutionContext } from 'ava';

import type { ConnectionPath } from '../src/nat/traversal';
import type { AddressInfo } from '../src/transport';
import { encodeKey } from '../src/keys';
import { NatLab, type LabProcess, type NatKind } from './lab/netns';

const MiB = 1024 * 1024;

interface Ready {
  publicKey: string;
  address: AddressInfo;
}
const ready = (p: LabProcess): Ready => p.ready as unknown as Ready;
const dialString = (p: LabProcess, host: string): string => `${encodeKey(Buffer.from(ready(p).publicKey, 'hex'))}@${host}:${ready(p).address.port}`;

const table: string[] = [];
test.after.always(() => {
  if (table.length > 0) process.stdout.write(`\nNAT pair × connect by key alone (resolve + dial), then 4 MiB:\n${table.sort().join('\n')}\n`);
});

/** The lab: DHT nodes and an introducer on the public side, A and B behind `na` and `nb`. */
async function setup(t: ExecutionContext, na: NatKind, nb: NatKind): Promise<{ a: LabProcess; b: LabProcess; bootstrap: string }> {
  const lab = await NatLab.create(t);
  const dhtIp = await lab.addHost();
  const introIp = await lab.addHost();
  const pa = await lab.addPeer(na);
  const pb = await lab.addPeer(nb);
  const [dht, intro, a, b] = await Promise.all([
    lab.spawn(lab.publicNs, 'dht-boot.ts', { HOST: dhtIp, COUNT: '5' }, 'dht'),
    lab.spawn(lab.publicNs, 'nat-peer.ts', { HOST: introIp, RELAY: JSON.stringify({ bytesPerSecond: 256 * MiB }) }, 'introducer'),
    lab.spawn(pa.ns, 'nat-peer.ts', { PUNCH_TTL: '2' }, `a(${na})`),
    lab.spawn(pb.ns, 'nat-peer.ts', { PUNCH_TTL: '2' }, `b(${nb})`),
  ]);
  const d = dht.ready as unknown as { address: { address: string; port: number } };
  const bootstrap = `${d.address.address}:${d.address.port}`;
  const record = await b.call<{ seq: number; addresses: { host: string; port: number }[] }>('discover', { bootstrap: [bootstrap], introducers: [dialString(intro, introIp)], publish: true }, 20_000);
  t.log(`B (${nb}) published seq ${record.seq}: ${record.addresses.map((x) => `${x.host}:${x.port}`).join(', ')}`);
  await a.call('discover', { bootstrap: [bootstrap] }, 20_000);
  return { a, b, bootstrap };
}

for (const [na, nb] of [['none', 'none'], ['none', 'preserve'], ['none', 'random'], ['preserve', 'preserve'], ['preserve', 'random'], ['random', 'random'],
  ['preserve', 'none'], ['random', 'none'], ['random', 'preserve']] as [NatKind, NatKind][]) {
  const name = `${na}/${nb}`;
  test.serial(`lab ${name}: A connects to B knowing only its key and the bootstrap node; 4 MiB arrive intact`, async (t) => {
    const { a, b } = await setup(t, na, nb);
    const dial = await a.call<{ ms: number; path: ConnectionPath; remoteAddress: AddressInfo }>('connect-key', { publicKey: ready(b).publicKey, timeout: 15_000 }, 20_000);
    t.log(`${name}: ${dial.path.kind} in ${dial.ms.toFixed(0)} ms`);
    const x = await a.call<{ ms: number; ok: boolean }>('transfer', { publicKey: ready(b).publicKey, bytes: 4 * MiB }, 60_000);
    t.true(x.ok, 'SHA-256 of 4 MiB matches');
    table.push(`  ${name.padEnd(18)} ${dial.path.kind.padEnd(8)} connect ${dial.ms.toFixed(0).padStart(5)} ms   4 MiB in ${x.ms.toFixed(0).padStart(5)} ms`);
  });
}
