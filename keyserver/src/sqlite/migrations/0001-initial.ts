// SPDX-License-Identifier: AGPL-3.0-only
/**
 * The first schema of keys.db. Public data only: identity public keys, public prekeys and their
 * signatures, SHA-256 hashes of auth secrets and link tokens. ACIs are stored in their canonical
 * text form so an operator can read the database with the sqlite3 shell.
 */
import type { Migration } from '../migrate.js';

/** Accounts, devices with their signed and last-resort keys, one-time prekeys, link tokens. */
export const migration0001Initial: Migration = {
  name: '0001-initial',
  sql: `
CREATE TABLE accounts (
  aci TEXT PRIMARY KEY,
  username TEXT NOT NULL UNIQUE CHECK (username = lower(username)),
  identity_key BLOB NOT NULL,
  created_at INTEGER NOT NULL
) STRICT;

-- The signed EC prekey and the last-resort Kyber prekey live in the device row: every device
-- has exactly one of each at all times, which NOT NULL enforces.
CREATE TABLE devices (
  aci TEXT NOT NULL REFERENCES accounts (aci) ON DELETE CASCADE,
  device_id INTEGER NOT NULL CHECK (device_id BETWEEN 1 AND 127),
  registration_id INTEGER NOT NULL,
  secret_hash BLOB NOT NULL,
  created_at INTEGER NOT NULL,
  signed_prekey_id INTEGER NOT NULL,
  signed_prekey BLOB NOT NULL,
  signed_prekey_signature BLOB NOT NULL,
  last_resort_kyber_id INTEGER NOT NULL,
  last_resort_kyber BLOB NOT NULL,
  last_resort_kyber_signature BLOB NOT NULL,
  PRIMARY KEY (aci, device_id)
) STRICT;

-- id (the rowid) orders keys by upload, so claims hand out the oldest key first.
CREATE TABLE one_time_prekeys (
  id INTEGER PRIMARY KEY,
  aci TEXT NOT NULL,
  device_id INTEGER NOT NULL,
  key_id INTEGER NOT NULL,
  public_key BLOB NOT NULL,
  UNIQUE (aci, device_id, key_id),
  FOREIGN KEY (aci, device_id) REFERENCES devices (aci, device_id) ON DELETE CASCADE
) STRICT;
CREATE INDEX one_time_prekeys_by_age ON one_time_prekeys (aci, device_id, id);

CREATE TABLE one_time_kyber_prekeys (
  id INTEGER PRIMARY KEY,
  aci TEXT NOT NULL,
  device_id INTEGER NOT NULL,
  key_id INTEGER NOT NULL,
  public_key BLOB NOT NULL,
  signature BLOB NOT NULL,
  UNIQUE (aci, device_id, key_id),
  FOREIGN KEY (aci, device_id) REFERENCES devices (aci, device_id) ON DELETE CASCADE
) STRICT;
CREATE INDEX one_time_kyber_prekeys_by_age ON one_time_kyber_prekeys (aci, device_id, id);

CREATE TABLE link_tokens (
  token_hash BLOB PRIMARY KEY,
  aci TEXT NOT NULL REFERENCES accounts (aci) ON DELETE CASCADE,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL
) STRICT;
CREATE INDEX link_tokens_by_expiry ON link_tokens (expires_at);
CREATE INDEX link_tokens_by_account ON link_tokens (aci);
`,
};
