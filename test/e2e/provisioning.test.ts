// SPDX-License-Identifier: AGPL-3.0-only
/**
 * Provisioning sockets: a device being linked waits on an unauthenticated socket; an existing
 * device hands it one opaque message through the relay, which stores nothing of it.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import WebSocket from 'ws';
import { decodeFrame, toBase64Url, type Frame } from '@parley/protocol';
import { startRelay, type RelayProcess } from '../support/relay-process.js';
import { snapshotState } from '../support/state-snapshot.js';
import { http, registerAccount, type TestDevice } from '../support/test-device.js';

interface Waiting {
  ws: WebSocket;
  frames: Frame[];
  address: string;
  closed: Promise<{ code: number; reason: string }>;
}

async function waitForLink(relay: RelayProcess): Promise<Waiting> {
  const ws = new WebSocket(relay.wsUrl.replace('/v1/websocket', '/v1/provisioning'));
  const frames: Frame[] = [];
  const closed = new Promise<{ code: number; reason: string }>((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  const address = await new Promise<string>((resolve, reject) => {
    ws.on('message', (d: Buffer) => {
      const f = decodeFrame(new Uint8Array(d));
      frames.push(f);
      if (f.kind.case === 'provisioningAddress') resolve(f.kind.value.address);
    });
    ws.once('error', reject);
  });
  return { ws, frames, address, closed };
}

describe('provisioning sockets', () => {
  let relay: RelayProcess;
  let alice: TestDevice;
  before(async () => {
    relay = await startRelay();
    alice = await registerAccount(relay.url, 'alice', 1);
  });
  after(async () => {
    await relay.stop();
  });

  it('hands one opaque message from an existing device to the waiting device, then closes, storing nothing', async () => {
    const waiting = await waitForLink(relay);
    assert.ok(waiting.address.length >= 20, 'an unguessable address');
    const expires = waiting.frames[0]!.kind.case === 'provisioningAddress' ? Number(waiting.frames[0]!.kind.value.expiresAt) : 0;
    assert.ok(expires > Date.now() + 60_000);
    const before = snapshotState(relay.dataDir);
    const body = randomBytes(900);
    const put = await alice.call('PUT', `/v1/provisioning/${waiting.address}`, { body: toBase64Url(body) });
    assert.equal(put.status, 204, JSON.stringify(put.body));
    const closed = await waiting.closed;
    assert.equal(closed.code, 1000);
    const msg = waiting.frames.find((f) => f.kind.case === 'provisioningMessage');
    assert.ok(msg && msg.kind.case === 'provisioningMessage');
    assert.deepEqual(Buffer.from(msg.kind.value.body), body);
    assert.deepEqual(snapshotState(relay.dataDir), before);
    // Single use.
    const again = await alice.call<{ code: string }>('PUT', `/v1/provisioning/${waiting.address}`, { body: toBase64Url(body) });
    assert.equal(again.status, 404);
    assert.equal(again.body.code, 'NOT_FOUND');
  });

  it('refuses an unauthenticated sender, an unknown address, and an oversize or malformed body', async () => {
    const waiting = await waitForLink(relay);
    const anon = await http<{ code: string }>(relay.url, 'PUT', `/v1/provisioning/${waiting.address}`, { body: 'AAAA' });
    assert.equal(anon.status, 401);
    assert.equal(anon.body.code, 'UNAUTHORIZED');
    const unknown = await alice.call<{ code: string }>('PUT', `/v1/provisioning/${'x'.repeat(24)}`, { body: 'AAAA' });
    assert.equal(unknown.status, 404);
    const big = await alice.call<{ code: string }>('PUT', `/v1/provisioning/${waiting.address}`, { body: toBase64Url(randomBytes(70 * 1024)) });
    assert.equal(big.status, 400);
    assert.equal(big.body.code, 'BAD_REQUEST');
    const bad = await alice.call<{ code: string }>('PUT', `/v1/provisioning/${waiting.address}`, { body: 'not base64url!' });
    assert.equal(bad.status, 400);
    // The socket still waits after refused attempts.
    const ok = await alice.call('PUT', `/v1/provisioning/${waiting.address}`, { body: 'AAAA' });
    assert.equal(ok.status, 204);
    await waiting.closed;
  });
});
