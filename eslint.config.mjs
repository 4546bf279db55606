// ESLint (flat config) for the TypeScript sources, tests, benchmarks and
// scripts: ESLint's and typescript-eslint's recommended rules, no type-aware
// rules (tsc --noEmit already type-checks). Generated code is not linted.
import js from '@eslint/js';
import { defineConfig } from 'eslint/config';
import tseslint from 'typescript-eslint';
import globals from 'globals';
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import boundaries from 'eslint-plugin-boundaries';

// The layers of src/ (README, "Architecture"): each layer imports only the
// layers below it, type-only imports and re-exports included (checked by
// eslint-plugin-boundaries on every import, export-from and import()).
// `base` (errors, keys, the native loader) is below everything; `api` (the
// public barrel, index.ts) sits between the protocols and the CLI, which uses
// nothing else. A file's layer is the first entry naming it (a file, or a
// folder for what is in it and below); every file of src/ must have one.
const LAYERS = [
  ['api', ['src/index.ts']],
  ['l4-cli', ['src/cli.ts', 'src/cli/']],
  ['base', ['src/errors.ts', 'src/errors/', 'src/keys.ts', 'src/native.ts']],
  ['l0-transport', ['src/transport.ts', 'src/native-transport.ts', 'src/nat/wire.ts', 'src/nat/paths.ts', 'src/nat/probes.ts', 'src/nat/route.ts']],
  ['l3-protocols', ['src/nat/', 'src/pex/', 'src/discovery/']],
  ['l2-messages', ['src/messages/']],
  ['l1-socket', ['src/']],
];
/** Bottom to top: a layer may import its own and every earlier one (the CLI: the public API only). */
const ORDER = ['base', 'l0-transport', 'l1-socket', 'l2-messages', 'l3-protocols', 'api', 'l4-cli'];
const MAY_IMPORT = Object.fromEntries(ORDER.map((layer, i) => [layer, layer === 'l4-cli' ? ['api', 'l4-cli'] : ORDER.slice(0, i + 1)]));
const layerOf = (file) => LAYERS.find(([, paths]) => paths.some((p) => (p.endsWith('/') ? file.startsWith(p) : file === p)))?.[0];
const ROOT = fileURLToPath(new URL('.', import.meta.url));
const srcFiles = (dir) =>
  readdirSync(ROOT + dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? srcFiles(`${dir}/${e.name}`) : [`${dir}/${e.name}`]));
/** Every file of src/, by layer (exact paths: one category each). */
const FILES = ORDER.map((category) => ({ category, pattern: srcFiles('src').filter((f) => layerOf(f) === category) }));
const layerRule = [
  'error',
  {
    default: 'disallow',
    // All of src/ is one element; the layers are file categories, so every import counts.
    checkInternals: true,
    policies: ORDER.map((layer) => ({
      from: { file: { categories: layer } },
      allow: { to: { file: { categories: { anyOf: MAY_IMPORT[layer] } } } },
    })),
  },
];

export default defineConfig(
  {
    ignores: [
      'dist/',
      'docs/',
      'native/',
      'target/',
      '.quiche/',
      'artifacts/',
      'node_modules/',
      'npm/',
      'src/messages/generated/',
      'src/pex/generated/',
      '.ci/',
    ],
  },
  js.configs.recommended,
  tseslint.configs.recommended,
  {
    languageOptions: {
      globals: { ...globals.node },
    },
    rules: {
      // The public API defaults some generics to `any` on purpose (`handle<T = any>`:
      // a handler's message type comes from the protobuf type passed at run time).
      '@typescript-eslint/no-explicit-any': 'off',
      // Terminal output is matched with ESC (\x1b) in regular expressions on purpose.
      'no-control-regex': 'off',
      // Unused names are tsc's job (noUnusedLocals, noUnusedParameters); `_x` opts out.
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
    },
  },
  {
    files: ['src/**/*.ts'],
    plugins: { boundaries },
    settings: {
      'import/resolver': { node: { extensions: ['.ts', '.js', '.d.ts'] } },
      'boundaries/include': ['src/**'],
      'boundaries/elements': [{ type: 'src', pattern: 'src', partialMatch: false }],
      'boundaries/files': FILES,
    },
    rules: {
      'boundaries/dependencies': layerRule,
      'boundaries/no-unknown-files': 'error',
    },
  },
  {
    // Tables of error classes in the tests are typed as `Function` (constructors).
    files: ['__test__/**'],
    rules: { '@typescript-eslint/no-unsafe-function-type': 'off' },
  },
);
