// SPDX-License-Identifier: AGPL-3.0-only
/**
 * The APNs adapter against the push port contract and against the APNs stand-in (HTTP/2 + TLS on
 * loopback): the ES256 provider JWT, the headers APNs reads, the exact payloads, and how APNs'
 * answers map to outcomes.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { APNS_COLLAPSE_ID, APNS_WAKE_UP, classifyApnsFailure, createApnsPushSender } from '../src/push/apns-push-sender.js';
import { createApnsTestKey, describePushSenderContract, randomApnsToken, startFakeApns, type ApnsTestKey, type FakeApns } from '../src/testing/index.js';

const TOPIC = 'org.parley.test';

function sender(apns: FakeApns, key: ApnsTestKey, now = () => Date.now()) {
  return createApnsPushSender({
    key: key.p8,
    keyId: key.keyId,
    teamId: key.teamId,
    topic: TOPIC,
    production: false,
    host: apns.host,
    port: apns.port,
    ca: apns.ca,
    clock: { now },
  });
}

describePushSenderContract('apns (against the APNs stand-in)', { canRefuse: true, logs: false }, async () => {
  const key = createApnsTestKey();
  const apns = await startFakeApns({ key, topic: TOPIC });
  const failures = { dead: 'unregistered', retry: 'unavailable', permanent: 'topic-disallowed' } as const;
  return {
    sender: sender(apns, key),
    identifiesBy: 'token',
    newToken: randomApnsToken,
    received: () => apns.requests.map((r) => ({ target: r.token, priority: r.headers['apns-priority'] === '10' ? ('high' as const) : ('low' as const), payload: r.body })),
    fail: (token, failure, times) => apns.answer(token, failures[failure], times),
    stop: () => apns.stop(),
  };
});

describe('APNs adapter', () => {
  const key = createApnsTestKey();
  let apns: FakeApns;
  before(async () => {
    apns = await startFakeApns({ key, topic: TOPIC });
  });
  after(() => apns.stop());

  it('posts to /3/device/TOKEN with an ES256 provider JWT naming the key id and team id', async () => {
    const s = sender(apns, key);
    const token = randomApnsToken();
    assert.deepEqual(await s.send({ token, urgent: true, device: 'd' }), { kind: 'delivered' });
    await s.close();
    const r = apns.requests.at(-1)!;
    assert.equal(r.method, 'POST');
    assert.equal(r.path, `/3/device/${token}`);
    assert.equal(r.status, 200, `the stand-in accepted the request (${r.reason ?? ''})`);
    assert.match(r.headers.authorization!, /^bearer [\w-]+\.[\w-]+\.[\w-]+$/);
    assert.equal(r.jwt?.header.alg, 'ES256');
    assert.equal(r.jwt?.header.kid, key.keyId);
    assert.equal(r.jwt?.claims.iss, key.teamId);
    assert.ok(Math.abs(Number(r.jwt?.claims.iat) - Date.now() / 1000) < 60, 'iat is now');
  });

  it('sends urgent wake-ups as alert pushes at priority 10 and others as background pushes at priority 5, with the exact constant payloads', async () => {
    const now = 1_800_000_000_000;
    const s = sender(apns, key, () => now);
    const token = randomApnsToken();
    await s.send({ token, urgent: true, device: 'd' });
    await s.send({ token, urgent: false, device: 'd' });
    await s.close();
    const [urgent, normal] = apns.requests.slice(-2);
    for (const [r, v] of [[urgent!, APNS_WAKE_UP.urgent], [normal!, APNS_WAKE_UP.normal]] as const) {
      assert.equal(r.status, 200);
      assert.equal(r.headers['apns-topic'], TOPIC);
      assert.equal(r.headers['apns-push-type'], v.pushType);
      assert.equal(r.headers['apns-priority'], String(v.priority));
      assert.equal(r.headers['apns-collapse-id'], APNS_COLLAPSE_ID);
      assert.equal(r.headers['apns-expiration'], String(now / 1000 + 86_400));
      assert.equal(r.body, v.body);
    }
    assert.deepEqual(JSON.parse(APNS_WAKE_UP.urgent.body), { aps: { alert: { 'loc-key': 'PARLEY_WAKE' }, 'mutable-content': 1 }, parley: 'wake' });
    assert.deepEqual(JSON.parse(APNS_WAKE_UP.normal.body), { aps: { 'content-available': 1 }, parley: 'wake' });
  });

  it('reports Unregistered (410), BadDeviceToken and DeviceTokenNotForTopic as dead tokens', async () => {
    const s = sender(apns, key);
    for (const [answer, reason] of [['unregistered', 'Unregistered'], ['bad-token', 'BadDeviceToken'], ['not-for-topic', 'DeviceTokenNotForTopic']] as const) {
      const token = randomApnsToken();
      apns.answer(token, answer);
      assert.deepEqual(await s.send({ token, urgent: true, device: 'd' }), { kind: 'dead-token', reason });
    }
    await s.close();
  });

  it('reports 429, 500 and 503 as retry, and a JWT APNs refuses as failed', async () => {
    const s = sender(apns, key);
    for (const [answer, reason] of [['too-many', 'TooManyRequests'], ['internal', 'InternalServerError'], ['unavailable', 'ServiceUnavailable']] as const) {
      const token = randomApnsToken();
      apns.answer(token, answer);
      const outcome = await s.send({ token, urgent: true, device: 'd' });
      assert.equal(outcome.kind, 'retry', answer);
      if (answer !== 'internal') assert.equal((outcome as { reason: string }).reason, reason);
    }
    await s.close();
    const otherKey = { ...createApnsTestKey(), keyId: key.keyId, teamId: key.teamId };
    const wrong = sender(apns, otherKey);
    assert.deepEqual(await wrong.send({ token: randomApnsToken(), urgent: true, device: 'd' }), { kind: 'failed', reason: 'InvalidProviderToken' });
    await wrong.close();
  });

  it('reports an APNs it cannot reach as retry', async () => {
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as { port: number }).port;
    await new Promise<void>((r) => closed.close(() => r()));
    const s = createApnsPushSender({ key: key.p8, keyId: key.keyId, teamId: key.teamId, topic: TOPIC, production: false, host: '127.0.0.1', port, ca: apns.ca, clock: { now: Date.now } });
    assert.deepEqual(await s.send({ token: randomApnsToken(), urgent: true, device: 'd' }), { kind: 'retry', reason: 'network' });
    await s.close();
  });

  it('classifies node-apn failures: gone and dead tokens, retryable statuses, a renewed JWT, the rest', () => {
    assert.deepEqual(classifyApnsFailure({ status: 410, response: { reason: 'Unregistered' } }), { kind: 'dead-token', reason: 'Unregistered' });
    assert.deepEqual(classifyApnsFailure({ status: 410, response: { reason: 'ExpiredToken' } }), { kind: 'dead-token', reason: 'ExpiredToken' });
    assert.deepEqual(classifyApnsFailure({ status: 400, response: { reason: 'BadDeviceToken' } }), { kind: 'dead-token', reason: 'BadDeviceToken' });
    assert.deepEqual(classifyApnsFailure({ status: 403, error: { message: 'ExpiredProviderToken' } }), { kind: 'retry', reason: 'ExpiredProviderToken' });
    assert.deepEqual(classifyApnsFailure({ status: 503, response: { reason: 'ServiceUnavailable' } }), { kind: 'retry', reason: 'ServiceUnavailable' });
    assert.deepEqual(classifyApnsFailure({ status: '(timeout)', error: { message: 'apn write timeout' } }), { kind: 'retry', reason: 'network' });
    assert.deepEqual(classifyApnsFailure({ error: { message: 'connect ECONNREFUSED' } }), { kind: 'retry', reason: 'network' });
    assert.deepEqual(classifyApnsFailure({ status: 400, response: { reason: 'BadTopic' } }), { kind: 'failed', reason: 'BadTopic' });
    assert.deepEqual(classifyApnsFailure({ status: 413, response: { reason: 'PayloadTooLarge' } }), { kind: 'failed', reason: 'PayloadTooLarge' });
  });
});
