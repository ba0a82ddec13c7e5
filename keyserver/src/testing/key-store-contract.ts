// SPDX-License-Identifier: AGPL-3.0-only
/**
 * The contract every {@link KeyStore} adapter must pass (CONVENTIONS 1): the SQLite adapter runs
 * it in keyserver/test, a Cassandra adapter will run the same suite. The store does not check key
 * formats (the service does), so random bytes stand in for keys here.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { isParleyError, type Aci, type DeviceId, type ErrorCode, type RegistrationId } from '@parley/protocol';
import type { KeyStore, NewAccount, NewDevice, NewDeviceKeys, StoredPreKey, StoredSignedPreKey } from '../ports/key-store.js';

/** Builds a fresh, empty store. */
export type KeyStoreFactory = () => KeyStore | Promise<KeyStore>;

const ACI_A = 'a1a1a1a1-0000-4000-8000-00000000000a' as Aci;
const ACI_B = 'b2b2b2b2-0000-4000-8000-00000000000b' as Aci;
const ACI_C = 'c3c3c3c3-0000-4000-8000-00000000000c' as Aci;
const CAP = 1000;
const T0 = 1_700_000_000_000;

const bytes = (n: number): Uint8Array => new Uint8Array(randomBytes(n));
const dev = (n: number) => n as DeviceId;
const reg = (n: number) => n as RegistrationId;
const preKeys = (from: number, count: number): StoredPreKey[] =>
  Array.from({ length: count }, (_, i) => ({ keyId: from + i, publicKey: bytes(33) }));
const signedKey = (keyId: number, size = 33): StoredSignedPreKey => ({ keyId, publicKey: bytes(size), signature: bytes(64) });
const kyberKeys = (from: number, count: number): StoredSignedPreKey[] => Array.from({ length: count }, (_, i) => signedKey(from + i, 1569));

function deviceKeys(over: Partial<NewDeviceKeys> = {}): NewDeviceKeys {
  return { signedPreKey: signedKey(1), lastResortKyberPreKey: signedKey(1, 1569), ...over };
}

function newDevice(over: Partial<NewDevice> = {}): NewDevice {
  return { registrationId: reg(1234), secretHash: bytes(32), createdAt: T0, keys: deviceKeys(), ...over };
}

function newAccount(aci: Aci, username: string, device: NewDevice = newDevice()): NewAccount {
  return { aci, username, identityKey: bytes(33), createdAt: T0, device };
}

async function rejectsWith(p: Promise<unknown>, code: ErrorCode): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(isParleyError(err, code), `expected ParleyError ${code}, got ${String(err)}`);
    return true;
  });
}

/** Registers (with node:test) the KeyStore contract suite for the adapter built by `makeStore`. */
export function describeKeyStoreContract(name: string, makeStore: KeyStoreFactory): void {
  /** Runs `body` on a fresh store and closes it afterwards. */
  const withStore = (body: (store: KeyStore) => Promise<void>) => async () => {
    const store = await makeStore();
    try {
      await body(store);
    } finally {
      await store.close();
    }
  };

  /** A store with account A (device 1 holding `oneTime` keys of each kind) and a live link token. */
  async function seeded(store: KeyStore, oneTime = 0): Promise<void> {
    await store.createAccount(
      newAccount(ACI_A, 'alice', newDevice({ keys: deviceKeys({ preKeys: preKeys(1, oneTime), kyberPreKeys: kyberKeys(100, oneTime) }) })),
      CAP,
    );
  }

  async function link(store: KeyStore, aci: Aci, maxDevices = 16, device: NewDevice = newDevice()) {
    const tokenHash = bytes(32);
    await store.createLinkToken({ tokenHash, aci, createdAt: T0, expiresAt: T0 + 60_000 });
    return store.linkDevice({ tokenHash, now: T0 + 1, maxDevices, device }, CAP);
  }

  describe(`KeyStore contract: ${name}`, () => {
    describe('accounts', () => {
      it('creates an account with its device 1 and finds it by ACI and by username', withStore(async (store) => {
        const account = newAccount(ACI_A, 'alice');
        await store.createAccount(account, CAP);
        const byAci = await store.getAccount(ACI_A);
        assert.deepEqual(byAci, { aci: ACI_A, username: 'alice', identityKey: account.identityKey, createdAt: T0 });
        assert.deepEqual(await store.findAccountByUsername('alice'), byAci);
        assert.deepEqual(await store.listDevices(ACI_A), [
          { aci: ACI_A, deviceId: 1, registrationId: 1234, secretHash: account.device.secretHash, createdAt: T0 },
        ]);
        assert.deepEqual(await store.getDevice(ACI_A, dev(1)), (await store.listDevices(ACI_A))[0]);
      }));

      it('refuses a taken username and writes nothing of the refused account', withStore(async (store) => {
        await store.createAccount(newAccount(ACI_A, 'alice'), CAP);
        await rejectsWith(store.createAccount(newAccount(ACI_B, 'alice'), CAP), 'USERNAME_TAKEN');
        assert.equal(await store.getAccount(ACI_B), undefined);
        assert.deepEqual(await store.listDevices(ACI_B), []);
        assert.equal((await store.findAccountByUsername('alice'))?.aci, ACI_A);
      }));

      it('answers undefined or empty for unknown accounts, usernames and devices', withStore(async (store) => {
        await seeded(store);
        assert.equal(await store.getAccount(ACI_B), undefined);
        assert.equal(await store.findAccountByUsername('bob'), undefined);
        assert.equal(await store.getDevice(ACI_A, dev(2)), undefined);
        assert.equal(await store.getDevice(ACI_B, dev(1)), undefined);
        assert.deepEqual(await store.listDevices(ACI_B), []);
        assert.equal(await store.countKeys(ACI_A, dev(2)), undefined);
      }));

      it('refuses a first device with more one-time keys than the cap and creates nothing', withStore(async (store) => {
        const device = newDevice({ keys: deviceKeys({ preKeys: preKeys(1, 3) }) });
        await rejectsWith(store.createAccount(newAccount(ACI_A, 'alice', device), 2), 'TOO_MANY_KEYS');
        assert.equal(await store.getAccount(ACI_A), undefined);
        assert.equal(await store.findAccountByUsername('alice'), undefined);
        await store.createAccount(newAccount(ACI_A, 'alice', device), 3);
        assert.deepEqual(await store.countKeys(ACI_A, dev(1)), { preKeys: 3, kyberPreKeys: 0 });
      }));
    });

    describe('keys', () => {
      it('adds batches of one-time keys and counts them per kind', withStore(async (store) => {
        await seeded(store, 2);
        assert.deepEqual(await store.countKeys(ACI_A, dev(1)), { preKeys: 2, kyberPreKeys: 2 });
        await store.storeKeys(ACI_A, dev(1), { preKeys: preKeys(10, 5) }, CAP);
        await store.storeKeys(ACI_A, dev(1), { kyberPreKeys: kyberKeys(200, 3) }, CAP);
        assert.deepEqual(await store.countKeys(ACI_A, dev(1)), { preKeys: 7, kyberPreKeys: 5 });
      }));

      it('replaces the signed prekey and the last-resort Kyber key on upload', withStore(async (store) => {
        await seeded(store);
        const spk = signedKey(7);
        const lastResort = signedKey(8, 1569);
        await store.storeKeys(ACI_A, dev(1), { signedPreKey: spk }, CAP);
        let [claimed] = await store.claimKeys(ACI_A);
        assert.deepEqual(claimed?.signedPreKey, spk);
        assert.equal(claimed?.kyberPreKey.keyId, 1);
        await store.storeKeys(ACI_A, dev(1), { lastResortKyberPreKey: lastResort }, CAP);
        [claimed] = await store.claimKeys(ACI_A);
        assert.deepEqual(claimed?.signedPreKey, spk);
        assert.deepEqual(claimed?.kyberPreKey, lastResort);
        assert.equal(claimed?.kyberPreKeyIsLastResort, true);
      }));

      it('replaces a one-time key whose id is uploaded again instead of adding a second', withStore(async (store) => {
        await seeded(store);
        await store.storeKeys(ACI_A, dev(1), { preKeys: preKeys(1, 2) }, CAP);
        const again = { keyId: 2, publicKey: bytes(33) };
        await store.storeKeys(ACI_A, dev(1), { preKeys: [again] }, CAP);
        assert.deepEqual(await store.countKeys(ACI_A, dev(1)), { preKeys: 2, kyberPreKeys: 0 });
        const claimed = [(await store.claimKeys(ACI_A))[0]?.preKey, (await store.claimKeys(ACI_A))[0]?.preKey];
        assert.deepEqual(claimed[1], again);
      }));

      it('refuses an upload that would exceed the stored cap and writes none of it', withStore(async (store) => {
        await seeded(store, 2);
        const spk = signedKey(9);
        await rejectsWith(store.storeKeys(ACI_A, dev(1), { signedPreKey: spk, preKeys: preKeys(50, 2), kyberPreKeys: kyberKeys(60, 1) }, 3), 'TOO_MANY_KEYS');
        assert.deepEqual(await store.countKeys(ACI_A, dev(1)), { preKeys: 2, kyberPreKeys: 2 });
        const [claimed] = await store.claimKeys(ACI_A);
        assert.notDeepEqual(claimed?.signedPreKey, spk);
        // Exactly at the cap is fine.
        await store.storeKeys(ACI_A, dev(1), { preKeys: preKeys(50, 2) }, 3);
        assert.deepEqual(await store.countKeys(ACI_A, dev(1)), { preKeys: 3, kyberPreKeys: 1 });
      }));

      it('refuses keys for a device that does not exist', withStore(async (store) => {
        await seeded(store);
        await rejectsWith(store.storeKeys(ACI_A, dev(2), { preKeys: preKeys(1, 1) }, CAP), 'NOT_FOUND');
        await rejectsWith(store.storeKeys(ACI_B, dev(1), { signedPreKey: signedKey(2) }, CAP), 'NOT_FOUND');
      }));
    });

    describe('claims', () => {
      it('hands out the oldest one-time keys first and each only once', withStore(async (store) => {
        await seeded(store);
        const ec = [...preKeys(500, 2), ...preKeys(3, 1)];
        const kyber = [...kyberKeys(900, 1), ...kyberKeys(4, 2)];
        await store.storeKeys(ACI_A, dev(1), { preKeys: ec.slice(0, 2), kyberPreKeys: kyber.slice(0, 1) }, CAP);
        await store.storeKeys(ACI_A, dev(1), { preKeys: ec.slice(2), kyberPreKeys: kyber.slice(1) }, CAP);
        for (let i = 0; i < 3; i++) {
          const [c] = await store.claimKeys(ACI_A, { deviceId: dev(1) });
          assert.deepEqual(c?.preKey, ec[i]);
          assert.deepEqual(c?.kyberPreKey, kyber[i]);
          assert.equal(c?.kyberPreKeyIsLastResort, false);
          assert.deepEqual(await store.countKeys(ACI_A, dev(1)), { preKeys: 2 - i, kyberPreKeys: 2 - i });
        }
      }));

      it('falls back to the last-resort Kyber key and omits the EC prekey when one-time keys run out', withStore(async (store) => {
        const lastResort = signedKey(77, 1569);
        const spk = signedKey(66);
        await store.createAccount(
          newAccount(ACI_A, 'alice', newDevice({ registrationId: reg(4321), keys: { signedPreKey: spk, lastResortKyberPreKey: lastResort, preKeys: preKeys(1, 1) } })),
          CAP,
        );
        const [first] = await store.claimKeys(ACI_A);
        assert.deepEqual(first, {
          deviceId: 1,
          registrationId: 4321,
          signedPreKey: spk,
          kyberPreKey: lastResort,
          kyberPreKeyIsLastResort: true,
          preKey: first?.preKey,
        });
        assert.equal(first?.preKey?.keyId, 1);
        const [second] = await store.claimKeys(ACI_A);
        assert.equal(second?.preKey, undefined);
        assert.equal('preKey' in (second ?? {}), false);
        assert.deepEqual(second?.kyberPreKey, lastResort);
        // The last-resort key is never used up.
        assert.deepEqual((await store.claimKeys(ACI_A))[0]?.kyberPreKey, lastResort);
      }));

      it('claims one device, every device, or every device but one', withStore(async (store) => {
        await seeded(store, 3);
        await link(store, ACI_A, 16, newDevice({ registrationId: reg(22), keys: deviceKeys({ preKeys: preKeys(1, 3), kyberPreKeys: kyberKeys(1, 3) }) }));
        await link(store, ACI_A, 16, newDevice({ registrationId: reg(33) }));
        const all = await store.claimKeys(ACI_A);
        assert.deepEqual(all.map((c) => [c.deviceId, c.registrationId, c.preKey !== undefined, c.kyberPreKeyIsLastResort]), [
          [1, 1234, true, false],
          [2, 22, true, false],
          [3, 33, false, true],
        ]);
        const one = await store.claimKeys(ACI_A, { deviceId: dev(2) });
        assert.deepEqual(one.map((c) => c.deviceId), [2]);
        const others = await store.claimKeys(ACI_A, { exceptDeviceId: dev(1) });
        assert.deepEqual(others.map((c) => c.deviceId), [2, 3]);
        assert.deepEqual(await store.countKeys(ACI_A, dev(1)), { preKeys: 2, kyberPreKeys: 2 });
        assert.deepEqual(await store.countKeys(ACI_A, dev(2)), { preKeys: 0, kyberPreKeys: 0 });
      }));

      it('claims nothing for an unknown account or device', withStore(async (store) => {
        await seeded(store, 1);
        assert.deepEqual(await store.claimKeys(ACI_B), []);
        assert.deepEqual(await store.claimKeys(ACI_A, { deviceId: dev(5) }), []);
        assert.deepEqual(await store.countKeys(ACI_A, dev(1)), { preKeys: 1, kyberPreKeys: 1 });
      }));

      it('never hands out a one-time key twice under concurrent claims', withStore(async (store) => {
        await seeded(store, 30);
        const claims = await Promise.all(Array.from({ length: 50 }, () => store.claimKeys(ACI_A, { deviceId: dev(1) })));
        const ec = claims.flatMap((c) => (c[0]?.preKey ? [c[0].preKey.keyId] : []));
        const kyber = claims.flatMap((c) => (c[0] && !c[0].kyberPreKeyIsLastResort ? [c[0].kyberPreKey.keyId] : []));
        assert.equal(ec.length, 30);
        assert.equal(new Set(ec).size, 30);
        assert.equal(kyber.length, 30);
        assert.equal(new Set(kyber).size, 30);
        assert.equal(claims.filter((c) => c[0]?.kyberPreKeyIsLastResort).length, 20);
        assert.deepEqual(await store.countKeys(ACI_A, dev(1)), { preKeys: 0, kyberPreKeys: 0 });
      }));
    });

    describe('link tokens and devices', () => {
      it('links a device with the lowest free id and uses the token up', withStore(async (store) => {
        await seeded(store);
        const tokenHash = bytes(32);
        await store.createLinkToken({ tokenHash, aci: ACI_A, createdAt: T0, expiresAt: T0 + 1000 });
        assert.deepEqual(await store.findLinkToken(tokenHash, T0 + 1), { aci: ACI_A, expiresAt: T0 + 1000 });
        const device = newDevice({ registrationId: reg(555), keys: deviceKeys({ preKeys: preKeys(1, 4) }) });
        assert.deepEqual(await store.linkDevice({ tokenHash, now: T0 + 2, maxDevices: 16, device }, CAP), { aci: ACI_A, deviceId: 2 });
        assert.equal((await store.getDevice(ACI_A, dev(2)))?.registrationId, 555);
        assert.deepEqual(await store.countKeys(ACI_A, dev(2)), { preKeys: 4, kyberPreKeys: 0 });
        assert.equal(await store.findLinkToken(tokenHash, T0 + 3), undefined);
        await rejectsWith(store.linkDevice({ tokenHash, now: T0 + 3, maxDevices: 16, device: newDevice() }, CAP), 'INVALID_LINK_TOKEN');
        assert.equal((await store.listDevices(ACI_A)).length, 2);
      }));

      it('refuses an expired or unknown token', withStore(async (store) => {
        await seeded(store);
        const tokenHash = bytes(32);
        await store.createLinkToken({ tokenHash, aci: ACI_A, createdAt: T0, expiresAt: T0 + 1000 });
        assert.notEqual(await store.findLinkToken(tokenHash, T0 + 999), undefined);
        assert.equal(await store.findLinkToken(tokenHash, T0 + 1000), undefined);
        await rejectsWith(store.linkDevice({ tokenHash, now: T0 + 1000, maxDevices: 16, device: newDevice() }, CAP), 'INVALID_LINK_TOKEN');
        await rejectsWith(store.linkDevice({ tokenHash: bytes(32), now: T0, maxDevices: 16, device: newDevice() }, CAP), 'INVALID_LINK_TOKEN');
        assert.equal((await store.listDevices(ACI_A)).length, 1);
      }));

      it('refuses a link past the device limit and keeps the token usable', withStore(async (store) => {
        await seeded(store);
        await link(store, ACI_A, 2);
        const tokenHash = bytes(32);
        await store.createLinkToken({ tokenHash, aci: ACI_A, createdAt: T0, expiresAt: T0 + 1000 });
        await rejectsWith(store.linkDevice({ tokenHash, now: T0 + 1, maxDevices: 2, device: newDevice() }, CAP), 'DEVICE_LIMIT');
        assert.equal((await store.listDevices(ACI_A)).length, 2);
        assert.notEqual(await store.findLinkToken(tokenHash, T0 + 1), undefined);
        assert.deepEqual(await store.linkDevice({ tokenHash, now: T0 + 1, maxDevices: 3, device: newDevice() }, CAP), { aci: ACI_A, deviceId: 3 });
      }));

      it('refuses a linked device with more one-time keys than the cap and keeps the token', withStore(async (store) => {
        await seeded(store);
        const tokenHash = bytes(32);
        await store.createLinkToken({ tokenHash, aci: ACI_A, createdAt: T0, expiresAt: T0 + 1000 });
        const device = newDevice({ keys: deviceKeys({ kyberPreKeys: kyberKeys(1, 3) }) });
        await rejectsWith(store.linkDevice({ tokenHash, now: T0 + 1, maxDevices: 16, device }, 2), 'TOO_MANY_KEYS');
        assert.equal((await store.listDevices(ACI_A)).length, 1);
        assert.notEqual(await store.findLinkToken(tokenHash, T0 + 1), undefined);
      }));

      it('links one device when one token is presented concurrently', withStore(async (store) => {
        await seeded(store);
        const tokenHash = bytes(32);
        await store.createLinkToken({ tokenHash, aci: ACI_A, createdAt: T0, expiresAt: T0 + 1000 });
        const results = await Promise.allSettled(
          Array.from({ length: 5 }, () => store.linkDevice({ tokenHash, now: T0 + 1, maxDevices: 16, device: newDevice() }, CAP)),
        );
        assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1);
        for (const r of results) if (r.status === 'rejected') assert.ok(isParleyError(r.reason, 'INVALID_LINK_TOKEN'));
        assert.equal((await store.listDevices(ACI_A)).length, 2);
      }));

      it('link tokens belong to their account', withStore(async (store) => {
        await seeded(store);
        await store.createAccount(newAccount(ACI_B, 'bob'), CAP);
        assert.deepEqual(await link(store, ACI_B), { aci: ACI_B, deviceId: 2 });
        assert.equal((await store.listDevices(ACI_A)).length, 1);
      }));

      it('removes a device with its keys and gives its id to the next linked device', withStore(async (store) => {
        await seeded(store, 2);
        await link(store, ACI_A, 16, newDevice({ keys: deviceKeys({ preKeys: preKeys(1, 2), kyberPreKeys: kyberKeys(1, 2) }) }));
        await link(store, ACI_A);
        assert.equal(await store.removeDevice(ACI_A, dev(2)), 'removed');
        assert.equal(await store.getDevice(ACI_A, dev(2)), undefined);
        assert.equal(await store.countKeys(ACI_A, dev(2)), undefined);
        assert.deepEqual(await store.claimKeys(ACI_A, { deviceId: dev(2) }), []);
        assert.deepEqual((await store.listDevices(ACI_A)).map((d) => d.deviceId), [1, 3]);
        // Keys of the other devices are untouched.
        assert.deepEqual(await store.countKeys(ACI_A, dev(1)), { preKeys: 2, kyberPreKeys: 2 });
        const relinked = await link(store, ACI_A, 16, newDevice({ registrationId: reg(999) }));
        assert.equal(relinked.deviceId, 2);
        // The new device 2 starts without the removed device's one-time keys.
        assert.deepEqual(await store.countKeys(ACI_A, dev(2)), { preKeys: 0, kyberPreKeys: 0 });
        assert.equal((await store.getDevice(ACI_A, dev(2)))?.registrationId, 999);
      }));

      it('answers not-found for an unknown device and keeps an account\u2019s last device', withStore(async (store) => {
        await seeded(store, 1);
        assert.equal(await store.removeDevice(ACI_A, dev(9)), 'not-found');
        assert.equal(await store.removeDevice(ACI_C, dev(1)), 'not-found');
        assert.equal(await store.removeDevice(ACI_A, dev(1)), 'last-device');
        assert.notEqual(await store.getDevice(ACI_A, dev(1)), undefined);
        assert.deepEqual(await store.countKeys(ACI_A, dev(1)), { preKeys: 1, kyberPreKeys: 1 });
        await link(store, ACI_A);
        assert.equal(await store.removeDevice(ACI_A, dev(1)), 'removed');
        assert.deepEqual((await store.listDevices(ACI_A)).map((d) => d.deviceId), [2]);
      }));
    });

    describe('access keys', () => {
      it('stores an account\u2019s access key, replaces it, and answers it only for accounts that have one', withStore(async (store) => {
        await seeded(store);
        await store.createAccount(newAccount(ACI_B, 'bob'), CAP);
        assert.equal((await store.getAccessKeys([ACI_A, ACI_B, ACI_C])).size, 0);
        const first = bytes(16);
        assert.equal(await store.setAccessKey(ACI_A, first, T0), true);
        assert.deepEqual([...(await store.getAccessKeys([ACI_A, ACI_B, ACI_C])).entries()], [[ACI_A, first]]);
        const second = bytes(16);
        assert.equal(await store.setAccessKey(ACI_A, second, T0 + 1), true);
        assert.equal(await store.setAccessKey(ACI_B, first, T0 + 1), true);
        const keys = await store.getAccessKeys([ACI_B, ACI_A]);
        assert.deepEqual(keys.get(ACI_A), second);
        assert.deepEqual(keys.get(ACI_B), first);
        assert.deepEqual(await store.getAccessKeys([]), new Map());
      }));

      it('refuses an access key for an unknown account and writes nothing', withStore(async (store) => {
        assert.equal(await store.setAccessKey(ACI_C, bytes(16), T0), false);
        assert.equal((await store.getAccessKeys([ACI_C])).size, 0);
        await store.createAccount(newAccount(ACI_C, 'carol'), CAP);
        assert.equal((await store.getAccessKeys([ACI_C])).size, 0);
      }));

      it('returns a copy: changing the answer changes nothing stored', withStore(async (store) => {
        await seeded(store);
        const key = bytes(16);
        await store.setAccessKey(ACI_A, key, T0);
        (await store.getAccessKeys([ACI_A])).get(ACI_A)!.fill(0);
        key.fill(1);
        assert.notDeepEqual((await store.getAccessKeys([ACI_A])).get(ACI_A), new Uint8Array(16));
        assert.notDeepEqual((await store.getAccessKeys([ACI_A])).get(ACI_A), new Uint8Array(16).fill(1));
      }));
    });

    describe('presence tokens', () => {
      it('stores a presence token hash per account, and says whether it changed', withStore(async (store) => {
        await seeded(store);
        await store.createAccount(newAccount(ACI_B, 'bob'), CAP);
        assert.equal(await store.getPresenceToken(ACI_A), undefined, 'presence is off until a token is set');
        const first = bytes(32);
        assert.equal(await store.setPresenceToken(ACI_A, first, T0), true, 'turning presence on is a change');
        assert.deepEqual(await store.getPresenceToken(ACI_A), first);
        assert.equal(await store.setPresenceToken(ACI_A, new Uint8Array(first), T0 + 1), false, 'the same token again is no change');
        const second = bytes(32);
        assert.equal(await store.setPresenceToken(ACI_A, second, T0 + 2), true, 'a rotation is a change');
        assert.deepEqual(await store.getPresenceToken(ACI_A), second);
        assert.equal(await store.getPresenceToken(ACI_B), undefined, 'tokens belong to their account');
      }));

      it('turns presence off, and off twice is no change', withStore(async (store) => {
        await seeded(store);
        await store.setPresenceToken(ACI_A, bytes(32), T0);
        assert.equal(await store.clearPresenceToken(ACI_A), true);
        assert.equal(await store.getPresenceToken(ACI_A), undefined);
        assert.equal(await store.clearPresenceToken(ACI_A), false);
        assert.equal(await store.clearPresenceToken(ACI_C), false, 'an unknown account has nothing to clear');
        const again = bytes(32);
        assert.equal(await store.setPresenceToken(ACI_A, again, T0 + 1), true, 'on again after off is a change');
        assert.deepEqual(await store.getPresenceToken(ACI_A), again);
      }));

      it('refuses a token for an unknown account and stores nothing', withStore(async (store) => {
        await rejectsWith(store.setPresenceToken(ACI_C, bytes(32), T0), 'NOT_FOUND');
        assert.equal(await store.getPresenceToken(ACI_C), undefined);
        await store.createAccount(newAccount(ACI_C, 'carol'), CAP);
        assert.equal(await store.getPresenceToken(ACI_C), undefined, 'the refused token did not wait for the account');
      }));
    });

    describe('push tokens', () => {
      const apns = (token: string, updatedAt = T0) => ({ provider: 'apns' as const, token, updatedAt });

      it('stores one push token per device and replaces it', withStore(async (store) => {
        await seeded(store);
        await link(store, ACI_A);
        assert.equal(await store.getPushToken(ACI_A, dev(1)), undefined, 'no token until one is set');
        await store.setPushToken(ACI_A, dev(1), apns('aa'.repeat(32)));
        assert.deepEqual(await store.getPushToken(ACI_A, dev(1)), apns('aa'.repeat(32)));
        assert.equal(await store.getPushToken(ACI_A, dev(2)), undefined, 'tokens belong to their device');
        const fcm = { provider: 'fcm' as const, token: 'fcm:token-1', updatedAt: T0 + 5 };
        await store.setPushToken(ACI_A, dev(1), fcm);
        assert.deepEqual(await store.getPushToken(ACI_A, dev(1)), fcm, 'a new token replaces the old one, also across providers');
      }));

      it('moves a token another device holds to the device that registers it', withStore(async (store) => {
        await seeded(store);
        await link(store, ACI_A);
        await store.createAccount(newAccount(ACI_B, 'bob'), CAP);
        const token = 'bb'.repeat(32);
        await store.setPushToken(ACI_A, dev(1), apns(token));
        await store.setPushToken(ACI_B, dev(1), apns(token, T0 + 1));
        assert.equal(await store.getPushToken(ACI_A, dev(1)), undefined, 'the old holder lost it');
        assert.deepEqual(await store.getPushToken(ACI_B, dev(1)), apns(token, T0 + 1));
        await store.setPushToken(ACI_A, dev(2), { provider: 'fcm', token, updatedAt: T0 + 2 });
        assert.deepEqual(await store.getPushToken(ACI_B, dev(1)), apns(token, T0 + 1), 'the same text under another provider is another token');
      }));

      it('removes a token, and with onlyIf only when it is still the stored one', withStore(async (store) => {
        await seeded(store);
        await store.setPushToken(ACI_A, dev(1), apns('cc'.repeat(32)));
        assert.equal(await store.removePushToken(ACI_A, dev(1), 'dd'.repeat(32)), false, 'another token is not removed');
        assert.deepEqual(await store.getPushToken(ACI_A, dev(1)), apns('cc'.repeat(32)));
        assert.equal(await store.removePushToken(ACI_A, dev(1), 'cc'.repeat(32)), true);
        assert.equal(await store.getPushToken(ACI_A, dev(1)), undefined);
        assert.equal(await store.removePushToken(ACI_A, dev(1)), false, 'nothing left to remove');
        await store.setPushToken(ACI_A, dev(1), apns('ee'.repeat(32)));
        assert.equal(await store.removePushToken(ACI_A, dev(1)), true, 'without onlyIf any token goes');
        assert.equal(await store.removePushToken(ACI_C, dev(1)), false, 'an unknown device has none');
      }));

      it('refuses a token for an unknown device and stores nothing', withStore(async (store) => {
        await seeded(store);
        await rejectsWith(store.setPushToken(ACI_A, dev(2), apns('ff'.repeat(32))), 'NOT_FOUND');
        await rejectsWith(store.setPushToken(ACI_C, dev(1), apns('ff'.repeat(32))), 'NOT_FOUND');
        await link(store, ACI_A);
        assert.equal(await store.getPushToken(ACI_A, dev(2)), undefined, 'the refused token did not wait for the device');
      }));

      it('removes a device’s token with the device, and a relinked device id starts without one', withStore(async (store) => {
        await seeded(store);
        await link(store, ACI_A);
        const token = '12'.repeat(32);
        await store.setPushToken(ACI_A, dev(2), apns(token));
        assert.equal(await store.removeDevice(ACI_A, dev(2)), 'removed');
        assert.equal(await store.getPushToken(ACI_A, dev(2)), undefined);
        assert.deepEqual(await link(store, ACI_A), { aci: ACI_A, deviceId: 2 });
        assert.equal(await store.getPushToken(ACI_A, dev(2)), undefined, 'the new device 2 does not inherit the token');
        await store.setPushToken(ACI_A, dev(1), apns(token));
        assert.deepEqual(await store.getPushToken(ACI_A, dev(1)), apns(token), 'the token is free for another device');
      }));
    });
  });
}
