// SPDX-License-Identifier: AGPL-3.0-only
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LIMITS } from '@parley/protocol';
import { DEFAULT_KEY_SERVER_CONFIG, KeyServerConfigError, resolveKeyServerConfig } from '../src/index.js';

describe('key server config', () => {
  it('defaults to the protocol limits, a 10-minute link token and 16 devices', () => {
    const c = resolveKeyServerConfig();
    assert.deepEqual(c, DEFAULT_KEY_SERVER_CONFIG);
    assert.equal(c.maxDevicesPerAccount, 16);
    assert.equal(c.linkTokenTtlMs, 600_000);
    assert.equal(c.maxPreKeysPerUpload, LIMITS.maxPreKeysPerUpload);
    assert.equal(c.maxStoredPreKeys, LIMITS.maxStoredPreKeys);
  });

  it('is deeply frozen', () => {
    const c = resolveKeyServerConfig({ rateLimits: { register: { capacity: 2 } } });
    assert.ok(Object.isFrozen(c));
    assert.ok(Object.isFrozen(c.rateLimits));
    assert.ok(Object.isFrozen(c.rateLimits.register));
    assert.ok(Object.isFrozen(DEFAULT_KEY_SERVER_CONFIG.rateLimits.claimPerTarget));
  });

  it('merges rate limits per field and leaves the others at their defaults', () => {
    const c = resolveKeyServerConfig({ rateLimits: { register: { capacity: 2 } }, maxDevicesPerAccount: 3 });
    assert.deepEqual(c.rateLimits.register, { capacity: 2, windowMs: DEFAULT_KEY_SERVER_CONFIG.rateLimits.register.windowMs });
    assert.deepEqual(c.rateLimits.directory, DEFAULT_KEY_SERVER_CONFIG.rateLimits.directory);
    assert.equal(c.maxDevicesPerAccount, 3);
  });

  it('accepts the edges of every range and refuses one past them', () => {
    const ok = (input: Parameters<typeof resolveKeyServerConfig>[0]) => assert.doesNotThrow(() => resolveKeyServerConfig(input));
    const bad = (input: Parameters<typeof resolveKeyServerConfig>[0]) => assert.throws(() => resolveKeyServerConfig(input), KeyServerConfigError);
    ok({ maxDevicesPerAccount: 1 });
    ok({ maxDevicesPerAccount: LIMITS.maxDevicesPerSend });
    bad({ maxDevicesPerAccount: 0 });
    bad({ maxDevicesPerAccount: LIMITS.maxDevicesPerSend + 1 });
    ok({ maxPreKeysPerUpload: LIMITS.maxPreKeysPerUpload });
    bad({ maxPreKeysPerUpload: LIMITS.maxPreKeysPerUpload + 1 });
    ok({ maxStoredPreKeys: LIMITS.maxStoredPreKeys });
    bad({ maxStoredPreKeys: LIMITS.maxStoredPreKeys + 1 });
    ok({ linkTokenTtlMs: 1000 });
    bad({ linkTokenTtlMs: 999 });
    bad({ linkTokenTtlMs: 1.5e6 + 0.5 });
    bad({ rateLimits: { failedAuth: { capacity: 0 } } });
    bad({ rateLimits: { failedAuth: { windowMs: 0 } } });
    bad({ deviceCacheMaxAccounts: 0 });
  });

  it('refuses unknown settings and unknown rate limits', () => {
    assert.throws(() => resolveKeyServerConfig({ maxDevices: 3 } as never), /unknown setting maxDevices/);
    assert.throws(() => resolveKeyServerConfig({ rateLimits: { login: { capacity: 1 } } } as never), /unknown rate limit login/);
    assert.throws(() => resolveKeyServerConfig({ rateLimits: { register: { burst: 1 } } } as never), /rateLimits.register.burst/);
  });

  it('ignores undefined overrides', () => {
    assert.equal(resolveKeyServerConfig({ maxDevicesPerAccount: undefined }).maxDevicesPerAccount, 16);
  });
});
