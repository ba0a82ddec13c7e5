// SPDX-License-Identifier: AGPL-3.0-only
/** The attachment pointers of messages (DESIGN §9). */
import type { StoreMigration } from '../database.js';

/** One row per file of a message: where its encrypted blob is, how to open it, where it is kept here. */
export const migration0003Attachments: StoreMigration = {
  version: 3,
  name: '0003-attachments',
  sql: `
-- The pointers a DataMessage carried (and one's own sent files), kept with their message: they
-- go when it is deleted. key is secret (it opens the file); the database is encrypted whole.
-- local_path is where this device keeps the file: the file it sent, or where it downloaded it.
CREATE TABLE attachments (
  sender_aci TEXT NOT NULL,
  message_id TEXT NOT NULL CHECK (length(message_id) = 32),
  idx INTEGER NOT NULL CHECK (idx BETWEEN 0 AND 99),
  blob_id TEXT NOT NULL CHECK (length(blob_id) = 32),
  domain TEXT NOT NULL,
  key BLOB NOT NULL CHECK (length(key) = 64),
  digest BLOB NOT NULL CHECK (length(digest) = 32),
  size INTEGER NOT NULL CHECK (size >= 0),
  content_type TEXT NOT NULL,
  file_name TEXT NOT NULL,
  local_path TEXT,
  PRIMARY KEY (sender_aci, message_id, idx),
  FOREIGN KEY (sender_aci, message_id) REFERENCES messages (sender_aci, id) ON DELETE CASCADE
) WITHOUT ROWID;
CREATE INDEX attachments_by_message ON attachments (message_id);
`,
};
