// SPDX-License-Identifier: AGPL-3.0-only
/**
 * The contract every {@link ProtocolStores} implementation must pass (CONVENTIONS 1): the
 * in-memory stores run it here, a client's SQLCipher stores run the same suite.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { generateIdentity, type LocalIdentity } from '../identity.js';
import { randomBytes } from '../random.js';
import type { ProtocolStores } from '../stores.js';

/** Builds a fresh, empty store set for a device with identity `identity`. */
export type ProtocolStoresFactory = (identity: LocalIdentity) => ProtocolStores | Promise<ProtocolStores>;

const ACI_A = 'a1a1a1a1-0000-4000-8000-000000000001';
const ACI_B = 'b2b2b2b2-0000-4000-8000-000000000002';
const key = (): Uint8Array => {
  const k = randomBytes(33);
  k[0] = 0x05;
  return k;
};

/** Registers (with node:test) the store contract suite for the implementation built by `make`. */
export function describeProtocolStoresContract(name: string, make: ProtocolStoresFactory): void {
  const setup = async (): Promise<{ identity: LocalIdentity; stores: ProtocolStores }> => {
    const identity = generateIdentity();
    return { identity, stores: await make(identity) };
  };

  describe(`ProtocolStores contract: ${name}`, () => {
    describe('identity', () => {
      it('returns the local key pair and registration id it was created with', async () => {
        const { identity, stores } = await setup();
        assert.deepEqual(await stores.identity.getIdentityKeyPair(), new Uint8Array(identity.identityKeyPair));
        assert.equal(await stores.identity.getLocalRegistrationId(), identity.registrationId);
      });

      it('trusts the first key seen (trust on first use) and reports no replacement', async () => {
        const { stores } = await setup();
        const k = key();
        assert.equal(await stores.identity.getIdentity(ACI_A), undefined);
        assert.equal(await stores.identity.isTrustedIdentity(ACI_A, k, 'sending'), true);
        assert.equal(await stores.identity.saveIdentity(ACI_A, k), false);
        assert.deepEqual(await stores.identity.getIdentity(ACI_A), k);
        assert.equal(await stores.identity.saveIdentity(ACI_A, new Uint8Array(k)), false);
        assert.equal(await stores.identity.isTrustedIdentity(ACI_A, k, 'sending'), true);
      });

      it('blocks sending to a changed key until it is accepted, but keeps receiving', async () => {
        const { stores } = await setup();
        const [k1, k2] = [key(), key()];
        await stores.identity.saveIdentity(ACI_A, k1);
        assert.equal(await stores.identity.saveIdentity(ACI_A, k2), true);
        assert.deepEqual(await stores.identity.getIdentity(ACI_A), k2);
        assert.equal(await stores.identity.isTrustedIdentity(ACI_A, k2, 'sending'), false);
        assert.equal(await stores.identity.isTrustedIdentity(ACI_A, k2, 'receiving'), true);
        // Saving the same new key again neither reports a change nor makes it trusted.
        assert.equal(await stores.identity.saveIdentity(ACI_A, k2), false);
        assert.equal(await stores.identity.isTrustedIdentity(ACI_A, k2, 'sending'), false);
        await stores.identity.acceptIdentity(ACI_A, k2);
        assert.equal(await stores.identity.isTrustedIdentity(ACI_A, k2, 'sending'), true);
        assert.deepEqual(await stores.identity.getIdentity(ACI_A), k2);
      });

      it('does not trust an unseen key for sending once a key is known', async () => {
        const { stores } = await setup();
        await stores.identity.saveIdentity(ACI_A, key());
        assert.equal(await stores.identity.isTrustedIdentity(ACI_A, key(), 'sending'), false);
      });

      it('keeps accounts apart and is not changed by mutating buffers', async () => {
        const { stores } = await setup();
        const [ka, kb] = [key(), key()];
        await stores.identity.saveIdentity(ACI_A, ka);
        await stores.identity.saveIdentity(ACI_B, kb);
        const expected = new Uint8Array(ka);
        ka[5] = ka[5]! ^ 0xff;
        const got = await stores.identity.getIdentity(ACI_A);
        assert.deepEqual(got, expected);
        got![6] = got![6]! ^ 0xff;
        assert.deepEqual(await stores.identity.getIdentity(ACI_A), expected);
        assert.deepEqual(await stores.identity.getIdentity(ACI_B), kb);
      });
    });

    describe('sessions', () => {
      it('saves, replaces, lists and deletes records by address', async () => {
        const { stores } = await setup();
        const s = stores.sessions;
        const [r1, r2, r3] = [randomBytes(100), randomBytes(120), randomBytes(80)];
        assert.equal(await s.getSession(`${ACI_A}.1`), undefined);
        await s.saveSession(`${ACI_A}.1`, r1);
        await s.saveSession(`${ACI_A}.12`, r2);
        await s.saveSession(`${ACI_A}.2`, r2);
        await s.saveSession(`${ACI_B}.1`, r3);
        assert.deepEqual(await s.getSession(`${ACI_A}.1`), r1);
        assert.deepEqual(await s.getSessionDeviceIds(ACI_A), [1, 2, 12]);
        await s.saveSession(`${ACI_A}.1`, r3);
        assert.deepEqual(await s.getSession(`${ACI_A}.1`), r3);
        await s.deleteSession(`${ACI_A}.2`);
        await s.deleteSession(`${ACI_A}.99`);
        assert.deepEqual(await s.getSessionDeviceIds(ACI_A), [1, 12]);
        await s.deleteAllSessions(ACI_A);
        assert.deepEqual(await s.getSessionDeviceIds(ACI_A), []);
        assert.equal(await s.getSession(`${ACI_A}.12`), undefined);
        assert.deepEqual(await s.getSession(`${ACI_B}.1`), r3);
      });

      it('stores a copy of the record', async () => {
        const { stores } = await setup();
        const r = randomBytes(64);
        const expected = new Uint8Array(r);
        await stores.sessions.saveSession(`${ACI_A}.1`, r);
        r.fill(0);
        const got = await stores.sessions.getSession(`${ACI_A}.1`);
        assert.deepEqual(got, expected);
        got!.fill(1);
        assert.deepEqual(await stores.sessions.getSession(`${ACI_A}.1`), expected);
      });
    });

    describe('prekeys', () => {
      it('saves, reads and removes one-time EC prekeys', async () => {
        const { stores } = await setup();
        const r = randomBytes(70);
        assert.equal(await stores.preKeys.getPreKey(7), undefined);
        await stores.preKeys.savePreKey(7, r);
        assert.deepEqual(await stores.preKeys.getPreKey(7), r);
        assert.equal(await stores.preKeys.getPreKey(8), undefined);
        await stores.preKeys.removePreKey(7);
        assert.equal(await stores.preKeys.getPreKey(7), undefined);
      });

      it('saves, reads and removes signed prekeys apart from one-time ones', async () => {
        const { stores } = await setup();
        const [r1, r2] = [randomBytes(100), randomBytes(100)];
        await stores.signedPreKeys.saveSignedPreKey(1, r1);
        await stores.preKeys.savePreKey(1, r2);
        assert.deepEqual(await stores.signedPreKeys.getSignedPreKey(1), r1);
        await stores.signedPreKeys.removeSignedPreKey(1);
        assert.equal(await stores.signedPreKeys.getSignedPreKey(1), undefined);
        assert.deepEqual(await stores.preKeys.getPreKey(1), r2);
      });

      it('removes a one-time Kyber prekey when it is used', async () => {
        const { stores } = await setup();
        const r = randomBytes(200);
        await stores.kyberPreKeys.saveKyberPreKey(3, r, false);
        assert.deepEqual(await stores.kyberPreKeys.getKyberPreKey(3), r);
        assert.equal(await stores.kyberPreKeys.markKyberPreKeyUsed(3, 1, key()), true);
        assert.equal(await stores.kyberPreKeys.getKyberPreKey(3), undefined);
      });

      it('keeps a last-resort Kyber prekey and refuses the same (signed prekey, base key) twice', async () => {
        const { stores } = await setup();
        const r = randomBytes(200);
        const [base1, base2] = [key(), key()];
        await stores.kyberPreKeys.saveKyberPreKey(1, r, true);
        assert.equal(await stores.kyberPreKeys.markKyberPreKeyUsed(1, 5, base1), true);
        assert.deepEqual(await stores.kyberPreKeys.getKyberPreKey(1), r);
        assert.equal(await stores.kyberPreKeys.markKyberPreKeyUsed(1, 5, new Uint8Array(base1)), false);
        assert.equal(await stores.kyberPreKeys.markKyberPreKeyUsed(1, 5, base2), true);
        assert.equal(await stores.kyberPreKeys.markKyberPreKeyUsed(1, 6, base1), true);
        await stores.kyberPreKeys.removeKyberPreKey(1);
        assert.equal(await stores.kyberPreKeys.getKyberPreKey(1), undefined);
      });
    });

    describe('sender keys', () => {
      it('saves and reads records by sender device and distribution id', async () => {
        const { stores } = await setup();
        const d1 = 'd1d1d1d1-0000-4000-8000-000000000001';
        const d2 = 'd2d2d2d2-0000-4000-8000-000000000002';
        const [r1, r2] = [randomBytes(90), randomBytes(90)];
        assert.equal(await stores.senderKeys.getSenderKey(`${ACI_A}.1`, d1), undefined);
        await stores.senderKeys.saveSenderKey(`${ACI_A}.1`, d1, r1);
        await stores.senderKeys.saveSenderKey(`${ACI_A}.2`, d1, r2);
        assert.deepEqual(await stores.senderKeys.getSenderKey(`${ACI_A}.1`, d1), r1);
        assert.deepEqual(await stores.senderKeys.getSenderKey(`${ACI_A}.2`, d1), r2);
        assert.equal(await stores.senderKeys.getSenderKey(`${ACI_A}.1`, d2), undefined);
        await stores.senderKeys.saveSenderKey(`${ACI_A}.1`, d1, r2);
        assert.deepEqual(await stores.senderKeys.getSenderKey(`${ACI_A}.1`, d1), r2);
      });

      it('deletes one record by sender device and distribution id, leaving the others', async () => {
        const { stores } = await setup();
        const d1 = 'd1d1d1d1-0000-4000-8000-000000000001';
        const d2 = 'd2d2d2d2-0000-4000-8000-000000000002';
        const [r1, r2, r3] = [randomBytes(90), randomBytes(90), randomBytes(90)];
        await stores.senderKeys.saveSenderKey(`${ACI_A}.1`, d1, r1);
        await stores.senderKeys.saveSenderKey(`${ACI_A}.1`, d2, r2);
        await stores.senderKeys.saveSenderKey(`${ACI_A}.2`, d1, r3);
        await stores.senderKeys.deleteSenderKey(`${ACI_A}.1`, d1);
        await stores.senderKeys.deleteSenderKey(`${ACI_B}.1`, d1);
        assert.equal(await stores.senderKeys.getSenderKey(`${ACI_A}.1`, d1), undefined);
        assert.deepEqual(await stores.senderKeys.getSenderKey(`${ACI_A}.1`, d2), r2);
        assert.deepEqual(await stores.senderKeys.getSenderKey(`${ACI_A}.2`, d1), r3);
        await stores.senderKeys.saveSenderKey(`${ACI_A}.1`, d1, r3);
        assert.deepEqual(await stores.senderKeys.getSenderKey(`${ACI_A}.1`, d1), r3, 'a deleted record can be stored again');
      });
    });
  });
}
