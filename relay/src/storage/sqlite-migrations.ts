// SPDX-License-Identifier: AGPL-3.0-only
/**
 * Schema migrations for the relay's SQLite databases: numbered, applied in order at open, each in
 * its own transaction together with its record in `schema_migration`, so a crash mid-migration
 * leaves the previous version intact. A database that records a migration this code does not
 * know (written by a newer or a diverged version) is refused untouched rather than guessed at.
 */
import type { Database } from 'better-sqlite3';
import { EnvelopeStoreError } from '../ports/envelope-store.js';

/** One migration. */
export interface SqliteMigration {
  /** 1, 2, 3, … with no gaps; the `NNNN` of its file name. */
  readonly version: number;
  /** The file name without extension, `NNNN-description`; recorded, and compared at every open. */
  readonly name: string;
  /** SQL run as one script inside the migration's transaction. */
  readonly sql: string;
}

interface AppliedRow {
  version: number;
  name: string;
}

/**
 * Applies the migrations `db` lacks.
 * @param nowMs recorded as the time each migration was applied, milliseconds since the epoch.
 * @returns the versions applied now, in order.
 * @throws EnvelopeStoreError SCHEMA_UNKNOWN when the database records a migration not in `migrations`.
 */
export function applyMigrations(db: Database, migrations: readonly SqliteMigration[], nowMs: number): number[] {
  migrations.forEach((m, i) => {
    if (m.version !== i + 1 || !m.name.startsWith(String(m.version).padStart(4, '0') + '-')) {
      throw new Error(`migration list is malformed at position ${i}: ${m.name}`);
    }
  });
  db.exec(
    'CREATE TABLE IF NOT EXISTS schema_migration (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)',
  );
  const applied = db.prepare<[], AppliedRow>('SELECT version, name FROM schema_migration ORDER BY version').all();
  for (const [i, row] of applied.entries()) {
    const known = migrations[row.version - 1];
    if (row.version !== i + 1 || !known || known.name !== row.name) {
      throw new EnvelopeStoreError(
        'SCHEMA_UNKNOWN',
        `the database records migration ${row.version} (${row.name}), which this relay does not know; refusing to open it`,
      );
    }
  }
  const record = db.prepare('INSERT INTO schema_migration (version, name, applied_at) VALUES (?, ?, ?)');
  const done: number[] = [];
  for (const m of migrations.slice(applied.length)) {
    db.transaction(() => {
      db.exec(m.sql);
      record.run(m.version, m.name, nowMs);
    }).immediate();
    done.push(m.version);
  }
  return done;
}
