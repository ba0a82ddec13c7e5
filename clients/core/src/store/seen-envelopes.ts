// SPDX-License-Identifier: AGPL-3.0-only
/**
 * Envelopes that carried nothing to show (sync messages, receipts) and so left no message row
 * whose unique key would catch a redelivery. Remembered by (source account, source device,
 * envelope message id) for as long as the relay could redeliver them: its retention, 30 days.
 */
import { type Aci, type DeviceId, LIMITS, type MessageId } from '@parley/protocol';
import type { Clock } from '@parley/crypto';
import type { ClientDatabase } from './database.js';
import { checkAci, checkInteger, checkMessageId } from './store-types.js';

/** How long a seen envelope is remembered, milliseconds: the relay's default retention (30 days). */
export const SEEN_ENVELOPE_RETENTION_MS = LIMITS.defaultRetentionMs;

/** The sending device of an envelope. */
export interface EnvelopeSource {
  readonly aci: Aci;
  readonly deviceId: DeviceId;
}

/** The record of envelopes already processed that left no message behind. */
export class SeenEnvelopes {
  readonly #db: ClientDatabase;
  readonly #clock: Clock;

  /** Over the client schema in `db`; `clock` stamps and ages the entries. */
  constructor(db: ClientDatabase, clock: Clock) {
    this.#db = db;
    this.#clock = clock;
  }

  /**
   * Records the envelope; returns false when it was recorded before (a redelivery: drop it).
   * Call it in the transaction that applies the envelope's effects.
   */
  markSeen(source: EnvelopeSource, envelopeMessageId: MessageId, receivedAt: number = this.#clock.now()): boolean {
    return (
      this.#db.run('INSERT OR IGNORE INTO seen_envelopes (source_aci, source_device, envelope_message_id, received_at) VALUES (?, ?, ?, ?)', [
        checkAci(source.aci),
        checkInteger(source.deviceId, 'deviceId', 1, 127),
        checkMessageId(envelopeMessageId, 'envelopeMessageId'),
        checkInteger(receivedAt, 'receivedAt'),
      ]).changes === 1
    );
  }

  /** True when the envelope was recorded (and not pruned yet). */
  has(source: EnvelopeSource, envelopeMessageId: MessageId): boolean {
    return (
      this.#db.value('SELECT 1 FROM seen_envelopes WHERE source_aci = ? AND source_device = ? AND envelope_message_id = ?', [
        source.aci,
        source.deviceId,
        envelopeMessageId,
      ]) !== undefined
    );
  }

  /** Forgets entries received more than `maxAgeMs` (default 30 days) before `now`; returns how many. */
  prune(now: number = this.#clock.now(), maxAgeMs: number = SEEN_ENVELOPE_RETENTION_MS): number {
    return this.#db.run('DELETE FROM seen_envelopes WHERE received_at < ?', [now - maxAgeMs]).changes;
  }
}
