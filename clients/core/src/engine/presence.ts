// SPDX-License-Identifier: AGPL-3.0-only
/**
 * Presence, client side (DESIGN §8). The relay knows which devices are connected; it tells an
 * account's presence (online / away / offline with last seen) only to holders of that account's
 * presence token. The token is 32 random bytes the account hands to its contacts inside the
 * encryption (`Content.presence_token` on its messages, `SettingsSync` to its own devices) and
 * registers on the relay (`PUT /v1/accounts/me/presence`) while presence is on; turning presence
 * off withdraws it (`DELETE`), and rotating it cuts off everyone who has not received a message
 * since.
 *
 * Watching is per connection: `PresenceSubscribe` names every contact with its token (and
 * replaces the previous set); the relay answers which it refused (a wrong token, an unknown
 * account and presence off look the same) and streams `PresenceUpdate`s for the others. A device
 * is ONLINE while connected unless it told the relay AWAY (`PresenceSet`), which this device
 * remembers and repeats on every connection.
 */
import { aciFromBytes, aciToBytes, PresenceState, toBase64Url, type Aci, type PresenceUpdate } from '@parley/protocol';
import type { RelayApi } from '../transport/relay-api.js';
import type { RelayConnection } from '../transport/relay-connection.js';
import type { PresenceView } from './client-api.js';
import { readPrivacy, type SettingsPort } from './privacy-settings.js';

/** What presence needs of the store. */
export interface PresencePorts extends SettingsPort {
  /** Stores the presence token contact `aci` handed out; true when it is new or changed (ignored for an unknown contact). */
  savePresenceToken(aci: string, token: Uint8Array): boolean;
  /** Every contact (not this account) with its address and, when it handed one out, its token. */
  presenceContacts(): Array<{ aci: string; address: string; token?: Uint8Array }>;
}

/** Most contacts one subscription names (the relay's default cap). */
export const PRESENCE_MAX_TARGETS = 1_000;

/** How long `snapshot()` waits for the relay's first updates, ms. */
export const PRESENCE_SNAPSHOT_WAIT_MS = 2_000;

/** This device's own state as it tells the relay. */
export type OwnPresence = 'online' | 'away';

const OWN_STATE_KEY = 'presence.ownState';
/** What this device last told the relay about the token: `put:<token>` or `deleted`. */
const RELAY_STATE_KEY = 'presence.relayState';

/** What a presence service needs. */
export interface PresenceDeps {
  readonly store: PresencePorts;
  readonly api: RelayApi;
  readonly connection: () => RelayConnection | undefined;
  readonly emit: (p: PresenceView) => void;
}

/** See the module comment. */
export class PresenceService {
  private readonly deps: PresenceDeps;
  /** The latest state of each watched contact, by ACI. */
  private readonly latest = new Map<string, PresenceView>();
  /** How many callers watch presence on the connection (listen, a presence listing). */
  private watchers = 0;
  /** Updates counted per ACI, so a listing can tell which came after its subscription. */
  private readonly updates = new Map<string, number>();
  /** Called on every update (a listing waiting for its answers). */
  private readonly waiters = new Set<() => void>();

  constructor(deps: PresenceDeps) {
    this.deps = deps;
  }

  /** The token to put on an outgoing message to a contact: the account's, while presence is on. */
  tokenForContent(): Uint8Array | undefined {
    const p = readPrivacy(this.deps.store);
    return p.presence ? p.presenceToken : undefined;
  }

  /** This device's own state (what it tells the relay on every connection). */
  ownState(): OwnPresence {
    return this.deps.store.getSetting(OWN_STATE_KEY) === 'away' ? 'away' : 'online';
  }

  /** Sets this device's own state, now when connected and on every later connection. */
  setOwnState(state: OwnPresence): void {
    this.deps.store.setSetting(OWN_STATE_KEY, state);
    this.deps.connection()?.setPresence(state === 'away' ? PresenceState.AWAY : PresenceState.ONLINE);
  }

  /**
   * Brings the relay in line with the settings: registers the token while presence is on,
   * withdraws it while off. Does nothing when the relay already has it as far as this device
   * knows. Failures (offline, a relay without presence) are left for the next connection.
   */
  async reconcile(): Promise<void> {
    const p = readPrivacy(this.deps.store);
    const wanted = p.presence && p.presenceToken ? `put:${toBase64Url(p.presenceToken)}` : p.presence ? undefined : 'deleted';
    if (wanted === undefined || this.deps.store.getSetting(RELAY_STATE_KEY) === wanted) return;
    if (wanted === 'deleted') await this.deps.api.deletePresenceToken();
    else await this.deps.api.putPresenceToken(p.presenceToken!);
    this.deps.store.setSetting(RELAY_STATE_KEY, wanted);
  }

  /** A new connection is up: repeat this device's own state, and the subscription when watching. */
  onConnected(): void {
    if (this.ownState() === 'away') this.deps.connection()?.setPresence(PresenceState.AWAY);
    if (this.watchers > 0) void this.subscribe().catch(() => undefined);
  }

  /** Something changed (a new token, the settings): subscribe again when watching. */
  refresh(): void {
    if (this.watchers > 0 && this.deps.connection()?.connected) void this.subscribe().catch(() => undefined);
  }

  /** Starts watching on the connection (and on every reconnection) until the returned function is called. */
  watch(): () => void {
    this.watchers++;
    if (this.watchers === 1 && this.deps.connection()?.connected) void this.subscribe().catch(() => undefined);
    let done = false;
    return () => {
      if (done) return;
      done = true;
      this.watchers--;
    };
  }

  /** Handles an update from the relay: remembers it and announces a change. */
  onUpdate(u: PresenceUpdate): void {
    if (u.aci.length !== 16) return;
    let aci: string;
    try {
      aci = aciFromBytes(u.aci);
    } catch {
      return;
    }
    const contact = this.deps.store.presenceContacts().find((c) => c.aci === aci);
    if (!contact) return;
    const state = u.state === PresenceState.ONLINE ? 'online' : u.state === PresenceState.AWAY ? 'away' : u.state === PresenceState.OFFLINE ? 'offline' : 'unknown';
    const lastSeen = state === 'offline' && u.lastSeen > 0n ? Number(u.lastSeen) : undefined;
    this.set({ address: contact.address, aci, state, ...(lastSeen !== undefined ? { lastSeen } : {}) });
  }

  /** The relay ended subscriptions (the accounts rotated their token or turned presence off). */
  onEnded(refused: readonly Uint8Array[]): void {
    const contacts = this.deps.store.presenceContacts();
    for (const bytes of refused) {
      if (bytes.length !== 16) continue;
      const aci = aciFromBytes(bytes) as string;
      const c = contacts.find((x) => x.aci === aci);
      if (c) this.set({ address: c.address, aci, state: 'unknown' });
    }
  }

  /**
   * Every contact's presence now: subscribes on the open connection and waits until the relay
   * told the state of every accepted contact (at most `waitMs`). Contacts without a token, and
   * those the relay refused, are `unknown`.
   */
  async snapshot(waitMs = PRESENCE_SNAPSHOT_WAIT_MS): Promise<PresenceView[]> {
    const stop = this.watch();
    try {
      const contacts = this.deps.store.presenceContacts();
      const before = new Map(contacts.map((c) => [c.aci, this.updates.get(c.aci) ?? 0]));
      const accepted = await this.subscribe();
      const answered = () => accepted.every((aci) => (this.updates.get(aci) ?? 0) > (before.get(aci) ?? 0));
      if (!answered()) {
        await new Promise<void>((resolve) => {
          const done = () => {
            clearTimeout(timer);
            this.waiters.delete(check);
            resolve();
          };
          const check = () => {
            if (answered()) done();
          };
          const timer = setTimeout(done, waitMs);
          this.waiters.add(check);
        });
      }
      return contacts.map((c) => this.latest.get(c.aci) ?? { address: c.address, aci: c.aci, state: 'unknown' as const });
    } finally {
      stop();
    }
  }

  /** Forgets the states seen (the connection closed). */
  reset(): void {
    this.latest.clear();
  }

  /** Subscribes to every contact with a token (none while presence is off); answers the accepted ACIs. */
  private async subscribe(): Promise<string[]> {
    const conn = this.deps.connection();
    if (!conn?.connected) return [];
    const on = readPrivacy(this.deps.store).presence;
    const targets = on
      ? this.deps.store
          .presenceContacts()
          .filter((c): c is typeof c & { token: Uint8Array } => c.token !== undefined)
          .slice(0, PRESENCE_MAX_TARGETS)
      : [];
    const result = await conn.subscribePresence(targets.map((t) => ({ aci: aciToBytes(t.aci as Aci), token: t.token })));
    const refused = new Set(result.refused.filter((a) => a.length === 16).map((a) => aciFromBytes(a) as string));
    for (const t of targets) if (refused.has(t.aci)) this.set({ address: t.address, aci: t.aci, state: 'unknown' });
    return targets.filter((t) => !refused.has(t.aci)).map((t) => t.aci);
  }

  private set(view: PresenceView): void {
    const prev = this.latest.get(view.aci);
    this.latest.set(view.aci, view);
    this.updates.set(view.aci, (this.updates.get(view.aci) ?? 0) + 1);
    if (!prev || prev.state !== view.state || prev.lastSeen !== view.lastSeen || prev.address !== view.address) this.deps.emit(view);
    for (const w of [...this.waiters]) w();
  }
}
