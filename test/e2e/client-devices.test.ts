// SPDX-License-Identifier: AGPL-3.0-only
/**
 * One person with three devices through the client engine: devices 2 and 3 are linked on new
 * profiles while device 1 approves at the same time; every device then shows one conversation
 * in one order, with the history from before it was linked and the messages the other devices
 * sent (transcripts).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { MessageView, ProgressEvent } from '@parley/client';
import { fullHistory, linkNewDevice, openRecording, type RecordingClient } from '../support/client-harness.js';
import { startRelay, type RelayProcess } from '../support/relay-process.js';

const ids = (ms: readonly MessageView[]) => ms.map((m) => m.id);
const last = (events: readonly ProgressEvent[], task: ProgressEvent['task']) => events.filter((e) => e.task === task).at(-1);

describe('client engine: one person, three devices', () => {
  let relay: RelayProcess;
  let alice1: RecordingClient;
  let alice2: RecordingClient;
  let alice3: RecordingClient;
  let bob: RecordingClient;
  const opened: RecordingClient[] = [];

  before(async () => {
    relay = await startRelay();
    alice1 = await openRecording();
    bob = await openRecording();
    opened.push(alice1, bob);
    await alice1.client.register(relay.url, 'alice');
    await bob.client.register(relay.url, 'bob');
  });
  after(async () => {
    for (const c of opened) await c.client.close();
    await relay?.stop();
  });

  it('links device 2 while device 1 approves, with progress on both sides and the earlier history', async () => {
    await alice1.client.send('bob', 'first, from the only device');
    await bob.client.receive();
    await bob.client.send('alice', 'welcome');
    await alice1.client.receive();
    await alice1.client.send('bob', 'second, still alone');
    const before = fullHistory(alice1.client, 'bob');
    assert.equal(before.length, 3);

    const linked = await linkNewDevice(alice1, relay.url);
    alice2 = linked.device;
    opened.push(alice2);
    assert.equal(linked.deviceId, 2);
    assert.deepEqual(
      alice2.progress.filter((p) => p.task === 'link').map((p) => `${p.done}/${p.total}`),
      ['1/3', '2/3', '3/3'],
      'the new device reports every step of the link',
    );
    const received = last(alice2.progress, 'history-receive');
    assert.ok(received && received.total >= 1 && received.done === received.total, 'the new device reports the whole history arriving');
    const sent = last(alice1.progress, 'history-send');
    assert.ok(sent && sent.total >= 1 && sent.done === sent.total, 'the approving device reports the whole history sent');
    assert.equal(alice2.client.account()?.aci, alice1.client.account()?.aci);
    assert.equal(alice2.client.account()?.address, 'alice@localhost');

    assert.deepEqual(ids(fullHistory(alice2.client, 'bob')), ids(before), 'the history from before the link is on the new device');
    assert.deepEqual(
      fullHistory(alice2.client, 'bob').map((m) => [m.direction, m.text]),
      before.map((m) => [m.direction, m.text]),
    );
    assert.deepEqual(
      (await alice1.client.devices()).map((d) => [d.deviceId, d.current]),
      [
        [1, true],
        [2, false],
      ],
    );
  });

  it('links device 3 the same way, after device 2 has sent', async () => {
    await alice2.client.send('bob', 'hello from my second device');
    await alice1.client.receive();
    const linked = await linkNewDevice(alice1, relay.url);
    alice3 = linked.device;
    opened.push(alice3);
    assert.equal(linked.deviceId, 3);
    const h3 = fullHistory(alice3.client, 'bob');
    assert.deepEqual(ids(h3), ids(fullHistory(alice1.client, 'bob')));
    assert.ok(
      h3.some((m) => m.text === 'hello from my second device' && m.senderDevice === 2 && m.direction === 'out'),
      'what device 2 sent reached device 1 as a transcript and device 3 with the history',
    );
  });

  it('shows every device the same conversation in the same order, transcripts included, and every device of the sender learns delivery', async () => {
    await bob.client.receive();
    await alice3.client.send('bob', 'and one from the third');
    await bob.client.send('alice', 'so many devices');
    await alice1.client.send('bob', 'device one again');
    await alice2.client.send('bob', 'device two again');
    // Every transcript and message is queued by now; one receive() each hands it all over.
    for (const c of [alice1, alice2, alice3, bob]) await c.client.receive();
    // Bob's delivery receipts go to every device of alice, whichever device sent the message.
    for (const c of [alice1, alice2, alice3]) await c.client.receive();

    const reference = fullHistory(bob.client, 'alice');
    // Concurrent sends may share a lamport clock (then the sender ACI decides), so only the
    // messages sent one after another have a fixed place.
    assert.deepEqual(reference.slice(0, 4).map((m) => m.text), ['first, from the only device', 'welcome', 'second, still alone', 'hello from my second device']);
    assert.deepEqual(
      reference.map((m) => m.text).sort(),
      [
        'and one from the third',
        'device one again',
        'device two again',
        'first, from the only device',
        'hello from my second device',
        'second, still alone',
        'so many devices',
        'welcome',
      ],
      'bob has every message once',
    );
    for (const [name, device] of [
      ['alice1', alice1],
      ['alice2', alice2],
      ['alice3', alice3],
    ] as const) {
      const h = fullHistory(device.client, 'bob');
      assert.deepEqual(ids(h), ids(reference), `${name} orders the conversation like bob`);
      assert.equal(new Set(ids(h)).size, h.length, `${name} shows no message twice`);
      for (const m of h) {
        const fromAlice = m.sender === 'alice@localhost';
        assert.equal(m.direction, fromAlice ? 'out' : 'in', `${name}: direction of "${m.text}"`);
        assert.equal(m.status, fromAlice ? 'delivered' : 'received', `${name}: status of "${m.text}"`);
      }
      const [conversation, ...others] = device.client.conversations();
      assert.deepEqual(others, [], `${name} has one conversation`);
      assert.equal(conversation!.address, 'bob@localhost');
      assert.equal(conversation!.lastMessage?.id, reference.at(-1)!.id);
    }
  });
});

describe('client engine: two devices linked at the same time', () => {
  let relay: RelayProcess;
  let alice1: RecordingClient;
  const opened: RecordingClient[] = [];

  before(async () => {
    relay = await startRelay();
    alice1 = await openRecording();
    opened.push(alice1);
    await alice1.client.register(relay.url, 'alice');
    await alice1.client.send('alice', 'a note to myself, before either link');
  });
  after(async () => {
    for (const c of opened) await c.client.close();
    await relay?.stop();
  });

  it('gives each new device its own id and the history, even when the links overlap', async () => {
    const links = await Promise.allSettled([
      linkNewDevice(alice1, relay.url, { timeoutMs: 15_000 }),
      linkNewDevice(alice1, relay.url, { timeoutMs: 15_000 }),
    ]);
    for (const l of links) if (l.status === 'fulfilled') opened.push(l.value.device);
    const rejected = links.flatMap((l) => (l.status === 'rejected' ? [String(l.reason)] : []));
    assert.deepEqual(rejected, [], 'both links complete');
    const linked = links.map((l) => (l as PromiseFulfilledResult<{ device: RecordingClient; deviceId: number }>).value);
    assert.deepEqual(linked.map((l) => l.deviceId).sort(), [2, 3]);
    for (const l of linked) {
      assert.deepEqual(
        fullHistory(l.device.client, 'alice').map((m) => m.text),
        ['a note to myself, before either link'],
      );
    }
  });
});

describe('client engine: linking while the conversation goes on', () => {
  let relay: RelayProcess;
  const opened: RecordingClient[] = [];

  before(async () => {
    relay = await startRelay();
  });
  after(async () => {
    for (const c of opened) await c.client.close();
    await relay?.stop();
  });

  it('gives the new device both the history and what arrived during the link, once each, in one order', async () => {
    const alice = await openRecording();
    const bob = await openRecording();
    opened.push(alice, bob);
    await alice.client.register(relay.url, 'alice');
    await bob.client.register(relay.url, 'bob');
    for (let i = 0; i < 5; i++) await bob.client.send('alice', `before the link ${i}`);
    await alice.client.receive();

    // Bob keeps writing while alice's first device (listening) approves a second one.
    let writing = true;
    const written = (async () => {
      let i = 0;
      while (writing) {
        await bob.client.send('alice', `during the link ${i++}`);
        await new Promise((r) => setTimeout(r, 5));
      }
      return i;
    })();
    const stop = new AbortController();
    const listening = alice.client.listen(stop.signal);
    let alice2: RecordingClient;
    try {
      alice2 = (await linkNewDevice(alice, relay.url)).device;
      opened.push(alice2);
    } finally {
      writing = false;
      await written;
      stop.abort();
      await listening;
    }
    assert.ok((await written) > 0, 'bob wrote during the link');
    await alice2.client.receive();
    await alice.client.receive();
    const h1 = fullHistory(alice.client, 'bob');
    const h2 = fullHistory(alice2.client, 'bob');
    assert.equal(h1.length, 5 + (await written));
    assert.deepEqual(ids(h2), ids(h1));
  });
});
