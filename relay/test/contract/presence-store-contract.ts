// SPDX-License-Identifier: AGPL-3.0-only
/**
 * The contract every {@link PresenceStore} adapter passes (CONVENTIONS 1): in process always, Redis
 * against a real redis-server. Each test gets two instances on one backend (two relay nodes) and
 * a clock; `passTime` lets heartbeat lifetimes run out — in process by moving the clock, on Redis
 * by moving the clock and waiting as long in real time, because Redis expires keys on its own
 * clock (there is no event to wait for: an expired key announces nothing). Lifetimes in these
 * tests are short for that reason. Accounts are random, so runs on one server do not mix.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe, it } from 'node:test';
import type { Aci, DeviceId } from '@parley/protocol';
import type { AccountPresence, DevicePresence, PresenceEvent, PresenceStore } from '../../src/ports/presence-store.js';
import { ManualClock } from './manual-clock.js';

/** Two instances on one backend, and how time passes for them. */
export interface PresencePair {
  readonly a: PresenceStore;
  readonly b: PresenceStore;
  /** Lets `ms` pass for expiry and for the clock. */
  passTime(ms: number): Promise<void>;
}

/** Builds a fresh pair reading time from `clock`. */
export type PresenceStoreFactory = (clock: ManualClock) => Promise<PresencePair>;

/** Options of {@link describePresenceStoreContract}. */
export interface PresenceContractOptions {
  /** Skips the suite, printing this reason (e.g. no redis-server here). */
  readonly skip?: string;
  /** Heartbeat lifetime the expiry tests use, ms. Default 1,000. */
  readonly ttlMs?: number;
}

const T0 = 1_750_000_000_000;
/** The longest an announcement may take (the relay's promise to subscribers). */
const ANNOUNCE_MS = 2000;

const account = () => randomUUID() as Aci;
const dev = (n: number) => n as DeviceId;
const online = (aci: Aci, deviceId = 1, connection = `c${deviceId}`): DevicePresence => ({ aci, deviceId: dev(deviceId), connection, state: 'online' });
const away = (aci: Aci, deviceId = 1, connection = `c${deviceId}`): DevicePresence => ({ aci, deviceId: dev(deviceId), connection, state: 'away' });
const ONLINE: AccountPresence = { state: 'online', lastSeen: 0 };
const AWAY: AccountPresence = { state: 'away', lastSeen: 0 };
const offline = (lastSeen: number): AccountPresence => ({ state: 'offline', lastSeen });
const plain = (p: AccountPresence) => ({ state: p.state, lastSeen: p.lastSeen });

/** Records a store's events; waits for one with a deadline. */
class Recorder {
  readonly events: PresenceEvent[] = [];
  private wake: (() => void) | undefined;
  constructor(store: PresenceStore) {
    store.onEvent((e) => {
      this.events.push(e);
      this.wake?.();
    });
  }
  /** Waits until an event like `e` arrived after index `from`; returns its index. */
  async until(e: PresenceEvent, from = 0, timeoutMs = ANNOUNCE_MS): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const i = this.events.findIndex((x, n) => n >= from && JSON.stringify(x) === JSON.stringify(e));
      if (i >= 0) return i;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no ${JSON.stringify(e)} within ${timeoutMs} ms (got ${JSON.stringify(this.events.slice(from))})`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
    }
  }
  /** The events about `aci` after index `from`. */
  about(aci: Aci, from = 0): PresenceEvent[] {
    return this.events.slice(from).filter((e) => e.kind !== 'resync' && e.aci === aci);
  }
}

/** Registers the contract tests for one adapter under `describe(name)`. */
export function describePresenceStoreContract(name: string, make: PresenceStoreFactory, options: PresenceContractOptions = {}): void {
  const ttl = options.ttlMs ?? 1000;
  const LONG = 60_000;

  const withPair = (body: (p: PresencePair & { clock: ManualClock }) => Promise<void>) => async () => {
    const clock = new ManualClock(T0);
    const pair = await make(clock);
    try {
      await body({ ...pair, clock });
    } finally {
      await Promise.all([pair.a.close(), pair.b.close()]);
    }
  };

  /**
   * A write on a second watched account after the ones under test: announcements reach an
   * instance in the order they were made, so once the marker's arrives, any announcement the
   * writes before it made has arrived too.
   */
  async function barrier(p: PresencePair, rec: Recorder): Promise<void> {
    const marker = account();
    await p.b.watch([marker]);
    const from = rec.events.length;
    await p.a.revoke(marker);
    await rec.until({ kind: 'revoked', aci: marker }, from);
  }

  describe(`PresenceStore contract: ${name}`, options.skip ? { skip: options.skip } : {}, () => {
    it('reads an account nobody has seen as offline with an unknown last-seen time', withPair(async ({ a, b }) => {
      const [x, y] = [account(), account()];
      assert.deepEqual((await a.read([x, y])).map(plain), [offline(0), offline(0)]);
      assert.deepEqual(await b.read([]), []);
    }));

    it('online when any device is online, away when the connected ones are all away, on every instance', withPair(async ({ a, b }) => {
      const x = account();
      await a.set(away(x, 1), LONG);
      assert.deepEqual((await b.read([x])).map(plain), [AWAY]);
      await b.set(online(x, 2), LONG);
      assert.deepEqual((await a.read([x])).map(plain), [ONLINE], 'online wins over away');
      await b.set(away(x, 2), LONG);
      assert.deepEqual((await a.read([x])).map(plain), [AWAY]);
      await a.set(online(x, 1), LONG);
      assert.deepEqual((await b.read([x])).map(plain), [ONLINE]);
    }));

    it('a clean disconnect turns the account offline at once, with now as its last-seen time', withPair(async ({ a, b, clock }) => {
      const x = account();
      await a.set(online(x, 1), LONG);
      await a.set(online(x, 2), LONG);
      clock.advance(5000);
      await a.remove({ aci: x, deviceId: dev(1), connection: 'c1' });
      assert.deepEqual((await b.read([x])).map(plain), [ONLINE], 'device 2 is still connected');
      clock.advance(5000);
      await b.remove({ aci: x, deviceId: dev(2), connection: 'c2' });
      assert.deepEqual((await a.read([x])).map(plain), [offline(T0 + 10_000)]);
      clock.advance(1000);
      assert.deepEqual((await a.read([x])).map(plain), [offline(T0 + 10_000)], 'last seen stays put while offline');
    }));

    it('the end of a replaced connection leaves the connection that replaced it alone', withPair(async ({ a, b, clock }) => {
      const x = account();
      await a.set(online(x, 1, 'old'), LONG);
      await b.set(away(x, 1, 'new'), LONG);
      clock.advance(1000);
      await a.remove({ aci: x, deviceId: dev(1), connection: 'old' });
      assert.deepEqual((await a.read([x])).map(plain), [AWAY], 'the new connection still counts');
      await a.refresh([online(x, 1, 'old')], LONG);
      assert.deepEqual((await a.read([x])).map(plain), [AWAY], 'a heartbeat of the old connection changes nothing');
      await b.remove({ aci: x, deviceId: dev(1), connection: 'new' });
      assert.deepEqual((await a.read([x])).map(plain), [offline(T0 + 1000)]);
    }));

    it('an entry whose heartbeats stop reads offline once its lifetime is over, last seen at its last heartbeat', withPair(async ({ a, b, clock, passTime }) => {
      const x = account();
      await a.set(online(x), ttl);
      await passTime(ttl * 0.9);
      const lastHeartbeat = clock.now();
      await a.refresh([online(x)], ttl);
      // Past the first lifetime, well within the second (real time only ever runs late here).
      await passTime(ttl * 0.4);
      assert.deepEqual((await b.read([x])).map(plain), [ONLINE], 'the refresh extended the lifetime');
      await passTime(ttl);
      assert.deepEqual((await b.read([x])).map(plain), [offline(lastHeartbeat)]);
    }));

    it('a heartbeat for an entry that expired sets it again and announces it', withPair(async ({ a, b, passTime }) => {
      const x = account();
      const rec = new Recorder(b);
      await b.watch([x]);
      await a.set(online(x), ttl);
      await rec.until({ kind: 'changed', aci: x });
      await passTime(ttl + 50);
      assert.equal((await b.read([x]))[0]!.state, 'offline');
      const from = rec.events.length;
      await a.refresh([online(x)], LONG);
      await rec.until({ kind: 'changed', aci: x }, from);
      assert.deepEqual((await b.read([x])).map(plain), [ONLINE]);
    }));

    it('announces a change to every instance watching the account, within 2 s', withPair(async ({ a, b }) => {
      const x = account();
      const [ra, rb] = [new Recorder(a), new Recorder(b)];
      await Promise.all([a.watch([x]), b.watch([x])]);
      const started = Date.now();
      await a.set(online(x), LONG);
      await Promise.all([ra.until({ kind: 'changed', aci: x }), rb.until({ kind: 'changed', aci: x })]);
      assert.ok(Date.now() - started < ANNOUNCE_MS);
      const from = rb.events.length;
      await a.remove({ aci: x, deviceId: dev(1), connection: 'c1' });
      await rb.until({ kind: 'changed', aci: x }, from);
    }));

    it('announces nothing for heartbeats or writes that leave the account\u2019s presence as it was', withPair(async (p) => {
      const { a, b } = p;
      const x = account();
      const rec = new Recorder(b);
      await b.watch([x]);
      await a.set(online(x, 1), LONG);
      await rec.until({ kind: 'changed', aci: x });
      const from = rec.events.length;
      await a.refresh([online(x, 1)], LONG);
      await a.set(online(x, 1, 'other'), LONG);
      await a.set(away(x, 2), LONG);
      await a.remove({ aci: x, deviceId: dev(2), connection: 'c2' });
      await barrier(p, rec);
      assert.deepEqual(rec.about(x, from), [], 'the account stayed online throughout');
    }));

    it('announces only watched accounts, and nothing after unwatch', withPair(async (p) => {
      const { a, b } = p;
      const [x, y] = [account(), account()];
      const rec = new Recorder(b);
      await b.watch([x, y]);
      await b.unwatch([y]);
      await a.set(online(x), LONG);
      await a.set(online(y), LONG);
      await a.revoke(y);
      await barrier(p, rec);
      assert.deepEqual(rec.about(x), [{ kind: 'changed', aci: x }]);
      assert.deepEqual(rec.about(y), [], 'y is not watched any more');
      await b.unwatch([x]);
      await b.unwatch([x]);
      const from = rec.events.length;
      await a.remove({ aci: x, deviceId: dev(1), connection: 'c1' });
      await barrier(p, rec);
      assert.deepEqual(rec.about(x, from), []);
    }));

    it('revocations reach every instance watching the account', withPair(async ({ a, b }) => {
      const x = account();
      const [ra, rb] = [new Recorder(a), new Recorder(b)];
      await Promise.all([a.watch([x]), b.watch([x, x])]);
      await b.revoke(x);
      await Promise.all([ra.until({ kind: 'revoked', aci: x }), rb.until({ kind: 'revoked', aci: x })]);
      assert.deepEqual(rb.about(x), [{ kind: 'revoked', aci: x }], 'one event, however often watched');
    }));

    it('reads several accounts in the order asked', withPair(async ({ a, b, clock }) => {
      const [x, y, z] = [account(), account(), account()];
      await a.set(online(x), LONG);
      await a.set(away(y), LONG);
      await a.set(online(z), LONG);
      await a.remove({ aci: z, deviceId: dev(1), connection: 'c1' });
      assert.deepEqual((await b.read([z, x, y, x])).map(plain), [offline(clock.now()), ONLINE, AWAY, ONLINE]);
    }));

    it('refuses malformed connection names and lifetimes before writing anything', withPair(async ({ a }) => {
      const x = account();
      for (const connection of ['', 'has space', 'x'.repeat(65), 'slash/']) {
        await assert.rejects(a.set({ ...online(x), connection }, LONG), RangeError, JSON.stringify(connection));
        await assert.rejects(a.refresh([{ ...online(x), connection }], LONG), RangeError);
        await assert.rejects(a.remove({ aci: x, deviceId: dev(1), connection }), RangeError);
      }
      for (const bad of [0, -1, 1.5, Number.NaN]) {
        await assert.rejects(a.set(online(x), bad), RangeError, `ttl ${bad}`);
        await assert.rejects(a.refresh([online(x)], bad), RangeError);
      }
      assert.deepEqual((await a.read([x])).map(plain), [offline(0)], 'nothing was written');
    }));
  });
}
