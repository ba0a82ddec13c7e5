// SPDX-License-Identifier: AGPL-3.0-only
/**
 * Schema migrations of keys.db. Each migration is named `NNNN-description`, applied once, in
 * name order, each in its own transaction together with its row in `schema_migrations`, so a
 * crash leaves the database at a migration boundary. A database that records a migration this
 * build does not know was written by a newer build and is refused rather than guessed at.
 */
import type { Database } from 'better-sqlite3';
import { migration0001Initial } from './migrations/0001-initial.js';
import { migration0002PushTokens } from './migrations/0002-push-tokens.js';
import { migration0003AccessKeys } from './migrations/0003-access-keys.js';
import { migration0004PresenceTokens } from './migrations/0004-presence-tokens.js';

/** One schema change. */
export interface Migration {
  /** `NNNN-description`, e.g. `0001-initial`; the order is the order of the names. */
  readonly name: string;
  /** SQL applied as one script. */
  readonly sql: string;
}

/** Every migration of keys.db, oldest first. */
export const KEY_STORE_MIGRATIONS: readonly Migration[] = Object.freeze([migration0001Initial, migration0002PushTokens, migration0003AccessKeys, migration0004PresenceTokens]);

const NAME_RE = /^[0-9]{4}-[a-z0-9]+(-[a-z0-9]+)*$/;

/** The migration database was written by a newer build, or a migration list is malformed. */
export class MigrationError extends Error {
  override readonly name = 'MigrationError';
  /** Stable code. */
  readonly code = 'MIGRATION_FAILED';
}

/**
 * Applies the migrations `db` has not recorded yet; returns the names applied now.
 * @throws MigrationError when the database records an unknown migration or the list is out of order.
 */
export function applyMigrations(db: Database, migrations: readonly Migration[] = KEY_STORE_MIGRATIONS, now: () => number = Date.now): string[] {
  for (let i = 0; i < migrations.length; i++) {
    const m = migrations[i]!;
    if (!NAME_RE.test(m.name)) throw new MigrationError(`migration name ${m.name} is not NNNN-description`);
    if (i > 0 && migrations[i - 1]!.name.slice(0, 4) >= m.name.slice(0, 4)) {
      throw new MigrationError(`migration ${m.name} is out of order`);
    }
  }
  db.exec('CREATE TABLE IF NOT EXISTS schema_migrations (name TEXT PRIMARY KEY, applied_at INTEGER NOT NULL) STRICT');
  const applied = new Set((db.prepare('SELECT name FROM schema_migrations').all() as Array<{ name: string }>).map((r) => r.name));
  const known = new Set(migrations.map((m) => m.name));
  const unknown = [...applied].filter((name) => !known.has(name));
  if (unknown.length > 0) {
    throw new MigrationError(`the database has migrations this build does not know (${unknown.sort().join(', ')}); it was written by a newer version`);
  }
  const record = db.prepare('INSERT INTO schema_migrations (name, applied_at) VALUES (?, ?)');
  const done: string[] = [];
  for (const m of migrations) {
    if (applied.has(m.name)) continue;
    db.transaction(() => {
      db.exec(m.sql);
      record.run(m.name, now());
    }).immediate();
    done.push(m.name);
  }
  return done;
}
