// SPDX-License-Identifier: AGPL-3.0-only
/**
 * The Redis presence adapter (`ioredis`): every relay node of a domain sees the same entries,
 * and a change made on one node reaches watchers on every other through pub/sub.
 *
 * Keys, all of one account under the hash tag `{ACI}`:
 * - `PREFIX{ACI}:hb:DEVICE` — the heartbeat of one device: `o:CONNECTION` (online) or
 *   `a:CONNECTION` (away), with a TTL of the heartbeat lifetime. Redis expires it on its own
 *   clock: the TTL is the Redis server's, not the nodes' (an injected Clock cannot move it).
 * - `PREFIX{ACI}:devs` — a set of the account's device ids that may have a heartbeat (ids whose
 *   key expired are dropped when the account is next read); its TTL follows the heartbeats.
 * - `PREFIX{ACI}:seen` — the account's last-seen time (ms, from the writing node's Clock), updated
 *   by every heartbeat and disconnect, kept `lastSeenTtlMs` (default 30 days).
 * - channel `PREFIX{ACI}` — `c` when a write changed the account's presence, `r` when its
 *   presence token changed.
 *
 * Each write is one Lua script that computes the account's presence before and after, writes,
 * and publishes `c` only when the two differ, atomically, so concurrent writes from any nodes
 * announce every change and nothing else. The scripts read the account's device keys by name,
 * which Redis Cluster allows only within one hash slot: hence the `{ACI}` hash tag. (The rate
 * limits, and so the relay, support one Redis server or a primary behind one address.)
 *
 * Subscriptions run on a second connection. Pub/sub is at-most-once: when that connection comes
 * back after a drop, ioredis subscribes again and the store emits `resync`, so watchers read
 * every watched account again rather than trust announcements that may have been lost.
 */
import { createHash } from 'node:crypto';
import { Redis } from 'ioredis';
import { RedisConnectError, redisUrlForLog } from '@parley/keyserver';
import type { Aci } from '@parley/protocol';
import { systemClock, type Clock } from '../clock.js';
import {
  checkPresenceConnection,
  checkPresenceTtl,
  type AccountPresence,
  type DeviceConnectionRef,
  type DevicePresence,
  type PresenceEvent,
  type PresenceStore,
} from '../ports/presence-store.js';

/** The account's presence from inside a script: 'o', 'a' or 'f:LASTSEEN'. KEYS[1] devs, KEYS[2] seen, ARGV[1] the heartbeat key prefix. */
const ACCOUNT_FUNCTION = `
local function account()
  local online = false
  local away = false
  for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do
    local v = redis.call('GET', ARGV[1] .. id)
    if not v then
      redis.call('SREM', KEYS[1], id)
    elseif string.sub(v, 1, 1) == 'o' then
      online = true
    else
      away = true
    end
  end
  if online then return 'o' end
  if away then return 'a' end
  return 'f:' .. (redis.call('GET', KEYS[2]) or '0')
end
local function seen(now, ttl)
  local before = tonumber(redis.call('GET', KEYS[2]) or '0')
  if now > before then
    redis.call('SET', KEYS[2], string.format('%.0f', now), 'PX', ttl)
  else
    redis.call('PEXPIRE', KEYS[2], ttl)
  end
end
local function keep(key, ttl)
  if redis.call('PTTL', key) < tonumber(ttl) then redis.call('PEXPIRE', key, ttl) end
end
`;

/**
 * Set or refresh one device. KEYS: devs, seen, heartbeat. ARGV: heartbeat prefix, device id,
 * value (`o:CONN` / `a:CONN`), ttl ms, now ms, last-seen ttl ms, channel, mode (`s` set, `r`
 * refresh). Returns 1 when it published a change.
 */
export const PRESENCE_SET_SCRIPT = `${ACCOUNT_FUNCTION}
if ARGV[8] == 'r' then
  local current = redis.call('GET', KEYS[3])
  if current and string.sub(current, 3) == string.sub(ARGV[3], 3) and string.sub(current, 1, 1) == string.sub(ARGV[3], 1, 1) then
    redis.call('PEXPIRE', KEYS[3], ARGV[4])
    keep(KEYS[1], ARGV[4])
    seen(tonumber(ARGV[5]), ARGV[6])
    return 0
  end
  if current and string.sub(current, 3) ~= string.sub(ARGV[3], 3) then return 0 end
end
local before = account()
redis.call('SET', KEYS[3], ARGV[3], 'PX', ARGV[4])
redis.call('SADD', KEYS[1], ARGV[2])
keep(KEYS[1], ARGV[4])
seen(tonumber(ARGV[5]), ARGV[6])
if account() ~= before then
  redis.call('PUBLISH', ARGV[7], 'c')
  return 1
end
return 0
`;

/**
 * Remove one device's entry unless another connection holds it. KEYS: devs, seen, heartbeat.
 * ARGV: heartbeat prefix, device id, connection, now ms, last-seen ttl ms, channel.
 */
export const PRESENCE_REMOVE_SCRIPT = `${ACCOUNT_FUNCTION}
local current = redis.call('GET', KEYS[3])
if current and string.sub(current, 3) ~= ARGV[3] then return 0 end
local before = account()
redis.call('DEL', KEYS[3])
redis.call('SREM', KEYS[1], ARGV[2])
seen(tonumber(ARGV[4]), ARGV[5])
if account() ~= before then
  redis.call('PUBLISH', ARGV[6], 'c')
  return 1
end
return 0
`;

/** Read one account. KEYS: devs, seen. ARGV: heartbeat prefix. Returns 'o', 'a' or 'f:LASTSEEN'. */
export const PRESENCE_READ_SCRIPT = `${ACCOUNT_FUNCTION}
return account()
`;

const sha1 = (text: string) => createHash('sha1').update(text).digest('hex');
const SCRIPTS = {
  set: { text: PRESENCE_SET_SCRIPT, sha: sha1(PRESENCE_SET_SCRIPT) },
  remove: { text: PRESENCE_REMOVE_SCRIPT, sha: sha1(PRESENCE_REMOVE_SCRIPT) },
  read: { text: PRESENCE_READ_SCRIPT, sha: sha1(PRESENCE_READ_SCRIPT) },
} as const;

/** Default key prefix of {@link RedisPresenceOptions.prefix}. */
export const DEFAULT_REDIS_PRESENCE_PREFIX = 'parley:presence:';

/** Default of {@link RedisPresenceOptions.lastSeenTtlMs}: 30 days. */
export const DEFAULT_PRESENCE_LAST_SEEN_TTL_MS = 30 * 24 * 3600 * 1000;

/** Options of {@link createRedisPresenceStore}. */
export interface RedisPresenceOptions {
  /** The command connection; the store owns it and `close()` quits it. */
  readonly redis: Redis;
  /**
   * The connection for subscriptions (pub/sub needs its own); owned likewise. Default:
   * `redis.duplicate()`.
   */
  readonly subscriber?: Redis;
  /** Prepended to every key and channel, e.g. `parley:chat.example.org:presence:`. Default `parley:presence:`. */
  readonly prefix?: string;
  /** Time of last-seen values. Default the system clock. Heartbeat expiry runs on the Redis server's clock whatever this is. */
  readonly clock?: Clock;
  /** How long an account's last-seen time is kept after its last heartbeat, ms. Default 30 days. */
  readonly lastSeenTtlMs?: number;
}

/** Heartbeats of this many devices go to Redis in one pipeline. */
const REFRESH_BATCH = 1000;

/** Builds the Redis presence store on the given connections. */
export function createRedisPresenceStore(options: RedisPresenceOptions): PresenceStore {
  const { redis } = options;
  const sub = options.subscriber ?? redis.duplicate();
  const prefix = options.prefix ?? DEFAULT_REDIS_PRESENCE_PREFIX;
  const clock = options.clock ?? systemClock;
  const seenTtl = String(options.lastSeenTtlMs ?? DEFAULT_PRESENCE_LAST_SEEN_TTL_MS);
  checkPresenceTtl(Number(seenTtl));
  const listeners = new Set<(e: PresenceEvent) => void>();
  const watched = new Set<Aci>();
  let closed: Promise<void> | undefined;
  let readyOnce = false;

  const channel = (aci: Aci) => `${prefix}{${aci}}`;
  const keys = (aci: Aci) => ({ devs: `${prefix}{${aci}}:devs`, seen: `${prefix}{${aci}}:seen`, hb: `${prefix}{${aci}}:hb:` });
  const emit = (e: PresenceEvent) => {
    for (const l of [...listeners]) l(e);
  };

  sub.on('message', (ch: string, message: string) => {
    if (!ch.startsWith(prefix)) return;
    const aci = ch.slice(prefix.length + 1, -1) as Aci;
    if (!watched.has(aci)) return;
    if (message === 'c') emit({ kind: 'changed', aci });
    else if (message === 'r') emit({ kind: 'revoked', aci });
  });
  // Every 'ready' after the first is a reconnect: ioredis has subscribed again, but whatever was
  // published meanwhile is gone.
  sub.on('ready', () => {
    if (readyOnce && closed === undefined) emit({ kind: 'resync' });
    readyOnce = true;
  });
  if (sub.status === 'ready') readyOnce = true;

  async function evalScript(script: (typeof SCRIPTS)[keyof typeof SCRIPTS], keyList: readonly string[], args: readonly string[]): Promise<unknown> {
    try {
      return await redis.evalsha(script.sha, keyList.length, ...keyList, ...args);
    } catch (err) {
      // A server that restarted or flushed its script cache: EVAL loads the script again.
      if (!(err instanceof Error) || !err.message.startsWith('NOSCRIPT')) throw err;
      return redis.eval(script.text, keyList.length, ...keyList, ...args);
    }
  }

  function open(): void {
    if (closed) throw new Error('the presence store is closed');
  }

  async function write(device: DevicePresence, ttlMs: number, mode: 's' | 'r'): Promise<void> {
    const k = keys(device.aci);
    const value = `${device.state === 'online' ? 'o' : 'a'}:${device.connection}`;
    await evalScript(SCRIPTS.set, [k.devs, k.seen, `${k.hb}${device.deviceId}`], [
      k.hb,
      String(device.deviceId),
      value,
      String(ttlMs),
      String(Math.floor(clock.now())),
      seenTtl,
      channel(device.aci),
      mode,
    ]);
  }

  function parse(reply: unknown): AccountPresence {
    if (reply === 'o') return { state: 'online', lastSeen: 0 };
    if (reply === 'a') return { state: 'away', lastSeen: 0 };
    if (typeof reply === 'string' && reply.startsWith('f:')) {
      const lastSeen = Number(reply.slice(2));
      return { state: 'offline', lastSeen: Number.isSafeInteger(lastSeen) && lastSeen > 0 ? lastSeen : 0 };
    }
    throw new Error('the presence script answered something unexpected');
  }

  return {
    kind: 'redis',
    async set(device, ttlMs) {
      open();
      checkPresenceConnection(device.connection);
      checkPresenceTtl(ttlMs);
      await write(device, ttlMs, 's');
    },
    async refresh(devices, ttlMs) {
      open();
      checkPresenceTtl(ttlMs);
      for (const d of devices) checkPresenceConnection(d.connection);
      for (let i = 0; i < devices.length; i += REFRESH_BATCH) {
        // Sent back to back without waiting in between: ioredis pipelines them on the socket.
        await Promise.all(devices.slice(i, i + REFRESH_BATCH).map((d) => write(d, ttlMs, 'r')));
      }
    },
    async remove(device: DeviceConnectionRef) {
      open();
      checkPresenceConnection(device.connection);
      const k = keys(device.aci);
      await evalScript(SCRIPTS.remove, [k.devs, k.seen, `${k.hb}${device.deviceId}`], [
        k.hb,
        String(device.deviceId),
        device.connection,
        String(Math.floor(clock.now())),
        seenTtl,
        channel(device.aci),
      ]);
    },
    async read(acis) {
      open();
      const replies = await Promise.all(
        acis.map((aci) => {
          const k = keys(aci);
          return evalScript(SCRIPTS.read, [k.devs, k.seen], [k.hb]);
        }),
      );
      return replies.map(parse);
    },
    async watch(acis) {
      open();
      const fresh = acis.filter((aci) => !watched.has(aci));
      if (fresh.length === 0) return;
      await sub.subscribe(...fresh.map(channel));
      for (const aci of fresh) watched.add(aci);
    },
    async unwatch(acis) {
      const gone = acis.filter((aci) => watched.delete(aci));
      if (gone.length === 0 || closed) return;
      await sub.unsubscribe(...gone.map(channel));
    },
    async revoke(aci) {
      open();
      await redis.publish(channel(aci), 'r');
    },
    onEvent(listener) {
      listeners.add(listener);
      return () => {
        listeners.delete(listener);
      };
    },
    close: () =>
      (closed ??= (async () => {
        watched.clear();
        // Quitting a connection that is already down has nothing left to release.
        await Promise.all([redis.quit().catch(() => redis.disconnect()), sub.quit().catch(() => sub.disconnect())]);
      })()),
  };
}

/** Options of {@link openRedisPresenceStore}. */
export interface OpenRedisPresenceOptions extends Omit<RedisPresenceOptions, 'redis' | 'subscriber'> {
  /** `redis://[:password@]host:port[/db]` or `rediss://…` (TLS). */
  readonly url: string;
  /** How long to wait for the first connection, ms. Default 5,000. */
  readonly connectTimeoutMs?: number;
  /** Longest wait for one answer, ms; past it the call fails (the relay logs it and goes on). Default 1,000. */
  readonly commandTimeoutMs?: number;
}

/**
 * Connects (a command and a subscriber connection) and builds the store. Commands are not
 * queued while a connection is down: they fail at once; ioredis reconnects by itself.
 * @throws RedisConnectError naming host and port (never a password) when Redis does not answer in time.
 */
export async function openRedisPresenceStore(options: OpenRedisPresenceOptions): Promise<PresenceStore> {
  const connectTimeout = options.connectTimeoutMs ?? 5000;
  const make = () => {
    const r = new Redis(options.url, {
      lazyConnect: true,
      enableOfflineQueue: false,
      commandTimeout: options.commandTimeoutMs ?? 1000,
      connectTimeout,
      maxRetriesPerRequest: 0,
      retryStrategy: (attempt) => Math.min(100 * attempt, 2000),
    });
    // Failures surface where a command fails; without a listener ioredis prints every one.
    r.on('error', () => undefined);
    return r;
  };
  const redis = make();
  const subscriber = make();
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      Promise.all([redis.connect(), subscriber.connect()]),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error('timed out')), connectTimeout);
      }),
    ]);
  } catch (err) {
    redis.disconnect();
    subscriber.disconnect();
    const reason = err instanceof Error && /timed out/.test(err.message) ? 'timed out' : 'refused or failed';
    throw new RedisConnectError(`cannot reach Redis for presence at ${redisUrlForLog(options.url)} (${reason})`);
  } finally {
    clearTimeout(timer);
  }
  const { url: _u, connectTimeoutMs: _c, commandTimeoutMs: _t, ...rest } = options;
  return createRedisPresenceStore({ ...rest, redis, subscriber });
}
