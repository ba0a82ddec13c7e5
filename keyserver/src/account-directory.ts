// SPDX-License-Identifier: AGPL-3.0-only
/**
 * The relay's view of accounts: device authentication, the device set of an account (asked on
 * every send, so cached), presence token checks, and notifications when a device is added or
 * removed or an account's presence token changes.
 */
import { timingSafeEqual } from 'node:crypto';
import { AUTH_SECRET_BYTES, parseBasicAuth, ParleyError, type Aci, type DeviceCredentials, type DeviceId, type RegistrationId } from '@parley/protocol';
import type { Clock } from './clock.js';
import { silentLog, type KeyServerLog } from './log.js';
import type { KeyStore } from './ports/key-store.js';
import type { RateLimiter } from './rate-limit/rate-limiter.js';
import { hashSecret, PRESENCE_TOKEN_BYTES } from './secrets.js';

/** A device as the directory reports it. */
export interface DirectoryDevice {
  readonly deviceId: DeviceId;
  readonly registrationId: RegistrationId;
}

/** An authenticated device. */
export interface AuthenticatedDevice {
  readonly aci: Aci;
  readonly deviceId: DeviceId;
}

/** A device was added to or removed from an account. */
export interface DeviceChange {
  readonly kind: 'added' | 'removed';
  readonly aci: Aci;
  readonly deviceId: DeviceId;
}

/** An account's presence token changed: rotated, turned on, or turned off (presence off). */
export interface PresenceTokenChange {
  readonly aci: Aci;
}

/** Options of {@link AccountDirectory}. */
export interface AccountDirectoryOptions {
  readonly store: KeyStore;
  readonly clock: Clock;
  /** Counts failed authentications per client key; when it refuses, every attempt is refused. */
  readonly failedAuthLimiter: RateLimiter;
  /** Accounts whose device lists are cached. */
  readonly cacheMaxAccounts: number;
  /** Longest time a cached device list is trusted, milliseconds (0 disables the cache). */
  readonly cacheTtlMs: number;
  /** Default: silent. */
  readonly log?: KeyServerLog;
}

/** The one message of every refused credential (the same as parseBasicAuth's), so none is distinguishable. */
const UNAUTHORIZED_MESSAGE = 'missing or invalid credentials';

// Compared against when the device is unknown, so that path hashes and compares like a wrong secret.
const DUMMY_SECRET = new Uint8Array(AUTH_SECRET_BYTES);
const DUMMY_HASH = hashSecret(new Uint8Array(AUTH_SECRET_BYTES).fill(0xa5));

interface CacheEntry {
  readonly devices: ReadonlyArray<DirectoryDevice>;
  readonly at: number;
}

/** Authentication, device sets and device change notifications, backed by a KeyStore. */
export class AccountDirectory {
  private readonly store: KeyStore;
  private readonly clock: Clock;
  private readonly failedAuth: RateLimiter;
  private readonly log: KeyServerLog;
  private readonly cacheMax: number;
  private readonly cacheTtlMs: number;
  private readonly listeners = new Set<(e: DeviceChange) => void>();
  private readonly presenceListeners = new Set<(e: PresenceTokenChange) => void>();
  // Map order is recency order (a hit moves the entry to the end), so the first key is the LRU.
  private readonly cache = new Map<Aci, CacheEntry>();
  private readonly loading = new Map<Aci, Promise<ReadonlyArray<DirectoryDevice> | undefined>>();
  // Bumped on every change: a load that started before a change must not fill the cache.
  private generation = 0;

  constructor(options: AccountDirectoryOptions) {
    this.store = options.store;
    this.clock = options.clock;
    this.failedAuth = options.failedAuthLimiter;
    this.log = options.log ?? silentLog;
    this.cacheMax = options.cacheMaxAccounts;
    this.cacheTtlMs = options.cacheTtlMs;
  }

  /**
   * Authenticates an `Authorization: Basic` header.
   * @param clientKey what failed attempts are counted by, e.g. the client's IP address.
   * @throws ParleyError UNAUTHORIZED — one message for a missing or malformed header, an unknown
   * account or device and a wrong secret; RATE_LIMITED (with retryAfterMs) when `clientKey` has
   * failed too often, whatever the credentials.
   */
  async authenticate(authorizationHeader: string | undefined, clientKey: string): Promise<AuthenticatedDevice> {
    // Checked before the credentials: while limited, a right guess must not be told from a wrong one.
    const limit = await this.failedAuth.peek(clientKey);
    if (!limit.allowed) {
      throw new ParleyError('RATE_LIMITED', 'too many failed authentication attempts', { retryAfterMs: limit.retryAfterMs });
    }
    let credentials: DeviceCredentials | undefined;
    try {
      credentials = parseBasicAuth(authorizationHeader);
    } catch {
      credentials = undefined;
    }
    const device = credentials ? await this.store.getDevice(credentials.aci, credentials.deviceId) : undefined;
    const presented = hashSecret(credentials?.secret ?? DUMMY_SECRET);
    const expected = device?.secretHash.length === presented.length ? device.secretHash : DUMMY_HASH;
    const match = timingSafeEqual(presented, expected);
    if (!match || !device || !credentials) {
      await this.failedAuth.take(clientKey);
      throw new ParleyError('UNAUTHORIZED', UNAUTHORIZED_MESSAGE);
    }
    return { aci: credentials.aci, deviceId: credentials.deviceId };
  }

  /**
   * The devices of an account with their registration ids, in device id order; undefined when
   * there is no such account. Served from memory after the first call; invalidated by
   * {@link publishDeviceChange} and after the cache TTL.
   */
  async getDevices(aci: Aci): Promise<ReadonlyArray<DirectoryDevice> | undefined> {
    const hit = this.cache.get(aci);
    if (hit) {
      this.cache.delete(aci);
      if (this.clock.now() - hit.at < this.cacheTtlMs) {
        this.cache.set(aci, hit);
        return hit.devices;
      }
    }
    let pending = this.loading.get(aci);
    if (!pending) {
      pending = this.load(aci);
      this.loading.set(aci, pending);
      const settled = pending;
      const forget = () => {
        if (this.loading.get(aci) === settled) this.loading.delete(aci);
      };
      settled.then(forget, forget);
    }
    return pending;
  }

  /**
   * The sealed-sender access keys of the accounts that have one (unknown accounts and accounts
   * without a key are absent). Not cached: one store call per send, and a key set on another
   * node counts at once.
   */
  async getAccessKeys(acis: readonly Aci[]): Promise<Map<Aci, Uint8Array>> {
    return this.store.getAccessKeys(acis);
  }

  /** The account's 33-byte identity public key; undefined for an unknown account. */
  async getIdentityKey(aci: Aci): Promise<Uint8Array | undefined> {
    return (await this.store.getAccount(aci))?.identityKey;
  }

  /** Registers a listener for device changes; returns a function that unregisters it. */
  onDeviceChange(listener: (e: DeviceChange) => void): () => void {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }

  /**
   * Records a committed device change: drops the account's cached device list and tells every
   * listener. The key server calls it after each add or remove; a cluster bus subscriber would
   * call it for changes made on other nodes. A listener that throws is logged and skipped.
   */
  publishDeviceChange(change: DeviceChange): void {
    const e: DeviceChange = Object.freeze({ kind: change.kind, aci: change.aci, deviceId: change.deviceId });
    this.generation++;
    this.cache.delete(e.aci);
    this.loading.delete(e.aci);
    for (const listener of [...this.listeners]) {
      try {
        listener(e);
      } catch (err) {
        this.log.error({ err, aci: e.aci, deviceId: e.deviceId, kind: e.kind }, 'device change listener failed');
      }
    }
  }

  /**
   * Whether `token` is the account's current presence token. The presented token's SHA-256 is
   * compared with the stored one in constant time; an unknown account, presence turned off and
   * a token of the wrong length compare against a dummy hash, so all of them answer false after
   * the same work as a wrong token. Not cached: a rotation is effective at once.
   */
  async presenceTokenMatches(aci: Aci, token: Uint8Array): Promise<boolean> {
    const stored = await this.store.getPresenceToken(aci);
    const presented = hashSecret(token);
    const expected = stored?.length === presented.length ? stored : DUMMY_HASH;
    const match = timingSafeEqual(presented, expected);
    return match && stored !== undefined && token.length === PRESENCE_TOKEN_BYTES;
  }

  /** Registers a listener for presence token changes; returns a function that unregisters it. */
  onPresenceTokenChange(listener: (e: PresenceTokenChange) => void): () => void {
    this.presenceListeners.add(listener);
    return () => {
      this.presenceListeners.delete(listener);
    };
  }

  /**
   * Records a committed presence token change (the key server calls it after a rotation, or
   * when presence was turned on or off) and tells every listener: the relay ends subscriptions
   * made with the old token. A listener that throws is logged and skipped.
   */
  publishPresenceTokenChange(aci: Aci): void {
    const e: PresenceTokenChange = Object.freeze({ aci });
    for (const listener of [...this.presenceListeners]) {
      try {
        listener(e);
      } catch (err) {
        this.log.error({ err, aci: e.aci }, 'presence token change listener failed');
      }
    }
  }

  /** Accounts whose device lists are cached right now (for tests and metrics). */
  get cachedAccounts(): number {
    return this.cache.size;
  }

  private async load(aci: Aci): Promise<ReadonlyArray<DirectoryDevice> | undefined> {
    const generation = this.generation;
    const rows = await this.store.listDevices(aci);
    // An account always has a device (the store keeps its last one), so none means no account.
    if (rows.length === 0) return undefined;
    const devices = Object.freeze(rows.map((d) => Object.freeze({ deviceId: d.deviceId, registrationId: d.registrationId })));
    if (generation === this.generation && this.cacheTtlMs > 0) {
      this.cache.set(aci, { devices, at: this.clock.now() });
      while (this.cache.size > this.cacheMax) this.cache.delete(this.cache.keys().next().value as Aci);
    }
    return devices;
  }
}
