// SPDX-License-Identifier: AGPL-3.0-only
/**
 * Sealed sender in the engine, below the network: the sender-certificate cache (refresh an hour
 * before expiry, pinned trust root, refusals), the account profile key (which Content carries
 * it, syncs, uploads) and which outbox entries go sealed.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import {
  createServerCertificate,
  deriveAccessKey,
  generateIdentity,
  generateTrustRoot,
  issueSenderCertificate,
} from '@parley/crypto';
import { ParleyError, toBase64Url, type Aci, type RelayInfoResponse, type SenderCertificateResponse } from '@parley/protocol';
import { AccountProfileKey } from '../src/engine/account-profile-key.js';
import { CERTIFICATE_REFRESH_BEFORE_MS, SenderCertificateCache, type CertificateApi } from '../src/engine/certificate-cache.js';
import { decodeContent, encodeContent } from '../src/engine/content-codec.js';
import type { OutboxEntry } from '../src/engine/engine-store.js';
import { SEALED_PAUSE_MS, SealedSending } from '../src/engine/sealed-sender.js';
import { adaptClientStore } from '../src/engine/store-adapter.js';
import { ClientError } from '../src/errors.js';
import { TransportError } from '../src/transport/transport-error.js';
import type { UnidentifiedConnection } from '../src/transport/unidentified-connection.js';
import { ManualClock, newAci, openStore, testAccount } from './store-fixtures.js';

const bytes = (n: number): Uint8Array => new Uint8Array(randomBytes(n));
const HOUR = 3600_000;

/** A relay's certificate authority: a trust root, a server key, and certificates on demand. */
function authority() {
  const root = generateTrustRoot();
  const server = createServerCertificate(1, root.privateKey);
  return {
    root: root.publicKey,
    issue: (aci: string, deviceId: number, identityKey: Uint8Array, expiresAt: number) =>
      issueSenderCertificate({ senderAci: aci, senderDeviceId: deviceId, senderIdentityKey: identityKey, expiresAt, serverCertificate: server.certificate, serverPrivateKey: server.privateKey }),
  };
}

/** A profile with an account, wrapped as the engine's ports, and a fake relay that counts calls. */
function fixture(options: { lifetimeMs?: number } = {}) {
  const clock = new ManualClock();
  const store = openStore({ clock });
  const identity = generateIdentity();
  const account = testAccount(identity);
  store.saveAccount(account);
  const ports = adaptClientStore(store);
  const ca = authority();
  const relay = {
    ca,
    info: { domain: account.domain, version: 'test', senderCertificateTrustRoot: toBase64Url(ca.root) } as RelayInfoResponse,
    fetches: 0,
    /** What the next certificate request answers with, by default a valid certificate for this device. */
    issue: (): string => toBase64Url(ca.issue(account.aci, account.deviceId, identity.identityKey, clock.now() + (options.lifetimeMs ?? 24 * HOUR))),
  };
  const api: CertificateApi = {
    info: async () => relay.info,
    senderCertificate: async (): Promise<SenderCertificateResponse> => {
      relay.fetches++;
      return { certificate: relay.issue(), expiresAt: clock.now() + 24 * HOUR };
    },
  };
  const cache = new SenderCertificateCache({ store: ports, api: () => api, self: { aci: account.aci, deviceId: account.deviceId, domain: account.domain }, now: () => clock.now() });
  return { clock, store, ports, account, identity, relay, cache };
}

describe('sender certificate cache', () => {
  it('fetches once, reuses the certificate until an hour before it expires, then fetches a new one', async () => {
    const f = fixture();
    const first = await f.cache.get();
    assert.equal(f.relay.fetches, 1);
    assert.deepEqual(await f.cache.get(), first, 'the cached one is reused');
    assert.equal(f.relay.fetches, 1);
    assert.deepEqual(f.ports.trustRoot(f.account.domain), f.relay.ca.root, 'the first fetch pinned the root (profile from before sealed sender)');
    f.clock.advance(24 * HOUR - CERTIFICATE_REFRESH_BEFORE_MS - 1);
    await f.cache.get();
    assert.equal(f.relay.fetches, 1, 'still more than an hour left');
    f.clock.advance(1);
    const second = await f.cache.get();
    assert.equal(f.relay.fetches, 2, 'an hour before expiry a new one is fetched');
    assert.notDeepEqual(second, first);
    assert.equal(f.ports.cachedCertificate()?.expiresAt, f.clock.now() + 24 * HOUR, 'the certificate’s own expiry is cached');
  });

  it('shares one fetch between concurrent callers', async () => {
    const f = fixture();
    const all = await Promise.all([f.cache.get(), f.cache.get(), f.cache.get()]);
    assert.equal(f.relay.fetches, 1);
    assert.deepEqual(all[1], all[0]);
  });

  it('refuses a relay that now announces another trust root (TRUST_ROOT_CHANGED), keeps the pin and caches nothing', async () => {
    const f = fixture();
    f.ports.pinTrustRoot(f.account.domain, f.relay.ca.root, 1);
    const rogue = authority();
    f.relay.info = { ...f.relay.info, senderCertificateTrustRoot: toBase64Url(rogue.root) };
    f.relay.issue = () => toBase64Url(rogue.issue(f.account.aci, f.account.deviceId, f.identity.identityKey, f.clock.now() + HOUR * 24));
    await assert.rejects(f.cache.get(), (e) => e instanceof ClientError && e.code === 'TRUST_ROOT_CHANGED');
    assert.equal(f.relay.fetches, 0, 'no certificate is even asked for');
    assert.deepEqual(f.ports.trustRoot(f.account.domain), f.relay.ca.root);
    assert.equal(f.ports.trustRootRefused(f.account.domain), true);
    assert.equal(f.ports.cachedCertificate(), undefined);
  });

  it('refuses a certificate from another root, for another device, or already expired (SEALED_SENDER_UNAVAILABLE)', async () => {
    const f = fixture();
    const rogue = authority();
    const cases: Array<[string, () => string]> = [
      ['another root', () => toBase64Url(rogue.issue(f.account.aci, f.account.deviceId, f.identity.identityKey, f.clock.now() + HOUR * 24))],
      ['another device', () => toBase64Url(f.relay.ca.issue(f.account.aci, 2, f.identity.identityKey, f.clock.now() + HOUR * 24))],
      ['another account', () => toBase64Url(f.relay.ca.issue(newAci(), f.account.deviceId, f.identity.identityKey, f.clock.now() + HOUR * 24))],
      ['expired', () => toBase64Url(f.relay.ca.issue(f.account.aci, f.account.deviceId, f.identity.identityKey, f.clock.now() - 1))],
      ['garbage', () => toBase64Url(bytes(80))],
    ];
    for (const [what, issue] of cases) {
      f.relay.issue = issue;
      await assert.rejects(f.cache.get(), (e) => e instanceof ClientError && e.code === 'SEALED_SENDER_UNAVAILABLE', what);
      assert.equal(f.ports.cachedCertificate(), undefined, what);
    }
  });

  it('refuses a relay without a trust root (SEALED_SENDER_UNAVAILABLE)', async () => {
    const f = fixture();
    f.relay.info = { domain: f.account.domain, version: 'old' };
    await assert.rejects(f.cache.get(), (e) => e instanceof ClientError && e.code === 'SEALED_SENDER_UNAVAILABLE');
    assert.equal(f.relay.fetches, 0);
  });
});

describe('account profile key', () => {
  const setup = () => {
    const f = fixture();
    const blocked = new Set<string>();
    const keys = new AccountProfileKey({ store: f.ports, selfAci: f.account.aci, blocked: () => ({ isBlocked: (aci) => blocked.has(aci) }), now: () => f.clock.now() });
    return { ...f, keys, blocked };
  };
  const text = (t: string) => encodeContent({ body: { case: 'data', value: { messageId: new Uint8Array(16), lamport: 1n, timestamp: 1n, text: t } } });

  it('makes a key once and keeps it', () => {
    const { keys } = setup();
    assert.equal(keys.current(), undefined);
    const k = keys.ensure();
    assert.equal(k.length, 32);
    assert.deepEqual(keys.ensure(), k);
    assert.deepEqual(keys.accessKey(), deriveAccessKey(k));
  });

  it('puts the key into Content for contacts, never for blocked ones nor for the account’s own devices', () => {
    const { keys, account, blocked } = setup();
    const k = keys.ensure();
    const bob = newAci();
    const mallory = newAci();
    blocked.add(mallory);
    const forBob = decodeContent(keys.contentFor(bob, text('hi')))!;
    assert.deepEqual(forBob.profileKey, k);
    assert.equal(forBob.body.case === 'data' && forBob.body.value.text, 'hi', 'the message itself is untouched');
    assert.equal(decodeContent(keys.contentFor(mallory, text('hi')))!.profileKey.length, 0);
    assert.equal(decodeContent(keys.contentFor(account.aci, text('hi')))!.profileKey.length, 0);
    // Content that already carries a key (e.g. queued before a block) loses it for a blocked contact.
    assert.equal(decodeContent(keys.contentFor(mallory, keys.contentFor(bob, text('x'))))!.profileKey.length, 0);
    assert.equal(keys.contentFor(bob, text('x')).length % 160, 0, 'still padded');
  });

  it('hands out no key while this device could not open sealed messages (no trust root pinned)', () => {
    const f = fixture();
    let pinned = false;
    const keys = new AccountProfileKey({ store: f.ports, selfAci: f.account.aci, blocked: () => ({ isBlocked: () => false }), now: () => f.clock.now(), sealedSenderOn: () => pinned });
    const k = keys.ensure();
    assert.equal(decodeContent(keys.contentFor(newAci(), text('x')))!.profileKey.length, 0);
    pinned = true;
    assert.deepEqual(decodeContent(keys.contentFor(newAci(), text('x')))!.profileKey, k);
  });

  it('rotates to a new key with a higher version; the old one is gone from new Content', () => {
    const { keys, clock } = setup();
    const k1 = keys.ensure();
    const v1 = keys.syncFields()!.version;
    clock.advance(-10_000); // a clock that went back still gets a higher version
    const fields = keys.rotate();
    assert.ok(fields.version > v1);
    assert.notDeepEqual(fields.profileKey, k1);
    assert.deepEqual(keys.current(), fields.profileKey);
    assert.deepEqual(decodeContent(keys.contentFor(newAci(), text('x')))!.profileKey, fields.profileKey);
  });

  it('adopts a synced key only when it is newer', () => {
    const { keys } = setup();
    const k = keys.ensure();
    const v = keys.syncFields()!.version;
    assert.equal(keys.adoptSynced({ version: v - 1n, profileKey: bytes(32) }), false);
    assert.equal(keys.adoptSynced({ version: v + 1n, profileKey: bytes(31) }), false, 'a malformed key');
    assert.deepEqual(keys.current(), k);
    const newer = bytes(32);
    assert.equal(keys.adoptSynced({ version: v + 5n, profileKey: newer }), true);
    assert.deepEqual(keys.current(), newer);
    assert.equal(keys.syncFields()!.version, v + 5n);
  });

  it('uploads the access key when the relay lacks the current one, and only then', async () => {
    const { keys } = setup();
    keys.ensure();
    const uploads: Uint8Array[] = [];
    const api = { putAccessKey: async (k: Uint8Array) => void uploads.push(k) };
    assert.equal(keys.uploaded(), false);
    await keys.uploadIfDue(api);
    await keys.uploadIfDue(api);
    assert.deepEqual(uploads, [keys.accessKey()]);
    assert.equal(keys.uploaded(), true);
    keys.rotate();
    assert.equal(keys.uploaded(), false, 'a rotation makes an upload due');
    await keys.uploadIfDue(api);
    assert.equal(uploads.length, 2);
    assert.deepEqual(uploads[1], keys.accessKey());
  });

  it('leaves the upload due when the relay refuses it', async () => {
    const { keys } = setup();
    keys.ensure();
    await assert.rejects(keys.uploadIfDue({ putAccessKey: async () => Promise.reject(new ParleyError('INTERNAL')) }));
    assert.equal(keys.uploaded(), false);
  });

  it('stores a contact’s key with its access key, ignoring keys of its own account and malformed ones', () => {
    const { keys, ports, account } = setup();
    const bob = newAci();
    const k = bytes(32);
    assert.equal(keys.acceptFromContact(bob, k), true);
    assert.equal(keys.acceptFromContact(bob, k), false, 'unchanged');
    assert.deepEqual(ports.contactKey(bob)?.profileKey, k);
    assert.deepEqual(ports.contactKey(bob)?.accessKey, deriveAccessKey(k));
    assert.equal(keys.acceptFromContact(account.aci, bytes(32)), false);
    assert.equal(ports.contactKey(account.aci), undefined);
    assert.equal(keys.acceptFromContact(newAci(), bytes(16)), false);
  });
});

describe('which sends go sealed', () => {
  const entry = (id: number, destinationAci: string, extra: Partial<OutboxEntry> = {}): OutboxEntry => ({
    id,
    messageId: undefined,
    destinationAci,
    content: bytes(10),
    envelopeMessageId: undefined,
    ciphertexts: undefined,
    attempts: 0,
    nextAttemptAt: 0,
    ...extra,
  });

  it('a contact with a known profile key: sealed; first contact, own devices and refused entries: identified', async () => {
    const f = fixture();
    const sending = new SealedSending({ store: f.ports, certificates: f.cache, connection: () => undefined, selfAci: f.account.aci, now: () => f.clock.now() });
    const bob = newAci();
    const carol = newAci();
    const bobKey = bytes(32);
    f.ports.saveContactKey(bob, bobKey, deriveAccessKey(bobKey), 1);
    const plans = await sending.plan([
      entry(1, bob),
      entry(2, carol),
      entry(3, f.account.aci),
      entry(4, bob, { identifiedOnly: true }),
      entry(5, bob, { ciphertexts: [], envelopeMessageId: bytes(16) }),
    ]);
    assert.deepEqual([...plans.keys()], [1]);
    assert.deepEqual(plans.get(1)!.accessKey, deriveAccessKey(bobKey));
    assert.deepEqual(plans.get(1)!.certificate, f.ports.cachedCertificate()!.certificate);
  });

  it('asks for no certificate when nothing can go sealed, and sends identified when none can be had', async () => {
    const f = fixture();
    const sending = new SealedSending({ store: f.ports, certificates: f.cache, connection: () => undefined, selfAci: f.account.aci, now: () => f.clock.now() });
    assert.equal((await sending.plan([entry(1, newAci())])).size, 0);
    assert.equal(f.relay.fetches, 0);
    const bob = newAci();
    const k = bytes(32);
    f.ports.saveContactKey(bob, k, deriveAccessKey(k), 1);
    f.relay.info = { domain: f.account.domain, version: 'old' };
    assert.equal((await sending.plan([entry(1, bob)])).size, 0);
    assert.equal(sending.problem()?.code, 'SEALED_SENDER_UNAVAILABLE', 'the status can say why');
    f.relay.info = { ...f.relay.info, senderCertificateTrustRoot: toBase64Url(f.relay.ca.root) };
    assert.equal((await sending.plan([entry(2, bob)])).size, 0, 'the relay is not asked again at once');
    f.clock.advance(SEALED_PAUSE_MS);
    assert.equal((await sending.plan([entry(3, bob)])).size, 1, 'but after the pause');
  });

  it('after a refusal, drops the contact’s key only when the identified send needed no device repair', () => {
    const f = fixture();
    const sending = new SealedSending({ store: f.ports, certificates: f.cache, connection: () => undefined, selfAci: f.account.aci, now: () => f.clock.now() });
    const bob = newAci();
    const k = bytes(32);
    const access = deriveAccessKey(k);
    f.ports.saveContactKey(bob, k, access, 1);
    const conv = f.store.messages.conversationWith({ aci: bob as Aci, address: 'bob@example.org' });
    const ids = [1, 2].map(() => f.store.outbox.enqueue({ conversationId: conv.id, destinationAci: bob as Aci, destinationAddress: 'bob@example.org', content: bytes(4), timestamp: 1 }).id);
    const [a, b] = ids.map((id) => entry(id, bob, { accessKey: access, ciphertexts: [], envelopeMessageId: bytes(16) }));
    sending.refused(a!);
    sending.refused(b!);
    assert.equal(f.ports.outboxDue(f.clock.now(), 10).every((e) => e.identifiedOnly), true, 'both go identified from now on');
    sending.fallbackSettled({ ...a!, identifiedOnly: true }, true);
    assert.ok(f.ports.contactKey(bob), 'a repaired device set explains the refusal: the key is kept');
    sending.fallbackSettled({ ...b!, identifiedOnly: true }, false);
    assert.equal(f.ports.contactKey(bob), undefined, 'no repair needed: the access key was stale, dropped');
  });

  it('pauses sealed sending when the unidentified socket cannot be opened, and tries again later', async () => {
    const f = fixture();
    const refusing = { open: async () => Promise.reject(new TransportError('UNREACHABLE', 'refused (HTTP 404)')) } as unknown as UnidentifiedConnection;
    const sending = new SealedSending({ store: f.ports, certificates: f.cache, connection: () => refusing, selfAci: f.account.aci, now: () => f.clock.now() });
    const bob = newAci();
    const k = bytes(32);
    f.ports.saveContactKey(bob, k, deriveAccessKey(k), 1);
    assert.equal((await sending.plan([entry(1, bob)])).size, 1);
    await assert.rejects(
      sending.send({ destination: new Uint8Array(16), messageId: bytes(16), timestamp: 1n, urgent: true, messages: [], accessKey: deriveAccessKey(k) }),
      (e) => e instanceof ClientError && e.code === 'SEALED_SENDER_UNAVAILABLE',
    );
    assert.equal(sending.problem()?.code, 'SEALED_SENDER_UNAVAILABLE');
    assert.equal((await sending.plan([entry(2, bob)])).size, 0, 'paused: identified meanwhile');
    f.clock.advance(SEALED_PAUSE_MS);
    assert.equal((await sending.plan([entry(3, bob)])).size, 1, 'sealed again after the pause');
    assert.equal(sending.problem(), undefined);
  });
});
