// SPDX-License-Identifier: AGPL-3.0-only
import assert from 'node:assert/strict';
import { createServer, request } from 'node:http';
import { connect } from 'node:net';
import { it } from 'node:test';
import { trackUnusedConnections } from '../src/unused-connections.js';

it('closes connections that never sent a request, and leaves those with a request in flight', async () => {
  let release: () => void = () => {};
  const server = createServer((_req, res) => {
    release = () => res.end('done');
  });
  const closeUnused = trackUnusedConnections(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;

  const spare = connect(port, '127.0.0.1');
  await new Promise((r) => spare.once('connect', r));
  const spareClosed = new Promise((r) => spare.once('close', r));
  const answer = new Promise<string>((resolve, reject) => {
    request({ host: '127.0.0.1', port, path: '/', agent: false }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve(body));
    })
      .on('error', reject)
      .end();
  });
  await new Promise((r) => setTimeout(r, 50));

  const started = Date.now();
  const closed = new Promise<void>((r) => server.close(() => r()));
  closeUnused();
  await spareClosed;
  // The request in flight still gets its answer; then the server closes at once.
  release();
  assert.equal(await answer, 'done');
  await closed;
  assert.ok(Date.now() - started < 2000, `closed after ${Date.now() - started} ms`);
});
