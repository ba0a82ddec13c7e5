// SPDX-License-Identifier: AGPL-3.0-only
/**
 * PUT and DELETE /v1/devices/me/push: a device registers the token its platform's push service
 * gave its app (APNs or FCM), strictly checked per provider, rate limited per device, never
 * logged; a token moves to the device that registers it last and goes with a removed device.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import Fastify from 'fastify';
import type { Aci, DeviceId, ErrorResponse, RegisterAccountResponse } from '@parley/protocol';
import { createKeyServer, openSqliteKeyStore, type KeyServerLog } from '../src/index.js';
import { authHeader, registration } from './fixtures.js';
import { ManualClock, startHarness, T0 } from './harness.js';

const dir = mkdtempSync(join(tmpdir(), 'parley-ks-push-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const dbPath = () => join(dir, `keys-${++n}.db`);
const ROUTE = '/v1/devices/me/push';
const apnsToken = () => randomBytes(32).toString('hex');
const fcmToken = () => `${randomBytes(8).toString('base64url')}:APA91b${randomBytes(100).toString('base64url')}`;
const dev = (d: number) => d as DeviceId;

describe('push tokens over REST', () => {
  it('registers a device\u2019s APNs token (lowercased), replaces it with an FCM token, and removes it', async () => {
    const h = await startHarness();
    try {
      const alice = await h.register('alice');
      const aci = alice.aci as Aci;
      const upper = apnsToken().toUpperCase();
      assert.equal((await h.call('PUT', ROUTE, { provider: 'apns', token: upper }, alice.auth)).status, 204);
      assert.deepEqual(await h.store.getPushToken(aci, dev(1)), { provider: 'apns', token: upper.toLowerCase(), updatedAt: T0 });
      const fcm = fcmToken();
      h.clock.advance(1000);
      assert.equal((await h.call('PUT', ROUTE, { provider: 'fcm', token: fcm }, alice.auth)).status, 204);
      assert.deepEqual(await h.store.getPushToken(aci, dev(1)), { provider: 'fcm', token: fcm, updatedAt: T0 + 1000 });
      assert.equal((await h.call('DELETE', ROUTE, undefined, alice.auth)).status, 204);
      assert.equal(await h.store.getPushToken(aci, dev(1)), undefined);
      assert.equal((await h.call('DELETE', ROUTE, undefined, alice.auth)).status, 204, 'removing none is fine');
    } finally {
      await h.close();
    }
  });

  it('gives each device its own token, moves a token to the device that registers it, and drops it with a removed device', async () => {
    const h = await startHarness();
    try {
      const a1 = await h.register('alice');
      const a2 = await h.link(a1);
      const bob = await h.register('bob');
      const aci = a1.aci as Aci;
      const t1 = apnsToken();
      const t2 = apnsToken();
      await h.call('PUT', ROUTE, { provider: 'apns', token: t1 }, a1.auth);
      await h.call('PUT', ROUTE, { provider: 'apns', token: t2 }, a2.auth);
      assert.equal((await h.store.getPushToken(aci, dev(1)))?.token, t1);
      assert.equal((await h.store.getPushToken(aci, dev(2)))?.token, t2);
      // The phone was reset and bob signed in on it: the token is his device's now.
      await h.call('PUT', ROUTE, { provider: 'apns', token: t1 }, bob.auth);
      assert.equal(await h.store.getPushToken(aci, dev(1)), undefined);
      assert.equal((await h.store.getPushToken(bob.aci as Aci, dev(1)))?.token, t1);
      assert.equal((await h.call('DELETE', '/v1/devices/2', undefined, a1.auth)).status, 204);
      assert.equal(await h.store.getPushToken(aci, dev(2)), undefined, 'a removed device\u2019s token goes with it');
    } finally {
      await h.close();
    }
  });

  it('refuses malformed requests and missing credentials with typed errors, stores nothing and echoes no token', async () => {
    const h = await startHarness({}, dbPath());
    try {
      const alice = await h.register('alice');
      const good = apnsToken();
      await h.call('PUT', ROUTE, { provider: 'apns', token: good }, alice.auth);
      const before = h.snapshot();
      const hex = apnsToken();
      const cases: Array<[string, unknown, string | undefined, number, string]> = [
        ['no provider', { token: hex }, alice.auth, 400, 'BAD_REQUEST'],
        ['an unknown provider', { provider: 'gcm', token: hex }, alice.auth, 400, 'BAD_REQUEST'],
        ['a provider in capitals', { provider: 'APNS', token: hex }, alice.auth, 400, 'BAD_REQUEST'],
        ['no token', { provider: 'apns' }, alice.auth, 400, 'BAD_REQUEST'],
        ['an empty token', { provider: 'fcm', token: '' }, alice.auth, 400, 'BAD_REQUEST'],
        ['a token as a number', { provider: 'fcm', token: 12345 }, alice.auth, 400, 'BAD_REQUEST'],
        ['an APNs token that is not hex', { provider: 'apns', token: 'zz'.repeat(32) }, alice.auth, 400, 'BAD_REQUEST'],
        ['an APNs token of 31 bytes', { provider: 'apns', token: hex.slice(0, 62) }, alice.auth, 400, 'BAD_REQUEST'],
        ['an APNs token of an odd length', { provider: 'apns', token: hex + 'a' }, alice.auth, 400, 'BAD_REQUEST'],
        ['an APNs token of 101 bytes', { provider: 'apns', token: 'ab'.repeat(101) }, alice.auth, 400, 'BAD_REQUEST'],
        ['a path in the token', { provider: 'apns', token: `${hex}/../x` }, alice.auth, 400, 'BAD_REQUEST'],
        ['an FCM token of 31 characters', { provider: 'fcm', token: 'a'.repeat(31) }, alice.auth, 400, 'BAD_REQUEST'],
        ['an FCM token with a space', { provider: 'fcm', token: `${fcmToken()} x` }, alice.auth, 400, 'BAD_REQUEST'],
        ['an FCM token over 4096 characters', { provider: 'fcm', token: 'a'.repeat(4097) }, alice.auth, 400, 'BAD_REQUEST'],
        ['an extra field', { provider: 'apns', token: hex, topic: 'x' }, alice.auth, 400, 'BAD_REQUEST'],
        ['an array', [{ provider: 'apns', token: hex }], alice.auth, 400, 'BAD_REQUEST'],
        ['not JSON', '{"provider":', alice.auth, 400, 'BAD_REQUEST'],
        ['a body over 8 KiB', { provider: 'fcm', token: 'a'.repeat(9000) }, alice.auth, 413, 'FRAME_TOO_LARGE'],
        ['no credentials', { provider: 'apns', token: hex }, undefined, 401, 'UNAUTHORIZED'],
        ['wrong credentials', { provider: 'apns', token: hex }, authHeader(alice.aci, 1, new Uint8Array(32)), 401, 'UNAUTHORIZED'],
      ];
      for (const [what, body, auth, status, code] of cases) {
        const res = await h.call<ErrorResponse>('PUT', ROUTE, body, auth);
        assert.equal(res.status, status, what);
        assert.equal(res.body.code, code, what);
        assert.ok(!JSON.stringify(res.body).includes(hex), `${what}: the answer does not echo the token`);
      }
      assert.equal((await h.call<ErrorResponse>('DELETE', ROUTE, undefined, undefined)).status, 401);
      assert.equal((await h.call<ErrorResponse>('DELETE', ROUTE, { provider: 'apns' }, alice.auth)).status, 400, 'DELETE takes no body');
      assert.deepEqual(h.snapshot(), before, 'nothing changed');
      assert.equal((await h.store.getPushToken(alice.aci as Aci, dev(1)))?.token, good);
    } finally {
      await h.close();
    }
  });

  it('limits push token changes per device (PUT and DELETE share the bucket)', async () => {
    const h = await startHarness({ rateLimits: { pushToken: { capacity: 3, windowMs: 60_000 } } });
    try {
      const a1 = await h.register('alice');
      const a2 = await h.link(a1);
      const t = apnsToken();
      assert.equal((await h.call('PUT', ROUTE, { provider: 'apns', token: t }, a1.auth)).status, 204);
      assert.equal((await h.call('DELETE', ROUTE, undefined, a1.auth)).status, 204);
      assert.equal((await h.call('PUT', ROUTE, { provider: 'apns', token: t }, a1.auth)).status, 204);
      const limited = await h.call<ErrorResponse>('PUT', ROUTE, { provider: 'apns', token: apnsToken() }, a1.auth);
      assert.equal(limited.status, 429);
      assert.equal(limited.body.code, 'RATE_LIMITED');
      assert.equal(limited.body.retryAfterMs, 20_000);
      assert.equal((await h.store.getPushToken(a1.aci as Aci, dev(1)))?.token, t, 'the refused PUT changed nothing');
      assert.equal((await h.call('PUT', ROUTE, { provider: 'apns', token: apnsToken() }, a2.auth)).status, 204, 'the other device has its own bucket');
      h.clock.advance(20_000);
      assert.equal((await h.call('DELETE', ROUTE, undefined, a1.auth)).status, 204);
    } finally {
      await h.close();
    }
  });

  it('logs the registration by provider and device, never the token', async () => {
    const lines: string[] = [];
    const log: KeyServerLog = {
      info: (f, m) => lines.push(JSON.stringify({ ...f, m })),
      warn: (f, m) => lines.push(JSON.stringify({ ...f, m })),
      error: (f, m) => lines.push(JSON.stringify({ ...f, m })),
    };
    const keyServer = createKeyServer({ store: openSqliteKeyStore(':memory:'), clock: new ManualClock(), log });
    const app = Fastify({ logger: false });
    keyServer.registerRoutes(app);
    try {
      const r = registration('alice');
      const reg = await app.inject({ method: 'POST', url: '/v1/accounts', payload: r.body });
      const body = JSON.parse(reg.body) as RegisterAccountResponse;
      const auth = authHeader(body.aci, body.deviceId, r.secret);
      const token = fcmToken();
      const put = await app.inject({ method: 'PUT', url: ROUTE, payload: { provider: 'fcm', token }, headers: { authorization: auth } });
      assert.equal(put.statusCode, 204);
      await app.inject({ method: 'DELETE', url: ROUTE, headers: { authorization: auth } });
      const registered = lines.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.m === 'push token registered');
      assert.deepEqual(registered, { aci: body.aci, deviceId: 1, provider: 'fcm', m: 'push token registered' });
      assert.ok(lines.some((l) => l.includes('push token removed')));
      assert.ok(!lines.join('\n').includes(token), 'the token is in no log line');
    } finally {
      await app.close();
      await keyServer.close();
    }
  });
});
