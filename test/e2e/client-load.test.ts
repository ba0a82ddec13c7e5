// SPDX-License-Identifier: AGPL-3.0-only
/**
 * 1,000 messages in interleaved bursts from two people with three devices each, every device
 * listening: afterwards all six devices hold the same conversation in the same order, with
 * nothing missing and nothing twice.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { MessageView } from '@parley/client';
import { fullHistory, linkNewDevice, openRecording, until, type RecordingClient } from '../support/client-harness.js';
import { startRelay, type RelayProcess } from '../support/relay-process.js';

const TOTAL = 1000;
/** Messages each device sends at once in one round. */
const BURST = 4;

describe('client engine: 1,000 messages from 2 people × 3 devices', () => {
  let relay: RelayProcess;
  const alice: RecordingClient[] = [];
  const bob: RecordingClient[] = [];

  before(async () => {
    // 'normal' sync: commits survive a crash of the relay process; this test is about order.
    relay = await startRelay({ args: ['--sqlite-sync', 'normal'] });
    alice.push(await openRecording());
    bob.push(await openRecording());
    await alice[0]!.client.register(relay.url, 'alice');
    await bob[0]!.client.register(relay.url, 'bob');
    for (const person of [alice, bob]) {
      for (let i = 0; i < 2; i++) person.push((await linkNewDevice(person[0]!, relay.url)).device);
    }
  });
  after(async () => {
    for (const c of [...alice, ...bob]) await c.client.close();
    await relay?.stop();
  });

  it('orders every message identically on all six devices, none missing, none twice', async () => {
    const devices = [...alice, ...bob];
    // Five devices listen and send; bob's third stays offline and catches up at the end.
    const offline = devices.length - 1;
    const online = devices.slice(0, offline);
    const stop = new AbortController();
    const listening = online.map((d) => d.client.listen(stop.signal));
    const sent: MessageView[] = [];
    try {
      let n = 0;
      for (let round = 0; n < TOTAL; round++) {
        const burst: Promise<MessageView>[] = [];
        for (const [i, d] of online.entries()) {
          const peer = i < alice.length ? 'bob' : 'alice';
          for (let k = 0; k < BURST && n < TOTAL; k++, n++) burst.push(d.client.send(peer, `round ${round} device ${i} message ${k} (#${n})`));
        }
        const results = await Promise.all(burst);
        // Sent, or already delivered: a listening peer's receipt can beat send()'s return.
        for (const r of results) assert.ok(r.status === 'sent' || r.status === 'delivered', `"${r.text}" was accepted by the relay when send() returned (${r.status})`);
        sent.push(...results);
      }
      assert.equal(sent.length, TOTAL);
      for (const [i, d] of online.entries()) {
        const peer = i < alice.length ? 'bob' : 'alice';
        await until(`device ${i} to hold all ${TOTAL} messages`, () => fullHistory(d.client, peer).length >= TOTAL, 30_000);
      }
    } finally {
      stop.abort();
      await Promise.all(listening);
    }
    const caughtUp = await devices[offline]!.client.receive();
    assert.equal(caughtUp.length, TOTAL, 'the offline device gets everything queued for it in one receive()');

    const reference = fullHistory(alice[0]!.client, 'bob');
    const want = new Set(sent.map((m) => m.id));
    assert.equal(reference.length, TOTAL);
    assert.equal(new Set(reference.map((m) => m.id)).size, TOTAL, 'no message twice');
    for (const m of reference) assert.ok(want.has(m.id), 'nothing that was not sent');
    for (const [i, d] of devices.entries()) {
      const h = fullHistory(d.client, i < alice.length ? 'bob' : 'alice');
      assert.deepEqual(
        h.map((m) => m.id),
        reference.map((m) => m.id),
        `device ${i} orders the conversation like alice's first device`,
      );
      for (let j = 1; j < h.length; j++) assert.ok(h[j]!.lamport >= h[j - 1]!.lamport);
      assert.ok(h.every((m) => m.kind === 'text'), `device ${i} shows no decryption error or system entry`);
    }
    // Each device was told about every message it did not send itself, once.
    for (const [i, d] of devices.entries()) {
      const own = sent.filter((m) => m.text.includes(` device ${i} `)).length;
      const told = d.messages.map((m) => m.id);
      assert.equal(new Set(told).size, told.length, `device ${i} emitted no message twice`);
      assert.equal(told.length, TOTAL - own, `device ${i} emitted every message it did not send`);
    }
  });

  it('hands the whole conversation to a device linked afterwards, over several history chunks', async () => {
    const reference = fullHistory(bob[0]!.client, 'alice');
    const linked = await linkNewDevice(bob[0]!, relay.url);
    bob.push(linked.device);
    const chunks = linked.device.progress.filter((p) => p.task === 'history-receive').at(-1);
    assert.ok(chunks && chunks.total > 1 && chunks.done === chunks.total, `the history came in ${chunks?.total} chunks`);
    assert.deepEqual(
      fullHistory(linked.device.client, 'alice').map((m) => [m.id, m.lamport, m.text]),
      reference.map((m) => [m.id, m.lamport, m.text]),
    );
  });
});
