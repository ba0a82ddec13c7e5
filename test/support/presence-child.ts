// SPDX-License-Identifier: AGPL-3.0-only
/**
 * A device that holds its WebSocket in a process of its own, so a test can SIGKILL it (its
 * operating system closes the socket) or SIGSTOP it (the socket stays open and nothing answers).
 * Run as `node presence-child.js <wsUrl> [away]` with the Authorization header value in
 * `PARLEY_TEST_AUTHORIZATION` (not on the command line, where `ps` shows it). Prints `connected`
 * once the socket is open (and its PresenceSet sent), then waits; exits when the socket closes.
 */
import WebSocket from 'ws';
import { encodeFrame, PresenceState } from '@parley/protocol';

const [wsUrl, state] = process.argv.slice(2);
const authorization = process.env.PARLEY_TEST_AUTHORIZATION;
if (!wsUrl || !authorization) throw new Error('usage: PARLEY_TEST_AUTHORIZATION=… presence-child <wsUrl> [away]');
const ws = new WebSocket(wsUrl, { headers: { authorization }, perMessageDeflate: false });
ws.on('open', () => {
  if (state === 'away') ws.send(encodeFrame({ kind: { case: 'presenceSet', value: { state: PresenceState.AWAY } } }));
  process.stdout.write('connected\n');
});
ws.on('close', () => process.exit(0));
ws.on('error', (err) => {
  process.stderr.write(`${err.message}\n`);
  process.exit(1);
});
