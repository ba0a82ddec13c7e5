// SPDX-License-Identifier: AGPL-3.0-only
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['**/dist/**', '**/node_modules/**', '.cache/**', 'protocol/src/gen/**', 'data/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    // Plain JavaScript entry points run on Node.
    files: ['**/*.js', '**/*.mjs'],
    languageOptions: { globals: { process: 'readonly', console: 'readonly' } },
  },
  {
    files: ['**/*.ts'],
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      // Packages meet only at their entry (CONVENTIONS 2): no deep imports into another package.
      'no-restricted-imports': ['error', { patterns: [{ group: ['@parley/*/*'], message: 'import a package through its entry only' }] }],
    },
  },
  {
    // crypto/ alone imports libsignal (DESIGN 2).
    files: ['keyserver/**/*.ts', 'relay/**/*.ts', 'test/**/*.ts', 'protocol/**/*.ts', 'clients/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [
        { group: ['@signalapp/libsignal-client', '@signalapp/libsignal-client/*'], message: 'only @parley/crypto imports libsignal' },
        { group: ['@parley/*/*'], message: 'import a package through its entry only' },
      ] }],
    },
  },
  {
    // protocol/ is plain TypeScript so the desktop renderer can use it (CONVENTIONS 3).
    files: ['protocol/src/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [
        { group: ['node:*'], message: 'protocol/ must not import Node modules' },
        { group: ['@signalapp/libsignal-client', '@signalapp/libsignal-client/*'], message: 'only @parley/crypto imports libsignal' },
        { group: ['@parley/*/*'], message: 'import a package through its entry only' },
      ] }],
    },
  },
);
