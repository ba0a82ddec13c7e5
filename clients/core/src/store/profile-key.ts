// SPDX-License-Identifier: AGPL-3.0-only
/**
 * The key of a profile's SQLCipher database. By default a random 32-byte key lives next to the
 * database in `db.key`, readable by its owner only: the disk encryption of the database then
 * protects against copies of the database alone (backups, sync folders), and the operating
 * system's file permissions protect the key. With a passphrase, the key is derived with scrypt
 * and stored nowhere; `db.salt` holds the salt and the scrypt cost, so a later version can raise
 * the cost without breaking existing profiles.
 *
 * The derived or stored key is handed to SQLCipher as a raw key (`x'…'`), which skips
 * SQLCipher's own PBKDF2: a random key needs no stretching, and a passphrase is already
 * stretched by scrypt.
 */
import { closeSync, existsSync, fstatSync, fsyncSync, mkdirSync, openSync, readFileSync, readSync, writeSync } from 'node:fs';
import { randomBytes, scryptSync } from 'node:crypto';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { fromBase64Url, toBase64Url, toHex } from '@parley/protocol';
import { ClientError } from '../errors.js';

/** File name of the random database key inside a profile directory. */
export const KEY_FILE_NAME = 'db.key';
/** File name of the passphrase salt and scrypt parameters inside a profile directory. */
export const SALT_FILE_NAME = 'db.salt';
/** File name of the SQLCipher database inside a profile directory. */
export const DATABASE_FILE_NAME = 'parley.db';
/** Length of the database key, bytes (SQLCipher's AES-256 key). */
export const DATABASE_KEY_BYTES = 32;

/**
 * scrypt cost for new passphrase profiles: N = 2^15, r = 8, p = 1 (the interactive-login
 * setting of the scrypt paper): 32 MiB of memory and about 0.1 s on a laptop core per open.
 */
export const DEFAULT_SCRYPT_PARAMS: ScryptParams = Object.freeze({ N: 2 ** 15, r: 8, p: 1 });

/** scrypt cost parameters, as recorded in `db.salt`. */
export interface ScryptParams {
  /** CPU/memory cost, a power of two, 2^14..2^20. */
  readonly N: number;
  /** Block size, 1..32. */
  readonly r: number;
  /** Parallelism, 1..16. */
  readonly p: number;
}

/** Options of {@link resolveDatabaseKey}. */
export interface ProfileKeyOptions {
  /** The profile directory; created (mode 0700) when missing. */
  readonly profileDir: string;
  /** Derive the key from this passphrase instead of using `db.key`. Must not be empty. */
  readonly passphrase?: string;
  /** scrypt cost for a profile created now; default {@link DEFAULT_SCRYPT_PARAMS}. Ignored for existing profiles. */
  readonly scrypt?: ScryptParams;
}

/** Where a {@link DatabaseKey} came from. */
export type DatabaseKeySource = 'key-file' | 'passphrase';

/**
 * A database key. Holds the key privately and prints as `DatabaseKey [redacted]`, so it cannot
 * end up in a log through string conversion or `console.log`.
 */
export class DatabaseKey {
  readonly #hex: string;
  /** Whether the key came from `db.key` or from a passphrase. */
  readonly source: DatabaseKeySource;

  /** `bytes` must be {@link DATABASE_KEY_BYTES} long. */
  constructor(bytes: Uint8Array, source: DatabaseKeySource) {
    if (bytes.length !== DATABASE_KEY_BYTES) throw new ClientError('INVALID_ARGUMENT', `a database key is ${DATABASE_KEY_BYTES} bytes`);
    this.#hex = toHex(bytes);
    this.source = source;
  }

  /** The `PRAGMA key` statement that unlocks a database with this key (secret: never log it). */
  keyPragma(): string {
    return `PRAGMA key = "x'${this.#hex}'"`;
  }

  /** Redacted. */
  toString(): string {
    return 'DatabaseKey [redacted]';
  }

  /** Redacted. */
  toJSON(): string {
    return this.toString();
  }

  /** Redacted. */
  [inspect.custom](): string {
    return this.toString();
  }
}

const isWindows = process.platform === 'win32';

/**
 * The key for the database in `options.profileDir`: from the passphrase when one is given, else
 * from `db.key`, which is created (random, mode 0600) for a new profile.
 *
 * @throws ClientError KEY_FILE_PERMISSIONS when `db.key` is accessible to group or others;
 *   PASSPHRASE_REQUIRED when the profile has a salt file but no passphrase was given;
 *   KEY_MODE_MISMATCH when a passphrase was given to a key-file profile; KEY_MISSING when the
 *   database exists without its key or salt file; KEY_FILE_INVALID for a malformed file;
 *   INVALID_ARGUMENT for an empty passphrase.
 */
export function resolveDatabaseKey(options: ProfileKeyOptions): DatabaseKey {
  const { profileDir, passphrase } = options;
  if (typeof profileDir !== 'string' || profileDir === '') throw new ClientError('INVALID_ARGUMENT', 'profileDir must be a path');
  if (passphrase !== undefined && (typeof passphrase !== 'string' || passphrase === '')) {
    throw new ClientError('INVALID_ARGUMENT', 'the passphrase must be a non-empty string');
  }
  mkdirSync(profileDir, { recursive: true, mode: 0o700 });
  const keyPath = join(profileDir, KEY_FILE_NAME);
  const saltPath = join(profileDir, SALT_FILE_NAME);
  const databaseExists = existsSync(join(profileDir, DATABASE_FILE_NAME));

  if (passphrase === undefined) {
    if (existsSync(saltPath)) throw new ClientError('PASSPHRASE_REQUIRED', 'this profile is protected by a passphrase; give it to open the profile');
    if (!existsSync(keyPath) && databaseExists) {
      throw new ClientError('KEY_MISSING', `the database exists but ${keyPath} is missing; without it the database cannot be opened`);
    }
    return new DatabaseKey(readOrCreateKeyFile(keyPath, profileDir), 'key-file');
  }
  if (existsSync(keyPath)) {
    throw new ClientError('KEY_MODE_MISMATCH', `this profile is protected by the key file ${keyPath}, not by a passphrase; open it without one`);
  }
  if (!existsSync(saltPath) && databaseExists) {
    throw new ClientError('KEY_MISSING', `the database exists but ${saltPath} is missing; without it the passphrase cannot unlock the database`);
  }
  const salt = readOrCreateSaltFile(saltPath, profileDir, options.scrypt ?? DEFAULT_SCRYPT_PARAMS);
  return new DatabaseKey(deriveKey(passphrase, salt), 'passphrase');
}

interface SaltFile {
  readonly salt: Uint8Array;
  readonly params: ScryptParams;
}

const SALT_BYTES = 16;

function deriveKey(passphrase: string, { salt, params }: SaltFile): Uint8Array {
  const { N, r, p } = params;
  // NFKC: the same passphrase typed with another keyboard layout or input method (composed vs
  // decomposed accents, full-width digits) must unlock the same database.
  const key = scryptSync(passphrase.normalize('NFKC'), salt, DATABASE_KEY_BYTES, { N, r, p, maxmem: 128 * N * r * p + 1024 * 1024 });
  const out = new Uint8Array(key);
  key.fill(0);
  return out;
}

function checkScryptParams(params: ScryptParams): boolean {
  const { N, r, p } = params;
  return (
    Number.isInteger(N) && N >= 2 ** 14 && N <= 2 ** 20 && (N & (N - 1)) === 0 &&
    Number.isInteger(r) && r >= 1 && r <= 32 &&
    Number.isInteger(p) && p >= 1 && p <= 16
  );
}

function readOrCreateKeyFile(path: string, profileDir: string): Uint8Array {
  const key = randomBytes(DATABASE_KEY_BYTES);
  try {
    if (writeNewFile(path, profileDir, key)) return new Uint8Array(key);
  } finally {
    key.fill(0);
  }
  return readKeyFile(path);
}

function readKeyFile(path: string): Uint8Array {
  const fd = openSync(path, 'r');
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new ClientError('KEY_FILE_INVALID', `${path} is not a regular file`);
    // Checked on the opened descriptor, so the file checked is the file read.
    if (!isWindows && (st.mode & 0o077) !== 0) {
      throw new ClientError(
        'KEY_FILE_PERMISSIONS',
        `${path} is accessible to other users (mode ${(st.mode & 0o777).toString(8)}); run: chmod 600 ${path}`,
      );
    }
    if (st.size !== DATABASE_KEY_BYTES) throw new ClientError('KEY_FILE_INVALID', `${path} must hold exactly ${DATABASE_KEY_BYTES} bytes`);
    const key = new Uint8Array(DATABASE_KEY_BYTES);
    if (readSync(fd, key, 0, DATABASE_KEY_BYTES, 0) !== DATABASE_KEY_BYTES) {
      throw new ClientError('KEY_FILE_INVALID', `${path} could not be read completely`);
    }
    return key;
  } finally {
    closeSync(fd);
  }
}

function readOrCreateSaltFile(path: string, profileDir: string, params: ScryptParams): SaltFile {
  if (!existsSync(path)) {
    if (!checkScryptParams(params)) throw new ClientError('INVALID_ARGUMENT', 'scrypt parameters are out of range');
    const file = { version: 1, kdf: 'scrypt', N: params.N, r: params.r, p: params.p, salt: toBase64Url(randomBytes(SALT_BYTES)) };
    writeNewFile(path, profileDir, new TextEncoder().encode(JSON.stringify(file) + '\n'));
  }
  const bad = (): never => {
    throw new ClientError('KEY_FILE_INVALID', `${path} is not a Parley salt file`);
  };
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch {
    return bad();
  }
  if (typeof parsed !== 'object' || parsed === null) return bad();
  const { version, kdf, N, r, p, salt } = parsed as Record<string, unknown>;
  if (version !== 1 || kdf !== 'scrypt' || typeof salt !== 'string') return bad();
  const saltBytes = fromBase64Url(salt);
  const fileParams = { N, r, p } as ScryptParams;
  if (!saltBytes || saltBytes.length < SALT_BYTES || !checkScryptParams(fileParams)) return bad();
  return { salt: saltBytes, params: fileParams };
}

/**
 * Creates `path` with `bytes`, mode 0600, durably (file and directory entry synced). Returns
 * false when the file already exists (another process created it first; the caller reads it).
 */
function writeNewFile(path: string, dir: string, bytes: Uint8Array): boolean {
  let fd: number;
  try {
    fd = openSync(path, 'wx', 0o600);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  }
  try {
    let written = 0;
    while (written < bytes.length) written += writeSync(fd, bytes, written, bytes.length - written);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  if (!isWindows) {
    const dirFd = openSync(dir, 'r');
    try {
      fsyncSync(dirFd);
    } finally {
      closeSync(dirFd);
    }
  }
  return true;
}
