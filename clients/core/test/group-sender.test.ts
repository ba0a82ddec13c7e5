// SPDX-License-Identifier: AGPL-3.0-only
// The group sender on a real SQLCipher store with a scripted relay socket and a stand-in cipher:
// sender keys first, the payload saved before the first upload and uploaded again unchanged
// after a failure or a restart, device-set repairs, rotation after a removal.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { ParleyError, type Aci, type MessageId, type SendMultiResult } from '@parley/protocol';
import type { DeviceAddress } from '@parley/crypto';
import { GroupSender, type GroupCipherPort, type MultiSendSocket } from '../src/engine/group-sender.js';
import { Groups } from '../src/engine/groups.js';
import { Serial } from '../src/engine/serial.js';
import { SessionManager } from '../src/engine/session-manager.js';
import { adaptClientStore } from '../src/engine/store-adapter.js';
import type { RelayApi } from '../src/transport/relay-api.js';
import type { OutgoingSendMulti } from '../src/transport/relay-connection.js';
import { TransportError } from '../src/transport/transport-error.js';
import { decodeContent } from '../src/engine/content-codec.js';
import { ManualClock, newAci, openStore, testAccount } from './store-fixtures.js';

type Answer = 'ok' | 'full' | Error;

function setup() {
  const clock = new ManualClock(Date.now());
  const store = openStore({ clock });
  const account = testAccount();
  store.saveAccount(account);
  const ports = adaptClientStore(store, () => clock.now());
  const self = { aci: account.aci as string, deviceId: 1, address: 'alice@example.org', domain: 'example.org' };
  const bob = newAci();
  const carol = newAci();
  const people = new Map([
    ['bob@example.org', bob],
    ['carol@example.org', carol],
  ]);
  // Sessions with bob's devices 1 and 2 and carol's device 1 (the stand-in cipher never reads them).
  for (const [aci, device] of [
    [bob, 1],
    [bob, 2],
    [carol, 1],
  ] as const)
    store.protocol.state.putSession(aci, device, new Uint8Array([1]));
  const api = { claimBundles: () => Promise.reject(new TransportError('UNREACHABLE', 'no relay in this test')) } as unknown as RelayApi;
  const sessions = new SessionManager({ api, stores: store.protocol, self: { aci: self.aci, deviceId: 1 } });
  const serial = new Serial();
  const groups = new Groups({
    store: ports,
    groups: store.groups,
    deleteSenderKey: () => undefined,
    self,
    now: () => clock.now(),
    resolve: async (address) => ({ aci: people.get(address)!, conversation: address }),
    serial: (fn) => serial.run(async () => fn()),
    processDistribution: async () => 'unused',
  });

  const encrypted: Array<{ distributionId: string; recipients: string[]; payload: Uint8Array }> = [];
  const cipher: GroupCipherPort = {
    createDistribution: async (_s, _self, distributionId) => new TextEncoder().encode(`skdm ${distributionId}`),
    processDistribution: async () => 'unused',
    encryptMulti: async (_stores, _self, input) => {
      const payload = new Uint8Array(randomBytes(32));
      encrypted.push({ distributionId: input.distributionId, recipients: input.recipients.map((r: DeviceAddress) => `${r.aci}.${r.deviceId}`).sort(), payload });
      return payload;
    },
    recipientsOf: (payload) => [...new Set(encrypted.find((e) => e.payload === payload || Buffer.from(e.payload).equals(payload))!.recipients.map((r) => r.split('.')[0]!))],
  };
  const uploads: OutgoingSendMulti[] = [];
  const answers: Answer[] = [];
  const socket: MultiSendSocket = {
    connected: true,
    sendMulti: async (send) => {
      uploads.push(send);
      const a = answers.shift() ?? 'ok';
      if (a instanceof Error) throw a;
      return { requestId: 1, duplicate: false, recipients: [], fullRecipients: a === 'full' ? [new Uint8Array(16)] : [] } as unknown as SendMultiResult;
    },
  };
  /** Key sends the "relay" committed, by destination. */
  const keySends: string[] = [];
  // The pairwise outbox: the relay commits every entry for every device this device knows.
  const flushPairwise = async () => {
    for (const e of ports.outboxDue(clock.now() + 1, 1000)) {
      const c = decodeContent(e.content);
      if (c?.body.case === 'senderKeyDistribution') keySends.push(e.destinationAci);
      store.transaction(() => {
        store.groups.keySendCommitted(e.id, store.protocol.state.sessionDeviceIds(e.destinationAci));
        ports.outboxDone(e.id);
      });
    }
  };
  /** The unidentified socket: what it was sent, and how it answers. */
  const sealedUploads: OutgoingSendMulti[] = [];
  const sealedAnswers: Answer[] = [];
  const accessKeys = new Map<string, Uint8Array>();
  const sealedSocket: MultiSendSocket = {
    connected: false,
    sendMulti: async (send) => {
      sealedUploads.push(send);
      const a = sealedAnswers.shift() ?? 'ok';
      if (a instanceof Error) throw a;
      return { requestId: 1, duplicate: false, recipients: [], fullRecipients: [] } as unknown as SendMultiResult;
    },
  };
  const sealedRoute = (acis: readonly string[]) => {
    const keys = acis.map((a) => accessKeys.get(a));
    if (keys.some((k) => !k)) return undefined;
    const combined = new Uint8Array(16);
    for (const k of keys) for (let i = 0; i < 16; i++) combined[i]! ^= k![i]!;
    return { socket: sealedSocket, combinedAccessKey: combined };
  };
  const newSender = () =>
    new GroupSender({
      store: ports,
      groups: store.groups,
      sessions,
      serial,
      self,
      now: () => clock.now(),
      connection: () => socket,
      certificate: async () => new Uint8Array([9]),
      cipher,
      flushPairwise,
      sealedRoute,
    });
  return { clock, store, ports, groups, self, bob, carol, encrypted, uploads, answers, keySends, newSender, flushPairwise, sealedUploads, sealedAnswers, accessKeys };
}

describe('group sender', () => {
  it('hands every member account the sender key first, then uploads once and marks the message sent', async () => {
    const t = setup();
    const g = await t.groups.create('climbing', ['bob@example.org', 'carol@example.org']);
    await t.flushPairwise();
    const m = t.groups.queueMessage(`#${g.id}`, 'hello');
    const r = await t.newSender().flush();
    assert.deepEqual(r, { sent: 1, pending: 0, failed: 0, untrusted: [] });
    assert.deepEqual(t.keySends.sort(), [t.bob, t.carol].sort());
    assert.equal(t.encrypted.length, 1);
    assert.deepEqual(t.encrypted[0]!.recipients, [`${t.bob}.1`, `${t.bob}.2`, `${t.carol}.1`].sort());
    assert.equal(t.uploads.length, 1);
    assert.deepEqual(t.uploads[0]!.payload, t.encrypted[0]!.payload);
    assert.equal(t.ports.messageView(m.id, t.self.aci)?.status, 'sent');
    // The next message needs no key send.
    t.groups.queueMessage(`#${g.id}`, 'again');
    await t.newSender().flush();
    assert.equal(t.keySends.length, 2);
    assert.equal(t.encrypted[1]!.distributionId, t.encrypted[0]!.distributionId);
  });

  it('uploads the same bytes under the same id after a dropped connection, also from a new sender (a restart)', async () => {
    const t = setup();
    const g = await t.groups.create('climbing', ['bob@example.org']);
    await t.flushPairwise();
    t.groups.queueMessage(`#${g.id}`, 'hello');
    t.answers.push(new TransportError('DISCONNECTED', 'gone'));
    const first = await t.newSender().flush();
    assert.equal(first.pending, 1);
    assert.equal(t.store.groups.outbox.size(), 1, 'kept, with its payload');
    await t.newSender().flush();
    assert.equal(t.uploads.length, 2);
    assert.equal(t.encrypted.length, 1, 'not encrypted again');
    assert.deepEqual(t.uploads[1]!.payload, t.uploads[0]!.payload);
    assert.deepEqual(t.uploads[1]!.messageId, t.uploads[0]!.messageId);
    assert.equal(t.store.groups.outbox.size(), 0);
  });

  it('repairs a device set the relay refused and encrypts again under the same envelope id', async () => {
    const t = setup();
    const g = await t.groups.create('climbing', ['bob@example.org', 'carol@example.org']);
    await t.flushPairwise();
    t.groups.queueMessage(`#${g.id}`, 'hello');
    t.answers.push(new ParleyError('MISMATCHED_DEVICES', 'x', { recipients: [{ aci: t.bob, missingDevices: [], extraDevices: [2], staleDevices: [] }] }));
    const r = await t.newSender().flush();
    assert.equal(r.sent, 1);
    assert.equal(t.uploads.length, 2);
    assert.deepEqual(t.uploads[1]!.messageId, t.uploads[0]!.messageId);
    assert.notDeepEqual(t.uploads[1]!.payload, t.uploads[0]!.payload);
    assert.deepEqual(t.encrypted[1]!.recipients, [`${t.bob}.1`, `${t.carol}.1`].sort(), 'bob’s removed device is left out');
  });

  it('keeps a send whose recipient queue is full, and gives one up when this account left the group', async () => {
    const t = setup();
    const g = await t.groups.create('climbing', ['bob@example.org']);
    await t.flushPairwise();
    const m = t.groups.queueMessage(`#${g.id}`, 'hello');
    t.answers.push('full');
    assert.equal((await t.newSender().flush()).pending, 1);
    assert.equal(t.ports.messageView(m.id, t.self.aci)?.status, 'pending');
    await t.groups.leave(`#${g.id}`);
    t.clock.advance(3600_000);
    assert.equal((await t.newSender().flush()).failed, 1);
    assert.equal(t.ports.messageView(m.id, t.self.aci)?.status, 'failed');
  });

  it('after a removal starts a new sender key, hands it to the remaining members only, and encrypts a waiting payload again', async () => {
    const t = setup();
    const g = await t.groups.create('climbing', ['bob@example.org', 'carol@example.org']);
    await t.flushPairwise();
    t.groups.queueMessage(`#${g.id}`, 'before');
    await t.newSender().flush();
    const oldKey = t.encrypted[0]!.distributionId;
    // A message waits with a payload under the old key (its upload failed), then carol is removed.
    t.groups.queueMessage(`#${g.id}`, 'waiting');
    t.answers.push(new TransportError('DISCONNECTED', 'gone'));
    await t.newSender().flush();
    await t.groups.removeMembers(`#${g.id}`, ['carol@example.org']);
    t.keySends.length = 0;
    await t.flushPairwise();
    await t.newSender().flush();
    const last = t.encrypted.at(-1)!;
    assert.notEqual(last.distributionId, oldKey);
    assert.deepEqual(last.recipients, [`${t.bob}.1`, `${t.bob}.2`]);
    assert.deepEqual(t.keySends, [t.bob], 'the new key goes to bob only');
    assert.deepEqual(t.uploads.at(-1)!.payload, last.payload);
    assert.equal(t.store.groups.outbox.size(), 0);
  });
});

describe('group messages: delivery state per member', () => {
  it('keeps a row per member: pending when queued, sent with the upload, then each member’s receipts; the message follows the member furthest behind', async () => {
    const t = setup();
    const g = await t.groups.create('climbing', ['bob@example.org', 'carol@example.org']);
    await t.flushPairwise();
    const m = t.groups.queueMessage(`#${g.id}`, 'rope at 6?');
    const me = t.self.aci as Aci;
    const rows = () => Object.fromEntries(t.store.receipts.recipients(me, m.id as MessageId).map((r) => [r.recipientAci, r.status]));
    assert.deepEqual(rows(), { [t.bob]: 'pending', [t.carol]: 'pending' });
    await t.newSender().flush();
    assert.deepEqual(rows(), { [t.bob]: 'sent', [t.carol]: 'sent' }, 'one upload reached every member');
    t.store.receipts.applyReceipt(me, t.bob, [m.id as MessageId], 'read');
    assert.equal(t.ports.messageView(m.id, me)?.status, 'sent', 'carol has not got it yet');
    t.store.receipts.applyReceipt(me, t.carol, [m.id as MessageId], 'delivered');
    assert.equal(t.ports.messageView(m.id, me)?.status, 'delivered');
    t.store.receipts.applyReceipt(me, t.carol, [m.id as MessageId], 'read');
    assert.equal(t.ports.messageView(m.id, me)?.status, 'read');
    // Receipts to a member who is no contact go to the address the group gives it.
    assert.equal(t.ports.routeAddress(t.carol), 'carol@example.org');
    assert.equal(t.ports.routeAddress(newAci()), undefined);
  });
});

describe('group sender: sealed uploads', () => {
  it('goes over the unidentified socket with the combined access key when every member’s key is known, else identified', async () => {
    const t = setup();
    const g = await t.groups.create('climbing', ['bob@example.org', 'carol@example.org']);
    await t.flushPairwise();
    t.accessKeys.set(t.bob, new Uint8Array(16).fill(1));
    t.groups.queueMessage(`#${g.id}`, 'carol’s key is unknown');
    await t.newSender().flush();
    assert.equal(t.sealedUploads.length, 0);
    assert.equal(t.uploads.length, 1, 'identified');
    t.accessKeys.set(t.carol, new Uint8Array(16).fill(3));
    t.groups.queueMessage(`#${g.id}`, 'everyone’s key is known');
    await t.newSender().flush();
    assert.equal(t.sealedUploads.length, 1);
    assert.equal(t.uploads.length, 1, 'nothing more went identified');
    assert.deepEqual(t.sealedUploads[0]!.combinedAccessKey, new Uint8Array(16).fill(1 ^ 3));
  });

  it('after a sealed refusal uploads the same bytes under the same id identified, and stays identified a while', async () => {
    const t = setup();
    const g = await t.groups.create('climbing', ['bob@example.org']);
    await t.flushPairwise();
    t.accessKeys.set(t.bob, new Uint8Array(16).fill(7));
    const m = t.groups.queueMessage(`#${g.id}`, 'hello');
    t.sealedAnswers.push(new ParleyError('UNAUTHORIZED'));
    assert.equal((await t.newSender().flush()).sent, 1);
    assert.equal(t.sealedUploads.length, 1);
    assert.equal(t.uploads.length, 1);
    assert.deepEqual(t.uploads[0]!.payload, t.sealedUploads[0]!.payload);
    assert.deepEqual(t.uploads[0]!.messageId, t.sealedUploads[0]!.messageId);
    assert.equal(t.uploads[0]!.combinedAccessKey, undefined, 'no access key on the device socket');
    assert.equal(t.ports.messageView(m.id, t.self.aci)?.status, 'sent');
  });
});
