// SPDX-License-Identifier: AGPL-3.0-only
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Aci, DeviceId, MessageId } from '@parley/protocol';
import { ClientError } from '../src/errors.js';
import { ManualClock, newAci, newMessageId, openStore, testAccount } from './store-fixtures.js';

const GROUP = 'ab'.repeat(32);
const OTHER_GROUP = 'cd'.repeat(32);
const isCode = (code: string) => (e: unknown) => e instanceof ClientError && e.code === code;
const changeId = (n: number): string => n.toString(16).padStart(32, '0');

describe('group store: groups, logs and state', () => {
  it('makes a group with a conversation of kind group, once', () => {
    const store = openStore();
    const g = store.groups.ensureGroup(GROUP);
    assert.equal(store.groups.ensureGroup(GROUP).conversationId, g.conversationId);
    assert.deepEqual({ title: g.title, revision: g.revision, isMember: g.isMember }, { title: '', revision: 0, isMember: false });
    const c = store.messages.conversation(g.conversationId)!;
    assert.equal(c.kind, 'group');
    assert.equal(c.kind === 'group' && c.groupId, GROUP);
    assert.equal(store.groups.groupByConversation(g.conversationId)?.id, GROUP);
  });

  it('still refuses a conversation kind it does not know (the widened CHECK holds)', () => {
    const store = openStore();
    assert.throws(
      () => store.database.run("INSERT INTO conversations (id, kind, peer_aci, created_at, last_activity_at) VALUES ('x', 'channel', NULL, 0, 0)"),
      (e: unknown) => (e as { code?: string }).code === 'SQLITE_CONSTRAINT_CHECK',
    );
    assert.equal(store.database.value("PRAGMA integrity_check"), 'ok');
  });

  it('keeps each change once and lists the log in replay order', () => {
    const store = openStore();
    store.groups.ensureGroup(GROUP);
    const a = newAci();
    const b = newAci();
    const [lo, hi] = a < b ? [a, b] : [b, a];
    const changes = [
      { changeId: changeId(3), lamport: 2, authorAci: hi, body: '{"c":3}' },
      { changeId: changeId(1), lamport: 1, authorAci: lo, body: '{"c":1}' },
      { changeId: changeId(2), lamport: 2, authorAci: lo, body: '{"c":2}' },
    ];
    assert.equal(store.groups.addChanges(GROUP, changes), 3);
    assert.equal(store.groups.addChanges(GROUP, [changes[0]!, { changeId: changeId(4), lamport: 9, authorAci: lo, body: '{}' }]), 1);
    assert.deepEqual(
      store.groups.changes(GROUP).map((c) => c.changeId),
      [changeId(1), changeId(2), changeId(3), changeId(4)],
    );
    assert.deepEqual(store.groups.changes(OTHER_GROUP), []);
  });

  it('refuses bad input with a typed error and changes nothing', () => {
    const store = openStore();
    store.groups.ensureGroup(GROUP);
    assert.throws(() => store.groups.ensureGroup('nope'), isCode('INVALID_ARGUMENT'));
    assert.throws(() => store.groups.group('AB'.repeat(32)), isCode('INVALID_ARGUMENT'));
    const good = { changeId: changeId(1), lamport: 1, authorAci: newAci(), body: '{}' };
    assert.throws(() => store.groups.addChanges(GROUP, [good, { ...good, changeId: 'zz' }]), isCode('INVALID_ARGUMENT'));
    assert.throws(() => store.groups.addChanges(GROUP, [{ ...good, changeId: changeId(2), lamport: -1 }]), isCode('INVALID_ARGUMENT'));
    assert.deepEqual(store.groups.changes(GROUP), [], 'a refused batch adds none of its changes');
    assert.throws(() => store.groups.saveState(OTHER_GROUP, { title: 't', revision: 1, maxLamport: 1, isMember: true, members: [] }), isCode('NOT_FOUND'));
    assert.throws(
      () => store.groups.saveState(GROUP, { title: 't', revision: 1, maxLamport: 1, isMember: true, members: [{ aci: 'x', address: 'a@b.c', admin: true }] }),
      isCode('INVALID_ARGUMENT'),
    );
    assert.equal(store.groups.group(GROUP)!.title, '', 'a refused state leaves the old one');
  });

  it('saves a replayed state: title, members in order, admins; the conversation list shows the title', () => {
    const store = openStore();
    const g = store.groups.ensureGroup(GROUP);
    const [m1, m2, m3] = [newAci(), newAci(), newAci()];
    store.groups.saveState(GROUP, {
      title: 'climbing',
      revision: 3,
      maxLamport: 7,
      isMember: true,
      creatorAci: m1,
      members: [
        { aci: m3, address: 'carol@example.org', admin: false },
        { aci: m1, address: 'alice@example.org', admin: true },
        { aci: m2, address: 'bob@example.org', admin: false },
      ],
    });
    assert.deepEqual(store.groups.group(GROUP), { ...g, title: 'climbing', revision: 3, maxLamport: 7, isMember: true, creatorAci: m1 });
    assert.deepEqual(
      store.groups.members(GROUP).map((m) => [m.address, m.admin]),
      [
        ['carol@example.org', false],
        ['alice@example.org', true],
        ['bob@example.org', false],
      ],
    );
    assert.ok(store.groups.isMember(GROUP, m2));
    assert.ok(!store.groups.isMember(GROUP, newAci()));
    assert.equal(store.groups.memberAddress(m3), 'carol@example.org');
    assert.ok(store.groups.sharesGroupWith(m2), 'a member of a group this account is in');
    assert.ok(!store.groups.sharesGroupWith(newAci()));
    const conv = store.messages.conversations().find((c) => c.id === g.conversationId)!;
    assert.equal(conv.kind === 'group' && conv.title, 'climbing');
    store.groups.saveState(GROUP, { title: 'climbing', revision: 4, maxLamport: 8, isMember: false, members: [{ aci: m1, address: 'alice@example.org', admin: true }] });
    assert.deepEqual(store.groups.members(GROUP).map((m) => m.aci), [m1]);
    assert.equal(store.groups.group(GROUP)!.isMember, false);
    assert.ok(!store.groups.sharesGroupWith(m1), 'a group this account left shares nobody');
  });

  it('orders a group’s messages by (lamport, sender, id) like every conversation', () => {
    const clock = new ManualClock();
    const store = openStore({ clock });
    const g = store.groups.ensureGroup(GROUP);
    const senders = [newAci(), newAci()].sort() as Aci[];
    const add = (sender: Aci, lamport: number, id: MessageId = newMessageId()) =>
      store.messages.addMessage({ conversationId: g.conversationId, id, senderAci: sender, senderDevice: 1 as DeviceId, direction: 'in', body: `${lamport}`, sentAt: 1, lamport });
    add(senders[1]!, 2);
    add(senders[0]!, 2);
    add(senders[0]!, 1);
    const history = store.messages.history(g.conversationId).reverse();
    assert.deepEqual(
      history.map((m) => [m.lamport, m.senderAci]),
      [
        [1, senders[0]],
        [2, senders[0]],
        [2, senders[1]],
      ],
    );
  });
});

describe('group store: sender keys', () => {
  it('remembers the keys each member device handed over and gives a member’s back to drop', () => {
    const store = openStore();
    store.groups.ensureGroup(GROUP);
    store.groups.ensureGroup(OTHER_GROUP);
    const bob = newAci();
    const d1 = crypto.randomUUID();
    const d2 = crypto.randomUUID();
    store.groups.recordSenderKey(GROUP, { aci: bob, deviceId: 1 }, d1);
    store.groups.recordSenderKey(GROUP, { aci: bob, deviceId: 2 }, d2);
    store.groups.recordSenderKey(GROUP, { aci: bob, deviceId: 2 }, d2);
    store.groups.recordSenderKey(OTHER_GROUP, { aci: bob, deviceId: 1 }, d1);
    assert.ok(store.groups.hasSenderKey(GROUP, { aci: bob, deviceId: 2 }, d2));
    assert.ok(!store.groups.hasSenderKey(GROUP, { aci: bob, deviceId: 1 }, d2));
    const taken = store.groups.takeSenderKeys(GROUP, bob);
    assert.deepEqual(
      taken.sort((a, b) => a.address.localeCompare(b.address)),
      [
        { address: `${bob}.1`, distributionId: d1 },
        { address: `${bob}.2`, distributionId: d2 },
      ],
    );
    assert.deepEqual(store.groups.takeSenderKeys(GROUP, bob), []);
    assert.ok(store.groups.hasSenderKey(OTHER_GROUP, { aci: bob, deviceId: 1 }, d1), 'other groups keep theirs');
    assert.throws(() => store.groups.recordSenderKey(GROUP, { aci: bob, deviceId: 1 }, 'not-a-uuid'), isCode('INVALID_ARGUMENT'));
  });

  it('deletes a sender key from the protocol store', async () => {
    const store = openStore();
    store.saveAccount(testAccount());
    const address = `${newAci()}.1`;
    const id = crypto.randomUUID();
    await store.protocol.senderKeys.saveSenderKey(address, id, new Uint8Array([1, 2, 3]));
    store.protocol.state.putSenderKey(address, id, undefined);
    assert.equal(await store.protocol.senderKeys.getSenderKey(address, id), undefined);
  });

  it('rotates this device’s key: a fresh id that nobody holds', () => {
    const store = openStore();
    store.groups.ensureGroup(GROUP);
    const first = store.groups.rotateOwnDistribution(GROUP);
    assert.equal(store.groups.group(GROUP)!.ownDistributionId, first);
    const bob = newAci();
    store.groups.addHolders(GROUP, first, [
      { aci: bob, deviceId: 1 },
      { aci: bob, deviceId: 2 },
    ]);
    assert.equal(store.groups.holders(GROUP, first).length, 2);
    store.groups.dropHolders(bob, [2]);
    assert.deepEqual(store.groups.holders(GROUP, first), [{ aci: bob, deviceId: 1 }]);
    const second = store.groups.rotateOwnDistribution(GROUP);
    assert.notEqual(second, first);
    assert.deepEqual(store.groups.holders(GROUP, first), []);
    assert.deepEqual(store.groups.holders(GROUP, second), []);
    assert.throws(() => store.groups.rotateOwnDistribution(OTHER_GROUP), isCode('NOT_FOUND'));
  });

  it('turns a committed key send into holders, and forgets it when the outbox entry goes', () => {
    const store = openStore();
    store.saveAccount(testAccount());
    store.groups.ensureGroup(GROUP);
    const dist = store.groups.rotateOwnDistribution(GROUP);
    const bob = newAci();
    store.messages.saveContact({ aci: bob, address: 'bob@example.org' });
    const entry = store.outbox.enqueue({ destinationAci: bob, destinationAddress: 'bob@example.org', content: new Uint8Array([1]), timestamp: 1 });
    store.groups.recordKeySend(entry.id, GROUP, dist, bob);
    assert.deepEqual(store.groups.pendingKeySends(GROUP, dist), [bob]);
    store.groups.keySendCommitted(entry.id, [1, 3]);
    assert.deepEqual(store.groups.holders(GROUP, dist), [
      { aci: bob, deviceId: 1 },
      { aci: bob, deviceId: 3 },
    ]);
    assert.deepEqual(store.groups.pendingKeySends(GROUP, dist), []);
    const other = store.outbox.enqueue({ destinationAci: bob, destinationAddress: 'bob@example.org', content: new Uint8Array([2]), timestamp: 1 });
    store.groups.recordKeySend(other.id, GROUP, dist, bob);
    store.outbox.fail(other.id, { error: 'FAILED' });
    assert.deepEqual(store.groups.pendingKeySends(GROUP, dist), [], 'a given-up send is no longer on its way');
    store.groups.keySendCommitted(12345, [1]);
  });
});

describe('group store: the multi-recipient outbox', () => {
  it('keeps the envelope id and the saved payload across attempts, clears it only on request', () => {
    const clock = new ManualClock();
    const store = openStore({ clock });
    store.groups.ensureGroup(GROUP);
    const id = store.groups.outbox.enqueue({ groupId: GROUP, content: new Uint8Array([7]), timestamp: clock.now() });
    const first = store.groups.outbox.get(id)!;
    assert.match(first.envelopeMessageId, /^[0-9a-f]{32}$/);
    assert.equal(first.payload, undefined);
    const dist = crypto.randomUUID();
    store.groups.outbox.saveAttempt(id, dist, new Uint8Array([9, 9]));
    store.groups.outbox.reschedule(id, clock.now() + 1000, 'DISCONNECTED');
    assert.deepEqual(store.groups.outbox.due(clock.now(), 10), []);
    clock.advance(1000);
    const again = store.groups.outbox.due(clock.now(), 10)[0]!;
    assert.equal(again.envelopeMessageId, first.envelopeMessageId);
    assert.deepEqual(again.payload, new Uint8Array([9, 9]));
    assert.equal(again.distributionId, dist);
    assert.equal(again.attempts, 1);
    store.groups.outbox.clearAttempt(id);
    const cleared = store.groups.outbox.get(id)!;
    assert.equal(cleared.payload, undefined);
    assert.equal(cleared.envelopeMessageId, first.envelopeMessageId, 'a refused send keeps its id (nothing was queued under it)');
    assert.throws(() => store.groups.outbox.saveAttempt(id, dist, new Uint8Array()), isCode('INVALID_ARGUMENT'));
    assert.throws(() => store.groups.outbox.saveAttempt(999, dist, new Uint8Array([1])), isCode('NOT_FOUND'));
  });

  it('marks the message sent when the upload is committed, failed when given up', () => {
    const clock = new ManualClock();
    const store = openStore({ clock });
    const me = newAci();
    const g = store.groups.ensureGroup(GROUP);
    const send = (body: string) => {
      const id = newMessageId();
      store.messages.addMessage({ conversationId: g.conversationId, id, senderAci: me, senderDevice: 1 as DeviceId, direction: 'out', body, sentAt: 1, lamport: 1 });
      return { id, entry: store.groups.outbox.enqueue({ groupId: GROUP, messageId: id, content: new Uint8Array([1]), timestamp: 1 }) };
    };
    const ok = send('ok');
    const bad = send('bad');
    assert.equal(store.groups.outbox.size(), 2);
    store.groups.outbox.complete(ok.entry);
    store.groups.outbox.fail(bad.entry);
    assert.equal(store.messages.message({ senderAci: me, id: ok.id })!.status, 'sent');
    assert.equal(store.messages.message({ senderAci: me, id: bad.id })!.status, 'failed');
    assert.equal(store.groups.outbox.size(), 0);
  });

  it('drops a group’s queued sends with the group', () => {
    const store = openStore();
    const g = store.groups.ensureGroup(GROUP);
    store.groups.outbox.enqueue({ groupId: GROUP, content: new Uint8Array([1]), timestamp: 1 });
    store.database.run('DELETE FROM conversations WHERE id = ?', [g.conversationId]);
    assert.equal(store.groups.group(GROUP), undefined);
    assert.equal(store.groups.outbox.size(), 0);
  });
});
