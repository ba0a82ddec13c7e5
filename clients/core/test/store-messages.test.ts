// SPDX-License-Identifier: AGPL-3.0-only
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { randomBytes } from '@parley/crypto';
import type { Aci, DeviceId, MessageId } from '@parley/protocol';
import { ClientError, type ClientStore, type ConversationId, type NewMessage, parseConversationId } from '../src/index.js';
import { ManualClock, newAci, newMessageId, openStore } from './store-fixtures.js';

const isCode = (code: string) => (e: unknown) => e instanceof ClientError && e.code === code;

function setup(): { store: ClientStore; clock: ManualClock; peer: Aci; me: Aci; conversationId: ConversationId } {
  const clock = new ManualClock();
  const store = openStore({ clock });
  const peer = newAci();
  const conversationId = store.messages.conversationWith({ aci: peer, address: 'Bob@Example.org' }).id;
  return { store, clock, peer, me: newAci(), conversationId };
}

function msg(conversationId: ConversationId, senderAci: Aci, lamport: number, extra: Partial<NewMessage> = {}): NewMessage {
  return { conversationId, id: newMessageId(), senderAci, senderDevice: 1 as DeviceId, direction: 'in', body: `m${lamport}`, sentAt: lamport, lamport, ...extra };
}

describe('contacts and conversations', () => {
  it('keeps one conversation per peer and canonical addresses', () => {
    const { store, peer, conversationId } = setup();
    assert.equal(store.messages.conversationWith({ aci: peer, address: 'bob@example.org' }).id, conversationId);
    const c = store.messages.conversation(conversationId)!;
    assert.equal(c.kind, 'direct');
    assert.equal(c.kind === 'direct' && c.peerAddress, 'bob@example.org');
    assert.equal(store.messages.contactByAddress('BOB@example.org')!.aci, peer);
    assert.equal(parseConversationId(conversationId), conversationId);
    assert.throws(() => parseConversationId('nope'), isCode('INVALID_ARGUMENT'));
    assert.throws(() => store.messages.conversationWith({ aci: peer, address: 'not an address' }), isCode('INVALID_ARGUMENT'));
    assert.throws(() => store.messages.conversationWith({ aci: 'x' as Aci, address: 'bob@example.org' }), isCode('INVALID_ARGUMENT'));
  });

  it('moves an address to the account that holds it now', () => {
    const { store, peer } = setup();
    const other = newAci();
    store.messages.saveContact({ aci: other, address: 'bob@example.org' });
    assert.equal(store.messages.contactByAddress('bob@example.org')!.aci, other);
    assert.equal(store.messages.contact(peer)!.address, undefined);
    assert.equal(store.messages.contacts().length, 2);
  });

  it('refuses to mark an unknown identity verified', () => {
    const { store, peer } = setup();
    assert.throws(() => store.messages.setVerified(peer, true), isCode('NOT_FOUND'));
  });
});

describe('messages', () => {
  it('pages history newest first in (lamport, sender ACI, message id) order', () => {
    const { store, peer, conversationId } = setup();
    const me = '00000000-0000-4000-8000-000000000000' as Aci;
    const high = 'ffffffff-0000-4000-8000-000000000000' as Aci;
    const added: { lamport: number; senderAci: Aci; id: MessageId }[] = [];
    // Inserted out of order, with lamport ties broken by sender and then by id.
    for (const lamport of [5, 1, 3, 2, 4, 3, 5, 1]) {
      for (const sender of [high, me, peer]) {
        const m = msg(conversationId, sender, lamport, { direction: sender === me ? 'out' : 'in' });
        assert.equal(store.messages.addMessage(m).added, true);
        added.push({ lamport, senderAci: sender, id: m.id });
      }
    }
    const expected = [...added]
      .sort((a, b) => a.lamport - b.lamport || (a.senderAci < b.senderAci ? -1 : a.senderAci > b.senderAci ? 1 : 0) || (a.id < b.id ? -1 : 1))
      .reverse()
      .map((m) => m.id);
    const pages: MessageId[][] = [];
    let before: MessageId | undefined;
    for (;;) {
      const page = store.messages.history(conversationId, { limit: 5, ...(before ? { before } : {}) });
      if (page.length === 0) break;
      pages.push(page.map((m) => m.id));
      before = page.at(-1)!.id;
    }
    assert.deepEqual(pages.map((p) => p.length), [5, 5, 5, 5, 4]);
    assert.deepEqual(pages.flat(), expected);
    assert.deepEqual(store.messages.history(conversationId).map((m) => m.id), expected);
    assert.equal(store.messages.maxLamport(conversationId), 5);
    assert.equal(store.messages.nextLamport(conversationId), 6);
    assert.throws(() => store.messages.history(conversationId, { before: newMessageId() }), isCode('NOT_FOUND'));
    assert.throws(() => store.messages.history(conversationId, { limit: 0 }), isCode('INVALID_ARGUMENT'));
  });

  it('answers a duplicate (sender, id) with the stored message instead of failing', () => {
    const { store, peer, conversationId } = setup();
    const m = msg(conversationId, peer, 1, { body: 'original' });
    const first = store.messages.addMessage(m);
    assert.equal(first.added, true);
    const again = store.messages.addMessage({ ...m, body: 'replayed', lamport: 99 });
    assert.equal(again.added, false);
    assert.ok(!again.added && again.reason === 'duplicate' && again.existing.body === 'original');
    assert.equal(store.messages.history(conversationId).length, 1);
    assert.equal(store.messages.maxLamport(conversationId), 1);
    // The same id from another sender is another message.
    assert.equal(store.messages.addMessage({ ...m, senderAci: newAci() }).added, true);
  });

  it('validates messages and refuses an unknown conversation', () => {
    const { store, peer, conversationId } = setup();
    const bad: Partial<NewMessage>[] = [
      { id: 'abc' as MessageId },
      { senderAci: 'nope' as Aci },
      { senderDevice: 0 as DeviceId },
      { direction: 'sideways' as 'in' },
      { kind: 'html' as 'text' },
      { lamport: -1 },
      { lamport: 2 ** 60 },
      { status: 'lost' as 'sent' },
      { body: 5 as unknown as string },
    ];
    for (const b of bad) assert.throws(() => store.messages.addMessage(msg(conversationId, peer, 1, b)), isCode('INVALID_ARGUMENT'), JSON.stringify(b));
    assert.throws(() => store.messages.addMessage(msg(randomBytes(16).reduce((s, b) => s + b.toString(16).padStart(2, '0'), '') as ConversationId, peer, 1)), isCode('NOT_FOUND'));
    assert.equal(store.messages.history(conversationId).length, 0);
  });

  it('counts unread incoming text and marks read up to a message', () => {
    const { store, peer, me, conversationId } = setup();
    const ins = [1, 2, 3, 4].map((l) => msg(conversationId, peer, l));
    for (const m of ins) store.messages.addMessage(m);
    store.messages.addMessage(msg(conversationId, me, 5, { direction: 'out' }));
    store.messages.addMessage(msg(conversationId, peer, 6, { kind: 'decryption-error', body: '' }));
    assert.equal(store.messages.unreadCount(conversationId), 4);
    const read = store.messages.markRead(conversationId, { senderAci: peer, id: ins[1]!.id });
    assert.deepEqual(read.map((k) => k.id), [ins[0]!.id, ins[1]!.id]);
    assert.equal(store.messages.unreadCount(conversationId), 2);
    assert.deepEqual(store.messages.markRead(conversationId, { senderAci: peer, id: ins[1]!.id }), [], 'nothing twice');
    assert.equal(store.messages.markRead(conversationId).length, 2);
    assert.equal(store.messages.unreadCount(conversationId), 0);
    assert.throws(() => store.messages.markRead(conversationId, { senderAci: peer, id: newMessageId() }), isCode('NOT_FOUND'));
  });

  it('lists conversations with their last message and unread count, most recent first', () => {
    const { store, clock, peer, me, conversationId } = setup();
    const carol = newAci();
    const other = store.messages.conversationWith({ aci: carol, address: 'carol@example.org' }).id;
    clock.advance(1000);
    store.messages.addMessage(msg(conversationId, peer, 1));
    store.messages.addMessage(msg(conversationId, peer, 3, { body: 'latest' }));
    store.messages.addMessage(msg(conversationId, me, 2, { direction: 'out' }));
    clock.advance(1000);
    store.messages.addMessage(msg(other, carol, 1, { body: 'from carol' }));
    const list = store.messages.conversations();
    assert.deepEqual(list.map((c) => c.id), [other, conversationId]);
    assert.equal(list[0]!.lastMessage!.body, 'from carol');
    assert.equal(list[0]!.unreadCount, 1);
    assert.equal(list[1]!.lastMessage!.body, 'latest');
    assert.equal(list[1]!.unreadCount, 2);
    assert.equal(list[1]!.kind === 'direct' && list[1]!.peerAddress, 'bob@example.org');
    const empty = store.messages.conversationWith({ aci: newAci(), address: 'dave@example.org' });
    assert.equal(store.messages.conversations().find((c) => c.id === empty.id)!.lastMessage, undefined);
  });

  it('moves status forward only', () => {
    const { store, me, conversationId } = setup();
    const m = msg(conversationId, me, 1, { direction: 'out' });
    store.messages.addMessage(m);
    const key = { senderAci: me, id: m.id };
    const status = () => store.messages.message(key)!.status;
    assert.equal(status(), 'pending');
    assert.equal(store.messages.setStatus(key, 'failed'), true);
    assert.equal(store.messages.setStatus(key, 'pending'), true);
    assert.equal(store.messages.setStatus(key, 'read'), true, 'a read receipt may arrive first');
    assert.equal(store.messages.setStatus(key, 'delivered'), false);
    assert.equal(store.messages.setStatus(key, 'failed'), false);
    assert.equal(status(), 'read');
    assert.equal(store.messages.setStatus({ senderAci: me, id: newMessageId() }, 'sent'), false);
    assert.throws(() => store.messages.setStatus(key, 'bogus' as 'sent'), isCode('INVALID_ARGUMENT'));
  });
});
