// SPDX-License-Identifier: AGPL-3.0-only
/**
 * Presence through the client engine and a real relay process: contacts learn each other's
 * presence token from their messages, see each other online, away and offline within 2 s, and
 * lose sight of an account that turns presence off or rotates its token; without a token there
 * is nothing to see.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { PresenceView } from '@parley/client';
import { openRecording, startListening, until, type RecordingClient } from '../support/client-harness.js';
import { startRelay, type RelayProcess } from '../support/relay-process.js';

const stateOf = (list: readonly PresenceView[], address: string) => list.find((p) => p.address === address);

describe('client engine: presence', () => {
  let relay: RelayProcess;
  let alice: RecordingClient;
  let bob: RecordingClient;
  let carol: RecordingClient;
  const seen: PresenceView[] = [];

  /** Waits for alice to hear bob's presence reach `state`, and answers how long it took. */
  async function heard(state: PresenceView['state'], since: number): Promise<{ ms: number; view: PresenceView }> {
    let found: PresenceView | undefined;
    await until(`alice to see bob ${state}`, () => (found = seen.find((p, i) => i >= since && p.address === 'bob@localhost' && p.state === state)) !== undefined, 10_000);
    return { ms: Date.now() - startedAt, view: found! };
  }
  let startedAt = 0;

  before(async () => {
    relay = await startRelay();
    alice = await openRecording();
    bob = await openRecording();
    carol = await openRecording();
    await alice.client.register(relay.url, 'alice');
    await bob.client.register(relay.url, 'bob');
    await carol.client.register(relay.url, 'carol');
    alice.client.on('presence', (p) => seen.push(p));
  });
  after(async () => {
    for (const c of [alice, bob, carol]) await c?.client.close();
    await relay?.stop();
  });

  it('hands the presence token over with messages: a contact who got none sees nothing', async () => {
    // Carol writes to bob, but bob never wrote to carol: she holds no token of his.
    await carol.client.send('bob', 'hi bob, carol here');
    await alice.client.send('bob', 'hi bob');
    await bob.client.send('alice', 'hi alice');
    await bob.client.receive();
    await alice.client.receive();
    const forCarol = await carol.client.presence();
    assert.deepEqual(forCarol.map((p) => [p.address, p.state]), [['bob@localhost', 'unknown']]);
    const forAlice = await alice.client.presence();
    assert.deepEqual(
      forAlice.map((p) => [p.address, p.state]),
      [['bob@localhost', 'offline']],
      'bob is not connected; alice holds his token',
    );
    assert.ok(stateOf(forAlice, 'bob@localhost')!.lastSeen! > 0, 'with the time he was last seen');
  });

  it('shows a contact online, away and offline within 2 s while listening', async () => {
    const watching = await startListening(alice.client);
    try {
      let since = seen.length;
      startedAt = Date.now();
      const bobListening = await startListening(bob.client);
      try {
        const online = await heard('online', since);
        assert.ok(online.ms < 2000, `online after ${online.ms} ms`);
        since = seen.length;
        startedAt = Date.now();
        bob.client.setPresence('away');
        const away = await heard('away', since);
        assert.ok(away.ms < 2000, `away after ${away.ms} ms`);
        bob.client.setPresence('online');
        await heard('online', since);
      } finally {
        since = seen.length;
        startedAt = Date.now();
        await bobListening.stop();
      }
      const offline = await heard('offline', since);
      assert.ok(offline.ms < 2000, `offline after ${offline.ms} ms`);
      assert.ok(offline.view.lastSeen! >= startedAt - 1000, 'last seen when he left');
    } finally {
      await watching.stop();
    }
  });

  it('remembers a device’s away state for its next connections', async () => {
    bob.client.setPresence('away');
    const bobListening = await startListening(bob.client);
    try {
      const list = await alice.client.presence();
      assert.equal(stateOf(list, 'bob@localhost')?.state, 'away');
    } finally {
      bob.client.setPresence('online');
      await bobListening.stop();
    }
  });

  it('loses sight of an account that turns presence off, and of a rotated token until the next message', async () => {
    const watching = await startListening(alice.client);
    try {
      const since = seen.length;
      await bob.client.updateSettings({ presence: false });
      await until('alice to lose sight of bob', () => seen.slice(since).some((p) => p.address === 'bob@localhost' && p.state === 'unknown'), 10_000);
    } finally {
      await watching.stop();
    }
    assert.equal(stateOf(await alice.client.presence(), 'bob@localhost')?.state, 'unknown');
    await assert.rejects(bob.client.presence(), (e: Error & { code?: string }) => e.code === 'SETTING_OFF', 'no watching without sharing');

    await bob.client.updateSettings({ presence: true });
    assert.equal(stateOf(await alice.client.presence(), 'bob@localhost')?.state, 'offline', 'the same token again: alice sees him again');
    await bob.client.rotatePresenceToken();
    assert.equal(stateOf(await alice.client.presence(), 'bob@localhost')?.state, 'unknown', 'the old token is worthless');
    await bob.client.send('alice', 'my new token rides on this');
    await alice.client.receive();
    assert.equal(stateOf(await alice.client.presence(), 'bob@localhost')?.state, 'offline');
  });
});
