// SPDX-License-Identifier: AGPL-3.0-only
/**
 * `npm run bench`: runs every benchmark in turn; each prints its figures and a JSON summary line.
 * `npm run bench -- client --messages 500` runs only the benchmarks whose name starts with the
 * first argument, with the flags after it (each benchmark has flags of its own).
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const benches = ['relay-bench.js', 'client-bench.js', 'attachment-bench.js', 'group-bench.js', 'group-start-bench.js', 'fanout-bench.js'];
const [first, ...rest] = process.argv.slice(2);
const only = first !== undefined && !first.startsWith('-') ? first : undefined;
const flags = only === undefined ? process.argv.slice(2) : rest;
const chosen = benches.filter((b) => only === undefined || b.startsWith(only));
if (chosen.length === 0) {
  console.error(`no benchmark named ${only}; there are: ${benches.map((b) => b.replace(/-bench\.js$/, '')).join(', ')}`);
  process.exit(2);
}
let failed = false;
for (const b of chosen) {
  const r = spawnSync(process.execPath, [fileURLToPath(new URL(`./${b}`, import.meta.url)), ...flags], { stdio: 'inherit' });
  if (r.status !== 0) failed = true;
}
process.exit(failed ? 1 : 0);
