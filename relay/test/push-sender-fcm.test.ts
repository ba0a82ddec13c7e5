// SPDX-License-Identifier: AGPL-3.0-only
/**
 * The FCM adapter against the push port contract and against the FCM stand-in (its OAuth token
 * endpoint and the HTTP v1 send API on loopback): the service account's JWT grant, the bearer
 * token on sends, the exact data-only message, and how FCM's answers map to outcomes.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { classifyFcmError, createFcmPushSender, FCM_COLLAPSE_KEY, FCM_WAKE_DATA, GOOGLE_TOKEN_URI, parseServiceAccount } from '../src/push/fcm-push-sender.js';
import { createFcmTestAccount, describePushSenderContract, startFakeFcm, type FakeFcm, type FcmTestAccount } from '../src/testing/index.js';

let n = 0;
const newToken = () => `fcm-token-${process.pid}-${++n}:APA91b${'x'.repeat(120)}`;

function sender(fcm: FakeFcm, account: FcmTestAccount, extra: { projectId?: string; tokenUri?: string } = {}) {
  return createFcmPushSender({
    account: parseServiceAccount(account.json(extra.tokenUri ?? fcm.tokenUri)),
    ...(extra.projectId ? { projectId: extra.projectId } : {}),
    fcmOrigin: fcm.origin,
    clock: { now: Date.now },
  });
}

describePushSenderContract('fcm (against the FCM stand-in)', { canRefuse: true, logs: false }, async () => {
  const account = createFcmTestAccount();
  const fcm = await startFakeFcm({ account });
  const failures = { dead: 'unregistered', retry: 'internal', permanent: 'sender-mismatch' } as const;
  return {
    sender: sender(fcm, account),
    identifiesBy: 'token',
    newToken,
    received: () =>
      fcm.messages.map((m) => {
        const { token: _token, ...rest } = m.message;
        const android = (m.message.android ?? {}) as { priority?: string };
        return { target: m.token, priority: android.priority === 'high' ? ('high' as const) : ('low' as const), payload: JSON.stringify(rest) };
      }),
    fail: (token, failure, times) => fcm.answer(token, failures[failure], times),
    stop: () => fcm.stop(),
  };
});

describe('FCM adapter', () => {
  const account = createFcmTestAccount('parley-fcm-test');
  let fcm: FakeFcm;
  before(async () => {
    fcm = await startFakeFcm({ account });
  });
  after(() => fcm.stop());

  it('gets an access token with an RS256 JWT grant from the account\u2019s token_uri and sends with it as a bearer token', async () => {
    const s = sender(fcm, account);
    const grantsBefore = fcm.grants.length;
    const token = newToken();
    assert.deepEqual(await s.send({ token, urgent: true, device: 'd' }), { kind: 'delivered' });
    assert.deepEqual(await s.send({ token: newToken(), urgent: true, device: 'd' }), { kind: 'delivered' });
    await s.close();
    const grants = fcm.grants.slice(grantsBefore);
    assert.equal(grants.length, 1, 'one token for both sends');
    assert.equal(grants[0]!.status, 200);
    assert.equal(grants[0]!.header.alg, 'RS256');
    assert.equal(grants[0]!.claims.iss, account.clientEmail);
    assert.equal(grants[0]!.claims.aud, fcm.tokenUri);
    assert.equal(grants[0]!.claims.scope, 'https://www.googleapis.com/auth/firebase.messaging');
    const [first, second] = fcm.messages.slice(-2);
    assert.equal(first!.status, 200);
    assert.equal(first!.path, '/v1/projects/parley-fcm-test/messages:send');
    assert.equal(first!.host, 'fcm.googleapis.com');
    assert.match(first!.authorization!, /^Bearer ya29\./);
    assert.ok(fcm.accessTokens.has(first!.authorization!.slice(7)));
    assert.equal(second!.authorization, first!.authorization);
    assert.equal(first!.token, token);
  });

  it('sends a data-only message: the constant marker, high priority when urgent and normal otherwise, one collapse key, a day to live', async () => {
    const s = sender(fcm, account);
    const token = newToken();
    await s.send({ token, urgent: true, device: 'd' });
    await s.send({ token, urgent: false, device: 'd' });
    await s.close();
    const [urgent, normal] = fcm.messages.slice(-2);
    assert.deepEqual(urgent!.message, { token, data: { ...FCM_WAKE_DATA }, android: { priority: 'high', ttl: '86400s', collapse_key: FCM_COLLAPSE_KEY } });
    assert.deepEqual(normal!.message, { token, data: { ...FCM_WAKE_DATA }, android: { priority: 'normal', ttl: '86400s', collapse_key: FCM_COLLAPSE_KEY } });
    assert.deepEqual(FCM_WAKE_DATA, { parley: 'wake' });
  });

  it('sends to the configured project instead of the account\u2019s when given one', async () => {
    const s = sender(fcm, account, { projectId: 'another-project' });
    assert.deepEqual(await s.send({ token: newToken(), urgent: true, device: 'd' }), { kind: 'failed', reason: 'messaging/mismatched-credential' });
    await s.close();
    assert.equal(fcm.messages.at(-1)!.path, '/v1/projects/another-project/messages:send');
  });

  it('maps FCM errors: UNREGISTERED and INVALID_ARGUMENT are dead tokens, QUOTA_EXCEEDED and INTERNAL retry, SENDER_ID_MISMATCH fails', async () => {
    const s = sender(fcm, account);
    const cases = [
      ['unregistered', { kind: 'dead-token', reason: 'messaging/registration-token-not-registered' }],
      ['invalid-argument', { kind: 'dead-token', reason: 'messaging/invalid-argument' }],
      ['quota', { kind: 'retry', reason: 'messaging/message-rate-exceeded' }],
      ['internal', { kind: 'retry', reason: 'messaging/internal-error' }],
      ['sender-mismatch', { kind: 'failed', reason: 'messaging/mismatched-credential' }],
    ] as const;
    for (const [answer, expected] of cases) {
      const token = newToken();
      fcm.answer(token, answer);
      assert.deepEqual(await s.send({ token, urgent: true, device: 'd' }), expected, answer);
    }
    await s.close();
  });

  it('fails without retrying when the token endpoint refuses the service account (a wrong key)', async () => {
    const impostor = createFcmTestAccount('parley-fcm-test');
    const s = createFcmPushSender({
      account: { ...parseServiceAccount(impostor.json(fcm.tokenUri)), clientEmail: account.clientEmail },
      fcmOrigin: fcm.origin,
      clock: { now: Date.now },
    });
    assert.deepEqual(await s.send({ token: newToken(), urgent: true, device: 'd' }), { kind: 'failed', reason: 'the token endpoint refused the service account' });
    assert.equal(fcm.grants.at(-1)!.status, 400);
    await s.close();
  });

  it('reports an FCM it cannot reach as retry', async () => {
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as { port: number }).port;
    await new Promise<void>((r) => closed.close(() => r()));
    const s = createFcmPushSender({ account: parseServiceAccount(account.json(fcm.tokenUri)), fcmOrigin: `http://127.0.0.1:${port}`, clock: { now: Date.now } });
    const outcome = await s.send({ token: newToken(), urgent: true, device: 'd' });
    assert.equal(outcome.kind, 'retry');
    await s.close();
  });

  it('reads service account files and names what is wrong without printing values', () => {
    const good = JSON.parse(account.json('https://example.test/token')) as Record<string, string>;
    const parsed = parseServiceAccount(JSON.stringify(good));
    assert.equal(parsed.projectId, 'parley-fcm-test');
    assert.equal(parsed.tokenUri, 'https://example.test/token');
    const { token_uri: _t, ...noUri } = good;
    assert.equal(parseServiceAccount(JSON.stringify(noUri)).tokenUri, GOOGLE_TOKEN_URI);
    assert.throws(() => parseServiceAccount('not json'), /not JSON/);
    for (const field of ['project_id', 'client_email', 'private_key']) {
      const { [field]: _gone, ...rest } = good;
      assert.throws(() => parseServiceAccount(JSON.stringify(rest)), new RegExp(`has no ${field}`));
    }
    assert.throws(() => parseServiceAccount(JSON.stringify({ ...good, type: 'authorized_user' })), /not a service account/);
    assert.throws(() => parseServiceAccount(JSON.stringify({ ...good, token_uri: 'file:///etc/passwd' })), /token_uri/);
    try {
      parseServiceAccount(JSON.stringify({ ...good, client_email: 7 }));
    } catch (err) {
      assert.ok(!(err as Error).message.includes('PRIVATE KEY'));
    }
  });

  it('takes a test origin only as http:// on loopback', () => {
    const a = parseServiceAccount(account.json(fcm.tokenUri));
    assert.throws(() => createFcmPushSender({ account: a, fcmOrigin: 'https://fcm.example.org', clock: { now: Date.now } }), /loopback/);
    assert.throws(() => createFcmPushSender({ account: a, fcmOrigin: 'http://10.0.0.1:80', clock: { now: Date.now } }), /loopback/);
  });

  it('classifies errors without a messaging code as retry and unknown codes as failed', () => {
    assert.equal(classifyFcmError(new Error('boom')).kind, 'retry');
    assert.equal(classifyFcmError({ code: 'app/network-timeout' }).kind, 'retry');
    assert.equal(classifyFcmError({ code: 'messaging/third-party-auth-error' }).kind, 'failed');
  });
});
