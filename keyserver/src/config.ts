// SPDX-License-Identifier: AGPL-3.0-only
/**
 * The key server's configuration: one object, every default in one place, validated and frozen
 * (CONVENTIONS 9). The relay binary passes the operator's overrides; units are in the names.
 */
import { LIMITS } from '@parley/protocol';
import type { RateLimitRule } from './rate-limit/rate-limiter.js';

/** The rate limits of the key server, each with what its bucket is keyed by. */
export interface KeyServerRateLimits {
  /** Account registrations, per client address. Default 50 per hour. */
  readonly register: RateLimitRule;
  /** Device linking attempts (POST /v1/devices), per client address. Default 50 per hour. */
  readonly linkDevice: RateLimitRule;
  /** Link tokens issued, per account. Default 10 per 10 minutes. */
  readonly linkToken: RateLimitRule;
  /** Failed authentications, per client address; when exhausted every attempt is refused. Default 50 per minute. */
  readonly failedAuth: RateLimitRule;
  /** Prekey bundle claims, per requesting account. Default 500 per 10 minutes. */
  readonly claimPerRequester: RateLimitRule;
  /** Prekey bundle claims, per target account (prekey draining is an attack). Default 500 per 10 minutes. */
  readonly claimPerTarget: RateLimitRule;
  /** Username lookups, per requesting account. Default 100 per minute. */
  readonly directory: RateLimitRule;
  /** Presence token changes (PUT and DELETE /v1/accounts/me/presence), per account. Default 20 per hour. */
  readonly presenceToken: RateLimitRule;
  /** Push token changes (PUT and DELETE /v1/devices/me/push), per device. Default 30 per hour. */
  readonly pushToken: RateLimitRule;
}

/** Names of the key server's rate limits. */
export type KeyServerRateLimitName = keyof KeyServerRateLimits;

/** Every setting of the key server. */
export interface KeyServerConfig {
  /** Device cap per account, 1..LIMITS.maxDevicesPerSend. Default LIMITS.defaultMaxDevicesPerAccount (16). */
  readonly maxDevicesPerAccount: number;
  /** Lifetime of a device link token, milliseconds, 1 s..24 h. Default 600,000 (10 minutes). */
  readonly linkTokenTtlMs: number;
  /** Most one-time prekeys of one kind in one upload, 1..LIMITS.maxPreKeysPerUpload. Default 100. */
  readonly maxPreKeysPerUpload: number;
  /** Most one-time prekeys of one kind stored per device, 1..LIMITS.maxStoredPreKeys. Default 1,000. */
  readonly maxStoredPreKeys: number;
  /** Accounts whose device lists are cached in memory. Default 50,000. */
  readonly deviceCacheMaxAccounts: number;
  /**
   * Longest time a cached device list is trusted, milliseconds. Local changes invalidate the
   * cache at once; the TTL bounds staleness from changes this process was not told about
   * (another relay node). Default 60,000.
   */
  readonly deviceCacheTtlMs: number;
  /** Most buckets each in-process rate limiter keeps in memory. Default 100,000. */
  readonly rateLimiterMaxKeys: number;
  /** The rate limits. */
  readonly rateLimits: KeyServerRateLimits;
}

/** Overrides for {@link resolveKeyServerConfig}: any setting, and any part of any rate limit. */
export type KeyServerConfigInput = Partial<Omit<KeyServerConfig, 'rateLimits'>> & {
  readonly rateLimits?: Partial<{ readonly [K in KeyServerRateLimitName]: Partial<RateLimitRule> }>;
};

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;

const rule = (capacity: number, windowMs: number): RateLimitRule => Object.freeze({ capacity, windowMs });

/** The defaults, in one place. */
export const DEFAULT_KEY_SERVER_CONFIG: KeyServerConfig = Object.freeze({
  maxDevicesPerAccount: LIMITS.defaultMaxDevicesPerAccount,
  linkTokenTtlMs: 10 * MINUTE,
  maxPreKeysPerUpload: LIMITS.maxPreKeysPerUpload,
  maxStoredPreKeys: LIMITS.maxStoredPreKeys,
  deviceCacheMaxAccounts: 50_000,
  deviceCacheTtlMs: MINUTE,
  rateLimiterMaxKeys: 100_000,
  rateLimits: Object.freeze({
    register: rule(50, HOUR),
    linkDevice: rule(50, HOUR),
    linkToken: rule(10, 10 * MINUTE),
    failedAuth: rule(50, MINUTE),
    // Bursts sized for joining a 1,000-member group (a session with every member), refilled at
    // the old sustained rates (50 claims, 100 lookups a minute).
    claimPerRequester: rule(2000, 40 * MINUTE),
    claimPerTarget: rule(500, 10 * MINUTE),
    directory: rule(1100, 11 * MINUTE),
    presenceToken: rule(20, HOUR),
    pushToken: rule(30, HOUR),
  }),
});

/** A configuration value out of range or unknown; the message names the setting. */
export class KeyServerConfigError extends Error {
  override readonly name = 'KeyServerConfigError';
  /** Stable code. */
  readonly code = 'INVALID_CONFIG';
}

function intIn(name: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new KeyServerConfigError(`${name} must be an integer from ${min} to ${max} (got ${String(value)})`);
  }
  return value;
}

function definedEntries<T extends object>(o: T | undefined): Partial<T> {
  return Object.fromEntries(Object.entries(o ?? {}).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** Merges `input` over the defaults, checks every value, and returns a deeply frozen config. */
export function resolveKeyServerConfig(input: KeyServerConfigInput = {}): KeyServerConfig {
  const known = new Set(Object.keys(DEFAULT_KEY_SERVER_CONFIG));
  for (const key of Object.keys(input)) {
    if (!known.has(key)) throw new KeyServerConfigError(`unknown setting ${key}`);
  }
  const limitNames = new Set(Object.keys(DEFAULT_KEY_SERVER_CONFIG.rateLimits));
  const limitInput = input.rateLimits ?? {};
  for (const key of Object.keys(limitInput)) {
    if (!limitNames.has(key)) throw new KeyServerConfigError(`unknown rate limit ${key}`);
  }
  const rateLimits = {} as Record<KeyServerRateLimitName, RateLimitRule>;
  for (const name of limitNames as Set<KeyServerRateLimitName>) {
    const over = definedEntries(limitInput[name]);
    for (const key of Object.keys(over)) {
      if (key !== 'capacity' && key !== 'windowMs') throw new KeyServerConfigError(`unknown setting rateLimits.${name}.${key}`);
    }
    const merged = { ...DEFAULT_KEY_SERVER_CONFIG.rateLimits[name], ...over };
    rateLimits[name] = rule(
      intIn(`rateLimits.${name}.capacity`, merged.capacity, 1, 1_000_000_000),
      intIn(`rateLimits.${name}.windowMs`, merged.windowMs, 1, 7 * 24 * HOUR),
    );
  }
  const { rateLimits: _ignored, ...scalars } = input;
  const c = { ...DEFAULT_KEY_SERVER_CONFIG, ...definedEntries(scalars) };
  return Object.freeze({
    maxDevicesPerAccount: intIn('maxDevicesPerAccount', c.maxDevicesPerAccount, 1, LIMITS.maxDevicesPerSend),
    linkTokenTtlMs: intIn('linkTokenTtlMs', c.linkTokenTtlMs, 1000, 24 * HOUR),
    maxPreKeysPerUpload: intIn('maxPreKeysPerUpload', c.maxPreKeysPerUpload, 1, LIMITS.maxPreKeysPerUpload),
    maxStoredPreKeys: intIn('maxStoredPreKeys', c.maxStoredPreKeys, 1, LIMITS.maxStoredPreKeys),
    deviceCacheMaxAccounts: intIn('deviceCacheMaxAccounts', c.deviceCacheMaxAccounts, 1, 10_000_000),
    deviceCacheTtlMs: intIn('deviceCacheTtlMs', c.deviceCacheTtlMs, 0, 24 * HOUR),
    rateLimiterMaxKeys: intIn('rateLimiterMaxKeys', c.rateLimiterMaxKeys, 1, 100_000_000),
    rateLimits: Object.freeze(rateLimits),
  });
}
