// SPDX-License-Identifier: AGPL-3.0-only
/**
 * Typing indicators in a group through a real relay process: one online-only multi-recipient
 * upload under the sender's group key, shown on every listening member device (one member has
 * two) as typing in the group, never queued for an offline member (the relay's database is compared before and after), throttled,
 * and not sent while the setting is off.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { ParleyClientApi, TypingEvent } from '@parley/client';
import { linkNewDevice, openRecording, startListening as listening, until, type RecordingClient } from '../support/client-harness.js';
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
  let bob2: RecordingClient;
  let carol: RecordingClient;
  let bobTyping: TypingEvent[];
  let bob2Typing: TypingEvent[];
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
    bob2 = (await linkNewDevice(bob, relay.url)).device;
    bobTyping = typingOf(bob.client);
    bob2Typing = typingOf(bob2.client);
    carolTyping = typingOf(carol.client);
    groupId = (await alice.client.createGroup('belay', ['bob', 'carol'])).id;
    group = `#${groupId}`;
    // The first message hands alice's group key to every member device.
    assert.equal((await alice.client.send(group, 'hello group')).status, 'sent');
    for (const c of [bob, bob2, carol]) await c.client.receive();
    await alice.client.receive();
  });
  after(async () => {
    for (const c of [alice, bob, bob2, carol]) await c?.client.close();
    await relay?.stop();
  });

  it('reaches every listening member device as typing in the group, is never queued for an offline one, and is not sent while switched off', async () => {
    const live = [await listening(bob.client), await listening(bob2.client)];
    try {
      const before = queueTables();
      const r = await alice.client.typing(group, 'started');
      assert.deepEqual(r, { sent: true, devices: 2 }, 'bob’s two devices were online, carol’s was not');
      await until('both of bob’s devices to see alice typing in the group', () => bobTyping.length === 1 && bob2Typing.length === 1);
      for (const events of [bobTyping, bob2Typing]) {
        assert.deepEqual(
          events.map((e) => [e.from, e.conversation, e.groupId, e.action]),
          [['alice@localhost', group, groupId, 'started']],
        );
      }
      assert.deepEqual(queueTables(), before, 'no envelope, no dedup entry, no queue change in the relay’s database');
      assert.deepEqual(await alice.client.typing(group, 'started'), { sent: false, reason: 'throttled', devices: 0 });
      await alice.client.typing(group, 'stopped');
      await until('bob to see alice stop', () => bobTyping.length === 2);
      assert.equal(bobTyping[1]!.action, 'stopped');
      assert.equal(bob.client.history(group).filter((m) => m.kind === 'text').length, 1, 'typing is never stored as a message');

      // Switched off, nothing leaves: a message sent after it reaches bob, and no indicator before it.
      await alice.client.updateSettings({ typingIndicators: false });
      assert.deepEqual(await alice.client.typing(group, 'started'), { sent: false, reason: 'off', devices: 0 });
      assert.deepEqual(await alice.client.typing(group, 'stopped'), { sent: false, reason: 'off', devices: 0 });
      await alice.client.updateSettings({ typingIndicators: true });
      const shown = bob.messages.length;
      await alice.client.send(group, 'typed while switched off');
      await until('bob to get the message', () => bob.messages.length > shown);
      assert.equal(bobTyping.length, 2, 'no indicator while switched off');
    } finally {
      for (const l of live) await l.stop();
    }
    await carol.client.receive();
    assert.deepEqual(carolTyping, [], 'carol, offline then, gets nothing later');
  });

  it('reaches nobody before the sender’s own key is handed out, and a member with it off shows nothing', async () => {
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
