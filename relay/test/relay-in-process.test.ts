// SPDX-License-Identifier: AGPL-3.0-only
/**
 * The relay composed in process on port 0 with a movable clock and a fault-injecting envelope
 * store: retention expiry, and what a sender and a recipient see when a commit fails.
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
import { createKeyServer, keyServerErrorHandler, openSqliteKeyStore } from '@parley/keyserver';
import {
  aciToBytes,
  decodeFrame,
  encodeFrame,
  formatBasicAuth,
  toBase64Url,
  type Aci,
  type Envelope,
  type Frame,
} from '@parley/protocol';
import { resolveRelayConfig } from '../src/config.js';
import { createRelay, type Relay } from '../src/relay-server.js';
import { FaultyEnvelopeStore } from '../src/storage/faulty-envelope-store.js';
import { openSqliteEnvelopeStore } from '../src/storage/sqlite-envelope-store.js';

const DAY = 86_400_000;

interface Device {
  aci: Aci;
  secret: Uint8Array;
  registrationId: number;
}

class Client {
  frames: Frame[] = [];
  private wake: () => void = () => {};
  private constructor(readonly ws: WebSocket) {
    ws.on('message', (d: Buffer) => {
      this.frames.push(decodeFrame(new Uint8Array(d)));
      this.wake();
    });
  }
  static open(url: string, d: Device): Promise<Client> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, { headers: { authorization: formatBasicAuth(d.aci, 1, d.secret) } });
      ws.once('open', () => resolve(new Client(ws)));
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
        this.wake = r;
        setTimeout(r, 50);
      });
    }
  }
  envelopes(): Envelope[] {
    return this.frames.flatMap((f) => (f.kind.case === 'deliver' ? f.kind.value.envelopes : []));
  }
  async send(requestId: number, to: Device, messageId: Uint8Array, content: Uint8Array) {
    this.ws.send(
      encodeFrame({
        kind: {
          case: 'send',
          value: {
            requestId,
            destination: aciToBytes(to.aci),
            messageId,
            timestamp: BigInt(Date.now()),
            messages: [{ deviceId: 1, registrationId: to.registrationId, type: 1, content }],
          },
        },
      }),
    );
    return this.until(() => {
      const f = this.frames.find((x) => (x.kind.case === 'sendResult' || x.kind.case === 'error') && x.kind.value.requestId === requestId);
      return f?.kind;
    }, `answer ${requestId}`);
  }
  async drained(): Promise<void> {
    await this.until(() => this.frames.find((f) => f.kind.case === 'queueDrained'), 'drain');
  }
  close(): Promise<void> {
    return new Promise((r) => {
      this.ws.once('close', () => r());
      this.ws.close();
    });
  }
}

describe('relay in process with a movable clock and a faulty store', () => {
  let now = Date.now();
  const clock = { now: () => now };
  let relay: Relay;
  let store: FaultyEnvelopeStore;
  let url: string;
  let wsUrl: string;
  let alice: Device;
  let bob: Device;
  let userN = 0;

  async function register(): Promise<Device> {
    const id = generateIdentity();
    const s = (k: { keyId: number; publicKey: Uint8Array; signature: Uint8Array }) => ({ keyId: k.keyId, publicKey: toBase64Url(k.publicKey), signature: toBase64Url(k.signature) });
    const secret = randomBytes(32);
    const res = await fetch(`${url}/v1/accounts`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        username: `user${++userN}`,
        identityKey: toBase64Url(id.identityKey),
        registrationId: id.registrationId,
        authSecret: toBase64Url(secret),
        signedPreKey: s(generateSignedPreKey(id.identityKeyPair, 1, now).upload),
        lastResortKyberPreKey: s(generateKyberPreKey(id.identityKeyPair, 1, now).upload),
      }),
    });
    assert.ok(res.ok, await res.clone().text());
    const body = (await res.json()) as { aci: Aci };
    return { aci: body.aci, secret, registrationId: id.registrationId };
  }

  before(async () => {
    const dir = mkdtempSync(join(tmpdir(), 'parley-inproc-'));
    const keyServer = createKeyServer({ store: openSqliteKeyStore(join(dir, 'keys.db')), clock });
    store = new FaultyEnvelopeStore(openSqliteEnvelopeStore({ path: join(dir, 'relay.db'), clock }));
    relay = createRelay(resolveRelayConfig({ port: 0, retentionMs: 7 * DAY }), {
      envelopes: store,
      directory: keyServer.directory,
      mountRoutes: (app) => keyServer.registerRoutes(app),
      errorHandler: keyServerErrorHandler,
      clock,
      log: pino({ level: 'silent' }),
    });
    const where = await relay.listen();
    url = where.url;
    wsUrl = `${url.replace('http', 'ws')}/v1/websocket`;
  });
  beforeEach(async () => {
    store.heal();
    alice = await register();
    bob = await register();
  });
  after(async () => {
    await relay.close();
  });

  it('forgets undelivered envelopes after the retention window, and their message ids with them', async () => {
    const a = await Client.open(wsUrl, alice);
    const id = randomBytes(16);
    const body = randomBytes(40);
    assert.equal((await a.send(1, bob, id, body)).case, 'sendResult');
    now += 7 * DAY + 1;
    const b = await Client.open(wsUrl, bob);
    await b.drained();
    assert.equal(b.envelopes().length, 0, 'an expired envelope is not delivered');
    const swept = await store.expire(now, 1000);
    assert.ok(swept.envelopes >= 1 && swept.dedup >= 1, JSON.stringify(swept));
    const again = await a.send(2, bob, id, body);
    assert.equal(again.case, 'sendResult');
    assert.equal(again.case === 'sendResult' && again.value.duplicate, false, 'the id is new again once its entry expired');
    await b.until(() => (b.envelopes().length === 1 ? true : undefined), 'live delivery');
    await a.close();
    await b.close();
  });

  it('answers INTERNAL when the commit fails before writing, and a retry with the same id delivers once', async () => {
    const a = await Client.open(wsUrl, alice);
    store.failNth('enqueue', 1, { when: 'before' });
    const id = randomBytes(16);
    const body = randomBytes(40);
    const failed = await a.send(1, bob, id, body);
    assert.equal(failed.case, 'error');
    assert.equal(failed.case === 'error' && failed.value.code, 'INTERNAL');
    const retry = await a.send(2, bob, id, body);
    assert.equal(retry.case === 'sendResult' && retry.value.duplicate, false);
    const b = await Client.open(wsUrl, bob);
    await b.drained();
    assert.equal(b.envelopes().length, 1);
    await a.close();
    await b.close();
  });

  it('dedups the retry when the commit succeeded but its answer was lost', async () => {
    const a = await Client.open(wsUrl, alice);
    store.failNth('enqueue', 1, { when: 'after' });
    const id = randomBytes(16);
    const body = randomBytes(40);
    assert.equal((await a.send(1, bob, id, body)).case, 'error');
    const retry = await a.send(2, bob, id, body);
    assert.equal(retry.case, 'sendResult');
    assert.equal(retry.case === 'sendResult' && retry.value.duplicate, true);
    const b = await Client.open(wsUrl, bob);
    await b.drained();
    assert.equal(b.envelopes().length, 1, 'delivered once');
    await a.close();
    await b.close();
  });

  it('redelivers on the next connection when an ack could not be committed', async () => {
    const a = await Client.open(wsUrl, alice);
    assert.equal((await a.send(1, bob, randomBytes(16), randomBytes(10))).case, 'sendResult');
    store.failAlways('ack');
    const b = await Client.open(wsUrl, bob);
    await b.drained();
    b.ws.send(encodeFrame({ kind: { case: 'ack', value: { upTo: 1n, seqs: [] } } }));
    await new Promise((r) => setTimeout(r, 50));
    await b.close();
    store.heal();
    const b2 = await Client.open(wsUrl, bob);
    await b2.drained();
    assert.deepEqual(b2.envelopes().map((e) => Number(e.seq)), [1]);
    await b2.close();
    await a.close();
  });
});
