// SPDX-License-Identifier: AGPL-3.0-only
/**
 * The in-process presence adapter (the embedded default): entries in Maps, expiry judged by the
 * injected Clock. Memory is bounded: an entry exists per connected device (removed when its
 * connection ends, purged once its heartbeat lifetime is over), and last-seen times are kept
 * for at most `maxLastSeenAccounts` accounts, the least recently seen forgotten first (they then
 * read offline with an unknown last-seen time).
 *
 * Several instances may share one state (`shareWith`): they stand for relay nodes on one
 * backend, which is how the contract suite checks announcements between nodes.
 */
import type { Aci, DeviceId } from '@parley/protocol';
import type { Clock } from '../clock.js';
import {
  checkPresenceConnection,
  checkPresenceTtl,
  samePresence,
  type AccountPresence,
  type DeviceConnectionRef,
  type DevicePresence,
  type DevicePresenceState,
  type PresenceEvent,
  type PresenceStore,
} from '../ports/presence-store.js';

/** Default of {@link InProcessPresenceOptions.maxLastSeenAccounts}: about 100 MB at most. */
export const DEFAULT_PRESENCE_LAST_SEEN_MAX_ACCOUNTS = 1_000_000;

/** Options of {@link InProcessPresenceStore}. */
export interface InProcessPresenceOptions {
  readonly clock: Clock;
  /** Most accounts whose last-seen time is remembered. Default 1,000,000. */
  readonly maxLastSeenAccounts?: number;
  /** Another instance whose state this one shares (a second node on the same backend). */
  readonly shareWith?: InProcessPresenceStore;
}

interface Entry {
  connection: string;
  state: DevicePresenceState;
  heartbeatAt: number;
  expiresAt: number;
}

const ONLINE: AccountPresence = Object.freeze({ state: 'online', lastSeen: 0 });
const AWAY: AccountPresence = Object.freeze({ state: 'away', lastSeen: 0 });

/** What instances sharing a backend share. */
class SharedPresence {
  readonly devices = new Map<Aci, Map<DeviceId, Entry>>();
  /** Map order is recency order: the first key is the least recently seen account. */
  readonly lastSeen = new Map<Aci, number>();
  readonly members = new Set<InProcessPresenceStore>();
  private lastPurge = 0;

  constructor(
    readonly clock: Clock,
    private readonly maxLastSeen: number,
  ) {}

  /** The account's presence at `now`; drops entries whose lifetime is over. */
  account(aci: Aci, now: number): AccountPresence {
    const devices = this.devices.get(aci);
    let online = false;
    let away = false;
    if (devices) {
      for (const [id, e] of devices) {
        if (now >= e.expiresAt) {
          devices.delete(id);
          this.seen(aci, e.heartbeatAt);
        } else if (e.state === 'online') {
          online = true;
        } else {
          away = true;
        }
      }
      if (devices.size === 0) this.devices.delete(aci);
    }
    if (online) return ONLINE;
    if (away) return AWAY;
    return { state: 'offline', lastSeen: this.lastSeen.get(aci) ?? 0 };
  }

  seen(aci: Aci, at: number): void {
    const before = this.lastSeen.get(aci);
    if (before !== undefined && before >= at) return;
    this.lastSeen.delete(aci);
    this.lastSeen.set(aci, at);
    while (this.lastSeen.size > this.maxLastSeen) this.lastSeen.delete(this.lastSeen.keys().next().value as Aci);
  }

  /** Writes `entry` (or deletes the slot with undefined) and announces a change of the account's presence. */
  write(aci: Aci, deviceId: DeviceId, entry: Entry | undefined, now: number, seenAt?: number): void {
    const before = this.account(aci, now);
    let devices = this.devices.get(aci);
    if (entry) {
      if (!devices) this.devices.set(aci, (devices = new Map()));
      devices.set(deviceId, entry);
    } else if (devices) {
      devices.delete(deviceId);
      if (devices.size === 0) this.devices.delete(aci);
    }
    if (seenAt !== undefined) this.seen(aci, seenAt);
    if (!samePresence(before, this.account(aci, now))) this.announce({ kind: 'changed', aci });
  }

  announce(event: PresenceEvent & { aci: Aci }): void {
    for (const m of this.members) m.deliver(event);
  }

  /** Drops every expired entry, at most once per `everyMs` (memory stays bounded by live devices). */
  purge(now: number, everyMs: number): void {
    if (now - this.lastPurge < everyMs) return;
    this.lastPurge = now;
    for (const aci of [...this.devices.keys()]) this.account(aci, now);
  }
}

/** See the module comment. */
export class InProcessPresenceStore implements PresenceStore {
  readonly kind = 'in-process' as const;
  private readonly shared: SharedPresence;
  private readonly watched = new Set<Aci>();
  private readonly listeners = new Set<(e: PresenceEvent) => void>();
  private closed = false;

  constructor(options: InProcessPresenceOptions) {
    const max = options.maxLastSeenAccounts ?? DEFAULT_PRESENCE_LAST_SEEN_MAX_ACCOUNTS;
    if (!Number.isSafeInteger(max) || max < 1) throw new RangeError('maxLastSeenAccounts must be an integer >= 1');
    this.shared = options.shareWith ? options.shareWith.shared : new SharedPresence(options.clock, max);
    this.shared.members.add(this);
  }

  /** Accounts with a remembered last-seen time (memory use, for tests). */
  get lastSeenAccounts(): number {
    return this.shared.lastSeen.size;
  }

  /** Devices with an entry, expired ones not yet purged included (memory use, for tests). */
  get deviceEntries(): number {
    let n = 0;
    for (const d of this.shared.devices.values()) n += d.size;
    return n;
  }

  async set(device: DevicePresence, ttlMs: number): Promise<void> {
    this.open();
    checkPresenceConnection(device.connection);
    checkPresenceTtl(ttlMs);
    const now = this.shared.clock.now();
    this.shared.write(device.aci, device.deviceId, { connection: device.connection, state: device.state, heartbeatAt: now, expiresAt: now + ttlMs }, now);
  }

  async refresh(devices: readonly DevicePresence[], ttlMs: number): Promise<void> {
    this.open();
    checkPresenceTtl(ttlMs);
    for (const d of devices) checkPresenceConnection(d.connection);
    const now = this.shared.clock.now();
    for (const d of devices) {
      const entry = this.shared.devices.get(d.aci)?.get(d.deviceId);
      const live = entry !== undefined && now < entry.expiresAt;
      if (live && entry.connection !== d.connection) continue;
      if (live && entry.state === d.state) {
        entry.heartbeatAt = now;
        entry.expiresAt = now + ttlMs;
        continue;
      }
      this.shared.write(d.aci, d.deviceId, { connection: d.connection, state: d.state, heartbeatAt: now, expiresAt: now + ttlMs }, now);
    }
    this.shared.purge(now, ttlMs);
  }

  async remove(device: DeviceConnectionRef): Promise<void> {
    this.open();
    checkPresenceConnection(device.connection);
    const now = this.shared.clock.now();
    const entry = this.shared.devices.get(device.aci)?.get(device.deviceId);
    if (entry && now < entry.expiresAt && entry.connection !== device.connection) return;
    this.shared.write(device.aci, device.deviceId, undefined, now, now);
  }

  async read(acis: readonly Aci[]): Promise<AccountPresence[]> {
    this.open();
    const now = this.shared.clock.now();
    return acis.map((aci) => this.shared.account(aci, now));
  }

  async watch(acis: readonly Aci[]): Promise<void> {
    this.open();
    for (const aci of acis) this.watched.add(aci);
  }

  async unwatch(acis: readonly Aci[]): Promise<void> {
    for (const aci of acis) this.watched.delete(aci);
  }

  async revoke(aci: Aci): Promise<void> {
    this.open();
    this.shared.announce({ kind: 'revoked', aci });
  }

  onEvent(listener: (event: PresenceEvent) => void): () => void {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }

  async close(): Promise<void> {
    this.closed = true;
    this.watched.clear();
    this.shared.members.delete(this);
  }

  /** Called by the shared state for every announcement; passes on those of watched accounts. */
  deliver(event: PresenceEvent & { aci: Aci }): void {
    if (this.closed || !this.watched.has(event.aci)) return;
    // Asynchronously, as a network store would: a listener never runs inside the writer's call.
    queueMicrotask(() => {
      if (this.closed || !this.watched.has(event.aci)) return;
      for (const l of [...this.listeners]) l(event);
    });
  }

  private open(): void {
    if (this.closed) throw new Error('the presence store is closed');
  }
}
