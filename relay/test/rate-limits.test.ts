// SPDX-License-Identifier: AGPL-3.0-only
/** The relay's rate limit settings: flags, `--rate-limits`, `--redis`, and the send admission check. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createInProcessRateLimiterBackend, DEFAULT_KEY_SERVER_CONFIG } from '@parley/keyserver';
import { ParleyError, type Aci, type DeviceId } from '@parley/protocol';
import { parseRelayCommand } from '../src/bin/options.js';
import { ConfigError, resolveRelayConfig, type RelayConfig } from '../src/config.js';
import { createDestinationAdmission, createSendAdmission, keyServerRateLimits, parseRateLimitSpec, relayRateLimits } from '../src/rate-limits.js';
import { RelayMetrics } from '../src/relay-metrics.js';

const run = (argv: string[], env: Record<string, string> = {}): RelayConfig => {
  const cmd = parseRelayCommand(argv, env);
  assert.equal(cmd.kind, 'run');
  return (cmd as { config: RelayConfig }).config;
};

describe('relay rate limit settings', () => {
  it('defaults to 600 sends a minute per device (a bucket of 2,000), 1,800 per account (3,000), 120 a minute to one destination (600 at once), 50 failed logins per address, in process', () => {
    const c = resolveRelayConfig();
    assert.deepEqual(relayRateLimits(c), {
      sendPerAccount: { capacity: 3000, windowMs: 100_000 },
      sendPerDevice: { capacity: 2000, windowMs: 200_000 },
      sendPerDestination: { capacity: 600, windowMs: 300_000 },
      provisioning: { capacity: 20, windowMs: 60_000 },
      senderCertificate: { capacity: 20, windowMs: 600_000 },
      unidentifiedSocket: { capacity: 60, windowMs: 60_000 },
      unidentifiedSend: { capacity: 1200, windowMs: 60_000 },
      accessKeyFailure: { capacity: 60, windowMs: 60_000 },
      presenceSubscribe: { capacity: 20, windowMs: 60_000 },
      presenceSet: { capacity: 60, windowMs: 60_000 },
    });
    assert.equal(c.redisUrl, undefined);
    const ks = keyServerRateLimits(c);
    assert.deepEqual(ks.failedAuth, DEFAULT_KEY_SERVER_CONFIG.rateLimits.failedAuth);
    assert.deepEqual(ks.register, DEFAULT_KEY_SERVER_CONFIG.rateLimits.register);
    assert.equal(ks.claimPerTarget, undefined, 'left to the key server\u2019s default');
  });

  it('takes the dedicated flags and env vars; 0 switches a send limit off', () => {
    const c = run(['--rate-limit-sends-per-minute', '0', '--rate-limit-auth-failures-per-minute', '7'], { PARLEY_RATE_LIMIT_DEVICE_SENDS_PER_MINUTE: '30' });
    const own = relayRateLimits(c);
    assert.equal(own.sendPerAccount, undefined);
    assert.deepEqual(own.sendPerDevice, { capacity: 2000, windowMs: 4_000_000 }, '30 a minute sustained, in the burst bucket');
    assert.deepEqual(relayRateLimits(run(['--rate-limit-device-sends-per-minute', '5000'])).sendPerDevice, { capacity: 5000, windowMs: 60_000 }, 'a rate above the burst is its own bucket');
    assert.deepEqual(keyServerRateLimits(c).failedAuth, { capacity: 7, windowMs: 60_000 });
  });

  it('parses --rate-limits for any limit, with units, and lets it win over the flags', () => {
    const c = run(['--rate-limit-device-sends-per-minute', '30', '--rate-limits', 'sendPerDevice=5/10s, claimPerTarget=100/10m,linkToken=3/1h,provisioning=2/500ms,sendPerAccount=off']);
    const own = relayRateLimits(c);
    assert.deepEqual(own.sendPerDevice, { capacity: 5, windowMs: 10_000 });
    assert.equal(own.sendPerAccount, undefined);
    assert.deepEqual(own.provisioning, { capacity: 2, windowMs: 500 });
    const ks = keyServerRateLimits(c);
    assert.deepEqual(ks.claimPerTarget, { capacity: 100, windowMs: 600_000 });
    assert.deepEqual(ks.linkToken, { capacity: 3, windowMs: 3_600_000 });
    assert.ok(Object.isFrozen(c.rateLimits) && Object.isFrozen(c.rateLimits.sendPerDevice));
    assert.deepEqual(parseRateLimitSpec('directory=1/1d'), { directory: { capacity: 1, windowMs: 86_400_000 } });
    assert.deepEqual(run([], { PARLEY_RATE_LIMITS: 'register=9/1h' }).rateLimits, { register: { capacity: 9, windowMs: 3_600_000 } });
  });

  const bad: Array<[string[], RegExp]> = [
    [['--rate-limits', 'sendPerDevice=5'], /name=CAPACITY\/WINDOW/],
    [['--rate-limits', 'sendPerDevice=5/10'], /name=CAPACITY\/WINDOW/],
    [['--rate-limits', 'sendPerDevice=5/10y'], /name=CAPACITY\/WINDOW/],
    [['--rate-limits', 'sendPerDevice=-1/1s'], /name=CAPACITY\/WINDOW/],
    [['--rate-limits', 'login=5/1s'], /unknown rate limit login/],
    [['--rate-limits', 'sendPerDevice=0/1s'], /capacity must be an integer from 1/],
    [['--rate-limits', 'sendPerDevice=5/0s'], /window must be from 1 ms to 7 days/],
    [['--rate-limits', 'sendPerDevice=5/8d'], /window must be from 1 ms to 7 days/],
    [['--rate-limits', 'failedAuth=off'], /cannot be switched off/],
    [['--rate-limits', 'directory=1/1s,directory=2/1s'], /given twice/],
    [['--rate-limit-sends-per-minute', '10000001'], /sendsPerAccountPerMinute/],
    [['--rate-limit-auth-failures-per-minute', '0'], /authFailuresPerMinute/],
    [['--redis', 'http://cache:6379'], /--redis must be a redis:\/\//],
    [['--redis', 'redis://'], /--redis must be a redis:\/\//],
  ];
  for (const [argv, message] of bad) {
    it(`refuses ${argv.join(' ')} at start, naming the problem`, () => {
      assert.throws(() => parseRelayCommand(argv, {}), (e) => e instanceof ConfigError && message.test(e.message));
    });
  }

  it('checks overrides given in code too', () => {
    assert.throws(() => resolveRelayConfig({ rateLimits: { nope: { capacity: 1, windowMs: 1 } } }), (e) => e instanceof ConfigError && /unknown rate limit nope/.test(e.message));
    assert.throws(() => resolveRelayConfig({ rateLimits: { directory: { capacity: 1.5, windowMs: 1 } } }), ConfigError);
    assert.equal(resolveRelayConfig({ redisUrl: 'rediss://:pw@cache.example.org:6380/2' }).redisUrl, 'rediss://:pw@cache.example.org:6380/2');
  });
});

describe('send admission', () => {
  const alice = { aci: '11111111-1111-4111-8111-111111111111' as Aci, deviceId: 1 as DeviceId };
  const alice2 = { ...alice, deviceId: 2 as DeviceId };
  const t = { now: () => 1_700_000_000_000 };
  const limited = (retryAfterMs: number) => (e: unknown) => e instanceof ParleyError && e.code === 'RATE_LIMITED' && e.details.retryAfterMs === retryAfterMs;

  it('takes from the device bucket, then the account bucket, and counts each refusal by limiter', async () => {
    const metrics = new RelayMetrics();
    const admit = createSendAdmission(createInProcessRateLimiterBackend({ clock: t }), {
      sendPerDevice: { capacity: 2, windowMs: 60_000 },
      sendPerAccount: { capacity: 3, windowMs: 60_000 },
    }, metrics);
    await admit(alice);
    await admit(alice);
    await assert.rejects(admit(alice), limited(30_000), 'device 1 spent its two');
    await admit(alice2);
    await assert.rejects(admit(alice2), limited(20_000), 'the account spent its three');
    const text = await metrics.render();
    assert.match(text, /parley_relay_rate_limited_total\{limiter="send_per_device"\} 1/);
    assert.match(text, /parley_relay_rate_limited_total\{limiter="send_per_account"\} 1/);
  });

  it('admits everything when both send limits are off', async () => {
    const admit = createSendAdmission(createInProcessRateLimiterBackend({ clock: t }), { sendPerDevice: undefined, sendPerAccount: undefined }, new RelayMetrics());
    for (let i = 0; i < 1000; i++) await admit(alice);
  });

  it('bounds sends from one account to one destination, across its devices, but not to its own account', async () => {
    const metrics = new RelayMetrics();
    const admit = createDestinationAdmission(createInProcessRateLimiterBackend({ clock: t }), { sendPerDestination: { capacity: 2, windowMs: 60_000 } }, metrics);
    const bob = '4c8a2f1e-9b3d-4e6a-8c1f-2d3e4f5a6b7c' as Aci;
    const carol = '5d9b3a2f-0c4e-4f7b-9d2a-3e4f5a6b7c8d' as Aci;
    await admit(alice, bob);
    await admit(alice2, bob);
    await assert.rejects(admit(alice, bob), limited(30_000), 'the account spent its two to bob');
    await admit(alice, carol);
    for (let i = 0; i < 10; i++) await admit(alice, alice.aci);
    assert.match(await metrics.render(), /parley_relay_rate_limited_total\{limiter="send_per_destination"\} 1/);
    const off = createDestinationAdmission(createInProcessRateLimiterBackend({ clock: t }), { sendPerDestination: undefined }, metrics);
    for (let i = 0; i < 100; i++) await off(alice, bob);
  });
});
