// SPDX-License-Identifier: AGPL-3.0-only
/**
 * Sealed sender (DESIGN §5): contacts' profile keys, the account profile key's version and
 * upload state, pinned sender-certificate trust roots, the cached sender certificate, and which
 * outbox attempts went sealed. (The account's own profile key lives in `account.profile_key`
 * since 0001. None of this is the *database* key of the profile, see profile-key.ts.)
 */
import type { StoreMigration } from '../database.js';

/** Tables of sealed sender. */
export const migration0007ProfileKeys: StoreMigration = {
  version: 7,
  name: '0007-profile-keys',
  sql: `
-- Profile keys contacts sent us inside the encryption (Content.profile_key), bound to the ACI
-- that decryption proved, with the access key derived from each: what a sealed send to that
-- contact presents to the relay. Secret (the database is encrypted whole).
CREATE TABLE contact_profile_keys (
  aci TEXT PRIMARY KEY,
  profile_key BLOB NOT NULL CHECK (length(profile_key) = 32),
  access_key BLOB NOT NULL CHECK (length(access_key) = 16),
  updated_at INTEGER NOT NULL
) WITHOUT ROWID;

-- One row: the version of the account profile key in account.profile_key (newest wins between
-- the account's devices) and the access key this device last saw the relay accept (a rotation
-- made offline is uploaded on the next connection).
CREATE TABLE account_profile_key_state (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  version INTEGER NOT NULL CHECK (version >= 0),
  uploaded_access_key BLOB CHECK (uploaded_access_key IS NULL OR length(uploaded_access_key) = 16)
);

-- Sender-certificate trust roots, pinned per domain from the relay's /v1/info at registration
-- or link (or first use): a different root offered later is refused, never swapped in, and kept
-- in refused_key (to report it) until the relay announces the pinned one again.
CREATE TABLE sender_trust_roots (
  domain TEXT PRIMARY KEY,
  public_key BLOB NOT NULL CHECK (length(public_key) = 33),
  pinned_at INTEGER NOT NULL,
  refused_key BLOB
) WITHOUT ROWID;

-- This device's current sender certificate from its relay, reused until shortly before expiry.
CREATE TABLE sender_certificate (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  certificate BLOB NOT NULL,
  expires_at INTEGER NOT NULL
);

-- How an outbox entry's saved attempt goes out: sealed over the unidentified socket with this
-- access key (a retry presents the same key with the same bytes), or identified only, after
-- the relay refused a sealed attempt. No row: identified, nothing refused.
CREATE TABLE outbox_sealed (
  outbox_id INTEGER PRIMARY KEY REFERENCES outbox (id) ON DELETE CASCADE,
  access_key BLOB CHECK (access_key IS NULL OR length(access_key) = 16),
  identified_only INTEGER NOT NULL DEFAULT 0 CHECK (identified_only IN (0, 1))
);
`,
};
