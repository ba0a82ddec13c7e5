// SPDX-License-Identifier: AGPL-3.0-only
/**
 * Presence through real relays in process: two relays share one key server (as cluster nodes
 * share their account store) and one presence store — in process, and Redis (a redis-server this
 * file starts; skipped with the reason where there is none) — with devices on real WebSockets.
 * A device on relay B reaches a subscriber on relay A within 2 s; a token change made through one
 * relay's REST ends subscriptions on the other; bad frames get typed errors on a socket that
 * stays up; the metrics count subscriptions and updates.
 */
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import WebSocket from 'ws';
import { Redis } from 'ioredis';
import { generateIdentity, generateKyberPreKey, generateSignedPreKey } from '@parley/crypto';
import { createKeyServer, keyServerErrorHandler, openSqliteKeyStore, type KeyServer } from '@parley/keyserver';
import { redisServerSkipReason, startRedisServer, type RedisServerProcess } from '@parley/keyserver/testing'; // eslint-disable-line no-restricted-imports -- ./testing is @parley/keyserver's declared test entry (CONVENTIONS 2)
import {
  aciFromBytes,
  aciToBytes,
  decodeFrame,
  encodeFrame,
  formatBasicAuth,
  PresenceState,
  toBase64Url,
  type Aci,
  type Frame,
} from '@parley/protocol';
import { systemClock } from '../src/clock.js';
import { resolveRelayConfig } from '../src/config.js';
import type { PresenceStore } from '../src/ports/presence-store.js';
import { InProcessPresenceStore } from '../src/presence/in-process-presence-store.js';
import { createRedisPresenceStore } from '../src/presence/redis-presence-store.js';
import { createRelay, type Relay } from '../src/relay-server.js';
import { openSqliteEnvelopeStore } from '../src/storage/sqlite-envelope-store.js';

interface Account {
  aci: Aci;
  secret: Uint8Array;
  auth: string;
  token: Uint8Array;
}

interface Update {
  aci: Aci;
  state: string;
  lastSeen: number;
}

const NAMES: Record<number, string> = { [PresenceState.ONLINE]: 'online', [PresenceState.AWAY]: 'away', [PresenceState.OFFLINE]: 'offline' };

/** A device socket that records frames. */
class Socket {
  readonly frames: Frame[] = [];
  readonly closed: Promise<void>;
  private wake: (() => void) | undefined;
  private constructor(readonly ws: WebSocket) {
    ws.on('message', (d: Buffer) => {
      this.frames.push(decodeFrame(new Uint8Array(d)));
      this.wake?.();
    });
    this.closed = new Promise((r) => ws.once('close', () => r()));
  }
  static open(wsUrl: string, a: Account): Promise<Socket> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(wsUrl, { headers: { authorization: a.auth } });
      ws.once('open', () => resolve(new Socket(ws)));
      ws.once('error', reject);
    });
  }
  subscribe(requestId: number, targets: Array<{ aci: Aci; token: Uint8Array }>): void {
    this.ws.send(encodeFrame({ kind: { case: 'presenceSubscribe', value: { requestId, targets: targets.map((t) => ({ aci: aciToBytes(t.aci), token: t.token })) } } }));
  }
  set(state: PresenceState): void {
    this.ws.send(encodeFrame({ kind: { case: 'presenceSet', value: { state } } }));
  }
  updates(): Update[] {
    return this.frames.flatMap((f) =>
      f.kind.case === 'presenceUpdate' ? [{ aci: aciFromBytes(f.kind.value.aci), state: NAMES[f.kind.value.state] ?? '?', lastSeen: Number(f.kind.value.lastSeen) }] : [],
    );
  }
  results(): Array<{ requestId: number; refused: Aci[] }> {
    return this.frames.flatMap((f) => (f.kind.case === 'presenceSubscribeResult' ? [{ requestId: f.kind.value.requestId, refused: f.kind.value.refused.map((b) => aciFromBytes(b)) }] : []));
  }
  errors(): Array<{ requestId: number; code: string }> {
    return this.frames.flatMap((f) => (f.kind.case === 'error' ? [{ requestId: f.kind.value.requestId, code: f.kind.value.code }] : []));
  }
  /** Round-trips a ping: every frame sent before it has been handled when this resolves. */
  async sync(): Promise<void> {
    const nonce = Math.floor(Math.random() * 1e9);
    this.ws.send(encodeFrame({ kind: { case: 'ping', value: { nonce } } }));
    await this.until(() => this.frames.some((f) => f.kind.case === 'pong' && f.kind.value.nonce === nonce), 'pong');
  }
  /** Waits for `check`, failing after `timeoutMs` (2 s by default: the promise presence makes). */
  async until(check: () => boolean, what: string, timeoutMs = 2000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!check()) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; updates ${JSON.stringify(this.updates())}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(left, 50));
        this.wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
    }
  }
  async close(): Promise<void> {
    this.ws.close();
    await this.closed;
  }
}

const skip = redisServerSkipReason();
let server: RedisServerProcess | undefined;
if (!skip) {
  before(async () => {
    server = await startRedisServer();
  });
  after(async () => {
    await server?.stop();
  });
}

const variants: Array<[string, () => [PresenceStore, PresenceStore], string | undefined]> = [
  [
    'an in-process store',
    () => {
      const a = new InProcessPresenceStore({ clock: systemClock });
      return [a, new InProcessPresenceStore({ clock: systemClock, shareWith: a })];
    },
    undefined,
  ],
  [
    'Redis',
    () => {
      const prefix = `relays:${randomUUID()}:`;
      const store = () => createRedisPresenceStore({ redis: new Redis(server!.url, { maxRetriesPerRequest: 0 }), prefix });
      return [store(), store()];
    },
    skip,
  ],
];

for (const [name, stores, skipReason] of variants) {
  describe(`presence across two relays sharing one key server and ${name}`, skipReason ? { skip: skipReason } : {}, () => {
    let keyServer: KeyServer;
    let relayA: Relay, relayB: Relay;
    let urlA: string, urlB: string;
    let n = 0;

    async function register(): Promise<Account> {
      const id = generateIdentity();
      const s = (k: { keyId: number; publicKey: Uint8Array; signature: Uint8Array }) => ({ keyId: k.keyId, publicKey: toBase64Url(k.publicKey), signature: toBase64Url(k.signature) });
      const secret = new Uint8Array(randomBytes(32));
      const res = await fetch(`${urlA}/v1/accounts`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          username: `user${++n}`,
          identityKey: toBase64Url(id.identityKey),
          registrationId: id.registrationId,
          authSecret: toBase64Url(secret),
          signedPreKey: s(generateSignedPreKey(id.identityKeyPair, 1, Date.now()).upload),
          lastResortKyberPreKey: s(generateKyberPreKey(id.identityKeyPair, 1, Date.now()).upload),
        }),
      });
      assert.ok(res.ok, await res.clone().text());
      const { aci } = (await res.json()) as { aci: Aci };
      const account = { aci, secret, auth: formatBasicAuth(aci, 1, secret), token: new Uint8Array(randomBytes(32)) };
      assert.equal((await putToken(urlA, account, account.token)).status, 204);
      return account;
    }

    const putToken = (url: string, a: Account, token: Uint8Array) =>
      fetch(`${url}/v1/accounts/me/presence`, {
        method: 'PUT',
        headers: { 'content-type': 'application/json', authorization: a.auth },
        body: JSON.stringify({ token: toBase64Url(token) }),
      });
    const ws = (url: string) => `${url.replace('http', 'ws')}/v1/websocket`;

    before(async () => {
      const dir = mkdtempSync(join(tmpdir(), 'parley-presence-'));
      keyServer = createKeyServer({ store: openSqliteKeyStore(join(dir, 'keys.db')), clock: systemClock });
      const [presenceA, presenceB] = stores();
      const relay = (sub: string, presence: PresenceStore) =>
        createRelay(resolveRelayConfig({ port: 0 }), {
          envelopes: openSqliteEnvelopeStore({ path: join(dir, `${sub}.db`), clock: systemClock }),
          directory: keyServer.directory,
          mountRoutes: (app) => keyServer.registerRoutes(app),
          errorHandler: keyServerErrorHandler,
          clock: systemClock,
          log: pino({ level: 'silent' }),
          presence,
        });
      relayA = relay('a', presenceA);
      relayB = relay('b', presenceB);
      urlA = (await relayA.listen()).url;
      urlB = (await relayB.listen()).url;
    });
    after(async () => {
      await Promise.all([relayA?.close(), relayB?.close()]);
      await keyServer?.close();
    });

    it('a subscriber on relay A sees a device on relay B come online, go away and go offline, each within 2 s', async () => {
      const [alice, bob] = [await register(), await register()];
      const a = await Socket.open(ws(urlA), alice);
      a.subscribe(1, [bob]);
      await a.until(() => a.updates().length === 1, 'the first update');
      assert.deepEqual(a.results(), [{ requestId: 1, refused: [] }]);
      assert.deepEqual(a.updates()[0], { aci: bob.aci, state: 'offline', lastSeen: 0 });
      const b = await Socket.open(ws(urlB), bob);
      await a.until(() => a.updates().length === 2, 'online');
      b.set(PresenceState.AWAY);
      await a.until(() => a.updates().length === 3, 'away');
      b.set(PresenceState.ONLINE);
      await a.until(() => a.updates().length === 4, 'online again');
      const before = Date.now();
      await b.close();
      await a.until(() => a.updates().length === 5, 'offline');
      const last = a.updates()[4]!;
      assert.deepEqual(a.updates().slice(1, 4).map((u) => u.state), ['online', 'away', 'online']);
      assert.equal(last.state, 'offline');
      assert.ok(last.lastSeen >= before - 5 && last.lastSeen <= Date.now(), `last seen ${last.lastSeen} is when bob left`);
      const metrics = await (await fetch(`${urlA}/metrics`)).text();
      assert.match(metrics, /^parley_relay_presence_subscriptions 1$/m);
      assert.match(metrics, /^parley_relay_presence_updates_total 5$/m);
      await a.close();
      const after = await (await fetch(`${urlA}/metrics`)).text();
      assert.match(after, /^parley_relay_presence_subscriptions 0$/m, 'subscriptions end with the connection');
    });

    it('a new token set through relay B ends the subscription on relay A; only the new token subscribes again', async () => {
      const [alice, bob] = [await register(), await register()];
      const b = await Socket.open(ws(urlB), bob);
      const a = await Socket.open(ws(urlA), alice);
      a.subscribe(1, [bob]);
      await a.until(() => a.updates().length === 1, 'the first update');
      assert.equal(a.updates()[0]!.state, 'online');
      const fresh = new Uint8Array(randomBytes(32));
      assert.equal((await putToken(urlB, bob, fresh)).status, 204);
      await a.until(() => a.results().length === 2, 'the end of the subscription');
      assert.deepEqual(a.results()[1], { requestId: 0, refused: [bob.aci] });
      assert.deepEqual(a.updates()[1], { aci: bob.aci, state: 'offline', lastSeen: 0 });
      b.set(PresenceState.AWAY);
      await b.sync();
      a.subscribe(2, [bob]);
      await a.until(() => a.results().length === 3, 'refused with the old token');
      assert.deepEqual(a.results()[2], { requestId: 2, refused: [bob.aci] });
      a.subscribe(3, [{ aci: bob.aci, token: fresh }]);
      await a.until(() => a.updates().length === 3, 'with the new token');
      assert.deepEqual(a.updates()[2], { aci: bob.aci, state: 'away', lastSeen: 0 });
      await Promise.all([a.close(), b.close()]);
    });

    it('presence off ends subscriptions and refuses new ones like a wrong token', async () => {
      const [alice, bob] = [await register(), await register()];
      const a = await Socket.open(ws(urlA), alice);
      a.subscribe(1, [bob]);
      await a.until(() => a.updates().length === 1, 'the first update');
      const off = await fetch(`${urlB}/v1/accounts/me/presence`, { method: 'DELETE', headers: { authorization: bob.auth } });
      assert.equal(off.status, 204);
      await a.until(() => a.results().length === 2, 'the end of the subscription');
      const b = await Socket.open(ws(urlB), bob);
      await b.sync();
      a.subscribe(2, [bob, { aci: randomUUID() as Aci, token: new Uint8Array(32) }]);
      await a.until(() => a.results().length === 3, 'refused');
      assert.equal(a.results()[2]!.refused.length, 2);
      await a.sync();
      assert.equal(a.updates().length, 2, 'nothing about bob after presence off');
      await Promise.all([a.close(), b.close()]);
    });
  });
}

describe('presence frames on a relay socket', () => {
  let keyServer: KeyServer;
  let relay: Relay;
  let url: string;

  before(async () => {
    const dir = mkdtempSync(join(tmpdir(), 'parley-presence-frames-'));
    keyServer = createKeyServer({ store: openSqliteKeyStore(join(dir, 'keys.db')), clock: systemClock });
    relay = createRelay(resolveRelayConfig({ port: 0, presenceMaxTargets: 2 }), {
      envelopes: openSqliteEnvelopeStore({ path: join(dir, 'relay.db'), clock: systemClock }),
      directory: keyServer.directory,
      mountRoutes: (app) => keyServer.registerRoutes(app),
      errorHandler: keyServerErrorHandler,
      clock: systemClock,
      log: pino({ level: 'silent' }),
    });
    url = (await relay.listen()).url;
  });
  after(async () => {
    await relay?.close();
    await keyServer?.close();
  });

  it('answers bad presence frames with typed errors and keeps the socket and the subscription', async () => {
    const id = generateIdentity();
    const s = (k: { keyId: number; publicKey: Uint8Array; signature: Uint8Array }) => ({ keyId: k.keyId, publicKey: toBase64Url(k.publicKey), signature: toBase64Url(k.signature) });
    const register = async (username: string): Promise<Account> => {
      const secret = new Uint8Array(randomBytes(32));
      const res = await fetch(`${url}/v1/accounts`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          username,
          identityKey: toBase64Url(id.identityKey),
          registrationId: id.registrationId,
          authSecret: toBase64Url(secret),
          signedPreKey: s(generateSignedPreKey(id.identityKeyPair, 1, Date.now()).upload),
          lastResortKyberPreKey: s(generateKyberPreKey(id.identityKeyPair, 1, Date.now()).upload),
        }),
      });
      const { aci } = (await res.json()) as { aci: Aci };
      const account = { aci, secret, auth: formatBasicAuth(aci, 1, secret), token: new Uint8Array(randomBytes(32)) };
      await fetch(`${url}/v1/accounts/me/presence`, {
        method: 'PUT',
        headers: { 'content-type': 'application/json', authorization: account.auth },
        body: JSON.stringify({ token: toBase64Url(account.token) }),
      });
      return account;
    };
    const [alice, bob] = [await register('alice'), await register('bob')];
    const wsUrl = `${url.replace('http', 'ws')}/v1/websocket`;
    const a = await Socket.open(wsUrl, alice);
    const b = await Socket.open(wsUrl, bob);
    a.subscribe(1, [bob]);
    await a.until(() => a.updates().length === 1, 'subscribed');
    const raw = (requestId: number, targets: Array<{ aci: Uint8Array; token: Uint8Array }>) =>
      a.ws.send(encodeFrame({ kind: { case: 'presenceSubscribe', value: { requestId, targets } } }));
    raw(2, [{ aci: new Uint8Array(17), token: bob.token }]);
    raw(3, [{ aci: aciToBytes(bob.aci), token: new Uint8Array(16) }]);
    raw(4, [
      { aci: aciToBytes(bob.aci), token: bob.token },
      { aci: aciToBytes(bob.aci), token: bob.token },
    ]);
    a.subscribe(5, [bob, { aci: randomUUID() as Aci, token: new Uint8Array(32) }, { aci: randomUUID() as Aci, token: new Uint8Array(32) }]);
    a.set(PresenceState.OFFLINE);
    a.set(PresenceState.UNSPECIFIED);
    await a.sync();
    assert.deepEqual(a.errors(), [
      { requestId: 2, code: 'BAD_REQUEST' },
      { requestId: 3, code: 'BAD_REQUEST' },
      { requestId: 4, code: 'BAD_REQUEST' },
      { requestId: 5, code: 'BAD_REQUEST' },
      { requestId: 0, code: 'BAD_REQUEST' },
      { requestId: 0, code: 'BAD_REQUEST' },
    ]);
    assert.equal(a.results().length, 1, 'no refused frame changed the subscription');
    b.set(PresenceState.AWAY);
    await a.until(() => a.updates().length === 2, 'the subscription still works');
    assert.equal(a.ws.readyState, WebSocket.OPEN);
    await Promise.all([a.close(), b.close()]);
  });
});
