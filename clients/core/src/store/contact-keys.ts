// SPDX-License-Identifier: AGPL-3.0-only
/**
 * Contacts' profile keys (DESIGN §5): the 32-byte key each contact sends inside the encryption
 * (`Content.profile_key`) and the 16-byte access key derived from it, which a sealed send to
 * that contact presents to the relay. Rows are written only for an ACI that decryption proved
 * (the caller's duty); a key the relay refused is dropped, so sends go identified until the
 * contact sends a new one. Not to be confused with profile-key.ts, the database key.
 */
import type { Aci } from '@parley/protocol';
import { ClientError } from '../errors.js';
import type { ClientDatabase } from './database.js';
import { blob, copyBytes } from './sql-values.js';
import { checkAci, checkInteger } from './store-types.js';

/** Bytes of a profile key. */
export const PROFILE_KEY_LENGTH = 32;
/** Bytes of an access key. */
export const ACCESS_KEY_LENGTH = 16;

/** A contact's profile key with its access key. Both secret. */
export interface ContactKeyRecord {
  readonly aci: Aci;
  readonly profileKey: Uint8Array;
  readonly accessKey: Uint8Array;
  /** When it was stored, milliseconds since the epoch. */
  readonly updatedAt: number;
}

/** What {@link ContactKeys.save} did. */
export type ContactKeySaveResult = 'new' | 'changed' | 'unchanged';

interface Row {
  aci: string;
  profile_key: Uint8Array;
  access_key: Uint8Array;
  updated_at: number;
}

function checkBytes(bytes: unknown, length: number, what: string): Uint8Array {
  if (!(bytes instanceof Uint8Array) || bytes.length !== length) throw new ClientError('INVALID_ARGUMENT', `${what} must be ${length} bytes`);
  return bytes;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** The `contact_profile_keys` table. */
export class ContactKeys {
  readonly #db: ClientDatabase;

  /** Over the client schema in `db` (migration 0007). */
  constructor(db: ClientDatabase) {
    this.#db = db;
  }

  /** The key stored for `aci`, or undefined. */
  get(aci: Aci): ContactKeyRecord | undefined {
    const r = this.#db.getCached<Row>(['contact_profile_keys'], 'SELECT * FROM contact_profile_keys WHERE aci = ?', [checkAci(aci, 'aci')]);
    return r && { aci: r.aci as Aci, profileKey: copyBytes(r.profile_key), accessKey: copyBytes(r.access_key), updatedAt: r.updated_at };
  }

  /**
   * Stores `profileKey` (and its `accessKey`) for `aci`, replacing an older one.
   * @throws ClientError INVALID_ARGUMENT for a key of the wrong length or a bad ACI (nothing stored).
   */
  save(aci: Aci, profileKey: Uint8Array, accessKey: Uint8Array, nowMs: number): ContactKeySaveResult {
    checkAci(aci, 'aci');
    checkBytes(profileKey, PROFILE_KEY_LENGTH, 'a profile key');
    checkBytes(accessKey, ACCESS_KEY_LENGTH, 'an access key');
    checkInteger(nowMs, 'nowMs');
    const before = this.get(aci);
    if (before && sameBytes(before.profileKey, profileKey)) return 'unchanged';
    this.#db.run('INSERT OR REPLACE INTO contact_profile_keys (aci, profile_key, access_key, updated_at) VALUES (?, ?, ?, ?)', [
      aci,
      blob(profileKey),
      blob(accessKey),
      nowMs,
    ]);
    return before ? 'changed' : 'new';
  }

  /**
   * Drops `aci`'s key if its access key is still `accessKey` (the one the relay refused); a key
   * that arrived since is kept. Returns whether a key was dropped.
   */
  dropIfStale(aci: Aci, accessKey: Uint8Array): boolean {
    const current = this.get(aci);
    if (!current || !sameBytes(current.accessKey, accessKey)) return false;
    return this.#db.run('DELETE FROM contact_profile_keys WHERE aci = ?', [aci]).changes > 0;
  }

  /** ACIs with a stored key (contacts a sealed send can reach). */
  acis(): Aci[] {
    return this.#db.all<{ aci: string }>('SELECT aci FROM contact_profile_keys ORDER BY aci').map((r) => r.aci as Aci);
  }
}
