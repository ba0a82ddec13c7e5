// SPDX-License-Identifier: AGPL-3.0-only
/**
 * The Redis rate limiter adapter (`ioredis`): every relay node takes from the same buckets.
 *
 * One Lua script per request reads the bucket, refills it by the time elapsed, takes the cost
 * and sets the key's TTL, atomically (Redis runs a script to completion before any other
 * command), so concurrent takes from any number of nodes never overdraw a bucket. A bucket is a
 * hash `{ l: level in 1/windowMs tokens, t: ms }` under `<prefix><name>:<key>`; its TTL is the
 * time until it would be full again (at most one window), after which a missing key and a full
 * bucket mean the same, so idle buckets cost no memory. The TTL is at least one second: a key
 * that outlives its need reads as a full bucket all the same (refill stops at capacity), and
 * Redis' clock then never deletes a bucket that an injected clock still sees draining.
 *
 * Time comes from the Redis server's `TIME` by default: the nodes of a cluster then share one
 * clock, and a node whose clock is off cannot mint or burn tokens for everybody. An injected
 * `clock` replaces it (the contract suite moves time that way); the key TTL still runs on the
 * server's clock, so an injected clock is for tests, not for a cluster.
 *
 * When Redis cannot answer (down, timed out, failing over), each limiter falls back to an
 * in-process bucket with the same rule: limits hold per node instead of per cluster until Redis
 * answers again, rather than every request failing or every limit vanishing. `onHealthChange`
 * reports each transition, once.
 */
import { createHash } from 'node:crypto';
import { Redis } from 'ioredis';
import { systemClock, type Clock } from '../clock.js';
import { createRateLimiter, DEFAULT_RATE_LIMITER_MAX_KEYS, type InProcessRateLimiter } from './in-process-rate-limiter.js';
import {
  checkRateLimitCost,
  checkRateLimiterName,
  checkRateLimitRule,
  RATE_LIMIT_ALLOWED,
  type RateLimitDecision,
  type RateLimiter,
  type RateLimiterBackend,
  type RateLimitRule,
} from './rate-limiter.js';

/**
 * KEYS[1] the bucket. ARGV: capacity, windowMs, cost, now (ms; empty = the server's TIME),
 * mode ('1' take, '0' peek). Returns { allowed (1/0), retryAfterMs }. The arithmetic is the same
 * integer arithmetic as the in-process adapter (see rate-limiter.ts), so both answer alike.
 */
export const TOKEN_BUCKET_SCRIPT = `
local capacity = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local now = tonumber(ARGV[4])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local full = capacity * window
local level = full
local at = now
local state = redis.call('HMGET', KEYS[1], 'l', 't')
if state[1] and state[2] then
  level = tonumber(state[1])
  at = tonumber(state[2])
  if now > at then
    level = math.min(full, level + (now - at) * capacity)
    at = now
  end
end
local need = cost * window
if level < need then
  if cost > capacity then return {0, window} end
  local missing = need - level
  local wait = math.floor(missing / capacity)
  if wait * capacity < missing then wait = wait + 1 end
  if wait < 1 then wait = 1 end
  return {0, wait}
end
if ARGV[5] == '1' then
  level = level - need
  redis.call('HSET', KEYS[1], 'l', string.format('%.0f', level), 't', string.format('%.0f', at))
  local empty = full - level
  local ttl = math.floor(empty / capacity)
  if ttl * capacity < empty then ttl = ttl + 1 end
  if ttl < 1000 then ttl = 1000 end
  redis.call('PEXPIRE', KEYS[1], ttl)
end
return {1, 0}
`;

const SCRIPT_SHA = createHash('sha1').update(TOKEN_BUCKET_SCRIPT).digest('hex');

/** Default key prefix of {@link RedisRateLimiterBackendOptions.prefix}. */
export const DEFAULT_REDIS_RATE_LIMIT_PREFIX = 'parley:rl:';

/** Options of {@link createRedisRateLimiterBackend}. */
export interface RedisRateLimiterBackendOptions {
  /** The connection; the backend owns it from now on and `close()` quits it. */
  readonly redis: Redis;
  /** Prepended to every key, e.g. `parley:chat.example.org:rl:`. Default `parley:rl:`. */
  readonly prefix?: string;
  /** Time for the buckets. Default: the Redis server's TIME (see the module comment). */
  readonly clock?: Clock;
  /** Clock of the in-process fallback buckets. Default: `clock`, else the system clock. */
  readonly fallbackClock?: Clock;
  /** Most buckets each in-process fallback limiter keeps. Default 100,000. */
  readonly fallbackMaxKeys?: number;
  /**
   * Called when Redis stops answering (`healthy` false, with the error) and when it answers
   * again (`healthy` true) — once per transition, never per request.
   */
  readonly onHealthChange?: (healthy: boolean, err?: unknown) => void;
}

/** A backend whose limiters keep their buckets in Redis, shared by every relay node. */
export function createRedisRateLimiterBackend(options: RedisRateLimiterBackendOptions): RateLimiterBackend {
  const { redis } = options;
  const prefix = options.prefix ?? DEFAULT_REDIS_RATE_LIMIT_PREFIX;
  const fallbackClock = options.fallbackClock ?? options.clock ?? systemClock;
  let healthy = true;
  let closed: Promise<void> | undefined;

  const report = (ok: boolean, err?: unknown): void => {
    if (ok === healthy) return;
    healthy = ok;
    options.onHealthChange?.(ok, err);
  };

  async function run(key: string, args: readonly string[]): Promise<unknown> {
    try {
      return await redis.evalsha(SCRIPT_SHA, 1, key, ...args);
    } catch (err) {
      // A server that restarted or flushed its script cache: EVAL loads the script again.
      if (!(err instanceof Error) || !err.message.startsWith('NOSCRIPT')) throw err;
      return redis.eval(TOKEN_BUCKET_SCRIPT, 1, key, ...args);
    }
  }

  return {
    kind: 'redis',
    limiter(name: string, rule: RateLimitRule): RateLimiter {
      checkRateLimiterName(name);
      const frozen: RateLimitRule = Object.freeze({ capacity: rule.capacity, windowMs: rule.windowMs });
      checkRateLimitRule(frozen);
      let fallback: InProcessRateLimiter | undefined;
      const local = (): InProcessRateLimiter =>
        (fallback ??= createRateLimiter({ ...frozen, clock: fallbackClock, maxKeys: options.fallbackMaxKeys ?? DEFAULT_RATE_LIMITER_MAX_KEYS }));

      async function decide(key: string, cost: number, take: boolean): Promise<RateLimitDecision> {
        checkRateLimitCost(cost);
        const now = options.clock ? String(Math.floor(options.clock.now())) : '';
        let reply: unknown;
        try {
          reply = await run(`${prefix}${name}:${key}`, [String(frozen.capacity), String(frozen.windowMs), String(cost), now, take ? '1' : '0']);
        } catch (err) {
          report(false, err);
          return take ? local().take(key, cost) : local().peek(key, cost);
        }
        report(true);
        if (!Array.isArray(reply) || typeof reply[0] !== 'number' || typeof reply[1] !== 'number') {
          throw new Error('the rate limit script answered something unexpected');
        }
        return reply[0] === 1 ? RATE_LIMIT_ALLOWED : Object.freeze({ allowed: false, retryAfterMs: reply[1] });
      }

      return {
        rule: frozen,
        take: (key, cost = 1) => decide(key, cost, true),
        peek: (key, cost = 1) => decide(key, cost, false),
        async reset(key) {
          fallback?.reset(key);
          try {
            await redis.del(`${prefix}${name}:${key}`);
            report(true);
          } catch (err) {
            report(false, err);
          }
        },
      };
    },
    close: () =>
      (closed ??= redis.quit().then(
        () => undefined,
        // Quitting a connection that is already down has nothing left to release.
        () => redis.disconnect(),
      )),
  };
}

/** Options of {@link openRedisRateLimiterBackend}. */
export interface OpenRedisRateLimiterOptions extends Omit<RedisRateLimiterBackendOptions, 'redis'> {
  /** `redis://[:password@]host:port[/db]` or `rediss://…` (TLS). */
  readonly url: string;
  /** How long to wait for the first connection, ms. Default 5,000. */
  readonly connectTimeoutMs?: number;
  /**
   * Longest wait for one answer, ms; past it the request uses the in-process fallback. Default
   * 500: a rate limit check must not hold a send for long.
   */
  readonly commandTimeoutMs?: number;
}

/** The connection failed; the message names host and port, never a password. */
export class RedisConnectError extends Error {
  override readonly name = 'RedisConnectError';
  /** Stable code. */
  readonly code = 'REDIS_UNREACHABLE';
}

/** Host and port of a Redis URL, for messages (credentials left out). */
export function redisUrlForLog(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname.length > 1 ? u.pathname : ''}`;
  } catch {
    return '(unparsable URL)';
  }
}

/**
 * Connects to Redis and builds a backend on that connection. Commands are not queued while the
 * connection is down (they fail at once and the fallback answers); ioredis reconnects by itself.
 * @throws RedisConnectError when Redis does not answer within `connectTimeoutMs`.
 */
export async function openRedisRateLimiterBackend(options: OpenRedisRateLimiterOptions): Promise<RateLimiterBackend> {
  const connectTimeout = options.connectTimeoutMs ?? 5000;
  const redis = new Redis(options.url, {
    lazyConnect: true,
    enableOfflineQueue: false,
    commandTimeout: options.commandTimeoutMs ?? 500,
    connectTimeout,
    maxRetriesPerRequest: 0,
    retryStrategy: (attempt) => Math.min(100 * attempt, 2000),
  });
  // Without a listener ioredis prints every connection error; health changes are reported instead.
  redis.on('error', () => undefined);
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      redis.connect(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error('timed out')), connectTimeout);
      }),
    ]);
  } catch (err) {
    redis.disconnect();
    const reason = err instanceof Error && /timed out/.test(err.message) ? 'timed out' : 'refused or failed';
    throw new RedisConnectError(`cannot reach Redis at ${redisUrlForLog(options.url)} (${reason})`);
  } finally {
    clearTimeout(timer);
  }
  const { url: _url, connectTimeoutMs: _c, commandTimeoutMs: _t, ...rest } = options;
  return createRedisRateLimiterBackend({ ...rest, redis });
}
