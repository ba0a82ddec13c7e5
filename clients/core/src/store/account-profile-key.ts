// SPDX-License-Identifier: AGPL-3.0-only
/**
 * The account's profile key (DESIGN §5): 32 random bytes shared by every device of the account
 * and handed to contacts inside the encryption; the access key derived from it is registered
 * with the relay so that contacts can send sealed. Kept in `account.profile_key`, with a version
 * (the newest wins when the account's devices sync it) and the access key this device last saw
 * the relay accept, so a rotation made offline is uploaded later. Not the database key of the
 * profile (that is profile-key.ts).
 */
import { ClientError } from '../errors.js';
import type { ClientDatabase } from './database.js';
import { blob, bytesOrUndefined } from './sql-values.js';
import { checkInteger } from './store-types.js';

/** The account's profile key and its state. `key` is secret. */
export interface AccountProfileKeyRecord {
  /** 32 bytes. */
  readonly key: Uint8Array;
  /** Grows with every new key; between devices the higher version wins. */
  readonly version: number;
  /** The 16-byte access key the relay last accepted from this device, if any. */
  readonly uploadedAccessKey?: Uint8Array;
}

interface Row {
  profile_key: Uint8Array | null;
  version: number | null;
  uploaded_access_key: Uint8Array | null;
}

/** Reads and writes the account profile key; needs the account row. */
export class AccountProfileKeyStore {
  readonly #db: ClientDatabase;

  /** Over the client schema in `db` (migration 0007). */
  constructor(db: ClientDatabase) {
    this.#db = db;
  }

  /** The key, or undefined before one was made or received (or without an account). */
  get(): AccountProfileKeyRecord | undefined {
    const r = this.#db.getCached<Row>(
      ['account', 'account_profile_key_state'],
      `SELECT a.profile_key, s.version, s.uploaded_access_key
       FROM account a LEFT JOIN account_profile_key_state s ON s.id = 1 WHERE a.id = 1`,
    );
    const key = bytesOrUndefined(r?.profile_key);
    if (!r || !key) return undefined;
    const uploaded = bytesOrUndefined(r.uploaded_access_key);
    return { key, version: r.version ?? 0, ...(uploaded ? { uploadedAccessKey: uploaded } : {}) };
  }

  /**
   * Makes `key` the account's profile key at `version`. The uploaded access key is kept: the
   * engine compares it with the new key's to know an upload is due.
   * @throws ClientError INVALID_ARGUMENT for a key that is not 32 bytes or a bad version;
   *   NO_ACCOUNT without an account row. Nothing changes then.
   */
  set(key: Uint8Array, version: number): void {
    if (!(key instanceof Uint8Array) || key.length !== 32) throw new ClientError('INVALID_ARGUMENT', 'a profile key must be 32 bytes');
    checkInteger(version, 'version');
    this.#db.transaction(() => {
      if (this.#db.run('UPDATE account SET profile_key = ? WHERE id = 1', [blob(key)]).changes === 0) throw new ClientError('NO_ACCOUNT');
      this.#db.run(
        `INSERT INTO account_profile_key_state (id, version) VALUES (1, ?)
         ON CONFLICT (id) DO UPDATE SET version = excluded.version`,
        [version],
      );
    });
  }

  /** Records that the relay accepted `accessKey` (16 bytes) for the account. */
  markUploaded(accessKey: Uint8Array): void {
    if (!(accessKey instanceof Uint8Array) || accessKey.length !== 16) throw new ClientError('INVALID_ARGUMENT', 'an access key must be 16 bytes');
    this.#db.run(
      `INSERT INTO account_profile_key_state (id, version, uploaded_access_key) VALUES (1, 0, ?)
       ON CONFLICT (id) DO UPDATE SET uploaded_access_key = excluded.uploaded_access_key`,
      [blob(accessKey)],
    );
  }
}
