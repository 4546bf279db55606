// Copies the committed, generated protobuf codecs (plain JavaScript, which
// tsc does not emit) from every `generated/` folder of src/ (messages/ and
// pex/) into dist/, beside the compiled modules.
import { copyFileSync, mkdirSync, readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const src = join(root, 'src');
const dist = join(root, 'dist');

/**
 * The `generated/` folders under `dir`.
 * @param {string} dir
 * @returns {string[]}
 */
function generatedDirs(dir) {
  return readdirSync(dir, { withFileTypes: true })
    .filter((e) => e.isDirectory())
    .flatMap((e) => (e.name === 'generated' ? [join(dir, e.name)] : generatedDirs(join(dir, e.name))));
}

for (const from of generatedDirs(src)) {
  const to = join(dist, relative(src, from));
  mkdirSync(to, { recursive: true });
  for (const f of readdirSync(from)) {
    if (f.endsWith('.js') || f.endsWith('.d.ts')) copyFileSync(join(from, f), join(to, f));
  }
}
