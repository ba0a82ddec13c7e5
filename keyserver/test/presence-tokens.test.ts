// SPDX-License-Identifier: AGPL-3.0-only
/**
 * PUT and DELETE /v1/accounts/me/presence: strict input, only a hash stored, a rate limit per
 * account, change notifications for the relay, and the directory's constant-time check that
 * answers the same for a wrong token, an unknown account and presence turned off.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { toBase64Url, type Aci, type ErrorResponse } from '@parley/protocol';
import type { PresenceTokenChange } from '../src/index.js';
import { startHarness } from './harness.js';

const dir = mkdtempSync(join(tmpdir(), 'parley-ks-presence-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const dbPath = () => join(dir, `keys-${++n}.db`);
const token = () => new Uint8Array(randomBytes(32));
const ROUTE = '/v1/accounts/me/presence';

describe('presence tokens over REST', () => {
  it('stores only the token\u2019s hash, checks it in the directory, and tells listeners about changes', async () => {
    const path = dbPath();
    const h = await startHarness({}, path);
    try {
      const alice = await h.register('alice');
      const bob = await h.register('bob');
      const aci = alice.aci as Aci;
      const changes: PresenceTokenChange[] = [];
      h.keyServer.directory.onPresenceTokenChange((e) => changes.push(e));
      const dir = h.keyServer.directory;

      const t1 = token();
      assert.equal(await dir.presenceTokenMatches(aci, t1), false, 'presence is off until a token is set');
      assert.equal((await h.call('PUT', ROUTE, { token: toBase64Url(t1) }, alice.auth)).status, 204);
      assert.equal(await dir.presenceTokenMatches(aci, t1), true);
      assert.equal(await dir.presenceTokenMatches(bob.aci as Aci, t1), false, 'the token is alice\u2019s, not bob\u2019s');
      assert.deepEqual(changes, [{ aci }]);

      // The database holds SHA-256 of the token, never the token.
      await h.keyServer.close();
      const file = readFileSync(path);
      assert.equal(file.includes(Buffer.from(t1)), false, 'the token is not in keys.db');
      assert.equal(file.includes(createHash('sha256').update(t1).digest()), true, 'its hash is');
    } finally {
      await h.close();
    }
  });

  it('a rotation refuses the old token at once; the same token again is no change; DELETE turns presence off', async () => {
    const h = await startHarness();
    try {
      const alice = await h.register('alice');
      const aci = alice.aci as Aci;
      const dir = h.keyServer.directory;
      const changes: PresenceTokenChange[] = [];
      dir.onPresenceTokenChange((e) => changes.push(e));
      const [t1, t2] = [token(), token()];
      await h.call('PUT', ROUTE, { token: toBase64Url(t1) }, alice.auth);
      assert.equal((await h.call('PUT', ROUTE, { token: toBase64Url(t1) }, alice.auth)).status, 204);
      assert.equal(changes.length, 1, 'setting the same token again announces nothing');
      await h.call('PUT', ROUTE, { token: toBase64Url(t2) }, alice.auth);
      assert.equal(changes.length, 2, 'a rotation is announced');
      assert.equal(await dir.presenceTokenMatches(aci, t1), false, 'the old token is refused');
      assert.equal(await dir.presenceTokenMatches(aci, t2), true);

      assert.equal((await h.call('DELETE', ROUTE, undefined, alice.auth)).status, 204);
      assert.equal(changes.length, 3, 'presence off is announced');
      assert.equal(await dir.presenceTokenMatches(aci, t2), false, 'off: the last token is refused too');
      assert.equal((await h.call('DELETE', ROUTE, undefined, alice.auth)).status, 204, 'off twice is fine');
      assert.equal(changes.length, 3, 'and announces nothing');
    } finally {
      await h.close();
    }
  });

  it('refuses malformed tokens and missing credentials with typed errors and changes nothing', async () => {
    const h = await startHarness({}, dbPath());
    try {
      const alice = await h.register('alice');
      const good = token();
      await h.call('PUT', ROUTE, { token: toBase64Url(good) }, alice.auth);
      const changes: PresenceTokenChange[] = [];
      h.keyServer.directory.onPresenceTokenChange((e) => changes.push(e));
      const before = h.snapshot();
      const b64 = toBase64Url(token());
      const cases: Array<[string, unknown, string | undefined, number, string]> = [
        ['31 bytes', { token: toBase64Url(new Uint8Array(31)) }, alice.auth, 400, 'BAD_REQUEST'],
        ['33 bytes', { token: toBase64Url(new Uint8Array(33)) }, alice.auth, 400, 'BAD_REQUEST'],
        ['padded base64', { token: Buffer.from(token()).toString('base64') }, alice.auth, 400, 'BAD_REQUEST'],
        ['standard alphabet', { token: '+'.repeat(42) + 'A' }, alice.auth, 400, 'BAD_REQUEST'],
        ['non-canonical last character', { token: b64.slice(0, 42) + 'B' }, alice.auth, 400, 'BAD_REQUEST'],
        ['a number', { token: 42 }, alice.auth, 400, 'BAD_REQUEST'],
        ['no token', {}, alice.auth, 400, 'BAD_REQUEST'],
        ['an extra field', { token: b64, state: 'online' }, alice.auth, 400, 'BAD_REQUEST'],
        ['not JSON', '{"token":', alice.auth, 400, 'BAD_REQUEST'],
        ['no credentials', { token: b64 }, undefined, 401, 'UNAUTHORIZED'],
      ];
      for (const [what, body, auth, status, code] of cases) {
        const res = await h.call<ErrorResponse>('PUT', ROUTE, body, auth);
        assert.equal(res.status, status, what);
        assert.equal(res.body.code, code, what);
      }
      const del = await h.call<ErrorResponse>('DELETE', ROUTE, undefined, undefined);
      assert.equal(del.status, 401);
      const delWithBody = await h.call<ErrorResponse>('DELETE', ROUTE, { token: b64 }, alice.auth);
      assert.equal(delWithBody.status, 400, 'DELETE takes no body');
      assert.deepEqual(h.snapshot(), before, 'nothing changed');
      assert.deepEqual(changes, []);
      assert.equal(await h.keyServer.directory.presenceTokenMatches(alice.aci as Aci, good), true);
    } finally {
      await h.close();
    }
  });

  it('limits presence token changes per account (PUT and DELETE share the bucket)', async () => {
    const h = await startHarness({ rateLimits: { presenceToken: { capacity: 3, windowMs: 60_000 } } });
    try {
      const alice = await h.register('alice');
      const bob = await h.register('bob');
      const t = toBase64Url(token());
      assert.equal((await h.call('PUT', ROUTE, { token: t }, alice.auth)).status, 204);
      assert.equal((await h.call('DELETE', ROUTE, undefined, alice.auth)).status, 204);
      assert.equal((await h.call('PUT', ROUTE, { token: t }, alice.auth)).status, 204);
      const limited = await h.call<ErrorResponse>('PUT', ROUTE, { token: toBase64Url(token()) }, alice.auth);
      assert.equal(limited.status, 429);
      assert.equal(limited.body.code, 'RATE_LIMITED');
      assert.equal(limited.body.retryAfterMs, 20_000);
      assert.equal(await h.keyServer.directory.presenceTokenMatches(alice.aci as Aci, Buffer.from(t, 'base64url')), true, 'the refused PUT changed nothing');
      assert.equal((await h.call('PUT', ROUTE, { token: t }, bob.auth)).status, 204, 'bob has his own bucket');
      h.clock.advance(20_000);
      assert.equal((await h.call('DELETE', ROUTE, undefined, alice.auth)).status, 204);
    } finally {
      await h.close();
    }
  });

  it('answers false for wrong-length tokens without touching the store\u2019s answer', async () => {
    const h = await startHarness();
    try {
      const alice = await h.register('alice');
      const t = token();
      await h.call('PUT', ROUTE, { token: toBase64Url(t) }, alice.auth);
      const dir = h.keyServer.directory;
      assert.equal(await dir.presenceTokenMatches(alice.aci as Aci, t.subarray(0, 31)), false);
      assert.equal(await dir.presenceTokenMatches(alice.aci as Aci, new Uint8Array(0)), false);
      assert.equal(await dir.presenceTokenMatches('00000000-0000-4000-8000-000000000000' as Aci, t), false, 'unknown account');
    } finally {
      await h.close();
    }
  });
});
