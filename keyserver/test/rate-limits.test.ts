// SPDX-License-Identifier: AGPL-3.0-only
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { formatBasicAuth, type ErrorResponse } from '@parley/protocol';
import { registration } from './fixtures.js';
import { startHarness } from './harness.js';

const limited = (res: { status: number; body: ErrorResponse; headers: Record<string, unknown> }, retryAfterMs?: number) => {
  assert.equal(res.status, 429, JSON.stringify(res.body));
  assert.equal(res.body.code, 'RATE_LIMITED');
  assert.equal(typeof res.body.retryAfterMs, 'number');
  assert.ok(res.body.retryAfterMs! >= 1);
  if (retryAfterMs !== undefined) assert.equal(res.body.retryAfterMs, retryAfterMs);
  assert.equal(res.headers['retry-after'], String(Math.ceil(res.body.retryAfterMs! / 1000)));
};

describe('rate limits', () => {
  it('limits registrations per client address', async () => {
    const h = await startHarness({ rateLimits: { register: { capacity: 2, windowMs: 60_000 } } });
    try {
      assert.equal((await h.call('POST', '/v1/accounts', registration('user1').body, undefined, '192.0.2.1')).status, 200);
      // A refused registration counts too.
      assert.equal((await h.call('POST', '/v1/accounts', registration('user1').body, undefined, '192.0.2.1')).status, 409);
      limited(await h.call<ErrorResponse>('POST', '/v1/accounts', registration('user2').body, undefined, '192.0.2.1'), 30_000);
      assert.equal(await h.store.findAccountByUsername('user2'), undefined);
      assert.equal((await h.call('POST', '/v1/accounts', registration('user3').body, undefined, '192.0.2.2')).status, 200);
      h.clock.advance(30_000);
      assert.equal((await h.call('POST', '/v1/accounts', registration('user2').body, undefined, '192.0.2.1')).status, 200);
    } finally {
      await h.close();
    }
  });

  it('after too many failed authentications refuses every attempt from that address, right ones too', async () => {
    const h = await startHarness({ rateLimits: { failedAuth: { capacity: 3, windowMs: 3000 } } });
    try {
      const a = await h.register('alice');
      const wrong = formatBasicAuth(a.aci, 1, new Uint8Array(randomBytes(32)));
      for (let i = 0; i < 3; i++) assert.equal((await h.call('GET', '/v1/accounts/me', undefined, wrong, '192.0.2.9')).status, 401);
      limited(await h.call<ErrorResponse>('GET', '/v1/accounts/me', undefined, wrong, '192.0.2.9'), 1000);
      limited(await h.call<ErrorResponse>('GET', '/v1/accounts/me', undefined, a.auth, '192.0.2.9'));
      await assert.rejects(h.keyServer.directory.authenticate(a.auth, '192.0.2.9'), { code: 'RATE_LIMITED' });
      // Other addresses are not affected; successes never count.
      for (let i = 0; i < 5; i++) assert.equal((await h.call('GET', '/v1/accounts/me', undefined, a.auth, '192.0.2.10')).status, 200);
      h.clock.advance(1000);
      assert.equal((await h.call('GET', '/v1/accounts/me', undefined, a.auth, '192.0.2.9')).status, 200);
    } finally {
      await h.close();
    }
  });

  it('limits bundle claims per requester and per target', async () => {
    const h = await startHarness({
      rateLimits: { claimPerRequester: { capacity: 2, windowMs: 10_000 }, claimPerTarget: { capacity: 3, windowMs: 10_000 } },
    });
    try {
      const target = await h.register('target', { oneTime: 5 });
      const other = await h.register('other', { oneTime: 5 });
      const r1 = await h.register('req1');
      const r2 = await h.register('req2');
      const claim = (auth: string, aci: string) => h.call<ErrorResponse>('GET', `/v1/keys/${aci}/*`, undefined, auth);
      assert.equal((await claim(r1.auth, target.aci)).status, 200);
      assert.equal((await claim(r1.auth, other.aci)).status, 200);
      limited(await claim(r1.auth, other.aci), 5000);
      assert.equal((await claim(r2.auth, target.aci)).status, 200);
      assert.equal((await claim(r2.auth, target.aci)).status, 200);
      // r2 has a token left, but target has none: draining one account is limited across requesters.
      limited(await claim(r2.auth, target.aci));
      const counts = await h.store.countKeys(target.aci as never, 1 as never);
      assert.deepEqual(counts, { preKeys: 2, kyberPreKeys: 2 });
    } finally {
      await h.close();
    }
  });

  it('limits username lookups per account and link tokens per account', async () => {
    const h = await startHarness({ rateLimits: { directory: { capacity: 2, windowMs: 1000 }, linkToken: { capacity: 1, windowMs: 1000 } } });
    try {
      const a = await h.register('alice');
      assert.equal((await h.call('GET', '/v1/directory/alice', undefined, a.auth)).status, 200);
      assert.equal((await h.call('GET', '/v1/directory/nobody', undefined, a.auth)).status, 404);
      limited(await h.call<ErrorResponse>('GET', '/v1/directory/alice', undefined, a.auth));
      assert.equal((await h.call('POST', '/v1/devices/link-tokens', {}, a.auth)).status, 200);
      limited(await h.call<ErrorResponse>('POST', '/v1/devices/link-tokens', {}, a.auth));
    } finally {
      await h.close();
    }
  });

  it('limits linking attempts per client address', async () => {
    const h = await startHarness({ rateLimits: { linkDevice: { capacity: 1, windowMs: 1000 } } });
    try {
      const body = { token: 'x'.repeat(43), registrationId: 1, authSecret: 'y'.repeat(43) };
      assert.equal((await h.call('POST', '/v1/devices', body, undefined, '192.0.2.50')).status, 400);
      limited(await h.call<ErrorResponse>('POST', '/v1/devices', body, undefined, '192.0.2.50'));
    } finally {
      await h.close();
    }
  });
});
