// SPDX-License-Identifier: AGPL-3.0-only
/**
 * Group changes through a real relay process: made on one device, sent pairwise, replayed on
 * every member device (and the maker's other device) to the same state, whatever order
 * concurrent changes arrive in.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ClientError, type GroupView, type ParleyClientApi } from '@parley/client';
import { fullHistory, linkNewDevice, openRecording, type RecordingClient } from '../support/client-harness.js';
import { startRelay, type RelayProcess } from '../support/relay-process.js';

/** What must be equal on every device: title, members in order, admins, revision. */
const shape = (g: GroupView) => ({ title: g.title, members: g.members.map((m) => [m.address, m.admin]), revision: g.revision });

describe('group changes converge on every device', () => {
  let relay: RelayProcess;
  let alice: RecordingClient;
  let alice2: RecordingClient;
  let bob: RecordingClient;
  let carol: RecordingClient;
  let group: string;

  before(async () => {
    relay = await startRelay();
    [alice, bob, carol] = await Promise.all([openRecording(), openRecording(), openRecording()]);
    await alice.client.register(relay.url, 'alice');
    await bob.client.register(relay.url, 'bob');
    await carol.client.register(relay.url, 'carol');
    alice2 = (await linkNewDevice(alice, relay.url, { timeoutMs: 20_000 })).device;
  });
  after(async () => {
    for (const c of [alice, alice2, bob, carol]) await c?.client.close();
    await relay?.stop();
  });

  const everyone = (): ParleyClientApi[] => [alice.client, alice2.client, bob.client, carol.client];
  const drain = async (clients: ParleyClientApi[] = everyone()): Promise<void> => {
    // Two rounds: answers sent while handling the first (own changes to new members) land in the second.
    for (let round = 0; round < 2; round++) for (const c of clients) await c.receive();
  };

  it('creates a group that the members and the creator’s other device learn of', async () => {
    const g = await alice.client.createGroup('climbing', ['bob']);
    group = `#${g.id}`;
    assert.deepEqual(shape(g), { title: 'climbing', members: [['alice@localhost', true], ['bob@localhost', false]], revision: 2 });
    await drain([bob.client, alice2.client, carol.client]);
    assert.deepEqual(shape(bob.client.group(group)), shape(g));
    assert.deepEqual(shape(alice2.client.group('#climbing')), shape(g), 'the other device names it by title too');
    assert.throws(() => carol.client.group(group), (e) => e instanceof ClientError && e.code === 'NOT_FOUND', 'a non-member hears nothing');
  });

  it('refuses a non-admin’s change before anything is sent', async () => {
    await assert.rejects(bob.client.setGroupTitle(group, 'mine'), (e) => e instanceof ClientError && e.code === 'NOT_GROUP_ADMIN');
    assert.equal(bob.client.group(group).title, 'climbing');
  });

  it('gives a new member the whole log, and concurrent title changes converge', async () => {
    await alice.client.addGroupMembers(group, ['carol']);
    await alice.client.changeGroupAdmins(group, { add: ['bob'] });
    await drain();
    assert.equal(carol.client.group(group).members.length, 3, 'carol replayed the log from the create on');
    // Both admins change the title without seeing each other's change.
    await Promise.all([alice.client.setGroupTitle(group, 'from alice'), bob.client.setGroupTitle(group, 'from bob')]);
    await drain();
    const shapes = everyone().map((c) => shape(c.group(group)));
    for (const s of shapes) assert.deepEqual(s, shapes[0]);
    assert.ok(['from alice', 'from bob'].includes(shapes[0]!.title));
  });

  it('tells a removed member, who then is no member any more, and shows the same notices everywhere', async () => {
    await bob.client.removeGroupMembers(group, ['carol']);
    await drain();
    const c = carol.client.group(group);
    assert.equal(c.member, false);
    assert.deepEqual(shape(c), shape(alice.client.group(group)));
    await assert.rejects(carol.client.send(group, 'still here?'), (e) => e instanceof ClientError && e.code === 'NOT_GROUP_MEMBER');
    const notices = (client: ParleyClientApi) => fullHistory(client, group).map((m) => [m.id, m.text]);
    const a = notices(alice.client);
    assert.equal(a.length, 7);
    for (const other of [alice2.client, bob.client, carol.client]) assert.deepEqual(notices(other), a);
    assert.match(a[0]![1]!, /alice@localhost created the group “climbing”/);
    assert.match(a.at(-1)![1]!, /bob@localhost removed carol@localhost/);
  });

  it('gives a device linked later the groups with the history', async () => {
    const { device } = await linkNewDevice(alice, relay.url, { timeoutMs: 20_000 });
    try {
      assert.deepEqual(shape(device.client.group(group)), shape(alice.client.group(group)));
      assert.deepEqual(
        fullHistory(device.client, group).map((m) => m.id),
        fullHistory(alice.client, group).map((m) => m.id),
      );
      // It takes part from then on: a change made on it reaches the others.
      await device.client.setGroupTitle(group, 'from the new laptop');
      await drain([bob.client]);
      assert.equal(bob.client.group(group).title, 'from the new laptop');
    } finally {
      await device.client.close();
    }
  });
});
