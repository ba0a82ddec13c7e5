// SPDX-License-Identifier: AGPL-3.0-only
/**
 * The presence port (DESIGN §8, §12; CONVENTIONS 1): which devices are connected and in what
 * state, per account, shared by every relay node, with change notifications across nodes. The
 * embedded default keeps it in process; a cluster keeps it in Redis. Both pass
 * `describePresenceStoreContract` (relay/test/contract).
 *
 * Devices keep their presence alive with heartbeats: each write gives the device's entry a
 * lifetime (`ttlMs`), refreshed on the relay's keepalive cadence. An entry whose lifetime ran
 * out counts as gone — its node died or lost the store — and its account's last-seen time is the
 * entry's last heartbeat. Expiry is judged by the adapter's clock: the injected Clock in process,
 * the Redis server's own clock for Redis key TTLs.
 *
 * Account presence: `online` when any device is online, else `away` when any connected device
 * said it is away, else `offline` with the last time a device was seen connected.
 *
 * Writes announce a change of an account's presence to every instance watching that account;
 * an entry that expires announces nothing (nobody writes), so a watcher re-reads the accounts it
 * believes online or away on its own cadence. Announcements are at-most-once: after a `resync`
 * event a watcher re-reads everything it watches.
 */
import type { Aci, DeviceId } from '@parley/protocol';

/** A connected device's own state. */
export type DevicePresenceState = 'online' | 'away';

/** An account's state as its subscribers see it. */
export type AccountPresenceState = 'online' | 'away' | 'offline';

/** One connection's presence entry. */
export interface DevicePresence {
  readonly aci: Aci;
  readonly deviceId: DeviceId;
  /**
   * Names this connection of the device on every node (a reconnect gets a new one), so that the
   * end of an old connection never removes the entry of the connection that replaced it.
   * At most 64 characters of `[A-Za-z0-9._-]`.
   */
  readonly connection: string;
  readonly state: DevicePresenceState;
}

/** Which connection's entry {@link PresenceStore.remove} removes. */
export type DeviceConnectionRef = Omit<DevicePresence, 'state'>;

/** An account's presence. */
export interface AccountPresence {
  readonly state: AccountPresenceState;
  /**
   * While offline: when a device of the account was last seen connected, milliseconds since the
   * epoch; 0 when unknown (never seen, or forgotten). Always 0 while online or away.
   */
  readonly lastSeen: number;
}

/** What a store tells the instances that watch an account. */
export type PresenceEvent =
  /** The account's presence changed through a write (on any node): read it again. */
  | { readonly kind: 'changed'; readonly aci: Aci }
  /** The account's presence token changed: every subscription to it must end (on every node). */
  | { readonly kind: 'revoked'; readonly aci: Aci }
  /** Announcements may have been lost (a reconnect to Redis): read every watched account again. */
  | { readonly kind: 'resync' };

/** See the module comment. */
export interface PresenceStore {
  /** `in-process` (one relay process) or `redis` (shared by every node). */
  readonly kind: 'in-process' | 'redis';
  /**
   * Creates or replaces the device's entry (whatever connection held it) with a fresh heartbeat
   * of `ttlMs`, and announces the account's change, if any.
   */
  set(device: DevicePresence, ttlMs: number): Promise<void>;
  /**
   * Heartbeats: extends each device's entry by `ttlMs` when it still belongs to the given
   * connection. An entry that is gone (expired) is set again and announced; an entry that
   * another connection holds now is left alone.
   */
  refresh(devices: readonly DevicePresence[], ttlMs: number): Promise<void>;
  /**
   * The connection ended: removes the device's entry unless another connection holds it, records
   * now as the account's last-seen time, and announces the change, if any.
   */
  remove(device: DeviceConnectionRef): Promise<void>;
  /** The presence of each account, in the order asked. */
  read(acis: readonly Aci[]): Promise<AccountPresence[]>;
  /** Starts announcing changes and revocations of these accounts to this instance; resolves once they will be heard. */
  watch(acis: readonly Aci[]): Promise<void>;
  /** Stops announcing them to this instance. */
  unwatch(acis: readonly Aci[]): Promise<void>;
  /** Tells every instance watching `aci` that subscriptions to it must end. */
  revoke(aci: Aci): Promise<void>;
  /** Registers the listener for this instance's events; returns a function that unregisters it. */
  onEvent(listener: (event: PresenceEvent) => void): () => void;
  /** Releases the store (connections); no call may follow. */
  close(): Promise<void>;
}

/** The presence of an account nobody has seen (or whose last sighting was forgotten). */
export const UNKNOWN_OFFLINE: AccountPresence = Object.freeze({ state: 'offline', lastSeen: 0 });

const CONNECTION = /^[A-Za-z0-9._-]{1,64}$/;

/** Checks a connection name. @throws RangeError. */
export function checkPresenceConnection(connection: string): void {
  if (!CONNECTION.test(connection)) throw new RangeError('a presence connection name is 1..64 characters of [A-Za-z0-9._-]');
}

/** Checks a heartbeat lifetime. @throws RangeError. */
export function checkPresenceTtl(ttlMs: number): void {
  if (!Number.isSafeInteger(ttlMs) || ttlMs < 1) throw new RangeError('ttlMs must be a positive integer');
}

/** True when two presences would show the same to a subscriber. */
export function samePresence(a: AccountPresence | undefined, b: AccountPresence | undefined): boolean {
  return a !== undefined && b !== undefined && a.state === b.state && a.lastSeen === b.lastSeen;
}
