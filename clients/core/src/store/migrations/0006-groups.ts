// SPDX-License-Identifier: AGPL-3.0-only
/** Groups (DESIGN §7): their change logs, state, sender keys and multi-recipient sends. */
import type { StoreMigration } from '../database.js';

/** The group tables, and `group` as a conversation kind. */
export const migration0006Groups: StoreMigration = {
  version: 6,
  name: '0006-groups',
  sql: `
-- Groups this device knows. The change log (group_changes) decides a group's state; the state
-- columns here and group_members cache its replay and are rewritten with every change.
-- own_distribution_id is this device's current sender key for the group (a UUID): replaced when
-- a member leaves or is removed, so nothing sent after that can be read with the old key.
CREATE TABLE groups (
  id TEXT PRIMARY KEY CHECK (length(id) = 64),
  conversation_id TEXT NOT NULL UNIQUE REFERENCES conversations (id) ON DELETE CASCADE,
  title TEXT NOT NULL,
  revision INTEGER NOT NULL CHECK (revision >= 0),
  max_lamport INTEGER NOT NULL CHECK (max_lamport >= 0),
  is_member INTEGER NOT NULL CHECK (is_member IN (0, 1)),
  creator_aci TEXT,
  own_distribution_id TEXT,
  created_at INTEGER NOT NULL
);

-- Every change held, as validated JSON (the engine re-checks it when it loads it).
CREATE TABLE group_changes (
  group_id TEXT NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
  change_id TEXT NOT NULL CHECK (length(change_id) = 32),
  lamport INTEGER NOT NULL CHECK (lamport >= 0),
  author_aci TEXT NOT NULL,
  body TEXT NOT NULL,
  received_at INTEGER NOT NULL,
  PRIMARY KEY (group_id, change_id)
) WITHOUT ROWID;
CREATE INDEX group_changes_order ON group_changes (group_id, lamport, author_aci, change_id);

-- The members of the replayed state, in the order they were added.
CREATE TABLE group_members (
  group_id TEXT NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
  aci TEXT NOT NULL,
  address TEXT NOT NULL,
  admin INTEGER NOT NULL CHECK (admin IN (0, 1)),
  position INTEGER NOT NULL,
  PRIMARY KEY (group_id, aci)
) WITHOUT ROWID;
CREATE INDEX group_members_by_aci ON group_members (aci);

-- Which sender keys (distribution ids) each member device handed this device for a group, so
-- that a removed member's keys can be dropped.
CREATE TABLE group_sender_keys (
  group_id TEXT NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
  sender_aci TEXT NOT NULL,
  sender_device INTEGER NOT NULL CHECK (sender_device BETWEEN 1 AND 127),
  distribution_id TEXT NOT NULL,
  received_at INTEGER NOT NULL,
  PRIMARY KEY (group_id, sender_aci, sender_device, distribution_id)
) WITHOUT ROWID;

-- Member devices the relay has committed this device's sender key for (per distribution id):
-- they need no distribution message before the next group send.
CREATE TABLE group_key_holders (
  group_id TEXT NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
  distribution_id TEXT NOT NULL,
  aci TEXT NOT NULL,
  device_id INTEGER NOT NULL CHECK (device_id BETWEEN 1 AND 127),
  PRIMARY KEY (group_id, distribution_id, aci, device_id)
) WITHOUT ROWID;

-- Outbox entries that carry this device's sender key to one member account; when the relay
-- commits one, its devices become holders.
CREATE TABLE group_key_sends (
  outbox_id INTEGER PRIMARY KEY REFERENCES outbox (id) ON DELETE CASCADE,
  group_id TEXT NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
  distribution_id TEXT NOT NULL,
  destination_aci TEXT NOT NULL
);
CREATE INDEX group_key_sends_by_group ON group_key_sends (group_id, distribution_id);

-- Group messages waiting for their one multi-recipient upload. Like the outbox, the envelope id
-- is fixed at queueing and the sealed payload is saved before the first attempt, so a retry after
-- a dropped connection or a crash uploads the same bytes under the same id.
CREATE TABLE group_outbox (
  id INTEGER PRIMARY KEY,
  group_id TEXT NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
  message_id TEXT CHECK (message_id IS NULL OR length(message_id) = 32),
  envelope_message_id TEXT NOT NULL CHECK (length(envelope_message_id) = 32),
  content BLOB NOT NULL,
  timestamp INTEGER NOT NULL,
  urgent INTEGER NOT NULL CHECK (urgent IN (0, 1)),
  created_at INTEGER NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  next_attempt_at INTEGER NOT NULL,
  last_error TEXT,
  distribution_id TEXT,
  payload BLOB,
  encrypted_at INTEGER
);
CREATE INDEX group_outbox_due ON group_outbox (next_attempt_at, id);
`,
  // A group's messages live in a conversation of kind 'group'. Widening the CHECK this way (the
  // documented procedure for changing a constraint in place) keeps every column other
  // migrations gave the table, which a copy into a new table would have to name.
  after(db) {
    const version = db.prepare('PRAGMA schema_version', { pluck: true }).get() as number;
    db.exec('PRAGMA writable_schema = ON');
    db.exec(
      `UPDATE sqlite_schema SET sql = replace(sql, 'CHECK (kind IN (''direct''))', 'CHECK (kind IN (''direct'', ''group''))')
       WHERE type = 'table' AND name = 'conversations'`,
    );
    db.exec(`PRAGMA schema_version = ${version + 1}`);
    db.exec('PRAGMA writable_schema = OFF');
  },
};
