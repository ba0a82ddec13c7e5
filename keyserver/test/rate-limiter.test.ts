// SPDX-License-Identifier: AGPL-3.0-only
/** What only the in-process adapter has: bounded memory, rule checks, the backend's names. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ParleyError } from '@parley/protocol';
import { createInProcessRateLimiterBackend, createRateLimiter, enforceRateLimit } from '../src/index.js';
import { ManualClock } from './harness.js';

describe('in-process rate limiter', () => {
  it('refuses bad rules and a bad maxKeys at construction', () => {
    const clock = new ManualClock();
    for (const rule of [
      { capacity: 0, windowMs: 1 },
      { capacity: 1, windowMs: 0 },
      { capacity: 1.5, windowMs: 1000 },
      { capacity: 1, windowMs: 1.5 },
      { capacity: 1_000_000_000, windowMs: 7 * 86_400_000 },
    ]) {
      assert.throws(() => createRateLimiter({ ...rule, clock }), RangeError, JSON.stringify(rule));
    }
    assert.throws(() => createRateLimiter({ capacity: 1, windowMs: 1, clock, maxKeys: 0 }), RangeError);
  });

  it('bounds memory: evicts the least recently used bucket past maxKeys and drops refilled ones', async () => {
    const clock = new ManualClock();
    const limiter = createRateLimiter({ capacity: 1, windowMs: 1000, clock, maxKeys: 3 });
    for (const k of ['a', 'b', 'c']) await limiter.take(k);
    assert.equal(limiter.size, 3);
    await limiter.take('d');
    assert.equal(limiter.size, 3);
    // 'a' was evicted: it starts full again; 'b', 'c', 'd' are still empty.
    assert.equal((await limiter.peek('a')).allowed, true);
    assert.equal((await limiter.peek('b')).allowed, false);
    assert.equal((await limiter.peek('d')).allowed, false);
    // After a window every bucket is full again and a sweep drops them.
    clock.advance(1000);
    for (let i = 0; i < 3; i++) await limiter.take(`x${i}`);
    assert.ok(limiter.size <= 3);
    const many = createRateLimiter({ capacity: 5, windowMs: 1000, clock, maxKeys: 100 });
    for (let i = 0; i < 10_000; i++) await many.take(`ip${i}`);
    assert.ok(many.size <= 100);
  });

  it('a touched bucket is the most recently used one and survives eviction', async () => {
    const clock = new ManualClock();
    const limiter = createRateLimiter({ capacity: 2, windowMs: 60_000, clock, maxKeys: 2 });
    await limiter.take('old');
    await limiter.take('new');
    await limiter.take('old');
    await limiter.take('newest');
    assert.equal((await limiter.take('old')).allowed, false, '"old" was used last before "newest" and is kept, empty');
    assert.equal((await limiter.take('new')).allowed, true);
  });

  it('reset drops the bucket from memory', async () => {
    const limiter = createRateLimiter({ capacity: 1, windowMs: 1000, clock: new ManualClock() });
    await limiter.take('k');
    assert.equal(limiter.size, 1);
    await limiter.reset('k');
    assert.equal(limiter.size, 0);
  });

  it('the backend names limiters and refuses names that could not be Redis key parts', () => {
    const backend = createInProcessRateLimiterBackend({ clock: new ManualClock() });
    assert.equal(backend.kind, 'in-process');
    assert.deepEqual(backend.limiter('sendPerDevice', { capacity: 3, windowMs: 1000 }).rule, { capacity: 3, windowMs: 1000 });
    for (const bad of ['', 'a b', 'x:y', 'n'.repeat(65), 'ü']) assert.throws(() => backend.limiter(bad, { capacity: 1, windowMs: 1 }), RangeError, bad);
    assert.throws(() => backend.limiter('ok', { capacity: 0, windowMs: 1 }), RangeError);
  });

  it('enforceRateLimit throws RATE_LIMITED with the time to wait', async () => {
    const limiter = createRateLimiter({ capacity: 1, windowMs: 4000, clock: new ManualClock() });
    await enforceRateLimit(limiter, 'k');
    await assert.rejects(
      enforceRateLimit(limiter, 'k'),
      (e: unknown) => e instanceof ParleyError && e.code === 'RATE_LIMITED' && e.details.retryAfterMs === 4000,
    );
  });
});
