// ESLint (flat config) for the TypeScript sources, tests, benchmarks and
// scripts: ESLint's and typescript-eslint's recommended rules, no type-aware
// rules (tsc --noEmit already type-checks). Generated code is not linted.
import js from '@eslint/js';
import { defineConfig } from 'eslint/config';
import tseslint from 'typescript-eslint';
import globals from 'globals';

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
    // Tables of error classes in the tests are typed as `Function` (constructors).
    files: ['__test__/**'],
    rules: { '@typescript-eslint/no-unsafe-function-type': 'off' },
  },
);
