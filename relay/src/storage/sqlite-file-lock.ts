// SPDX-License-Identifier: AGPL-3.0-only
/**
 * An exclusive, crash-safe ownership lock on a database file: one process (and one store in it)
 * owns `relay.db`, so the store may cache counters in memory.
 *
 * The lock is a tiny side database (`<path>.lock`) held in SQLite's exclusive locking mode. SQLite
 * takes a POSIX lock on it, which the kernel drops when the process dies, even by SIGKILL, so a
 * crash never leaves a stale lock behind (a pid file would); and SQLite tracks its locks per file
 * within a process too, so a second store in the same process is refused as well. The main
 * database keeps normal locking, which leaves `sqlite3 relay.db ".backup …"` working while the
 * relay runs.
 */
import Database from 'better-sqlite3';
import { EnvelopeStoreError } from '../ports/envelope-store.js';

/** A held lock. */
export interface FileLock {
  /** The lock file's path. */
  readonly path: string;
  /** Releases the lock. Idempotent. */
  release(): void;
}

/**
 * Takes the lock on `dbPath` (the lock file is `dbPath + '.lock'`), or fails at once.
 * @throws EnvelopeStoreError STORE_LOCKED when another owner holds it.
 */
export function acquireFileLock(dbPath: string): FileLock {
  const path = `${dbPath}.lock`;
  // timeout 0: a held lock is an operator error to report now, not something to wait out.
  const db = new Database(path, { timeout: 0 });
  try {
    db.pragma('locking_mode = EXCLUSIVE');
    // An empty exclusive transaction takes the EXCLUSIVE lock, which this mode keeps until close.
    db.exec('BEGIN EXCLUSIVE; COMMIT');
  } catch (err) {
    db.close();
    if ((err as { code?: unknown }).code === 'SQLITE_BUSY') {
      throw new EnvelopeStoreError('STORE_LOCKED', `${dbPath} is in use by another relay process or store`, { cause: err });
    }
    throw err;
  }
  let held = true;
  return {
    path,
    release() {
      if (!held) return;
      held = false;
      db.close();
    },
  };
}
