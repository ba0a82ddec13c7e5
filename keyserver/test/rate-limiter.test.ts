// SPDX-License-Identifier: AGPL-3.0-only
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createRateLimiter } from '../src/index.js';
import { ManualClock } from './harness.js';

describe('token-bucket rate limiter', () => {
  it('allows a burst of capacity, then refuses with the time until the next token', () => {
    const clock = new ManualClock();
    const limiter = createRateLimiter({ capacity: 3, windowMs: 3000, clock });
    for (let i = 0; i < 3; i++) assert.deepEqual(limiter.take('ip'), { allowed: true, retryAfterMs: 0 });
    assert.deepEqual(limiter.take('ip'), { allowed: false, retryAfterMs: 1000 });
    clock.advance(400);
    assert.deepEqual(limiter.take('ip'), { allowed: false, retryAfterMs: 600 });
    clock.advance(599);
    assert.equal(limiter.take('ip').allowed, false);
    clock.advance(1);
    assert.equal(limiter.take('ip').allowed, true);
    assert.equal(limiter.take('ip').allowed, false);
  });

  it('waiting exactly retryAfterMs is always enough, whatever the rate', () => {
    for (const [capacity, windowMs] of [[5, 60_000], [7, 1000], [3, 3_600_000], [50, 60_000]] as const) {
      const clock = new ManualClock();
      const limiter = createRateLimiter({ capacity, windowMs, clock });
      for (let i = 0; i < capacity; i++) limiter.take('k');
      for (let round = 0; round < 20; round++) {
        const refused = limiter.take('k');
        assert.equal(refused.allowed, false);
        clock.advance(refused.retryAfterMs);
        assert.equal(limiter.take('k').allowed, true, `capacity ${capacity} window ${windowMs} round ${round}`);
      }
    }
  });

  it('keeps keys apart, never refills above capacity, and peek takes nothing', () => {
    const clock = new ManualClock();
    const limiter = createRateLimiter({ capacity: 2, windowMs: 1000, clock });
    limiter.take('a');
    limiter.take('a');
    assert.equal(limiter.peek('a').allowed, false);
    assert.equal(limiter.peek('b').allowed, true);
    assert.equal(limiter.peek('b').allowed, true);
    assert.equal(limiter.take('b').allowed, true);
    clock.advance(1_000_000);
    assert.equal(limiter.take('a').allowed, true);
    assert.equal(limiter.take('a').allowed, true);
    assert.equal(limiter.take('a').allowed, false);
  });

  it('refuses a cost above capacity with a full window, and bad costs throw', () => {
    const limiter = createRateLimiter({ capacity: 2, windowMs: 500, clock: new ManualClock() });
    assert.deepEqual(limiter.take('k', 3), { allowed: false, retryAfterMs: 500 });
    assert.throws(() => limiter.take('k', 0), RangeError);
    assert.throws(() => limiter.take('k', Number.NaN), RangeError);
    assert.throws(() => createRateLimiter({ capacity: 0, windowMs: 1, clock: new ManualClock() }), RangeError);
    assert.throws(() => createRateLimiter({ capacity: 1, windowMs: 1.5, clock: new ManualClock() }), RangeError);
  });

  it('survives a clock that steps backwards without minting tokens', () => {
    const clock = new ManualClock();
    const limiter = createRateLimiter({ capacity: 1, windowMs: 1000, clock });
    limiter.take('k');
    clock.advance(-10_000);
    assert.equal(limiter.take('k').allowed, false);
  });

  it('bounds memory: evicts the least recently used bucket past maxKeys and drops refilled ones', () => {
    const clock = new ManualClock();
    const limiter = createRateLimiter({ capacity: 1, windowMs: 1000, clock, maxKeys: 3 });
    for (const k of ['a', 'b', 'c']) limiter.take(k);
    assert.equal(limiter.size, 3);
    limiter.take('d');
    assert.equal(limiter.size, 3);
    // 'a' was evicted: it starts full again; 'b', 'c', 'd' are still empty.
    assert.equal(limiter.peek('a').allowed, true);
    assert.equal(limiter.peek('b').allowed, false);
    assert.equal(limiter.peek('d').allowed, false);
    // After a window every bucket is full again and a sweep drops them.
    clock.advance(1000);
    for (let i = 0; i < 3; i++) limiter.take(`x${i}`);
    assert.ok(limiter.size <= 3);
    const many = createRateLimiter({ capacity: 5, windowMs: 1000, clock, maxKeys: 100 });
    for (let i = 0; i < 10_000; i++) many.take(`ip${i}`);
    assert.ok(many.size <= 100);
  });

  it('reset forgets a key', () => {
    const limiter = createRateLimiter({ capacity: 1, windowMs: 1000, clock: new ManualClock() });
    limiter.take('k');
    limiter.reset('k');
    assert.equal(limiter.take('k').allowed, true);
  });
});
