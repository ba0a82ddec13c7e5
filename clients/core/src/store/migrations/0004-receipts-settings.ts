// SPDX-License-Identifier: AGPL-3.0-only
/** Receipts per recipient, receipts that came before their message, and contacts' presence tokens (DESIGN §6, §8). */
import type { StoreMigration } from '../database.js';

/**
 * Per-message, per-recipient delivery state of the messages this account sent; receipts for
 * messages not stored here yet; the presence token each contact handed out. Privacy settings live
 * in the `settings` table (one JSON value), so they need no table.
 */
export const migration0004ReceiptsSettings: StoreMigration = {
  version: 4,
  name: '0004-receipts-settings',
  sql: `
-- One row per recipient account of a message this account sent: a 1:1 message has one, a group
-- message one per member it went to. Receipts move a row forward only (pending/failed -> sent ->
-- delivered -> read); the message's own status (messages.status) becomes delivered or read once
-- every row has. Rows go with their message.
CREATE TABLE message_recipients (
  sender_aci TEXT NOT NULL,
  message_id TEXT NOT NULL CHECK (length(message_id) = 32),
  recipient_aci TEXT NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('pending', 'sent', 'delivered', 'read', 'failed')),
  updated_at INTEGER NOT NULL,
  delivered_at INTEGER,
  read_at INTEGER,
  PRIMARY KEY (sender_aci, message_id, recipient_aci),
  FOREIGN KEY (sender_aci, message_id) REFERENCES messages (sender_aci, id) ON DELETE CASCADE
) WITHOUT ROWID;

-- Receipts naming a message of this account that is not stored here (yet): one sent from another
-- device of the account whose transcript is still on its way. Applied when the message arrives;
-- pruned after a day and capped in number, so made-up ids cost nothing lasting.
CREATE TABLE early_receipts (
  message_id TEXT NOT NULL CHECK (length(message_id) = 32),
  recipient_aci TEXT NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('delivered', 'read')),
  received_at INTEGER NOT NULL,
  PRIMARY KEY (message_id, recipient_aci)
) WITHOUT ROWID;
CREATE INDEX early_receipts_age ON early_receipts (received_at);

-- The presence token a contact handed out inside the encryption (Content.presence_token): what
-- lets this account subscribe to the contact's presence on the relay. Secret towards others.
CREATE TABLE contact_presence (
  aci TEXT PRIMARY KEY REFERENCES contacts (aci) ON DELETE CASCADE,
  token BLOB NOT NULL CHECK (length(token) = 32),
  updated_at INTEGER NOT NULL
) WITHOUT ROWID;

-- Messages sent before this migration: one recipient, the peer of their direct conversation.
INSERT INTO message_recipients (sender_aci, message_id, recipient_aci, status, updated_at)
  SELECT m.sender_aci, m.id, c.peer_aci, m.status, m.received_at
  FROM messages m JOIN conversations c ON c.id = m.conversation_id
  WHERE m.direction = 'out' AND m.kind = 'text' AND c.peer_aci IS NOT NULL AND c.peer_aci <> m.sender_aci;
`,
};
