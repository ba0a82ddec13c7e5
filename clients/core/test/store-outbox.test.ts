// SPDX-License-Identifier: AGPL-3.0-only
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { randomBytes } from '@parley/crypto';
import { type Aci, type DeviceId, EnvelopeType } from '@parley/protocol';
import { ClientError, type DeviceCiphertext } from '../src/index.js';
import { ManualClock, newAci, newMessageId, openStore, tempProfileDir } from './store-fixtures.js';

const isCode = (code: string) => (e: unknown) => e instanceof ClientError && e.code === code;

function setup(profileDir = tempProfileDir()) {
  const clock = new ManualClock();
  const store = openStore({ profileDir, clock });
  const peer = '11111111-0000-4000-8000-000000000001' as Aci;
  const me = '22222222-0000-4000-8000-000000000002' as Aci;
  const conversationId = store.messages.conversationWith({ aci: peer, address: 'bob@example.org' }).id;
  const sendMessage = (body = 'hi') => {
    const id = newMessageId();
    store.messages.addMessage({ conversationId, id, senderAci: me, senderDevice: 1 as DeviceId, direction: 'out', body, sentAt: clock.now(), lamport: store.messages.nextLamport(conversationId) });
    return id;
  };
  return { store, clock, peer, me, conversationId, sendMessage, profileDir };
}

const ciphertexts = (): DeviceCiphertext[] => [
  { deviceId: 2, registrationId: 77, type: EnvelopeType.CIPHERTEXT, body: randomBytes(120) },
  { deviceId: 1, registrationId: 42, type: EnvelopeType.PREKEY, body: randomBytes(300) },
];

describe('outbox', () => {
  it('survives close and reopen with its content, envelope id and saved ciphertexts', () => {
    const { store, peer, conversationId, sendMessage, profileDir, clock } = setup();
    const messageId = sendMessage();
    const content = randomBytes(64);
    const entry = store.outbox.enqueue({ conversationId, destinationAci: peer, destinationAddress: 'Bob@example.org', messageId, content, timestamp: 1234 });
    assert.equal(entry.envelopeMessageId.length, 32);
    assert.equal(entry.destinationAddress, 'bob@example.org');
    assert.equal(entry.ciphertexts, undefined);
    assert.deepEqual(entry, store.outbox.get(entry.id), 'enqueue answers the entry as it was stored');
    const c = store.outbox.enqueue({ destinationAci: peer, destinationAddress: 'bob@example.org', content: randomBytes(8), timestamp: 5, urgent: false, notBefore: clock.now() + 9 });
    assert.deepEqual(c, store.outbox.get(c.id));
    store.outbox.complete(c.id);
    const saved = ciphertexts();
    store.transaction(() => store.outbox.saveEncrypted(entry.id, saved));
    store.close();

    const reopened = openStore({ profileDir, clock });
    const [due] = reopened.outbox.due();
    assert.equal(due!.id, entry.id);
    assert.equal(due!.envelopeMessageId, entry.envelopeMessageId);
    assert.deepEqual(due!.content, content);
    assert.equal(due!.timestamp, 1234);
    assert.equal(due!.urgent, true);
    assert.equal(due!.messageId, messageId);
    assert.deepEqual(due!.ciphertexts, [...saved].sort((a, b) => a.deviceId - b.deviceId));
    assert.equal(due!.encryptedAt, clock.now());
  });

  it('lists due entries in queue order and honours retry times', () => {
    const { store, clock, peer } = setup();
    const a = store.outbox.enqueue({ destinationAci: peer, destinationAddress: 'bob@example.org', content: randomBytes(8), timestamp: 1 });
    const b = store.outbox.enqueue({ destinationAci: peer, destinationAddress: 'bob@example.org', content: randomBytes(8), timestamp: 2, notBefore: clock.now() + 500 });
    const c = store.outbox.enqueue({ destinationAci: peer, destinationAddress: 'bob@example.org', content: randomBytes(8), timestamp: 3, urgent: false });
    assert.deepEqual(store.outbox.due().map((e) => e.id), [a.id, c.id]);
    store.outbox.fail(a.id, { error: 'QUEUE_FULL', retryAt: clock.now() + 1000 });
    const failed = store.outbox.get(a.id)!;
    assert.equal(failed.attempts, 1);
    assert.equal(failed.lastError, 'QUEUE_FULL');
    assert.deepEqual(store.outbox.due().map((e) => e.id), [c.id]);
    assert.equal(store.outbox.nextDueAt(), clock.now());
    clock.advance(600);
    assert.deepEqual(store.outbox.due().map((e) => e.id), [b.id, c.id]);
    assert.deepEqual(store.outbox.due({ limit: 1 }).map((e) => e.id), [b.id]);
    clock.advance(600);
    assert.deepEqual(store.outbox.due().map((e) => e.id), [a.id, b.id, c.id]);
    assert.equal(store.outbox.size(), 3);
    store.outbox.fail(a.id, { error: 'RATE_LIMITED', retryAt: clock.now() + 10_000 });
    assert.equal(store.outbox.wake(peer), 1);
    assert.equal(store.outbox.get(a.id)!.nextAttemptAt, clock.now());
  });

  it('marks the message sent when its last entry completes', () => {
    const { store, peer, me, conversationId, sendMessage } = setup();
    const messageId = sendMessage();
    const toPeer = store.outbox.enqueue({ conversationId, destinationAci: peer, destinationAddress: 'bob@example.org', messageId, content: randomBytes(8), timestamp: 1 });
    const toSelf = store.outbox.enqueue({ destinationAci: me, destinationAddress: 'alice@example.org', messageId, content: randomBytes(8), timestamp: 1 });
    const status = () => store.messages.message({ senderAci: me, id: messageId })!.status;
    assert.equal(store.outbox.complete(toPeer.id), true);
    assert.equal(status(), 'pending');
    assert.equal(store.outbox.complete(toSelf.id), true);
    assert.equal(status(), 'sent');
    assert.equal(store.outbox.complete(toSelf.id), false);
    assert.equal(store.outbox.size(), 0);
  });

  it('gives up an entry: removed, message failed', () => {
    const { store, peer, me, sendMessage } = setup();
    const messageId = sendMessage();
    const e = store.outbox.enqueue({ destinationAci: peer, destinationAddress: 'bob@example.org', messageId, content: randomBytes(8), timestamp: 1 });
    store.outbox.fail(e.id, { error: 'NOT_FOUND' });
    assert.equal(store.outbox.get(e.id), undefined);
    assert.equal(store.messages.message({ senderAci: me, id: messageId })!.status, 'failed');
    assert.throws(() => store.outbox.fail(e.id, { error: 'X' }), isCode('NOT_FOUND'));
  });

  it('replaces or clears ciphertexts, keeping the envelope id unless told otherwise', () => {
    const { store, peer } = setup();
    const e = store.outbox.enqueue({ destinationAci: peer, destinationAddress: 'bob@example.org', content: randomBytes(8), timestamp: 1 });
    store.outbox.saveEncrypted(e.id, ciphertexts());
    store.outbox.clearEncrypted(e.id);
    const cleared = store.outbox.get(e.id)!;
    assert.equal(cleared.ciphertexts, undefined);
    assert.equal(cleared.envelopeMessageId, e.envelopeMessageId);
    const only = [{ deviceId: 3, registrationId: 9, type: EnvelopeType.CIPHERTEXT, body: randomBytes(10) }];
    const fresh = newMessageId();
    store.outbox.saveEncrypted(e.id, only, { envelopeMessageId: fresh });
    assert.deepEqual(store.outbox.get(e.id)!.ciphertexts, only);
    assert.equal(store.outbox.get(e.id)!.envelopeMessageId, fresh);
  });

  it('refuses bad input without changing anything', () => {
    const { store, peer } = setup();
    const base = { destinationAci: peer, destinationAddress: 'bob@example.org', content: randomBytes(8), timestamp: 1 };
    assert.throws(() => store.outbox.enqueue({ ...base, destinationAci: 'x' as Aci }), isCode('INVALID_ARGUMENT'));
    assert.throws(() => store.outbox.enqueue({ ...base, destinationAddress: 'nobody' }), isCode('INVALID_ARGUMENT'));
    assert.throws(() => store.outbox.enqueue({ ...base, content: 'text' as unknown as Uint8Array }), isCode('INVALID_ARGUMENT'));
    assert.throws(() => store.outbox.enqueue({ ...base, conversationId: newMessageId() as never }), isCode('NOT_FOUND'));
    const e = store.outbox.enqueue(base);
    assert.throws(() => store.outbox.enqueue({ ...base, envelopeMessageId: e.envelopeMessageId }), isCode('INVALID_ARGUMENT'));
    assert.throws(() => store.outbox.saveEncrypted(e.id, []), isCode('INVALID_ARGUMENT'));
    const twice = [ciphertexts()[0]!, ciphertexts()[0]!];
    assert.throws(() => store.outbox.saveEncrypted(e.id, twice), isCode('INVALID_ARGUMENT'));
    assert.throws(() => store.outbox.saveEncrypted(e.id + 100, ciphertexts()), isCode('NOT_FOUND'));
    assert.equal(store.outbox.get(e.id)!.ciphertexts, undefined);
    assert.equal(store.outbox.size(), 1);
  });
});

describe('seen envelopes and settings', () => {
  it('remember envelopes per source device', () => {
    const { store } = setup();
    const a = { aci: newAci(), deviceId: 1 as DeviceId };
    const id = newMessageId();
    assert.equal(store.seenEnvelopes.has(a, id), false);
    assert.equal(store.seenEnvelopes.markSeen(a, id), true);
    assert.equal(store.seenEnvelopes.markSeen(a, id), false);
    assert.equal(store.seenEnvelopes.markSeen({ ...a, deviceId: 2 as DeviceId }, id), true);
    assert.throws(() => store.seenEnvelopes.markSeen(a, 'zz' as never), isCode('INVALID_ARGUMENT'));
  });

  it('keep named values', () => {
    const { store } = setup();
    assert.equal(store.settings.get('next-prekey-id'), undefined);
    store.settings.set('next-prekey-id', '101');
    store.settings.set('next-prekey-id', '201');
    assert.equal(store.settings.get('next-prekey-id'), '201');
    store.settings.delete('next-prekey-id');
    assert.equal(store.settings.get('next-prekey-id'), undefined);
    assert.throws(() => store.settings.set('', 'x'), isCode('INVALID_ARGUMENT'));
  });
});
