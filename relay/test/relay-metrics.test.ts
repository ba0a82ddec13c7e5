// SPDX-License-Identifier: AGPL-3.0-only
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { register as globalRegistry } from 'prom-client';
import { BucketHistogram } from '../src/bucket-histogram.js';
import { RELAY_METRIC_NAMES, RelayMetrics, type RelayMetricSources } from '../src/relay-metrics.js';

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Parses the Prometheus text format (the subset prom-client writes). */
function parse(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    assert.ok(m, `a sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!;
    out.push({ name: m[1]!, labels, value: m[3] === '+Inf' ? Infinity : Number(m[3]) });
  }
  return out;
}

function value(samples: Sample[], name: string, labels: Record<string, string> = {}): number | undefined {
  return samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;
}

function sources(over: Partial<RelayMetricSources> = {}): RelayMetricSources {
  return { connectedDevices: () => 0, provisioningSockets: () => 0, unidentifiedSockets: () => 0, pendingCommits: () => 0, version: '9.9.9', domain: 'chat.example.org', ...over };
}

describe('BucketHistogram', () => {
  it('counts each observation in the first bucket that holds it, cumulatively, with +Inf, sum and count', async () => {
    const h = new BucketHistogram({ name: 'x_seconds', help: 'x', buckets: [0.1, 1, 10] });
    for (const v of [0.05, 0.1, 0.5, 1, 5, 50, Number.NaN, Infinity]) h.observe(v);
    const { values, type } = await h.get();
    assert.equal(type, 'histogram');
    const buckets = values.filter((v) => v.metricName === 'x_seconds_bucket').map((v) => [v.labels.le, v.value]);
    // 0.1 falls in le=0.1 (upper bounds are inclusive); NaN and Infinity are ignored.
    assert.deepEqual(buckets, [[0.1, 2], [1, 4], [10, 5], ['+Inf', 6]]);
    assert.equal(values.find((v) => v.metricName === 'x_seconds_sum')!.value, 0.05 + 0.1 + 0.5 + 1 + 5 + 50);
    assert.equal(values.find((v) => v.metricName === 'x_seconds_count')!.value, 6);
    h.reset();
    assert.equal(h.observations, 0);
  });

  it('refuses bounds that do not increase, and no bounds at all', () => {
    assert.throws(() => new BucketHistogram({ name: 'a', help: 'a', buckets: [] }), RangeError);
    assert.throws(() => new BucketHistogram({ name: 'a', help: 'a', buckets: [1, 1] }), RangeError);
    assert.throws(() => new BucketHistogram({ name: 'a', help: 'a', buckets: [2, 1] }), RangeError);
  });
});

describe('RelayMetrics', () => {
  it('renders every metric; tallies move with traffic and counters report totals, not increments', async () => {
    let connected = 3;
    const m = new RelayMetrics();
    m.bind(sources({ connectedDevices: () => connected, pendingCommits: () => 7 }));
    m.envelopesCommitted(5);
    m.envelopesDelivered('live', 2);
    m.envelopesDelivered('queue', 3);
    m.envelopesDelivered('online', 1);
    m.envelopesAcked(4);
    m.envelopesExpired(1);
    m.connectionOpened();
    m.sendAnswered('ok');
    m.sendAnswered('ok');
    m.sendAnswered('duplicate');
    m.sendAnswered('MISMATCHED_DEVICES');
    m.sendAnswered('FRAME_TOO_LARGE');
    m.rateLimitHit('provisioning_socket');
    m.authFailure('websocket');
    m.pushResult('fcm', 'invalid_token');
    m.deliveryLatencyMs(3);
    m.commitBatch(16, 2);
    let s = parse(await m.render());
    assert.equal(value(s, 'parley_relay_info', { version: '9.9.9', domain: 'chat.example.org' }), 1);
    assert.equal(value(s, 'parley_relay_connected_devices'), 3);
    assert.equal(value(s, 'parley_relay_pending_commits'), 7);
    assert.equal(value(s, 'parley_relay_envelopes_committed_total'), 5);
    assert.equal(value(s, 'parley_relay_envelopes_delivered_total', { path: 'live' }), 2);
    assert.equal(value(s, 'parley_relay_envelopes_delivered_total', { path: 'queue' }), 3);
    assert.equal(value(s, 'parley_relay_envelopes_delivered_total', { path: 'online' }), 1);
    assert.equal(value(s, 'parley_relay_envelopes_acked_total'), 4);
    assert.equal(value(s, 'parley_relay_envelopes_expired_total'), 1);
    assert.equal(value(s, 'parley_relay_connections_opened_total'), 1);
    assert.equal(value(s, 'parley_relay_sends_total', { outcome: 'ok' }), 2);
    assert.equal(value(s, 'parley_relay_sends_total', { outcome: 'duplicate' }), 1);
    assert.equal(value(s, 'parley_relay_sends_total', { outcome: 'MISMATCHED_DEVICES' }), 1);
    assert.equal(value(s, 'parley_relay_sends_total', { outcome: 'FRAME_TOO_LARGE' }), 1);
    assert.equal(value(s, 'parley_relay_sends_total', { outcome: 'QUEUE_FULL' }), 0, 'common outcomes exist from the start');
    assert.equal(value(s, 'parley_relay_rate_limited_total', { limiter: 'provisioning_socket' }), 1);
    assert.equal(value(s, 'parley_relay_auth_failures_total', { transport: 'websocket' }), 1);
    assert.equal(value(s, 'parley_relay_auth_failures_total', { transport: 'http' }), 0);
    assert.equal(value(s, 'parley_relay_push_results_total', { provider: 'fcm', result: 'invalid_token' }), 1);
    assert.equal(value(s, 'parley_relay_delivery_latency_seconds_bucket', { le: '0.0025' }), 0);
    assert.equal(value(s, 'parley_relay_delivery_latency_seconds_bucket', { le: '0.005' }), 1);
    assert.equal(value(s, 'parley_relay_delivery_latency_seconds_sum'), 0.003);
    assert.equal(value(s, 'parley_relay_commit_batch_size_bucket', { le: '8' }), 0);
    assert.equal(value(s, 'parley_relay_commit_batch_size_bucket', { le: '16' }), 1);
    assert.equal(value(s, 'parley_relay_commit_duration_seconds_count'), 1);
    assert.equal(value(s, 'parley_relay_queued_envelopes'), undefined, 'no queue gauge without a source');
    assert.equal(value(s, 'process_cpu_user_seconds_total'), undefined, 'process metrics only when asked');

    // A second scrape reports the same totals (collect replaces, it does not add), then new ones.
    connected = 1;
    m.envelopesCommitted(2);
    m.sendAnswered('ok');
    s = parse(await m.render());
    assert.equal(value(s, 'parley_relay_envelopes_committed_total'), 7);
    assert.equal(value(s, 'parley_relay_sends_total', { outcome: 'ok' }), 3);
    assert.equal(value(s, 'parley_relay_connected_devices'), 1);
    assert.equal(value(s, 'parley_relay_envelopes_delivered_total', { path: 'live' }), 2);
  });

  it('keeps two relays in one process apart and leaves prom-client\u2019s global registry alone', async () => {
    const before = globalRegistry.getMetricsAsArray().length;
    const a = new RelayMetrics({ processMetrics: true });
    const b = new RelayMetrics({ processMetrics: true });
    a.bind(sources({ connectedDevices: () => 1 }));
    b.bind(sources({ connectedDevices: () => 2 }));
    a.envelopesCommitted(10);
    const [sa, sb] = [parse(await a.render()), parse(await b.render())];
    assert.equal(value(sa, 'parley_relay_envelopes_committed_total'), 10);
    assert.equal(value(sb, 'parley_relay_envelopes_committed_total'), 0);
    assert.equal(value(sa, 'parley_relay_connected_devices'), 1);
    assert.equal(value(sb, 'parley_relay_connected_devices'), 2);
    assert.ok(value(sa, 'process_resident_memory_bytes')! > 0 || value(sa, 'nodejs_heap_size_used_bytes')! > 0, 'process metrics when asked');
    assert.equal(globalRegistry.getMetricsAsArray().length, before);
  });

  it('belongs to one relay: a second bind is refused', () => {
    const m = new RelayMetrics();
    m.bind(sources());
    assert.throws(() => m.bind(sources()), /already belong/);
  });

  it('counts limiter names as given, and anything that could be an address or id as other', async () => {
    const m = new RelayMetrics();
    m.bind(sources());
    m.rateLimitHit('http POST /v1/accounts');
    m.rateLimitHit('commit_queue');
    m.rateLimitHit('bad"name{');
    m.rateLimitHit('x'.repeat(200));
    const s = parse(await m.render());
    assert.equal(value(s, 'parley_relay_rate_limited_total', { limiter: 'http POST /v1/accounts' }), 1);
    assert.equal(value(s, 'parley_relay_rate_limited_total', { limiter: 'commit_queue' }), 1);
    assert.equal(value(s, 'parley_relay_rate_limited_total', { limiter: 'other' }), 2);
  });

  it('samples the queue total at most once per interval, and reports NaN when the store fails', async () => {
    let now = 0;
    let calls = 0;
    let total = 5;
    let failing = false;
    const m = new RelayMetrics({ queueSampleMs: 1000, now: () => now });
    m.bind(
      sources({
        queuedEnvelopes: async () => {
          calls++;
          if (failing) throw new Error('store closed');
          return total;
        },
      }),
    );
    assert.equal(value(parse(await m.render()), 'parley_relay_queued_envelopes'), 5);
    total = 9;
    now = 999;
    assert.equal(value(parse(await m.render()), 'parley_relay_queued_envelopes'), 5, 'within the interval: the cached figure');
    assert.equal(calls, 1);
    now = 1000;
    assert.equal(value(parse(await m.render()), 'parley_relay_queued_envelopes'), 9);
    assert.equal(calls, 2);
    failing = true;
    now = 2000;
    assert.ok(Number.isNaN(value(parse(await m.render()), 'parley_relay_queued_envelopes')), 'unknown, not 0');
    failing = false;
    now = 2001;
    assert.equal(value(parse(await m.render()), 'parley_relay_queued_envelopes'), 9, 'a failure is not cached');
  });

  it('reports the sizes of the data files, 0 for a missing one', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'parley-metrics-'));
    writeFileSync(join(dir, 'relay.db'), Buffer.alloc(1234));
    const m = new RelayMetrics({ dataFiles: [join(dir, 'relay.db'), join(dir, 'relay.db-wal')] });
    m.bind(sources());
    const s = parse(await m.render());
    assert.equal(value(s, 'parley_relay_data_bytes', { file: 'relay.db' }), 1234);
    assert.equal(value(s, 'parley_relay_data_bytes', { file: 'relay.db-wal' }), 0);
  });

  it('exports exactly the metric names it lists (the docs test relies on the list)', async () => {
    const m = new RelayMetrics({ dataFiles: ['/nonexistent'] });
    m.bind(sources({ queuedEnvelopes: async () => 0 }));
    m.pushResult('apns', 'sent');
    const names = new Set((await m.render()).split('\n').filter((l) => l.startsWith('# TYPE ')).map((l) => l.split(' ')[2]));
    assert.deepEqual([...names].sort(), [...RELAY_METRIC_NAMES].sort());
  });

  it('costs little on the hot path: a million live deliveries with their latency in well under a second', () => {
    const m = new RelayMetrics();
    const started = performance.now();
    for (let i = 0; i < 1_000_000; i++) {
      m.envelopesDelivered('live', 1);
      m.deliveryLatencyMs(i % 50);
    }
    assert.ok(performance.now() - started < 1000);
  });
});
