// SPDX-License-Identifier: AGPL-3.0-only
/**
 * Presence tokens (DESIGN §8): one per account at most, stored as SHA-256 like every other
 * bearer secret, so a copy of keys.db does not let anyone watch an account's presence. No row
 * means presence is off. The row goes with its account.
 */
import type { Migration } from '../migrate.js';

/** The `presence_tokens` table. */
export const migration0004PresenceTokens: Migration = {
  name: '0004-presence-tokens',
  sql: `
CREATE TABLE presence_tokens (
  aci TEXT PRIMARY KEY REFERENCES accounts (aci) ON DELETE CASCADE,
  token_hash BLOB NOT NULL CHECK (length(token_hash) = 32),
  updated_at INTEGER NOT NULL
) STRICT;
`,
};
