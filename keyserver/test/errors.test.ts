// SPDX-License-Identifier: AGPL-3.0-only
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import Fastify from 'fastify';
import { ParleyError, type ErrorResponse } from '@parley/protocol';
import { createKeyServer, keyServerErrorHandler, openSqliteKeyStore, toParleyError, type KeyStore } from '../src/index.js';
import { ManualClock } from './harness.js';
import { registration } from './fixtures.js';

describe('error mapping', () => {
  it('maps ParleyErrors as they are, validation to BAD_REQUEST, oversize to FRAME_TOO_LARGE, the rest to INTERNAL', () => {
    const p = new ParleyError('DEVICE_LIMIT', 'full');
    assert.equal(toParleyError(p), p);
    assert.equal(toParleyError(Object.assign(new Error('body/x must be string'), { validation: [], statusCode: 400 })).code, 'BAD_REQUEST');
    assert.equal(toParleyError(Object.assign(new Error('too big'), { code: 'FST_ERR_CTP_BODY_TOO_LARGE', statusCode: 413 })).code, 'FRAME_TOO_LARGE');
    assert.equal(toParleyError(Object.assign(new Error('bad json'), { code: 'FST_ERR_CTP_INVALID_JSON_BODY', statusCode: 400 })).code, 'BAD_REQUEST');
    const internal = toParleyError(new Error('SQLITE_CORRUPT: database disk image is malformed at /srv/keys.db'));
    assert.equal(internal.code, 'INTERNAL');
    assert.equal(internal.message, 'internal error');
    assert.equal(toParleyError('a string').code, 'INTERNAL');
    assert.equal(toParleyError(undefined).code, 'INTERNAL');
  });

  it('answers an unexpected failure with 500 INTERNAL and nothing of its cause', async () => {
    const store = openSqliteKeyStore(':memory:');
    const broken: KeyStore = Object.assign(Object.create(store) as KeyStore, {
      findAccountByUsername: async () => {
        throw new Error('SQLITE_IOERR: disk I/O error at /var/lib/parley/keys.db secret=hunter2');
      },
    });
    const keyServer = createKeyServer({ store: broken, clock: new ManualClock() });
    const app = Fastify({ logger: false });
    keyServer.registerRoutes(app);
    try {
      const res = await app.inject({ method: 'POST', url: '/v1/accounts', payload: registration('alice').body });
      assert.equal(res.statusCode, 500);
      assert.deepEqual(res.json<ErrorResponse>(), { code: 'INTERNAL', message: 'internal error' });
      assert.doesNotMatch(res.body, /SQLITE|hunter2|keys\.db/);
    } finally {
      await app.close();
      await store.close();
    }
  });

  it('the exported handler gives a host instance\u2019s own routes the same answers', async () => {
    const app = Fastify({ logger: false });
    app.setErrorHandler(keyServerErrorHandler);
    app.get('/limited', async () => {
      throw new ParleyError('RATE_LIMITED', 'slow down', { retryAfterMs: 1500 });
    });
    app.get('/boom', async () => {
      throw new TypeError('cannot read properties of undefined (reading "secret")');
    });
    app.post('/schema', { schema: { body: { type: 'object', required: ['x'], properties: { x: { type: 'integer' } } } } }, async () => ({}));
    try {
      const limited = await app.inject({ method: 'GET', url: '/limited' });
      assert.equal(limited.statusCode, 429);
      assert.deepEqual(limited.json(), { code: 'RATE_LIMITED', message: 'slow down', retryAfterMs: 1500 });
      assert.equal(limited.headers['retry-after'], '2');
      const boom = await app.inject({ method: 'GET', url: '/boom' });
      assert.equal(boom.statusCode, 500);
      assert.deepEqual(boom.json(), { code: 'INTERNAL', message: 'internal error' });
      const schema = await app.inject({ method: 'POST', url: '/schema', payload: { y: 1 } });
      assert.equal(schema.statusCode, 400);
      assert.equal(schema.json<ErrorResponse>().code, 'BAD_REQUEST');
      const big = await app.inject({ method: 'POST', url: '/schema', payload: JSON.stringify({ x: 1, pad: 'p'.repeat(2 * 1024 * 1024) }), headers: { 'content-type': 'application/json' } });
      assert.equal(big.statusCode, 413);
      assert.equal(big.json<ErrorResponse>().code, 'FRAME_TOO_LARGE');
    } finally {
      await app.close();
    }
  });

  it('the key server\u2019s routes refuse unknown fields and wrong types even on a host with coercing, stripping validation', async () => {
    // fastify's default Ajv options (coerceTypes, removeAdditional) are the host's choice; the key
    // server's routes must be strict anyway.
    const store = openSqliteKeyStore(':memory:');
    const keyServer = createKeyServer({ store, clock: new ManualClock() });
    const app = Fastify({ logger: false, ajv: { customOptions: { coerceTypes: true, removeAdditional: 'all' } } });
    keyServer.registerRoutes(app);
    try {
      const body = registration('alice').body;
      const extra = await app.inject({ method: 'POST', url: '/v1/accounts', payload: { ...body, isAdmin: true } });
      assert.equal(extra.statusCode, 400);
      const coerced = await app.inject({ method: 'POST', url: '/v1/accounts', payload: { ...body, registrationId: String(body.registrationId) } });
      assert.equal(coerced.statusCode, 400);
      assert.equal(await store.findAccountByUsername('alice'), undefined);
      assert.equal((await app.inject({ method: 'POST', url: '/v1/accounts', payload: body })).statusCode, 200);
    } finally {
      await app.close();
      await keyServer.close();
    }
  });
});
