// SPDX-License-Identifier: AGPL-3.0-only
/**
 * The contract every {@link RateLimiter} adapter passes (CONVENTIONS 1): the in-process adapter
 * always, the Redis adapter against a real redis-server. Time is a manual clock the factory
 * hands to the adapter, so refill is tested by moving time, not by sleeping; every test uses
 * fresh keys (and the factory fresh limiter names), so runs against one server do not mix.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe, it } from 'node:test';
import type { Clock } from '../clock.js';
import type { RateLimiter, RateLimitRule } from './rate-limiter.js';

/** A clock the suite moves. */
export class ContractClock implements Clock {
  constructor(private t = 1_700_000_000_000) {}
  now(): number {
    return this.t;
  }
  /** Moves time by `ms` (negative steps it back). */
  advance(ms: number): void {
    this.t += ms;
  }
}

/**
 * Builds a limiter for `rule` that reads time from `clock`, with buckets apart from every
 * limiter built before (a fresh name or key prefix).
 */
export type RateLimiterFactory = (rule: RateLimitRule, clock: Clock) => RateLimiter | Promise<RateLimiter>;

/** Options of {@link describeRateLimiterContract}. */
export interface RateLimiterContractOptions {
  /** Skips the whole suite, printing this reason (e.g. no redis-server here). */
  readonly skip?: string;
}

const MINUTE = 60_000;
const ALLOWED = { allowed: true, retryAfterMs: 0 };
const refused = (retryAfterMs: number) => ({ allowed: false, retryAfterMs });
const key = (what: string) => `${what}:${randomUUID()}`;
const plain = (d: { allowed: boolean; retryAfterMs: number }) => ({ allowed: d.allowed, retryAfterMs: d.retryAfterMs });

/** Registers the contract tests for one adapter under `describe(name)`. */
export function describeRateLimiterContract(name: string, make: RateLimiterFactory, options: RateLimiterContractOptions = {}): void {
  const setup = async (rule: RateLimitRule) => {
    const clock = new ContractClock();
    return { clock, limiter: await make(rule, clock) };
  };

  describe(`RateLimiter contract: ${name}`, options.skip ? { skip: options.skip } : {}, () => {
    it('allows a burst up to capacity, then refuses with the exact time until the next token', async () => {
      const { limiter } = await setup({ capacity: 5, windowMs: MINUTE });
      const k = key('burst');
      for (let i = 0; i < 5; i++) assert.deepEqual(plain(await limiter.take(k)), ALLOWED, `take ${i + 1} of 5`);
      // 5 tokens a minute: one every 12 s.
      assert.deepEqual(plain(await limiter.take(k)), refused(12_000));
      assert.deepEqual(plain(await limiter.peek(k)), refused(12_000));
      assert.deepEqual(limiter.rule, { capacity: 5, windowMs: MINUTE });
    });

    it('refills by elapsed time, token by token, never above capacity', async () => {
      const { clock, limiter } = await setup({ capacity: 3, windowMs: 3000 });
      const k = key('refill');
      for (let i = 0; i < 3; i++) await limiter.take(k);
      assert.deepEqual(plain(await limiter.take(k)), refused(1000));
      clock.advance(400);
      assert.deepEqual(plain(await limiter.take(k)), refused(600));
      clock.advance(599);
      assert.deepEqual(plain(await limiter.take(k)), refused(1));
      clock.advance(1);
      assert.deepEqual(plain(await limiter.take(k)), ALLOWED);
      assert.deepEqual(plain(await limiter.take(k)), refused(1000));
      // Ten windows idle still make only a full bucket.
      clock.advance(30_000);
      for (let i = 0; i < 3; i++) assert.equal((await limiter.take(k)).allowed, true);
      assert.equal((await limiter.take(k)).allowed, false);
    });

    it('waiting exactly retryAfterMs is enough, whatever the rate', async () => {
      for (const rule of [{ capacity: 7, windowMs: 1000 }, { capacity: 3, windowMs: 3_600_000 }, { capacity: 50, windowMs: MINUTE }, { capacity: 1, windowMs: 1 }]) {
        const { clock, limiter } = await setup(rule);
        const k = key('exact');
        for (let i = 0; i < rule.capacity; i++) await limiter.take(k);
        for (let round = 0; round < 10; round++) {
          const no = await limiter.take(k);
          assert.equal(no.allowed, false, `${JSON.stringify(rule)} round ${round}`);
          assert.ok(no.retryAfterMs >= 1);
          clock.advance(no.retryAfterMs - 1);
          assert.equal((await limiter.peek(k)).allowed, false, `${JSON.stringify(rule)}: 1 ms early is too early`);
          clock.advance(1);
          assert.equal((await limiter.take(k)).allowed, true, `${JSON.stringify(rule)} round ${round}`);
        }
      }
    });

    it('keeps keys apart, and limiters apart even for the same key', async () => {
      const { clock, limiter } = await setup({ capacity: 2, windowMs: MINUTE });
      const other = await make({ capacity: 2, windowMs: MINUTE }, clock);
      const [a, b] = [key('a'), key('b')];
      await limiter.take(a);
      await limiter.take(a);
      assert.equal((await limiter.take(a)).allowed, false);
      assert.deepEqual(plain(await limiter.take(b)), ALLOWED);
      assert.deepEqual(plain(await limiter.take(b)), ALLOWED);
      assert.equal((await limiter.take(b)).allowed, false);
      assert.deepEqual(plain(await other.take(a)), ALLOWED, 'another limiter has its own bucket for the same key');
    });

    it('takes a cost above 1 at once or not at all', async () => {
      const { clock, limiter } = await setup({ capacity: 10, windowMs: MINUTE });
      const k = key('cost');
      assert.deepEqual(plain(await limiter.take(k, 4)), ALLOWED);
      assert.deepEqual(plain(await limiter.take(k, 4)), ALLOWED);
      // 2 left: 4 needs 2 more tokens, 6 s each.
      assert.deepEqual(plain(await limiter.take(k, 4)), refused(12_000));
      assert.deepEqual(plain(await limiter.take(k, 2)), ALLOWED, 'a refused take took nothing');
      assert.equal((await limiter.take(k)).allowed, false);
      // More than the bucket can ever hold: come back after a window (it will still be refused).
      clock.advance(MINUTE);
      assert.deepEqual(plain(await limiter.take(k, 11)), refused(MINUTE));
      assert.deepEqual(plain(await limiter.take(k, 10)), ALLOWED, 'the refused oversize take took nothing');
    });

    it('rejects a cost that is not a positive integer', async () => {
      const { limiter } = await setup({ capacity: 10, windowMs: MINUTE });
      for (const bad of [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
        await assert.rejects(limiter.take(key('bad'), bad), RangeError, `cost ${bad}`);
        await assert.rejects(limiter.peek(key('bad'), bad), RangeError, `peek cost ${bad}`);
      }
    });

    it('peek takes nothing', async () => {
      const { limiter } = await setup({ capacity: 1, windowMs: MINUTE });
      const k = key('peek');
      for (let i = 0; i < 5; i++) assert.deepEqual(plain(await limiter.peek(k)), ALLOWED);
      assert.deepEqual(plain(await limiter.take(k)), ALLOWED);
      assert.deepEqual(plain(await limiter.peek(k)), refused(MINUTE));
      assert.deepEqual(plain(await limiter.peek(k, 2)), refused(MINUTE));
    });

    it('reset forgets a bucket and only that one', async () => {
      const { limiter } = await setup({ capacity: 1, windowMs: MINUTE });
      const [k, other] = [key('reset'), key('kept')];
      await limiter.take(k);
      await limiter.take(other);
      await limiter.reset(k);
      assert.deepEqual(plain(await limiter.take(k)), ALLOWED);
      assert.equal((await limiter.take(other)).allowed, false);
      await limiter.reset(key('never-used'));
    });

    it('never overdraws under concurrency: 100 parallel takes on capacity 10 allow exactly 10', async () => {
      const { limiter } = await setup({ capacity: 10, windowMs: MINUTE });
      const k = key('race');
      const decisions = await Promise.all(Array.from({ length: 100 }, () => limiter.take(k)));
      assert.equal(decisions.filter((d) => d.allowed).length, 10);
      for (const d of decisions.filter((x) => !x.allowed)) assert.ok(d.retryAfterMs > 0 && d.retryAfterMs <= 6000, `retryAfterMs ${d.retryAfterMs}`);
    });

    it('a clock that steps backwards mints no tokens', async () => {
      const { clock, limiter } = await setup({ capacity: 1, windowMs: 1000 });
      const k = key('backwards');
      await limiter.take(k);
      clock.advance(-10_000);
      assert.deepEqual(plain(await limiter.take(k)), refused(1000));
      clock.advance(10_000 + 1000);
      assert.deepEqual(plain(await limiter.take(k)), ALLOWED);
    });
  });
}
