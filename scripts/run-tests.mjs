// SPDX-License-Identifier: AGPL-3.0-only
// Runs every compiled test of the monorepo with node:test, the one runner the project uses.
// Usage: node scripts/run-tests.mjs [substring …]  — only test files whose path contains one.
import { spawnSync } from 'node:child_process';
import { globSync } from 'node:fs';

const patterns = ['*/dist/test/**/*.test.js', 'clients/*/dist/test/**/*.test.js', 'test/dist/e2e/**/*.test.js', 'test/dist/unit/**/*.test.js'];
const filters = process.argv.slice(2);
const files = [...new Set(patterns.flatMap((p) => globSync(p, { exclude: (f) => f.includes('node_modules') })))]
  .filter((f) => filters.length === 0 || filters.some((s) => f.includes(s)))
  .sort();
if (files.length === 0) {
  console.error('no test files found: run `npm run build` first');
  process.exit(1);
}
const result = spawnSync(
  process.execPath,
  ['--test', '--test-concurrency=2', '--test-timeout=120000', '--test-reporter=spec', ...files],
  { stdio: 'inherit' },
);
process.exit(result.status ?? 1);
