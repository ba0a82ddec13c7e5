// SPDX-License-Identifier: AGPL-3.0-only
/** The sealed-sender tables of the client store (migration 0007). */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import type { Aci } from '@parley/protocol';
import { ClientError } from '../src/errors.js';
import { AccountProfileKeyStore } from '../src/store/account-profile-key.js';
import { ContactKeys } from '../src/store/contact-keys.js';
import { SealedAttempts } from '../src/store/sealed-attempts.js';
import { SenderCertificateStore } from '../src/store/sender-certificate-store.js';
import { newAci, openStore, tempProfileDir, testAccount } from './store-fixtures.js';

const bytes = (n: number): Uint8Array => new Uint8Array(randomBytes(n));
const invalid = (e: unknown): boolean => e instanceof ClientError && e.code === 'INVALID_ARGUMENT';

describe('account profile key store', () => {
  it('has no key before there is an account, and refuses one without it (NO_ACCOUNT)', () => {
    const store = openStore();
    const keys = new AccountProfileKeyStore(store.database);
    assert.equal(keys.get(), undefined);
    assert.throws(() => keys.set(bytes(32), 1), (e) => e instanceof ClientError && e.code === 'NO_ACCOUNT');
    assert.equal(keys.get(), undefined);
  });

  it('keeps the key in the account row with its version, across a reopen, and records the uploaded access key', () => {
    const profileDir = tempProfileDir();
    const store = openStore({ profileDir });
    store.saveAccount(testAccount());
    const keys = new AccountProfileKeyStore(store.database);
    const key = bytes(32);
    keys.set(key, 7);
    assert.deepEqual(keys.get(), { key, version: 7 });
    assert.deepEqual(store.getAccount()?.profileKey, key, 'the account row holds it (0001 reserved the column)');
    const access = bytes(16);
    keys.markUploaded(access);
    const next = bytes(32);
    keys.set(next, 8);
    assert.deepEqual(keys.get(), { key: next, version: 8, uploadedAccessKey: access }, 'a new key keeps the old upload record (an upload is then due)');
    store.close();
    const again = openStore({ profileDir });
    assert.deepEqual(new AccountProfileKeyStore(again.database).get(), { key: next, version: 8, uploadedAccessKey: access });
  });

  it('refuses a key or access key of the wrong length and a bad version, changing nothing', () => {
    const store = openStore();
    store.saveAccount(testAccount());
    const keys = new AccountProfileKeyStore(store.database);
    const key = bytes(32);
    keys.set(key, 1);
    assert.throws(() => keys.set(bytes(31), 2), invalid);
    assert.throws(() => keys.set(bytes(32), -1), invalid);
    assert.throws(() => keys.markUploaded(bytes(32)), invalid);
    assert.deepEqual(keys.get(), { key, version: 1 });
  });
});

describe('contact keys', () => {
  it('stores a contact key, answers unchanged for the same key and changed for a new one', () => {
    const keys = new ContactKeys(openStore().database);
    const aci = newAci();
    const [k1, a1, k2, a2] = [bytes(32), bytes(16), bytes(32), bytes(16)];
    assert.equal(keys.get(aci), undefined);
    assert.equal(keys.save(aci, k1, a1, 1000), 'new');
    assert.equal(keys.save(aci, k1, a1, 2000), 'unchanged');
    assert.deepEqual(keys.get(aci), { aci, profileKey: k1, accessKey: a1, updatedAt: 1000 });
    assert.equal(keys.save(aci, k2, a2, 3000), 'changed');
    assert.deepEqual(keys.get(aci), { aci, profileKey: k2, accessKey: a2, updatedAt: 3000 });
    assert.deepEqual(keys.acis(), [aci]);
  });

  it('drops a key the relay refused only while it is still the stored one', () => {
    const keys = new ContactKeys(openStore().database);
    const aci = newAci();
    const [k1, a1, k2, a2] = [bytes(32), bytes(16), bytes(32), bytes(16)];
    keys.save(aci, k1, a1, 1);
    keys.save(aci, k2, a2, 2);
    assert.equal(keys.dropIfStale(aci, a1), false, 'a newer key arrived since the refused send: kept');
    assert.ok(keys.get(aci));
    assert.equal(keys.dropIfStale(aci, a2), true);
    assert.equal(keys.get(aci), undefined);
    assert.equal(keys.dropIfStale(aci, a2), false);
  });

  it('refuses bad input with INVALID_ARGUMENT and stores nothing', () => {
    const keys = new ContactKeys(openStore().database);
    const aci = newAci();
    assert.throws(() => keys.save(aci, bytes(31), bytes(16), 1), invalid);
    assert.throws(() => keys.save(aci, bytes(32), bytes(15), 1), invalid);
    assert.throws(() => keys.save('not-an-aci' as Aci, bytes(32), bytes(16), 1), invalid);
    assert.throws(() => keys.save(aci, bytes(32), bytes(16), -5), invalid);
    assert.deepEqual(keys.acis(), []);
  });
});

describe('sender certificate store', () => {
  it('pins a root once, answers unchanged for it again, and refuses another one without replacing the pin', () => {
    const certs = new SenderCertificateStore(openStore().database);
    const root = Uint8Array.of(5, ...bytes(32));
    const other = Uint8Array.of(5, ...bytes(32));
    assert.equal(certs.trustRoot('example.org'), undefined);
    assert.equal(certs.pinTrustRoot('example.org', root, 1), 'pinned');
    assert.equal(certs.pinTrustRoot('example.org', root, 2), 'unchanged');
    assert.equal(certs.refused('example.org'), false);
    assert.equal(certs.pinTrustRoot('example.org', other, 3), 'conflict');
    assert.deepEqual(certs.trustRoot('example.org'), root, 'the pinned root stays');
    assert.equal(certs.refused('example.org'), true, 'the refusal is remembered (whoami reports it)');
    assert.equal(certs.pinTrustRoot('example.org', root, 4), 'unchanged');
    assert.equal(certs.refused('example.org'), false, 'the relay announcing the pinned root again clears it');
    assert.equal(certs.pinTrustRoot('other.example', other, 5), 'pinned');
    assert.deepEqual(certs.trustRoots(), [root, other]);
  });

  it('refuses a root that is not 33 bytes', () => {
    const certs = new SenderCertificateStore(openStore().database);
    assert.throws(() => certs.pinTrustRoot('example.org', bytes(32), 1), invalid);
    assert.equal(certs.trustRoot('example.org'), undefined);
  });

  it('caches one certificate with its expiry and replaces it', () => {
    const certs = new SenderCertificateStore(openStore().database);
    assert.equal(certs.certificate(), undefined);
    const c1 = bytes(120);
    certs.saveCertificate(c1, 5000);
    assert.deepEqual(certs.certificate(), { certificate: c1, expiresAt: 5000 });
    const c2 = bytes(120);
    certs.saveCertificate(c2, 9000);
    assert.deepEqual(certs.certificate(), { certificate: c2, expiresAt: 9000 });
    assert.throws(() => certs.saveCertificate(new Uint8Array(0), 1), invalid);
    certs.clearCertificate();
    assert.equal(certs.certificate(), undefined);
  });
});

describe('sealed outbox attempts', () => {
  it('records the access key of a sealed attempt, forgets it with the attempt, and goes identified only after a refusal', () => {
    const store = openStore();
    const account = testAccount();
    store.saveAccount(account);
    const peer = newAci();
    const conv = store.messages.conversationWith({ aci: peer, address: 'bob@example.org' });
    const entry = store.outbox.enqueue({ conversationId: conv.id, destinationAci: peer, destinationAddress: 'bob@example.org', content: bytes(10), timestamp: 1 });
    const sealed = new SealedAttempts(store.database);
    assert.deepEqual(sealed.get(entry.id), { identifiedOnly: false });
    const access = bytes(16);
    sealed.setAccessKey(entry.id, access);
    assert.deepEqual(sealed.get(entry.id), { accessKey: access, identifiedOnly: false });
    sealed.setAccessKey(entry.id, undefined);
    assert.deepEqual(sealed.get(entry.id), { identifiedOnly: false });
    sealed.setAccessKey(entry.id, access);
    sealed.setIdentifiedOnly(entry.id);
    assert.deepEqual(sealed.get(entry.id), { identifiedOnly: true });
    assert.throws(() => sealed.setAccessKey(entry.id, bytes(8)), invalid);
    store.outbox.complete(entry.id);
    assert.equal(store.database.value('SELECT count(*) FROM outbox_sealed'), 0, 'rows go with their outbox entry');
  });
});
