// SPDX-License-Identifier: AGPL-3.0-only
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import {
  toBase64Url,
  type AccountInfoResponse,
  type BundleResponse,
  type DeviceListResponse,
  type ErrorResponse,
  type LinkTokenResponse,
  type RegisterAccountResponse,
} from '@parley/protocol';
import type { DeviceChange } from '../src/index.js';
import { authHeader, flipBit, linkBody, newIdentity } from './fixtures.js';
import { startHarness, T0 } from './harness.js';

const dir = mkdtempSync(join(tmpdir(), 'parley-ks-dev-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const dbPath = () => join(dir, `keys-${++n}.db`);

describe('device linking', () => {
  it('links a device with a single-use token that expires after 10 minutes', async () => {
    const h = await startHarness();
    try {
      const a1 = await h.register('alice');
      const token = await h.call<LinkTokenResponse>('POST', '/v1/devices/link-tokens', {}, a1.auth);
      assert.equal(token.status, 200);
      assert.equal(token.body.expiresAt, T0 + 600_000);
      assert.equal(Buffer.from(token.body.token, 'base64url').length, 32);

      const l = linkBody(a1.identity, token.body.token, { oneTime: 2, registrationId: 777 });
      const linked = await h.call<RegisterAccountResponse>('POST', '/v1/devices', l.body);
      assert.equal(linked.status, 200);
      assert.deepEqual(linked.body, { aci: a1.aci, deviceId: 2, username: 'alice' });
      const auth2 = authHeader(a1.aci, 2, l.secret);
      assert.deepEqual((await h.call<AccountInfoResponse>('GET', '/v1/accounts/me', undefined, auth2)).body, { aci: a1.aci, username: 'alice', deviceId: 2 });

      const again = await h.call<ErrorResponse>('POST', '/v1/devices', linkBody(a1.identity, token.body.token).body);
      assert.equal(again.status, 403);
      assert.equal(again.body.code, 'INVALID_LINK_TOKEN');

      const late = await h.call<LinkTokenResponse>('POST', '/v1/devices/link-tokens', undefined, a1.auth);
      assert.equal(late.status, 200);
      h.clock.advance(600_000);
      const expired = await h.call<ErrorResponse>('POST', '/v1/devices', linkBody(a1.identity, late.body.token).body);
      assert.equal(expired.status, 403);
      assert.equal(expired.body.code, 'INVALID_LINK_TOKEN');

      const devices = await h.call<DeviceListResponse>('GET', '/v1/devices', undefined, a1.auth);
      assert.deepEqual(devices.body, {
        devices: [
          { deviceId: 1, registrationId: 1234, createdAt: T0 },
          { deviceId: 2, registrationId: 777, createdAt: T0 },
        ],
      });
    } finally {
      await h.close();
    }
  });

  it('refuses wrong tokens and keys not signed by the account identity, changing nothing', async () => {
    const h = await startHarness({}, dbPath());
    try {
      const a1 = await h.register('alice');
      const token = (await h.call<LinkTokenResponse>('POST', '/v1/devices/link-tokens', {}, a1.auth)).body.token;
      const before = h.snapshot();
      const good = linkBody(a1.identity, token).body;
      const cases: Array<[string, unknown, number, string]> = [
        ['an unknown token', { ...good, token: toBase64Url(new Uint8Array(randomBytes(32))) }, 403, 'INVALID_LINK_TOKEN'],
        ['a short token', { ...good, token: toBase64Url(new Uint8Array(16)) }, 403, 'INVALID_LINK_TOKEN'],
        ['keys of another identity', linkBody(newIdentity(), token).body, 422, 'INVALID_SIGNATURE'],
        ['a flipped signature', { ...good, signedPreKey: { ...good.signedPreKey, signature: flipBit(good.signedPreKey.signature) } }, 422, 'INVALID_SIGNATURE'],
        ['an identity key field', { ...good, identityKey: toBase64Url(a1.identity.identityKey) }, 400, 'BAD_REQUEST'],
        ['no token', { ...good, token: undefined }, 400, 'BAD_REQUEST'],
        ['no auth secret', { ...good, authSecret: undefined }, 400, 'BAD_REQUEST'],
      ];
      for (const [name, body, status, code] of cases) {
        const res = await h.call<ErrorResponse>('POST', '/v1/devices', body);
        assert.equal(res.status, status, `${name}: ${JSON.stringify(res.body)}`);
        assert.equal(res.body.code, code, name);
        assert.deepEqual(h.snapshot(), before, name);
      }
      // The token survived every refusal.
      assert.equal((await h.call('POST', '/v1/devices', good)).status, 200);
    } finally {
      await h.close();
    }
  });

  it('stops at the device limit and gives a removed device\u2019s id to the next one', async () => {
    const h = await startHarness({ maxDevicesPerAccount: 3 });
    try {
      const a1 = await h.register('alice');
      const a2 = await h.link(a1);
      const a3 = await h.link(a2);
      assert.deepEqual([a2.deviceId, a3.deviceId], [2, 3]);
      const token = (await h.call<LinkTokenResponse>('POST', '/v1/devices/link-tokens', {}, a3.auth)).body.token;
      const refused = await h.call<ErrorResponse>('POST', '/v1/devices', linkBody(a1.identity, token).body);
      assert.equal(refused.status, 409);
      assert.equal(refused.body.code, 'DEVICE_LIMIT');
      assert.equal((await h.call('DELETE', '/v1/devices/2', undefined, a3.auth)).status, 204);
      // The refused token is still good, and the free id 2 is reused.
      const l = linkBody(a1.identity, token, { registrationId: 4242 });
      const linked = await h.call<RegisterAccountResponse>('POST', '/v1/devices', l.body);
      assert.equal(linked.status, 200);
      assert.equal(linked.body.deviceId, 2);
    } finally {
      await h.close();
    }
  });
});

describe('device removal', () => {
  it('a removed device can no longer authenticate, its keys are gone, and listeners hear of it', async () => {
    const h = await startHarness();
    try {
      const events: DeviceChange[] = [];
      const off = h.keyServer.directory.onDeviceChange((e) => events.push(e));
      const a1 = await h.register('alice', { oneTime: 2 });
      const a2 = await h.link(a1, { oneTime: 3 });
      const bob = await h.register('bob');
      assert.deepEqual((await h.keyServer.directory.getDevices(a1.aci as never))?.map((d) => d.deviceId), [1, 2]);

      const res = await h.call('DELETE', '/v1/devices/2', undefined, a1.auth);
      assert.equal(res.status, 204);
      assert.deepEqual(events, [
        { kind: 'added', aci: a1.aci, deviceId: 1 },
        { kind: 'added', aci: a1.aci, deviceId: 2 },
        { kind: 'added', aci: bob.aci, deviceId: 1 },
        { kind: 'removed', aci: a1.aci, deviceId: 2 },
      ]);
      const me = await h.call<ErrorResponse>('GET', '/v1/accounts/me', undefined, a2.auth);
      assert.equal(me.status, 401);
      assert.equal(me.body.code, 'UNAUTHORIZED');
      await assert.rejects(h.keyServer.directory.authenticate(a2.auth, 'x'), { code: 'UNAUTHORIZED' });
      assert.equal(await h.store.countKeys(a1.aci as never, 2 as never), undefined);
      const bundle = await h.call<ErrorResponse>('GET', `/v1/keys/${a1.aci}/2`, undefined, bob.auth);
      assert.equal(bundle.status, 404);
      const all = await h.call<BundleResponse>('GET', `/v1/keys/${a1.aci}/*`, undefined, bob.auth);
      assert.deepEqual(all.body.devices.map((d) => d.deviceId), [1]);
      assert.deepEqual((await h.keyServer.directory.getDevices(a1.aci as never))?.map((d) => d.deviceId), [1]);
      off();
      await h.link(a1);
      assert.equal(events.length, 4);
    } finally {
      await h.close();
    }
  });

  it('any device may remove itself; the last device stays; unknown and malformed ids are refused', async () => {
    const h = await startHarness();
    try {
      const a1 = await h.register('alice');
      const a2 = await h.link(a1);
      assert.equal((await h.call<ErrorResponse>('DELETE', '/v1/devices/7', undefined, a1.auth)).body.code, 'NOT_FOUND');
      assert.equal((await h.call<ErrorResponse>('DELETE', '/v1/devices/0', undefined, a1.auth)).body.code, 'BAD_REQUEST');
      assert.equal((await h.call<ErrorResponse>('DELETE', '/v1/devices/x', undefined, a1.auth)).body.code, 'BAD_REQUEST');
      assert.equal((await h.call<ErrorResponse>('DELETE', '/v1/devices/2')).status, 401);
      assert.equal((await h.call('DELETE', '/v1/devices/1', undefined, a1.auth)).status, 204);
      assert.equal((await h.call('GET', '/v1/accounts/me', undefined, a1.auth)).status, 401);
      const last = await h.call<ErrorResponse>('DELETE', '/v1/devices/2', undefined, a2.auth);
      assert.equal(last.status, 400);
      assert.equal(last.body.code, 'BAD_REQUEST');
      assert.equal((await h.call('GET', '/v1/accounts/me', undefined, a2.auth)).status, 200);
    } finally {
      await h.close();
    }
  });

  it('cannot remove a device of another account', async () => {
    const h = await startHarness();
    try {
      const a1 = await h.register('alice');
      await h.link(a1);
      const bob = await h.register('bob');
      assert.equal((await h.call<ErrorResponse>('DELETE', '/v1/devices/2', undefined, bob.auth)).body.code, 'NOT_FOUND');
      assert.equal((await h.keyServer.directory.getDevices(a1.aci as never))?.length, 2);
    } finally {
      await h.close();
    }
  });
});

describe('username directory', () => {
  it('finds an account by username, case-insensitively, and refuses unknown or malformed names', async () => {
    const h = await startHarness();
    try {
      const a = await h.register('alice');
      const bob = await h.register('bob');
      for (const name of ['alice', 'ALICE', 'Alice']) {
        const res = await h.call<AccountInfoResponse>('GET', `/v1/directory/${name}`, undefined, bob.auth);
        assert.equal(res.status, 200);
        assert.deepEqual(res.body, { aci: a.aci, username: 'alice' });
      }
      assert.equal((await h.call<ErrorResponse>('GET', '/v1/directory/nobody', undefined, bob.auth)).body.code, 'NOT_FOUND');
      assert.equal((await h.call<ErrorResponse>('GET', '/v1/directory/9lives', undefined, bob.auth)).body.code, 'BAD_REQUEST');
      assert.equal((await h.call<ErrorResponse>('GET', `/v1/directory/${'a'.repeat(40)}`, undefined, bob.auth)).body.code, 'BAD_REQUEST');
      assert.equal((await h.call<ErrorResponse>('GET', '/v1/directory/alice')).status, 401);
    } finally {
      await h.close();
    }
  });
});
