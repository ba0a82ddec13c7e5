#!/usr/bin/env node
// SPDX-License-Identifier: AGPL-3.0-only
// The parley-relay command: relay + key server in one process. The code lives in dist/ (built
// by `npm install` through the root `prepare` script, or `npm run build`).
import { main } from '../dist/src/bin/main.js';

main(process.argv.slice(2), process.env).catch((err) => {
  console.error(err instanceof Error ? err.message : String(err));
  process.exit(1);
});
