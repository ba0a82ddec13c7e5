// SPDX-License-Identifier: AGPL-3.0-only
/**
 * Presence on real relay processes (DESIGN §8): a subscriber with the right token sees ONLINE,
 * AWAY and OFFLINE within 2 s of each change; wrong tokens, unknown accounts and presence off are
 * refused alike and never hear a word; a new token ends the subscriptions made with the old one;
 * bad input changes nothing; a client process killed with SIGKILL, and one frozen with SIGSTOP,
 * turn OFFLINE; with --redis, the devices of a relay killed with SIGKILL turn OFFLINE once their
 * TTL runs out, seen by a subscriber on the relay that replaced it; and the relay, logging at
 * trace, never writes a presence token.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { aciFromBytes, aciToBytes, PresenceState, toBase64Url, type Aci } from '@parley/protocol';
import type { DeviceSocket } from '../support/device-socket.js';
import { redisServerSkipReason, startRedisServer, type RedisServerProcess } from '../support/redis-server.js';
import { REPO_ROOT, startRelay, type RelayProcess } from '../support/relay-process.js';
import { registerAccount, type TestDevice } from '../support/test-device.js';

const CHILD = join(REPO_ROOT, 'test', 'dist', 'support', 'presence-child.js');
/** What the relay promises subscribers: a change reaches them within 2 s. */
const PROMPT_MS = 2000;

interface Update {
  aci: Aci;
  state: 'online' | 'away' | 'offline' | '?';
  lastSeen: number;
}

const NAMES: Record<number, Update['state']> = { [PresenceState.ONLINE]: 'online', [PresenceState.AWAY]: 'away', [PresenceState.OFFLINE]: 'offline' };

function updates(s: DeviceSocket, about?: Aci): Update[] {
  return s.frames
    .flatMap((f) => (f.kind.case === 'presenceUpdate' ? [{ aci: aciFromBytes(f.kind.value.aci), state: NAMES[f.kind.value.state] ?? '?', lastSeen: Number(f.kind.value.lastSeen) }] : []))
    .filter((u) => about === undefined || u.aci === about);
}

function results(s: DeviceSocket): Array<{ requestId: number; refused: Aci[] }> {
  return s.frames.flatMap((f) => (f.kind.case === 'presenceSubscribeResult' ? [{ requestId: f.kind.value.requestId, refused: f.kind.value.refused.map((b) => aciFromBytes(b)) }] : []));
}

function subscribe(s: DeviceSocket, targets: Array<{ aci: Aci; token: Uint8Array }>): number {
  const requestId = s.requestId();
  s.send({ kind: { case: 'presenceSubscribe', value: { requestId, targets: targets.map((t) => ({ aci: aciToBytes(t.aci), token: t.token })) } } });
  return requestId;
}

async function subscribed(s: DeviceSocket, requestId: number): Promise<Aci[]> {
  await s.waitFor(() => results(s).some((r) => r.requestId === requestId), 5000, `the result of subscription ${requestId}`);
  return results(s).find((r) => r.requestId === requestId)!.refused;
}

/** Waits for the `n`th update about `aci` and returns it with how long it took from `since`. */
async function nthUpdate(s: DeviceSocket, aci: Aci, n: number, since = Date.now(), timeoutMs = PROMPT_MS): Promise<Update & { tookMs: number }> {
  await s.waitFor(() => updates(s, aci).length >= n, timeoutMs, `update ${n} about ${aci} (have ${JSON.stringify(updates(s, aci))})`);
  return { ...updates(s, aci)[n - 1]!, tookMs: Date.now() - since };
}

async function setToken(d: TestDevice, token: Uint8Array | undefined): Promise<void> {
  const res = token ? await d.call('PUT', '/v1/accounts/me/presence', { token: toBase64Url(token) }) : await d.call('DELETE', '/v1/accounts/me/presence');
  assert.equal(res.status, 204, JSON.stringify(res.body));
}

/** A device socket held by a child process. */
async function childDevice(d: TestDevice, state?: 'away'): Promise<ChildProcess> {
  const child = spawn(process.execPath, [CHILD, d.wsUrl, ...(state ? [state] : [])], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, PARLEY_TEST_AUTHORIZATION: d.authorization },
  });
  let out = '';
  await new Promise<void>((resolve, reject) => {
    child.stdout!.setEncoding('utf8').on('data', (t: string) => {
      out += t;
      if (out.includes('connected\n')) resolve();
    });
    child.stderr!.setEncoding('utf8').on('data', (t: string) => (out += t));
    child.once('exit', (code) => reject(new Error(`the device process exited with ${code}: ${out}`)));
  });
  return child;
}

/** Every textual form a token could take in a log line. */
function encodings(bytes: Uint8Array): string[] {
  const b = Buffer.from(bytes);
  return [toBase64Url(bytes), b.toString('base64'), b.toString('hex'), b.toString('hex').toUpperCase()];
}

describe('presence on a relay process', () => {
  const KEEPALIVE_MS = 250;
  let relay: RelayProcess;
  const tokensUsed: Uint8Array[] = [];
  const children: ChildProcess[] = [];
  let n = 0;

  /** A fresh account with presence on. */
  async function account(prefix: string): Promise<TestDevice & { token: Uint8Array }> {
    const d = await registerAccount(relay.url, `${prefix}${++n}`, 1);
    const token = new Uint8Array(randomBytes(32));
    tokensUsed.push(token);
    await setToken(d, token);
    return Object.assign(d, { token });
  }

  before(async () => {
    relay = await startRelay({ args: ['--keepalive-ms', String(KEEPALIVE_MS), '--log-level', 'trace'] });
  });
  after(async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    await relay?.stop();
  });

  it('a subscriber sees ONLINE, AWAY and OFFLINE with the last-seen time, each within 2 s of the change', async () => {
    const [alice, bob] = [await account('alice'), await account('bob')];
    const a = await alice.connect();
    const refused = await subscribed(a, subscribe(a, [bob]));
    assert.deepEqual(refused, []);
    assert.deepEqual(await nthUpdate(a, bob.aci, 1).then(({ tookMs: _t, ...u }) => u), { aci: bob.aci, state: 'offline', lastSeen: 0 });

    let t = Date.now();
    const b = await bob.connect();
    const online = await nthUpdate(a, bob.aci, 2, t);
    assert.equal(online.state, 'online');
    t = Date.now();
    b.send({ kind: { case: 'presenceSet', value: { state: PresenceState.AWAY } } });
    const away = await nthUpdate(a, bob.aci, 3, t);
    assert.equal(away.state, 'away');
    t = Date.now();
    b.send({ kind: { case: 'presenceSet', value: { state: PresenceState.ONLINE } } });
    assert.equal((await nthUpdate(a, bob.aci, 4, t)).state, 'online');
    t = Date.now();
    await b.close();
    const offline = await nthUpdate(a, bob.aci, 5, t);
    assert.equal(offline.state, 'offline');
    assert.ok(offline.lastSeen >= t - 50 && offline.lastSeen <= Date.now(), `last seen ${offline.lastSeen - t} ms after the close began`);
    // Heartbeats (every 250 ms) add nothing: there is no event to wait for, so four of them pass.
    const before = updates(a, bob.aci).length;
    await new Promise((r) => setTimeout(r, 4 * KEEPALIVE_MS));
    assert.equal(updates(a, bob.aci).length, before, 'no updates without changes');
    await a.close();
  });

  it('a wrong token, an unknown account and presence off are refused alike, and nothing about them ever arrives', async () => {
    const [alice, bob, carol, dave] = [await account('alice'), await account('bob'), await account('carol'), await account('dave')];
    await setToken(dave, undefined);
    const stranger = { aci: randomUUID() as Aci, token: new Uint8Array(randomBytes(32)) };
    const a = await alice.connect();
    const refused = await subscribed(a, subscribe(a, [{ aci: bob.aci, token: carol.token }, { aci: dave.aci, token: dave.token }, stranger, carol]));
    assert.deepEqual([...refused].sort(), [bob.aci, dave.aci, stranger.aci].sort());
    const [b, d] = [await bob.connect(), await dave.connect()];
    b.send({ kind: { case: 'presenceSet', value: { state: PresenceState.AWAY } } });
    await b.close();
    await d.close();
    // Carol's changes arrive; bob's and dave's, made before them, never do.
    const c = await carol.connect();
    await nthUpdate(a, carol.aci, 2);
    await c.close();
    await nthUpdate(a, carol.aci, 3);
    await new Promise((r) => setTimeout(r, 4 * KEEPALIVE_MS));
    assert.deepEqual(updates(a).filter((u) => u.aci !== carol.aci), []);
    await a.close();
  });

  it('a new token ends the subscription made with the old one; the old token is refused, the new one subscribes', async () => {
    const [alice, bob] = [await account('alice'), await account('bob')];
    const b = await bob.connect();
    const a = await alice.connect();
    await subscribed(a, subscribe(a, [bob]));
    assert.equal((await nthUpdate(a, bob.aci, 1)).state, 'online');
    const fresh = new Uint8Array(randomBytes(32));
    tokensUsed.push(fresh);
    const t = Date.now();
    await setToken(bob, fresh);
    const last = await nthUpdate(a, bob.aci, 2, t);
    assert.deepEqual({ state: last.state, lastSeen: last.lastSeen }, { state: 'offline', lastSeen: 0 }, 'nothing known any more');
    await a.waitFor(() => results(a).some((r) => r.requestId === 0), PROMPT_MS, 'the unsolicited refusal');
    assert.deepEqual(results(a).find((r) => r.requestId === 0)!.refused, [bob.aci]);
    b.send({ kind: { case: 'presenceSet', value: { state: PresenceState.AWAY } } });
    await b.sync();
    assert.deepEqual(await subscribed(a, subscribe(a, [bob])), [bob.aci], 'the old token');
    assert.deepEqual(await subscribed(a, subscribe(a, [{ aci: bob.aci, token: fresh }])), []);
    assert.equal((await nthUpdate(a, bob.aci, 3)).state, 'away');
    // Presence off ends it too.
    await setToken(bob, undefined);
    await a.waitFor(() => results(a).filter((r) => r.requestId === 0).length === 2, PROMPT_MS, 'the second refusal');
    assert.deepEqual(await subscribed(a, subscribe(a, [{ aci: bob.aci, token: fresh }])), [bob.aci]);
    await Promise.all([a.close(), b.close()]);
  });

  it('refuses bad presence input with typed errors and changes nothing', async () => {
    const [alice, bob] = [await account('alice'), await account('bob')];
    const bad = await bob.call<{ code: string }>('PUT', '/v1/accounts/me/presence', { token: toBase64Url(new Uint8Array(31)) });
    assert.deepEqual([bad.status, bad.body.code], [400, 'BAD_REQUEST']);
    const extra = await bob.call<{ code: string }>('PUT', '/v1/accounts/me/presence', { token: toBase64Url(bob.token), on: true });
    assert.deepEqual([extra.status, extra.body.code], [400, 'BAD_REQUEST']);
    const a = await alice.connect();
    const from = a.frames.length;
    const requestId = a.requestId();
    a.send({ kind: { case: 'presenceSubscribe', value: { requestId, targets: [{ aci: new Uint8Array(3), token: bob.token }] } } });
    a.send({ kind: { case: 'presenceSet', value: { state: PresenceState.OFFLINE } } });
    const first = await a.connectionError(from);
    assert.equal(first.code, 'BAD_REQUEST');
    await a.sync();
    const errors = a.frames.slice(from).flatMap((f) => (f.kind.case === 'error' ? [[f.kind.value.requestId, f.kind.value.code]] : []));
    assert.deepEqual(errors, [
      [requestId, 'BAD_REQUEST'],
      [0, 'BAD_REQUEST'],
    ]);
    assert.deepEqual(await subscribed(a, subscribe(a, [bob])), [], 'bob\u2019s token is the one he set, and the socket is still up');
    await a.close();
  });

  it('a client process killed with SIGKILL shows OFFLINE within 2 s: its system closes the socket', async () => {
    const [alice, bob] = [await account('alice'), await account('bob')];
    const child = await childDevice(bob, 'away');
    children.push(child);
    const a = await alice.connect();
    await subscribed(a, subscribe(a, [bob]));
    assert.equal((await nthUpdate(a, bob.aci, 1)).state, 'away');
    const t = Date.now();
    child.kill('SIGKILL');
    const offline = await nthUpdate(a, bob.aci, 2, t);
    assert.equal(offline.state, 'offline');
    assert.ok(offline.lastSeen >= t && offline.lastSeen <= Date.now());
    await a.close();
  });

  it('a client that stops answering (SIGSTOP) shows OFFLINE once the relay gives up on it, within two keepalive intervals', async () => {
    const [alice, bob] = [await account('alice'), await account('bob')];
    const child = await childDevice(bob);
    children.push(child);
    const a = await alice.connect();
    await subscribed(a, subscribe(a, [bob]));
    assert.equal((await nthUpdate(a, bob.aci, 1)).state, 'online');
    const t = Date.now();
    child.kill('SIGSTOP');
    try {
      // Two keepalive rounds to give up on it, then the usual promise to subscribers.
      const offline = await nthUpdate(a, bob.aci, 2, t, 2 * KEEPALIVE_MS + PROMPT_MS);
      assert.equal(offline.state, 'offline');
      assert.ok(offline.lastSeen >= t, 'last seen when the relay noticed');
    } finally {
      child.kill('SIGKILL');
    }
    await a.close();
  });

  it('never logs a presence token, in any encoding', async () => {
    assert.ok(tokensUsed.length >= 10);
    const out = relay.output();
    assert.match(out, /presence subscription/, 'subscriptions were logged (with counts)');
    for (const token of tokensUsed) for (const text of encodings(token)) assert.ok(!out.includes(text), 'a presence token is in the relay output');
  });
});

const redisSkip = redisServerSkipReason();

describe('presence with --redis across a relay killed with SIGKILL', redisSkip ? { skip: redisSkip } : {}, () => {
  let redis: RedisServerProcess;
  const relays: RelayProcess[] = [];
  before(async () => {
    redis = await startRedisServer();
  });
  after(async () => {
    for (const r of relays) await r.kill();
    await redis?.stop();
  });

  it('its devices stay ONLINE until their TTL runs out, then turn OFFLINE at their last heartbeat, for a subscriber on the relay that replaced it', async () => {
    const KEEPALIVE_MS = 500;
    const TTL_MS = 4000;
    const dataDir = mkdtempSync(join(tmpdir(), 'parley-presence-redis-'));
    const args = ['--redis', redis.url, '--keepalive-ms', String(KEEPALIVE_MS), '--presence-ttl-ms', String(TTL_MS)];
    const first = await startRelay({ dataDir, args });
    relays.push(first);
    const [alice, bob] = [await registerAccount(first.url, 'alice', 1), await registerAccount(first.url, 'bob', 1)];
    const token = new Uint8Array(randomBytes(32));
    await setToken(bob, token);
    const b = await bob.connect();
    await b.sync();
    // Let a heartbeat or two go by, then kill the relay: nothing of its shutdown runs.
    await new Promise((r) => setTimeout(r, 2 * KEEPALIVE_MS));
    const killedAt = Date.now();
    await first.kill();
    await b.closed;

    const second = await startRelay({ dataDir, args, port: first.port });
    relays.push(second);
    const a = await alice.connect();
    await subscribed(a, subscribe(a, [{ aci: bob.aci, token }]));
    const seen = await nthUpdate(a, bob.aci, 1);
    assert.equal(seen.state, 'online', 'bob\u2019s entry outlived the relay that held it');
    const offline = await nthUpdate(a, bob.aci, 2, killedAt, TTL_MS + 4 * KEEPALIVE_MS + PROMPT_MS);
    assert.equal(offline.state, 'offline');
    // Heartbeats came every keepalive interval (a second interval of slack for a busy machine).
    assert.ok(offline.lastSeen <= killedAt && offline.lastSeen >= killedAt - 2 * KEEPALIVE_MS, `last seen ${killedAt - offline.lastSeen} ms before the kill`);
    assert.ok(offline.tookMs >= TTL_MS - 2 * KEEPALIVE_MS, `offline ${offline.tookMs} ms after the kill: not before the TTL ran out`);
    await a.close();
  });
});
