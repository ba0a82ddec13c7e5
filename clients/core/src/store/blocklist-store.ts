// SPDX-License-Identifier: AGPL-3.0-only
/**
 * The contacts this account blocks. The set is the same on every device of the account: each
 * change replaces the whole set under a version, and a device keeps the set with the highest
 * (version, writing device id), so devices that changed it at the same time still converge.
 */
import type { Aci } from '@parley/protocol';
import type { ClientDatabase } from './database.js';
import { canonicalAddress, checkAci, checkInteger } from './store-types.js';

/** A blocked contact. */
export interface BlockedContact {
  readonly aci: Aci;
  /** `user@domain`, when known. */
  readonly address?: string;
  /** When this device learned of the block, ms since the epoch. */
  readonly blockedAt: number;
}

/** The version of the stored set: who wrote it, when. */
export interface BlocklistVersion {
  /** The writer's `max(previous version + 1, its clock in ms)`. 0 before any change. */
  readonly version: number;
  /** The device that wrote the set (0 before any change). */
  readonly deviceId: number;
}

const VERSION_SETTING = 'blocklist.version';

/** See the module comment. */
export class BlocklistStore {
  readonly #db: ClientDatabase;

  /** Over the client schema in `db`. */
  constructor(db: ClientDatabase) {
    this.#db = db;
  }

  /** Whether account `aci` is blocked. */
  isBlocked(aci: string): boolean {
    return this.#db.getCached(['blocked_contacts'], 'SELECT 1 FROM blocked_contacts WHERE aci = ?', [aci]) !== undefined;
  }

  /** Every blocked contact, by address (those without one last). */
  list(): BlockedContact[] {
    return this.#db
      .all<{ aci: string; address: string | null; blocked_at: number }>('SELECT aci, address, blocked_at FROM blocked_contacts ORDER BY address IS NULL, address, aci')
      .map((r) => ({ aci: r.aci as Aci, ...(r.address !== null ? { address: r.address } : {}), blockedAt: r.blocked_at }));
  }

  /** The version of the stored set. */
  version(): BlocklistVersion {
    const raw = this.#db.value('SELECT value FROM settings WHERE name = ?', [VERSION_SETTING]);
    if (typeof raw !== 'string') return { version: 0, deviceId: 0 };
    const v = JSON.parse(raw) as Partial<BlocklistVersion>;
    return { version: Number(v.version) || 0, deviceId: Number(v.deviceId) || 0 };
  }

  /**
   * Replaces the set with `contacts` under `version` when (version, deviceId) is above the
   * stored one. Contacts already blocked keep their time; new ones get `nowMs`. Returns the
   * ACIs added and removed, or undefined when the set was older and nothing changed.
   */
  replace(contacts: ReadonlyArray<{ readonly aci: string; readonly address?: string }>, version: BlocklistVersion, nowMs: number): { added: Aci[]; removed: Aci[] } | undefined {
    checkInteger(version.version, 'version', 1);
    checkInteger(version.deviceId, 'deviceId', 1, 127);
    const wanted = new Map<string, string | undefined>();
    for (const c of contacts) wanted.set(checkAci(c.aci), c.address === undefined || c.address === '' ? undefined : canonicalAddress(c.address));
    return this.#db.transaction(() => {
      const current = this.version();
      const above = version.version !== current.version ? version.version > current.version : version.deviceId > current.deviceId;
      if (!above) return undefined;
      const before = new Set(this.list().map((c) => c.aci));
      const removed = [...before].filter((aci) => !wanted.has(aci));
      for (const aci of removed) this.#db.run('DELETE FROM blocked_contacts WHERE aci = ?', [aci]);
      const added: Aci[] = [];
      for (const [aci, address] of wanted) {
        if (!before.has(aci as Aci)) added.push(aci as Aci);
        this.#db.run(
          'INSERT INTO blocked_contacts (aci, address, blocked_at) VALUES (?, ?, ?) ON CONFLICT (aci) DO UPDATE SET address = coalesce(excluded.address, address)',
          [aci, address ?? null, nowMs],
        );
      }
      this.#db.run('INSERT OR REPLACE INTO settings (name, value) VALUES (?, ?)', [VERSION_SETTING, JSON.stringify(version)]);
      return { added, removed: removed as Aci[] };
    });
  }
}
