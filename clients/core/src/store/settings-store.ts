// SPDX-License-Identifier: AGPL-3.0-only
/**
 * Small named values of the engine that must survive restarts (next prekey ids, the time of the
 * last signed prekey rotation, privacy switches). Text values; callers encode numbers or JSON.
 */
import { ClientError } from '../errors.js';
import type { ClientDatabase } from './database.js';

/** Named text settings of one profile. */
export class SettingsStore {
  readonly #db: ClientDatabase;

  /** Over the client schema in `db`. */
  constructor(db: ClientDatabase) {
    this.#db = db;
  }

  /** The value of `name`, or undefined. */
  get(name: string): string | undefined {
    const row = this.#db.getCached<{ value: unknown }>(['settings'], 'SELECT value FROM settings WHERE name = ?', [checkName(name)]);
    return typeof row?.value === 'string' ? row.value : undefined;
  }

  /** Sets `name` to `value`. */
  set(name: string, value: string): void {
    if (typeof value !== 'string') throw new ClientError('INVALID_ARGUMENT', 'a setting value must be a string');
    this.#db.run('INSERT OR REPLACE INTO settings (name, value) VALUES (?, ?)', [checkName(name), value]);
  }

  /** Removes `name`; no error when it is not set. */
  delete(name: string): void {
    this.#db.run('DELETE FROM settings WHERE name = ?', [checkName(name)]);
  }
}

function checkName(name: unknown): string {
  if (typeof name !== 'string' || name === '' || name.length > 200) throw new ClientError('INVALID_ARGUMENT', 'a setting name is 1..200 characters');
  return name;
}
