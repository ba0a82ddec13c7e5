// SPDX-License-Identifier: AGPL-3.0-only
// Edits, deletes, reactions, replies and disappearing messages in a group conversation: the
// group module hands group messages that are actions to the same rules as 1:1, and queues the
// actions made here as group sends. Real SQLCipher store, the engine's groups and actions
// modules, received contents fed in as the receive pipeline would.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { ContentSchema, aciToBytes, create, fromBinary, fromHex, toHex, type Aci, type Content } from '@parley/protocol';
import { Groups } from '../src/engine/groups.js';
import { MessageActions, finishOutcome, newOutcome, type ActionOutcome, type DataMessageInit } from '../src/engine/message-actions.js';
import { adaptClientStore } from '../src/engine/store-adapter.js';
import type { EngineMessage } from '../src/engine/engine-store.js';
import { ManualClock, newAci, openStore, testAccount } from './store-fixtures.js';

function setup() {
  const clock = new ManualClock(Date.now());
  const store = openStore({ clock });
  const account = testAccount();
  store.saveAccount(account);
  const ports = adaptClientStore(store, () => clock.now());
  const self = { aci: account.aci as string, deviceId: 1, address: 'alice@example.org', domain: 'example.org' };
  const people = new Map<string, string>([
    ['bob@example.org', newAci()],
    ['carol@example.org', newAci()],
  ]);
  for (const [address, aci] of people) ports.rememberContact(aci, address);
  const actions = new MessageActions({
    store: ports,
    self,
    partialDir: '/nonexistent',
    queue: (route, data, messageId) => groups.queueData(route.conversation.slice(1), data, messageId),
    senderAddress: () => self.address,
  });
  const groups: Groups = new Groups({
    store: ports,
    groups: store.groups,
    deleteSenderKey: () => undefined,
    self,
    now: () => clock.now(),
    resolve: async (address) => ({ aci: people.get(address)!, conversation: address }),
    serial: async (fn) => fn(),
    processDistribution: async () => 'unused',
    actions,
  });
  const bob = people.get('bob@example.org')!;
  const carol = people.get('carol@example.org')!;

  /** Feeds a group DataMessage from `source` through the group module as the pipeline does; returns what it applied. */
  const receive = async (source: string, data: DataMessageInit, groupId: string): Promise<{ outcome: ActionOutcome; stored: EngineMessage[] }> => {
    const content = create(ContentSchema, { body: { case: 'data', value: { ...data, group: { groupId: fromHex(groupId)!, revision: 99n } } } }) as Content;
    const effects: Array<() => void> = [];
    const stored: EngineMessage[] = [];
    const outcome = newOutcome();
    const taken = await groups.receive({
      source,
      sourceDevice: 1,
      content,
      stores: store.protocol,
      now: clock.now(),
      addEffect: (e) => effects.push(e),
      announce: (m) => stored.push(m),
      markSeen: () => undefined,
      serverTimestamp: clock.now(),
      outcome,
    });
    assert.equal(taken, true);
    store.transaction(() => {
      for (const e of effects) e();
      finishOutcome(ports, outcome);
    });
    return { outcome, stored };
  };
  let lamport = 100;
  const header = (extra: Partial<DataMessageInit> = {}): DataMessageInit => ({
    messageId: randomBytes(16),
    lamport: BigInt(++lamport),
    timestamp: BigInt(clock.now()),
    senderAddress: '',
    ...extra,
  });
  return { clock, store, ports, actions, groups, bob, carol, receive, header };
}

describe('message actions in a group conversation', () => {
  it('applies a member’s edit, delete and reaction with the 1:1 rules; another member cannot edit or delete it', async () => {
    const { ports, groups, bob, carol, receive, header } = setup();
    const g = await groups.create('climbing', ['bob@example.org', 'carol@example.org']);
    const conversation = `#${g.id}`;
    const msg = header({ text: 'meet at the wall at 9' });
    const { stored } = await receive(bob, msg, g.id);
    assert.equal(stored.length, 1);
    const id = toHex(msg.messageId!);
    const shown = () => ports.history(conversation, { limit: 50 }).find((m) => m.id === id)!;

    // carol names bob's message: neither her edit nor her delete touch it.
    await receive(carol, header({ text: 'meet at the pub', editTargetMessageId: msg.messageId! }), g.id);
    await receive(carol, header({ deleteTargetMessageId: msg.messageId! }), g.id);
    assert.equal(shown().text, 'meet at the wall at 9');
    assert.equal(shown().deleted, undefined);

    const edit = await receive(bob, header({ text: 'meet at the wall at 10', editTargetMessageId: msg.messageId! }), g.id);
    assert.deepEqual(edit.stored, [], 'an action is not shown as a message');
    assert.equal(edit.outcome.events[0]?.type, 'edit');
    assert.equal(shown().text, 'meet at the wall at 10');
    assert.deepEqual(ports.search('wall', { limit: 5 }).map((h) => h.message.id), [id]);

    await receive(carol, header({ reaction: { targetMessageId: msg.messageId!, targetAuthor: aciToBytes(bob as Aci), emoji: '🧗', remove: false } }), g.id);
    assert.deepEqual(shown().reactions?.map((r) => [r.reactor, r.emoji]), [['carol@example.org', '🧗']]);

    await receive(bob, header({ deleteTargetMessageId: msg.messageId! }), g.id);
    assert.equal(shown().deleted, true);
    assert.deepEqual(ports.search('wall', { limit: 5 }), []);
  });

  it('a member’s timer change sets the group’s timer, and its messages then expire', async () => {
    const { ports, groups, bob, carol, receive, header, clock } = setup();
    const g = await groups.create('climbing', ['bob@example.org', 'carol@example.org']);
    const conversation = `#${g.id}`;
    await receive(carol, header({ expireTimerUpdate: true, expireTimerSeconds: 300 }), g.id);
    assert.equal(ports.conversationTimer(conversation), 300);
    const msg = header({ text: 'gone in five minutes', expireTimerSeconds: 300 });
    await receive(bob, msg, g.id);
    const id = toHex(msg.messageId!);
    assert.equal(ports.history(conversation, { limit: 50 }).find((m) => m.id === id)?.expiresAt, Number(msg.timestamp) + 300_000);
    clock.advance(300_001);
    assert.equal(ports.history(conversation, { limit: 50 }).find((m) => m.id === id), undefined);
  });

  it('queues this device’s edit, reaction, reply and timer change as group sends carrying the group and the timer', async () => {
    const { store, ports, actions, groups, bob, receive, header } = setup();
    const g = await groups.create('climbing', ['bob@example.org']);
    const conversation = `#${g.id}`;
    const route = { conversation, destinationAci: '' };
    store.transaction(() => actions.setTimer(route, 3600, Date.now(), newOutcome()));
    const mine = groups.queueMessage(conversation, 'bring the rope');
    assert.equal(ports.history(conversation, { limit: 50 }).find((m) => m.id === mine.id)?.expireTimer, 3600, 'a group message carries the group’s timer');
    const theirs = header({ text: 'ok' });
    await receive(bob, theirs, g.id);
    store.transaction(() => {
      actions.edit(route, mine.id, 'bring the long rope', Date.now(), newOutcome());
      actions.react(route, toHex(theirs.messageId!), '👍', false, Date.now(), newOutcome());
    });
    const quote = actions.quoteFor(conversation, toHex(theirs.messageId!));
    const reply = groups.queueMessage(conversation, 'great', { quote });
    assert.equal(ports.history(conversation, { limit: 50 }).find((m) => m.id === reply.id)?.quote?.text, 'ok');

    const sent = store.groups.outbox.due(Date.now() + 1000, 100).map((e) => fromBinary(ContentSchema, e.content));
    const data = sent.map((c) => (c.body.case === 'data' ? c.body.value : undefined));
    assert.ok(data.every((d) => d?.group && toHex(d.group.groupId) === g.id), 'every send names the group');
    assert.ok(data.some((d) => d?.expireTimerUpdate && d.expireTimerSeconds === 3600));
    assert.ok(data.some((d) => d?.editTargetMessageId.length === 16 && toHex(d.editTargetMessageId) === mine.id && d.text === 'bring the long rope'));
    assert.ok(data.some((d) => d?.reaction?.emoji === '👍'));
    assert.ok(data.some((d) => d?.quote && toHex(d.quote.targetMessageId) === toHex(theirs.messageId!)));
    assert.ok(data.filter((d) => d && !d.expireTimerUpdate).every((d) => d!.expireTimerSeconds === 3600), 'and the timer');
    assert.equal(ports.history(conversation, { limit: 50 }).find((m) => m.id === mine.id)?.text, 'bring the long rope');
  });
});
