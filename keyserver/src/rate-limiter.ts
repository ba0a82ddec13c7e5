// SPDX-License-Identifier: AGPL-3.0-only
/**
 * An in-process token-bucket rate limiter. Each key has a bucket of `capacity` tokens that
 * refills continuously at `capacity` tokens per `windowMs`; a request takes one token (or
 * `cost`). Memory is bounded: a bucket that has refilled to full is indistinguishable from no
 * bucket and is dropped, and past `maxKeys` the least recently used buckets are evicted.
 *
 * Evicting a bucket that is not yet full forgets its debt. That is the price of bounded memory;
 * it only matters when more than `maxKeys` keys are active within one window, and then the
 * limit degrades gracefully instead of the process running out of memory. A cluster replaces
 * this with a shared (Redis) limiter behind the same interface.
 */
import type { Clock } from './clock.js';

/** One limit: a burst of `capacity` requests, refilled at `capacity` per `windowMs`. */
export interface RateLimitRule {
  /** Largest burst, in requests (tokens). Integer >= 1. */
  readonly capacity: number;
  /** Time in which an empty bucket refills completely, milliseconds. Integer >= 1. */
  readonly windowMs: number;
}

/** The answer of a limiter. */
export interface RateLimitDecision {
  /** True when the request may proceed. */
  readonly allowed: boolean;
  /** When refused: milliseconds until the request would be allowed (>= 1). 0 when allowed. */
  readonly retryAfterMs: number;
}

/** A rate limiter keyed by strings (client address, account, device). */
export interface RateLimiter {
  /** Takes `cost` tokens (default 1) from `key`'s bucket when it has them; refuses otherwise. */
  take(key: string, cost?: number): RateLimitDecision;
  /** Answers what `take` would answer, without taking anything. */
  peek(key: string, cost?: number): RateLimitDecision;
  /** Forgets `key`'s bucket (it starts full again). */
  reset(key: string): void;
  /** Buckets held in memory right now. */
  readonly size: number;
}

/** Options of {@link createRateLimiter}. */
export interface RateLimiterOptions extends RateLimitRule {
  readonly clock: Clock;
  /** Most buckets held in memory; past it the least recently used is evicted. Default 100,000. */
  readonly maxKeys?: number;
}

interface Bucket {
  tokens: number;
  at: number;
}

// Float refill arithmetic may land a hair below a whole token after exactly retryAfterMs.
const EPSILON = 1e-9;

const ALLOWED: RateLimitDecision = Object.freeze({ allowed: true, retryAfterMs: 0 });

/** Default of {@link RateLimiterOptions.maxKeys}. */
export const DEFAULT_RATE_LIMITER_MAX_KEYS = 100_000;

/** Builds an in-process token-bucket limiter. */
export function createRateLimiter(options: RateLimiterOptions): RateLimiter {
  const { capacity, windowMs, clock } = options;
  const maxKeys = options.maxKeys ?? DEFAULT_RATE_LIMITER_MAX_KEYS;
  if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError('capacity must be an integer >= 1');
  if (!Number.isInteger(windowMs) || windowMs < 1) throw new RangeError('windowMs must be an integer >= 1');
  if (!Number.isInteger(maxKeys) || maxKeys < 1) throw new RangeError('maxKeys must be an integer >= 1');
  const perMs = capacity / windowMs;
  // Map order is recency order: a touched bucket is moved to the end.
  const buckets = new Map<string, Bucket>();
  let sinceSweep = 0;

  function level(bucket: Bucket | undefined, now: number): number {
    if (!bucket) return capacity;
    // A clock that steps backwards must not mint tokens nor wedge a bucket.
    const elapsed = Math.max(0, now - bucket.at);
    return Math.min(capacity, bucket.tokens + elapsed * perMs);
  }

  function refusal(tokens: number, cost: number): RateLimitDecision {
    if (cost > capacity) return { allowed: false, retryAfterMs: windowMs };
    return { allowed: false, retryAfterMs: Math.max(1, Math.ceil((cost - tokens) / perMs)) };
  }

  function checkCost(cost: number): void {
    if (!Number.isFinite(cost) || cost <= 0) throw new RangeError('cost must be a positive number');
  }

  // Amortized O(1): one pass over all buckets every maxKeys takes drops the ones that are full.
  function sweep(now: number): void {
    for (const [key, bucket] of buckets) if (level(bucket, now) + EPSILON >= capacity) buckets.delete(key);
  }

  return {
    take(key: string, cost = 1): RateLimitDecision {
      checkCost(cost);
      const now = clock.now();
      const existing = buckets.get(key);
      const tokens = level(existing, now);
      if (tokens + EPSILON < cost) return refusal(tokens, cost);
      if (existing) buckets.delete(key);
      buckets.set(key, { tokens: Math.max(0, tokens - cost), at: now });
      if (++sinceSweep >= maxKeys) {
        sinceSweep = 0;
        sweep(now);
      }
      while (buckets.size > maxKeys) {
        const oldest = buckets.keys().next().value as string;
        buckets.delete(oldest);
      }
      return ALLOWED;
    },
    peek(key: string, cost = 1): RateLimitDecision {
      checkCost(cost);
      const tokens = level(buckets.get(key), clock.now());
      return tokens + EPSILON < cost ? refusal(tokens, cost) : ALLOWED;
    },
    reset(key: string): void {
      buckets.delete(key);
    },
    get size(): number {
      return buckets.size;
    },
  };
}
