// SPDX-License-Identifier: AGPL-3.0-only
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { Aci, DeviceId, MessageId } from '@parley/protocol';
import { AttachmentStore, MAX_MESSAGE_VERSIONS, MAX_PENDING_ACTIONS, PENDING_ACTION_RETENTION_MS, type ClientStore, type ConversationId, type MessageKey } from '../src/index.js';
import { ManualClock, newAci, newMessageId, openStore } from './store-fixtures.js';

function setup() {
  const clock = new ManualClock();
  const store = openStore({ clock });
  const peer = newAci();
  const me = newAci();
  const conversationId = store.messages.conversationWith({ aci: peer, address: 'bob@example.org' }).id;
  let lamport = 0;
  const add = (body: string, options: { sender?: Aci; conversation?: ConversationId; sentAt?: number } = {}): MessageKey => {
    const id = newMessageId();
    const senderAci = options.sender ?? peer;
    store.messages.addMessage({
      conversationId: options.conversation ?? conversationId,
      id,
      senderAci,
      senderDevice: 1 as DeviceId,
      direction: senderAci === peer ? 'in' : 'out',
      body,
      sentAt: options.sentAt ?? clock.now(),
      lamport: ++lamport,
    });
    return { senderAci, id };
  };
  const found = (q: string) => store.messages.search(q).map((h) => h.messageId);
  return { clock, store, peer, me, conversationId, add, found };
}

/** The decrypted database exported to a plain SQLite file (what SQLCipher would reveal to someone holding the key). */
function exportPlaintext(store: ClientStore): Buffer {
  const path = join(mkdtempSync(join(tmpdir(), 'parley-export-')), 'plain.db');
  store.database.exec(`ATTACH DATABASE '${path}' AS plaintext KEY ''`);
  store.database.value("SELECT sqlcipher_export('plaintext')");
  store.database.exec('DETACH DATABASE plaintext');
  return readFileSync(path);
}

const version = (id: MessageId, lamport: number, body: string, sentAt = 1) => ({ id, lamport, sentAt, body });

describe('message actions store: edits', () => {
  it('shows the highest-ranked version, keeps the history with the original first, and searches the shown text only', () => {
    const { store, add, found } = setup();
    const m = add('lunch at noon?');
    const e1 = newMessageId();
    const e2 = newMessageId();
    assert.equal(store.actions.applyEdit(m, version(e2, 20, 'dinner at eight?', 3)), 'shown');
    assert.equal(store.actions.applyEdit(m, version(e1, 10, 'brunch at ten?', 2)), 'kept', 'an older edit that comes late does not replace a newer one');
    assert.equal(store.messages.message(m)!.body, 'dinner at eight?');
    assert.equal(store.actions.state(m)!.editedAt, 3);
    assert.deepEqual(
      store.actions.versions(m).map((v) => [v.id, v.body]),
      [
        [m.id, 'lunch at noon?'],
        [e1, 'brunch at ten?'],
        [e2, 'dinner at eight?'],
      ],
    );
    assert.deepEqual(found('lunch'), [], 'the old text no longer matches');
    assert.deepEqual(found('brunch'), []);
    assert.deepEqual(found('dinner'), [m.id]);
    assert.equal(store.actions.applyEdit(m, version(e2, 20, 'dinner at eight?', 3)), 'duplicate');
    assert.equal(store.actions.maxVersionLamport(m), 20);
  });

  it('answers missing for an unknown message, deleted for a tombstone, and limit past the version cap', () => {
    const { store, add, peer } = setup();
    assert.equal(store.actions.applyEdit({ senderAci: peer, id: newMessageId() }, version(newMessageId(), 2, 'x')), 'missing');
    const gone = add('to be deleted');
    store.actions.tombstone(gone, 'everyone', 5);
    assert.equal(store.actions.applyEdit(gone, version(newMessageId(), 9, 'back again')), 'deleted');
    assert.equal(store.messages.message(gone)!.body, '');
    const m = add('v0');
    for (let i = 1; i < MAX_MESSAGE_VERSIONS; i++) assert.equal(store.actions.applyEdit(m, version(newMessageId(), 100 + i, `v${i}`)), 'shown');
    assert.equal(store.actions.applyEdit(m, version(newMessageId(), 10_000, 'one too many')), 'limit');
    assert.equal(store.messages.message(m)!.body, `v${MAX_MESSAGE_VERSIONS - 1}`);
  });
});

describe('message actions store: tombstones', () => {
  it('deletes for everyone: text, search words, files, edit history, reactions and quotes go; the row stays as a tombstone', () => {
    const { store, add, found, me, peer } = setup();
    const m = add('the vault code is 4417');
    new AttachmentStore(store.database).add(peer, m.id as MessageId, [
      { blobId: 'ab'.repeat(16), domain: 'example.org', key: new Uint8Array(64).fill(7), digest: new Uint8Array(32), size: 10, contentType: 'text/plain', fileName: 'code.txt' },
    ]);
    store.actions.applyEdit(m, version(newMessageId(), 50, 'the vault code is 9931'));
    store.actions.setReaction(m, { reactorAci: me, emoji: '👍', lamport: 3, actionId: newMessageId(), sentAt: 1 });
    const reply = add('which vault?', { sender: me });
    store.actions.saveQuote(reply, { targetAuthor: m.senderAci, targetId: m.id, text: 'the vault code is 9931' });
    const files = store.actions.tombstone(m, 'everyone', 1234);
    assert.equal(files!.length, 1, 'the caller learns which files to remove from disk');
    assert.equal(store.messages.message(m)!.body, '');
    assert.deepEqual(store.actions.state(m), { deleted: 'everyone', deletedAt: 1234 });
    assert.deepEqual(new AttachmentStore(store.database).forMessage(peer, m.id), []);
    assert.deepEqual(store.actions.versions(m), []);
    assert.deepEqual(store.actions.reactions(m), []);
    assert.equal(store.actions.quote(reply)!.text, '', 'a reply no longer shows the deleted text');
    assert.deepEqual(found('vault'), [reply.id], 'only the reply matches');
    assert.ok(store.messages.history(store.messages.conversationByPeer(peer)!.id).some((r) => r.id === m.id), 'the tombstone is shown');
    const again = store.messages.addMessage({
      conversationId: store.messages.conversationByPeer(peer)!.id,
      id: m.id,
      senderAci: peer,
      senderDevice: 1 as DeviceId,
      direction: 'in',
      body: 'the vault code is 4417',
      sentAt: 1,
      lamport: 1,
    });
    assert.equal(again.added, false, 'a redelivery of a deleted message is not stored again');
    assert.equal(store.actions.tombstone(m, 'everyone', 99), undefined, 'deleting twice changes nothing');
    assert.equal(store.actions.state(m)!.deletedAt, 1234);
  });

  it('deletes on this device only: hidden from history, the conversation list and search', () => {
    const { store, add, found, conversationId } = setup();
    const keep = add('keep this one');
    const hide = add('hide this one');
    assert.deepEqual(store.actions.tombstone(hide, 'local', 5), []);
    assert.deepEqual(
      store.messages.history(conversationId).map((r) => r.id),
      [keep.id],
    );
    assert.equal(store.messages.conversations()[0]!.lastMessage!.id, keep.id);
    assert.equal(store.messages.conversations()[0]!.unreadCount, 1);
    assert.deepEqual(found('one'), [keep.id]);
    assert.ok(store.actions.tombstone(hide, 'everyone', 6), 'its author can still delete it for everyone');
    assert.equal(store.actions.state(hide)!.deleted, 'everyone');
  });

  it('leaves no word of a deleted text in the decrypted database once the index is purged', () => {
    const { store, add } = setup();
    for (let i = 0; i < 50; i++) add(`filler message ${i}`);
    const secret = add('xylophonequagmire is the password');
    for (let i = 0; i < 5; i++) add(`later message ${i}`);
    const survivor = add('marmaladezeppelin stays');
    store.actions.tombstone(secret, 'everyone', 1);
    assert.ok(exportPlaintext(store).includes('xylophonequagmire'), 'without a merge FTS5 keeps the words in an old segment');
    store.actions.purgeSearchIndex();
    const plain = exportPlaintext(store);
    assert.equal(plain.includes('xylophonequagmire'), false);
    assert.ok(plain.includes('marmaladezeppelin'), 'the check finds text that is there');
    assert.deepEqual(
      store.messages.search('marmaladezeppelin').map((h) => h.messageId),
      [survivor.id],
    );
  });
});

describe('message actions store: reactions', () => {
  it('keeps one reaction per reactor: newer replaces older, a removal takes it back for good', () => {
    const { store, add, me, peer } = setup();
    const m = add('hello');
    const a = (lamport: number, emoji: string | undefined, reactor: Aci = me) => ({ reactorAci: reactor, emoji, lamport, actionId: newMessageId(), sentAt: lamport });
    assert.equal(store.actions.setReaction(m, a(5, '👍')), true);
    assert.equal(store.actions.setReaction(m, a(4, '😂')), false, 'an older reaction does not replace a newer one');
    assert.equal(store.actions.setReaction(m, a(6, '❤️')), true);
    assert.equal(store.actions.setReaction(m, a(2, '🎉', peer)), true);
    assert.deepEqual(
      store.actions.reactions(m).map((r) => [r.reactorAci, r.emoji]),
      [
        [peer, '🎉'],
        [me, '❤️'],
      ],
    );
    assert.equal(store.actions.setReaction(m, a(7, undefined)), true);
    assert.equal(store.actions.setReaction(m, a(6, '👍')), false, 'a reaction older than the removal does not come back');
    assert.deepEqual(
      store.actions.reactions(m).map((r) => r.reactorAci),
      [peer],
    );
    assert.equal(store.actions.reactionLamport(m, me), 7);
    assert.equal(store.actions.setReaction({ senderAci: peer, id: newMessageId() }, a(9, '👍')), false, 'no target, no reaction');
  });
});

describe('message actions store: disappearing-message timers', () => {
  it('converges on the change ranked highest by (lamport, sender, id), whatever order the changes come in', () => {
    const senders = [newAci(), newAci(), newAci()];
    const changes = Array.from({ length: 12 }, (_, i) => ({
      seconds: (i + 1) * 60,
      lamport: 1 + (i % 4),
      senderAci: senders[i % 3]!,
      messageId: newMessageId(),
    }));
    const expected = [...changes].sort((x, y) =>
      x.lamport !== y.lamport ? x.lamport - y.lamport : x.senderAci !== y.senderAci ? (x.senderAci < y.senderAci ? -1 : 1) : x.messageId < y.messageId ? -1 : 1,
    ).at(-1)!;
    for (let round = 0; round < 8; round++) {
      const { store, conversationId } = setup();
      const shuffled = [...changes].sort(() => Math.random() - 0.5);
      for (const c of shuffled) store.actions.applyTimer(conversationId, c);
      const t = store.actions.timer(conversationId)!;
      assert.deepEqual([t.seconds, t.senderAci, t.messageId], [expected.seconds, expected.senderAci, expected.messageId], `order ${round}`);
    }
  });
});

describe('message actions store: expiry', () => {
  it('hides expired messages from history, the conversation list and search at once, and the sweep deletes them with what belongs to them', () => {
    const { store, add, found, clock, conversationId, me, peer } = setup();
    const stays = add('permanent pineapple');
    const goes = add('ephemeral pineapple');
    store.actions.setExpiry(goes, 60, clock.now() + 60_000);
    store.actions.setReaction(goes, { reactorAci: me, emoji: '👍', lamport: 9, actionId: newMessageId(), sentAt: 1 });
    const reply = add('about that pineapple', { sender: me });
    store.actions.saveQuote(reply, { targetAuthor: goes.senderAci, targetId: goes.id, text: 'ephemeral pineapple' });
    assert.equal(store.actions.nextExpiry(), clock.now() + 60_000);
    assert.deepEqual(found('ephemeral'), [goes.id]);
    assert.deepEqual(store.actions.deleteExpired(clock.now()), [], 'nothing is due yet');

    clock.advance(60_000);
    assert.deepEqual(found('ephemeral'), [], 'not found once due, before any sweep');
    assert.deepEqual(
      store.messages.history(conversationId).map((r) => r.id),
      [reply.id, stays.id],
    );
    assert.equal(store.messages.conversations()[0]!.unreadCount, 1);
    const removed = store.actions.deleteExpired(clock.now());
    assert.deepEqual(
      removed.map((r) => r.id),
      [goes.id],
    );
    assert.equal(store.messages.message(goes), undefined, 'the row is gone');
    assert.equal(store.database.value('SELECT count(*) FROM reactions'), 0);
    assert.equal(store.actions.quote(reply)!.text, '', 'the excerpt of a reply does not outlive its target');
    assert.equal(store.actions.nextExpiry(), undefined);
    assert.ok(store.messages.message({ senderAci: peer, id: stays.id as MessageId }));
  });
});

describe('message actions store: pending actions', () => {
  it('keeps actions for a target until it arrives, in arrival order; prunes by age and caps the number', () => {
    const { store, clock, peer } = setup();
    const target = { senderAci: peer, id: newMessageId() };
    const first = newMessageId();
    const second = newMessageId();
    store.actions.addPending({ targetAuthor: peer, targetId: target.id, senderAci: peer, actionId: first, kind: 'edit', payload: '{"n":1}' });
    clock.advance(1);
    store.actions.addPending({ targetAuthor: peer, targetId: target.id, senderAci: peer, actionId: second, kind: 'delete', payload: '{"n":2}' });
    store.actions.addPending({ targetAuthor: peer, targetId: target.id, senderAci: peer, actionId: second, kind: 'delete', payload: '{"n":2}' });
    assert.deepEqual(
      store.actions.takePending(target).map((p) => [p.actionId, p.kind, p.payload]),
      [
        [first, 'edit', '{"n":1}'],
        [second, 'delete', '{"n":2}'],
      ],
    );
    assert.deepEqual(store.actions.takePending(target), [], 'taken once');

    store.actions.addPending({ targetAuthor: peer, targetId: newMessageId(), senderAci: peer, actionId: newMessageId(), kind: 'reaction', payload: '{}' });
    clock.advance(PENDING_ACTION_RETENTION_MS + 1);
    assert.equal(store.actions.prunePending(), 1);
    store.database.transaction(() => {
      for (let i = 0; i < MAX_PENDING_ACTIONS + 5; i++) {
        clock.advance(1);
        store.actions.addPending({ targetAuthor: peer, targetId: newMessageId(), senderAci: peer, actionId: newMessageId(), kind: 'reaction', payload: '{}' });
      }
    });
    assert.equal(store.actions.pendingCount(), MAX_PENDING_ACTIONS);
  });
});

describe('block list store', () => {
  it('replaces the whole set under a higher (version, device) and ignores older sets', () => {
    const { store } = setup();
    const [a, b, c] = [newAci(), newAci(), newAci()];
    assert.deepEqual(store.blocklist.version(), { version: 0, deviceId: 0 });
    assert.deepEqual(store.blocklist.replace([{ aci: a, address: 'Ann@example.org' }, { aci: b }], { version: 10, deviceId: 1 }, 100), { added: [a, b], removed: [] });
    assert.equal(store.blocklist.isBlocked(a), true);
    assert.deepEqual(
      store.blocklist.list().map((x) => [x.aci, x.address]),
      [
        [a, 'ann@example.org'],
        [b, undefined],
      ],
    );
    assert.equal(store.blocklist.replace([{ aci: c }], { version: 9, deviceId: 2 }, 200), undefined, 'an older set changes nothing');
    assert.equal(store.blocklist.replace([{ aci: c }], { version: 10, deviceId: 1 }, 200), undefined, 'the same version again changes nothing');
    assert.deepEqual(store.blocklist.replace([{ aci: b }, { aci: c }], { version: 10, deviceId: 2 }, 300), { added: [c], removed: [a] }, 'a tie goes to the higher device');
    assert.equal(store.blocklist.isBlocked(a), false);
    assert.equal(store.blocklist.list().find((x) => x.aci === b)!.blockedAt, 100, 'a contact blocked already keeps its time');
    assert.deepEqual(store.blocklist.version(), { version: 10, deviceId: 2 });
  });

  it('refuses a malformed set without changing anything', () => {
    const { store } = setup();
    assert.throws(() => store.blocklist.replace([{ aci: 'not-an-aci' }], { version: 5, deviceId: 1 }, 1), { code: 'INVALID_ARGUMENT' });
    assert.throws(() => store.blocklist.replace([], { version: 0, deviceId: 1 }, 1), { code: 'INVALID_ARGUMENT' });
    assert.deepEqual(store.blocklist.version(), { version: 0, deviceId: 0 });
  });
});
