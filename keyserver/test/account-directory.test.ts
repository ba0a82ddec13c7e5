// SPDX-License-Identifier: AGPL-3.0-only
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Aci, DeviceId, RegistrationId } from '@parley/protocol';
import { AccountDirectory, createRateLimiter, openSqliteKeyStore, type DeviceChange, type KeyStore, type SqliteKeyStore } from '../src/index.js';
import { authHeader } from './fixtures.js';
import { ManualClock } from './harness.js';
import { createHash } from 'node:crypto';

const ACI = 'a1a1a1a1-0000-4000-8000-00000000000a' as Aci;
const key = { keyId: 1, publicKey: new Uint8Array(33), signature: new Uint8Array(64) };
const SECRET = new Uint8Array(32).fill(42);

/** A store that counts listDevices and getDevice calls and can hold listDevices until released. */
function spyStore(inner: SqliteKeyStore) {
  const calls = { listDevices: 0, getDevice: [] as string[] };
  let gate: Promise<void> | undefined;
  const store: KeyStore = Object.assign(Object.create(inner) as KeyStore, {
    listDevices: async (aci: Aci) => {
      calls.listDevices++;
      const rows = await inner.listDevices(aci);
      if (gate) await gate;
      return rows;
    },
    getDevice: async (aci: Aci, deviceId: DeviceId) => {
      calls.getDevice.push(`${aci}.${deviceId}`);
      return inner.getDevice(aci, deviceId);
    },
  });
  return {
    store,
    calls,
    hold() {
      let release!: () => void;
      gate = new Promise((r) => (release = r));
      return () => {
        gate = undefined;
        release();
      };
    },
  };
}

async function setup(cacheTtlMs = 60_000, cacheMaxAccounts = 100) {
  const inner = openSqliteKeyStore(':memory:');
  await inner.createAccount(
    {
      aci: ACI,
      username: 'alice',
      identityKey: new Uint8Array(33),
      createdAt: 0,
      device: {
        registrationId: 7 as RegistrationId,
        secretHash: new Uint8Array(createHash('sha256').update(SECRET).digest()),
        createdAt: 0,
        keys: { signedPreKey: key, lastResortKyberPreKey: key },
      },
    },
    10,
  );
  const clock = new ManualClock();
  const spy = spyStore(inner);
  const directory = new AccountDirectory({
    store: spy.store,
    clock,
    failedAuthLimiter: createRateLimiter({ capacity: 100, windowMs: 1000, clock }),
    cacheMaxAccounts,
    cacheTtlMs,
  });
  const addDevice = async (deviceId: number, registrationId: number) => {
    const tokenHash = new Uint8Array(32).fill(deviceId);
    await inner.createLinkToken({ tokenHash, aci: ACI, createdAt: clock.now(), expiresAt: clock.now() + 1000 });
    await inner.linkDevice(
      { tokenHash, now: clock.now(), maxDevices: 16, device: { registrationId: registrationId as RegistrationId, secretHash: new Uint8Array(32), createdAt: 0, keys: { signedPreKey: key, lastResortKyberPreKey: key } } },
      10,
    );
  };
  return { inner, clock, directory, calls: spy.calls, hold: spy.hold, addDevice };
}

describe('AccountDirectory', () => {
  it('serves device sets from memory until a change invalidates them', async () => {
    const { directory, calls, addDevice, inner } = await setup();
    try {
      assert.deepEqual(await directory.getDevices(ACI), [{ deviceId: 1, registrationId: 7 }]);
      assert.deepEqual(await directory.getDevices(ACI), [{ deviceId: 1, registrationId: 7 }]);
      assert.equal(calls.listDevices, 1);
      await addDevice(2, 8);
      // Not told yet: still the cached view.
      assert.equal((await directory.getDevices(ACI))?.length, 1);
      directory.publishDeviceChange({ kind: 'added', aci: ACI, deviceId: 2 as DeviceId });
      assert.deepEqual(await directory.getDevices(ACI), [
        { deviceId: 1, registrationId: 7 },
        { deviceId: 2, registrationId: 8 },
      ]);
      assert.equal(calls.listDevices, 2);
      assert.ok(Object.isFrozen(await directory.getDevices(ACI)));
    } finally {
      await inner.close();
    }
  });

  it('answers undefined for an unknown account and does not cache it', async () => {
    const { directory, calls, inner } = await setup();
    try {
      const unknown = 'b2b2b2b2-0000-4000-8000-00000000000b' as Aci;
      assert.equal(await directory.getDevices(unknown), undefined);
      assert.equal(await directory.getDevices(unknown), undefined);
      assert.equal(calls.listDevices, 2);
      assert.equal(directory.cachedAccounts, 0);
    } finally {
      await inner.close();
    }
  });

  it('reloads after the cache TTL and keeps at most cacheMaxAccounts', async () => {
    const { directory, calls, clock, inner } = await setup(1000, 1);
    try {
      await directory.getDevices(ACI);
      clock.advance(999);
      await directory.getDevices(ACI);
      assert.equal(calls.listDevices, 1);
      clock.advance(1);
      await directory.getDevices(ACI);
      assert.equal(calls.listDevices, 2);
      assert.equal(directory.cachedAccounts, 1);
    } finally {
      await inner.close();
    }
  });

  it('shares one load between concurrent callers, and a change during a load is not hidden by a stale cache', async () => {
    const { directory, calls, hold, addDevice, inner } = await setup();
    try {
      const release = hold();
      const a = directory.getDevices(ACI);
      const b = directory.getDevices(ACI);
      await new Promise((r) => setImmediate(r));
      // The load read one device and is held; meanwhile a device is added and published.
      await addDevice(2, 8);
      directory.publishDeviceChange({ kind: 'added', aci: ACI, deviceId: 2 as DeviceId });
      release();
      assert.equal((await a)?.length, 1);
      assert.equal(await a, await b);
      assert.equal(calls.listDevices, 1);
      // The stale result was not cached: the next call sees both devices.
      assert.equal((await directory.getDevices(ACI))?.length, 2);
    } finally {
      await inner.close();
    }
  });

  it('tells every listener, survives a throwing one, and unsubscribes', async () => {
    const { directory, inner } = await setup();
    try {
      const seen: DeviceChange[] = [];
      directory.onDeviceChange(() => {
        throw new Error('listener bug');
      });
      const off = directory.onDeviceChange((e) => seen.push(e));
      directory.publishDeviceChange({ kind: 'removed', aci: ACI, deviceId: 3 as DeviceId });
      off();
      directory.publishDeviceChange({ kind: 'added', aci: ACI, deviceId: 4 as DeviceId });
      assert.deepEqual(seen, [{ kind: 'removed', aci: ACI, deviceId: 3 }]);
    } finally {
      await inner.close();
    }
  });

  it('looks an unknown device up and hashes like a wrong secret, and refuses both alike', async () => {
    const { directory, calls, inner } = await setup();
    try {
      assert.deepEqual(await directory.authenticate(authHeader(ACI, 1, SECRET), 'ip'), { aci: ACI, deviceId: 1 });
      const errors = [];
      for (const header of [authHeader(ACI, 1, new Uint8Array(32)), authHeader(ACI, 5, SECRET), undefined]) {
        errors.push(await directory.authenticate(header, 'ip').then(() => undefined, (e: unknown) => e as Error & { code: string }));
      }
      assert.deepEqual(calls.getDevice, [`${ACI}.1`, `${ACI}.1`, `${ACI}.5`]);
      assert.deepEqual(errors.map((e) => [e?.code, e?.message]), Array(3).fill(['UNAUTHORIZED', 'missing or invalid credentials']));
    } finally {
      await inner.close();
    }
  });
});
