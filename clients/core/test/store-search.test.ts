// SPDX-License-Identifier: AGPL-3.0-only
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Aci, DeviceId } from '@parley/protocol';
import { ClientError, type ClientStore, type ConversationId, buildMatchExpression } from '../src/index.js';
import { newAci, newMessageId, openStore } from './store-fixtures.js';

function setup(): { store: ClientStore; peer: Aci; conversationId: ConversationId; add: (body: string, conversationId?: ConversationId) => { senderAci: Aci; id: ReturnType<typeof newMessageId> } } {
  const store = openStore();
  const peer = newAci();
  const conversationId = store.messages.conversationWith({ aci: peer, address: 'bob@example.org' }).id;
  let lamport = 0;
  const add = (body: string, c: ConversationId = conversationId) => {
    const id = newMessageId();
    store.messages.addMessage({ conversationId: c, id, senderAci: peer, senderDevice: 1 as DeviceId, direction: 'in', body, sentAt: 1, lamport: ++lamport });
    return { senderAci: peer, id };
  };
  return { store, peer, conversationId, add };
}

const bodies = (store: ClientStore, q: string) => store.messages.search(q).map((r) => store.messages.message({ senderAci: r.senderAci, id: r.messageId })!.body);

describe('message search', () => {
  it('finds words and prefixes, folding case and diacritics, newest first', () => {
    const { store, add } = setup();
    add('The quick brown fox');
    add('Quickly, the café opens');
    add('nothing to see here');
    add('CAFE au lait, quick!');
    assert.deepEqual(bodies(store, 'quick'), ['CAFE au lait, quick!', 'The quick brown fox']);
    assert.deepEqual(bodies(store, 'quick*'), ['CAFE au lait, quick!', 'Quickly, the café opens', 'The quick brown fox']);
    assert.deepEqual(bodies(store, 'cafe'), ['CAFE au lait, quick!', 'Quickly, the café opens']);
    assert.deepEqual(bodies(store, 'Café quick'), ['CAFE au lait, quick!']);
    assert.deepEqual(bodies(store, 'qui*'), bodies(store, 'quick*'));
    assert.deepEqual(bodies(store, 'elephant'), []);
  });

  it('returns conversation, ids and a highlighted snippet', () => {
    const { store, peer, conversationId, add } = setup();
    const key = add('meet me at the lighthouse after sunset');
    const [hit] = store.messages.search('lighthouse');
    assert.equal(hit!.conversationId, conversationId);
    assert.equal(hit!.messageId, key.id);
    assert.equal(hit!.senderAci, peer);
    assert.equal(hit!.direction, 'in');
    assert.match(hit!.snippet, /\[lighthouse\]/);
    const [custom] = store.messages.search('light*', { highlight: { before: '<b>', after: '</b>' } });
    assert.match(custom!.snippet, /<b>lighthouse<\/b>/);
  });

  it('treats FTS syntax in user input as text, never as an error', () => {
    const { store, add } = setup();
    add('he said "hello" - near the end; AND/OR: done*');
    for (const q of ['"', '""', '"hello', '*', '**', 'NEAR(', 'NEAR(hello', '-', '-hello', 'AND', 'OR hello', 'hello:', 'body:hello', '^hello', '(', ')', "'", '\\', 'hel"lo', '{a b}', 'NOT', '+']) {
      assert.doesNotThrow(() => store.messages.search(q), q);
    }
    assert.equal(store.messages.search('"hello"').length, 1);
    assert.equal(store.messages.search('NEAR(hello').length, 0, 'near is a word that must match too');
    assert.equal(store.messages.search('near the').length, 1);
    assert.equal(store.messages.search('-hello').length, 1, '- is not a NOT operator');
  });

  it('answers an empty list for a query without words', () => {
    const { store, add } = setup();
    add('something');
    for (const q of ['', '   ', '*', '"-"', '...']) assert.deepEqual(store.messages.search(q), [], JSON.stringify(q));
  });

  it('quotes every term in the MATCH expression', () => {
    const tokenize = (s: string) => s.toLowerCase().split(/[^a-z0-9]+/).filter(Boolean);
    assert.equal(buildMatchExpression('Hello wor*', tokenize), '"hello" "wor"*');
    assert.equal(buildMatchExpression('NEAR(a', tokenize), '"near a"');
    assert.equal(buildMatchExpression('  ', tokenize), undefined);
    assert.equal(buildMatchExpression('a"b', (s) => [s]), '"a""b"');
  });

  it('follows deletes and edits, and indexes only text messages', () => {
    const { store, peer, conversationId, add } = setup();
    const key = add('ephemeral pineapple');
    assert.equal(store.messages.search('pineapple').length, 1);
    assert.equal(store.messages.editBody(key, 'ephemeral mango'), true);
    assert.equal(store.messages.search('pineapple').length, 0);
    assert.equal(store.messages.search('mango').length, 1);
    assert.equal(store.messages.deleteMessage(key), true);
    assert.equal(store.messages.search('mango').length, 0);
    assert.equal(store.messages.search('ephemeral').length, 0);
    assert.equal(store.messages.deleteMessage(key), false);
    store.messages.addMessage({
      conversationId, id: newMessageId(), senderAci: peer, senderDevice: 1 as DeviceId, direction: 'in', kind: 'system', body: 'system pineapple', sentAt: 1, lamport: 9,
    });
    assert.equal(store.messages.search('pineapple').length, 0);
    assert.equal(store.database.value("SELECT count(*) FROM messages_fts WHERE messages_fts MATCH '\"system\"'"), 0);
    assert.doesNotThrow(() => store.database.exec("INSERT INTO messages_fts (messages_fts) VALUES ('integrity-check')"), 'the index matches its content');
  });

  it('limits results and scopes them to a conversation', () => {
    const { store, add } = setup();
    const other = store.messages.conversationWith({ aci: newAci(), address: 'carol@example.org' }).id;
    for (let i = 0; i < 30; i++) add(`banana ${i}`);
    add('banana split', other);
    assert.equal(store.messages.search('banana').length, 20);
    assert.equal(store.messages.search('banana', { limit: 500 }).length, 31);
    const scoped = store.messages.search('banana', { conversationId: other });
    assert.equal(scoped.length, 1);
    assert.equal(scoped[0]!.conversationId, other);
    assert.throws(() => store.messages.search('banana', { limit: 0 }), (e) => ClientError.is(e, 'INVALID_ARGUMENT'));
  });

  it('finds CJK text by its characters', () => {
    const { store, add } = setup();
    add('我们明天见');
    assert.equal(store.messages.search('明天').length, 1);
    assert.equal(store.messages.search('后天').length, 0);
  });
});
