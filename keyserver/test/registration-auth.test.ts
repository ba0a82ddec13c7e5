// SPDX-License-Identifier: AGPL-3.0-only
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { formatBasicAuth, toBase64, toBase64Url, utf8, type AccountInfoResponse, type ErrorResponse } from '@parley/protocol';
import { flipBit, kyberPreKey, newIdentity, preKeys, registration, signedPreKey } from './fixtures.js';
import { startHarness, type Harness, type TestDevice } from './harness.js';

const dir = mkdtempSync(join(tmpdir(), 'parley-ks-reg-'));
after(() => rmSync(dir, { recursive: true, force: true }));

describe('registration and authentication', () => {
  let h: Harness;
  let alice: TestDevice;
  before(async () => {
    h = await startHarness({}, join(dir, 'keys.db'));
    alice = await h.register('Alice', { oneTime: 3 });
  });
  after(() => h.close());

  it('registers an account with a random ACI, device 1 and a lowercased username', async () => {
    assert.match(alice.aci, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    assert.equal(alice.deviceId, 1);
    const me = await h.call<AccountInfoResponse>('GET', '/v1/accounts/me', undefined, alice.auth);
    assert.equal(me.status, 200);
    assert.deepEqual(me.body, { aci: alice.aci, username: 'alice', deviceId: 1 });
    const account = await h.store.getAccount(alice.aci as never);
    assert.deepEqual(account?.identityKey, alice.identity.identityKey);
    assert.equal(account?.createdAt, h.clock.now());
  });

  it('stores only a hash of the auth secret', async () => {
    const device = await h.store.getDevice(alice.aci as never, 1 as never);
    assert.equal(device?.secretHash.length, 32);
    assert.notDeepEqual(device?.secretHash, alice.secret);
  });

  it('gives two accounts different ACIs', async () => {
    const bob = await h.register('bob');
    assert.notEqual(bob.aci, alice.aci);
  });

  it('refuses a taken username, whatever its case, and creates nothing', async () => {
    const before = h.snapshot();
    const res = await h.call<ErrorResponse>('POST', '/v1/accounts', registration('ALICE').body);
    assert.equal(res.status, 409);
    assert.equal(res.body.code, 'USERNAME_TAKEN');
    assert.deepEqual(h.snapshot(), before);
  });

  describe('refused credentials are indistinguishable', () => {
    const bodies: string[] = [];
    const cases: Array<[string, () => string | undefined]> = [
      ['no header', () => undefined],
      ['not Basic', () => 'Bearer abc'],
      ['garbage base64', () => 'Basic %%%'],
      ['no separator', () => 'Basic ' + toBase64(utf8('not-a-credential'))],
      ['a short secret', () => formatBasicAuth(alice.aci, 1, new Uint8Array(16))],
      ['a wrong secret', () => formatBasicAuth(alice.aci, 1, new Uint8Array(randomBytes(32)))],
      ['an unknown device', () => formatBasicAuth(alice.aci, 9, alice.secret)],
      ['an unknown account', () => formatBasicAuth('00000000-0000-4000-8000-000000000000', 1, alice.secret)],
      ['device id 0', () => formatBasicAuth(alice.aci, 0, alice.secret)],
    ];
    for (const [name, header] of cases) {
      it(`${name} → 401 UNAUTHORIZED`, async () => {
        const res = await h.call<ErrorResponse>('GET', '/v1/accounts/me', undefined, header(), `198.51.100.${bodies.length + 1}`);
        assert.equal(res.status, 401);
        assert.equal(res.body.code, 'UNAUTHORIZED');
        bodies.push(JSON.stringify(res.body));
      });
    }
    it('every refusal has the same body', () => {
      assert.equal(bodies.length, cases.length);
      assert.equal(new Set(bodies).size, 1, bodies.join(' | '));
    });
  });

  it('the directory authenticates the same header the routes accept, and refuses a wrong one', async () => {
    assert.deepEqual(await h.keyServer.directory.authenticate(alice.auth, 'ip'), { aci: alice.aci, deviceId: 1 });
    await assert.rejects(h.keyServer.directory.authenticate(formatBasicAuth(alice.aci, 1, new Uint8Array(32)), 'ip'), { code: 'UNAUTHORIZED' });
  });

  describe('bad registrations get a typed error and change nothing', () => {
    const flipped = (field: 'signedPreKey' | 'lastResortKyberPreKey') => {
      const r = registration('carol').body;
      return { ...r, [field]: { ...r[field], signature: flipBit(r[field].signature) } };
    };
    const other = newIdentity();
    const cases: Array<[string, () => unknown, number, string]> = [
      ['malformed JSON', () => '{"username": ', 400, 'BAD_REQUEST'],
      ['an empty body', () => '', 400, 'BAD_REQUEST'],
      ['a JSON array', () => [], 400, 'BAD_REQUEST'],
      ['a bad username', () => registration('9 bad name').body, 400, 'BAD_REQUEST'],
      ['a too long username', () => registration('a'.repeat(33)).body, 400, 'BAD_REQUEST'],
      ['an unknown field', () => ({ ...registration('carol').body, admin: true }), 400, 'BAD_REQUEST'],
      ['a missing field', () => ({ ...registration('carol').body, lastResortKyberPreKey: undefined }), 400, 'BAD_REQUEST'],
      ['a registration id as a string', () => ({ ...registration('carol').body, registrationId: '1234' }), 400, 'BAD_REQUEST'],
      ['registration id 0', () => registration('carol', { registrationId: 0 }).body, 400, 'BAD_REQUEST'],
      ['registration id 16384', () => registration('carol', { registrationId: 16384 }).body, 400, 'BAD_REQUEST'],
      ['a short auth secret', () => ({ ...registration('carol').body, authSecret: toBase64Url(new Uint8Array(16)) }), 400, 'BAD_REQUEST'],
      // 33 bytes encode to 44 characters without padding, so pad explicitly: a key sent with the
      // wrong alphabet or padding must be refused as malformed, not decoded into some other key.
      ['padded base64 in a key', () => ({ ...registration('carol').body, identityKey: `${toBase64Url(newIdentity().identityKey)}=` }), 400, 'BAD_REQUEST'],
      ['standard base64 alphabet in a key', () => ({ ...registration('carol').body, identityKey: toBase64Url(newIdentity().identityKey).replace(/.$/, '+') }), 400, 'BAD_REQUEST'],
      ['key id 0', () => ({ ...registration('carol').body, signedPreKey: { ...signedPreKey(other), keyId: 0 } }), 400, 'BAD_REQUEST'],
      ['a fractional key id', () => ({ ...registration('carol').body, signedPreKey: { ...signedPreKey(other), keyId: 1.5 } }), 400, 'BAD_REQUEST'],
      ['an identity key that is no key', () => ({ ...registration('carol').body, identityKey: toBase64Url(new Uint8Array(33).fill(9)) }), 422, 'INVALID_KEY'],
      ['a Kyber key that is no key', () => {
        const r = registration('carol');
        const bogus = new Uint8Array(1569).fill(3);
        return { ...r.body, lastResortKyberPreKey: { keyId: 1, publicKey: toBase64Url(bogus), signature: toBase64Url(r.identity.sign(bogus)) } };
      }, 422, 'INVALID_KEY'],
      ['an invalid signed prekey signature', () => flipped('signedPreKey'), 422, 'INVALID_SIGNATURE'],
      ['an invalid Kyber prekey signature', () => flipped('lastResortKyberPreKey'), 422, 'INVALID_SIGNATURE'],
      ['keys signed by another identity', () => ({ ...registration('carol').body, signedPreKey: signedPreKey(other), lastResortKyberPreKey: kyberPreKey(other) }), 422, 'INVALID_SIGNATURE'],
      ['101 one-time prekeys', () => ({ ...registration('carol').body, preKeys: preKeys(1, 101) }), 413, 'TOO_MANY_KEYS'],
      ['a duplicate one-time key id', () => ({ ...registration('carol').body, preKeys: [...preKeys(1, 2), ...preKeys(1, 1)] }), 400, 'BAD_REQUEST'],
      ['a body over the limit', () => ({ ...registration('carol').body, username: 'x'.repeat(600 * 1024) }), 413, 'FRAME_TOO_LARGE'],
    ];
    for (const [name, body, status, code] of cases) {
      it(`${name} → ${status} ${code}`, async () => {
        const before = h.snapshot();
        const res = await h.call<ErrorResponse>('POST', '/v1/accounts', body(), undefined, '203.0.113.7');
        assert.equal(res.status, status, JSON.stringify(res.body));
        assert.equal(res.body.code, code);
        assert.equal(typeof res.body.message, 'string');
        assert.deepEqual(Object.keys(res.body).sort(), ['code', 'message']);
        assert.deepEqual(h.snapshot(), before);
      });
    }
  });

  it('answers a wrong content type with BAD_REQUEST', async () => {
    const res = await h.app.inject({ method: 'POST', url: '/v1/accounts', payload: 'username=x', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    assert.equal(res.statusCode, 400);
    assert.equal(res.json<ErrorResponse>().code, 'BAD_REQUEST');
  });
});
