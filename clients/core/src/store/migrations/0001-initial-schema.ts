// SPDX-License-Identifier: AGPL-3.0-only
/**
 * The first schema of the client store. Shipped migrations are never edited: change the schema
 * with a new migration appended to STORE_MIGRATIONS.
 */
import type { StoreMigration } from '../database.js';

/** Account, protocol state, contacts, conversations, messages with their search index, outbox, seen envelopes, settings. */
export const migration0001InitialSchema: StoreMigration = {
  version: 1,
  name: '0001-initial-schema',
  sql: `
-- The local account: one row. identity_key_pair, auth_secret and profile_key are secrets.
CREATE TABLE account (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  aci TEXT NOT NULL,
  device_id INTEGER NOT NULL CHECK (device_id BETWEEN 1 AND 127),
  username TEXT NOT NULL,
  domain TEXT NOT NULL,
  server_url TEXT NOT NULL,
  auth_secret BLOB NOT NULL,
  identity_key_pair BLOB NOT NULL,
  identity_key BLOB NOT NULL,
  registration_id INTEGER NOT NULL CHECK (registration_id BETWEEN 1 AND 16383),
  profile_key BLOB
);

-- Peers, by account. The identity columns are the identity store's trust state: the key last
-- seen, the key the user trusts for sending (first seen, or accepted), and the key the user
-- verified (safety number compared). The flags are derived, so they cannot drift from the keys.
CREATE TABLE contacts (
  aci TEXT PRIMARY KEY,
  address TEXT UNIQUE,
  identity_key BLOB,
  trusted_identity_key BLOB,
  verified_identity_key BLOB,
  identity_changed INTEGER GENERATED ALWAYS AS (identity_key IS NOT NULL AND trusted_identity_key IS NOT identity_key) VIRTUAL,
  verified INTEGER GENERATED ALWAYS AS (verified_identity_key IS NOT NULL AND verified_identity_key = identity_key) VIRTUAL,
  updated_at INTEGER NOT NULL
);

CREATE TABLE sessions (
  aci TEXT NOT NULL,
  device_id INTEGER NOT NULL,
  record BLOB NOT NULL,
  PRIMARY KEY (aci, device_id)
) WITHOUT ROWID;

CREATE TABLE pre_keys (
  key_id INTEGER PRIMARY KEY,
  record BLOB NOT NULL,
  stored_at INTEGER NOT NULL
);

CREATE TABLE signed_pre_keys (
  key_id INTEGER PRIMARY KEY,
  record BLOB NOT NULL,
  stored_at INTEGER NOT NULL
);

CREATE TABLE kyber_pre_keys (
  key_id INTEGER PRIMARY KEY,
  record BLOB NOT NULL,
  last_resort INTEGER NOT NULL CHECK (last_resort IN (0, 1)),
  stored_at INTEGER NOT NULL
);

-- (signed prekey, base key) pairs a last-resort Kyber key was used with: a repeat is a replay.
CREATE TABLE kyber_pre_key_uses (
  key_id INTEGER NOT NULL REFERENCES kyber_pre_keys (key_id) ON DELETE CASCADE,
  signed_pre_key_id INTEGER NOT NULL,
  base_key BLOB NOT NULL,
  PRIMARY KEY (key_id, signed_pre_key_id, base_key)
) WITHOUT ROWID;

CREATE TABLE sender_keys (
  address TEXT NOT NULL,
  distribution_id TEXT NOT NULL,
  record BLOB NOT NULL,
  PRIMARY KEY (address, distribution_id)
) WITHOUT ROWID;

CREATE TABLE conversations (
  id TEXT PRIMARY KEY,
  kind TEXT NOT NULL CHECK (kind IN ('direct')),
  peer_aci TEXT UNIQUE,
  created_at INTEGER NOT NULL,
  last_activity_at INTEGER NOT NULL
);

CREATE TABLE messages (
  row_id INTEGER PRIMARY KEY,
  id TEXT NOT NULL CHECK (length(id) = 32),
  conversation_id TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
  sender_aci TEXT NOT NULL,
  sender_device INTEGER NOT NULL,
  direction TEXT NOT NULL CHECK (direction IN ('in', 'out')),
  kind TEXT NOT NULL CHECK (kind IN ('text', 'decryption-error', 'identity-change', 'system')),
  body TEXT NOT NULL,
  sent_at INTEGER NOT NULL,
  received_at INTEGER NOT NULL,
  lamport INTEGER NOT NULL CHECK (lamport >= 0),
  status TEXT NOT NULL CHECK (status IN ('pending', 'sent', 'delivered', 'read', 'failed')),
  UNIQUE (sender_aci, id)
);
CREATE INDEX messages_display_order ON messages (conversation_id, lamport, sender_aci, id);
CREATE INDEX messages_unread ON messages (conversation_id) WHERE direction = 'in' AND kind = 'text' AND status <> 'read';
CREATE INDEX messages_outgoing ON messages (id) WHERE direction = 'out';

-- Search over text messages. External content: the text lives once, in messages.body, and
-- snippets are read from there; the triggers keep the index in step.
CREATE VIRTUAL TABLE messages_fts USING fts5 (
  body,
  content = 'messages',
  content_rowid = 'row_id',
  tokenize = 'signal_tokenizer'
);
CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages WHEN new.kind = 'text' BEGIN
  INSERT INTO messages_fts (rowid, body) VALUES (new.row_id, new.body);
END;
CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages WHEN old.kind = 'text' BEGIN
  INSERT INTO messages_fts (messages_fts, rowid, body) VALUES ('delete', old.row_id, old.body);
END;
CREATE TRIGGER messages_fts_update AFTER UPDATE OF body, kind ON messages BEGIN
  INSERT INTO messages_fts (messages_fts, rowid, body) SELECT 'delete', old.row_id, old.body WHERE old.kind = 'text';
  INSERT INTO messages_fts (rowid, body) SELECT new.row_id, new.body WHERE new.kind = 'text';
END;

-- Durable queued sends, one per destination account. The envelope message id is fixed when the
-- entry is created and the ciphertexts once they are made, so every retry sends the same bytes
-- under the same id (the relay dedups by id and refuses a different body: ID_REUSED).
CREATE TABLE outbox (
  id INTEGER PRIMARY KEY,
  conversation_id TEXT REFERENCES conversations (id) ON DELETE SET NULL,
  destination_aci TEXT NOT NULL,
  destination_address TEXT NOT NULL,
  message_id TEXT CHECK (message_id IS NULL OR length(message_id) = 32),
  envelope_message_id TEXT NOT NULL CHECK (length(envelope_message_id) = 32),
  content BLOB NOT NULL,
  timestamp INTEGER NOT NULL,
  urgent INTEGER NOT NULL CHECK (urgent IN (0, 1)),
  created_at INTEGER NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  next_attempt_at INTEGER NOT NULL,
  last_error TEXT,
  encrypted_at INTEGER,
  UNIQUE (destination_aci, envelope_message_id)
);
CREATE INDEX outbox_due ON outbox (next_attempt_at, id);
CREATE INDEX outbox_message ON outbox (message_id) WHERE message_id IS NOT NULL;

CREATE TABLE outbox_ciphertexts (
  outbox_id INTEGER NOT NULL REFERENCES outbox (id) ON DELETE CASCADE,
  device_id INTEGER NOT NULL,
  registration_id INTEGER NOT NULL,
  type INTEGER NOT NULL,
  body BLOB NOT NULL,
  PRIMARY KEY (outbox_id, device_id)
) WITHOUT ROWID;

-- Envelopes that carried nothing to show (sync, receipts): remembered to drop redeliveries.
CREATE TABLE seen_envelopes (
  source_aci TEXT NOT NULL,
  source_device INTEGER NOT NULL,
  envelope_message_id TEXT NOT NULL,
  received_at INTEGER NOT NULL,
  PRIMARY KEY (source_aci, source_device, envelope_message_id)
) WITHOUT ROWID;
CREATE INDEX seen_envelopes_age ON seen_envelopes (received_at);

CREATE TABLE settings (
  name TEXT PRIMARY KEY,
  value TEXT NOT NULL
) WITHOUT ROWID;
`,
};
