// SPDX-License-Identifier: AGPL-3.0-only
/**
 * Push wake-ups through a relay composed in process, with the real APNs adapter talking to the
 * APNs stand-in over HTTP/2 + TLS on loopback, and manual timers for the coalescing window: an
 * offline device gets exactly one content-free wake-up for a burst, a connected device none, a
 * dead token is removed and wakes nothing afterwards, and bad registrations change nothing.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import { pino } from 'pino';
import WebSocket from 'ws';
import { generateIdentity, generateKyberPreKey, generateSignedPreKey } from '@parley/crypto';
import { createKeyServer, keyServerErrorHandler, openSqliteKeyStore, type SqliteKeyStore } from '@parley/keyserver';
import { aciToBytes, decodeFrame, encodeFrame, formatBasicAuth, toBase64Url, type Aci, type DeviceId, type Frame } from '@parley/protocol';
import { resolveRelayConfig } from '../src/config.js';
import { APNS_WAKE_UP, createApnsPushSender } from '../src/push/apns-push-sender.js';
import { createLogPushSender } from '../src/push/log-push-sender.js';
import { createRelay, type Relay } from '../src/relay-server.js';
import { openSqliteEnvelopeStore } from '../src/storage/sqlite-envelope-store.js';
import { createApnsTestKey, ManualTimers, randomApnsToken, startFakeApns, type FakeApns } from '../src/testing/index.js';

const TOPIC = 'org.parley.test';
const WINDOW = 3000;

interface Device {
  aci: Aci;
  secret: Uint8Array;
  registrationId: number;
  auth: string;
}

class Socket {
  readonly frames: Frame[] = [];
  private waiters: Array<() => void> = [];
  private constructor(readonly ws: WebSocket) {
    ws.on('message', (d: Buffer) => {
      this.frames.push(decodeFrame(new Uint8Array(d)));
      for (const w of this.waiters.splice(0)) w();
    });
  }
  static open(url: string, d: Device): Promise<Socket> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, { headers: { authorization: d.auth } });
      ws.once('open', () => resolve(new Socket(ws)));
      ws.once('error', reject);
    });
  }
  async until<T>(find: () => T | undefined, what: string): Promise<T> {
    const deadline = Date.now() + 5000;
    for (;;) {
      const v = find();
      if (v !== undefined) return v;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise<void>((r) => {
        this.waiters.push(r);
        setTimeout(r, 100).unref();
      });
    }
  }
  /** Sends `count` envelopes to device 1 of `to` without waiting in between; resolves when all are answered. */
  async sendBurst(to: Device, count: number, urgent: boolean, content: Uint8Array): Promise<void> {
    const first = this.frames.length;
    for (let i = 0; i < count; i++) {
      this.ws.send(
        encodeFrame({
          kind: {
            case: 'send',
            value: {
              requestId: i + 1,
              destination: aciToBytes(to.aci),
              messageId: randomBytes(16),
              timestamp: BigInt(Date.now()),
              urgent,
              messages: [{ deviceId: 1, registrationId: to.registrationId, type: 1, content }],
            },
          },
        }),
      );
    }
    const answers = await this.until(() => {
      const a = this.frames.slice(first).filter((f) => f.kind.case === 'sendResult' || f.kind.case === 'error');
      return a.length === count ? a : undefined;
    }, `${count} answers`);
    assert.ok(answers.every((f) => f.kind.case === 'sendResult'), JSON.stringify(answers.find((f) => f.kind.case === 'error')?.kind.value));
  }
  close(): Promise<void> {
    return new Promise((r) => {
      this.ws.once('close', () => r());
      this.ws.close();
    });
  }
}

describe('push wake-ups through an in-process relay and the APNs stand-in', () => {
  const key = createApnsTestKey();
  const timers = new ManualTimers();
  let apns: FakeApns;
  let keyStore: SqliteKeyStore;
  let relay: Relay;
  let url: string;
  let wsUrl: string;
  let n = 0;

  async function register(): Promise<Device> {
    const id = generateIdentity();
    const now = Date.now();
    const s = (k: { keyId: number; publicKey: Uint8Array; signature: Uint8Array }) => ({ keyId: k.keyId, publicKey: toBase64Url(k.publicKey), signature: toBase64Url(k.signature) });
    const secret = randomBytes(32);
    const res = await fetch(`${url}/v1/accounts`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        username: `push${++n}`,
        identityKey: toBase64Url(id.identityKey),
        registrationId: id.registrationId,
        authSecret: toBase64Url(secret),
        signedPreKey: s(generateSignedPreKey(id.identityKeyPair, 1, now).upload),
        lastResortKyberPreKey: s(generateKyberPreKey(id.identityKeyPair, 1, now).upload),
      }),
    });
    assert.ok(res.ok, await res.clone().text());
    const body = (await res.json()) as { aci: Aci };
    return { aci: body.aci, secret, registrationId: id.registrationId, auth: formatBasicAuth(body.aci, 1, secret) };
  }

  async function registerToken(d: Device, body: unknown): Promise<{ status: number; body: unknown }> {
    const res = await fetch(`${url}/v1/devices/me/push`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json', authorization: d.auth },
      body: JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : undefined };
  }

  /** Ends the window and waits for the wake-ups it started. */
  async function endWindow(): Promise<void> {
    timers.advance(WINDOW);
    await relay.wakeUps!.settled();
  }

  async function pushMetric(result: string): Promise<number> {
    const text = await relay.metrics.render();
    const m = new RegExp(`^parley_relay_push_results_total\\{provider="apns",result="${result}"\\} (\\d+)$`, 'm').exec(text);
    return m ? Number(m[1]) : 0;
  }

  let alice: Device;
  let bob: Device;
  let bobToken: string;

  before(async () => {
    apns = await startFakeApns({ key, topic: TOPIC });
    const dir = mkdtempSync(join(tmpdir(), 'parley-push-'));
    keyStore = openSqliteKeyStore(join(dir, 'keys.db'));
    const keyServer = createKeyServer({ store: keyStore, clock: { now: Date.now } });
    const log = pino({ level: 'silent' });
    relay = createRelay(resolveRelayConfig({ port: 0, pushCoalesceMs: WINDOW }), {
      envelopes: openSqliteEnvelopeStore({ path: join(dir, 'relay.db'), clock: { now: Date.now } }),
      directory: keyServer.directory,
      mountRoutes: (app) => keyServer.registerRoutes(app),
      errorHandler: keyServerErrorHandler,
      clock: { now: Date.now },
      log,
      push: {
        senders: {
          apns: createApnsPushSender({ key: key.p8, keyId: key.keyId, teamId: key.teamId, topic: TOPIC, production: false, host: apns.host, port: apns.port, ca: apns.ca, clock: { now: Date.now } }),
          fcm: createLogPushSender({ log, provider: 'fcm' }),
        },
        tokens: keyStore,
        timers,
      },
    });
    url = (await relay.listen()).url;
    wsUrl = `${url.replace('http', 'ws')}/v1/websocket`;
  });
  beforeEach(async () => {
    // Whatever an earlier test left pending (a socket closed with envelopes unacknowledged) goes out now.
    timers.advance(100 * WINDOW);
    await relay.wakeUps!.settled();
    assert.equal(relay.wakeUps!.pending, 0);
    alice = await register();
    bob = await register();
    bobToken = randomApnsToken();
    assert.equal((await registerToken(bob, { provider: 'apns', token: bobToken })).status, 204);
  });
  after(async () => {
    await relay.close();
    await apns.stop();
  });

  it('wakes an offline device exactly once for a burst of 50 envelopes, with a constant payload that names no sender and holds no content', async () => {
    const a = await Socket.open(wsUrl, alice);
    const secretContent = randomBytes(64);
    const before = apns.requests.length;
    const sentBefore = await pushMetric('sent');
    const coalescedBefore = await pushMetric('coalesced');
    await a.sendBurst(bob, 50, true, secretContent);
    assert.equal(relay.wakeUps!.pending, 1);
    await endWindow();
    timers.advance(10 * WINDOW);
    await relay.wakeUps!.settled();
    const mine = apns.requests.slice(before);
    assert.equal(mine.length, 1, 'one wake-up');
    const r = mine[0]!;
    assert.equal(r.status, 200, r.reason);
    assert.equal(r.token, bobToken);
    assert.equal(r.headers['apns-push-type'], 'alert');
    assert.equal(r.headers['apns-priority'], '10');
    assert.equal(r.body, APNS_WAKE_UP.urgent.body, 'the constant urgent payload');
    for (const leak of [alice.aci, bob.aci, alice.aci.replaceAll('-', ''), toBase64Url(secretContent), Buffer.from(secretContent).toString('hex'), Buffer.from(secretContent).toString('base64')]) {
      assert.ok(!JSON.stringify(r).replace(bobToken, '').includes(leak), 'no sender, recipient or content in the request');
    }
    assert.equal((await pushMetric('sent')) - sentBefore, 1);
    assert.equal((await pushMetric('coalesced')) - coalescedBefore, 49);
    await a.close();
  });

  it('wakes at low priority (a background push) when no envelope of the window was urgent', async () => {
    const a = await Socket.open(wsUrl, alice);
    const before = apns.requests.length;
    await a.sendBurst(bob, 3, false, randomBytes(16));
    await endWindow();
    const r = apns.requests.slice(before);
    assert.equal(r.length, 1);
    assert.equal(r[0]!.headers['apns-push-type'], 'background');
    assert.equal(r[0]!.headers['apns-priority'], '5');
    assert.equal(r[0]!.body, APNS_WAKE_UP.normal.body);
    await a.close();
  });

  it('sends no wake-up to a connected device, nor to one that connects before the window ends', async () => {
    const a = await Socket.open(wsUrl, alice);
    const b = await Socket.open(wsUrl, bob);
    const before = apns.requests.length;
    await a.sendBurst(bob, 5, true, randomBytes(16));
    await b.until(() => (b.frames.filter((f) => f.kind.case === 'deliver').length > 0 ? true : undefined), 'live delivery');
    assert.equal(relay.wakeUps!.pending, 0, 'nothing scheduled for a connected device');
    await b.close();
    await b.until(() => (relay.stats().connections === 1 ? true : undefined), 'bob gone');
    await a.sendBurst(bob, 5, true, randomBytes(16));
    assert.equal(relay.wakeUps!.pending, 1);
    const again = await Socket.open(wsUrl, bob);
    assert.equal(relay.wakeUps!.pending, 0, 'connecting cancels the wake-up');
    await endWindow();
    assert.equal(apns.requests.length, before, 'no wake-up reached APNs');
    await again.close();
    await a.close();
  });

  it('wakes a device whose socket closed with envelopes it had not acknowledged, and not one that acknowledged everything', async () => {
    const a = await Socket.open(wsUrl, alice);
    const b = await Socket.open(wsUrl, bob);
    const before = apns.requests.length;
    await a.sendBurst(bob, 2, true, randomBytes(16));
    const delivered = await b.until(() => {
      const d = b.frames.flatMap((f) => (f.kind.case === 'deliver' ? f.kind.value.envelopes : []));
      return d.length === 2 ? d : undefined;
    }, 'two envelopes');
    await b.close();
    await b.until(() => (relay.wakeUps!.pending === 1 ? true : undefined), 'a wake-up for the unacknowledged envelopes');
    await endWindow();
    assert.equal(apns.requests.length, before + 1);
    assert.equal(apns.requests.at(-1)!.headers['apns-priority'], '5', 'low priority: the relay does not know what they were');

    const again = await Socket.open(wsUrl, bob);
    await again.until(() => (again.frames.some((f) => f.kind.case === 'queueDrained') ? true : undefined), 'drain');
    const last = again.frames.flatMap((f) => (f.kind.case === 'deliver' ? f.kind.value.envelopes : [])).at(-1)!;
    assert.equal(last.seq, delivered.at(-1)!.seq, 'the same envelopes came again');
    again.ws.send(encodeFrame({ kind: { case: 'ack', value: { upTo: last.seq, seqs: [] } } }));
    // Frames are handled in order: the pong means the ack was.
    again.ws.send(encodeFrame({ kind: { case: 'ping', value: { nonce: 7 } } }));
    await again.until(() => (again.frames.some((f) => f.kind.case === 'pong') ? true : undefined), 'the ack processed');
    await again.close();
    await a.until(() => (relay.stats().connections === 1 ? true : undefined), 'bob gone');
    assert.equal(relay.wakeUps!.pending, 0, 'everything acknowledged: nothing to wake for');
    await a.close();
  });

  it('removes a token APNs calls Unregistered, and a later envelope wakes nothing', async () => {
    const a = await Socket.open(wsUrl, alice);
    apns.answer(bobToken, 'unregistered');
    const before = apns.requests.length;
    const invalidBefore = await pushMetric('invalid_token');
    await a.sendBurst(bob, 2, true, randomBytes(16));
    await endWindow();
    assert.equal(apns.requests.length, before + 1);
    assert.equal(apns.requests.at(-1)!.status, 410);
    assert.equal(await keyStore.getPushToken(bob.aci, 1 as DeviceId), undefined, 'the token is gone');
    assert.equal((await pushMetric('invalid_token')) - invalidBefore, 1);
    await a.sendBurst(bob, 2, true, randomBytes(16));
    await endWindow();
    assert.equal(apns.requests.length, before + 1, 'no further wake-up');
    await a.close();
  });

  it('retries a wake-up APNs could not take, after a backoff', async () => {
    const a = await Socket.open(wsUrl, alice);
    apns.answer(bobToken, 'unavailable', 1);
    const before = apns.requests.length;
    await a.sendBurst(bob, 1, true, randomBytes(16));
    await endWindow();
    assert.equal(apns.requests.length, before + 1);
    assert.equal(apns.requests.at(-1)!.status, 503);
    timers.advance(1000);
    await relay.wakeUps!.settled();
    assert.equal(apns.requests.length, before + 2);
    assert.equal(apns.requests.at(-1)!.status, 200);
    await a.close();
  });

  it('refuses a malformed token with BAD_REQUEST and keeps the registered one', async () => {
    const res = await registerToken(bob, { provider: 'apns', token: 'not-hex' });
    assert.equal(res.status, 400);
    assert.equal((res.body as { code: string }).code, 'BAD_REQUEST');
    assert.equal((await keyStore.getPushToken(bob.aci, 1 as DeviceId))?.token, bobToken);
  });
});
