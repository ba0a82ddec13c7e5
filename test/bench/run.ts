// SPDX-License-Identifier: AGPL-3.0-only
/** `npm run bench`: runs every benchmark in turn; each prints its figures and a JSON summary line. */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const benches = ['relay-bench.js'];
let failed = false;
for (const b of benches) {
  const r = spawnSync(process.execPath, [fileURLToPath(new URL(`./${b}`, import.meta.url)), ...process.argv.slice(2)], { stdio: 'inherit' });
  if (r.status !== 0) failed = true;
}
process.exit(failed ? 1 : 0);
