// SPDX-License-Identifier: AGPL-3.0-only
/**
 * The client engine's connection over a relay that dies and comes back, and its key upkeep:
 * real relay processes, real profiles.
 */
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { openParleyClient, type MessageView, type ParleyClientApi } from '@parley/client';
import type { BundleResponse } from '@parley/protocol';
import { startRelay } from '../support/relay-process.js';
import { registerAccount } from '../support/test-device.js';

const profile = () => mkdtempSync(join(tmpdir(), 'parley-profile-'));

async function until(what: string, ok: () => boolean, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('client transport', () => {
  it('reconnects after the relay is killed and restarted, and resumes delivery', async () => {
    let relay = await startRelay();
    const port = relay.port;
    const alice: ParleyClientApi = await openParleyClient({ profileDir: profile() });
    const bob: ParleyClientApi = await openParleyClient({ profileDir: profile() });
    try {
      await alice.register(relay.url, 'alice');
      await bob.register(relay.url, 'bob');
      const got: MessageView[] = [];
      const states: string[] = [];
      bob.on('message', (m) => got.push(m));
      bob.on('connection', (s) => states.push(s));
      const stop = new AbortController();
      const listening = bob.listen(stop.signal);
      await alice.send('bob', 'before the crash');
      await until('the first message', () => got.length === 1);
      await relay.kill();
      await until('bob to notice', () => states.includes('disconnected'));
      relay = await startRelay({ dataDir: relay.dataDir, port });
      const sent = await alice.send('bob', 'after the restart');
      assert.equal(sent.status, 'sent');
      await until('the second message over the new connection', () => got.length === 2);
      assert.deepEqual(got.map((m) => m.text), ['before the crash', 'after the restart']);
      assert.ok(states.filter((s) => s === 'connected').length >= 2, `states: ${states.join(',')}`);
      stop.abort();
      await listening;
    } finally {
      await alice.close();
      await bob.close();
      await relay.stop();
    }
  });

  it('refills one-time prekeys when the relay runs low', async () => {
    const relay = await startRelay();
    const alice = await openParleyClient({ profileDir: profile() });
    try {
      const me = await alice.register(relay.url, 'alice');
      const claimer = await registerAccount(relay.url, 'claimer', 1);
      const claim = () => claimer.call<BundleResponse>('GET', `/v1/keys/${me.aci}/1`);
      for (let i = 0; i < 85; i++) assert.equal((await claim()).status, 200);
      // 15 one-time EC keys left: connecting lets the engine see the count and refill.
      await alice.receive();
      let withPreKey = 0;
      for (let i = 0; i < 30; i++) if ((await claim()).body.devices[0]!.preKey) withPreKey++;
      assert.equal(withPreKey, 30, 'without a refill only 15 claims would carry a one-time key');
    } finally {
      await alice.close();
      await relay.stop();
    }
  });
});
