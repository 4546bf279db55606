// What the published packages contain: the main package's file list (as
// `npm pack` sees it), the per-platform packages under npm/ against
// `napi.targets` and `optionalDependencies`, and the built addon's symbols
// (no external buffers, which Electron's V8 memory cage forbids).
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join, posix } from 'node:path';
import test from 'ava';

const root = join(__dirname, '..');
const readJson = (path: string): any => JSON.parse(readFileSync(join(root, path), 'utf8'));
const pkg = readJson('package.json');

/** napi-rs target triple → the platform suffix of the package and the .node file. */
const PLATFORMS: Record<string, { dir: string; os: string; cpu: string; libc?: string }> = {
  'x86_64-unknown-linux-gnu': { dir: 'linux-x64-gnu', os: 'linux', cpu: 'x64', libc: 'glibc' },
  'aarch64-unknown-linux-gnu': { dir: 'linux-arm64-gnu', os: 'linux', cpu: 'arm64', libc: 'glibc' },
  'x86_64-unknown-linux-musl': { dir: 'linux-x64-musl', os: 'linux', cpu: 'x64', libc: 'musl' },
  'aarch64-unknown-linux-musl': { dir: 'linux-arm64-musl', os: 'linux', cpu: 'arm64', libc: 'musl' },
  'x86_64-apple-darwin': { dir: 'darwin-x64', os: 'darwin', cpu: 'x64' },
  'aarch64-apple-darwin': { dir: 'darwin-arm64', os: 'darwin', cpu: 'arm64' },
  'x86_64-pc-windows-msvc': { dir: 'win32-x64-msvc', os: 'win32', cpu: 'x64' },
  'aarch64-pc-windows-msvc': { dir: 'win32-arm64-msvc', os: 'win32', cpu: 'arm64' },
};

interface PackResult {
  files: Array<{ path: string }>;
}

function packedFiles(): string[] {
  // npm prints warnings on stderr; --json output on stdout is the file list.
  const out = execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], {
    cwd: root,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    shell: process.platform === 'win32',
  });
  const [result] = JSON.parse(out) as PackResult[];
  return result!.files.map((f) => f.path.replace(/\\/g, '/')).sort();
}

test('npm pack ships only compiled JS, typings, protos, README, LICENSE and the loader', (t) => {
  const files = packedFiles();
  t.log(`${files.length} files`);

  const allowed = [
    /^dist\/.+\.(?:js|mjs|d\.ts)$/,
    /^native\/binding\.(?:js|d\.ts)$/,
    /^src\/(?:messages|pex)\/[\w-]+\.proto$/,
    /^(?:README\.md|LICENSE|package\.json)$/,
  ];
  t.deepEqual(
    files.filter((f) => !allowed.some((re) => re.test(f))),
    [],
    'files outside the allow-list',
  );
  // The allow-list already excludes these; named here so a loosened list cannot let them in.
  for (const forbidden of [/\.node$/, /^crates\//, /^__test__\//, /^target\//, /^npm\//, /\.map$/, /^src\/.*(?<!\.d)\.ts$/]) {
    t.deepEqual(files.filter((f) => forbidden.test(f)), [], `forbidden: ${forbidden}`);
  }

  for (const required of [
    'LICENSE',
    'README.md',
    'dist/index.js',
    'dist/index.mjs',
    'dist/index.d.ts',
    'native/binding.js',
    'native/binding.d.ts',
    'src/messages/envelope.proto',
    'dist/messages/generated/envelope.js',
    'src/pex/peer-exchange.proto',
    'dist/pex/generated/peer-exchange.js',
  ]) {
    t.true(files.includes(required), `missing ${required}`);
  }

  // Every entry point package.json names is in the package.
  const exportTargets = Object.values(pkg.exports as Record<string, string | Record<string, string>>).flatMap((v) =>
    typeof v === 'string' ? [v] : Object.values(v),
  );
  for (const target of [pkg.main, pkg.types, ...exportTargets]) {
    t.true(files.includes(posix.normalize(target)), `entry point ${target} is not packed`);
  }
  // The CLI's source exists once the CLI has landed; from then on its build must ship.
  t.deepEqual(pkg.bin, { peersock: 'dist/cli.js' });
  if (existsSync(join(root, 'src', 'cli.ts'))) t.true(files.includes('dist/cli.js'), 'bin dist/cli.js is not packed');

  // Every relative require() in the shipped JavaScript resolves to a shipped file
  // (except in the loader, which tries a locally built ./peersock.<platform>.node first).
  const missing: string[] = [];
  for (const file of files.filter((f) => /\.(?:js|mjs)$/.test(f) && !f.startsWith('native/'))) {
    const source = readFileSync(join(root, file), 'utf8');
    for (const m of source.matchAll(/(?:require\(|from )\s*['"](\.{1,2}\/[^'"]+)['"]/g)) {
      const spec = posix.join(posix.dirname(file), m[1]!);
      const candidates = [spec, `${spec}.js`, `${spec}/index.js`];
      if (!candidates.some((c) => files.includes(c))) missing.push(`${file} → ${m[1]}`);
    }
  }
  t.deepEqual(missing, [], 'relative imports of files that are not packed');
});

test('platform packages match napi.targets and the exact-version optionalDependencies', (t) => {
  const targets: string[] = pkg.napi.targets;
  t.deepEqual([...targets].sort(), Object.keys(PLATFORMS).sort());
  const dirs = readdirSync(join(root, 'npm')).sort();
  t.deepEqual(dirs, targets.map((tr) => PLATFORMS[tr]!.dir).sort());

  const optional = pkg.optionalDependencies as Record<string, string>;
  t.deepEqual(
    Object.keys(optional).sort(),
    dirs.map((d) => `${pkg.name}-${d}`),
  );
  for (const [triple, p] of Object.entries(PLATFORMS)) {
    const sub = readJson(`npm/${p.dir}/package.json`);
    const name = `${pkg.name}-${p.dir}`;
    t.is(sub.name, name, triple);
    t.is(sub.version, pkg.version, `${name}: version`);
    t.is(optional[name], pkg.version, `${name}: exact version in optionalDependencies`);
    t.is(sub.main, `${pkg.napi.binaryName}.${p.dir}.node`, `${name}: main`);
    t.true(sub.files.includes(sub.main), `${name}: files ships main`);
    t.deepEqual(sub.os, [p.os], `${name}: os`);
    t.deepEqual(sub.cpu, [p.cpu], `${name}: cpu`);
    t.deepEqual(sub.libc, p.libc === undefined ? undefined : [p.libc], `${name}: libc`);
    t.is(sub.license, pkg.license, `${name}: license`);
    t.deepEqual(sub.engines, pkg.engines, `${name}: engines`);
    t.true(existsSync(join(root, 'npm', p.dir, 'README.md')), `${name}: README.md`);
    // The committed loader knows this package and its file name.
    const loader = readFileSync(join(root, 'native', 'binding.js'), 'utf8');
    t.true(loader.includes(`require('${name}')`), `loader requires ${name}`);
    t.true(loader.includes(`require('./${sub.main}')`), `loader tries ./${sub.main}`);
  }
});

/** The addon this checkout built for the running platform (what native/binding.js loads first). */
function localAddon(): string {
  const report = process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined;
  const libc = process.platform === 'linux' ? (report?.header?.glibcVersionRuntime ? 'gnu' : 'musl') : undefined;
  const entry = Object.values(PLATFORMS).find(
    (p) => p.os === process.platform && p.cpu === process.arch && (libc === undefined || p.dir.endsWith(libc)),
  );
  if (!entry) throw new Error(`no napi target for ${process.platform}-${process.arch}`);
  return join(root, 'native', `${pkg.napi.binaryName}.${entry.dir}.node`);
}

/** Undefined (imported) dynamic symbols of a shared library: ELF via `nm -D`, Mach-O via `nm -u`. */
function importedSymbols(file: string): string[] {
  const args = process.platform === 'darwin' ? ['-u', file] : ['-D', '--undefined-only', file];
  return execFileSync('nm', args, { encoding: 'utf8' })
    .split('\n')
    .map((line) => line.trim().split(/\s+/).pop()!)
    .filter(Boolean)
    .map((s) => s.replace(/^_/, '').replace(/@.*$/, ''));
}

// napi-rs links Node-API functions as undefined symbols that the host process
// resolves at load time (on Linux and macOS; Windows resolves them at run time
// by name, so an import table says nothing there). A function the addon can
// call is therefore in this list, and one it cannot call is not.
if (process.platform === 'linux' || process.platform === 'darwin') {
  test('the addon cannot create external buffers (Electron memory cage)', (t) => {
    const file = localAddon();
    t.true(existsSync(file), `${file} not built`);
    const napi = importedSymbols(file).filter((s) => s.startsWith('napi_') || s.startsWith('node_api_'));
    const creators = napi.filter((s) => s.startsWith('napi_create_'));
    t.log(`${napi.length} Node-API imports; creators: ${creators.join(' ')}`);
    // The check means something only if the addon's Node-API calls show up here.
    t.true(creators.includes('napi_create_object'), 'napi_create_object not imported: is the list meaningful?');
    t.true(creators.length >= 5);
    t.deepEqual(
      napi.filter((s) => /external_(?:array)?buffer/.test(s)),
      [],
      'the addon imports an external-buffer constructor',
    );
  });
}
