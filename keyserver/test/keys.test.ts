// SPDX-License-Identifier: AGPL-3.0-only
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import Fastify from 'fastify';
import { verifyPreKeySignature } from '@parley/crypto';
import { fromBase64Url, type BundleResponse, type ErrorResponse, type KeyCountsResponse } from '@parley/protocol';
import { createKeyServer, openSqliteKeyStore } from '../src/index.js';
import { authHeader, ecPublicKey, flipBit, kyberPreKey, kyberPreKeys, newIdentity, preKeys, registration, signedPreKey } from './fixtures.js';
import { ManualClock, startHarness, type Harness } from './harness.js';

const dir = mkdtempSync(join(tmpdir(), 'parley-ks-keys-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const dbPath = () => join(dir, `keys-${++n}.db`);

const counts = async (h: Harness, auth: string) => {
  const res = await h.call<KeyCountsResponse>('GET', '/v1/keys/count', undefined, auth);
  assert.equal(res.status, 200);
  return res.body;
};

describe('key upload', () => {
  it('adds one-time keys, replaces the signed keys, and counts what is left', async () => {
    const h = await startHarness();
    try {
      const a = await h.register('alice', { oneTime: 2 });
      assert.deepEqual(await counts(h, a.auth), { preKeys: 2, kyberPreKeys: 2 });
      const res = await h.call('PUT', '/v1/keys', { preKeys: preKeys(10, 5), kyberPreKeys: kyberPreKeys(a.identity, 300, 3), signedPreKey: signedPreKey(a.identity, 7) }, a.auth);
      assert.equal(res.status, 204);
      assert.deepEqual(await counts(h, a.auth), { preKeys: 7, kyberPreKeys: 5 });
      const empty = await h.call('PUT', '/v1/keys', {}, a.auth);
      assert.equal(empty.status, 204);
      const bob = await h.register('bob');
      const bundle = await h.call<BundleResponse>('GET', `/v1/keys/${a.aci}/1`, undefined, bob.auth);
      assert.equal(bundle.body.devices[0]?.signedPreKey.keyId, 7);
    } finally {
      await h.close();
    }
  });

  it('refuses a bad signature with INVALID_SIGNATURE and keeps the counts and keys', async () => {
    const h = await startHarness({}, dbPath());
    try {
      const a = await h.register('alice', { oneTime: 2 });
      const before = h.snapshot();
      const good = kyberPreKeys(a.identity, 500, 3);
      const bad = [...good.slice(0, 2), { ...good[2]!, signature: flipBit(good[2]!.signature) }];
      const res = await h.call<ErrorResponse>('PUT', '/v1/keys', { preKeys: preKeys(20, 3), kyberPreKeys: bad }, a.auth);
      assert.equal(res.status, 422);
      assert.equal(res.body.code, 'INVALID_SIGNATURE');
      assert.deepEqual(await counts(h, a.auth), { preKeys: 2, kyberPreKeys: 2 });
      const other = newIdentity();
      const foreign = await h.call<ErrorResponse>('PUT', '/v1/keys', { signedPreKey: signedPreKey(other, 9) }, a.auth);
      assert.equal(foreign.status, 422);
      assert.equal(foreign.body.code, 'INVALID_SIGNATURE');
      assert.deepEqual(h.snapshot(), before);
    } finally {
      await h.close();
    }
  });

  it('refuses oversized batches, duplicate ids, malformed keys and a full store, changing nothing', async () => {
    const h = await startHarness({ maxStoredPreKeys: 150 }, dbPath());
    try {
      const a = await h.register('alice');
      const cases: Array<[string, unknown, number, string]> = [
        ['101 EC prekeys', { preKeys: preKeys(1, 101) }, 413, 'TOO_MANY_KEYS'],
        ['101 Kyber prekeys', { kyberPreKeys: kyberPreKeys(a.identity, 1, 101) }, 413, 'TOO_MANY_KEYS'],
        ['a duplicate EC key id', { preKeys: [...preKeys(1, 3), ...preKeys(2, 1)] }, 400, 'BAD_REQUEST'],
        ['a duplicate Kyber key id', { kyberPreKeys: [...kyberPreKeys(a.identity, 1, 2), kyberPreKey(a.identity, 1)] }, 400, 'BAD_REQUEST'],
        ['an EC prekey that is no key', { preKeys: [{ keyId: 1, publicKey: Buffer.from(new Uint8Array(33).fill(7)).toString('base64url') }] }, 422, 'INVALID_KEY'],
        ['a 32-byte EC prekey', { preKeys: [{ keyId: 1, publicKey: Buffer.from(ecPublicKey().subarray(1)).toString('base64url') }] }, 400, 'BAD_REQUEST'],
        ['a Kyber key as signed EC prekey', { signedPreKey: kyberPreKey(a.identity, 3) }, 400, 'BAD_REQUEST'],
        ['an unknown field', { preKeys: [], extra: 1 }, 400, 'BAD_REQUEST'],
        ['an unknown field in a key', { preKeys: [{ ...preKeys(1, 1)[0], signature: 'x' }] }, 400, 'BAD_REQUEST'],
        ['a key id as a string', { preKeys: [{ keyId: '1', publicKey: preKeys(1, 1)[0]!.publicKey }] }, 400, 'BAD_REQUEST'],
        ['a key id above u32', { preKeys: [{ keyId: 2 ** 32, publicKey: preKeys(1, 1)[0]!.publicKey }] }, 400, 'BAD_REQUEST'],
      ];
      for (const [name, body, status, code] of cases) {
        const before = h.snapshot();
        const res = await h.call<ErrorResponse>('PUT', '/v1/keys', body, a.auth);
        assert.equal(res.status, status, `${name}: ${JSON.stringify(res.body)}`);
        assert.equal(res.body.code, code, name);
        assert.deepEqual(h.snapshot(), before, name);
      }
      assert.equal((await h.call('PUT', '/v1/keys', { preKeys: preKeys(1, 100) }, a.auth)).status, 204);
      const before = h.snapshot();
      const full = await h.call<ErrorResponse>('PUT', '/v1/keys', { preKeys: preKeys(101, 51) }, a.auth);
      assert.equal(full.status, 413);
      assert.equal(full.body.code, 'TOO_MANY_KEYS');
      assert.deepEqual(h.snapshot(), before);
      assert.equal((await h.call('PUT', '/v1/keys', { preKeys: preKeys(101, 50) }, a.auth)).status, 204);
      assert.deepEqual(await counts(h, a.auth), { preKeys: 150, kyberPreKeys: 0 });
    } finally {
      await h.close();
    }
  });

  it('needs credentials', async () => {
    const h = await startHarness();
    try {
      assert.equal((await h.call<ErrorResponse>('PUT', '/v1/keys', { preKeys: [] })).body.code, 'UNAUTHORIZED');
      assert.equal((await h.call<ErrorResponse>('GET', '/v1/keys/count')).status, 401);
    } finally {
      await h.close();
    }
  });
});

describe('bundle claims', () => {
  it('claims one device and all devices; keys verify against the identity key; counts decrease', async () => {
    const h = await startHarness();
    try {
      const a1 = await h.register('alice', { oneTime: 3, registrationId: 111 });
      const a2 = await h.link(a1, { oneTime: 2, registrationId: 222 });
      const bob = await h.register('bob');

      const one = await h.call<BundleResponse>('GET', `/v1/keys/${a1.aci}/2`, undefined, bob.auth);
      assert.equal(one.status, 200);
      assert.equal(one.body.aci, a1.aci);
      assert.deepEqual(fromBase64Url(one.body.identityKey), a1.identity.identityKey);
      assert.equal(one.body.devices.length, 1);
      const d2 = one.body.devices[0]!;
      assert.equal(d2.deviceId, 2);
      assert.equal(d2.registrationId, 222);
      assert.equal(d2.preKey?.keyId, 1);
      assert.equal(d2.kyberPreKey.keyId, 100);
      for (const k of [d2.signedPreKey, d2.kyberPreKey]) {
        assert.ok(verifyPreKeySignature(a1.identity.identityKey, fromBase64Url(k.publicKey)!, fromBase64Url(k.signature)!));
      }
      assert.deepEqual(await counts(h, a2.auth), { preKeys: 1, kyberPreKeys: 1 });
      assert.deepEqual(await counts(h, a1.auth), { preKeys: 3, kyberPreKeys: 3 });

      const all = await h.call<BundleResponse>('GET', `/v1/keys/${a1.aci}/*`, undefined, bob.auth);
      assert.equal(all.status, 200);
      assert.deepEqual(all.body.devices.map((d) => [d.deviceId, d.registrationId, d.preKey?.keyId, d.kyberPreKey.keyId]), [
        [1, 111, 1, 100],
        [2, 222, 2, 101],
      ]);
      assert.deepEqual(await counts(h, a1.auth), { preKeys: 2, kyberPreKeys: 2 });
      assert.deepEqual(await counts(h, a2.auth), { preKeys: 0, kyberPreKeys: 0 });
    } finally {
      await h.close();
    }
  });

  it('falls back to the last-resort Kyber key and leaves out the EC prekey when one-time keys ran out', async () => {
    const h = await startHarness();
    try {
      const a = await h.register('alice', { oneTime: 1 });
      const bob = await h.register('bob');
      const first = await h.call<BundleResponse>('GET', `/v1/keys/${a.aci}/1`, undefined, bob.auth);
      assert.equal(first.body.devices[0]?.kyberPreKey.keyId, 100);
      assert.equal(first.body.devices[0]?.preKey?.keyId, 1);
      for (let i = 0; i < 2; i++) {
        const next = await h.call<BundleResponse>('GET', `/v1/keys/${a.aci}/1`, undefined, bob.auth);
        const d = next.body.devices[0]!;
        assert.equal(d.kyberPreKey.keyId, 1, 'the last-resort key');
        const lastResort = kyberPreKey(a.identity, 1);
        assert.equal(d.kyberPreKey.publicKey, lastResort.publicKey);
        assert.ok(verifyPreKeySignature(a.identity.identityKey, fromBase64Url(d.kyberPreKey.publicKey)!, fromBase64Url(d.kyberPreKey.signature)!));
        assert.equal('preKey' in d, false);
      }
      assert.deepEqual(await counts(h, a.auth), { preKeys: 0, kyberPreKeys: 0 });
    } finally {
      await h.close();
    }
  });

  it('a device claiming its own account\u2019s * gets its other devices only', async () => {
    const h = await startHarness();
    try {
      const a1 = await h.register('alice', { oneTime: 2 });
      const alone = await h.call<BundleResponse>('GET', `/v1/keys/${a1.aci}/*`, undefined, a1.auth);
      assert.equal(alone.status, 200);
      assert.deepEqual(alone.body.devices, []);
      const a2 = await h.link(a1, { oneTime: 2 });
      const res = await h.call<BundleResponse>('GET', `/v1/keys/${a1.aci}/*`, undefined, a2.auth);
      assert.deepEqual(res.body.devices.map((d) => d.deviceId), [1]);
      assert.deepEqual(await counts(h, a2.auth), { preKeys: 2, kyberPreKeys: 2 });
    } finally {
      await h.close();
    }
  });

  it('answers unknown accounts and devices with NOT_FOUND and malformed ids with BAD_REQUEST', async () => {
    const h = await startHarness();
    try {
      const a = await h.register('alice', { oneTime: 1 });
      const cases: Array<[string, number, string]> = [
        ['00000000-0000-4000-8000-000000000001/*', 404, 'NOT_FOUND'],
        [`${a.aci}/5`, 404, 'NOT_FOUND'],
        [`${a.aci}/0`, 400, 'BAD_REQUEST'],
        [`${a.aci}/500`, 400, 'BAD_REQUEST'],
        [`${a.aci}/1.5`, 400, 'BAD_REQUEST'],
        [`${a.aci}/**`, 400, 'BAD_REQUEST'],
        ['not-a-uuid/1', 400, 'BAD_REQUEST'],
      ];
      for (const [path, status, code] of cases) {
        const res = await h.call<ErrorResponse>('GET', `/v1/keys/${path}`, undefined, a.auth);
        assert.equal(res.status, status, path);
        assert.equal(res.body.code, code, path);
      }
      assert.equal((await h.call<ErrorResponse>('GET', `/v1/keys/${a.aci}/1`)).status, 401);
      assert.deepEqual(await counts(h, a.auth), { preKeys: 1, kyberPreKeys: 1 });
    } finally {
      await h.close();
    }
  });

  it('50 concurrent claims over real HTTP never hand out a one-time key twice', async () => {
    const clock = new ManualClock();
    const keyServer = createKeyServer({ store: openSqliteKeyStore(dbPath()), clock });
    const app = Fastify({ logger: false });
    keyServer.registerRoutes(app);
    const base = await app.listen({ port: 0, host: '127.0.0.1' });
    try {
      const post = async (path: string, body: unknown, auth?: string) => {
        const res = await fetch(base + path, { method: 'POST', headers: { 'content-type': 'application/json', ...(auth ? { authorization: auth } : {}) }, body: JSON.stringify(body) });
        return { status: res.status, body: (await res.json()) as { aci: string } };
      };
      const target = registration('target');
      // 40 of each kind: the first 40 claims get one-time keys, the last 10 the fallbacks.
      const put = { ...target.body, preKeys: preKeys(1, 40), kyberPreKeys: kyberPreKeys(target.identity, 1000, 40) };
      const t = await post('/v1/accounts', put);
      assert.equal(t.status, 200);
      const r = registration('requester');
      const req = await post('/v1/accounts', r.body);
      const auth = authHeader(req.body.aci, 1, r.secret);

      const answers = await Promise.all(
        Array.from({ length: 50 }, async () => {
          const res = await fetch(`${base}/v1/keys/${t.body.aci}/1`, { headers: { authorization: auth } });
          assert.equal(res.status, 200);
          return ((await res.json()) as BundleResponse).devices[0]!;
        }),
      );
      const ec = answers.flatMap((d) => (d.preKey ? [d.preKey.keyId] : []));
      const kyber = answers.map((d) => d.kyberPreKey.keyId).filter((id) => id !== 1);
      assert.equal(ec.length, 40);
      assert.equal(new Set(ec).size, 40, 'an EC prekey was handed out twice');
      assert.equal(kyber.length, 40);
      assert.equal(new Set(kyber).size, 40, 'a Kyber prekey was handed out twice');
      assert.equal(answers.filter((d) => d.kyberPreKey.keyId === 1 && d.preKey === undefined).length, 10);
    } finally {
      await app.close();
      await keyServer.close();
    }
  });
});
