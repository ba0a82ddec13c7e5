// SPDX-License-Identifier: AGPL-3.0-only
/**
 * A snapshot of a relay's persistent state: the files in its data directory and every row of
 * every table of every SQLite database there. Two equal snapshots mean a request changed
 * nothing. SQLite's own sidecar files (-wal, -shm) are left out: they change on checkpoints
 * without any logical change.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';

/** File names and, per table, its row count and a digest of its rows. */
export interface StateSnapshot {
  readonly files: string[];
  readonly tables: Record<string, { rows: number; digest: string }>;
}

/** Takes a snapshot of `dataDir` (safe while the relay runs: WAL readers see committed state). */
export function snapshotState(dataDir: string): StateSnapshot {
  const files = readdirSync(dataDir, { recursive: true })
    .map(String)
    .filter((f) => !/-(wal|shm|journal)$/.test(f))
    .sort();
  const tables: Record<string, { rows: number; digest: string }> = {};
  for (const file of files.filter((f) => f.endsWith('.db'))) {
    const db = new Database(join(dataDir, file), { readonly: true, fileMustExist: true });
    try {
      const names = db
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
        .all() as Array<{ name: string }>;
      for (const { name } of names) {
        const rows = db.prepare(`SELECT * FROM "${name}"`).raw().all() as unknown[][];
        // Order-independent: row order is not state.
        const lines = rows.map((r) => JSON.stringify(r, (_k, v: unknown) => (Buffer.isBuffer(v) ? v.toString('hex') : typeof v === 'bigint' ? v.toString() : v))).sort();
        tables[`${file}/${name}`] = { rows: rows.length, digest: createHash('sha256').update(lines.join('\n')).digest('hex') };
      }
    } finally {
      db.close();
    }
  }
  return { files, tables };
}

/** Every regular file under `dir` (recursively), by path. */
export function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name));
}

/** Every file under `dir` with its bytes, for searching the relay's storage for plaintext. */
export function readAllFiles(dir: string): Array<{ path: string; bytes: Buffer }> {
  return filesUnder(dir).map((path) => ({ path, bytes: readFileSync(path) }));
}
