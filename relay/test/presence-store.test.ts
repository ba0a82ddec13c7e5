// SPDX-License-Identifier: AGPL-3.0-only
/**
 * The PresenceStore contract against both adapters (in process always; Redis against a real
 * redis-server this file starts on a free port, skipped with the reason where there is none),
 * and what only one adapter has: the in-process memory bounds; Redis' key layout and TTLs, the
 * script reload, `resync` after a dropped subscriber connection, and failures while Redis is down.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { redisServerSkipReason, startRedisServer, type RedisServerProcess } from '@parley/keyserver/testing'; // eslint-disable-line no-restricted-imports -- ./testing is @parley/keyserver's declared test entry (CONVENTIONS 2)
import type { Aci, DeviceId } from '@parley/protocol';
import type { PresenceEvent, PresenceStore } from '../src/ports/presence-store.js';
import { InProcessPresenceStore } from '../src/presence/in-process-presence-store.js';
import { createRedisPresenceStore, openRedisPresenceStore } from '../src/presence/redis-presence-store.js';
import { describePresenceStoreContract } from './contract/presence-store-contract.js';
import { ManualClock } from './contract/manual-clock.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const dev = (n: number) => n as DeviceId;

describePresenceStoreContract('in-process', async (clock) => {
  const a = new InProcessPresenceStore({ clock });
  const b = new InProcessPresenceStore({ clock, shareWith: a });
  return { a, b, passTime: async (ms) => clock.advance(ms) };
});

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

/** A store on the test server with its own prefix; the clock is the test's. */
function redisStore(clock: ManualClock, prefix: string): PresenceStore {
  return createRedisPresenceStore({ redis: new Redis(server!.url, { maxRetriesPerRequest: 0 }), prefix, clock });
}

describePresenceStoreContract(
  'Redis (ioredis, TTL keys, pub/sub)',
  async (clock) => {
    const prefix = `test:${randomUUID()}:`;
    const [a, b] = [redisStore(clock, prefix), redisStore(clock, prefix)];
    // Redis expires keys on its own clock: the test clock and real time move together.
    return {
      a,
      b,
      passTime: async (ms) => {
        clock.advance(ms);
        await sleep(ms);
      },
    };
  },
  skip ? { skip } : {},
);

describe('in-process presence store', () => {
  it('remembers last-seen times of at most maxLastSeenAccounts accounts, forgetting the least recently seen', async () => {
    const clock = new ManualClock(1_000_000);
    const store = new InProcessPresenceStore({ clock, maxLastSeenAccounts: 3 });
    const acis = Array.from({ length: 5 }, () => randomUUID() as Aci);
    for (const aci of acis) {
      await store.set({ aci, deviceId: dev(1), connection: 'c', state: 'online' }, 60_000);
      clock.advance(1);
      await store.remove({ aci, deviceId: dev(1), connection: 'c' });
    }
    assert.equal(store.lastSeenAccounts, 3);
    const read = await store.read(acis);
    assert.deepEqual(read.map((p) => p.lastSeen), [0, 0, 1_000_003, 1_000_004, 1_000_005]);
    assert.equal(store.deviceEntries, 0);
  });

  it('drops entries whose lifetime is over on the next heartbeat round, read or not', async () => {
    const clock = new ManualClock(1_000_000);
    const store = new InProcessPresenceStore({ clock });
    for (let i = 0; i < 100; i++) await store.set({ aci: randomUUID() as Aci, deviceId: dev(1), connection: 'c', state: 'online' }, 1000);
    assert.equal(store.deviceEntries, 100);
    clock.advance(1000);
    await store.refresh([], 1000);
    assert.equal(store.deviceEntries, 0);
    assert.equal(store.lastSeenAccounts, 100, 'their accounts remember when they were last seen');
  });

  it('refuses calls after close', async () => {
    const store = new InProcessPresenceStore({ clock: new ManualClock(0) });
    await store.close();
    await assert.rejects(store.read([randomUUID() as Aci]), /closed/);
  });
});

describe('Redis presence store', skip ? { skip } : {}, () => {
  let admin: Redis;
  before(() => {
    admin = new Redis(server!.url, { maxRetriesPerRequest: 0 });
  });
  after(() => admin?.disconnect());

  it('keeps a heartbeat key per device with the lifetime as TTL, the device set and last seen under the account\u2019s hash tag', async () => {
    const prefix = `t:${randomUUID()}:`;
    const clock = new ManualClock(1_750_000_000_000);
    const store = redisStore(clock, prefix);
    try {
      const aci = randomUUID() as Aci;
      await store.set({ aci, deviceId: dev(3), connection: 'node1.7', state: 'away' }, 45_000);
      assert.equal(await admin.get(`${prefix}{${aci}}:hb:3`), 'a:node1.7');
      const ttl = await admin.pttl(`${prefix}{${aci}}:hb:3`);
      assert.ok(ttl > 44_000 && ttl <= 45_000, `heartbeat TTL ${ttl}`);
      assert.deepEqual(await admin.smembers(`${prefix}{${aci}}:devs`), ['3']);
      assert.ok((await admin.pttl(`${prefix}{${aci}}:devs`)) > 44_000);
      assert.equal(await admin.get(`${prefix}{${aci}}:seen`), String(clock.now()));
      const seenTtl = await admin.pttl(`${prefix}{${aci}}:seen`);
      assert.ok(seenTtl > 29 * 86_400_000, `last seen kept 30 days (${seenTtl})`);
      clock.advance(10);
      await store.remove({ aci, deviceId: dev(3), connection: 'node1.7' });
      assert.equal(await admin.exists(`${prefix}{${aci}}:hb:3`), 0);
      assert.equal(await admin.get(`${prefix}{${aci}}:seen`), String(clock.now()));
    } finally {
      await store.close();
    }
  });

  it('loads its scripts again after the server forgot them', async () => {
    const clock = new ManualClock(1_750_000_000_000);
    const store = redisStore(clock, `t:${randomUUID()}:`);
    try {
      const aci = randomUUID() as Aci;
      await store.set({ aci, deviceId: dev(1), connection: 'c', state: 'online' }, 60_000);
      await admin.script('FLUSH');
      assert.equal((await store.read([aci]))[0]!.state, 'online');
      await admin.script('FLUSH');
      await store.remove({ aci, deviceId: dev(1), connection: 'c' });
      assert.equal((await store.read([aci]))[0]!.state, 'offline');
    } finally {
      await store.close();
    }
  });

  it('says resync when its subscriber connection came back, and hears announcements again', async () => {
    const prefix = `t:${randomUUID()}:`;
    const clock = new ManualClock(1_750_000_000_000);
    const [watcher, writer] = [redisStore(clock, prefix), redisStore(clock, prefix)];
    const events: PresenceEvent[] = [];
    watcher.onEvent((e) => events.push(e));
    try {
      const aci = randomUUID() as Aci;
      await watcher.watch([aci]);
      await admin.call('CLIENT', 'KILL', 'TYPE', 'pubsub');
      await waitFor(() => events.some((e) => e.kind === 'resync'), 'resync');
      // ioredis subscribes again on reconnect; announcements flow again.
      await waitFor(async () => {
        await writer.revoke(aci);
        return events.some((e) => e.kind === 'revoked');
      }, 'an announcement after the reconnect');
    } finally {
      await Promise.all([watcher.close(), writer.close()]);
    }
  });

  it('fails calls at once while Redis is down instead of hanging', async () => {
    const own = await startRedisServer();
    const store = await openRedisPresenceStore({ url: own.url, prefix: `t:${randomUUID()}:`, commandTimeoutMs: 300 });
    try {
      const aci = randomUUID() as Aci;
      await store.set({ aci, deviceId: dev(1), connection: 'c', state: 'online' }, 60_000);
      await own.stop();
      const started = Date.now();
      await assert.rejects(store.read([aci]));
      await assert.rejects(store.set({ aci, deviceId: dev(1), connection: 'c', state: 'away' }, 60_000));
      assert.ok(Date.now() - started < 2000, 'failed fast');
    } finally {
      await store.close();
      await own.stop();
    }
  });

  it('refuses to open when Redis does not answer, naming host and port but never the password', async () => {
    const port = await new Promise<number>((resolve) => {
      const s = createServer();
      s.listen(0, '127.0.0.1', () => {
        const p = (s.address() as { port: number }).port;
        s.close(() => resolve(p));
      });
    });
    await assert.rejects(openRedisPresenceStore({ url: `redis://:hunter2-secret@127.0.0.1:${port}`, connectTimeoutMs: 1000 }), (e: unknown) => {
      assert.match((e as Error).message, new RegExp(`127\\.0\\.0\\.1:${port}`));
      assert.doesNotMatch((e as Error).message, /hunter2/);
      return true;
    });
  });
});

/** Polls `check` until it holds (events from Redis have nothing else to wait on), failing after 5 s. */
async function waitFor(check: () => boolean | Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}
