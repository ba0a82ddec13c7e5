// SPDX-License-Identifier: AGPL-3.0-only
/**
 * The push settings: defaults, flags and environment, what hangs together, the edges of each
 * range, and opening the senders from credential files (a wrong file stops the relay at start
 * with a message that names the flag and the file, never the key).
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import { parseRelayCommand } from '../src/bin/options.js';
import { ConfigError, resolveRelayConfig, type RelayConfig } from '../src/config.js';
import { openPushSenders } from '../src/push/open-push-senders.js';
import { parseHostPort } from '../src/push/push-config.js';
import { createApnsTestKey, createFcmTestAccount } from '../src/testing/index.js';

const APNS = { pushApnsKeyFile: '/k.p8', pushApnsKeyId: 'ABCDE12345', pushApnsTeamId: 'TEAM123456', pushApnsTopic: 'org.parley.app' };

function run(argv: string[], env: Record<string, string> = {}): RelayConfig {
  const cmd = parseRelayCommand(argv, env);
  assert.equal(cmd.kind, 'run');
  return (cmd as { config: RelayConfig }).config;
}

describe('push configuration', () => {
  it('defaults to log-only push, a 3 s window, 100,000 pending devices, 3 retries from 1 s, production APNs', () => {
    const c = resolveRelayConfig();
    assert.equal(c.pushApnsKeyFile, undefined);
    assert.equal(c.pushFcmServiceAccountFile, undefined);
    assert.equal(c.pushCoalesceMs, 3000);
    assert.equal(c.pushMaxPending, 100_000);
    assert.equal(c.pushRetries, 3);
    assert.equal(c.pushRetryBaseMs, 1000);
    assert.equal(c.pushRetryMaxMs, 60_000);
    assert.equal(c.pushApnsEnvironment, 'production');
  });

  it('reads every push setting from flags and from the environment', () => {
    const c = run(
      ['--push-apns-key-file', '/etc/parley/apns.p8', '--push-apns-key-id', 'ABCDE12345', '--push-apns-team-id', 'TEAM123456', '--push-apns-topic', 'org.parley.app', '--push-coalesce-ms', '500'],
      {
        PARLEY_PUSH_APNS_ENVIRONMENT: 'sandbox',
        PARLEY_PUSH_APNS_ENDPOINT: 'localhost:8443',
        PARLEY_PUSH_APNS_CA_FILE: '/etc/parley/ca.pem',
        PARLEY_PUSH_FCM_SERVICE_ACCOUNT_FILE: '/etc/parley/fcm.json',
        PARLEY_PUSH_FCM_PROJECT_ID: 'parley-prod',
        PARLEY_PUSH_MAX_PENDING: '10',
        PARLEY_PUSH_RETRIES: '0',
      },
    );
    assert.deepEqual(
      [c.pushApnsKeyFile, c.pushApnsKeyId, c.pushApnsTeamId, c.pushApnsTopic, c.pushApnsEnvironment, c.pushApnsEndpoint, c.pushApnsCaFile],
      ['/etc/parley/apns.p8', 'ABCDE12345', 'TEAM123456', 'org.parley.app', 'sandbox', 'localhost:8443', '/etc/parley/ca.pem'],
    );
    assert.deepEqual([c.pushFcmServiceAccountFile, c.pushFcmProjectId, c.pushCoalesceMs, c.pushMaxPending, c.pushRetries], ['/etc/parley/fcm.json', 'parley-prod', 500, 10, 0]);
  });

  const bad: Array<[Partial<RelayConfig>, RegExp]> = [
    [{ pushApnsKeyFile: '/k.p8' }, /together/],
    [{ ...APNS, pushApnsTopic: undefined }, /together/],
    [{ ...APNS, pushApnsKeyId: 'abc' }, /--push-apns-key-id/],
    [{ ...APNS, pushApnsTeamId: 'team12345a' }, /--push-apns-team-id/],
    [{ ...APNS, pushApnsTopic: 'org/parley' }, /--push-apns-topic/],
    [{ ...APNS, pushApnsEnvironment: 'staging' as never }, /--push-apns-environment/],
    [{ ...APNS, pushApnsEndpoint: 'localhost' }, /HOST:PORT/],
    [{ ...APNS, pushApnsEndpoint: 'localhost:70000' }, /HOST:PORT/],
    [{ pushApnsEndpoint: 'localhost:8443' }, /need the APNs credentials/],
    [{ pushApnsCaFile: '/ca.pem' }, /need the APNs credentials/],
    [{ pushFcmProjectId: 'parley-prod' }, /needs --push-fcm-service-account-file/],
    [{ pushFcmServiceAccountFile: '/f.json', pushFcmProjectId: 'Bad_Project' }, /--push-fcm-project-id/],
    [{ pushCoalesceMs: -1 }, /--push-coalesce-ms/],
    [{ pushCoalesceMs: 3_600_001 }, /--push-coalesce-ms/],
    [{ pushMaxPending: 0 }, /--push-max-pending/],
    [{ pushRetries: 21 }, /--push-retries/],
    [{ pushRetryMaxMs: 10, pushRetryBaseMs: 100 }, /pushRetryMaxMs/],
    [{ pushApnsKeyFile: '' }, /must not be empty/],
  ];
  for (const [partial, message] of bad) {
    it(`refuses ${JSON.stringify(partial)} with a ConfigError naming the setting`, () => {
      assert.throws(() => resolveRelayConfig(partial), (e) => e instanceof ConfigError && message.test(e.message));
    });
  }

  it('accepts the edges of each range', () => {
    for (const [k, v] of [['pushCoalesceMs', 0], ['pushCoalesceMs', 3_600_000], ['pushMaxPending', 1], ['pushRetries', 0], ['pushRetries', 20]] as const) {
      assert.equal(resolveRelayConfig({ [k]: v })[k], v);
    }
    assert.equal(resolveRelayConfig({ ...APNS, pushApnsEndpoint: '[::1]:443' }).pushApnsEndpoint, '[::1]:443');
    assert.deepEqual(parseHostPort('[::1]:443'), { host: '::1', port: 443 });
    assert.deepEqual(parseHostPort('api.push.apple.com:2197'), { host: 'api.push.apple.com', port: 2197 });
  });
});

describe('opening the push senders', () => {
  const dir = mkdtempSync(join(tmpdir(), 'parley-push-config-'));
  const log = pino({ level: 'silent' });
  const clock = { now: Date.now };
  const file = (name: string, text: string) => {
    const path = join(dir, name);
    writeFileSync(path, text, { mode: 0o600 });
    return path;
  };

  it('logs wake-ups of both providers when no credentials are given', async () => {
    const senders = openPushSenders(resolveRelayConfig(), { clock, log });
    assert.equal(senders.apns.name, 'log');
    assert.equal(senders.fcm.name, 'log');
  });

  it('opens APNs from a .p8 key and FCM from a service account file', async () => {
    const key = createApnsTestKey();
    const account = createFcmTestAccount('parley-config-test');
    const senders = openPushSenders(
      resolveRelayConfig({ ...APNS, pushApnsKeyFile: file('ok.p8', key.p8), pushFcmServiceAccountFile: file('ok.json', account.json('https://oauth2.googleapis.com/token')) }),
      { clock, log },
    );
    assert.equal(senders.apns.name, 'apns');
    assert.equal(senders.fcm.name, 'fcm');
    await senders.apns.close();
    await senders.fcm.close();
  });

  it('stops with a message naming the flag and file for a missing or wrong credential file, never its content', () => {
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
    const ec = createApnsTestKey().p8;
    const account = JSON.parse(createFcmTestAccount().json('https://oauth2.googleapis.com/token')) as Record<string, string>;
    const cases: Array<[Partial<RelayConfig>, RegExp]> = [
      [{ ...APNS, pushApnsKeyFile: join(dir, 'missing.p8') }, /cannot read --push-apns-key-file .*missing\.p8: ENOENT/],
      [{ ...APNS, pushApnsKeyFile: file('rsa.p8', rsa) }, /--push-apns-key-file .*rsa\.p8 is not an EC P-256 private key/],
      [{ ...APNS, pushApnsKeyFile: file('junk.p8', 'junk') }, /is not an EC P-256 private key/],
      [{ ...APNS, pushApnsKeyFile: file('ca-missing.p8', ec), pushApnsEndpoint: 'localhost:1', pushApnsCaFile: join(dir, 'nope.pem') }, /cannot read --push-apns-ca-file/],
      [{ pushFcmServiceAccountFile: join(dir, 'missing.json') }, /cannot read --push-fcm-service-account-file .*ENOENT/],
      [{ pushFcmServiceAccountFile: file('bad.json', '{') }, /--push-fcm-service-account-file .*bad\.json: the service account file is not JSON/],
      [{ pushFcmServiceAccountFile: file('nokey.json', JSON.stringify({ ...account, private_key: undefined })) }, /has no private_key/],
      [{ pushFcmServiceAccountFile: file('eckey.json', JSON.stringify({ ...account, private_key: ec })) }, /private_key is not an RSA private key/],
    ];
    for (const [partial, message] of cases) {
      assert.throws(
        () => openPushSenders(resolveRelayConfig(partial), { clock, log }),
        (e: unknown) => {
          assert.ok(e instanceof ConfigError, String(e));
          assert.match(e.message, message);
          assert.ok(!e.message.includes('PRIVATE KEY'), 'no key material in the message');
          return true;
        },
      );
    }
  });
});
