// SPDX-License-Identifier: AGPL-3.0-only
/**
 * Sealed-sender access keys (DESIGN §5): one 16-byte key per account, derived by the clients from
 * the account's profile key and set by any of its devices. The relay compares a sealed sender's
 * key against it (and XORs several for a multi-recipient send), so it is kept as it is, not
 * hashed. A table of its own rather than a column of `accounts`: an account without a key has no
 * row, and the row goes with its account.
 */
import type { Migration } from '../migrate.js';

/** The `access_keys` table. */
export const migration0003AccessKeys: Migration = {
  name: '0003-access-keys',
  sql: `
CREATE TABLE access_keys (
  aci TEXT PRIMARY KEY REFERENCES accounts (aci) ON DELETE CASCADE,
  access_key BLOB NOT NULL CHECK (length(access_key) = 16),
  updated_at INTEGER NOT NULL
) STRICT;
`,
};
