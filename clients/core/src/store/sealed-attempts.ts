// SPDX-License-Identifier: AGPL-3.0-only
/**
 * How each outbox entry's saved attempt goes out (DESIGN §5): sealed over the unidentified
 * socket with the access key it was made for, so a retry presents the same key with the same
 * bytes under the same envelope id; or identified only, once the relay refused it sealed. Rows
 * go with their outbox entry.
 */
import { ClientError } from '../errors.js';
import type { ClientDatabase } from './database.js';
import { blob, bytesOrUndefined } from './sql-values.js';

/** The sealed-sender state of one outbox entry. */
export interface SealedAttemptState {
  /** The access key the saved attempt presents (it went sealed); absent: identified. Secret. */
  readonly accessKey?: Uint8Array;
  /** The relay refused a sealed attempt: every later attempt goes identified. */
  readonly identifiedOnly: boolean;
}

/** The `outbox_sealed` table. */
export class SealedAttempts {
  readonly #db: ClientDatabase;

  /** Over the client schema in `db` (migration 0007). */
  constructor(db: ClientDatabase) {
    this.#db = db;
  }

  /** The state of entry `outboxId` (identified, nothing refused, when no row exists). */
  get(outboxId: number): SealedAttemptState {
    const r = this.#db.get<{ access_key: Uint8Array | null; identified_only: number }>(
      'SELECT access_key, identified_only FROM outbox_sealed WHERE outbox_id = ?',
      [outboxId],
    );
    const accessKey = bytesOrUndefined(r?.access_key);
    return { ...(accessKey ? { accessKey } : {}), identifiedOnly: r?.identified_only === 1 };
  }

  /**
   * Records the access key of the attempt just saved for `outboxId` (undefined: the attempt is
   * identified). Call it in the transaction that saves the attempt.
   */
  setAccessKey(outboxId: number, accessKey: Uint8Array | undefined): void {
    if (accessKey !== undefined && (!(accessKey instanceof Uint8Array) || accessKey.length !== 16)) {
      throw new ClientError('INVALID_ARGUMENT', 'an access key must be 16 bytes');
    }
    if (accessKey === undefined) {
      this.#db.run('UPDATE outbox_sealed SET access_key = NULL WHERE outbox_id = ?', [outboxId]);
      return;
    }
    this.#db.run(
      `INSERT INTO outbox_sealed (outbox_id, access_key) VALUES (?, ?)
       ON CONFLICT (outbox_id) DO UPDATE SET access_key = excluded.access_key`,
      [outboxId, blob(accessKey)],
    );
  }

  /** The relay refused entry `outboxId` sealed: its attempt is forgotten and every later one is identified. */
  setIdentifiedOnly(outboxId: number): void {
    this.#db.run(
      `INSERT INTO outbox_sealed (outbox_id, access_key, identified_only) VALUES (?, NULL, 1)
       ON CONFLICT (outbox_id) DO UPDATE SET access_key = NULL, identified_only = 1`,
      [outboxId],
    );
  }
}
