// SPDX-License-Identifier: AGPL-3.0-only
/**
 * The profile's SQLCipher database: opened with its key, checked right away (a wrong key shows
 * at the first read, as "not a database"), locked against a second opener, brought to the
 * schema this code knows by migrations, and used through synchronous statements and
 * transactions.
 *
 * Settings and why:
 * - `locking_mode=EXCLUSIVE`: the first write takes the file lock and keeps it until close, so a
 *   second process (or a second open in this one) on the same profile fails at open with
 *   PROFILE_IN_USE instead of racing it: two writers of one ratchet state would reuse message
 *   keys. The OS drops the lock when the process dies, so a crash leaves no stale lock. It also
 *   keeps the WAL index in memory (no `-shm` file).
 * - `journal_mode=WAL`, `synchronous=FULL`: a transaction is durable when it returns, also on
 *   power loss; the receive pipeline acks envelopes after its commit (DESIGN §14).
 * - `foreign_keys=ON`; `temp_store=MEMORY` so sorts and temporary indexes never reach the disk
 *   outside the encrypted file.
 */
import type { Clock } from '@parley/crypto';
import Database, { type Statement } from '@signalapp/sqlcipher';
import { ClientError } from '../errors.js';
import type { DatabaseKey } from './profile-key.js';
import { WriteReach, type SchemaFacts } from './write-reach.js';

/** The system clock (`Clock` is @parley/crypto's: milliseconds since the epoch). */
export const SYSTEM_CLOCK: Clock = Object.freeze({ now: () => Date.now() });

/** One schema migration; see {@link applyMigrations}. */
export interface StoreMigration {
  /** 1, 2, 3, … without gaps: the `NNNN` of its name. */
  readonly version: number;
  /** `NNNN-description`; recorded in `schema_migrations` and compared at every open. */
  readonly name: string;
  /** SQL run as one script inside the migration's transaction. */
  readonly sql: string;
  /**
   * Runs after `sql`, in the same transaction, for what a script cannot say (e.g. a schema
   * change that needs the current `schema_version`).
   */
  readonly after?: (db: Database) => void;
}

/** Options of {@link ClientDatabase.open}. */
export interface OpenDatabaseOptions {
  /** The migrations that define the schema, oldest first. */
  readonly migrations: readonly StoreMigration[];
  /** Recorded as each migration's application time; default the system clock. */
  readonly clock?: Clock;
}

/** A value SQLite stores: text, integer or real, blob, or NULL. */
export type SqlValue = string | number | Uint8Array<ArrayBuffer> | null;
/** Parameters of a statement: positional or named (`$name`). */
export type SqlParams = readonly SqlValue[] | Readonly<Record<string, SqlValue>>;
/** A result row. */
export type SqlRow = Record<string, unknown>;

function sqliteCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

function isBusy(err: unknown): boolean {
  const code = sqliteCode(err) ?? '';
  return code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED');
}

/** True when `err` is SQLite's unique/primary-key constraint failure. */
export function isUniqueViolation(err: unknown): boolean {
  const code = sqliteCode(err);
  return code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY';
}

/** True when `err` is SQLite's foreign-key constraint failure. */
export function isForeignKeyViolation(err: unknown): boolean {
  return sqliteCode(err) === 'SQLITE_CONSTRAINT_FOREIGNKEY';
}

/** Kept reads beyond this many are all forgotten at once (a bound, not a tuning knob). */
const MAX_CACHED_READS = 10_000;

/** A row kept by {@link ClientDatabase.getCached}, with the generations of the tables it read. */
interface CachedRead {
  readonly row: unknown;
  readonly tables: readonly string[];
  readonly generations: readonly number[];
}

/** A lone parameter as a cache key, its type marked so that no two values share one (several: their JSON). */
function paramKey(p: string | number | null): string {
  return typeof p === 'string' ? `s${p}` : p === null ? 'z' : `n${p}`;
}

/** Reads the triggers and cascading foreign keys of the schema in `db` (see write-reach.ts). */
function schemaFacts(db: Database): SchemaFacts {
  const triggers = db.prepare("SELECT tbl_name AS \"table\", sql FROM sqlite_master WHERE type = 'trigger'").all() as { table: string; sql: string }[];
  const keys = db
    .prepare("SELECT m.name AS child, f.\"table\" AS parent, f.on_delete, f.on_update FROM sqlite_master m, pragma_foreign_key_list(m.name) f WHERE m.type = 'table'")
    .all() as { child: string; parent: string; on_delete: string; on_update: string }[];
  const changesChild = (action: string) => action === 'CASCADE' || action === 'SET NULL' || action === 'SET DEFAULT';
  return { triggers, cascades: keys.filter((k) => changesChild(k.on_delete) || changesChild(k.on_update)) };
}

/** An open, keyed, migrated SQLCipher database. Not safe to share between processes (it is locked). */
export class ClientDatabase {
  readonly #db: Database;
  #depth = 0;
  #closed = false;
  /**
   * Prepared statements by their exact text. The driver keeps its own cache, but keyed by a
   * string it builds per call, which costs more than the statement for short reads.
   */
  readonly #statements = new Map<string, Statement>();
  /** Which tables a statement may change (see {@link getCached}). */
  readonly #reach: WriteReach;
  /** Per table, a number that grows with every change that reaches it. */
  readonly #generations = new Map<string, number>();
  /** Rows kept by {@link getCached}, by statement, then by parameters. */
  readonly #reads = new Map<string, Map<string, CachedRead>>();
  /** Lists kept by {@link allCached}, likewise. */
  readonly #listReads = new Map<string, Map<string, CachedRead>>();
  /** Entries kept since the last time all were forgotten (a bound, see MAX_CACHED_READS). */
  #keptCount = 0;
  /** The schema version after migrations: the highest applied migration. */
  readonly schemaVersion: number;

  private constructor(db: Database, schemaVersion: number) {
    this.#db = db;
    this.schemaVersion = schemaVersion;
    this.#reach = new WriteReach(schemaFacts(db));
  }

  /**
   * Opens (creating when missing) the database at `path` with `key`, and applies the migrations
   * it lacks.
   * @throws ClientError WRONG_PASSPHRASE when `key` does not decrypt the file; PROFILE_IN_USE
   *   when another connection holds it; DATABASE_TOO_NEW or SCHEMA_MISMATCH (see
   *   {@link applyMigrations}).
   */
  static open(path: string, key: DatabaseKey, options: OpenDatabaseOptions): ClientDatabase {
    const db = new Database(path, { cacheStatements: true });
    try {
      // SQLCipher's own log bypasses setLogger and writes "hmac check failed" to stderr on a
      // wrong passphrase, which the caller already gets as WRONG_PASSPHRASE.
      db.exec('PRAGMA cipher_log_level = NONE');
      db.exec(key.keyPragma());
      db.exec('PRAGMA busy_timeout = 0');
      db.exec('PRAGMA locking_mode = EXCLUSIVE');
      try {
        db.prepare('SELECT count(*) FROM sqlite_master', { pluck: true }).get();
      } catch (err) {
        if (sqliteCode(err) === 'SQLITE_NOTADB') {
          throw new ClientError('WRONG_PASSPHRASE', 'the passphrase or key does not open this database', { cause: err });
        }
        throw err;
      }
      db.exec('PRAGMA foreign_keys = ON');
      // Deleted and expired messages must not linger in free pages of the file (SQLCipher's
      // build turns this on already; say so rather than depend on it).
      db.exec('PRAGMA secure_delete = ON');
      db.exec('PRAGMA temp_store = MEMORY');
      db.exec('PRAGMA synchronous = FULL');
      if (db.pragma('journal_mode = WAL', { simple: true }) !== 'wal') throw new Error('the database refused WAL mode');
      // Takes the exclusive lock now, even when there is nothing to migrate.
      db.exec('BEGIN EXCLUSIVE; COMMIT');
      db.initTokenizer();
      const version = applyMigrations(db, options.migrations, (options.clock ?? SYSTEM_CLOCK).now());
      return new ClientDatabase(db, version);
    } catch (err) {
      db.close();
      if (isBusy(err)) throw new ClientError('PROFILE_IN_USE', 'the profile database is open elsewhere (another parley process?)', { cause: err });
      throw err;
    }
  }

  /** True inside {@link transaction}. */
  get inTransaction(): boolean {
    return this.#depth > 0;
  }

  /**
   * Runs `fn` in a transaction and returns its result: committed when `fn` returns, rolled back
   * when it throws. Nested calls become savepoints (an inner failure that the outer body
   * catches rolls back the inner part only). `fn` must be synchronous: a body that returns a
   * promise is rolled back and refused with ASYNC_TRANSACTION, because the work it would do
   * after its first `await` would run outside the transaction.
   */
  transaction<T>(fn: () => T): T {
    this.#checkOpen();
    try {
      return this.#db.transaction(() => {
        this.#depth++;
        try {
          const result = fn();
          if (typeof (result as { then?: unknown } | null)?.then === 'function') {
            throw new ClientError('ASYNC_TRANSACTION');
          }
          return result;
        } finally {
          this.#depth--;
        }
      })();
    } catch (err) {
      // Rolled back: a kept row may have been read from a write that is undone now.
      this.#forgetReads();
      throw err;
    }
  }

  /**
   * The first row of `sql`, a read of `tables` only, kept in memory until a statement that may
   * change one of those tables (itself, or through a trigger or a cascading foreign key) changes
   * a row, or a transaction rolls back. For lookups the engine repeats for every message
   * (contacts, conversations, identities, settings); rows are frozen, and callers copy any bytes
   * they hand on. Positional parameters only.
   */
  getCached<R = SqlRow>(tables: readonly string[], sql: string, params: readonly (string | number | null)[] = []): R | undefined {
    return this.#kept(tables, sql, params, 'get') as R | undefined;
  }

  /** Every row of `sql`, kept as {@link getCached} keeps one (the array is frozen too). */
  allCached<R = SqlRow>(tables: readonly string[], sql: string, params: readonly (string | number | null)[] = []): readonly R[] {
    return this.#kept(tables, sql, params, 'all') as readonly R[];
  }

  #kept(tables: readonly string[], sql: string, params: readonly (string | number | null)[], how: 'get' | 'all'): unknown {
    this.#checkOpen();
    // By statement first (its text is a constant, cheap to look up), then by parameters.
    let byParams = (how === 'get' ? this.#reads : this.#listReads).get(sql);
    const key = params.length === 1 ? paramKey(params[0]!) : JSON.stringify(params);
    const kept = byParams?.get(key);
    if (kept !== undefined && this.#current(kept)) return kept.row;
    const statement = this.#statement(sql);
    const row: unknown = how === 'get' ? statement.get(params as never) : Object.freeze((statement.all(params as never) as object[]).map((r) => Object.freeze(r)));
    if (++this.#keptCount > MAX_CACHED_READS) this.#forgetReads();
    if (byParams === undefined) {
      byParams = new Map();
      (how === 'get' ? this.#reads : this.#listReads).set(sql, byParams);
    }
    const lower = tables.map((t) => t.toLowerCase());
    byParams.set(key, { row: row === undefined ? undefined : Object.freeze(row), tables: lower, generations: lower.map((t) => this.#generations.get(t) ?? 0) });
    return row;
  }

  /** Whether no write reached `kept`'s tables since it was read (a loop: this runs for every kept read). */
  #current(kept: CachedRead): boolean {
    for (let i = 0; i < kept.tables.length; i++) if ((this.#generations.get(kept.tables[i]!) ?? 0) !== kept.generations[i]) return false;
    return true;
  }

  #forgetReads(): void {
    this.#reads.clear();
    this.#listReads.clear();
    this.#keptCount = 0;
  }

  /** Marks every table `sql` may change as changed (see {@link getCached}). */
  #changed(sql: string): void {
    for (const table of this.#reach.of(sql)) this.#generations.set(table, (this.#generations.get(table) ?? 0) + 1);
  }

  /** Runs `sql` (one statement) and returns the number of changed rows and the last row id. */
  run(sql: string, params?: SqlParams): { changes: number; lastInsertRowid: number } {
    const result = this.#statement(sql).run(params as never);
    // No changed row, no trigger fired and no cascade ran: what is kept still holds.
    if (result.changes > 0) this.#changed(sql);
    return result;
  }

  /** The first row of `sql`, or undefined. */
  get<R = SqlRow>(sql: string, params?: SqlParams): R | undefined {
    const row = this.#statement(sql).get(params as never) as R | undefined;
    this.#changed(sql); // a write with RETURNING
    return row;
  }

  /** Every row of `sql`. */
  all<R = SqlRow>(sql: string, params?: SqlParams): R[] {
    const rows = this.#statement(sql).all(params as never) as R[];
    this.#changed(sql);
    return rows;
  }

  /** The first column of the first row of `sql`, or undefined. */
  value(sql: string, params?: SqlParams): unknown {
    this.#checkOpen();
    const value = this.#db.prepare(sql, { pluck: true }).get(params as never);
    this.#changed(sql);
    return value;
  }

  /** Runs a script of one or more statements (schema changes; no parameters). */
  exec(sql: string): void {
    this.#checkOpen();
    this.#forgetReads();
    this.#db.exec(sql);
  }

  /** The words the FTS tokenizer makes of `text` (lowercased, diacritics folded, CJK split). */
  tokenize(text: string): string[] {
    this.#checkOpen();
    return this.#db.signalTokenize(text);
  }

  /** True once {@link close} ran. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Checkpoints the WAL into the database file and closes. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#db.close();
  }

  #statement(sql: string): Statement {
    this.#checkOpen();
    let statement = this.#statements.get(sql);
    if (statement === undefined) {
      statement = this.#db.prepare(sql);
      this.#statements.set(sql, statement);
    }
    return statement;
  }

  #checkOpen(): void {
    if (this.#closed) throw new ClientError('INVALID_ARGUMENT', 'the store is closed');
  }
}

/**
 * Applies the migrations `db` lacks, each in its own transaction together with its row in
 * `schema_migrations`, so a crash mid-migration leaves the previous version intact. Returns the
 * schema version reached.
 * @throws ClientError DATABASE_TOO_NEW when the database has migrations beyond `migrations`
 *   (written by a newer version: guessing would corrupt it); SCHEMA_MISMATCH when a recorded
 *   migration has another name than this code's migration of that number.
 */
export function applyMigrations(db: Database, migrations: readonly StoreMigration[], nowMs: number): number {
  migrations.forEach((m, i) => {
    if (m.version !== i + 1 || !new RegExp(`^${String(m.version).padStart(4, '0')}-[a-z0-9-]+$`).test(m.name)) {
      throw new Error(`migration list is malformed at position ${i}`);
    }
  });
  db.exec('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)');
  const applied = db.prepare('SELECT version, name FROM schema_migrations ORDER BY version').all() as { version: number; name: string }[];
  const newest = applied.at(-1)?.version ?? 0;
  if (newest > migrations.length) {
    throw new ClientError(
      'DATABASE_TOO_NEW',
      `the database is at schema version ${newest}, this version of Parley knows up to ${migrations.length}; update Parley`,
    );
  }
  for (const [i, row] of applied.entries()) {
    if (row.version !== i + 1 || migrations[i]!.name !== row.name) {
      throw new ClientError('SCHEMA_MISMATCH', `the database records migration ${row.version} as ${row.name}, which this version does not know`);
    }
  }
  const record = db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)');
  for (const m of migrations.slice(applied.length)) {
    db.transaction(() => {
      db.exec(m.sql);
      m.after?.(db);
      record.run([m.version, m.name, nowMs]);
    })();
  }
  return migrations.length;
}
