// SPDX-License-Identifier: AGPL-3.0-only
/**
 * /metrics of a real relay process: scraped before and after traffic, the figures move as the
 * traffic says they must; the bearer token guards the endpoint.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import WebSocket from 'ws';
import { aciToBytes } from '@parley/protocol';
import { DeviceSocket, UpgradeRefused } from '../support/device-socket.js';
import { startRelay, type RelayProcess } from '../support/relay-process.js';
import { registerAccount, type TestDevice } from '../support/test-device.js';

const TOKEN = 'metrics-token-for-the-test-0123456789';

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

class Scrape {
  constructor(readonly samples: Sample[]) {}
  static parse(text: string): Scrape {
    const samples: Sample[] = [];
    for (const line of text.split('\n')) {
      if (line === '' || line.startsWith('#')) continue;
      const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
      assert.ok(m, `a Prometheus sample line: ${line}`);
      const labels: Record<string, string> = {};
      for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!;
      samples.push({ name: m[1]!, labels, value: m[3] === '+Inf' ? Infinity : Number(m[3]) });
    }
    return new Scrape(samples);
  }
  /** The value of the sample with these labels (0 when absent, as for a counter not yet hit). */
  get(name: string, labels: Record<string, string> = {}): number {
    return this.samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value ?? 0;
  }
  has(name: string): boolean {
    return this.samples.some((s) => s.name === name);
  }
}

describe('/metrics of a relay process', () => {
  let relay: RelayProcess;
  let alice: TestDevice;
  let bob: TestDevice;

  async function scrape(): Promise<Scrape> {
    const res = await fetch(`${relay.url}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
    return Scrape.parse(await res.text());
  }

  /** Scrapes until `ok` holds (acks and the queue sample settle a moment after the frames). */
  async function scrapeUntil(ok: (s: Scrape) => boolean, what: string): Promise<Scrape> {
    const deadline = Date.now() + 5000;
    for (;;) {
      const s = await scrape();
      if (ok(s)) return s;
      if (Date.now() > deadline) throw new Error(`metrics never showed ${what}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  before(async () => {
    relay = await startRelay({ env: { PARLEY_METRICS_TOKEN: TOKEN } });
    alice = await registerAccount(relay.url, 'alice');
    bob = await registerAccount(relay.url, 'bob');
  });
  after(async () => {
    await relay.stop();
  });

  it('refuses a scrape without the bearer token or with a wrong one, and counts the failure', async () => {
    const before = await scrape();
    for (const authorization of [undefined, 'Bearer wrong-token-of-some-length', `Basic ${TOKEN}`, `Bearer ${TOKEN}x`]) {
      const res = await fetch(`${relay.url}/metrics`, { headers: authorization ? { authorization } : {} });
      assert.equal(res.status, 401, String(authorization));
      assert.equal(res.headers.get('www-authenticate'), 'Bearer');
      assert.equal(((await res.json()) as { code: string }).code, 'UNAUTHORIZED');
    }
    const afterwards = await scrape();
    assert.equal(afterwards.get('parley_relay_auth_failures_total', { transport: 'http' }) - before.get('parley_relay_auth_failures_total', { transport: 'http' }), 4);
  });

  it('exports the relay\u2019s identity, process figures and database sizes', async () => {
    const s = await scrape();
    assert.equal(s.get('parley_relay_info', { domain: 'localhost', version: '0.1.0' }), 1);
    assert.ok(s.has('process_cpu_user_seconds_total'), 'process metrics');
    assert.ok(s.has('nodejs_eventloop_lag_seconds'), 'event-loop lag');
    assert.ok(s.get('parley_relay_data_bytes', { file: 'keys.db' }) > 0);
    assert.ok(s.get('parley_relay_data_bytes', { file: 'relay.db' }) > 0);
  });

  it('moves with traffic: sends, commits, live and queued deliveries, latency, acks, queue depth, connections', async () => {
    const s0 = await scrape();
    const delta = (s: Scrape, name: string, labels: Record<string, string> = {}) => s.get(name, labels) - s0.get(name, labels);

    // Bob online: three messages go out on the live path.
    const a = await alice.connect();
    const b = await bob.connect();
    await b.drained();
    const s1 = await scrapeUntil((s) => s.get('parley_relay_connected_devices') === 2, 'two connected devices');
    assert.equal(delta(s1, 'parley_relay_connections_opened_total'), 2);
    for (let i = 0; i < 3; i++) {
      const r = await alice.sendText(a, bob.aci, `live ${i}`);
      assert.equal(r.error, undefined);
    }
    await b.waitForEnvelopes(3);
    b.ack(Number(b.envelopes[2]!.seq));

    // The same message id and body again: a duplicate, nothing new committed.
    const id = randomBytes(16);
    const messages = await alice.encryptFor(bob.aci, new TextEncoder().encode('once'));
    for (let i = 0; i < 2; i++) {
      const requestId = a.requestId();
      a.send({ kind: { case: 'send', value: { requestId, destination: aciToBytes(bob.aci), messageId: id, timestamp: BigInt(Date.now()), messages } } });
      const r = await a.answer(requestId);
      assert.equal(r.error, undefined);
    }
    await b.waitForEnvelopes(4);
    b.ack(Number(b.envelopes[3]!.seq));
    // A refused send: it names a device bob does not have.
    const requestId = a.requestId();
    a.send({
      kind: {
        case: 'send',
        value: { requestId, destination: aciToBytes(bob.aci), messageId: randomBytes(16), timestamp: BigInt(Date.now()), messages: [...messages, { ...messages[0]!, deviceId: 7 }] },
      },
    });
    assert.equal((await a.answer(requestId)).error?.code, 'MISMATCHED_DEVICES');

    const s2 = await scrapeUntil((s) => delta(s, 'parley_relay_envelopes_acked_total') === 4, 'four acked envelopes');
    assert.equal(delta(s2, 'parley_relay_sends_total', { outcome: 'ok' }), 4);
    assert.equal(delta(s2, 'parley_relay_sends_total', { outcome: 'duplicate' }), 1);
    assert.equal(delta(s2, 'parley_relay_sends_total', { outcome: 'MISMATCHED_DEVICES' }), 1);
    assert.equal(delta(s2, 'parley_relay_envelopes_committed_total'), 4);
    assert.equal(delta(s2, 'parley_relay_envelopes_delivered_total', { path: 'live' }), 4);
    assert.equal(delta(s2, 'parley_relay_delivery_latency_seconds_count'), 4);
    assert.ok(delta(s2, 'parley_relay_delivery_latency_seconds_sum') > 0);
    assert.ok(delta(s2, 'parley_relay_commit_batch_size_count') >= 1);
    assert.ok(delta(s2, 'parley_relay_commit_duration_seconds_count') >= 1);
    assert.equal(s2.get('parley_relay_queued_envelopes'), 0, 'everything was acked');

    // Bob offline: five messages wait in his queue, then drain from the store when he is back.
    await b.close();
    await scrapeUntil((s) => s.get('parley_relay_connected_devices') === 1, 'bob gone');
    for (let i = 0; i < 5; i++) assert.equal((await alice.sendText(a, bob.aci, `queued ${i}`)).error, undefined);
    const s3 = await scrapeUntil((s) => s.get('parley_relay_queued_envelopes') === 5, 'five queued envelopes');
    assert.equal(delta(s3, 'parley_relay_envelopes_delivered_total', { path: 'queue' }), 0);
    const b2 = await bob.connect();
    await b2.waitForEnvelopes(5);
    await b2.drained();
    b2.ack(Number(b2.envelopes[4]!.seq));
    const s4 = await scrapeUntil((s) => s.get('parley_relay_queued_envelopes') === 0, 'the queue drained');
    assert.equal(delta(s4, 'parley_relay_envelopes_delivered_total', { path: 'queue' }), 5);
    assert.equal(delta(s4, 'parley_relay_delivery_latency_seconds_count'), 4, 'queued envelopes are not live latency');
    assert.equal(delta(s4, 'parley_relay_envelopes_acked_total'), 9);
    await a.close();
    await b2.close();
  });

  it('counts refused device authentications and rate-limit hits by limiter', async () => {
    const s0 = await scrape();
    const wrong = { aci: alice.aci, deviceId: 1, secret: randomBytes(32) };
    await assert.rejects(DeviceSocket.connect(relay.wsUrl, wrong), (e: unknown) => e instanceof UpgradeRefused && e.status === 401);
    // The provisioning socket limiter allows a few dozen sockets a minute per address: open
    // sockets until two are refused.
    const sockets: WebSocket[] = [];
    let refused = 0;
    for (let i = 0; i < 200 && refused < 2; i++) {
      const ws = new WebSocket(relay.url.replace(/^http/, 'ws') + '/v1/provisioning');
      const opened = await new Promise<boolean>((resolve) => {
        ws.once('open', () => resolve(true));
        ws.once('unexpected-response', () => resolve(false));
        ws.once('error', () => resolve(false));
      });
      if (opened) sockets.push(ws);
      else refused++;
    }
    for (const ws of sockets) ws.terminate();
    assert.equal(refused, 2);
    const s = await scrape();
    assert.equal(s.get('parley_relay_auth_failures_total', { transport: 'websocket' }) - s0.get('parley_relay_auth_failures_total', { transport: 'websocket' }), 1);
    assert.equal(s.get('parley_relay_rate_limited_total', { limiter: 'provisioning_socket' }) - s0.get('parley_relay_rate_limited_total', { limiter: 'provisioning_socket' }), 2);
  });
});

describe('/metrics without a token', () => {
  it('is open when no token is configured', async () => {
    const relay = await startRelay();
    try {
      const res = await fetch(`${relay.url}/metrics`);
      assert.equal(res.status, 200);
      assert.match(await res.text(), /^# HELP parley_relay_/m);
    } finally {
      await relay.stop();
    }
  });
});
