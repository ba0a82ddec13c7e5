// SPDX-License-Identifier: AGPL-3.0-only
/**
 * Two people chat through the client engine: real relay process, real SQLCipher profiles,
 * both directions, live (listening) and offline (queued, then `receive()`).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setImmediate } from 'node:timers/promises';
import type { MessageView } from '@parley/client';
import { fullHistory, openRecording, until, type RecordingClient } from '../support/client-harness.js';
import { startRelay, type RelayProcess } from '../support/relay-process.js';

const ids = (ms: readonly MessageView[]) => ms.map((m) => m.id);

describe('client engine: two people chat', () => {
  let relay: RelayProcess;
  let alice: RecordingClient;
  let bob: RecordingClient;

  before(async () => {
    relay = await startRelay();
    alice = await openRecording();
    bob = await openRecording();
    await alice.client.register(relay.url, 'alice');
    await bob.client.register(relay.url, 'bob');
  });
  after(async () => {
    await alice?.client.close();
    await bob?.client.close();
    await relay?.stop();
  });

  it('delivers live in both directions while both listen', async () => {
    const stopAlice = new AbortController();
    const stopBob = new AbortController();
    const listening = [alice.client.listen(stopAlice.signal), bob.client.listen(stopBob.signal)];
    try {
      const first = await alice.client.send('bob', 'hello bob, lunch today?');
      assert.equal(first.status, 'sent');
      assert.equal(first.direction, 'out');
      assert.equal(first.conversation, 'bob@localhost');
      await until('bob to see alice’s message', () => bob.messages.length === 1);
      const got = bob.messages[0]!;
      assert.equal(got.id, first.id);
      assert.equal(got.text, 'hello bob, lunch today?');
      assert.equal(got.direction, 'in');
      assert.equal(got.sender, 'alice@localhost');
      assert.equal(got.conversation, 'alice@localhost');
      assert.equal(got.senderDevice, 1);
      assert.equal(got.status, 'received');

      const reply = await bob.client.send('alice@localhost', 'sure, the usual place at noon');
      assert.equal(reply.status, 'sent');
      await until('alice to see bob’s answer', () => alice.messages.length === 1);
      assert.equal(alice.messages[0]!.id, reply.id);
      assert.equal(alice.messages[0]!.text, 'sure, the usual place at noon');
      assert.ok(reply.lamport > first.lamport, 'an answer is ordered after what it answers');
    } finally {
      stopAlice.abort();
      stopBob.abort();
      await Promise.all(listening);
    }
  });

  it('queues for an offline recipient and hands everything over on receive()', async () => {
    const a1 = await alice.client.send('bob', 'are you there?');
    const a2 = await alice.client.send('bob', 'call me when you read this');
    assert.deepEqual([a1.status, a2.status], ['sent', 'sent'], 'the relay accepted both while bob was offline');
    const before = bob.messages.length;
    const got = await bob.client.receive();
    assert.deepEqual(ids(got), [a1.id, a2.id], 'receive() answers what was queued, in order');
    assert.deepEqual(ids(bob.messages.slice(before)), [a1.id, a2.id], 'and emits each as a message event');
    assert.deepEqual(await bob.client.receive(), [], 'nothing is handed over twice');

    const b1 = await bob.client.send('alice', 'back now, calling you');
    assert.equal(b1.status, 'sent');
    const gotAlice = await alice.client.receive();
    assert.deepEqual(ids(gotAlice), [b1.id]);
  });

  it('keeps a listener connected when receive() runs beside it', async () => {
    const stopBob = new AbortController();
    const listening = bob.client.listen(stopBob.signal);
    try {
      assert.deepEqual(await bob.client.receive(), []);
      const before = bob.messages.length;
      const a3 = await alice.client.send('bob', 'still listening?');
      await until('the listener to get a message after receive() returned', () => bob.messages.length > before, 5000);
      assert.equal(bob.messages[before]!.id, a3.id);
    } finally {
      stopBob.abort();
      await listening;
    }
  });

  it('delivers messages typed in quick succession before each send() returns', async () => {
    // Each send starts while the previous one's flush is still running.
    const sends: Promise<MessageView>[] = [];
    for (let i = 0; i < 12; i++) {
      sends.push(alice.client.send('bob', `quick ${i}`));
      await setImmediate();
    }
    const done = await Promise.all(sends);
    assert.deepEqual(
      done.map((m) => m.status),
      done.map(() => 'sent'),
      'none stays behind in the outbox while the relay is up',
    );
    const got = await bob.client.receive();
    assert.deepEqual(ids(got), ids(done));
  });

  it('shows the same history, in the same order, on both sides, with outgoing messages delivered', async () => {
    // Each side picks up the delivery receipts the other sent for its messages.
    await alice.client.receive();
    await bob.client.receive();
    const ha = fullHistory(alice.client, 'bob');
    const hb = fullHistory(bob.client, 'alice');
    const quick = Array.from({ length: 12 }, (_, i) => `quick ${i}`);
    assert.equal(ha.length, 6 + quick.length);
    assert.deepEqual(ids(ha), ids(hb), 'both sides order the conversation the same way');
    assert.deepEqual(
      ha.map((m) => m.text),
      [
        'hello bob, lunch today?',
        'sure, the usual place at noon',
        'are you there?',
        'call me when you read this',
        'back now, calling you',
        'still listening?',
        ...quick,
      ],
    );
    for (let i = 1; i < ha.length; i++) assert.ok(ha[i]!.lamport >= ha[i - 1]!.lamport, 'history is in lamport order');
    for (const [mine, theirs] of [
      [ha, hb],
      [hb, ha],
    ] as const) {
      for (let i = 0; i < mine.length; i++) {
        const m = mine[i]!;
        const t = theirs[i]!;
        assert.notEqual(m.direction, t.direction, 'what one sent the other received');
        assert.equal(m.status, m.direction === 'out' ? 'delivered' : 'received', `status of ${m.direction} message ${i}`);
        assert.equal(m.sender, t.sender);
        assert.equal(m.text, t.text);
        assert.equal(m.lamport, t.lamport);
      }
    }
    const pageNewest = alice.client.history('bob', { limit: 2 });
    assert.deepEqual(ids(pageNewest), ids(ha.slice(-2)).reverse(), 'history pages are newest first');
    const pageBefore = alice.client.history('bob', { limit: 2, before: pageNewest[1]!.id });
    assert.deepEqual(ids(pageBefore), ids(ha.slice(-4, -2)).reverse());
  });

  it('lists the conversation with its last message and unread count', () => {
    const [ca, ...restA] = alice.client.conversations();
    assert.deepEqual(restA, []);
    assert.equal(ca!.address, 'bob@localhost');
    assert.equal(ca!.lastMessage?.text, 'quick 11');
    assert.equal(ca!.unread, 2, 'two messages from bob are unread');
    assert.equal(ca!.identityChanged, false);
    const [cb] = bob.client.conversations();
    assert.equal(cb!.address, 'alice@localhost');
    assert.equal(cb!.lastMessage?.id, ca!.lastMessage?.id);
    assert.equal(cb!.unread, 16);
    assert.deepEqual(
      alice.client.contacts().map((c) => c.address),
      ['bob@localhost'],
    );
  });

  it('ends a running listen() when the client is closed', async () => {
    const carol = await openRecording();
    await carol.client.register(relay.url, 'carol');
    const states: string[] = [];
    carol.client.on('connection', (state) => states.push(state));
    const never = new AbortController(); // nobody aborts it: close() alone must end the listener
    const listening = carol.client.listen(never.signal);
    await until('carol to connect', () => states.includes('connected'));
    await carol.client.close();
    const ended = await Promise.race([listening.then(() => 'ended'), new Promise((r) => setTimeout(() => r('still running'), 3000))]);
    assert.equal(ended, 'ended');
    assert.equal(states.at(-1), 'stopped');
  });

  it('finds messages by word and by prefix on both sides, and nothing for a word never sent', () => {
    for (const c of [alice.client, bob.client]) {
      const byWord = c.search('lunch');
      assert.deepEqual(
        byWord.map((h) => h.message.text),
        ['hello bob, lunch today?'],
      );
      assert.match(byWord[0]!.snippet, /\[lunch\]/);
      assert.equal(byWord[0]!.message.conversation, c === alice.client ? 'bob@localhost' : 'alice@localhost');
      const byPrefix = c.search('call*');
      assert.deepEqual(byPrefix.map((h) => h.message.text).sort(), ['back now, calling you', 'call me when you read this']);
      assert.deepEqual(c.search('usual noon').map((h) => h.message.text), ['sure, the usual place at noon'], 'every word must match');
      assert.deepEqual(c.search('dinner'), []);
      assert.deepEqual(c.search('lun'), [], 'a word without * is not a prefix');
    }
  });
});
