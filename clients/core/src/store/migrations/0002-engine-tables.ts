// SPDX-License-Identifier: AGPL-3.0-only
/** Tables of the engine's pipelines: which message an envelope carried, and incoming history. */
import type { StoreMigration } from '../database.js';

/** Sent-envelope log (resend requests) and history-transfer chunks (device linking). */
export const migration0002EngineTables: StoreMigration = {
  version: 2,
  name: '0002-engine-tables',
  sql: `
-- Which logical message an envelope carried, so a recipient that could not decrypt it can ask
-- for it again. Pruned with the relay's retention window.
CREATE TABLE sent_envelopes (
  envelope_message_id TEXT PRIMARY KEY,
  message_id TEXT NOT NULL,
  destination_aci TEXT NOT NULL,
  sent_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX sent_envelopes_by_time ON sent_envelopes (sent_at);

-- Chunks of a history archive arriving from the approving device; imported and deleted once
-- every chunk of a transfer is here.
CREATE TABLE history_chunks (
  transfer_id TEXT NOT NULL,
  chunk_index INTEGER NOT NULL CHECK (chunk_index >= 0),
  total INTEGER NOT NULL CHECK (total >= 1),
  data BLOB NOT NULL,
  received_at INTEGER NOT NULL,
  PRIMARY KEY (transfer_id, chunk_index)
) WITHOUT ROWID;
`,
};
