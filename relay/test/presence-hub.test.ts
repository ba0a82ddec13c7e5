// SPDX-License-Identifier: AGPL-3.0-only
/**
 * The presence hub with fake connections: subscriptions and their refusals, updates on changes
 * only, revocation, bad frames, rate limits, caps, coalescing for slow sockets — and, with two
 * hubs on one store (two relay nodes), changes across nodes, a node that dies (entries run out by
 * their TTL) and revocations on the other node. The cross-node tests run on the in-process store
 * and on Redis (a real redis-server this file starts; skipped with the reason where there is none).
 */
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { Redis } from 'ioredis';
import { createRateLimiter } from '@parley/keyserver';
import { redisServerSkipReason, startRedisServer, type RedisServerProcess } from '@parley/keyserver/testing'; // eslint-disable-line no-restricted-imports -- ./testing is @parley/keyserver's declared test entry (CONVENTIONS 2)
import {
  aciFromBytes,
  aciToBytes,
  create,
  ParleyError,
  PresenceSetSchema,
  PresenceState,
  PresenceSubscribeSchema,
  type Aci,
  type DeviceId,
  type FrameInit,
} from '@parley/protocol';
import type { PresenceStore } from '../src/ports/presence-store.js';
import { InProcessPresenceStore } from '../src/presence/in-process-presence-store.js';
import { PresenceHub, type PresenceHubOptions, type PresencePeer } from '../src/presence/presence-hub.js';
import { createRedisPresenceStore } from '../src/presence/redis-presence-store.js';
import { ManualClock } from './contract/manual-clock.js';

const T0 = 1_750_000_000_000;
const quiet = pino({ level: 'silent' });

interface Update {
  aci: Aci;
  state: 'online' | 'away' | 'offline';
  lastSeen: number;
}

const STATE_NAME = { [PresenceState.ONLINE]: 'online', [PresenceState.AWAY]: 'away', [PresenceState.OFFLINE]: 'offline' } as Record<number, Update['state']>;

/** A connection that records what the hub sends it. */
class FakePeer implements PresencePeer {
  readonly frames: FrameInit[] = [];
  bufferedAmount = 0;
  private wake: (() => void) | undefined;
  constructor(readonly queue: { aci: Aci; deviceId: DeviceId }) {}
  sendFrame(frame: FrameInit): void {
    this.frames.push(frame);
    this.wake?.();
  }
  sendError(requestId: number, err: unknown): void {
    const e = err instanceof ParleyError ? err : new ParleyError('INTERNAL');
    this.sendFrame({ kind: { case: 'error', value: { requestId, code: e.code, retryAfterMs: e.details.retryAfterMs ?? 0 } } });
  }
  /** The updates in frames from index `from` on. */
  updates(from = 0): Update[] {
    return this.frames.slice(from).flatMap((f) => {
      if (f.kind?.case !== 'presenceUpdate') return [];
      const v = f.kind.value;
      return [{ aci: aciFromBytes(v.aci as Uint8Array), state: STATE_NAME[v.state as number]!, lastSeen: Number(v.lastSeen ?? 0n) }];
    });
  }
  results(): Array<{ requestId: number; refused: Aci[] }> {
    return this.frames.flatMap((f) =>
      f.kind?.case === 'presenceSubscribeResult'
        ? [{ requestId: f.kind.value.requestId ?? 0, refused: (f.kind.value.refused ?? []).map((b) => aciFromBytes(b)) }]
        : [],
    );
  }
  errors(): Array<{ requestId: number; code: string; retryAfterMs: number }> {
    return this.frames.flatMap((f) =>
      f.kind?.case === 'error' ? [{ requestId: f.kind.value.requestId ?? 0, code: f.kind.value.code ?? '', retryAfterMs: f.kind.value.retryAfterMs ?? 0 }] : [],
    );
  }
  /** Waits until `check` holds, failing after `timeoutMs` (2 s: the promise made to subscribers). */
  async until(check: () => boolean, what: string, timeoutMs = 2000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!check()) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}; frames: ${JSON.stringify(this.frames, (_k, v: unknown) => (typeof v === 'bigint' ? Number(v) : v))}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(left, 50));
        this.wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
    }
  }
}

/** Accounts, their tokens, and a verifier like the directory's. */
class Tokens {
  private readonly byAci = new Map<Aci, string>();
  set(aci: Aci, token: Uint8Array | undefined): void {
    if (token) this.byAci.set(aci, Buffer.from(token).toString('hex'));
    else this.byAci.delete(aci);
  }
  verify = async (aci: Aci, token: Uint8Array): Promise<boolean> => this.byAci.get(aci) === Buffer.from(token).toString('hex');
}

const newAci = () => randomUUID() as Aci;
const token = () => new Uint8Array(randomBytes(32));
const peerOf = (aci: Aci, deviceId = 1) => new FakePeer({ aci, deviceId: deviceId as DeviceId });
const rawSubscribe = (requestId: number, targets: Array<{ aci: Uint8Array; token: Uint8Array }>) => create(PresenceSubscribeSchema, { requestId, targets });
const subscribeFrame = (requestId: number, targets: Array<{ aci: Aci; token: Uint8Array }>) =>
  rawSubscribe(
    requestId,
    targets.map((t) => ({ aci: aciToBytes(t.aci), token: t.token })),
  );
const setFrame = (state: PresenceState) => create(PresenceSetSchema, { state });
const tick = () => new Promise((r) => setImmediate(r));

/** One hub on an in-process store with a manual clock. */
function singleNode(overrides: Partial<PresenceHubOptions> = {}) {
  const clock = new ManualClock(T0);
  const store = new InProcessPresenceStore({ clock });
  const tokens = new Tokens();
  const counted = { updates: 0, limited: [] as string[] };
  const hub = new PresenceHub({
    store,
    verifyToken: tokens.verify,
    log: quiet,
    metrics: { presenceUpdatesSent: (n) => (counted.updates += n), rateLimitHit: (l) => counted.limited.push(l) },
    ttlMs: 90_000,
    maxTargets: 10,
    maxSubscribersPerAccount: 100,
    ...overrides,
  });
  return { clock, store, tokens, hub, counted };
}

/** An account with presence on, connected with device 1. */
function connectedAccount(n: ReturnType<typeof singleNode>, deviceId = 1) {
  const aci = newAci();
  const t = token();
  n.tokens.set(aci, t);
  const peer = peerOf(aci, deviceId);
  n.hub.connected(peer);
  return { aci, token: t, peer };
}

describe('presence hub on one node', () => {
  it('sends the result, then each accepted account\u2019s presence at once, then every change of it', async () => {
    const n = singleNode();
    const bob = connectedAccount(n);
    const carol = { aci: newAci(), token: token() };
    n.tokens.set(carol.aci, carol.token);
    const alice = connectedAccount(n);
    n.hub.onSubscribe(alice.peer, subscribeFrame(7, [bob, carol]));
    await alice.peer.until(() => alice.peer.updates().length === 2, 'two first updates');
    assert.deepEqual(alice.peer.results(), [{ requestId: 7, refused: [] }]);
    assert.equal(alice.peer.frames[0]!.kind?.case, 'presenceSubscribeResult', 'the result comes first');
    assert.deepEqual(alice.peer.updates().sort((a, b) => a.state.localeCompare(b.state)), [
      { aci: carol.aci, state: 'offline', lastSeen: 0 },
      { aci: bob.aci, state: 'online', lastSeen: 0 },
    ]);
    assert.equal(n.hub.subscriptions, 2);

    n.hub.onSet(bob.peer, setFrame(PresenceState.AWAY));
    await alice.peer.until(() => alice.peer.updates().length === 3, 'away');
    assert.deepEqual(alice.peer.updates().at(-1), { aci: bob.aci, state: 'away', lastSeen: 0 });
    n.clock.advance(5000);
    n.hub.disconnected(bob.peer);
    await alice.peer.until(() => alice.peer.updates().length === 4, 'offline');
    assert.deepEqual(alice.peer.updates().at(-1), { aci: bob.aci, state: 'offline', lastSeen: T0 + 5000 });
    assert.equal(n.counted.updates, 4);
  });

  it('refuses a wrong token, an unknown account and presence off alike, and never sends them an update', async () => {
    const n = singleNode();
    const bob = connectedAccount(n);
    const off = connectedAccount(n);
    n.tokens.set(off.aci, undefined);
    const stranger = { aci: newAci(), token: token() };
    const alice = connectedAccount(n);
    n.hub.onSubscribe(alice.peer, subscribeFrame(1, [{ aci: bob.aci, token: token() }, stranger, { aci: off.aci, token: off.token }]));
    await alice.peer.until(() => alice.peer.results().length === 1, 'result');
    assert.deepEqual(alice.peer.results()[0]!.refused.sort(), [bob.aci, stranger.aci, off.aci].sort());
    n.hub.onSet(bob.peer, setFrame(PresenceState.AWAY));
    n.hub.disconnected(off.peer);
    await n.hub.tick();
    await tick();
    assert.deepEqual(alice.peer.updates(), []);
    assert.equal(n.hub.subscriptions, 0);
    assert.equal(n.hub.watchedAccounts, 0, 'refused accounts are not watched');
  });

  it('sends nothing for heartbeats, for a second device of an online account, or for a reconnect', async () => {
    const n = singleNode();
    const bob = connectedAccount(n);
    const alice = connectedAccount(n);
    n.hub.onSubscribe(alice.peer, subscribeFrame(1, [bob]));
    await alice.peer.until(() => alice.peer.updates().length === 1, 'first');
    for (let i = 0; i < 3; i++) {
      n.clock.advance(30_000);
      await n.hub.tick();
    }
    const bob2 = peerOf(bob.aci, 2);
    n.hub.connected(bob2);
    n.hub.onSet(bob2, setFrame(PresenceState.AWAY));
    // A reconnect of device 1: the new connection first, then the old one ends.
    const again = peerOf(bob.aci, 1);
    n.hub.connected(again);
    n.hub.disconnected(bob.peer);
    await n.hub.tick();
    await tick();
    assert.deepEqual(alice.peer.updates().length, 1, JSON.stringify(alice.peer.updates()));
  });

  it('a new subscription replaces the old set: dropped accounts send nothing more and are no longer watched', async () => {
    const n = singleNode();
    const [bob, carol] = [connectedAccount(n), connectedAccount(n)];
    const alice = connectedAccount(n);
    n.hub.onSubscribe(alice.peer, subscribeFrame(1, [bob, carol]));
    await alice.peer.until(() => alice.peer.updates().length === 2, 'first two');
    n.hub.onSubscribe(alice.peer, subscribeFrame(2, [carol]));
    await alice.peer.until(() => alice.peer.results().length === 2, 'second result');
    await alice.peer.until(() => alice.peer.updates().length === 3, 'carol again');
    assert.deepEqual(alice.peer.updates().at(-1), { aci: carol.aci, state: 'online', lastSeen: 0 }, 'accepted targets get their state again');
    assert.equal(n.hub.watchedAccounts, 1);
    n.hub.disconnected(bob.peer);
    n.hub.onSet(carol.peer, setFrame(PresenceState.AWAY));
    await alice.peer.until(() => alice.peer.updates().length === 4, 'carol away');
    assert.deepEqual(alice.peer.updates().at(-1), { aci: carol.aci, state: 'away', lastSeen: 0 });
    n.hub.onSubscribe(alice.peer, subscribeFrame(3, []));
    await alice.peer.until(() => alice.peer.results().length === 3, 'empty subscription');
    assert.equal(n.hub.subscriptions, 0);
    assert.equal(n.hub.watchedAccounts, 0);
  });

  it('a revocation ends the subscription with a last OFFLINE and a refusal; a new token is needed to subscribe again', async () => {
    const n = singleNode();
    const bob = connectedAccount(n);
    const alice = connectedAccount(n);
    n.hub.onSubscribe(alice.peer, subscribeFrame(1, [bob]));
    await alice.peer.until(() => alice.peer.updates().length === 1, 'first');
    const fresh = token();
    n.tokens.set(bob.aci, fresh);
    n.hub.revoke(bob.aci);
    assert.deepEqual(alice.peer.updates().at(-1), { aci: bob.aci, state: 'offline', lastSeen: 0 });
    assert.deepEqual(alice.peer.results().at(-1), { requestId: 0, refused: [bob.aci] });
    assert.equal(n.hub.subscriptions, 0);
    const from = alice.peer.frames.length;
    n.hub.onSet(bob.peer, setFrame(PresenceState.AWAY));
    await n.hub.tick();
    await tick();
    assert.deepEqual(alice.peer.updates(from), [], 'nothing after the end');
    n.hub.onSubscribe(alice.peer, subscribeFrame(2, [bob]));
    await alice.peer.until(() => alice.peer.results().length === 3, 'result');
    assert.deepEqual(alice.peer.results().at(-1), { requestId: 2, refused: [bob.aci] }, 'the old token is refused');
    n.hub.onSubscribe(alice.peer, subscribeFrame(3, [{ aci: bob.aci, token: fresh }]));
    await alice.peer.until(() => alice.peer.updates(from).length === 1, 'with the new token');
    assert.deepEqual(alice.peer.updates(from), [{ aci: bob.aci, state: 'away', lastSeen: 0 }]);
  });

  it('answers malformed subscriptions with BAD_REQUEST and keeps the previous set', async () => {
    const n = singleNode({ maxTargets: 3 });
    const bob = connectedAccount(n);
    const alice = connectedAccount(n);
    n.hub.onSubscribe(alice.peer, subscribeFrame(1, [bob]));
    await alice.peer.until(() => alice.peer.updates().length === 1, 'first');
    const bad: Array<[string, ReturnType<typeof rawSubscribe>]> = [
      ['a 15-byte account', rawSubscribe(2, [{ aci: new Uint8Array(15), token: bob.token }])],
      ['a 31-byte token', rawSubscribe(3, [{ aci: aciToBytes(bob.aci), token: bob.token.subarray(1) }])],
      ['no token', rawSubscribe(4, [{ aci: aciToBytes(bob.aci), token: new Uint8Array(0) }])],
      ['an account twice', subscribeFrame(5, [bob, bob])],
      ['more than the cap', subscribeFrame(6, [bob, { aci: newAci(), token: token() }, { aci: newAci(), token: token() }, { aci: newAci(), token: token() }])],
    ];
    for (const [, frame] of bad) n.hub.onSubscribe(alice.peer, frame);
    assert.deepEqual(alice.peer.errors().map((e) => [e.requestId, e.code]), bad.map(([, f]) => [f.requestId, 'BAD_REQUEST']));
    assert.equal(alice.peer.results().length, 1);
    assert.equal(n.hub.subscriptions, 1);
    n.hub.onSet(bob.peer, setFrame(PresenceState.AWAY));
    await alice.peer.until(() => alice.peer.updates().length === 2, 'the old subscription still works');
  });

  it('takes only ONLINE and AWAY in PresenceSet; anything else is BAD_REQUEST and changes nothing', async () => {
    const n = singleNode();
    const bob = connectedAccount(n);
    const alice = connectedAccount(n);
    n.hub.onSubscribe(alice.peer, subscribeFrame(1, [bob]));
    await alice.peer.until(() => alice.peer.updates().length === 1, 'first');
    for (const state of [PresenceState.UNSPECIFIED, PresenceState.OFFLINE, 99 as PresenceState]) n.hub.onSet(bob.peer, setFrame(state));
    assert.deepEqual(bob.peer.errors().map((e) => e.code), ['BAD_REQUEST', 'BAD_REQUEST', 'BAD_REQUEST']);
    await n.hub.tick();
    assert.deepEqual((await n.store.read([bob.aci]))[0], { state: 'online', lastSeen: 0 });
    assert.equal(alice.peer.updates().length, 1);
  });

  it('rate limits subscriptions and state changes per device, with the time to wait', async () => {
    const clock = new ManualClock(T0);
    const n = singleNode({
      subscribeLimiter: createRateLimiter({ capacity: 2, windowMs: 60_000, clock }),
      setLimiter: createRateLimiter({ capacity: 1, windowMs: 60_000, clock }),
    });
    const bob = connectedAccount(n);
    const alice = connectedAccount(n);
    for (const id of [1, 2, 3]) n.hub.onSubscribe(alice.peer, subscribeFrame(id, [bob]));
    await alice.peer.until(() => alice.peer.results().length + alice.peer.errors().length === 3, 'three answers');
    assert.deepEqual(alice.peer.results().map((r) => r.requestId), [1, 2]);
    assert.deepEqual(alice.peer.errors(), [{ requestId: 3, code: 'RATE_LIMITED', retryAfterMs: 30_000 }]);
    n.hub.onSet(bob.peer, setFrame(PresenceState.AWAY));
    n.hub.onSet(bob.peer, setFrame(PresenceState.ONLINE));
    await bob.peer.until(() => bob.peer.errors().length === 1, 'refused set');
    assert.deepEqual(bob.peer.errors(), [{ requestId: 0, code: 'RATE_LIMITED', retryAfterMs: 60_000 }]);
    assert.deepEqual((await n.store.read([bob.aci]))[0]!.state, 'away', 'the refused ONLINE changed nothing');
    assert.deepEqual(n.counted.limited.sort(), ['presence_set', 'presence_subscribe']);
  });

  it('refuses accounts that already have the most subscribers this process allows', async () => {
    const n = singleNode({ maxSubscribersPerAccount: 2 });
    const bob = connectedAccount(n);
    const fans = [connectedAccount(n), connectedAccount(n), connectedAccount(n)];
    for (const [i, f] of fans.entries()) {
      n.hub.onSubscribe(f.peer, subscribeFrame(1, [bob]));
      await f.peer.until(() => f.peer.results().length === 1, `fan ${i}`);
    }
    assert.deepEqual(fans.map((f) => f.peer.results()[0]!.refused.length), [0, 0, 1]);
    n.hub.onSubscribe(fans[0]!.peer, subscribeFrame(2, [bob]));
    await fans[0]!.peer.until(() => fans[0]!.peer.results().length === 2, 'resubscribe');
    assert.deepEqual(fans[0]!.peer.results()[1]!.refused, [], 'a subscriber keeps its place when it subscribes again');
  });

  it('holds updates for a slow socket and then sends only the latest per account', async () => {
    const n = singleNode({ highWaterBytes: 1000, flushIntervalMs: 10 });
    const bob = connectedAccount(n);
    const carol = connectedAccount(n);
    const alice = connectedAccount(n);
    n.hub.onSubscribe(alice.peer, subscribeFrame(1, [bob, carol]));
    await alice.peer.until(() => alice.peer.updates().length === 2, 'first');
    alice.peer.bufferedAmount = 5000;
    n.hub.onSet(bob.peer, setFrame(PresenceState.AWAY));
    n.hub.onSet(carol.peer, setFrame(PresenceState.AWAY));
    await tick();
    n.hub.onSet(bob.peer, setFrame(PresenceState.ONLINE));
    await tick();
    n.hub.disconnected(carol.peer);
    await tick();
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(alice.peer.updates().length, 2, 'nothing while the socket is backed up');
    alice.peer.bufferedAmount = 0;
    await alice.peer.until(() => alice.peer.updates().length === 3, 'the held update');
    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(alice.peer.updates().slice(2), [{ aci: carol.aci, state: 'offline', lastSeen: T0 }], 'bob went back to what alice saw: nothing to send');
  });

  it('ends a connection\u2019s subscriptions with it, and forgets what it watched', async () => {
    const n = singleNode();
    const bob = connectedAccount(n);
    const alice = connectedAccount(n);
    n.hub.onSubscribe(alice.peer, subscribeFrame(1, [bob]));
    await alice.peer.until(() => alice.peer.updates().length === 1, 'first');
    n.hub.disconnected(alice.peer);
    assert.equal(n.hub.subscriptions, 0);
    assert.equal(n.hub.watchedAccounts, 0);
    n.hub.onSet(bob.peer, setFrame(PresenceState.AWAY));
    await n.hub.tick();
    assert.equal(alice.peer.updates().length, 1);
  });
});

// --- two nodes on one store ---

interface Backend {
  /** Two stores on one backend: two relay nodes. */
  make(clock: ManualClock): { a: PresenceStore; b: PresenceStore };
  /** Lets `ms` pass for the store's expiry. */
  pass(clock: ManualClock, ms: number): Promise<void>;
  ttlMs: number;
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

const backends: Array<[string, Backend, string | undefined]> = [
  [
    'in-process',
    {
      make: (clock) => {
        const a = new InProcessPresenceStore({ clock });
        return { a, b: new InProcessPresenceStore({ clock, shareWith: a }) };
      },
      pass: async (clock, ms) => clock.advance(ms),
      ttlMs: 90_000,
    },
    undefined,
  ],
  [
    'Redis',
    {
      make: (clock) => {
        const prefix = `hub:${randomUUID()}:`;
        const store = () => createRedisPresenceStore({ redis: new Redis(server!.url, { maxRetriesPerRequest: 0 }), prefix, clock });
        return { a: store(), b: store() };
      },
      // Redis expires heartbeat keys on its own clock: real time has to pass.
      pass: async (clock, ms) => {
        clock.advance(ms);
        await new Promise((r) => setTimeout(r, ms));
      },
      ttlMs: 1500,
    },
    skip,
  ],
];

for (const [name, backend, skipReason] of backends) {
  describe(`presence hubs on two nodes sharing one ${name} store`, skipReason ? { skip: skipReason } : {}, () => {
    function twoNodes() {
      const clock = new ManualClock(T0);
      const { a, b } = backend.make(clock);
      const tokens = new Tokens();
      const hub = (store: PresenceStore) =>
        new PresenceHub({
          store,
          verifyToken: tokens.verify,
          log: quiet,
          metrics: { presenceUpdatesSent: () => undefined, rateLimitHit: () => undefined },
          ttlMs: backend.ttlMs,
          maxTargets: 10,
          maxSubscribersPerAccount: 100,
        });
      const nodes = { clock, tokens, a: hub(a), b: hub(b), stores: [a, b] };
      return {
        ...nodes,
        async close() {
          nodes.a.close();
          nodes.b.close();
          await Promise.all([a.close(), b.close()]);
        },
      };
    }

    it('a device on node A reaches a subscriber on node B within 2 s, each change once', async () => {
      const n = twoNodes();
      try {
        const bob = { aci: newAci(), token: token() };
        n.tokens.set(bob.aci, bob.token);
        const alice = peerOf(newAci());
        n.b.connected(alice);
        n.b.onSubscribe(alice, subscribeFrame(1, [bob]));
        await alice.until(() => alice.updates().length === 1, 'first');
        assert.deepEqual(alice.updates(), [{ aci: bob.aci, state: 'offline', lastSeen: 0 }]);
        const bobPeer = peerOf(bob.aci);
        n.a.connected(bobPeer);
        await alice.until(() => alice.updates().length === 2, 'online across nodes');
        n.a.onSet(bobPeer, setFrame(PresenceState.AWAY));
        await alice.until(() => alice.updates().length === 3, 'away across nodes');
        n.clock.advance(1234);
        n.a.disconnected(bobPeer);
        await alice.until(() => alice.updates().length === 4, 'offline across nodes');
        await Promise.all([n.a.tick(), n.b.tick()]);
        assert.deepEqual(alice.updates().slice(1), [
          { aci: bob.aci, state: 'online', lastSeen: 0 },
          { aci: bob.aci, state: 'away', lastSeen: 0 },
          { aci: bob.aci, state: 'offline', lastSeen: T0 + 1234 },
        ]);
      } finally {
        await n.close();
      }
    });

    it('the devices of a node that died turn offline once their TTL runs out, last seen at their last heartbeat', async () => {
      const n = twoNodes();
      try {
        const bob = { aci: newAci(), token: token() };
        n.tokens.set(bob.aci, bob.token);
        const bobPeer = peerOf(bob.aci);
        n.a.connected(bobPeer);
        const alice = peerOf(newAci());
        n.b.connected(alice);
        n.b.onSubscribe(alice, subscribeFrame(1, [bob]));
        await alice.until(() => alice.updates().length === 1, 'online');
        await backend.pass(n.clock, backend.ttlMs * 0.9);
        const lastHeartbeat = n.clock.now();
        await n.a.tick();
        // Node A dies: no more heartbeats, no disconnect.
        n.a.close();
        // Past the lifetime of the first entry, well within that of the last heartbeat (real
        // time, for Redis, only ever runs late).
        await backend.pass(n.clock, backend.ttlMs * 0.4);
        await n.b.tick();
        assert.deepEqual(alice.updates().length, 1, 'still within the TTL of the last heartbeat');
        await backend.pass(n.clock, backend.ttlMs);
        await n.b.tick();
        await alice.until(() => alice.updates().length === 2, 'offline after the TTL');
        assert.deepEqual(alice.updates()[1], { aci: bob.aci, state: 'offline', lastSeen: lastHeartbeat });
      } finally {
        await n.close();
      }
    });

    it('a token change on node A ends subscriptions on node B', async () => {
      const n = twoNodes();
      try {
        const bob = { aci: newAci(), token: token() };
        n.tokens.set(bob.aci, bob.token);
        n.a.connected(peerOf(bob.aci));
        const alice = peerOf(newAci());
        n.b.connected(alice);
        n.b.onSubscribe(alice, subscribeFrame(1, [bob]));
        await alice.until(() => alice.updates().length >= 1, 'subscribed');
        n.tokens.set(bob.aci, undefined);
        n.a.revoke(bob.aci);
        await alice.until(() => alice.results().length === 2, 'the end of the subscription');
        assert.deepEqual(alice.results()[1], { requestId: 0, refused: [bob.aci] });
        assert.deepEqual(alice.updates().at(-1), { aci: bob.aci, state: 'offline', lastSeen: 0 });
        assert.equal(n.b.subscriptions, 0);
      } finally {
        await n.close();
      }
    });
  });
}
