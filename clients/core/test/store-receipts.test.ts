// SPDX-License-Identifier: AGPL-3.0-only
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { randomBytes } from '@parley/crypto';
import type { Aci, DeviceId, MessageId } from '@parley/protocol';
import {
  ClientDatabase,
  ClientError,
  DATABASE_FILE_NAME,
  EARLY_RECEIPT_TTL_MS,
  resolveDatabaseKey,
  STORE_MIGRATIONS,
  type ClientStore,
  type ConversationId,
} from '../src/index.js';
import { ManualClock, newAci, newMessageId, openStore, tempProfileDir } from './store-fixtures.js';

const isCode = (code: string) => (e: unknown) => e instanceof ClientError && e.code === code;

function setup(): { store: ClientStore; clock: ManualClock; peer: Aci; me: Aci; conversationId: ConversationId } {
  const clock = new ManualClock();
  const store = openStore({ clock });
  const peer = newAci();
  const conversationId = store.messages.conversationWith({ aci: peer, address: 'bob@example.org' }).id;
  return { store, clock, peer, me: newAci(), conversationId };
}

/** Stores an outgoing message of `me` with the given recipients; returns its id. */
function sent(store: ClientStore, conversationId: ConversationId, me: Aci, recipients: Aci[], lamport = 1): MessageId {
  const id = newMessageId();
  store.messages.addMessage({ conversationId, id, senderAci: me, senderDevice: 1 as DeviceId, direction: 'out', body: 'hi', sentAt: lamport, lamport, status: 'sent' });
  store.receipts.addRecipients(me, id, recipients, 'sent');
  return id;
}

const statusOf = (store: ClientStore, me: Aci, id: MessageId) => store.messages.message({ senderAci: me, id })!.status;

describe('receipt store: per-recipient status', () => {
  it('moves a 1:1 message to delivered, then read, and never back', () => {
    const { store, clock, peer, me, conversationId } = setup();
    const id = sent(store, conversationId, me, [peer]);
    clock.advance(10);
    assert.deepEqual(store.receipts.applyReceipt(me, peer, [id], 'delivered').changed, [id]);
    assert.equal(statusOf(store, me, id), 'delivered');
    clock.advance(10);
    store.receipts.applyReceipt(me, peer, [id], 'read');
    assert.equal(statusOf(store, me, id), 'read');
    const late = store.receipts.applyReceipt(me, peer, [id], 'delivered');
    assert.deepEqual(late, { known: [id], changed: [], early: [] }, 'a late delivery receipt is known but moves nothing');
    assert.equal(statusOf(store, me, id), 'read');
    const [row] = store.receipts.recipients(me, id);
    assert.equal(row!.status, 'read');
    assert.equal(row!.deliveredAt, clock.t - 10);
    assert.equal(row!.readAt, clock.t);
  });

  it('fills in the delivery time when a read receipt comes first', () => {
    const { store, peer, me, conversationId } = setup();
    const id = sent(store, conversationId, me, [peer]);
    store.receipts.applyReceipt(me, peer, [id], 'read', 5000);
    const [row] = store.receipts.recipients(me, id);
    assert.deepEqual([row!.status, row!.deliveredAt, row!.readAt], ['read', 5000, 5000]);
  });

  it('keeps a group message at sent until every member has it, then at the least advanced member', () => {
    const { store, peer, me, conversationId } = setup();
    const carol = newAci();
    const dave = newAci();
    const id = sent(store, conversationId, me, [peer, carol, dave]);
    store.receipts.applyReceipt(me, peer, [id], 'read');
    store.receipts.applyReceipt(me, carol, [id], 'delivered');
    assert.equal(statusOf(store, me, id), 'sent', 'dave has not got it yet');
    store.receipts.applyReceipt(me, dave, [id], 'delivered');
    assert.equal(statusOf(store, me, id), 'delivered');
    store.receipts.applyReceipt(me, carol, [id], 'read');
    store.receipts.applyReceipt(me, dave, [id], 'read');
    assert.equal(statusOf(store, me, id), 'read');
    assert.deepEqual(
      store.receipts.recipients(me, id).map((r) => r.status),
      ['read', 'read', 'read'],
    );
  });

  it('ignores duplicate ids, and receipts from someone the message was not sent to', () => {
    const { store, peer, me, conversationId } = setup();
    const id = sent(store, conversationId, me, [peer]);
    const r = store.receipts.applyReceipt(me, peer, [id, id, id], 'delivered');
    assert.deepEqual(r.known, [id]);
    const stranger = newAci();
    const forged = store.receipts.applyReceipt(me, stranger, [id], 'read');
    assert.deepEqual(forged, { known: [], changed: [], early: [] }, 'not a recipient: nothing known, nothing kept');
    assert.equal(statusOf(store, me, id), 'delivered');
    assert.equal(store.receipts.earlyCount(), 0);
  });

  it('keeps a receipt for an unknown id as early, applies it when the message arrives, forgets it after a day', () => {
    const { store, clock, peer, me, conversationId } = setup();
    const later = newMessageId();
    const r = store.receipts.applyReceipt(me, peer, [later], 'delivered');
    assert.deepEqual(r, { known: [], changed: [], early: [later] });
    store.receipts.applyReceipt(me, peer, [later], 'read');
    store.receipts.applyReceipt(me, peer, [later], 'delivered');
    assert.equal(store.receipts.earlyCount(), 1);
    // The transcript of another device's send arrives: the receipts waiting for it apply.
    store.messages.addMessage({ conversationId, id: later, senderAci: me, senderDevice: 2 as DeviceId, direction: 'out', body: 'x', sentAt: 1, lamport: 1, status: 'sent' });
    store.receipts.addRecipients(me, later, [peer], 'sent');
    assert.equal(statusOf(store, me, later), 'read', 'the early read receipt (not downgraded by the later delivery one) applied');
    assert.equal(store.receipts.earlyCount(), 0);

    const never = newMessageId();
    store.receipts.applyReceipt(me, peer, [never], 'delivered');
    clock.advance(EARLY_RECEIPT_TTL_MS + 1);
    assert.equal(store.receipts.prune(), 1);
    assert.equal(store.receipts.earlyCount(), 0);
  });

  it('shows a row the recipient has not got yet at its send’s state, and from delivered on at its own', () => {
    const { store, peer, me, conversationId } = setup();
    const id = newMessageId();
    store.messages.addMessage({ conversationId, id, senderAci: me, senderDevice: 1 as DeviceId, direction: 'out', body: 'x', sentAt: 1, lamport: 1 });
    store.receipts.addRecipients(me, id, [peer]);
    const row = () => store.receipts.recipients(me, id)[0]!.status;
    assert.equal(row(), 'pending');
    store.messages.setStatus({ senderAci: me, id }, 'failed');
    assert.equal(row(), 'failed');
    store.messages.setStatus({ senderAci: me, id }, 'pending');
    store.messages.setStatus({ senderAci: me, id }, 'sent');
    assert.equal(row(), 'sent');
    store.receipts.applyReceipt(me, peer, [id], 'delivered');
    assert.equal(row(), 'delivered');
    store.messages.setStatus({ senderAci: me, id }, 'failed');
    assert.equal(row(), 'delivered', 'nothing takes a row back');
  });

  it('lists the recipients of the newest messages of a conversation, newest first', () => {
    const { store, peer, me, conversationId } = setup();
    const ids = [1, 2, 3].map((l) => sent(store, conversationId, me, [peer], l));
    store.receipts.applyReceipt(me, peer, [ids[0]!], 'read');
    const rows = store.receipts.recipientsInConversation(conversationId, me, 2);
    assert.deepEqual(
      rows.map((r) => r.messageId),
      [ids[2], ids[1]],
    );
    assert.throws(() => store.receipts.recipientsInConversation(conversationId, me, 0), isCode('INVALID_ARGUMENT'));
  });

  it('refuses malformed ids with INVALID_ARGUMENT and changes nothing', () => {
    const { store, peer, me, conversationId } = setup();
    const id = sent(store, conversationId, me, [peer]);
    assert.throws(() => store.receipts.applyReceipt(me, peer, [id, 'nothex' as MessageId], 'delivered'), isCode('INVALID_ARGUMENT'));
    assert.equal(statusOf(store, me, id), 'sent');
    assert.throws(() => store.receipts.applyReceipt(me, 'x' as Aci, [id], 'delivered'), isCode('INVALID_ARGUMENT'));
  });

  it('deletes the rows with their message', () => {
    const { store, peer, me, conversationId } = setup();
    const id = sent(store, conversationId, me, [peer]);
    store.messages.deleteMessage({ senderAci: me, id });
    assert.deepEqual(store.receipts.recipients(me, id), []);
  });
});

describe('receipt store: read sync and presence tokens', () => {
  it('marks incoming messages read for a read sync, ignoring unknown and outgoing ones', () => {
    const { store, peer, me, conversationId } = setup();
    const incoming = newMessageId();
    store.messages.addMessage({ conversationId, id: incoming, senderAci: peer, senderDevice: 1 as DeviceId, direction: 'in', body: 'yo', sentAt: 1, lamport: 1 });
    const mine = sent(store, conversationId, me, [peer], 2);
    const changed = store.receipts.markIncomingRead([
      { senderAci: peer, id: incoming },
      { senderAci: peer, id: newMessageId() },
      { senderAci: me, id: mine },
    ]);
    assert.deepEqual(changed, [{ senderAci: peer, id: incoming }]);
    assert.equal(store.messages.unreadCount(conversationId), 0);
    assert.equal(statusOf(store, me, mine), 'sent');
    assert.deepEqual(store.receipts.markIncomingRead([{ senderAci: peer, id: incoming }]), [], 'twice changes nothing');
  });

  it('stores a contact’s presence token, tells whether it changed, and ignores malformed ones', () => {
    const { store, peer } = setup();
    const token = randomBytes(32);
    assert.equal(store.receipts.savePresenceToken(peer, token), true);
    assert.equal(store.receipts.savePresenceToken(peer, token), false);
    assert.equal(store.receipts.savePresenceToken(peer, randomBytes(31)), false);
    assert.deepEqual(store.receipts.presenceToken(peer), token);
    const rotated = randomBytes(32);
    assert.equal(store.receipts.savePresenceToken(peer, rotated), true);
    assert.deepEqual(store.receipts.presenceTokens(), [{ aci: peer, token: rotated }]);
  });
});

describe('migration 0004', () => {
  it('gives every message sent before it one recipient, the peer of its conversation, at the message’s status', () => {
    const profileDir = tempProfileDir();
    mkdirSync(profileDir, { recursive: true, mode: 0o700 });
    const key = resolveDatabaseKey({ profileDir });
    const old = ClientDatabase.open(join(profileDir, DATABASE_FILE_NAME), key, { migrations: STORE_MIGRATIONS.slice(0, 3) });
    const me = newAci();
    const peer = newAci();
    const [outId, inId] = [newMessageId(), newMessageId()];
    old.run('INSERT INTO contacts (aci, address, updated_at) VALUES (?, ?, 0)', [peer, 'bob@example.org']);
    old.run("INSERT INTO conversations (id, kind, peer_aci, created_at, last_activity_at) VALUES (?, 'direct', ?, 0, 0)", ['c'.repeat(32), peer]);
    const insert = `INSERT INTO messages (id, conversation_id, sender_aci, sender_device, direction, kind, body, sent_at, received_at, lamport, status)
                    VALUES (?, ?, ?, 1, ?, 'text', 'x', 1, 7, 1, ?)`;
    old.run(insert, [outId, 'c'.repeat(32), me, 'out', 'delivered']);
    old.run(insert, [inId, 'c'.repeat(32), peer, 'in', 'delivered']);
    old.close();
    const store = openStore({ profileDir });
    assert.deepEqual(
      store.receipts.recipients(me, outId).map((r) => [r.recipientAci, r.status, r.updatedAt]),
      [[peer, 'delivered', 7]],
    );
    assert.deepEqual(store.receipts.recipients(peer, inId), [], 'incoming messages have no recipients');
  });
});

describe('receipt store: a read sync that comes before its message', () => {
  const incoming = (store: ClientStore, conversationId: ConversationId, peer: Aci, id: MessageId, lamport: number) =>
    store.messages.addMessage({ conversationId, id, senderAci: peer, senderDevice: 1 as DeviceId, direction: 'in', body: 'hello', sentAt: lamport, lamport });
  const early = (store: ClientStore) => Number(store.database.value('SELECT count(*) FROM early_read_syncs'));

  it('is kept, and the message lands already read (no unread count), once', () => {
    const { store, peer, conversationId } = setup();
    const id = newMessageId();
    assert.deepEqual(store.receipts.markIncomingRead([{ senderAci: peer, id }]), [], 'nothing here to mark yet');
    assert.equal(early(store), 1);
    const added = incoming(store, conversationId, peer, id, 1);
    assert.ok(added.added);
    assert.equal(added.message.status, 'read');
    assert.equal(store.messages.message({ senderAci: peer, id })!.status, 'read');
    assert.equal(store.messages.conversations()[0]!.unreadCount, 0);
    assert.equal(early(store), 0, 'the note is taken');
    // Another message from the same sender is not read by it.
    const other = newMessageId();
    assert.equal(incoming(store, conversationId, peer, other, 2).added && store.messages.message({ senderAci: peer, id: other })!.status, 'delivered');
    // A read sync for a message that is here is applied at once and leaves no note.
    assert.deepEqual(store.receipts.markIncomingRead([{ senderAci: peer, id: other }]), [{ senderAci: peer, id: other }]);
    assert.equal(early(store), 0);
  });

  it('is forgotten after a day, and at most 10,000 are kept', () => {
    const { store, clock, peer, conversationId } = setup();
    const id = newMessageId();
    store.receipts.markIncomingRead([{ senderAci: peer, id }]);
    clock.advance(24 * 3600_000 + 1);
    store.receipts.markIncomingRead([{ senderAci: peer, id: newMessageId() }]);
    assert.equal(early(store), 1, 'the day-old note went when the next one came');
    assert.equal(incoming(store, conversationId, peer, id, 1).added && store.messages.message({ senderAci: peer, id })!.status, 'delivered');
    store.receipts.markIncomingRead(Array.from({ length: 10_005 }, () => ({ senderAci: peer, id: newMessageId() })));
    assert.equal(early(store), 10_000);
  });
});
