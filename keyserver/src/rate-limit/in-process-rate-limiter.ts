// SPDX-License-Identifier: AGPL-3.0-only
/**
 * The in-process rate limiter adapter: token buckets in a Map, for one relay process (the
 * embedded default). Memory is bounded: a bucket that has refilled to full is indistinguishable
 * from no bucket and is dropped, and past `maxKeys` the least recently used buckets are evicted.
 *
 * Evicting a bucket that is not yet full forgets its debt. That is the price of bounded memory;
 * it only matters when more than `maxKeys` keys are active within one window, and then the
 * limit degrades gracefully instead of the process running out of memory. A cluster uses the
 * Redis adapter, where every node sees the same buckets.
 */
import type { Clock } from '../clock.js';
import {
  checkRateLimitCost,
  checkRateLimiterName,
  checkRateLimitRule,
  RATE_LIMIT_ALLOWED,
  rateLimitRefusal,
  type RateLimitDecision,
  type RateLimiter,
  type RateLimiterBackend,
  type RateLimitRule,
} from './rate-limiter.js';

/** Options of {@link createRateLimiter}. */
export interface RateLimiterOptions extends RateLimitRule {
  readonly clock: Clock;
  /** Most buckets held in memory; past it the least recently used is evicted. Default 100,000. */
  readonly maxKeys?: number;
}

/** An in-process limiter; `size` shows its memory use. */
export interface InProcessRateLimiter extends RateLimiter {
  /** Buckets held in memory right now. */
  readonly size: number;
}

/** Default of {@link RateLimiterOptions.maxKeys}. */
export const DEFAULT_RATE_LIMITER_MAX_KEYS = 100_000;

interface Bucket {
  /** Tokens × windowMs (an integer). */
  level: number;
  /** When `level` was computed, integer milliseconds. */
  at: number;
}

/**
 * Builds an in-process token-bucket limiter.
 * @throws RangeError for a bad rule or maxKeys.
 */
export function createRateLimiter(options: RateLimiterOptions): InProcessRateLimiter {
  const rule: RateLimitRule = Object.freeze({ capacity: options.capacity, windowMs: options.windowMs });
  checkRateLimitRule(rule);
  const { clock } = options;
  const maxKeys = options.maxKeys ?? DEFAULT_RATE_LIMITER_MAX_KEYS;
  if (!Number.isInteger(maxKeys) || maxKeys < 1) throw new RangeError('maxKeys must be an integer >= 1');
  const { capacity, windowMs } = rule;
  const full = capacity * windowMs;
  // Map order is recency order: a touched bucket is moved to the end.
  const buckets = new Map<string, Bucket>();
  let sinceSweep = 0;

  const now = (): number => Math.floor(clock.now());

  /** The bucket's level at `t` and the time it stands for (never earlier than its last take). */
  function current(bucket: Bucket | undefined, t: number): Bucket {
    if (!bucket) return { level: full, at: t };
    // A clock that steps backwards must neither mint tokens nor wedge the bucket: time stands
    // still for it until the clock passes its last take again.
    if (t <= bucket.at) return { level: bucket.level, at: bucket.at };
    return { level: Math.min(full, bucket.level + (t - bucket.at) * capacity), at: t };
  }

  // Amortized O(1): one pass over all buckets every maxKeys takes drops the ones that are full.
  function sweep(t: number): void {
    for (const [key, bucket] of buckets) if (current(bucket, t).level >= full) buckets.delete(key);
  }

  function takeNow(key: string, cost: number): RateLimitDecision {
    checkRateLimitCost(cost);
    const t = now();
    const existing = buckets.get(key);
    const b = current(existing, t);
    if (b.level < cost * windowMs) return rateLimitRefusal(rule, b.level, cost);
    if (existing) buckets.delete(key);
    buckets.set(key, { level: b.level - cost * windowMs, at: b.at });
    if (++sinceSweep >= maxKeys) {
      sinceSweep = 0;
      sweep(t);
    }
    while (buckets.size > maxKeys) buckets.delete(buckets.keys().next().value as string);
    return RATE_LIMIT_ALLOWED;
  }

  function peekNow(key: string, cost: number): RateLimitDecision {
    checkRateLimitCost(cost);
    const b = current(buckets.get(key), now());
    return b.level < cost * windowMs ? rateLimitRefusal(rule, b.level, cost) : RATE_LIMIT_ALLOWED;
  }

  // Promise.resolve/reject around the synchronous core: a bad cost rejects like a Redis error would.
  const settle = <T>(f: () => T): Promise<T> => {
    try {
      return Promise.resolve(f());
    } catch (err) {
      return Promise.reject(err as Error);
    }
  };

  return {
    rule,
    take: (key, cost = 1) => settle(() => takeNow(key, cost)),
    peek: (key, cost = 1) => settle(() => peekNow(key, cost)),
    reset: (key) => settle(() => void buckets.delete(key)),
    get size(): number {
      return buckets.size;
    },
  };
}

/** Options of {@link createInProcessRateLimiterBackend}. */
export interface InProcessRateLimiterBackendOptions {
  readonly clock: Clock;
  /** Most buckets each limiter holds in memory. Default 100,000. */
  readonly maxKeysPerLimiter?: number;
}

/** A backend whose limiters keep their buckets in this process (the embedded default). */
export function createInProcessRateLimiterBackend(options: InProcessRateLimiterBackendOptions): RateLimiterBackend {
  return {
    kind: 'in-process',
    limiter(name, rule) {
      checkRateLimiterName(name);
      return createRateLimiter({ ...rule, clock: options.clock, maxKeys: options.maxKeysPerLimiter ?? DEFAULT_RATE_LIMITER_MAX_KEYS });
    },
    close: async () => undefined,
  };
}
