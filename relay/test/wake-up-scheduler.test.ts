// SPDX-License-Identifier: AGPL-3.0-only
/**
 * The wake-up scheduler on manual timers: one wake-up per device per window however many
 * envelopes arrive, none for a device that connects first, dead tokens removed (only if still
 * theirs), bounded retries with backoff, a capped pending set, and the metrics of each end.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import type { Aci, DeviceId } from '@parley/protocol';
import type { PushOutcome, PushSender, WakeUp } from '../src/ports/push-sender.js';
import type { PushTokenRecord, PushTokenStore } from '../src/push/wake-up-scheduler.js';
import { WakeUpScheduler } from '../src/push/wake-up-scheduler.js';
import { RelayMetrics } from '../src/relay-metrics.js';
import { ManualTimers } from '../src/testing/index.js';

const ACI = 'a1a1a1a1-0000-4000-8000-00000000000a' as Aci;
const D1 = 1 as DeviceId;
const D2 = 2 as DeviceId;
const key = (d: number) => `${ACI}.${d}`;

class RecordingSender implements PushSender {
  readonly sent: WakeUp[] = [];
  readonly script: PushOutcome[] = [];
  closed = false;
  constructor(readonly name: 'apns' | 'fcm' | 'log') {}
  async send(w: WakeUp): Promise<PushOutcome> {
    this.sent.push(w);
    return this.script.shift() ?? { kind: 'delivered' };
  }
  async close() {
    this.closed = true;
  }
}

class MemoryTokens implements PushTokenStore {
  readonly tokens = new Map<string, PushTokenRecord>();
  removals: string[] = [];
  failNextGet = false;
  async getPushToken(aci: Aci, deviceId: DeviceId) {
    if (this.failNextGet) {
      this.failNextGet = false;
      throw new Error('store down');
    }
    return this.tokens.get(`${aci}.${deviceId}`);
  }
  async removePushToken(aci: Aci, deviceId: DeviceId, onlyIf?: string) {
    const k = `${aci}.${deviceId}`;
    const t = this.tokens.get(k);
    if (!t || (onlyIf !== undefined && t.token !== onlyIf)) return false;
    this.tokens.delete(k);
    this.removals.push(k);
    return true;
  }
}

function setup(over: Partial<ConstructorParameters<typeof WakeUpScheduler>[0]> = {}) {
  const timers = new ManualTimers();
  const apns = new RecordingSender('apns');
  const fcm = new RecordingSender('fcm');
  const tokens = new MemoryTokens();
  const metrics = new RelayMetrics();
  const connected = new Set<string>();
  tokens.tokens.set(key(1), { provider: 'apns', token: 'ab'.repeat(32) });
  tokens.tokens.set(key(2), { provider: 'fcm', token: 'fcm-token-2' });
  const scheduler = new WakeUpScheduler({
    senders: { apns, fcm },
    tokens,
    metrics,
    log: pino({ level: 'silent' }),
    timers,
    isConnected: (d) => connected.has(d),
    coalesceMs: 3000,
    maxPending: 100,
    maxAttempts: 4,
    retryBaseMs: 1000,
    retryMaxMs: 60_000,
    random: () => 1 - Number.EPSILON,
    ...over,
  });
  /** Moves time and waits for the sends it started. */
  const advance = async (ms: number) => {
    timers.advance(ms);
    await scheduler.settled();
  };
  return { timers, apns, fcm, tokens, metrics, connected, scheduler, advance };
}

async function pushCounts(metrics: RelayMetrics): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const line of (await metrics.render()).split('\n')) {
    const m = /^parley_relay_push_results_total\{provider="(\w+)",result="(\w+)"\} (\d+)/.exec(line);
    if (m) out[`${m[1]}/${m[2]}`] = Number(m[3]);
  }
  return out;
}

describe('wake-up scheduler', () => {
  it('sends one wake-up for a burst of 50 envelopes, at the end of the window, counting 49 as coalesced', async () => {
    const t = setup();
    for (let i = 0; i < 50; i++) t.scheduler.envelopeQueued(ACI, D1, false);
    assert.equal(t.scheduler.pending, 1);
    await t.advance(2999);
    assert.equal(t.apns.sent.length, 0, 'nothing before the window ends');
    await t.advance(1);
    assert.deepEqual(t.apns.sent, [{ token: 'ab'.repeat(32), urgent: false, device: key(1) }]);
    assert.equal(t.scheduler.pending, 0);
    assert.deepEqual(await pushCounts(t.metrics), { 'apns/sent': 1, 'apns/coalesced': 49 });
    await t.advance(60_000);
    assert.equal(t.apns.sent.length, 1, 'exactly one');
  });

  it('wakes at high priority when any envelope of the window was urgent', async () => {
    const t = setup();
    t.scheduler.envelopeQueued(ACI, D1, false);
    t.scheduler.envelopeQueued(ACI, D1, true);
    t.scheduler.envelopeQueued(ACI, D1, false);
    await t.advance(3000);
    assert.equal(t.apns.sent[0]!.urgent, true);
  });

  it('sends none to a device that connects within the window, nor for envelopes while it is connected', async () => {
    const t = setup();
    t.scheduler.envelopeQueued(ACI, D1, true);
    t.connected.add(key(1));
    t.scheduler.deviceConnected(key(1));
    assert.equal(t.scheduler.pending, 0);
    assert.equal(t.timers.pending, 0, 'its timer is cleared');
    t.scheduler.envelopeQueued(ACI, D1, true);
    await t.advance(10_000);
    assert.equal(t.apns.sent.length, 0);
    assert.deepEqual(await pushCounts(t.metrics), {});
  });

  it('sends none when the device connected elsewhere in the process by the time the window ends', async () => {
    const t = setup();
    t.scheduler.envelopeQueued(ACI, D1, true);
    t.connected.add(key(1)); // connected, but the relay did not call deviceConnected (a race)
    await t.advance(3000);
    assert.equal(t.apns.sent.length, 0);
  });

  it('starts a new window for envelopes after a wake-up went out', async () => {
    const t = setup();
    t.scheduler.envelopeQueued(ACI, D1, true);
    await t.advance(3000);
    t.scheduler.envelopeQueued(ACI, D1, true);
    await t.advance(3000);
    assert.equal(t.apns.sent.length, 2);
  });

  it('sends each device\u2019s wake-up through its token\u2019s provider, and none to a device without a token', async () => {
    const t = setup();
    t.scheduler.envelopeQueued(ACI, D1, true);
    t.scheduler.envelopeQueued(ACI, D2, true);
    t.scheduler.envelopeQueued(ACI, 3 as DeviceId, true);
    await t.advance(3000);
    assert.equal(t.apns.sent.length, 1);
    assert.deepEqual(t.fcm.sent, [{ token: 'fcm-token-2', urgent: true, device: key(2) }]);
    assert.equal(t.scheduler.pending, 0, 'the tokenless device\u2019s entry is gone too');
  });

  it('removes a token the provider calls dead, and sends nothing for later envelopes', async () => {
    const t = setup();
    t.apns.script.push({ kind: 'dead-token', reason: 'Unregistered' });
    t.scheduler.envelopeQueued(ACI, D1, true);
    await t.advance(3000);
    assert.deepEqual(t.tokens.removals, [key(1)]);
    assert.deepEqual(await pushCounts(t.metrics), { 'apns/invalid_token': 1 });
    t.scheduler.envelopeQueued(ACI, D1, true);
    await t.advance(3000);
    assert.equal(t.apns.sent.length, 1, 'no token, no further wake-up');
  });

  it('keeps a token registered while the dead one was being tried', async () => {
    const t = setup();
    const fresh = { provider: 'apns' as const, token: 'cd'.repeat(32) };
    t.apns.send = async (w) => {
      t.apns.sent.push(w);
      t.tokens.tokens.set(key(1), fresh); // the app re-registered meanwhile
      return { kind: 'dead-token', reason: 'Unregistered' };
    };
    t.scheduler.envelopeQueued(ACI, D1, true);
    await t.advance(3000);
    assert.deepEqual(t.tokens.tokens.get(key(1)), fresh);
  });

  it('retries retryable failures with doubling backoff, then gives up and counts it failed', async () => {
    const t = setup();
    for (let i = 0; i < 4; i++) t.apns.script.push({ kind: 'retry', reason: 'ServiceUnavailable' });
    t.scheduler.envelopeQueued(ACI, D1, true);
    await t.advance(3000);
    const delays: number[] = [];
    for (let i = 0; i < 3; i++) {
      delays.push(t.timers.delays()[0]!);
      await t.advance(delays.at(-1)!);
    }
    assert.deepEqual(delays, [1000, 2000, 4000], 'doubling (random at its top: the full backoff)');
    assert.equal(t.apns.sent.length, 4, 'the first attempt and three retries');
    assert.equal(t.scheduler.pending, 0);
    assert.equal(t.timers.pending, 0);
    assert.deepEqual(await pushCounts(t.metrics), { 'apns/retried': 3, 'apns/failed': 1 });
  });

  it('spreads retries by jitter, honours the provider\u2019s retry time, and caps the backoff', async () => {
    const t = setup({ random: () => 0, retryMaxMs: 5000, maxAttempts: 10 });
    t.apns.script.push({ kind: 'retry', reason: 'x' }, { kind: 'retry', reason: 'x', retryAfterMs: 4000 }, { kind: 'retry', reason: 'x', retryAfterMs: 999_999 });
    t.scheduler.envelopeQueued(ACI, D1, true);
    await t.advance(3000);
    assert.deepEqual(t.timers.delays(), [500], 'half the backoff at the lowest jitter');
    await t.advance(500);
    assert.deepEqual(t.timers.delays(), [4000], 'the provider asked for 4 s');
    await t.advance(4000);
    assert.deepEqual(t.timers.delays(), [5000], 'capped');
    await t.advance(5000);
    assert.equal(t.apns.sent.length, 4);
  });

  it('stops retrying when the device connects', async () => {
    const t = setup();
    t.apns.script.push({ kind: 'retry', reason: 'network' });
    t.scheduler.envelopeQueued(ACI, D1, true);
    await t.advance(3000);
    assert.equal(t.timers.pending, 1, 'a retry is scheduled');
    t.connected.add(key(1));
    t.scheduler.deviceConnected(key(1));
    assert.equal(t.timers.pending, 0);
    await t.advance(60_000);
    assert.equal(t.apns.sent.length, 1);
  });

  it('does not retry a failure that retrying cannot fix, and keeps the token', async () => {
    const t = setup();
    t.apns.script.push({ kind: 'failed', reason: 'TopicDisallowed' });
    t.scheduler.envelopeQueued(ACI, D1, true);
    await t.advance(3000);
    await t.advance(60_000);
    assert.equal(t.apns.sent.length, 1);
    assert.equal(t.tokens.tokens.size, 2);
    assert.deepEqual(await pushCounts(t.metrics), { 'apns/failed': 1 });
  });

  it('caps the pending set: wake-ups past it are dropped and counted, memory does not grow', async () => {
    const t = setup({ maxPending: 3 });
    for (let d = 1; d <= 10; d++) t.scheduler.envelopeQueued(ACI, d as DeviceId, true);
    assert.equal(t.scheduler.pending, 3);
    assert.equal(t.timers.pending, 3);
    t.scheduler.envelopeQueued(ACI, D1, true);
    assert.equal(t.scheduler.pending, 3, 'a pending device still folds envelopes in');
    const text = await t.metrics.render();
    assert.match(text, /parley_relay_rate_limited_total\{limiter="push_pending"\} 7/);
  });

  it('survives a failing token store: the wake-up is dropped and the next window works', async () => {
    const t = setup();
    t.tokens.failNextGet = true;
    t.scheduler.envelopeQueued(ACI, D1, true);
    await t.advance(3000);
    assert.equal(t.scheduler.pending, 0);
    t.scheduler.envelopeQueued(ACI, D1, true);
    await t.advance(3000);
    assert.equal(t.apns.sent.length, 1);
  });

  it('on close drops pending wake-ups, ignores new envelopes and closes every sender', async () => {
    const t = setup();
    t.scheduler.envelopeQueued(ACI, D1, true);
    await t.scheduler.close();
    assert.equal(t.timers.pending, 0);
    t.scheduler.envelopeQueued(ACI, D2, true);
    await t.advance(10_000);
    assert.equal(t.apns.sent.length + t.fcm.sent.length, 0);
    assert.ok(t.apns.closed && t.fcm.closed);
  });
});
