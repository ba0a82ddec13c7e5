// SPDX-License-Identifier: AGPL-3.0-only
/**
 * Two things a message may need after the fact: the actions this device sent (edits, reactions,
 * deletes, timer changes) kept by envelope id, so that a peer who could not decrypt one can ask
 * for it again as it can for a message; and read syncs that arrived from one's own device before
 * the message they name, kept until the message arrives and then applied to it.
 */
import type { StoreMigration } from '../database.js';

/** Sent actions and early read syncs. */
export const migration0008ResendsEarlyReads: StoreMigration = {
  version: 8,
  name: '0008-resends-early-reads',
  sql: `
-- An action's Content as queued (before the profile key is added), by the envelope id it went
-- under: a resend request names that id. Kept 30 days, as sent_envelopes. Secret.
CREATE TABLE sent_actions (
  envelope_message_id TEXT PRIMARY KEY CHECK (length(envelope_message_id) = 32),
  destination_aci TEXT NOT NULL,
  content BLOB NOT NULL,
  sent_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX sent_actions_by_time ON sent_actions (sent_at);

-- A read sync from this account's other device for a message not here yet: applied when the
-- message arrives (it is stored read). Bounded by count and kept 24 hours.
CREATE TABLE early_read_syncs (
  sender_aci TEXT NOT NULL,
  message_id TEXT NOT NULL CHECK (length(message_id) = 32),
  received_at INTEGER NOT NULL,
  PRIMARY KEY (sender_aci, message_id)
) WITHOUT ROWID;
CREATE INDEX early_read_syncs_age ON early_read_syncs (received_at);
`,
};
