#!/usr/bin/env node
// SPDX-License-Identifier: AGPL-3.0-only
// The parley command. The code lives in dist/ (built by `npm install` through the root
// `prepare` script, or `npm run build`).
import { main } from '../dist/src/main.js';

// A reader that goes away (`parley listen | head -1`) stops the command as SIGTERM would:
// `listen` closes its profile cleanly, other commands finish without a stack trace.
let readerGone = false;
const onStreamError = (err) => {
  if (readerGone) return;
  if (err && (err.code === 'EPIPE' || err.code === 'ERR_STREAM_DESTROYED')) {
    readerGone = true;
    process.emit('SIGTERM', 'SIGTERM');
    return;
  }
  throw err;
};
process.stdout.on('error', onStreamError);
process.stderr.on('error', onStreamError);

main(process.argv.slice(2), process.env, { stdout: process.stdout, stderr: process.stderr, stdin: process.stdin }).then(
  (code) => {
    process.exitCode = code;
  },
  (err) => {
    console.error(err instanceof Error ? err.message : String(err));
    process.exitCode = 1;
  },
);
