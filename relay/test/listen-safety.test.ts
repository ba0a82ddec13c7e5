// SPDX-License-Identifier: AGPL-3.0-only
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError, isLoopbackHost, resolveRelayConfig } from '../src/config.js';
import { parseRelayCommand, relayHelp } from '../src/bin/options.js';

describe('listen safety: TLS, proxy and loopback', () => {
  it('knows loopback addresses, and counts every other address and name as public', () => {
    for (const h of ['127.0.0.1', '127.255.0.9', 'localhost', 'LOCALHOST', '::1', '[::1]', '0:0:0:0:0:0:0:1', '::ffff:127.0.0.1']) {
      assert.equal(isLoopbackHost(h), true, h);
    }
    for (const h of ['0.0.0.0', '::', '10.0.0.1', '192.0.2.1', '::ffff:10.0.0.1', '128.0.0.1', 'chat.example.org', 'localhost.example.org', '']) {
      assert.equal(isLoopbackHost(h), false, h);
    }
  });

  it('refuses a public address without TLS unless behind a proxy', () => {
    assert.throws(
      () => resolveRelayConfig({ host: '0.0.0.0' }),
      (e) => e instanceof ConfigError && /^refusing to listen on 0\.0\.0\.0 without TLS: give --tls-cert and --tls-key, or --behind-proxy/.test(e.message),
    );
    assert.equal(resolveRelayConfig({ host: '0.0.0.0', behindProxy: true }).behindProxy, true);
    assert.equal(resolveRelayConfig({ host: '0.0.0.0', tlsCertFile: '/c.pem', tlsKeyFile: '/k.pem' }).tlsCertFile, '/c.pem');
    assert.equal(resolveRelayConfig({ host: '127.0.0.1' }).tlsCertFile, undefined);
  });

  it('takes the TLS pair whole or not at all, and a metrics token of at least 16 characters', () => {
    assert.throws(() => resolveRelayConfig({ tlsCertFile: '/c.pem' }), /go together/);
    assert.throws(() => resolveRelayConfig({ tlsKeyFile: '/k.pem' }), /go together/);
    assert.throws(() => resolveRelayConfig({ tlsCertFile: '', tlsKeyFile: '/k.pem' }), /non-empty/);
    assert.throws(() => resolveRelayConfig({ metricsToken: 'x'.repeat(15) }), /at least 16/);
    assert.equal(resolveRelayConfig({ metricsToken: 'x'.repeat(16) }).metricsToken, 'x'.repeat(16));
  });

  it('parses --behind-proxy as a switch and PARLEY_BEHIND_PROXY as yes or no', () => {
    const run = (argv: string[], env: Record<string, string> = {}) => {
      const c = parseRelayCommand(argv, env);
      assert.equal(c.kind, 'run');
      return c.kind === 'run' ? c.config : undefined;
    };
    assert.equal(run([])!.behindProxy, false);
    assert.equal(run(['--behind-proxy', '--host', '0.0.0.0'])!.behindProxy, true);
    for (const yes of ['1', 'true', 'YES']) assert.equal(run(['--host', '::'], { PARLEY_BEHIND_PROXY: yes })!.behindProxy, true);
    for (const no of ['0', 'false', 'no']) assert.equal(run([], { PARLEY_BEHIND_PROXY: no })!.behindProxy, false);
    assert.throws(() => parseRelayCommand([], { PARLEY_BEHIND_PROXY: 'maybe' }), (e) => e instanceof ConfigError && /PARLEY_BEHIND_PROXY must be/.test(e.message));
    assert.throws(() => parseRelayCommand(['--behind-proxy=yes'], {}), ConfigError);
  });

  it('reads the TLS files and the metrics token from flags or the environment', () => {
    const c = parseRelayCommand([], { PARLEY_TLS_CERT: '/etc/parley/cert.pem', PARLEY_TLS_KEY: '/etc/parley/key.pem', PARLEY_METRICS_TOKEN: 'a-long-enough-token' });
    assert.equal(c.kind, 'run');
    if (c.kind !== 'run') return;
    assert.equal(c.config.tlsCertFile, '/etc/parley/cert.pem');
    assert.equal(c.config.tlsKeyFile, '/etc/parley/key.pem');
    assert.equal(c.config.metricsToken, 'a-long-enough-token');
    const help = relayHelp();
    for (const s of ['--tls-cert', 'PARLEY_TLS_KEY', '--behind-proxy', 'PARLEY_METRICS_TOKEN']) assert.ok(help.includes(s), s);
    assert.match(help, /--behind-proxy .*\(default off\)/);
    assert.match(help, /--tls-cert .*\(default none\)/);
  });
});
