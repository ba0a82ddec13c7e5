#!/usr/bin/env node
// SPDX-License-Identifier: AGPL-3.0-only
// The parley command. The code lives in dist/ (built by `npm install` through the root
// `prepare` script, or `npm run build`).
import { main } from '../dist/src/main.js';

main(process.argv.slice(2), process.env, { stdout: process.stdout, stderr: process.stderr, stdin: process.stdin }).then(
  (code) => {
    process.exitCode = code;
  },
  (err) => {
    console.error(err instanceof Error ? err.message : String(err));
    process.exitCode = 1;
  },
);
