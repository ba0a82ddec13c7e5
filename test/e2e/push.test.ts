// SPDX-License-Identifier: AGPL-3.0-only
/**
 * Push wake-ups end to end: a real `parley-relay` process with the APNs adapter pointed at the
 * APNs stand-in (HTTP/2 + TLS on loopback, trusted through --push-apns-ca-file) by the same
 * flags an operator uses, a .p8 key file made for the test. An offline phone gets exactly one
 * content-free wake-up for a burst of 50 real messages and then all of them when it connects;
 * a token APNs calls dead is removed and a new registration is woken instead; neither token nor
 * key reaches the relay's output; a missing key file stops the relay at start.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { aciToBytes, type Aci } from '@parley/protocol';
// eslint-disable-next-line no-restricted-imports -- ./testing is @parley/relay's declared test entry (CONVENTIONS 2)
import { APNS_TEST_PAYLOADS, createApnsTestKey, startFakeApns, type FakeApns } from '@parley/relay/testing';
import type { DeviceSocket } from '../support/device-socket.js';
import { startRelay, type RelayProcess } from '../support/relay-process.js';
import { registerAccount, type TestDevice } from '../support/test-device.js';

const TOPIC = 'org.parley.e2e';
const WINDOW_MS = 2000;

/** Sends `texts` to `to` as fast as the socket takes them; resolves when every one is answered. */
async function burst(from: TestDevice, socket: DeviceSocket, to: Aci, texts: string[]): Promise<void> {
  const frames = [];
  for (const text of texts) frames.push({ messageId: randomBytes(16), messages: await from.encryptFor(to, new TextEncoder().encode(text)) });
  const ids = frames.map((f) => {
    const requestId = socket.requestId();
    socket.send({ kind: { case: 'send', value: { requestId, destination: aciToBytes(to), messageId: f.messageId, timestamp: BigInt(Date.now()), urgent: true, messages: f.messages } } });
    return requestId;
  });
  for (const id of ids) assert.ok((await socket.answer(id)).result, `send ${id} accepted`);
}

describe('push wake-ups through a relay process and the APNs stand-in', () => {
  const key = createApnsTestKey();
  let apns: FakeApns;
  let relay: RelayProcess;
  let dir: string;

  async function pushResults(): Promise<Record<string, number>> {
    const text = await (await fetch(`${relay.url}/metrics`)).text();
    const out: Record<string, number> = {};
    for (const m of text.matchAll(/^parley_relay_push_results_total\{provider="apns",result="(\w+)"\} (\d+)$/gm)) out[m[1]!] = Number(m[2]);
    return out;
  }

  async function pushResultsUntil(ok: (r: Record<string, number>) => boolean, what: string): Promise<Record<string, number>> {
    const deadline = Date.now() + 10_000;
    for (;;) {
      const r = await pushResults();
      if (ok(r)) return r;
      if (Date.now() > deadline) throw new Error(`metrics never showed ${what}: ${JSON.stringify(r)}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  before(async () => {
    apns = await startFakeApns({ key, topic: TOPIC });
    dir = mkdtempSync(join(tmpdir(), 'parley-e2e-push-'));
    writeFileSync(join(dir, 'AuthKey.p8'), key.p8, { mode: 0o600 });
    writeFileSync(join(dir, 'apns-ca.pem'), apns.ca);
    relay = await startRelay({
      args: [
        '--log-level', 'debug',
        '--push-apns-key-file', join(dir, 'AuthKey.p8'),
        '--push-apns-key-id', key.keyId,
        '--push-apns-team-id', key.teamId,
        '--push-apns-topic', TOPIC,
        '--push-apns-environment', 'sandbox',
        '--push-apns-endpoint', `${apns.host}:${apns.port}`,
        '--push-apns-ca-file', join(dir, 'apns-ca.pem'),
        '--push-coalesce-ms', String(WINDOW_MS),
      ],
    });
  });
  after(async () => {
    await relay?.stop();
    await apns?.stop();
  });

  const tokens: string[] = [];

  it('wakes an offline phone exactly once for a burst of 50 messages, with nothing in the wake-up; the phone then gets all 50', async () => {
    const alice = await registerAccount(relay.url, 'alice');
    const bob = await registerAccount(relay.url, 'bob');
    const token = randomBytes(32).toString('hex');
    tokens.push(token);
    assert.equal((await bob.call('PUT', '/v1/devices/me/push', { provider: 'apns', token })).status, 204);

    const a = await alice.connect();
    const texts = Array.from({ length: 50 }, (_, i) => `message ${i} for the phone`);
    await burst(alice, a, bob.aci, texts);
    await apns.waitForRequests(1, 10_000);
    const results = await pushResultsUntil((r) => (r.sent ?? 0) >= 1, 'a sent wake-up');
    assert.deepEqual(results, { sent: 1, coalesced: 49 }, 'all 50 envelopes went into one wake-up');
    assert.equal(apns.requests.length, 1);

    const r = apns.requests[0]!;
    assert.equal(r.status, 200, `APNs accepted it (${r.reason ?? ''}): the JWT verified against the team's key`);
    assert.equal(r.path, `/3/device/${token}`);
    assert.equal(r.jwt?.header.kid, key.keyId);
    assert.equal(r.headers['apns-topic'], TOPIC);
    assert.equal(r.headers['apns-push-type'], 'alert');
    assert.equal(r.body, APNS_TEST_PAYLOADS.urgent, 'the constant payload');
    for (const leak of [alice.aci, bob.aci, 'alice', 'message 0']) assert.ok(!JSON.stringify(r).includes(leak), `${leak} is not in the wake-up`);

    const b = await bob.connect();
    await b.waitForEnvelopes(50);
    const got = await Promise.all(b.envelopes.map((e) => bob.decrypt(e)));
    assert.deepEqual(got.sort(), [...texts].sort());
    // Acknowledged, so closing leaves nothing to wake the phone for.
    b.ack(Number(b.envelopes.at(-1)!.seq));
    await b.sync();
    await b.close();
    await a.close();
  });

  it('removes a token APNs calls Unregistered, and wakes the token the phone registers next', async () => {
    const alice = await registerAccount(relay.url, 'carol');
    const bob = await registerAccount(relay.url, 'dave');
    const dead = randomBytes(32).toString('hex');
    tokens.push(dead);
    await bob.call('PUT', '/v1/devices/me/push', { provider: 'apns', token: dead });
    apns.answer(dead, 'unregistered');
    const a = await alice.connect();
    await burst(alice, a, bob.aci, ['one']);
    assert.equal((await apns.waitForRequest((r) => r.token === dead, 10_000)).status, 410);
    await pushResultsUntil((r) => (r.invalid_token ?? 0) >= 1, 'the dead token');
    assert.match(relay.output(), /"msg":"push token removed: the provider says it is dead"/);

    const fresh = randomBytes(32).toString('hex');
    tokens.push(fresh);
    assert.equal((await bob.call('PUT', '/v1/devices/me/push', { provider: 'apns', token: fresh })).status, 204);
    await burst(alice, a, bob.aci, ['two']);
    assert.equal((await apns.waitForRequest((r) => r.token === fresh, 10_000)).status, 200);
    assert.equal(apns.requests.filter((q) => q.token === dead).length, 1, 'the dead token was tried once');
    await a.close();
  });

  it('writes no push token and no key material to its output', () => {
    const out = relay.output();
    const keyBody = key.p8.split('\n').slice(1, -2).join('');
    assert.ok(out.includes('"msg":"push providers"') && out.includes('"apns":"apns"'), 'APNs is on');
    for (const t of tokens) assert.ok(!out.includes(t) && !out.toLowerCase().includes(t.toLowerCase()), 'a push token is in the output');
    assert.ok(!out.includes(keyBody.slice(0, 40)), 'the .p8 key is in the output');
  });

  it('refuses to start with an unreadable key file, naming the flag and the file', async () => {
    await assert.rejects(
      startRelay({ args: ['--push-apns-key-file', join(dir, 'missing.p8'), '--push-apns-key-id', key.keyId, '--push-apns-team-id', key.teamId, '--push-apns-topic', TOPIC] }),
      /exited with 2[\s\S]*cannot read --push-apns-key-file .*missing\.p8: ENOENT/,
    );
  });
});
