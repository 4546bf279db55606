/**
 * The full leak soak of issue 5, scenario 16: 20,000 connect/echo/close
 * cycles and 100,000 stream open/close cycles in a child process, then RSS
 * (within 20 MiB of the baseline taken after a warm-up) and the active
 * handle counts (equal to the baseline). `npm test` runs a short version
 * (__test__/security.spec.ts); this is the long one.
 *
 *   node --import tsx scripts/soak-security.ts [cycles] [streams]
 *
 * Prints the figures as JSON and exits non-zero if a criterion fails.
 */
import { SOAK_NODE_FLAGS, nextMessage, startChild, type SoakResult } from '../__test__/lab/security-child';


async function main(): Promise<void> {
  const cycles = process.argv[2] ?? '20000';
  const streams = process.argv[3] ?? '100000';
  const soak = await startChild<{ ready: boolean }>('security-soak.ts', { CYCLES: cycles, STREAMS: streams }, 120_000, SOAK_NODE_FLAGS);
  try {
    soak.child.send({ cmd: 'go' });
    // Bounded: ten minutes is far beyond the few minutes the full counts take.
    const r = await nextMessage<SoakResult>(soak.child, 600_000);
    console.log(JSON.stringify(r, null, 2));
    const rssOk = r.rssAfterMiB - r.rssBaselineMiB <= 20;
    const handlesOk = JSON.stringify(r.handlesAfter) === JSON.stringify(r.handlesBefore);
    const connsOk = r.connectionsAfter.server === 1 && r.connectionsAfter.client === 1;
    console.log(
      `${r.cycles} connect/echo/close cycles + ${r.streams} stream cycles in ${(r.ms / 1000).toFixed(1)} s; ` +
        `RSS ${r.rssBaselineMiB} → ${r.rssAfterMiB} MiB (${rssOk ? 'ok' : 'FAIL'}: ≤ +20 MiB); ` +
        `handles ${handlesOk ? 'back to baseline' : 'FAIL: not back to baseline'}; ` +
        `endpoint connections ${connsOk ? 'back to baseline' : 'FAIL'}`,
    );
    process.exitCode = rssOk && handlesOk && connsOk ? 0 : 1;
  } finally {
    await soak.kill();
  }
}

void main().catch((e) => {
  console.error(e);
  process.exit(1);
});
