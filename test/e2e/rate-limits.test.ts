// SPDX-License-Identifier: AGPL-3.0-only
/**
 * Rate limits on a real relay process: a burst of sends past the per-device and per-account
 * limits is refused with RATE_LIMITED and a retry time, nothing of a refused send is queued,
 * and waiting that time is enough; the client engine reschedules a refused send by the relay's
 * retry time and delivers it; with --redis the buckets live in Redis and outlast a restart.
 */
import assert from 'node:assert/strict';
import { randomBytes, randomUUID as randomUuid } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { aciToBytes, type Aci, type ErrorFrame, type SendResult } from '@parley/protocol';
import type { MessageView } from '@parley/client';
import type { DeviceSocket } from '../support/device-socket.js';
import { UpgradeRefused } from '../support/device-socket.js';
import { fullHistory, openRecording, type RecordingClient } from '../support/client-harness.js';
import { redisServerSkipReason, startRedisServer, type RedisServerProcess } from '../support/redis-server.js';
import { startRelay, type RelayProcess } from '../support/relay-process.js';
import { http, linkDevice, registerAccount, type TestDevice } from '../support/test-device.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Encrypts every text first, then writes all Send frames back to back (so the burst reaches the
 * relay within milliseconds), and collects the answers in order.
 */
async function burst(from: TestDevice, socket: DeviceSocket, to: TestDevice, texts: readonly string[]) {
  const frames = [];
  for (const text of texts) {
    const messages = await from.encryptFor(to.aci, new TextEncoder().encode(text));
    frames.push({ requestId: socket.requestId(), destination: aciToBytes(to.aci), messageId: randomBytes(16), timestamp: BigInt(Date.now()), messages });
  }
  for (const value of frames) socket.send({ kind: { case: 'send', value } });
  const answers: Array<{ text: string; result?: SendResult; error?: ErrorFrame }> = [];
  for (const [i, f] of frames.entries()) answers.push({ text: texts[i]!, ...(await socket.answer(f.requestId)) });
  return answers;
}

async function sendOne(from: TestDevice, socket: DeviceSocket, to: Aci, text: string) {
  return from.sendText(socket, to, text);
}

describe('rate limits on a relay process: sends per device and per account', () => {
  let relay: RelayProcess;
  let alice: TestDevice, bob: TestDevice, carol1: TestDevice, carol2: TestDevice;

  before(async () => {
    // 5 sends per device and 8 per account at once, each refilled at one per second.
    relay = await startRelay({ args: ['--rate-limits', 'sendPerDevice=5/5s,sendPerAccount=8/8s'] });
    alice = await registerAccount(relay.url, 'alice');
    bob = await registerAccount(relay.url, 'bob');
    carol1 = await registerAccount(relay.url, 'carol');
    carol2 = await linkDevice(carol1);
  });
  after(async () => {
    await relay?.stop();
  });

  it('refuses a burst past the device limit with retry_after_ms, queues none of it, and takes a send after that wait', async () => {
    const a = await alice.connect();
    const texts = Array.from({ length: 8 }, (_, i) => `burst ${i}`);
    const answers = await burst(alice, a, bob, texts);
    const accepted = answers.filter((x) => x.result);
    const refused = answers.filter((x) => x.error);
    assert.deepEqual(accepted.map((x) => x.text), texts.slice(0, 5), 'the first five fit the bucket');
    assert.equal(refused.length, 3);
    for (const r of refused) {
      assert.equal(r.error!.code, 'RATE_LIMITED');
      assert.ok(r.error!.retryAfterMs > 0 && r.error!.retryAfterMs <= 1000, `retry_after_ms ${r.error!.retryAfterMs}: one token a second`);
    }

    // The recipient gets exactly the accepted ones: nothing of a refused send was queued.
    const b = await bob.connect();
    await b.drained();
    await b.sync();
    assert.equal(b.envelopes.length, 5);
    const plain = [];
    for (const e of b.envelopes) plain.push(await bob.decrypt(e));
    assert.deepEqual(plain, texts.slice(0, 5));

    // Refused right now, then accepted after exactly the time the relay named.
    const again = await sendOne(alice, a, bob.aci, 'too soon');
    assert.equal(again.error?.code, 'RATE_LIMITED');
    await sleep(again.error!.retryAfterMs);
    const later = await sendOne(alice, a, bob.aci, 'after waiting');
    assert.equal(later.error, undefined, `refused again: ${later.error?.code} ${later.error?.retryAfterMs}`);
    await b.waitForEnvelopes(6);
    assert.equal(await bob.decrypt(b.envelopes[5]!), 'after waiting');
    await a.close();
    await b.close();
  });

  it('shares the account limit between the account\u2019s devices', async () => {
    const [c1, c2] = await Promise.all([carol1.connect(), carol2.connect()]);
    const first = await burst(carol1, c1, bob, ['c1 0', 'c1 1', 'c1 2', 'c1 3', 'c1 4']);
    assert.equal(first.filter((x) => x.result).length, 5, 'device 1 stays within its own five');
    const second = await burst(carol2, c2, bob, ['c2 0', 'c2 1', 'c2 2', 'c2 3', 'c2 4']);
    assert.deepEqual(second.map((x) => (x.result ? 'ok' : x.error!.code)), ['ok', 'ok', 'ok', 'RATE_LIMITED', 'RATE_LIMITED'], 'the account had 3 of 8 left');
    const b = await bob.connect();
    await b.drained();
    await b.sync();
    const fromCarol = b.envelopes.filter((e) => Buffer.from(e.source).equals(Buffer.from(aciToBytes(carol1.aci))));
    assert.equal(fromCarol.length, 8, 'exactly the accepted sends were queued');
    await Promise.all([c1.close(), c2.close(), b.close()]);
  });
});

describe('default send limits on a relay process: bursts for large groups, one destination bounded', () => {
  let relay: RelayProcess;
  let alice: TestDevice, bob: TestDevice;

  before(async () => {
    relay = await startRelay();
    alice = await registerAccount(relay.url, 'alice');
    bob = await registerAccount(relay.url, 'bob');
  });
  after(async () => {
    await relay?.stop();
  });

  /** Writes `n` Send frames back to back, to `destination(i)`, and answers each one's refusal code ('ok' when taken). */
  async function fire(socket: DeviceSocket, n: number, destination: (i: number) => Uint8Array, content: Uint8Array, registrationId = 1): Promise<string[]> {
    const ids: number[] = [];
    for (let i = 0; i < n; i++) {
      const requestId = socket.requestId();
      ids.push(requestId);
      const value = { requestId, destination: destination(i), messageId: randomBytes(16), timestamp: BigInt(Date.now()), messages: [{ deviceId: 1, registrationId, type: 1, content }] };
      socket.send({ kind: { case: 'send', value } });
    }
    const out: string[] = [];
    for (const id of ids) {
      const a = await socket.answer(id, 30_000);
      out.push(a.result ? 'ok' : a.error!.code);
    }
    return out;
  }

  it('takes a sender-key distribution to 1,000 accounts at once, in seconds', async () => {
    // A thousand destinations that do not exist: each send passes the limits, then is NOT_FOUND
    // (the limits come first, so every one took its tokens), and nothing is queued anywhere.
    const a = await alice.connect();
    const started = Date.now();
    const codes = await fire(a, 1000, () => aciToBytes(randomUuid() as Aci), new Uint8Array(64));
    assert.equal(codes.filter((c) => c === 'RATE_LIMITED').length, 0, 'no send of the burst was limited');
    assert.equal(codes.filter((c) => c === 'NOT_FOUND').length, 1000);
    assert.ok(Date.now() - started < 15_000, `the burst took ${Date.now() - started} ms`);
    await a.close();
  });

  it('refuses the 601st send at once from one account to one other account, and nothing of it is queued', async () => {
    const a = await alice.connect();
    // Opaque bytes are enough: the relay neither reads nor checks them; the device list must match.
    const [device] = await alice.ensureSessions(bob.aci);
    const codes = await fire(a, 605, () => aciToBytes(bob.aci), new Uint8Array(64), device!.registrationId);
    assert.deepEqual(codes.slice(0, 600), Array(600).fill('ok'));
    assert.deepEqual(codes.slice(600), Array(5).fill('RATE_LIMITED'), 'sendPerDestination');
    const b = await bob.connect();
    await b.drained();
    await b.sync();
    assert.equal(b.envelopes.length, 600, 'only the admitted ones were queued');
    // The bound is per destination: the same sender still reaches others.
    const others = await fire(a, 3, () => aciToBytes(randomUuid() as Aci), new Uint8Array(64));
    assert.deepEqual(others, ['NOT_FOUND', 'NOT_FOUND', 'NOT_FOUND']);
    await a.close();
    await b.close();
  });
});

/** A relay process started with `args`, and alice and bob registered on it through the client engine. */
async function twoPeople(args: readonly string[]): Promise<{ relay: RelayProcess; alice: RecordingClient; bob: RecordingClient; stop: () => Promise<void> }> {
  const relay = await startRelay({ args });
  const alice = await openRecording();
  const bob = await openRecording();
  await alice.client.register(relay.url, 'alice');
  await bob.client.register(relay.url, 'bob');
  const stop = async () => {
    await alice.client.close();
    await bob.client.close();
    await relay.stop();
  };
  return { relay, alice, bob, stop };
}

describe('the client engine honours RATE_LIMITED', () => {
  let alice: RecordingClient, bob: RecordingClient;
  let stop: (() => Promise<void>) | undefined;

  before(async () => {
    // Two sends at once, then one every 500 ms: well under the engine's own first backoff (1 s).
    ({ alice, bob, stop } = await twoPeople(['--rate-limits', 'sendPerDevice=2/1s']));
  });
  after(async () => {
    await stop?.();
  });

  it('reschedules a refused send by the relay\u2019s retry time and delivers everything', async () => {
    const texts = ['one', 'two', 'three', 'four'];
    const sent = await Promise.all(texts.map((t) => alice.client.send('bob', t)));
    const status = () => new Map(fullHistory(alice.client, 'bob').map((m) => [m.id, m.status]));
    const pending = sent.filter((m) => status().get(m.id) === 'pending');
    assert.ok(pending.length >= 1, `some of a burst of four is refused (statuses ${[...status().values()].join(', ')})`);

    // 700 ms: past the relay's retry time (at most 500 ms, which the engine paces a quarter
    // slower: 625 ms for the first refused send), before the engine's backoff would be due (1 s).
    // A send that goes out now was rescheduled by retry_after_ms.
    await sleep(700);
    const before = pending.filter((m) => status().get(m.id) === 'sent').length;
    await alice.client.receive();
    const after = pending.filter((m) => status().get(m.id) === 'sent').length;
    assert.ok(after > before, 'a refused send went out once the relay\u2019s retry time had passed');

    for (let round = 0; round < 20 && sent.some((m) => status().get(m.id) !== 'sent'); round++) {
      await sleep(500);
      await alice.client.receive();
    }
    assert.deepEqual(sent.map((m) => status().get(m.id)), ['sent', 'sent', 'sent', 'sent'], 'everything left the outbox');

    const got: MessageView[] = await bob.client.receive();
    assert.deepEqual(got.map((m) => m.text).sort(), [...texts].sort(), 'bob got each message once');
    assert.deepEqual(fullHistory(bob.client, 'alice').map((m) => m.id), fullHistory(alice.client, 'bob').map((m) => m.id), 'in the same order on both sides');
  });
});

describe('the client engine past its burst: refused sends are spread at the refill pace', () => {
  let relay: RelayProcess;
  let alice: RecordingClient;
  let bob: RecordingClient;
  let stop: (() => Promise<void>) | undefined;

  before(async () => {
    // Ten at once, then ten a second.
    ({ relay, alice, bob, stop } = await twoPeople(['--rate-limits', 'sendPerDevice=10/1s']));
  });
  after(async () => {
    await stop?.();
  });

  const refusals = async () => {
    const text = await (await fetch(`${relay.url}/metrics`)).text();
    return Number(/^parley_relay_rate_limited_total\{limiter="send_per_device"\} (\S+)$/m.exec(text)?.[1] ?? 0);
  };

  it('delivers a burst of 60 with about one refusal per send past the bucket, not one per send per retry', async () => {
    const texts = Array.from({ length: 60 }, (_, i) => `burst ${i}`);
    const sent = await Promise.all(texts.map((t) => alice.client.send('bob', t)));
    const status = () => new Map(fullHistory(alice.client, 'bob').map((m) => [m.id, m.status]));
    for (let round = 0; round < 40 && sent.some((m) => status().get(m.id) !== 'sent'); round++) {
      await sleep(250);
      await alice.client.receive();
    }
    assert.ok(sent.every((m) => status().get(m.id) === 'sent'), 'everything left the outbox');
    const refused = await refusals();
    // About 50 sends do not fit the bucket of ten; each is refused about once and then waits its
    // turn (about 50 here). Sent back all at once after each refusal they were refused ~500 times.
    assert.ok(refused >= 40 && refused <= 80, `${refused} refusals`);
    const got: MessageView[] = await bob.client.receive();
    assert.equal(got.length, 60, 'bob got each message once');
  });
});

const skip = redisServerSkipReason();

describe('rate limits in Redis (--redis)', skip ? { skip } : {}, () => {
  let redis: RedisServerProcess;
  let relay: RelayProcess;
  let alice: TestDevice, bob: TestDevice;
  const args = () => ['--redis', redis.url, '--rate-limits', 'sendPerDevice=3/1m', '--rate-limit-auth-failures-per-minute', '2'];

  before(async () => {
    redis = await startRedisServer();
    relay = await startRelay({ args: args() });
    alice = await registerAccount(relay.url, 'alice');
    bob = await registerAccount(relay.url, 'bob');
  });
  after(async () => {
    await relay?.stop();
    await redis?.stop();
  });

  it('limits sends by --rate-limits and keeps the buckets across a relay restart', async () => {
    let a = await alice.connect();
    const answers = await burst(alice, a, bob, ['r0', 'r1', 'r2', 'r3']);
    assert.deepEqual(answers.map((x) => (x.result ? 'ok' : x.error!.code)), ['ok', 'ok', 'ok', 'RATE_LIMITED']);
    const wait = answers[3]!.error!.retryAfterMs;
    assert.ok(wait > 19_000 && wait <= 20_000, `3 a minute: one token every 20 s (retry_after_ms ${wait})`);
    await a.close();

    // An in-process bucket would start full after a restart; the one in Redis is still empty.
    assert.equal(await relay.stop(), 0);
    relay = await startRelay({ dataDir: relay.dataDir, port: relay.port, args: args() });
    a = await alice.connect();
    const afterRestart = await sendOne(alice, a, bob.aci, 'after restart');
    assert.equal(afterRestart.error?.code, 'RATE_LIMITED');
    assert.ok(afterRestart.error!.retryAfterMs > 0 && afterRestart.error!.retryAfterMs <= wait);
    await a.close();
  });

  it('counts failed authentications per address in Redis: past the limit even the right secret is refused', async () => {
    const wrong = `Basic ${Buffer.from(`${alice.aci}.1:${Buffer.from(randomBytes(32)).toString('base64url')}`).toString('base64')}`;
    for (let i = 0; i < 2; i++) assert.equal((await http(relay.url, 'GET', '/v1/accounts/me', undefined, wrong)).status, 401);
    const right = await http<{ code: string; retryAfterMs: number }>(relay.url, 'GET', '/v1/accounts/me', undefined, alice.authorization);
    assert.equal(right.status, 429);
    assert.equal(right.body.code, 'RATE_LIMITED');
    await assert.rejects(alice.connect(), (e: unknown) => e instanceof UpgradeRefused && e.status === 429);
  });
});
