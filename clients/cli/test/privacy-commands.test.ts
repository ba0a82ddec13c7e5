// SPDX-License-Identifier: AGPL-3.0-only
// read, receipts, settings, typing, presence and the events of listen, through main with a FakeParleyClient.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ClientError } from '@parley/client';
import { FakeParleyClient, T0, groupView, message } from './fake-parley-client.js';
import { run } from './harness.js';

process.env.TZ = 'UTC';

const ID = '0123456789abcdef0123456789abcdef';

describe('read and history --mark-read', () => {
  it('read marks the conversation read and says how many, human and JSON', async () => {
    const client = new FakeParleyClient();
    client.markedRead = { conversation: 'bob@localhost', messageIds: [ID, 'f'.repeat(32)], receipts: 1 };
    const r = await run(['read', 'Bob'], { client });
    assert.equal(r.code, 0, r.stderr.text);
    assert.deepEqual(client.callsOf('markRead')[0]?.args, ['bob']);
    assert.equal(r.stdout.text, 'marked 2 messages read with bob@localhost\n');
    const j = await run(['read', 'bob@localhost', '--json']);
    assert.deepEqual(j.stdout.json, [{ conversation: 'bob@localhost', messageIds: [ID], receipts: 1 }]);
  });

  it('read with nothing unread says so; with read receipts off it notes that nobody was told', async () => {
    const client = new FakeParleyClient();
    client.markedRead = { conversation: 'bob@localhost', messageIds: [], receipts: 0 };
    assert.equal((await run(['read', 'bob'], { client })).stdout.text, 'nothing unread with bob@localhost\n');
    const off = new FakeParleyClient();
    off.privacy = { readReceipts: false, typingIndicators: true, presence: true };
    off.markedRead = { conversation: 'bob@localhost', messageIds: [ID], receipts: 0 };
    const r = await run(['read', 'bob'], { client: off });
    assert.match(r.stderr.text, /read receipts are off: nobody was told/);
  });

  it('read of an unknown conversation is NOT_FOUND, exit 3', async () => {
    const client = new FakeParleyClient();
    client.failures.set('markRead', new ClientError('NOT_FOUND', 'no conversation with carol@localhost'));
    const r = await run(['read', 'carol'], { client });
    assert.equal(r.code, 3);
    assert.match(r.stderr.text, /no conversation with carol@localhost \(NOT_FOUND\)/);
  });

  it('history --mark-read prints the messages, then marks them read', async () => {
    const client = new FakeParleyClient();
    client.historyList = [message({ text: 'unread one' })];
    const r = await run(['history', 'bob', '--mark-read'], { client });
    assert.equal(r.code, 0, r.stderr.text);
    assert.deepEqual(client.calls.map((c) => c.method), ['history', 'markRead']);
    assert.match(r.stderr.text, /marked 1 message read/);
    const j = await run(['history', 'bob', '--mark-read', '--json'], { client: Object.assign(new FakeParleyClient(), { historyList: [message()] }) });
    assert.deepEqual(j.stderr.json, [{ read: { conversation: 'bob@localhost', messageIds: [ID], receipts: 1 } }]);
    const plain = new FakeParleyClient();
    plain.historyList = [message()];
    await run(['history', 'bob'], { client: plain });
    assert.equal(plain.callsOf('markRead').length, 0, 'without --mark-read nothing is marked');
  });
});

describe('receipts', () => {
  it('lists each recipient of each message, newest first, human and JSON', async () => {
    const client = new FakeParleyClient();
    client.receiptList = [
      { messageId: ID, conversation: 'bob@localhost', recipient: 'bob@localhost', status: 'read', updatedAt: T0, deliveredAt: T0 - 60_000, readAt: T0 },
      { messageId: 'f'.repeat(32), conversation: 'bob@localhost', recipient: 'bob@localhost', status: 'sent', updatedAt: T0 },
    ];
    const r = await run(['receipts', 'bob', '--limit', '5'], { client });
    assert.equal(r.code, 0, r.stderr.text);
    assert.deepEqual(client.callsOf('receipts')[0]?.args, ['bob', { limit: 5 }]);
    assert.deepEqual(r.stdout.lines, ['0123456789abcdef…  bob@localhost  read  2026-11-22 10:31', 'ffffffffffffffff…  bob@localhost  sent  2026-11-22 10:31']);
    const j = await run(['receipts', 'bob', '--message', ID.toUpperCase(), '--json'], { client });
    assert.deepEqual(client.callsOf('receipts')[1]?.args, ['bob', { messageId: ID }]);
    assert.deepEqual(j.stdout.json[0], { messageId: ID, conversation: 'bob@localhost', recipient: 'bob@localhost', status: 'read', updatedAt: T0, deliveredAt: T0 - 60_000, readAt: T0 });
    assert.deepEqual(j.stdout.json[1], { messageId: 'f'.repeat(32), conversation: 'bob@localhost', recipient: 'bob@localhost', status: 'sent', updatedAt: T0 });
  });

  it('says when there is nothing to show', async () => {
    const r = await run(['receipts', 'bob']);
    assert.equal(r.stdout.text, '');
    assert.match(r.stderr.text, /you sent no messages to bob@localhost yet/);
  });
});

describe('settings', () => {
  it('prints the settings without arguments', async () => {
    const r = await run(['settings']);
    assert.equal(r.code, 0);
    assert.deepEqual(r.stdout.lines, ['read-receipts  on', 'typing         on', 'presence       on']);
    assert.equal(r.client.callsOf('updateSettings').length, 0);
    const j = await run(['settings', '--json']);
    assert.deepEqual(j.stdout.json, [{ readReceipts: true, typingIndicators: true, presence: true }]);
  });

  it('changes the named switches in one call and prints the result', async () => {
    const r = await run(['settings', 'read-receipts', 'off', 'presence', 'off', 'typing', 'on', '--json']);
    assert.equal(r.code, 0, r.stderr.text);
    assert.deepEqual(r.client.callsOf('updateSettings')[0]?.args, [{ readReceipts: false, presence: false, typingIndicators: true }]);
    assert.deepEqual(r.stdout.json, [{ readReceipts: false, typingIndicators: true, presence: false }]);
  });
});

describe('typing', () => {
  it('sends STARTED, or STOPPED with --stop, and says who got it', async () => {
    const client = new FakeParleyClient();
    client.typingResult = { sent: true, devices: 2 };
    const r = await run(['typing', 'bob'], { client });
    assert.equal(r.code, 0, r.stderr.text);
    assert.deepEqual(client.callsOf('typing')[0]?.args, ['bob', 'started']);
    assert.equal(r.stdout.text, 'told bob@localhost you are typing (2 devices online got it)\n');
    const stop = await run(['typing', 'bob', '--stop', '--json'], { client });
    assert.deepEqual(client.callsOf('typing')[1]?.args, ['bob', 'stopped']);
    assert.deepEqual(stop.stdout.json, [{ action: 'stopped', sent: true, devices: 2 }]);
  });

  it('reports a throttled or switched-off indicator, exit 0', async () => {
    const client = new FakeParleyClient();
    client.typingResult = { sent: false, reason: 'throttled', devices: 0 };
    const t = await run(['typing', 'bob', '--json'], { client });
    assert.equal(t.code, 0);
    assert.deepEqual(t.stdout.json, [{ action: 'started', sent: false, reason: 'throttled', devices: 0 }]);
    client.typingResult = { sent: false, reason: 'off', devices: 0 };
    const off = await run(['typing', 'bob'], { client });
    assert.match(off.stdout.text, /typing indicators are off: nothing sent/);
  });
});

describe('presence', () => {
  it('lists contacts’ presence, human and JSON', async () => {
    const client = new FakeParleyClient();
    client.presenceList = [
      { address: 'bob@localhost', aci: 'b'.repeat(8) + '-0000-4000-8000-000000000000', state: 'online' },
      { address: 'carol@localhost', aci: 'c'.repeat(8) + '-0000-4000-8000-000000000000', state: 'offline', lastSeen: T0 },
      { address: 'dave@localhost', aci: 'd'.repeat(8) + '-0000-4000-8000-000000000000', state: 'unknown' },
    ];
    const r = await run(['presence'], { client });
    assert.equal(r.code, 0, r.stderr.text);
    assert.deepEqual(r.stdout.lines, ['bob@localhost  online', 'carol@localhost  offline (last seen 2026-11-22 10:31)', 'dave@localhost  unknown']);
    const j = await run(['presence', '--json'], { client });
    assert.deepEqual(j.stdout.json[1], { address: 'carol@localhost', aci: client.presenceList[1]!.aci, state: 'offline', lastSeen: T0 });
    assert.equal(j.stdout.json[0]!.lastSeen, undefined);
  });

  it('--away and --online set this device’s state before listing; --rotate-token makes a new token', async () => {
    const r = await run(['presence', '--away', '--rotate-token']);
    assert.equal(r.code, 0, r.stderr.text);
    assert.deepEqual(r.client.calls.map((c) => c.method), ['rotatePresenceToken', 'setPresence', 'presence']);
    assert.deepEqual(r.client.callsOf('setPresence')[0]?.args, ['away']);
    const online = await run(['presence', '--online']);
    assert.deepEqual(online.client.callsOf('setPresence')[0]?.args, ['online']);
  });

  it('with presence off: SETTING_OFF, exit 2, with a hint to turn it on', async () => {
    const client = new FakeParleyClient();
    client.failures.set('presence', new ClientError('SETTING_OFF', 'presence is off'));
    const r = await run(['presence'], { client });
    assert.equal(r.code, 2);
    assert.match(r.stderr.lines[0] ?? '', /presence is off \(SETTING_OFF\)/);
    assert.match(r.stderr.lines[1] ?? '', /parley settings presence on/);
  });
});

describe('listen events', () => {
  it('prints receipts, typing and presence as {"event":…} lines among the messages', async () => {
    const client = new FakeParleyClient();
    client.listenEvents = [
      { event: 'message', m: message({ text: 'hi' }) },
      { event: 'receipt', r: { type: 'delivery', from: 'bob@localhost', messageIds: [ID], at: T0 } },
      { event: 'receipt', r: { type: 'read', from: 'bob@localhost', messageIds: [ID, 'f'.repeat(32)], at: T0 } },
      { event: 'typing', t: { from: 'bob@localhost', conversation: 'bob@localhost', action: 'started', at: T0 } },
      { event: 'typing', t: { from: 'bob@localhost', conversation: 'bob@localhost', action: 'stopped', expired: true, at: T0 } },
      { event: 'presence', p: { address: 'bob@localhost', aci: 'b'.repeat(8) + '-0000-4000-8000-000000000000', state: 'away' } },
    ];
    const soon = (): AbortSignal => AbortSignal.timeout(20);
    const j = await run(['listen', '--json'], { client, stopSignal: soon() });
    assert.equal(j.code, 0, j.stderr.text);
    const lines = j.stdout.json;
    assert.equal(lines[0]!.text, 'hi');
    assert.equal(lines[0]!.event, undefined, 'messages keep their shape');
    assert.deepEqual(lines.slice(1), [
      { event: 'receipt', type: 'delivery', messageIds: [ID], from: 'bob@localhost', at: T0 },
      { event: 'receipt', type: 'read', messageIds: [ID, 'f'.repeat(32)], from: 'bob@localhost', at: T0 },
      { event: 'typing', action: 'started', from: 'bob@localhost', conversation: 'bob@localhost', at: T0 },
      { event: 'typing', action: 'stopped', from: 'bob@localhost', conversation: 'bob@localhost', expired: true, at: T0 },
      { event: 'presence', address: 'bob@localhost', aci: 'b'.repeat(8) + '-0000-4000-8000-000000000000', state: 'away' },
    ]);
    const h = await run(['listen'], { client, stopSignal: soon() });
    assert.deepEqual(h.stdout.lines.slice(1), [
      '* bob@localhost received your message',
      '* bob@localhost read 2 of your messages',
      '* bob@localhost is typing…',
      '* bob@localhost stopped typing',
      '* bob@localhost is away',
    ]);
    assert.equal(client.listenerCount(), 0);
  });

  it('names the group of a typing event: its id in JSON, its short id and title in the line', async () => {
    const client = new FakeParleyClient();
    const group = groupView();
    client.groupResult = group;
    client.listenEvents = [
      { event: 'typing', t: { from: 'bob@localhost', conversation: group.handle, groupId: group.id, action: 'started', at: T0 } },
      { event: 'typing', t: { from: 'bob@localhost', conversation: group.handle, groupId: group.id, action: 'stopped', expired: true, at: T0 } },
    ];
    const soon = (): AbortSignal => AbortSignal.timeout(20);
    const j = await run(['listen', '--json'], { client, stopSignal: soon() });
    assert.equal(j.code, 0, j.stderr.text);
    assert.deepEqual(j.stdout.json, [
      { event: 'typing', action: 'started', from: 'bob@localhost', conversation: group.handle, groupId: group.id, at: T0 },
      { event: 'typing', action: 'stopped', from: 'bob@localhost', conversation: group.handle, expired: true, groupId: group.id, at: T0 },
    ]);
    const h = await run(['listen'], { client, stopSignal: soon() });
    assert.deepEqual(h.stdout.lines, ['* bob@localhost is typing in #3f2a0d4e climbing…', '* bob@localhost stopped typing in #3f2a0d4e climbing']);
    assert.deepEqual(client.callsOf('group')[0]?.args, [group.handle]);
    // A group this device no longer knows: shown by its id alone.
    client.failures.set('group', new ClientError('NOT_FOUND', 'no such group'));
    const unknown = await run(['listen'], { client, stopSignal: soon() });
    assert.equal(unknown.stdout.lines[0], '* bob@localhost is typing in #3f2a0d4e…');
  });
});
