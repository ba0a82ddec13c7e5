// SPDX-License-Identifier: AGPL-3.0-only
/**
 * Hybrid fan-out (DESIGN §5): a multi-recipient send stores its shared body once and each device
 * envelope holds only its small per-recipient header and a reference to the body.
 *
 * - `shared_body`: a rowid table (large blobs) with a compact integer `body_id` that envelopes
 *   refer to and the 32-byte `digest` the port names a body by (unique: a retry, or another
 *   request of the same send, finds the stored body instead of writing it again).
 * - `envelope.body_id`: NULL for an ordinary envelope (ADD COLUMN is a constant-time change), with
 *   a partial index over the others. That index is the reference count: a body is referenced
 *   exactly while an envelope row names it, so there is no counter that could drift.
 * - One trigger deletes a body together with the last envelope that names it, whatever deletes
 *   the envelope (an ack by range or by seq, the expiry sweep, a dropped queue, an expired dedup
 *   entry replaced at enqueue). A body therefore never outlives its envelopes and is never deleted
 *   while one refers to it, and no code path can forget to release it. The WHEN clause leaves
 *   ordinary envelopes at the cost of one NULL test; a body row is never updated, so its blob is
 *   never rewritten.
 */
import type { SqliteMigration } from '../sqlite-migrations.js';

/** See the module comment. */
export const migration0002SharedBodies: SqliteMigration = {
  version: 2,
  name: '0002-shared-bodies',
  sql: `
CREATE TABLE shared_body (
  body_id INTEGER PRIMARY KEY,
  digest BLOB NOT NULL UNIQUE,
  content BLOB NOT NULL
);

ALTER TABLE envelope ADD COLUMN body_id INTEGER;
CREATE INDEX envelope_by_body ON envelope (body_id) WHERE body_id IS NOT NULL;

CREATE TRIGGER envelope_body_release AFTER DELETE ON envelope WHEN old.body_id IS NOT NULL
BEGIN
  DELETE FROM shared_body WHERE body_id = old.body_id
    AND NOT EXISTS (SELECT 1 FROM envelope WHERE body_id = old.body_id);
END;
`,
};
