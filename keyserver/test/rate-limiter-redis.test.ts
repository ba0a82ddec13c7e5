// SPDX-License-Identifier: AGPL-3.0-only
/**
 * What only the Redis adapter has, against a real redis-server: the server's clock, key layout
 * and TTL, reloading the script after a flush, and the in-process fallback while Redis is down.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { createRedisRateLimiterBackend, openRedisRateLimiterBackend, RedisConnectError, redisUrlForLog } from '../src/index.js';
import { redisServerSkipReason, startRedisServer, type RedisServerProcess } from '../src/testing/index.js';
import { ManualClock } from './harness.js';

const skip = redisServerSkipReason();

describe('Redis rate limiter', skip ? { skip } : {}, () => {
  let server: RedisServerProcess;
  let admin: Redis;

  before(async () => {
    server = await startRedisServer();
    admin = new Redis(server.url, { maxRetriesPerRequest: 0 });
  });
  after(async () => {
    admin?.disconnect();
    await server?.stop();
  });

  it('refills on the Redis server\u2019s clock when none is injected', async () => {
    const backend = await openRedisRateLimiterBackend({ url: server.url, prefix: `t:${randomUUID()}:` });
    try {
      const limiter = backend.limiter('serverclock', { capacity: 2, windowMs: 400 });
      assert.equal((await limiter.take('k')).allowed, true);
      assert.equal((await limiter.take('k')).allowed, true);
      const no = await limiter.take('k');
      assert.equal(no.allowed, false);
      assert.ok(no.retryAfterMs > 0 && no.retryAfterMs <= 200, `retryAfterMs ${no.retryAfterMs}`);
      await new Promise((r) => setTimeout(r, no.retryAfterMs + 5));
      assert.equal((await limiter.take('k')).allowed, true, 'a token came back after retryAfterMs of real time');
    } finally {
      await backend.close();
    }
  });

  it('keeps a bucket under <prefix><name>:<key> with a TTL of the time until it is full again', async () => {
    const prefix = `t:${randomUUID()}:`;
    const clock = new ManualClock();
    const backend = createRedisRateLimiterBackend({ redis: new Redis(server.url), prefix, clock });
    try {
      const limiter = backend.limiter('layout', { capacity: 10, windowMs: 60_000 });
      await limiter.take('203.0.113.7', 3);
      const key = `${prefix}layout:203.0.113.7`;
      assert.deepEqual(await admin.hgetall(key), { l: String(7 * 60_000), t: String(clock.now()) });
      const ttl = await admin.pttl(key);
      assert.ok(ttl > 17_000 && ttl <= 18_000, `3 tokens at 6 s each: TTL ${ttl}`);
      await limiter.peek('198.51.100.1');
      assert.equal(await admin.exists(`${prefix}layout:198.51.100.1`), 0, 'peek writes nothing');
      await limiter.reset('203.0.113.7');
      assert.equal(await admin.exists(key), 0);
    } finally {
      await backend.close();
    }
  });

  it('loads the script again after the server forgot it', async () => {
    const clock = new ManualClock();
    const backend = createRedisRateLimiterBackend({ redis: new Redis(server.url), prefix: `t:${randomUUID()}:`, clock });
    try {
      const limiter = backend.limiter('flush', { capacity: 1, windowMs: 60_000 });
      assert.equal((await limiter.take('k')).allowed, true);
      await admin.script('FLUSH');
      assert.deepEqual({ ...(await limiter.take('k')) }, { allowed: false, retryAfterMs: 60_000 });
    } finally {
      await backend.close();
    }
  });

  it('falls back to per-process buckets while Redis is down, and says so once', async () => {
    const own = await startRedisServer();
    const health: boolean[] = [];
    const clock = new ManualClock();
    const backend = await openRedisRateLimiterBackend({
      url: own.url,
      prefix: `t:${randomUUID()}:`,
      clock,
      commandTimeoutMs: 300,
      onHealthChange: (ok) => health.push(ok),
    });
    try {
      const limiter = backend.limiter('outage', { capacity: 2, windowMs: 60_000 });
      assert.equal((await limiter.take('k')).allowed, true);
      await own.stop();
      // Every request still gets an answer, and the limit still holds (per process now).
      const decisions = [];
      for (let i = 0; i < 4; i++) decisions.push(await limiter.take('k'));
      assert.deepEqual(decisions.map((d) => d.allowed), [true, true, false, false]);
      assert.equal(decisions[2]!.retryAfterMs, 30_000);
      assert.deepEqual(health, [false], 'one report for the whole outage');
    } finally {
      await backend.close();
      await own.stop();
    }
  });

  it('refuses to start when Redis does not answer, naming host and port but never the password', async () => {
    const port = await new Promise<number>((resolve) => {
      const s = createServer();
      s.listen(0, '127.0.0.1', () => {
        const p = (s.address() as { port: number }).port;
        s.close(() => resolve(p));
      });
    });
    const url = `redis://:hunter2-secret@127.0.0.1:${port}/2`;
    await assert.rejects(openRedisRateLimiterBackend({ url, connectTimeoutMs: 1000 }), (e: unknown) => {
      assert.ok(e instanceof RedisConnectError);
      assert.match(e.message, new RegExp(`127\\.0\\.0\\.1:${port}`));
      assert.doesNotMatch(e.message, /hunter2/);
      return true;
    });
    assert.equal(redisUrlForLog('rediss://user:pw@cache.example.org:6380/1'), 'rediss://cache.example.org:6380/1');
    assert.equal(redisUrlForLog('not a url'), '(unparsable URL)');
  });
});
