// SPDX-License-Identifier: AGPL-3.0-only
/**
 * The envelope store's first schema.
 *
 * - `device_queue`: one row per device queue ever used, holding its sequence counter and depth.
 *   The row outlives the queue's envelopes and `dropQueue`, so a sequence number is never handed
 *   out twice. `queue_id` is a compact surrogate so envelope and dedup rows do not repeat the ACI.
 * - `envelope`: a rowid table (large ciphertext rows belong in a rowid table: a WITHOUT ROWID
 *   table copies whole rows into its interior pages) with a unique `(queue_id, seq)` index. The
 *   index serves reads and acks in sequence order and is also the fence DESIGN §12 asks for: the
 *   store refuses a second envelope with the same `(device, seq)` whatever the counter says.
 *   `expires_at` is here so reads can skip expired envelopes without a join.
 * - `message_dedup`: `(queue_id, message_id) → (content_hash, seq, expires_at)`, small rows keyed
 *   by the lookup (WITHOUT ROWID: the lookup is the primary key). Every envelope has exactly one
 *   dedup row with its seq and expiry, so the expiry sweep walks `message_dedup_by_expiry` and
 *   deletes each expired entry's envelope through the unique index: the envelope table needs no
 *   expiry index of its own, and the hot path writes one table row and two index entries less.
 *
 * Hybrid fan-out (DESIGN §5, group sends) fits without rebuilding a table: a later migration
 * adds `shared_body (body_id INTEGER PRIMARY KEY, content BLOB, expires_at, refs)` and
 * `envelope.body_id` (ADD COLUMN is a constant-time change in SQLite); a fanned-out envelope then
 * holds a NULL `content` — which is why `content` is nullable — and names its shared body.
 */
import type { SqliteMigration } from '../sqlite-migrations.js';

/** See the module comment. */
export const migration0001EnvelopeQueues: SqliteMigration = {
  version: 1,
  name: '0001-envelope-queues',
  sql: `
CREATE TABLE device_queue (
  queue_id INTEGER PRIMARY KEY,
  aci TEXT NOT NULL,
  device_id INTEGER NOT NULL,
  next_seq INTEGER NOT NULL CHECK (next_seq >= 1),
  depth INTEGER NOT NULL CHECK (depth >= 0),
  UNIQUE (aci, device_id)
);

CREATE TABLE envelope (
  envelope_id INTEGER PRIMARY KEY,
  queue_id INTEGER NOT NULL,
  seq INTEGER NOT NULL,
  type INTEGER NOT NULL,
  message_id BLOB NOT NULL,
  source_aci TEXT,
  source_device INTEGER,
  source_domain TEXT,
  timestamp INTEGER NOT NULL,
  server_timestamp INTEGER NOT NULL,
  urgent INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  content BLOB
);
CREATE UNIQUE INDEX envelope_by_queue_seq ON envelope (queue_id, seq);

CREATE TABLE message_dedup (
  queue_id INTEGER NOT NULL,
  message_id BLOB NOT NULL,
  content_hash BLOB NOT NULL,
  seq INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  PRIMARY KEY (queue_id, message_id)
) WITHOUT ROWID;
CREATE INDEX message_dedup_by_expiry ON message_dedup (expires_at);
`,
};
