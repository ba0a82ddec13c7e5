// SPDX-License-Identifier: AGPL-3.0-only
/** What happens to a message after it was sent (DESIGN §6): edits, deletes, reactions, replies, expiry; and the block list. */
import type { StoreMigration } from '../database.js';

/**
 * Columns on `messages` for expiry and tombstones; tables for edit history, reactions, quotes,
 * per-conversation disappearing-message timers, actions waiting for their target, and blocked
 * contacts. Every per-message row belongs to its message (deleted with it).
 */
export const migration0005MessageActions: StoreMigration = {
  version: 5,
  name: '0005-message-actions',
  sql: `
-- expire_timer: the disappearing-message timer (seconds) the message carried; expires_at:
-- sent_at + that timer, when every device deletes the message (NULL: never). edited_at: the
-- sender's timestamp of the edit whose text is shown. deleted: 'everyone' for a tombstone of a
-- message its author deleted for everyone (body and everything else about it are gone; the row
-- stays so a redelivery is not stored again), 'local' for a message deleted on this device only
-- (hidden). timer_update: on a "disappearing messages set to …" entry, the seconds it set.
ALTER TABLE messages ADD COLUMN expire_timer INTEGER;
ALTER TABLE messages ADD COLUMN expires_at INTEGER;
ALTER TABLE messages ADD COLUMN edited_at INTEGER;
ALTER TABLE messages ADD COLUMN deleted TEXT CHECK (deleted IN ('everyone', 'local'));
ALTER TABLE messages ADD COLUMN deleted_at INTEGER;
ALTER TABLE messages ADD COLUMN timer_update INTEGER;
CREATE INDEX messages_expiry ON messages (expires_at) WHERE expires_at IS NOT NULL;

-- Every version of an edited message, the original included (version_id = the message's own
-- id), ranked by (lamport, version_id); messages.body holds the highest one's text.
CREATE TABLE message_edits (
  sender_aci TEXT NOT NULL,
  message_id TEXT NOT NULL CHECK (length(message_id) = 32),
  version_id TEXT NOT NULL CHECK (length(version_id) = 32),
  lamport INTEGER NOT NULL CHECK (lamport >= 0),
  sent_at INTEGER NOT NULL,
  body TEXT NOT NULL,
  PRIMARY KEY (sender_aci, message_id, version_id),
  FOREIGN KEY (sender_aci, message_id) REFERENCES messages (sender_aci, id) ON DELETE CASCADE
) WITHOUT ROWID;

-- One reaction per (target, reactor): the highest (lamport, action_id) wins; emoji NULL is a
-- reaction taken back (kept, so an older reaction arriving late cannot come back).
CREATE TABLE reactions (
  target_author TEXT NOT NULL,
  target_id TEXT NOT NULL CHECK (length(target_id) = 32),
  reactor_aci TEXT NOT NULL,
  emoji TEXT,
  lamport INTEGER NOT NULL CHECK (lamport >= 0),
  action_id TEXT NOT NULL CHECK (length(action_id) = 32),
  sent_at INTEGER NOT NULL,
  PRIMARY KEY (target_author, target_id, reactor_aci),
  FOREIGN KEY (target_author, target_id) REFERENCES messages (sender_aci, id) ON DELETE CASCADE
) WITHOUT ROWID;

-- The message a reply quotes, with the excerpt the replier saw (shown when the target is not here).
CREATE TABLE message_quotes (
  sender_aci TEXT NOT NULL,
  message_id TEXT NOT NULL CHECK (length(message_id) = 32),
  target_author TEXT NOT NULL,
  target_id TEXT NOT NULL CHECK (length(target_id) = 32),
  text TEXT NOT NULL,
  PRIMARY KEY (sender_aci, message_id),
  FOREIGN KEY (sender_aci, message_id) REFERENCES messages (sender_aci, id) ON DELETE CASCADE
) WITHOUT ROWID;
CREATE INDEX message_quotes_target ON message_quotes (target_author, target_id);

-- A conversation's disappearing-message timer: the change ranked highest by
-- (lamport, sender_aci, message_id), so concurrent changes converge on every device.
CREATE TABLE conversation_timers (
  conversation_id TEXT PRIMARY KEY REFERENCES conversations (id) ON DELETE CASCADE,
  seconds INTEGER NOT NULL CHECK (seconds >= 0),
  lamport INTEGER NOT NULL CHECK (lamport >= 0),
  sender_aci TEXT NOT NULL,
  message_id TEXT NOT NULL CHECK (length(message_id) = 32),
  updated_at INTEGER NOT NULL
) WITHOUT ROWID;

-- Edits, deletes and reactions that arrived before their target: applied when it arrives,
-- pruned after the relay's retention and capped in number. payload is the action as JSON.
CREATE TABLE pending_actions (
  target_author TEXT NOT NULL,
  target_id TEXT NOT NULL CHECK (length(target_id) = 32),
  sender_aci TEXT NOT NULL,
  action_id TEXT NOT NULL CHECK (length(action_id) = 32),
  kind TEXT NOT NULL CHECK (kind IN ('edit', 'delete', 'reaction')),
  payload TEXT NOT NULL,
  received_at INTEGER NOT NULL,
  PRIMARY KEY (target_author, target_id, sender_aci, action_id)
) WITHOUT ROWID;
CREATE INDEX pending_actions_age ON pending_actions (received_at);

-- Contacts this account blocks (the same set on every device of the account; its version is a
-- setting). Their messages are decrypted (sessions stay in step) and dropped.
CREATE TABLE blocked_contacts (
  aci TEXT PRIMARY KEY,
  address TEXT,
  blocked_at INTEGER NOT NULL
) WITHOUT ROWID;
`,
};
