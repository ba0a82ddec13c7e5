// SPDX-License-Identifier: AGPL-3.0-only
/** The log-only push adapter against the push port contract, and what its log line holds. */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { createLogPushSender } from '../src/push/log-push-sender.js';
import { createRelayLogger } from '../src/relay-logger.js';
import { describePushSenderContract, randomApnsToken } from '../src/testing/index.js';

function capturedLogger() {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(...chunk.toString('utf8').split('\n').filter((l) => l.length > 0));
      done();
    },
  });
  return { log: createRelayLogger('info', stream), lines };
}

describePushSenderContract('log', { canRefuse: false, logs: true }, async () => {
  const { log, lines } = capturedLogger();
  const sender = createLogPushSender({ log, provider: 'apns' });
  return {
    sender,
    identifiesBy: 'device',
    newToken: randomApnsToken,
    received: () =>
      lines
        .map((l) => JSON.parse(l) as { device: string; urgent: boolean; provider: string })
        .map((o) => ({ target: o.device, priority: o.urgent ? ('high' as const) : ('low' as const), payload: JSON.stringify({ provider: o.provider, wake: true }) })),
    logs: () => lines.join('\n'),
    stop: async () => {},
  };
});

describe('log push adapter', () => {
  it('logs one JSON line per wake-up with the device, provider and priority, at info', async () => {
    const { log, lines } = capturedLogger();
    const sender = createLogPushSender({ log, provider: 'fcm' });
    await sender.send({ token: 'secret-token-value', urgent: false, device: 'a1a1a1a1-0000-4000-8000-00000000000a.3' });
    assert.equal(lines.length, 1);
    const line = JSON.parse(lines[0]!) as Record<string, unknown>;
    assert.equal(line.level, 30);
    assert.equal(line.component, 'push');
    assert.equal(line.device, 'a1a1a1a1-0000-4000-8000-00000000000a.3');
    assert.equal(line.provider, 'fcm');
    assert.equal(line.urgent, false);
    assert.ok(!lines[0]!.includes('secret-token-value'));
    assert.equal(sender.name, 'log');
  });
});
