// SPDX-License-Identifier: AGPL-3.0-only
/**
 * Typing indicators in a group through a real relay process: one online-only multi-recipient
 * upload under the sender's group key, shown to listening members as typing in the group, never
 * queued for an offline member (the relay's database is compared before and after), throttled,
 * and not sent while the setting is off.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { ParleyClientApi, TypingEvent } from '@parley/client';
import { openRecording, startListening as listening, until, type RecordingClient } from '../support/client-harness.js';
import { startRelay, type RelayProcess } from '../support/relay-process.js';
import { snapshotState } from '../support/state-snapshot.js';

function typingOf(client: ParleyClientApi): TypingEvent[] {
  const events: TypingEvent[] = [];
  client.on('typing', (e) => events.push(e));
  return events;
}

describe('typing indicators in a group', () => {
  let relay: RelayProcess;
  let alice: RecordingClient;
  let bob: RecordingClient;
  let carol: RecordingClient;
  let bobTyping: TypingEvent[];
  let carolTyping: TypingEvent[];
  let group = '';
  let groupId = '';

  const queueTables = () => {
    const t = snapshotState(relay.dataDir).tables;
    return Object.fromEntries(Object.entries(t).filter(([name]) => name.startsWith('relay.db/')));
  };

  before(async () => {
    relay = await startRelay();
    alice = await openRecording();
    bob = await openRecording();
    carol = await openRecording();
    await alice.client.register(relay.url, 'alice');
    await bob.client.register(relay.url, 'bob');
    await carol.client.register(relay.url, 'carol');
    bobTyping = typingOf(bob.client);
    carolTyping = typingOf(carol.client);
    groupId = (await alice.client.createGroup('belay', ['bob', 'carol'])).id;
    group = `#${groupId}`;
    // The first message hands alice's group key to every member device.
    assert.equal((await alice.client.send(group, 'hello group')).status, 'sent');
    for (const c of [bob, carol]) await c.client.receive();
    await alice.client.receive();
  });
  after(async () => {
    for (const c of [alice, bob, carol]) await c?.client.close();
    await relay?.stop();
  });

  it('reaches a listening member as typing in the group, and is never queued for an offline one', async () => {
    const live = await listening(bob.client);
    try {
      const before = queueTables();
      const r = await alice.client.typing(group, 'started');
      assert.deepEqual(r, { sent: true, devices: 1 }, 'bob’s one device was online, carol’s was not');
      await until('bob to see alice typing in the group', () => bobTyping.length === 1);
      assert.deepEqual(
        bobTyping.map((e) => [e.from, e.conversation, e.groupId, e.action]),
        [['alice@localhost', group, groupId, 'started']],
      );
      assert.deepEqual(queueTables(), before, 'no envelope, no dedup entry, no queue change in the relay’s database');
      assert.deepEqual(await alice.client.typing(group, 'started'), { sent: false, reason: 'throttled', devices: 0 });
      await alice.client.typing(group, 'stopped');
      await until('bob to see alice stop', () => bobTyping.length === 2);
      assert.equal(bobTyping[1]!.action, 'stopped');
      assert.equal(bob.client.history(group).filter((m) => m.kind === 'text').length, 1, 'typing is never stored as a message');
    } finally {
      await live.stop();
    }
    await carol.client.receive();
    assert.deepEqual(carolTyping, [], 'carol, offline then, gets nothing later');
  });

  it('sends nothing while switched off, and a member with it off shows nothing', async () => {
    await alice.client.updateSettings({ typingIndicators: false });
    assert.deepEqual(await alice.client.typing(group, 'started'), { sent: false, reason: 'off', devices: 0 });
    await alice.client.updateSettings({ typingIndicators: true });

    // Bob has no group key of his own before his first group message: a typing indicator hands
    // none out, so it reaches nobody yet.
    assert.deepEqual(await bob.client.typing(group, 'started'), { sent: true, devices: 0 });
    await bob.client.send(group, 'from bob');
    for (const c of [alice, carol]) await c.client.receive();

    await carol.client.updateSettings({ typingIndicators: false });
    const live = await listening(carol.client);
    try {
      await new Promise((r) => setTimeout(r, 3_100)); // bob's throttle
      assert.deepEqual(await bob.client.typing(group, 'started'), { sent: true, devices: 1 }, 'carol is online');
      // A message sent after the indicator arrives after it: once it is here, the indicator was handled.
      const shown = carol.messages.length;
      await bob.client.send(group, 'after typing');
      await until('carol to get the message', () => carol.messages.length > shown);
      assert.deepEqual(carolTyping, [], 'the indicator was ignored');
    } finally {
      await live.stop();
    }
  });
});
