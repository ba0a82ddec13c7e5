// SPDX-License-Identifier: AGPL-3.0-only
/**
 * The rate limiter port (CONVENTIONS 1): token buckets keyed by strings, behind one interface
 * with an in-process adapter (one machine) and a Redis adapter (a cluster of relay nodes sharing
 * buckets). Both pass `describeRateLimiterContract`.
 *
 * The port is asynchronous because the Redis adapter needs a round trip. The in-process adapter
 * answers with already-settled promises; one extra microtask per request is noise next to the
 * SQLite commit every send waits for, and one signature means no call site can forget that a
 * cluster answer takes time (a `Decision | Promise<Decision>` union would allow exactly that).
 *
 * The bucket arithmetic is integer so that both adapters (JavaScript here, Lua in Redis) agree
 * to the millisecond: a bucket's level is kept in units of 1/windowMs token, so refill is
 * `elapsedMs × capacity` units and a token is `windowMs` units, with no rounding anywhere.
 */
import { ParleyError } from '@parley/protocol';

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
  /**
   * When refused: milliseconds until the request would be allowed (>= 1; exactly enough when
   * nobody else takes from the bucket meanwhile). 0 when allowed.
   */
  readonly retryAfterMs: number;
}

/** A token-bucket rate limiter for one rule, keyed by strings (client address, account, device). */
export interface RateLimiter {
  /** The limit this limiter applies. */
  readonly rule: RateLimitRule;
  /**
   * Takes `cost` tokens (an integer >= 1, default 1) from `key`'s bucket when it holds them;
   * refuses and takes nothing otherwise. Atomic: concurrent takes never overdraw a bucket.
   * @throws RangeError for a cost that is not a positive integer.
   */
  take(key: string, cost?: number): Promise<RateLimitDecision>;
  /** Answers what `take` would answer, without taking anything. */
  peek(key: string, cost?: number): Promise<RateLimitDecision>;
  /** Forgets `key`'s bucket (it starts full again). */
  reset(key: string): Promise<void>;
}

/**
 * Where limiters keep their buckets: builds one limiter per named rule, all sharing the backend
 * (one map per process, or one Redis connection).
 */
export interface RateLimiterBackend {
  /** `in-process` (buckets in this process's memory) or `redis` (shared by every node). */
  readonly kind: 'in-process' | 'redis';
  /**
   * A limiter for `rule`. Buckets of different names never mix, also when their keys are equal.
   * @param name letters, digits, `_`, `-` and `.`, 1..64 characters (it becomes part of a Redis key).
   * @throws RangeError for a bad name or rule.
   */
  limiter(name: string, rule: RateLimitRule): RateLimiter;
  /** Releases the backend (the Redis connection). Limiters must not be used afterwards. */
  close(): Promise<void>;
}

/**
 * Largest `capacity × windowMs`: bucket levels are integers in units of 1/windowMs token and
 * must stay exact in a double (JavaScript and Redis' Lua both use doubles).
 */
export const MAX_RATE_LIMIT_UNITS = Number.MAX_SAFE_INTEGER;

const NAME = /^[A-Za-z0-9_.-]{1,64}$/;

/** Checks a rule. @throws RangeError naming what is wrong. */
export function checkRateLimitRule(rule: RateLimitRule): void {
  const { capacity, windowMs } = rule;
  if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError('capacity must be an integer >= 1');
  if (!Number.isInteger(windowMs) || windowMs < 1) throw new RangeError('windowMs must be an integer >= 1');
  if (capacity * windowMs > MAX_RATE_LIMIT_UNITS) throw new RangeError('capacity × windowMs must be at most 2^53 - 1');
}

/** Checks a limiter name. @throws RangeError. */
export function checkRateLimiterName(name: string): void {
  if (!NAME.test(name)) throw new RangeError('a limiter name is 1..64 letters, digits, _ - or .');
}

/** Checks a cost. @throws RangeError. */
export function checkRateLimitCost(cost: number): void {
  if (!Number.isSafeInteger(cost) || cost < 1) throw new RangeError('cost must be an integer >= 1');
}

/** The decision of an allowed request (shared, frozen). */
export const RATE_LIMIT_ALLOWED: RateLimitDecision = Object.freeze({ allowed: true, retryAfterMs: 0 });

/**
 * The refusal for a bucket at `level` units: the milliseconds until it holds `cost` tokens.
 * A cost above capacity can never be met; it is told to come back after a whole window.
 */
export function rateLimitRefusal(rule: RateLimitRule, level: number, cost: number): RateLimitDecision {
  if (cost > rule.capacity) return Object.freeze({ allowed: false, retryAfterMs: rule.windowMs });
  const missing = cost * rule.windowMs - level;
  // Integer ceiling division without floating-point doubt: missing and capacity are exact.
  const q = Math.floor(missing / rule.capacity);
  const ms = q * rule.capacity < missing ? q + 1 : q;
  return Object.freeze({ allowed: false, retryAfterMs: Math.max(1, ms) });
}

/**
 * Takes a token from `limiter` for `key`.
 * @throws ParleyError RATE_LIMITED with `retryAfterMs` when refused.
 */
export async function enforceRateLimit(limiter: RateLimiter, key: string, cost = 1): Promise<void> {
  const decision = await limiter.take(key, cost);
  if (!decision.allowed) throw new ParleyError('RATE_LIMITED', 'too many requests', { retryAfterMs: decision.retryAfterMs });
}
