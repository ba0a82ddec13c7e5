// SPDX-License-Identifier: AGPL-3.0-only
/**
 * Delivery and read receipts, read sync, privacy settings and typing indicators through a real
 * relay process, with a proxy in front of it that counts (and, for one test, reorders) what
 * passes: two people with two devices each, on real SQLCipher profiles.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { MessageView, ParleyClientApi, ReceiptEvent, TypingEvent } from '@parley/client';
import { aciFromBytes, create, EnvelopeSchema, type Frame, type Send } from '@parley/protocol';
import { fullHistory, linkNewDevice, openRecording, startListening as listening, until, type RecordingClient } from '../support/client-harness.js';
import { startRelay, type RelayProcess } from '../support/relay-process.js';
import { snapshotState } from '../support/state-snapshot.js';
import { TamperingProxy } from '../support/tampering-proxy.js';

/**
 * Sends the device (aci, deviceId) made to `destination` that the relay accepted, in order. A
 * send refused for its device set (the sender did not know a device yet) is repeated, and only
 * the accepted one counts.
 */
function sendsFrom(proxy: TamperingProxy, aci: string, deviceId: number, destination: string): Send[] {
  const accepted = new Set<string>();
  for (const f of proxy.frames) {
    if (f.direction === 'to-client' && f.frame.kind.case === 'sendResult') accepted.add(`${f.connection}/${f.frame.kind.value.requestId}`);
  }
  const out: Send[] = [];
  for (const f of proxy.frames) {
    if (f.direction !== 'to-relay' || f.frame.kind.case !== 'send' || f.device?.aci !== aci || f.device.deviceId !== deviceId) continue;
    const send = f.frame.kind.value;
    if (aciFromBytes(send.destination) === destination && accepted.has(`${f.connection}/${send.requestId}`)) out.push(send);
  }
  return out;
}

/** Records the receipt and typing events of a client. */
function record(client: ParleyClientApi): { receipts: ReceiptEvent[]; typing: TypingEvent[] } {
  const receipts: ReceiptEvent[] = [];
  const typing: TypingEvent[] = [];
  client.on('receipt', (r) => receipts.push(r));
  client.on('typing', (t) => typing.push(t));
  return { receipts, typing };
}

const statuses = (ms: readonly MessageView[]) => ms.map((m) => m.status);

describe('receipts and read sync between two people with two devices each', () => {
  let relay: RelayProcess;
  let proxy: TamperingProxy;
  let alice1: RecordingClient;
  let alice2: RecordingClient;
  let bob1: RecordingClient;
  let bob2: RecordingClient;
  let aliceAci: string;
  let bobAci: string;
  const opened: RecordingClient[] = [];
  const events = new Map<RecordingClient, ReturnType<typeof record>>();
  const sent: MessageView[] = [];

  before(async () => {
    relay = await startRelay();
    proxy = await TamperingProxy.start(relay.url);
    // The counts below need the relay to see which device sends what, so this relay offers no
    // sealed sender (receipts go sealed like messages otherwise; client-sealed-sender.test.ts).
    proxy.hideSealedSender = true;
    alice1 = await openRecording();
    bob1 = await openRecording();
    opened.push(alice1, bob1);
    aliceAci = (await alice1.client.register(proxy.url, 'alice')).aci;
    bobAci = (await bob1.client.register(proxy.url, 'bob')).aci;
    alice2 = (await linkNewDevice(alice1, proxy.url)).device;
    bob2 = (await linkNewDevice(bob1, proxy.url)).device;
    opened.push(alice2, bob2);
    for (const c of opened) events.set(c, record(c.client));
  });
  after(async () => {
    for (const c of opened) await c.client.close().catch(() => undefined);
    await proxy?.close();
    await relay?.stop();
  });

  it('answers a batch of five messages with one delivery receipt, which every device of the sender applies', async () => {
    for (let i = 0; i < 5; i++) sent.push(await alice1.client.send('bob', `message ${i}`));
    assert.deepEqual(statuses(sent), ['sent', 'sent', 'sent', 'sent', 'sent']);
    const before = sendsFrom(proxy, bobAci, 1, aliceAci).length;
    const got = await bob1.client.receive();
    assert.deepEqual(
      got.map((m) => m.id),
      sent.map((m) => m.id),
    );
    const receipts = sendsFrom(proxy, bobAci, 1, aliceAci).slice(before);
    assert.equal(receipts.length, 1, 'one receipt for the whole batch');
    assert.equal(receipts[0]!.urgent, false, 'a receipt wakes no phone');
    assert.equal(receipts[0]!.online, false, 'a receipt is queued like a message');
    assert.deepEqual(receipts[0]!.messages.map((m) => m.deviceId).sort(), [1, 2], 'to every device of the author');

    for (const a of [alice1, alice2]) {
      await a.client.receive();
      const mine = fullHistory(a.client, 'bob').filter((m) => m.direction === 'out');
      assert.deepEqual(statuses(mine), ['delivered', 'delivered', 'delivered', 'delivered', 'delivered'], 'the author’s devices both apply it');
      const rows = a.client.receipts('bob');
      assert.equal(rows.length, 5);
      assert.ok(rows.every((r) => r.recipient === 'bob@localhost' && r.status === 'delivered' && r.deliveredAt !== undefined && r.readAt === undefined));
    }
    const ev = events.get(alice1)!.receipts.filter((e) => e.type === 'delivery');
    assert.equal(ev.length, 1);
    assert.deepEqual([...ev[0]!.messageIds].sort(), sent.map((m) => m.id).sort());
    assert.equal(ev[0]!.from, 'bob@localhost');
  });

  it('reading on one device sends one read receipt to the author and a read sync to the other device, which sends none', async () => {
    await bob2.client.receive();
    assert.equal(bob2.client.conversations()[0]!.unread, 5);
    const toAlice = sendsFrom(proxy, bobAci, 1, aliceAci).length;
    const toSelf = sendsFrom(proxy, bobAci, 1, bobAci).length;
    const read = await bob1.client.markRead('alice');
    assert.deepEqual([...read.messageIds].sort(), sent.map((m) => m.id).sort());
    assert.equal(read.receipts, 1);
    assert.equal(sendsFrom(proxy, bobAci, 1, aliceAci).length - toAlice, 1, 'one read receipt');
    assert.equal(sendsFrom(proxy, bobAci, 1, bobAci).length - toSelf, 1, 'one read sync');
    assert.deepEqual((await bob1.client.markRead('alice')).messageIds, [], 'read twice marks nothing');

    const bob2ToAlice = sendsFrom(proxy, bobAci, 2, aliceAci).length;
    await bob2.client.receive();
    assert.equal(bob2.client.conversations()[0]!.unread, 0, 'the other device follows');
    assert.deepEqual(statuses(fullHistory(bob2.client, 'alice')), ['read', 'read', 'read', 'read', 'read']);
    assert.equal(sendsFrom(proxy, bobAci, 2, aliceAci).length, bob2ToAlice, 'a read sync is not answered with receipts');

    for (const a of [alice1, alice2]) {
      await a.client.receive();
      assert.deepEqual(statuses(fullHistory(a.client, 'bob')), ['read', 'read', 'read', 'read', 'read']);
      assert.ok(a.client.receipts('bob').every((r) => r.status === 'read' && r.readAt! >= r.deliveredAt!));
    }
    const readEvents = events.get(alice2)!.receipts.filter((e) => e.type === 'read');
    assert.equal(readEvents.length, 1);
    assert.equal(readEvents[0]!.messageIds.length, 5);
  });

  it('never takes a message back from read when its delivery receipt comes late', async () => {
    // The relay (the proxy) holds back bob's delivery receipt and hands it over after his read receipt.
    let held: Frame | undefined;
    let reordered = false;
    proxy.relayFrameHook = (frame, ctx) => {
      if (ctx.device?.aci !== aliceAci || ctx.device.deviceId !== 1 || frame.kind.case !== 'deliver') return undefined;
      if (!frame.kind.value.envelopes.some((e) => e.source.length === 16 && aciFromBytes(e.source) === bobAci)) return undefined;
      if (!held) {
        held = frame;
        return [];
      }
      if (reordered || held.kind.case !== 'deliver') return undefined;
      reordered = true;
      const seq = frame.kind.value.envelopes.at(-1)!.seq;
      const late = held.kind.value.envelopes.map((e) => create(EnvelopeSchema, { ...e, seq }));
      return [frame, { kind: { case: 'deliver', value: { envelopes: late } } }];
    };
    const seen = events.get(alice1)!.receipts;
    const start = seen.length;
    const live = await listening(alice1.client);
    try {
      const m = await alice1.client.send('bob', 'read me before you get me');
      await bob1.client.receive();
      await until('the delivery receipt to be held back', () => held !== undefined);
      await bob1.client.markRead('alice');
      await until('alice to get both receipts', () => seen.length - start >= 2);
      assert.ok(reordered);
      assert.deepEqual(
        seen.slice(start).map((e) => e.type),
        ['read', 'delivery'],
        'the read receipt came first',
      );
      assert.equal(alice1.client.history('bob', { limit: 1 })[0]!.id, m.id);
      assert.equal(alice1.client.history('bob', { limit: 1 })[0]!.status, 'read', 'the late delivery receipt did not downgrade it');
      assert.equal(alice1.client.receipts('bob', { messageId: m.id })[0]!.status, 'read');
    } finally {
      proxy.clearHooks();
      await live.stop();
    }
  });

  it('with read receipts off sends none and shows nobody’s read state, also not after turning them on again', async () => {
    await bob1.client.updateSettings({ readReceipts: false });
    const m2 = await alice1.client.send('bob', 'do not tell me you read this');
    await bob1.client.receive();
    const toAlice = sendsFrom(proxy, bobAci, 1, aliceAci).length;
    const r = await bob1.client.markRead('alice');
    assert.deepEqual([r.messageIds.length, r.receipts], [1, 0]);
    assert.equal(sendsFrom(proxy, bobAci, 1, aliceAci).length, toAlice, 'no read receipt left bob');
    await alice1.client.receive();
    assert.equal(alice1.client.history('bob', { limit: 1 })[0]!.id, m2.id);
    assert.equal(alice1.client.history('bob', { limit: 1 })[0]!.status, 'delivered');

    // The other way round: alice, with read receipts off, does not see bob's read state.
    await bob1.client.updateSettings({ readReceipts: true });
    await alice1.client.updateSettings({ readReceipts: false });
    const m3 = await alice1.client.send('bob', 'you may tell me, but I will not look');
    await bob1.client.receive();
    const before = sendsFrom(proxy, bobAci, 1, aliceAci).length;
    assert.equal((await bob1.client.markRead('alice')).receipts, 1);
    assert.equal(sendsFrom(proxy, bobAci, 1, aliceAci).length, before + 1);
    await alice1.client.receive();
    const shown = alice1.client.history('bob', { limit: 1 })[0]!;
    assert.equal(shown.id, m3.id);
    assert.equal(shown.status, 'delivered');
    const [row] = alice1.client.receipts('bob', { messageId: m3.id });
    assert.deepEqual([row!.status, row!.readAt], ['delivered', undefined]);
    const earlier = alice1.client.receipts('bob', { limit: 50 }).filter((x) => sent.some((s) => s.id === x.messageId));
    assert.ok(earlier.every((x) => x.status === 'delivered' && x.readAt === undefined), 'older read states are hidden too');
    await alice1.client.updateSettings({ readReceipts: true });
    assert.equal(alice1.client.receipts('bob', { messageId: m3.id })[0]!.status, 'delivered', 'a read receipt that came while off was not kept');
    assert.equal(alice1.client.receipts('bob', { messageId: sent[0]!.id })[0]!.status, 'read', 'older ones show again');
  });

  it('shares settings with the account’s other devices, newest first, and with a device linked later', async () => {
    await alice1.client.updateSettings({ typingIndicators: false, presence: false });
    await alice2.client.receive();
    assert.deepEqual(alice2.client.settings(), { readReceipts: true, typingIndicators: false, presence: false });
    // A change on the second device wins over the older one of the first.
    await alice2.client.updateSettings({ typingIndicators: true });
    await alice1.client.receive();
    assert.deepEqual(alice1.client.settings(), { readReceipts: true, typingIndicators: true, presence: false });
    const alice3 = (await linkNewDevice(alice1, proxy.url)).device;
    opened.push(alice3);
    await alice3.client.receive();
    assert.deepEqual(alice3.client.settings(), alice1.client.settings());
    await alice1.client.updateSettings({ presence: true });
  });

  it('refuses bad arguments with typed errors and changes nothing', async () => {
    await assert.rejects(alice1.client.markRead('nobody'), (e: Error & { code?: string }) => e.code === 'NOT_FOUND');
    assert.throws(() => alice1.client.receipts('bob', { messageId: 'f'.repeat(32) }), (e: Error & { code?: string }) => e.code === 'NOT_FOUND');
    assert.throws(() => alice1.client.receipts('bob', { messageId: 'not a message id' }), (e: Error & { code?: string }) => e.code === 'INVALID_ARGUMENT');
    await assert.rejects(alice1.client.updateSettings({ presence: 'yes' as unknown as boolean }), (e: Error & { code?: string }) => e.code === 'INVALID_ARGUMENT');
    await assert.rejects(alice1.client.typing('bob', 'maybe' as 'started'), (e: Error & { code?: string }) => e.code === 'INVALID_ARGUMENT');
    assert.deepEqual(alice1.client.settings(), { readReceipts: true, typingIndicators: true, presence: true });
  });
});

describe('typing indicators through a real relay', () => {
  let relay: RelayProcess;
  let proxy: TamperingProxy;
  let carol: RecordingClient;
  let dave: RecordingClient;
  let carolAci: string;
  let daveAci: string;
  let daveEvents: ReturnType<typeof record>;

  before(async () => {
    relay = await startRelay();
    proxy = await TamperingProxy.start(relay.url);
    carol = await openRecording();
    dave = await openRecording();
    carolAci = (await carol.client.register(proxy.url, 'carol')).aci;
    daveAci = (await dave.client.register(proxy.url, 'dave')).aci;
    daveEvents = record(dave.client);
  });
  after(async () => {
    await carol?.client.close();
    await dave?.client.close();
    await proxy?.close();
    await relay?.stop();
  });

  const onlineSends = () => sendsFrom(proxy, carolAci, 1, daveAci).filter((s) => s.online);
  const queueTables = () => {
    const t = snapshotState(relay.dataDir).tables;
    return Object.fromEntries(Object.entries(t).filter(([name]) => name.startsWith('relay.db/')));
  };

  it('never lands in the relay’s queue: an offline recipient gets nothing, now or later', async () => {
    await carol.client.receive(); // the first connection's own traffic is done before the snapshot
    const before = queueTables();
    const r = await carol.client.typing('dave', 'stopped');
    assert.deepEqual(r, { sent: true, devices: 0 }, 'no device of dave was online');
    assert.equal(onlineSends().length, 1);
    assert.deepEqual(queueTables(), before, 'no envelope, no dedup entry, no queue change in the relay’s database');
    await dave.client.receive();
    assert.deepEqual(daveEvents.typing, []);
  });

  it('reaches a listening recipient, STARTED at most once per 3 s, then STOPPED', async () => {
    await carol.client.send('dave', 'hi dave');
    await dave.client.receive();
    const live = await listening(dave.client);
    try {
      const sendsBefore = onlineSends().length;
      const first = await carol.client.typing('dave', 'started');
      assert.deepEqual(first, { sent: true, devices: 1 });
      await until('dave to see carol typing', () => daveEvents.typing.length === 1);
      assert.deepEqual(
        daveEvents.typing.map((e) => [e.from, e.conversation, e.action]),
        [['carol@localhost', 'carol@localhost', 'started']],
      );
      const again = await carol.client.typing('dave', 'started');
      assert.deepEqual(again, { sent: false, reason: 'throttled', devices: 0 });
      assert.equal(onlineSends().length, sendsBefore + 1, 'the throttled one did not go out');
      await carol.client.typing('dave', 'stopped');
      await until('dave to see carol stop', () => daveEvents.typing.length === 2);
      assert.equal(daveEvents.typing[1]!.action, 'stopped');
      assert.equal(daveEvents.typing[1]!.expired, undefined);
      assert.equal(dave.client.history('carol').length, 1, 'typing is never stored as a message');
    } finally {
      await live.stop();
    }
  });

  it('sends nothing, and shows nothing, while switched off', async () => {
    await carol.client.updateSettings({ typingIndicators: false });
    const sendsBefore = onlineSends().length;
    assert.deepEqual(await carol.client.typing('dave', 'started'), { sent: false, reason: 'off', devices: 0 });
    assert.equal(onlineSends().length, sendsBefore);
    await carol.client.updateSettings({ typingIndicators: true });

    // Erin has not typed to dave yet (carol's throttle would hold her STARTED back).
    const erin = await openRecording();
    try {
      await erin.client.register(proxy.url, 'erin');
      await erin.client.send('dave', 'hello from erin');
      await dave.client.receive();
      await dave.client.updateSettings({ typingIndicators: false });
      const live = await listening(dave.client);
      try {
        const seen = daveEvents.typing.length;
        const shown = dave.messages.length;
        assert.deepEqual(await erin.client.typing('dave', 'started'), { sent: true, devices: 1 });
        // A message sent after the indicator arrives after it: once it is here, the indicator was handled.
        await erin.client.send('dave', 'after typing');
        await until('dave to get the message', () => dave.messages.length > shown);
        assert.equal(daveEvents.typing.length, seen, 'the indicator was ignored');
      } finally {
        await live.stop();
      }
    } finally {
      await erin.client.close();
    }
  });
});
