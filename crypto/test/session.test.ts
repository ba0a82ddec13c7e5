// SPDX-License-Identifier: AGPL-3.0-only
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  CryptoError,
  type CryptoErrorCode,
  type EncryptedMessage,
  type PreKeyBundleInput,
  type ProtocolStores,
  SessionCipher,
  createMemoryStores,
  formatAddress,
  generateIdentity,
  randomBytes,
} from '../src/index.js';
import { type TestDevice, createTestDevice } from '../src/testing/index.js';

const text = (s: string): Uint8Array => new TextEncoder().encode(s);
const str = (b: Uint8Array): string => new TextDecoder().decode(b);

async function rejectsWith(promise: Promise<unknown>, code: CryptoErrorCode): Promise<CryptoError> {
  let caught: unknown;
  await promise.then(
    () => assert.fail(`expected ${code}, but it succeeded`),
    (err: unknown) => {
      caught = err;
    },
  );
  assert.ok(caught instanceof CryptoError, `expected CryptoError ${code}, got ${String(caught)}`);
  assert.equal(caught.code, code);
  return caught;
}

async function send(from: TestDevice, to: TestDevice, message: string): Promise<EncryptedMessage> {
  return from.cipher.encrypt(to.address, text(message));
}

async function receive(at: TestDevice, from: TestDevice, m: EncryptedMessage): Promise<string> {
  return str(await at.cipher.decrypt(from.address, m.type, m.body));
}

/** Alice and Bob with an established session (Bob has answered Alice). */
async function pair(): Promise<{ alice: TestDevice; bob: TestDevice }> {
  const alice = await createTestDevice();
  const bob = await createTestDevice();
  await alice.cipher.processBundle(bob.address, bob.bundle());
  assert.equal(await receive(bob, alice, await send(alice, bob, 'hello')), 'hello');
  assert.equal(await receive(alice, bob, await send(bob, alice, 'hi')), 'hi');
  return { alice, bob };
}

function flip(bytes: Uint8Array, index: number): Uint8Array {
  const out = new Uint8Array(bytes);
  const i = index < 0 ? out.length + index : index;
  out[i] = out[i]! ^ 0x01;
  return out;
}

describe('PQXDH session setup and Double Ratchet', () => {
  it('runs a full session: prekey message, then normal messages both ways', async () => {
    const alice = await createTestDevice();
    const bob = await createTestDevice();
    const bundle = bob.bundle();
    assert.ok(bundle.preKey);
    assert.equal(await alice.cipher.hasSession(bob.address), false);

    await alice.cipher.processBundle(bob.address, bundle);
    assert.equal(await alice.cipher.hasSession(bob.address), true);
    assert.equal(await alice.cipher.remoteRegistrationId(bob.address), bob.identity.registrationId);

    const first = await send(alice, bob, 'hello bob');
    assert.equal(first.type, 'prekey');
    assert.equal(first.registrationId, bob.identity.registrationId);
    assert.equal(await receive(bob, alice, first), 'hello bob');
    // The one-time EC and one-time Kyber prekeys are consumed; the signed and last-resort keys stay.
    assert.equal(await bob.stores.preKeys.getPreKey(bundle.preKey.keyId), undefined);
    assert.equal(await bob.stores.kyberPreKeys.getKyberPreKey(bundle.kyberPreKey.keyId), undefined);
    assert.ok(await bob.stores.signedPreKeys.getSignedPreKey(bob.signedPreKeyId));
    assert.ok(await bob.stores.kyberPreKeys.getKyberPreKey(bob.lastResortKyberPreKeyId));
    assert.equal(await bob.cipher.hasSession(alice.address), true);
    assert.deepEqual(await bob.stores.identity.getIdentity(alice.address.aci), alice.identity.identityKey);

    const reply = await send(bob, alice, 'hello alice');
    assert.equal(reply.type, 'ciphertext');
    assert.equal(reply.registrationId, alice.identity.registrationId);
    assert.equal(await receive(alice, bob, reply), 'hello alice');

    for (let round = 0; round < 3; round++) {
      const a = await send(alice, bob, `a${round}`);
      assert.equal(a.type, 'ciphertext');
      assert.equal(await receive(bob, alice, a), `a${round}`);
      const b = await send(bob, alice, `b${round}`);
      assert.equal(await receive(alice, bob, b), `b${round}`);
    }
  });

  it('decrypts messages of one chain delivered out of order', async () => {
    const { alice, bob } = await pair();
    const sent = [];
    for (let i = 0; i < 5; i++) sent.push(await send(alice, bob, `m${i}`));
    for (const i of [3, 0, 4, 2, 1]) assert.equal(await receive(bob, alice, sent[i]!), `m${i}`);
  });

  it('decrypts prekey messages out of order before the peer has answered', async () => {
    const alice = await createTestDevice();
    const bob = await createTestDevice();
    await alice.cipher.processBundle(bob.address, bob.bundle());
    const m1 = await send(alice, bob, 'one');
    const m2 = await send(alice, bob, 'two');
    assert.equal(m2.type, 'prekey');
    assert.equal(await receive(bob, alice, m2), 'two');
    assert.equal(await receive(bob, alice, m1), 'one');
  });

  it('sets up a session without a one-time EC prekey, on the last-resort Kyber key', async () => {
    const alice = await createTestDevice();
    const bob = await createTestDevice();
    const bundle = bob.bundle({ preKey: false, oneTimeKyber: false });
    assert.equal(bundle.preKey, undefined);
    assert.equal(bundle.kyberPreKey.keyId, bob.lastResortKyberPreKeyId);
    await alice.cipher.processBundle(bob.address, bundle);
    const m = await send(alice, bob, 'no one-time key');
    assert.equal(m.type, 'prekey');
    assert.equal(await receive(bob, alice, m), 'no one-time key');
    // The last-resort key survives its use; one-time EC keys were not touched.
    assert.ok(await bob.stores.kyberPreKeys.getKyberPreKey(bob.lastResortKyberPreKeyId));
    assert.ok(await bob.stores.preKeys.getPreKey(1));
    assert.equal(await receive(alice, bob, await send(bob, alice, 'back')), 'back');
  });

  it('keeps working after a new cipher is built on the same stores (state lives in the stores)', async () => {
    const { alice, bob } = await pair();
    const alice2 = new SessionCipher(alice.stores, { localAddress: alice.address });
    const m = await alice2.encrypt(bob.address, text('from the new cipher'));
    assert.equal(await receive(bob, alice, m), 'from the new cipher');
  });

  it('serializes concurrent operations so no ratchet step is lost', async () => {
    const { alice, bob } = await pair();
    // A store that answers late, as a database does, so unserialized operations would interleave.
    const slow: ProtocolStores = {
      ...alice.stores,
      sessions: {
        getSession: async (a) => {
          await new Promise((resolve) => setTimeout(resolve, 2));
          return alice.stores.sessions.getSession(a);
        },
        saveSession: (a, r) => alice.stores.sessions.saveSession(a, r),
        deleteSession: (a) => alice.stores.sessions.deleteSession(a),
        deleteAllSessions: (a) => alice.stores.sessions.deleteAllSessions(a),
        getSessionDeviceIds: (a) => alice.stores.sessions.getSessionDeviceIds(a),
      },
    };
    const cipher = new SessionCipher(slow, { localAddress: alice.address });
    const sent = await Promise.all(Array.from({ length: 20 }, (_, i) => cipher.encrypt(bob.address, text(`c${i}`))));
    // Decrypted one by one: had two encryptions shared a ratchet state, the second would be a duplicate.
    for (let i = sent.length - 1; i >= 0; i--) assert.equal(await receive(bob, alice, sent[i]!), `c${i}`);
  });

  it('decrypts a message delivered twice at the same time only once', async () => {
    const { alice, bob } = await pair();
    const m = await send(alice, bob, 'twice');
    const results = await Promise.allSettled([receive(bob, alice, m), receive(bob, alice, m)]);
    assert.deepEqual(results.map((r) => r.status).sort(), ['fulfilled', 'rejected']);
    const rejected = results.find((r) => r.status === 'rejected');
    assert.ok(CryptoError.is(rejected?.reason, 'DUPLICATE_MESSAGE'));
  });

  it('forgets a session on deleteSession', async () => {
    const { alice, bob } = await pair();
    await alice.cipher.deleteSession(bob.address);
    assert.equal(await alice.cipher.hasSession(bob.address), false);
    assert.equal(await alice.cipher.remoteRegistrationId(bob.address), undefined);
    await rejectsWith(send(alice, bob, 'x'), 'NO_SESSION');
  });

  it('treats an unanswered session as gone once it is too old, by the injected clock', async () => {
    let now = Date.now();
    const clock = { now: () => now };
    const alice = await createTestDevice({ clock });
    const bob = await createTestDevice();
    await alice.cipher.processBundle(bob.address, bob.bundle());
    assert.equal(await alice.cipher.hasSession(bob.address), true);
    now += 60 * 24 * 3600 * 1000;
    assert.equal(await alice.cipher.hasSession(bob.address), false);
    await rejectsWith(send(alice, bob, 'late'), 'NO_SESSION');
  });
});

describe('replays and bad ciphertext', () => {
  it('refuses a replayed normal message with DUPLICATE_MESSAGE', async () => {
    const { alice, bob } = await pair();
    const m = await send(alice, bob, 'once');
    assert.equal(await receive(bob, alice, m), 'once');
    const err = await rejectsWith(receive(bob, alice, m), 'DUPLICATE_MESSAGE');
    assert.equal(err.address, formatAddress(alice.address));
    assert.ok(!err.message.includes(alice.address.aci), 'the address is a field, not part of the message');
  });

  it('refuses a replayed prekey message with DUPLICATE_MESSAGE', async () => {
    const alice = await createTestDevice();
    const bob = await createTestDevice();
    await alice.cipher.processBundle(bob.address, bob.bundle());
    const m = await send(alice, bob, 'start');
    assert.equal(await receive(bob, alice, m), 'start');
    await rejectsWith(receive(bob, alice, m), 'DUPLICATE_MESSAGE');
  });

  it('refuses a prekey message replayed against the last-resort key after the session is gone', async () => {
    const alice = await createTestDevice();
    const bob = await createTestDevice();
    await alice.cipher.processBundle(bob.address, bob.bundle({ preKey: false, oneTimeKyber: false }));
    const m = await send(alice, bob, 'start');
    assert.equal(await receive(bob, alice, m), 'start');
    await bob.cipher.deleteSession(alice.address);
    await rejectsWith(receive(bob, alice, m), 'DUPLICATE_MESSAGE');
    assert.equal(await bob.cipher.hasSession(alice.address), false);
  });

  it('refuses a prekey message whose one-time prekey is gone with UNKNOWN_PREKEY', async () => {
    const alice = await createTestDevice();
    const bob = await createTestDevice();
    const bundle = bob.bundle();
    await alice.cipher.processBundle(bob.address, bundle);
    await bob.stores.preKeys.removePreKey(bundle.preKey!.keyId);
    await rejectsWith(receive(bob, alice, await send(alice, bob, 'x')), 'UNKNOWN_PREKEY');
    assert.equal(await bob.cipher.hasSession(alice.address), false);
  });

  it('refuses garbage with INVALID_MESSAGE for both message types', async () => {
    const { alice, bob } = await pair();
    for (const body of [new Uint8Array(0), randomBytes(1), randomBytes(100), randomBytes(2000)]) {
      await rejectsWith(bob.cipher.decrypt(alice.address, 'ciphertext', body), 'INVALID_MESSAGE');
      await rejectsWith(bob.cipher.decrypt(alice.address, 'prekey', body), 'INVALID_MESSAGE');
    }
    // A real normal message handed in as a prekey message is not one.
    await rejectsWith(bob.cipher.decrypt(alice.address, 'prekey', (await send(alice, bob, 'x')).body), 'INVALID_MESSAGE');
  });

  it('refuses a tampered message with INVALID_MESSAGE and still decrypts the genuine one', async () => {
    const { alice, bob } = await pair();
    const m = await send(alice, bob, 'genuine');
    for (const i of [5, 20, -9, -1]) {
      await rejectsWith(bob.cipher.decrypt(alice.address, m.type, flip(m.body, i)), 'INVALID_MESSAGE');
    }
    assert.equal(await receive(bob, alice, m), 'genuine');
  });

  it('refuses a message from the right session but sent as another device', async () => {
    const { alice, bob } = await pair();
    const m = await send(alice, bob, 'x');
    const other = { aci: alice.address.aci, deviceId: 2 };
    await rejectsWith(bob.cipher.decrypt(other, m.type, m.body), 'NO_SESSION');
  });

  it('answers NO_SESSION to encrypt and to a normal message without a session', async () => {
    const alice = await createTestDevice();
    const bob = await createTestDevice();
    await rejectsWith(send(alice, bob, 'x'), 'NO_SESSION');
    await rejectsWith(bob.cipher.decrypt(alice.address, 'ciphertext', randomBytes(60)), 'NO_SESSION');
  });

  it('refuses bad addresses, types and bodies with INVALID_ARGUMENT', async () => {
    const { alice, bob } = await pair();
    await rejectsWith(alice.cipher.encrypt({ aci: 'not-a-uuid', deviceId: 1 }, text('x')), 'INVALID_ARGUMENT');
    await rejectsWith(alice.cipher.encrypt({ aci: bob.address.aci, deviceId: 0 }, text('x')), 'INVALID_ARGUMENT');
    await rejectsWith(alice.cipher.encrypt({ aci: bob.address.aci, deviceId: 128 }, text('x')), 'INVALID_ARGUMENT');
    await rejectsWith(alice.cipher.encrypt({ aci: bob.address.aci.toUpperCase(), deviceId: 1 }, text('x')), 'INVALID_ARGUMENT');
    await rejectsWith(alice.cipher.encrypt(bob.address, 'x' as unknown as Uint8Array), 'INVALID_ARGUMENT');
    await rejectsWith(bob.cipher.decrypt(alice.address, 'sealed' as 'prekey', randomBytes(10)), 'INVALID_ARGUMENT');
    assert.throws(() => new SessionCipher(alice.stores, { localAddress: { aci: 'x', deviceId: 1 } }), (e) => CryptoError.is(e, 'INVALID_ARGUMENT'));
  });

  it('passes a store failure through unchanged', async () => {
    const { alice, bob } = await pair();
    const boom = new Error('disk full');
    const failing: ProtocolStores = {
      ...bob.stores,
      sessions: {
        getSession: (a) => bob.stores.sessions.getSession(a),
        saveSession: () => Promise.reject(boom),
        deleteSession: (a) => bob.stores.sessions.deleteSession(a),
        deleteAllSessions: (a) => bob.stores.sessions.deleteAllSessions(a),
        getSessionDeviceIds: (a) => bob.stores.sessions.getSessionDeviceIds(a),
      },
    };
    const cipher = new SessionCipher(failing, { localAddress: bob.address });
    const m = await send(alice, bob, 'x');
    await assert.rejects(cipher.decrypt(alice.address, m.type, m.body), (err) => err === boom);
    // Nothing was saved, so the real cipher can still decrypt it.
    assert.equal(await receive(bob, alice, m), 'x');
  });
});

describe('bundle checks', () => {
  async function refused(mutate: (b: PreKeyBundleInput) => PreKeyBundleInput, code: CryptoErrorCode): Promise<void> {
    const alice = await createTestDevice();
    const bob = await createTestDevice();
    await rejectsWith(alice.cipher.processBundle(bob.address, mutate(bob.bundle())), code);
    assert.equal(await alice.cipher.hasSession(bob.address), false);
    assert.equal(await alice.stores.sessions.getSession(formatAddress(bob.address)), undefined);
    assert.equal(await alice.stores.identity.getIdentity(bob.address.aci), undefined);
  }

  it('refuses a forged signed prekey signature with INVALID_SIGNATURE and creates no session', async () => {
    await refused((b) => ({ ...b, signedPreKey: { ...b.signedPreKey, signature: flip(b.signedPreKey.signature, 3) } }), 'INVALID_SIGNATURE');
  });

  it('refuses a forged Kyber prekey signature with INVALID_SIGNATURE', async () => {
    await refused((b) => ({ ...b, kyberPreKey: { ...b.kyberPreKey, signature: flip(b.kyberPreKey.signature, 40) } }), 'INVALID_SIGNATURE');
  });

  it('refuses prekeys signed by another identity with INVALID_SIGNATURE', async () => {
    await refused((b) => ({ ...b, identityKey: generateIdentity().identityKey }), 'INVALID_SIGNATURE');
  });

  it('refuses a swapped signed prekey with INVALID_SIGNATURE', async () => {
    const other = await createTestDevice();
    await refused((b) => ({ ...b, signedPreKey: { ...b.signedPreKey, publicKey: other.bundle().signedPreKey.publicKey } }), 'INVALID_SIGNATURE');
  });

  it('refuses malformed keys with INVALID_KEY', async () => {
    await refused((b) => ({ ...b, identityKey: randomBytes(33) }), 'INVALID_KEY');
    await refused((b) => ({ ...b, signedPreKey: { ...b.signedPreKey, publicKey: randomBytes(32) } }), 'INVALID_KEY');
    await refused((b) => ({ ...b, kyberPreKey: { ...b.kyberPreKey, publicKey: b.kyberPreKey.publicKey.subarray(0, 1000) } }), 'INVALID_KEY');
    await refused((b) => ({ ...b, preKey: { keyId: 1, publicKey: new Uint8Array(33) } }), 'INVALID_KEY');
  });

  it('refuses a bundle for another device or with out-of-range ids with INVALID_ARGUMENT', async () => {
    await refused((b) => ({ ...b, deviceId: 2 }), 'INVALID_ARGUMENT');
    await refused((b) => ({ ...b, registrationId: 0 }), 'INVALID_ARGUMENT');
    await refused((b) => ({ ...b, registrationId: 16384 }), 'INVALID_ARGUMENT');
    await refused((b) => ({ ...b, signedPreKey: { ...b.signedPreKey, keyId: -1 } }), 'INVALID_ARGUMENT');
    await refused((b) => ({ ...b, kyberPreKey: undefined as unknown as PreKeyBundleInput['kyberPreKey'] }), 'INVALID_ARGUMENT');
  });
});

describe('identity changes', () => {
  it('blocks sending after the peer reinstalls until the new key is accepted (peer writes first)', async () => {
    const { alice, bob } = await pair();
    // Bob reinstalls: same account, new identity key, new stores.
    const bob2 = await createTestDevice({ aci: bob.address.aci });
    assert.notDeepEqual(bob2.identity.identityKey, bob.identity.identityKey);
    await bob2.cipher.processBundle(alice.address, alice.bundle());

    // Receiving from the new key works (as in Signal), and the change is recorded.
    assert.equal(await receive(alice, bob2, await send(bob2, alice, 'new phone')), 'new phone');
    assert.deepEqual(await alice.stores.identity.getIdentity(bob.address.aci), bob2.identity.identityKey);

    const err = await rejectsWith(send(alice, bob2, 'reply'), 'UNTRUSTED_IDENTITY');
    assert.equal(err.address, formatAddress(bob.address));
    await rejectsWith(send(alice, bob2, 'still blocked'), 'UNTRUSTED_IDENTITY');

    await alice.stores.identity.acceptIdentity(bob.address.aci, bob2.identity.identityKey);
    assert.equal(await receive(bob2, alice, await send(alice, bob2, 'accepted')), 'accepted');
  });

  it('refuses a bundle with a changed identity key until it is accepted (we write first)', async () => {
    const { alice, bob } = await pair();
    const bob2 = await createTestDevice({ aci: bob.address.aci });
    const bundle = bob2.bundle();
    await rejectsWith(alice.cipher.processBundle(bob.address, bundle), 'UNTRUSTED_IDENTITY');
    // The old session and the trusted key are untouched.
    assert.deepEqual(await alice.stores.identity.getIdentity(bob.address.aci), bob.identity.identityKey);
    assert.equal(await receive(bob, alice, await send(alice, bob, 'old session')), 'old session');

    await alice.stores.identity.acceptIdentity(bob.address.aci, bundle.identityKey);
    await alice.cipher.processBundle(bob.address, bundle);
    assert.equal(await receive(bob2, alice, await send(alice, bob2, 'to the new key')), 'to the new key');
  });
});

describe('multiple devices', () => {
  it('encrypts to two devices of one account that share its identity', async () => {
    const alice1 = await createTestDevice({ deviceId: 1 });
    const alice2 = await createTestDevice({ aci: alice1.address.aci, deviceId: 2, identityKeyPair: alice1.identity.identityKeyPair });
    assert.deepEqual(alice2.identity.identityKey, alice1.identity.identityKey);
    const bob = await createTestDevice();

    await bob.cipher.processBundle(alice1.address, alice1.bundle());
    await bob.cipher.processBundle(alice2.address, alice2.bundle());
    const to1 = await send(bob, alice1, 'hi both');
    const to2 = await send(bob, alice2, 'hi both');
    assert.equal(to1.registrationId, alice1.identity.registrationId);
    assert.equal(to2.registrationId, alice2.identity.registrationId);
    assert.notDeepEqual(to1.body, to2.body);
    // A device cannot read what was encrypted for its sibling, and the attempt costs it nothing.
    await rejectsWith(alice2.cipher.decrypt(bob.address, to1.type, to1.body), 'INVALID_MESSAGE');
    assert.equal(await receive(alice1, bob, to1), 'hi both');
    assert.equal(await receive(alice2, bob, to2), 'hi both');

    assert.equal(await receive(bob, alice1, await send(alice1, bob, 'from 1')), 'from 1');
    assert.equal(await receive(bob, alice2, await send(alice2, bob, 'from 2')), 'from 2');
    assert.deepEqual(await bob.stores.sessions.getSessionDeviceIds(alice1.address.aci), [1, 2]);
    assert.deepEqual(await bob.stores.identity.getIdentity(alice1.address.aci), alice1.identity.identityKey);

    // Sibling devices talk to each other too (sync messages).
    await alice1.cipher.processBundle(alice2.address, alice2.bundle());
    assert.equal(await receive(alice2, alice1, await send(alice1, alice2, 'sync')), 'sync');
  });
});

describe('store adapters', () => {
  it('reads the local identity from the identity store, not from the cipher', async () => {
    const bob = await createTestDevice();
    const identity = generateIdentity();
    const stores = createMemoryStores(identity);
    const address = { aci: '0f0f0f0f-0000-4000-8000-000000000000', deviceId: 1 };
    const cipher = new SessionCipher(stores, { localAddress: address });
    await cipher.processBundle(bob.address, bob.bundle());
    const m = await cipher.encrypt(bob.address, text('who am i'));
    assert.equal(str(await bob.cipher.decrypt(address, m.type, m.body)), 'who am i');
    assert.deepEqual(await bob.stores.identity.getIdentity(address.aci), identity.identityKey);
  });
});
