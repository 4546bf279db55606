// Copies the committed, generated protobuf codecs (plain JavaScript, which
// tsc does not emit) from src/ into dist/ beside the compiled modules.
import { copyFileSync, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const from = join(root, 'src', 'messages', 'generated');
const to = join(root, 'dist', 'messages', 'generated');
mkdirSync(to, { recursive: true });
for (const f of readdirSync(from)) {
  if (f.endsWith('.js') || f.endsWith('.d.ts')) copyFileSync(join(from, f), join(to, f));
}
