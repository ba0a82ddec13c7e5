// SPDX-License-Identifier: AGPL-3.0-only
/**
 * Receipts in a group through a real relay process: the sender sees each member's message move
 * from sent to delivered to read on its own; a member's read syncs to that member's other device;
 * a member with read receipts off is never shown as having read; the sender's other device sees
 * the same per-member state.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { ReceiptEvent } from '@parley/client';
import { groupOfThree, startListening, until, type RecordingClient } from '../support/client-harness.js';
import { startRelay, type RelayProcess } from '../support/relay-process.js';

describe('receipts in a group', () => {
  let relay: RelayProcess;
  let alice: RecordingClient;
  let alice2: RecordingClient;
  let bob: RecordingClient;
  let bob2: RecordingClient;
  let carol: RecordingClient;
  let group = '';
  let messageId = '';
  const aliceReceipts: ReceiptEvent[] = [];
  const opened: RecordingClient[] = [];
  /** Alice's two devices listen throughout, as running apps do. */
  const stops: Array<() => Promise<void>> = [];

  before(async () => {
    relay = await startRelay();
    const people = await groupOfThree(relay.url, 'crag');
    ({ alice, alice2, bob, bob2, carol, group } = people);
    opened.push(...people.all);
    alice.client.on('receipt', (r) => aliceReceipts.push(r));
    for (const c of [alice, alice2]) stops.push((await startListening(c.client)).stop);
  });
  after(async () => {
    for (const stop of stops) await stop();
    for (const c of opened) await c.client.close();
    await relay?.stop();
  });

  /** alice's (or alice2's) per-member state of the message, by member address; {} before the device has it. */
  const states = (c: RecordingClient): Record<string, string> => {
    if (!c.client.history(group).some((m) => m.id === messageId)) return {};
    return Object.fromEntries(c.client.receipts(group, { messageId }).map((r) => [r.recipient, r.status] as const));
  };

  it('shows each member’s delivery as it comes', async () => {
    const sent = await alice.client.send(group, 'who climbs today?');
    messageId = sent.id;
    assert.deepEqual(
      Object.entries(states(alice)).sort(),
      [
        ['bob@localhost', 'sent'],
        ['carol@localhost', 'sent'],
      ],
    );
    await bob.client.receive();
    // The delivery receipt leaves about 100 ms after the batch it answers.
    await until('alice to get bob’s delivery receipt', () => states(alice)['bob@localhost'] === 'delivered');
    assert.equal(states(alice)['carol@localhost'], 'sent', 'carol has not received it yet');
    await carol.client.receive();
    await until('alice to get carol’s delivery receipt', () => states(alice)['carol@localhost'] === 'delivered');
    assert.ok(aliceReceipts.some((r) => r.type === 'delivery' && r.from === 'bob@localhost' && r.messageIds.includes(messageId)));
  });

  it('shows a member’s read, and syncs it to that member’s other device', async () => {
    const read = await bob.client.markRead(group);
    assert.deepEqual(read.messageIds, [messageId]);
    assert.equal(read.receipts, 1, 'one read receipt, to alice');
    await until('alice to see bob read it', () => states(alice)['bob@localhost'] === 'read');
    assert.equal(states(alice)['carol@localhost'], 'delivered');
    await bob2.client.receive();
    const onBob2 = bob2.client.conversations().find((c) => c.address === group);
    assert.equal(onBob2?.unread, 0, 'bob’s other device shows it read');
    assert.ok(aliceReceipts.some((r) => r.type === 'read' && r.from === 'bob@localhost' && r.messageIds.includes(messageId)));
  });

  it('never shows a member with read receipts off as having read', async () => {
    await carol.client.updateSettings({ readReceipts: false });
    const read = await carol.client.markRead(group);
    assert.deepEqual(read.messageIds, [messageId]);
    assert.equal(read.receipts, 0, 'no read receipt leaves');
    // Something carol sends after the read: once alice has it, any receipt would have come too.
    await carol.client.send(group, 'not me, sorry');
    await until('alice to get carol’s message', () => alice.client.history(group).some((m) => m.text === 'not me, sorry'));
    assert.equal(states(alice)['carol@localhost'], 'delivered');
  });

  it('gives the sender’s other device the same per-member state', async () => {
    await until('alice2 to learn the receipts', () => {
      const s = states(alice2);
      return s['bob@localhost'] === 'read' && s['carol@localhost'] === 'delivered';
    });
  });
});
