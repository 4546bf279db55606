// Moves what `napi build` wrote into native/.out over native/ by rename, so a
// rebuild never rewrites a .node file in place while a running test process
// has it mapped (an in-place overwrite of a mapped library crashes that process).
import { readdirSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';

const out = new URL('../native/.out/', import.meta.url).pathname;
const dest = new URL('../native/', import.meta.url).pathname;
for (const name of readdirSync(out)) renameSync(join(out, name), join(dest, name));
rmSync(out, { recursive: true, force: true });
