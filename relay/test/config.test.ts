// SPDX-License-Identifier: AGPL-3.0-only
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError, DEFAULT_RELAY_CONFIG, resolveRelayConfig } from '../src/config.js';
import { parseRelayCommand, relayHelp, RELAY_OPTIONS } from '../src/bin/options.js';

describe('relay configuration', () => {
  it('defaults to loopback, port 7070, ./data, localhost, 16 devices, 30 days', () => {
    const c = resolveRelayConfig();
    assert.equal(c.host, '127.0.0.1');
    assert.equal(c.port, 7070);
    assert.equal(c.dataDir, './data');
    assert.equal(c.domain, 'localhost');
    assert.equal(c.maxDevicesPerAccount, 16);
    assert.equal(c.retentionMs, 30 * 86_400_000);
    assert.ok(Object.isFrozen(c));
  });

  it('takes flags over environment over defaults', () => {
    const cmd = parseRelayCommand(['--port', '9000', '--domain', 'Chat.Example.org'], { PARLEY_PORT: '8000', PARLEY_DATA: '/srv/parley', PARLEY_RETENTION_DAYS: '7' });
    assert.equal(cmd.kind, 'run');
    if (cmd.kind !== 'run') return;
    assert.equal(cmd.config.port, 9000);
    assert.equal(cmd.config.dataDir, '/srv/parley');
    assert.equal(cmd.config.domain, 'chat.example.org');
    assert.equal(cmd.config.retentionMs, 7 * 86_400_000);
  });

  const bad: Array<[string[], RegExp]> = [
    [['--port', '65536'], /port/],
    [['--port', '-1'], /port/],
    [['--port', 'abc'], /whole number/],
    [['--max-devices', '0'], /maxDevicesPerAccount/],
    [['--max-devices', '65'], /maxDevicesPerAccount/],
    [['--domain', 'not a domain'], /domain/],
    [['--sqlite-sync', 'off'], /sqliteSynchronous/],
    [['--window', '0'], /windowEnvelopes/],
    [['--bogus'], /--help/],
    [['positional'], /--help/],
  ];
  for (const [argv, message] of bad) {
    it(`refuses ${argv.join(' ')} with a ConfigError naming the setting`, () => {
      assert.throws(() => parseRelayCommand(argv, {}), (e) => e instanceof ConfigError && message.test(e.message));
    });
  }

  it('accepts the edges of each range', () => {
    for (const [k, v] of [['maxDevicesPerAccount', 1], ['maxDevicesPerAccount', 64], ['port', 0], ['port', 65535], ['windowEnvelopes', 1]] as const) {
      assert.equal(resolveRelayConfig({ [k]: v })[k], v);
    }
  });

  it('refuses unknown settings', () => {
    assert.throws(() => resolveRelayConfig({ nope: 1 } as never), ConfigError);
  });

  it('documents every option with its default in --help', () => {
    const help = relayHelp();
    for (const o of RELAY_OPTIONS) {
      assert.ok(help.includes(`--${o.flag}`), o.flag);
      assert.ok(help.includes(o.env), o.env);
    }
    assert.ok(help.includes(String(DEFAULT_RELAY_CONFIG.port)));
  });
});
