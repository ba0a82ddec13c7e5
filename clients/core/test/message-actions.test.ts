// SPDX-License-Identifier: AGPL-3.0-only
// The rules of message actions (engine/message-actions.ts) on a real store: actions that come
// before their target, windows measured against the target, actions across conversations,
// messages that arrive expired, reaction validation, the timer notice.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { DataMessageSchema, aciToBytes, create, toHex, type Aci, type DataMessage } from '@parley/protocol';
import { MessageActions, finishOutcome, isValidReaction, newOutcome, quoteExcerpt, type ActionOutcome, type DataMessageInit } from '../src/engine/message-actions.js';
import type { EngineMessage } from '../src/engine/engine-store.js';
import { adaptClientStore } from '../src/engine/store-adapter.js';
import { ManualClock, newAci, openStore, testAccount } from './store-fixtures.js';

const HOUR = 3600_000;

function setup() {
  const clock = new ManualClock(Date.now());
  const store = openStore({ clock });
  const account = testAccount();
  store.saveAccount(account);
  const ports = adaptClientStore(store, () => clock.now());
  const bob = newAci();
  const carol = newAci();
  ports.rememberContact(bob, 'bob@example.org');
  ports.rememberContact(carol, 'carol@example.org');
  const queued: DataMessageInit[] = [];
  const actions = new MessageActions({
    store: ports,
    self: { aci: account.aci, deviceId: 1 },
    partialDir: '/nonexistent',
    queue: (_route, data) => void queued.push(data),
    senderAddress: () => 'alice@example.org',
  });
  let lamport = 10;
  const data = (extra: Partial<DataMessageInit> = {}): DataMessage =>
    create(DataMessageSchema, { messageId: randomBytes(16), lamport: BigInt(++lamport), timestamp: BigInt(clock.now()), ...extra });
  /** Applies an incoming action from `sender` in its own conversation, in a transaction, as the pipeline does. */
  const incoming = (sender: string, conversation: string, d: DataMessage, serverTimestamp = clock.now()): ActionOutcome => {
    const out = newOutcome();
    store.transaction(() => {
      actions.applyIncoming({ senderAci: sender, senderDevice: 1, conversation, serverTimestamp, now: clock.now() }, d, out);
      finishOutcome(ports, out);
    });
    return out;
  };
  /** Stores a received message from `sender` as the pipeline does (insert, then afterStored). */
  const message = (sender: string, conversation: string, d: DataMessage): { m: EngineMessage; out: ActionOutcome; inserted: boolean } => {
    const out = newOutcome();
    const m: EngineMessage = {
      id: toHex(d.messageId),
      conversation,
      senderAci: sender,
      senderDevice: 1,
      direction: 'in',
      body: d.text,
      kind: 'text',
      sentAt: Number(d.timestamp),
      receivedAt: clock.now(),
      lamport: Number(d.lamport),
      status: 'received',
    };
    let inserted = false;
    store.transaction(() => {
      if (actions.expiredOnArrival(d, clock.now())) return;
      inserted = ports.insertMessage(m) === 'inserted';
      if (inserted) actions.afterStored(m, d, out);
      finishOutcome(ports, out);
    });
    return { m, out, inserted };
  };
  const view = (conversation: string, id: string) => ports.history(conversation, { limit: 100 }).find((v) => v.id === id);
  return { clock, store, ports, actions, bob, carol, data, incoming, message, view, queued, me: account.aci };
}

describe('message actions: out of order', () => {
  it('keeps an edit, a reaction and a delete that come before their target and applies them when it arrives', async () => {
    const { bob, data, incoming, message, view, ports, carol } = setup();
    const target = data({ text: 'first draft' });
    const editOut = incoming(bob, 'bob@example.org', data({ text: 'second draft', editTargetMessageId: target.messageId }));
    assert.deepEqual(editOut.events, [], 'nothing to apply yet');
    const { out } = message(bob, 'bob@example.org', target);
    assert.deepEqual(out.events.map((e) => e.type), ['edit'], 'applied when the target arrives');
    assert.equal(view('bob@example.org', toHex(target.messageId))!.text, 'second draft');
    assert.deepEqual(ports.search('draft', { limit: 5 }).length, 1);
    assert.deepEqual(ports.search('first', { limit: 5 }), []);

    const gone = data({ text: 'never shown' });
    incoming(bob, 'bob@example.org', data({ deleteTargetMessageId: gone.messageId }));
    message(bob, 'bob@example.org', gone);
    assert.equal(view('bob@example.org', toHex(gone.messageId))!.deleted, true, 'a delete that came first leaves a tombstone');
    assert.deepEqual(ports.search('shown', { limit: 5 }), []);

    const liked = data({ text: 'liked later' });
    // carol reacts, in her own conversation, to a message of bob's conversation: void even once it is here.
    incoming(carol, 'carol@example.org', data({ reaction: { targetMessageId: liked.messageId, targetAuthor: aciToBytes(bob as Aci), emoji: '😡' } }));
    incoming(bob, 'bob@example.org', data({ reaction: { targetMessageId: liked.messageId, targetAuthor: aciToBytes(bob as Aci), emoji: '👍' } }));
    message(bob, 'bob@example.org', liked);
    assert.deepEqual(view('bob@example.org', toHex(liked.messageId))!.reactions?.map((r) => r.emoji), ['👍'], 'a reaction from another conversation is void');
  });

  it('checks the window against the target when a waiting edit is applied', async () => {
    const { bob, data, incoming, message, view, clock } = setup();
    const target = data({ text: 'original', timestamp: BigInt(clock.now() - 25 * HOUR) });
    incoming(bob, 'bob@example.org', data({ text: 'too late', editTargetMessageId: target.messageId }));
    message(bob, 'bob@example.org', target);
    assert.equal(view('bob@example.org', toHex(target.messageId))!.text, 'original');
    const fresh = data({ text: 'fresh' });
    message(bob, 'bob@example.org', fresh);
    // Backdated by its own timestamp but committed by the relay a day later.
    clock.advance(25 * HOUR);
    incoming(bob, 'bob@example.org', data({ text: 'backdated', timestamp: BigInt(clock.now() - 25 * HOUR + 1000), editTargetMessageId: fresh.messageId }));
    assert.equal(view('bob@example.org', toHex(fresh.messageId))?.text, 'fresh');
  });
});

describe('message actions: arrival and validation', () => {
  it('does not store a message that has expired already, and sets the expiry of one that has not', async () => {
    const { bob, data, message, view, clock } = setup();
    const old = data({ text: 'expired on the way', timestamp: BigInt(clock.now() - 120_000), expireTimerSeconds: 60 });
    assert.equal(message(bob, 'bob@example.org', old).inserted, false);
    const live = data({ text: 'still here', expireTimerSeconds: 60 });
    message(bob, 'bob@example.org', live);
    assert.equal(view('bob@example.org', toHex(live.messageId))!.expiresAt, Number(live.timestamp) + 60_000);
  });

  it('ignores malformed actions instead of showing them', async () => {
    const { bob, data, incoming, message, view } = setup();
    const target = data({ text: 'hello' });
    message(bob, 'bob@example.org', target);
    for (const bad of [
      data({ editTargetMessageId: new Uint8Array(5), text: 'short id' }),
      data({ reaction: { targetMessageId: target.messageId, targetAuthor: new Uint8Array(3), emoji: '👍' } }),
      data({ reaction: { targetMessageId: target.messageId, targetAuthor: aciToBytes(bob as Aci), emoji: 'no' } }),
      data({ expireTimerUpdate: true, expireTimerSeconds: 10 * 365 * 86_400 }),
    ]) {
      const out = incoming(bob, 'bob@example.org', bad);
      assert.deepEqual([out.events, out.stored], [[], []]);
    }
    assert.equal(view('bob@example.org', toHex(target.messageId))!.reactions, undefined);
  });

  it('a timer change is a notice once, and the timer follows the highest-ranked change', async () => {
    const { bob, data, incoming, ports } = setup();
    const change = data({ expireTimerUpdate: true, expireTimerSeconds: 300 });
    const first = incoming(bob, 'bob@example.org', change);
    assert.equal(first.stored[0]!.body, 'bob@example.org set disappearing messages to 5 minutes');
    assert.deepEqual(first.events, [{ type: 'expire', conversation: 'bob@example.org', seconds: 300, by: 'bob@example.org' }]);
    assert.deepEqual(incoming(bob, 'bob@example.org', change).stored, [], 'a redelivery adds nothing');
    incoming(bob, 'bob@example.org', data({ expireTimerUpdate: true, expireTimerSeconds: 60, lamport: 1n }));
    assert.equal(ports.conversationTimer('bob@example.org'), 300, 'an older change does not win');
  });

  it('accepts one emoji of at most 32 bytes as a reaction', () => {
    for (const ok of ['👍', '❤️', '🏳️‍🌈', '👩‍👩‍👧‍👦', '🇩🇪', '1️⃣', '👍🏽']) assert.equal(isValidReaction(ok), true, ok);
    for (const bad of ['', 'a', 'ok', '👍👍', ' 👍', '👍\n', '\u0007', '🏴󠁧󠁢󠁳󠁣󠁴󠁿'.repeat(2), 'x'.repeat(40)]) assert.equal(isValidReaction(bad), false, JSON.stringify(bad));
  });

  it('cuts a quote to 200 characters, not halfway through a character', () => {
    const text = '😀'.repeat(250);
    assert.equal([...quoteExcerpt(text)].length, 200);
    assert.equal(quoteExcerpt('short'), 'short');
  });
});

describe('message actions: what this device sends', () => {
  it('stamps an edit above every version it knows, and refuses someone else’s message', async () => {
    const { actions, store, ports, bob, data, message, queued, me, clock } = setup();
    const route = { conversation: 'bob@example.org', destinationAci: bob };
    const mine: EngineMessage = {
      id: toHex(randomBytes(16)),
      conversation: 'bob@example.org',
      senderAci: me,
      senderDevice: 1,
      direction: 'out',
      body: 'v1',
      kind: 'text',
      sentAt: clock.now(),
      receivedAt: clock.now(),
      lamport: 50,
      status: 'sent',
    };
    store.transaction(() => ports.insertMessage(mine));
    store.transaction(() => actions.edit(route, mine.id, 'v2', clock.now(), newOutcome()));
    store.transaction(() => actions.edit(route, mine.id, 'v3', clock.now(), newOutcome()));
    const lamports = queued.map((d) => Number(d.lamport));
    assert.ok(lamports[1]! > lamports[0]! && lamports[0]! > 50, `${lamports}`);
    assert.equal(ports.history('bob@example.org', { limit: 5 }).find((v) => v.id === mine.id)!.text, 'v3');
    const theirs = data({ text: 'bob’s' });
    message(bob, 'bob@example.org', theirs);
    assert.throws(() => store.transaction(() => actions.edit(route, toHex(theirs.messageId), 'x', clock.now(), newOutcome())), { code: 'NOT_AUTHOR' });
    assert.throws(() => store.transaction(() => actions.delete(route, toHex(theirs.messageId), 'everyone', clock.now(), newOutcome())), { code: 'NOT_AUTHOR' });
    assert.equal(queued.length, 2, 'nothing queued for a refusal');
  });
});
