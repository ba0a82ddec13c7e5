// SPDX-License-Identifier: AGPL-3.0-only
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CryptoError, SessionCipher, generateIdentity, randomBytes } from '@parley/crypto';
import { createTestDevice, describeProtocolStoresContract } from '@parley/crypto/testing'; // eslint-disable-line no-restricted-imports -- ./testing is @parley/crypto's declared test entry (CONVENTIONS 2)
import type { Aci, DeviceId, MessageId } from '@parley/protocol';
import { ClientError, type ClientStore, stageProtocolStores } from '../src/index.js';
import { AccountProfileKeyStore } from '../src/store/account-profile-key.js';
import { newMessageId, openStore, testAccount } from './store-fixtures.js';

describeProtocolStoresContract('SQLCipher database stores', (identity) => {
  const store = openStore();
  store.saveAccount(testAccount(identity));
  return store.protocol;
});

describeProtocolStoresContract('staged overlay over the SQLCipher stores', (identity) => {
  const store = openStore();
  store.saveAccount(testAccount(identity));
  return stageProtocolStores(store.protocol);
});

const enc = new TextEncoder();
const dec = new TextDecoder();

/** Alice (in memory) and Bob (on a SQLCipher store), with a conversation row for Alice on Bob's side. */
async function pair(): Promise<{
  alice: Awaited<ReturnType<typeof createTestDevice>>;
  bob: Awaited<ReturnType<typeof createTestDevice>>;
  store: ClientStore;
  conversationId: ReturnType<ClientStore['messages']['conversationWith']>['id'];
}> {
  const store = openStore();
  const bob = await createTestDevice({
    stores: (identity) => {
      store.saveAccount(testAccount(identity));
      return store.protocol;
    },
  });
  const alice = await createTestDevice();
  await alice.cipher.processBundle(bob.address, bob.bundle());
  const conversation = store.messages.conversationWith({ aci: alice.address.aci as Aci, address: 'alice@example.org' });
  return { alice, bob, store, conversationId: conversation.id };
}

function messageFrom(alice: { address: { aci: string; deviceId: number } }, conversationId: ReturnType<ClientStore['messages']['conversationWith']>['id'], id: MessageId, body: string) {
  return {
    conversationId,
    id,
    senderAci: alice.address.aci as Aci,
    senderDevice: alice.address.deviceId as DeviceId,
    direction: 'in' as const,
    body,
    sentAt: 1,
    lamport: 1,
  };
}

describe('account', () => {
  it('round-trips the account row and serves the identity from it', async () => {
    const store = openStore();
    assert.equal(store.getAccount(), undefined);
    await assert.rejects(store.protocol.identity.getIdentityKeyPair(), (e) => ClientError.is(e, 'NO_ACCOUNT'));
    const identity = generateIdentity();
    const account = { ...testAccount(identity), profileKey: new Uint8Array(randomBytes(32)) };
    store.saveAccount(account);
    assert.deepEqual(store.getAccount(), account);
    assert.deepEqual(await store.protocol.identity.getIdentityKeyPair(), identity.identityKeyPair);
    store.saveAccount({ ...account, deviceId: 3 as DeviceId, profileKey: undefined });
    assert.equal(store.getAccount()!.deviceId, 3);
    assert.equal(store.getAccount()!.profileKey, undefined);
  });

  it('serves the account as last written: a new profile key at once, a rolled-back save not at all', () => {
    const store = openStore();
    const account = testAccount();
    store.saveAccount(account);
    assert.equal(store.getAccount()!.profileKey, undefined);
    const key = new Uint8Array(randomBytes(32));
    new AccountProfileKeyStore(store.database).set(key, 1);
    assert.deepEqual(store.getAccount()!.profileKey, key);
    assert.throws(
      () =>
        store.transaction(() => {
          store.saveAccount({ ...account, deviceId: 5 as DeviceId });
          assert.equal(store.getAccount()!.deviceId, 5, 'the transaction sees its own write');
          throw new Error('rolled back');
        }),
      /rolled back/,
    );
    assert.equal(store.getAccount()!.deviceId, account.deviceId);
    // The same for a savepoint rolled back inside a transaction that commits.
    store.transaction(() => {
      try {
        store.transaction(() => {
          new AccountProfileKeyStore(store.database).set(new Uint8Array(32).fill(7), 2);
          assert.deepEqual(store.getAccount()!.profileKey, new Uint8Array(32).fill(7));
          throw new Error('inner');
        });
      } catch {
        // expected
      }
    });
    assert.deepEqual(store.getAccount()!.profileKey, key);
  });

  it('refuses an account with missing or out-of-range fields', () => {
    const store = openStore();
    const good = testAccount();
    for (const bad of [{ registrationId: 0 }, { deviceId: 128 }, { authSecret: 'x' }, { username: '' }]) {
      assert.throws(() => store.saveAccount({ ...good, ...bad } as never), (e) => ClientError.is(e, 'INVALID_ARGUMENT'));
    }
    assert.equal(store.getAccount(), undefined);
  });
});

describe('protocol stores on the database', () => {
  it('keep the state across close and reopen', async () => {
    const store = openStore();
    store.saveAccount(testAccount());
    const aci = '0a0a0a0a-0000-4000-8000-00000000000a';
    const record = randomBytes(90);
    await store.protocol.sessions.saveSession(`${aci}.3`, record);
    await store.protocol.kyberPreKeys.saveKyberPreKey(9, randomBytes(50), true);
    const base = randomBytes(33);
    assert.equal(await store.protocol.kyberPreKeys.markKyberPreKeyUsed(9, 1, base), true);
    store.close();
    const again = openStore({ profileDir: store.profileDir });
    assert.deepEqual(await again.protocol.sessions.getSession(`${aci}.3`), record);
    assert.equal(await again.protocol.kyberPreKeys.markKyberPreKeyUsed(9, 1, base), false);
  });

  it('refuses a malformed address with a typed error', async () => {
    const store = openStore();
    await assert.rejects(store.protocol.sessions.getSession('not-an-address'), (e) => e instanceof CryptoError && e.code === 'INVALID_ARGUMENT');
    await assert.rejects(store.protocol.preKeys.getPreKey(-1), (e) => ClientError.is(e, 'INVALID_ARGUMENT'));
  });

  it('reports the key inventory for refills and rotation', async () => {
    const store = openStore();
    const bob = await createTestDevice({ oneTimePreKeys: 4, stores: (identity) => (store.saveAccount(testAccount(identity)), store.protocol) });
    const inventory = store.protocol.keyInventory();
    assert.equal(inventory.oneTimePreKeys, 4);
    assert.equal(inventory.oneTimeKyberPreKeys, 4);
    assert.deepEqual(inventory.signedPreKeys.map((k) => k.keyId), [bob.signedPreKeyId]);
    assert.deepEqual(inventory.lastResortKyberPreKeys.map((k) => k.keyId), [bob.lastResortKyberPreKeyId]);
  });

  it('records identity trust in the contact row', async () => {
    const store = openStore();
    const aci = '0b0b0b0b-0000-4000-8000-00000000000b' as Aci;
    const [k1, k2] = [randomBytes(33), randomBytes(33)];
    await store.protocol.identity.saveIdentity(aci, k1);
    assert.equal(store.messages.contact(aci)!.identityChanged, false);
    store.messages.setVerified(aci, true);
    assert.equal(store.messages.contact(aci)!.verified, true);
    assert.equal(await store.protocol.identity.saveIdentity(aci, k2), true);
    const changed = store.messages.contact(aci)!;
    assert.equal(changed.identityChanged, true);
    assert.equal(changed.verified, false, 'a key change clears verification');
    assert.deepEqual(changed.identityKey, k2);
    await store.protocol.identity.acceptIdentity(aci, k2);
    assert.equal(store.messages.contact(aci)!.identityChanged, false);
  });
});

describe('staged protocol stores (atomic receive)', () => {
  it('decrypts through an overlay; discard leaves the session and prekeys on disk unchanged', async () => {
    const { alice, bob, store } = await pair();
    const m = await alice.cipher.encrypt(bob.address, enc.encode('hello'));
    assert.equal(m.type, 'prekey');
    const prekeysBefore = store.protocol.keyInventory();

    const staged = stageProtocolStores(store.protocol);
    const cipher = new SessionCipher(staged, { localAddress: bob.address });
    assert.equal(dec.decode(await cipher.decrypt(alice.address, m.type, m.body)), 'hello');
    assert.ok(staged.pendingWrites > 0);
    assert.ok(await staged.sessions.getSession(`${alice.address.aci}.1`), 'the overlay sees its own write');
    staged.discard();

    assert.equal(await store.protocol.sessions.getSession(`${alice.address.aci}.1`), undefined);
    assert.equal(await store.protocol.identity.getIdentity(alice.address.aci), undefined);
    assert.deepEqual(store.protocol.keyInventory(), prekeysBefore, 'the one-time prekeys are not consumed');
    await assert.rejects(staged.sessions.getSession(`${alice.address.aci}.1`), (e) => ClientError.is(e, 'STAGE_FINISHED'));
    assert.throws(() => staged.commit(), (e) => ClientError.is(e, 'STAGE_FINISHED'));

    // Nothing was consumed, so the same envelope decrypts again.
    const again = stageProtocolStores(store.protocol);
    assert.equal(dec.decode(await new SessionCipher(again, { localAddress: bob.address }).decrypt(alice.address, m.type, m.body)), 'hello');
    again.discard();
  });

  it('commits the session state together with the message row', async () => {
    const { alice, bob, store, conversationId } = await pair();
    const m = await alice.cipher.encrypt(bob.address, enc.encode('first'));
    const before = store.protocol.keyInventory();
    const staged = stageProtocolStores(store.protocol);
    const plaintext = await new SessionCipher(staged, { localAddress: bob.address }).decrypt(alice.address, m.type, m.body);
    const id = newMessageId();
    store.transaction(() => {
      staged.commit();
      store.messages.addMessage(messageFrom(alice, conversationId, id, dec.decode(plaintext)));
    });
    assert.ok(await store.protocol.sessions.getSession(`${alice.address.aci}.1`));
    assert.equal(store.messages.message({ senderAci: alice.address.aci as Aci, id })!.body, 'first');
    assert.equal(store.protocol.keyInventory().oneTimePreKeys, before.oneTimePreKeys - 1, 'the used one-time prekey is gone');
    // The committed session is the real one: the next message decrypts with the database stores.
    const m2 = await alice.cipher.encrypt(bob.address, enc.encode('second'));
    assert.equal(dec.decode(await bob.cipher.decrypt(alice.address, m2.type, m2.body)), 'second');
    // And a replay of the first is refused as a duplicate.
    await assert.rejects(bob.cipher.decrypt(alice.address, m.type, m.body), (e) => e instanceof CryptoError && e.code === 'DUPLICATE_MESSAGE');
  });

  it('a crash inside the transaction leaves neither the session step nor the message', async () => {
    const { alice, bob, store, conversationId } = await pair();
    const m1 = await alice.cipher.encrypt(bob.address, enc.encode('one'));
    assert.equal(dec.decode(await bob.cipher.decrypt(alice.address, m1.type, m1.body)), 'one');
    const reply = await bob.cipher.encrypt(alice.address, enc.encode('ack'));
    await alice.cipher.decrypt(bob.address, reply.type, reply.body);
    const m2 = await alice.cipher.encrypt(bob.address, enc.encode('two'));
    const sessionBefore = await store.protocol.sessions.getSession(`${alice.address.aci}.1`);

    const staged = stageProtocolStores(store.protocol);
    const plaintext = await new SessionCipher(staged, { localAddress: bob.address }).decrypt(alice.address, m2.type, m2.body);
    const id = newMessageId();
    assert.throws(
      () =>
        store.transaction(() => {
          staged.commit();
          store.messages.addMessage(messageFrom(alice, conversationId, id, dec.decode(plaintext)));
          throw new Error('simulated crash before commit');
        }),
      /simulated crash/,
    );
    assert.deepEqual(await store.protocol.sessions.getSession(`${alice.address.aci}.1`), sessionBefore);
    assert.equal(store.messages.message({ senderAci: alice.address.aci as Aci, id }), undefined);

    // Close and reopen: still nothing, and the envelope decrypts again (it was never acked).
    store.close();
    const reopened = openStore({ profileDir: store.profileDir });
    assert.deepEqual(await reopened.protocol.sessions.getSession(`${alice.address.aci}.1`), sessionBefore);
    assert.equal(reopened.messages.history(conversationId).length, 0);
    const cipher = new SessionCipher(reopened.protocol, { localAddress: bob.address });
    assert.equal(dec.decode(await cipher.decrypt(alice.address, m2.type, m2.body)), 'two');
  });

  it('refuses to commit over a session that changed underneath (STAGE_CONFLICT) and applies nothing', async () => {
    const { alice, bob, store } = await pair();
    const m1 = await alice.cipher.encrypt(bob.address, enc.encode('one'));
    await bob.cipher.decrypt(alice.address, m1.type, m1.body);
    const m2 = await alice.cipher.encrypt(bob.address, enc.encode('two'));

    const staged = stageProtocolStores(store.protocol);
    await new SessionCipher(staged, { localAddress: bob.address }).decrypt(alice.address, m2.type, m2.body);
    // Meanwhile a send advances the same session directly in the database.
    await bob.cipher.encrypt(alice.address, enc.encode('meanwhile'));
    const session = await store.protocol.sessions.getSession(`${alice.address.aci}.1`);
    assert.throws(() => store.transaction(() => staged.commit()), (e) => ClientError.is(e, 'STAGE_CONFLICT'));
    assert.deepEqual(await store.protocol.sessions.getSession(`${alice.address.aci}.1`), session);
    // Decrypting again over a fresh overlay works and commits.
    const retry = stageProtocolStores(store.protocol);
    assert.equal(dec.decode(await new SessionCipher(retry, { localAddress: bob.address }).decrypt(alice.address, m2.type, m2.body)), 'two');
    store.transaction(() => retry.commit());
  });

  it('does not conflict with writes to unrelated state', async () => {
    const { alice, bob, store } = await pair();
    const m1 = await alice.cipher.encrypt(bob.address, enc.encode('one'));
    const staged = stageProtocolStores(store.protocol);
    await new SessionCipher(staged, { localAddress: bob.address }).decrypt(alice.address, m1.type, m1.body);
    await store.protocol.sessions.saveSession('0c0c0c0c-0000-4000-8000-00000000000c.1', randomBytes(40));
    await store.protocol.preKeys.savePreKey(999, randomBytes(40));
    store.transaction(() => staged.commit());
    assert.ok(await store.protocol.sessions.getSession(`${alice.address.aci}.1`));
  });

  it('stages last-resort Kyber marks: a replay is refused inside the overlay and after commit', async () => {
    const store = openStore();
    store.saveAccount(testAccount());
    await store.protocol.kyberPreKeys.saveKyberPreKey(1, randomBytes(60), true);
    await store.protocol.kyberPreKeys.saveKyberPreKey(2, randomBytes(60), false);
    const base = randomBytes(33);
    const staged = stageProtocolStores(store.protocol);
    assert.equal(await staged.kyberPreKeys.markKyberPreKeyUsed(1, 7, base), true);
    assert.equal(await staged.kyberPreKeys.markKyberPreKeyUsed(1, 7, new Uint8Array(base)), false);
    assert.equal(await staged.kyberPreKeys.markKyberPreKeyUsed(2, 7, base), true);
    assert.equal(await staged.kyberPreKeys.getKyberPreKey(2), undefined);
    assert.equal(await store.protocol.kyberPreKeys.markKyberPreKeyUsed(1, 8, base), true, 'the database does not see staged marks');
    assert.ok(await store.protocol.kyberPreKeys.getKyberPreKey(2));
    // The direct write above touched key 1, which the overlay read: its commit must refuse.
    assert.throws(() => staged.commit(), (e) => ClientError.is(e, 'STAGE_CONFLICT'));

    const second = stageProtocolStores(store.protocol);
    assert.equal(await second.kyberPreKeys.markKyberPreKeyUsed(1, 7, base), true);
    assert.equal(await second.kyberPreKeys.markKyberPreKeyUsed(2, 7, base), true);
    store.transaction(() => second.commit());
    assert.equal(await store.protocol.kyberPreKeys.markKyberPreKeyUsed(1, 7, base), false);
    assert.equal(await store.protocol.kyberPreKeys.markKyberPreKeyUsed(1, 8, base), false);
    assert.equal(await store.protocol.kyberPreKeys.getKyberPreKey(2), undefined);
  });

  it('stages deleteAllSessions and lists device ids through the overlay', async () => {
    const store = openStore();
    const aci = '0d0d0d0d-0000-4000-8000-00000000000d';
    for (const d of [1, 2, 5]) await store.protocol.sessions.saveSession(`${aci}.${d}`, randomBytes(30));
    const staged = stageProtocolStores(store.protocol);
    await staged.sessions.deleteSession(`${aci}.2`);
    await staged.sessions.saveSession(`${aci}.7`, randomBytes(30));
    assert.deepEqual(await staged.sessions.getSessionDeviceIds(aci), [1, 5, 7]);
    await staged.sessions.deleteAllSessions(aci);
    await staged.sessions.saveSession(`${aci}.3`, randomBytes(30));
    assert.deepEqual(await staged.sessions.getSessionDeviceIds(aci), [3]);
    assert.deepEqual(await store.protocol.sessions.getSessionDeviceIds(aci), [1, 2, 5]);
    store.transaction(() => staged.commit());
    assert.deepEqual(await store.protocol.sessions.getSessionDeviceIds(aci), [3]);
  });

  it('stages a sender key deletion: hidden in the overlay, on disk only after commit', async () => {
    const store = openStore();
    const address = '0e0e0e0e-0000-4000-8000-00000000000e.1';
    const distributionId = 'd1d1d1d1-0000-4000-8000-000000000001';
    const record = randomBytes(40);
    await store.protocol.senderKeys.saveSenderKey(address, distributionId, record);
    const discarded = stageProtocolStores(store.protocol);
    await discarded.senderKeys.deleteSenderKey(address, distributionId);
    assert.equal(await discarded.senderKeys.getSenderKey(address, distributionId), undefined);
    discarded.discard();
    assert.deepEqual(await store.protocol.senderKeys.getSenderKey(address, distributionId), record);
    const staged = stageProtocolStores(store.protocol);
    await staged.senderKeys.deleteSenderKey(address, distributionId);
    assert.deepEqual(await store.protocol.senderKeys.getSenderKey(address, distributionId), record);
    store.transaction(() => staged.commit());
    assert.equal(await store.protocol.senderKeys.getSenderKey(address, distributionId), undefined);
  });
});
