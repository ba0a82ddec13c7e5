// SPDX-License-Identifier: AGPL-3.0-only
/**
 * Delivery and read state per message and per recipient (migration 0004). A message this account
 * sent has one row per recipient account: one for a 1:1 message, one per member for a group
 * message. Receipts only move a row forward (pending/failed → sent → delivered → read), because
 * they can arrive late, twice or out of order; the message's own status follows once every
 * recipient has reached delivered (or read).
 *
 * A receipt is believed only from a recipient of the message: a receipt from anyone else, or for
 * an id this account never sent to them, changes nothing. A receipt for an id not stored here at
 * all is kept for a day (bounded) as an "early" receipt, because a message sent from another
 * device of the account arrives here as a transcript that may come after the recipient's receipt.
 *
 * Also here: the presence tokens contacts handed out, and the read state of incoming messages
 * that one's other devices report (read sync).
 */
import type { Aci, MessageId } from '@parley/protocol';
import type { Clock } from '@parley/crypto';
import { ClientError } from '../errors.js';
import type { ClientDatabase } from './database.js';
import { blob, copyBytes } from './sql-values.js';
import { type ConversationId, type MessageKey, checkAci, checkInteger, checkMessageId } from './store-types.js';

/**
 * A recipient's state of one message. Until the recipient has it, a row shows the state of the
 * send itself (`pending`, `sent`, `failed`: one send reaches every recipient at once), which the
 * message keeps; receipts then move the row on its own.
 */
export type RecipientStatus = 'pending' | 'sent' | 'delivered' | 'read' | 'failed';

/** What a receipt reports. */
export type ReceiptKind = 'delivered' | 'read';

/** One recipient of a message this account sent. */
export interface RecipientRecord {
  readonly senderAci: Aci;
  readonly messageId: MessageId;
  readonly recipientAci: Aci;
  readonly status: RecipientStatus;
  /** When the row last moved, milliseconds since the epoch. */
  readonly updatedAt: number;
  readonly deliveredAt?: number;
  readonly readAt?: number;
}

/** The outcome of {@link ReceiptStore.applyReceipt}. */
export interface AppliedReceipt {
  /** Ids of messages to that recipient the receipt named (each once), whether or not they moved. */
  readonly known: MessageId[];
  /** The subset whose row moved forward. */
  readonly changed: MessageId[];
  /** Ids kept as early receipts (no such message here yet). */
  readonly early: MessageId[];
}

/** How long an early receipt waits for its message, ms. */
export const EARLY_RECEIPT_TTL_MS = 24 * 3600_000;
/** Most early receipts kept; past it the oldest go. */
export const MAX_EARLY_RECEIPTS = 10_000;
/** How long a read sync waits for its message, ms. */
export const EARLY_READ_SYNC_TTL_MS = 24 * 3600_000;
/** Most early read syncs kept; past it the oldest go. */
export const MAX_EARLY_READ_SYNCS = 10_000;
/** Most message ids one receipt may name; the rest are ignored. */
export const MAX_RECEIPT_IDS = 2_000;

const RANK: Record<RecipientStatus, number> = { pending: 0, failed: 0, sent: 1, delivered: 2, read: 3 };
/** SQL for the rank of the status in `column` (for comparisons and min()). */
function rankOf(column: string): string {
  return `(CASE ${column} WHEN 'read' THEN 3 WHEN 'delivered' THEN 2 WHEN 'sent' THEN 1 ELSE 0 END)`;
}

interface RecipientRow {
  sender_aci: string;
  message_id: string;
  recipient_aci: string;
  status: RecipientStatus;
  /** The message's own status: a row not delivered yet shows where the send is. */
  message_status: RecipientStatus;
  updated_at: number;
  delivered_at: number | null;
  read_at: number | null;
}

function toRecipient(r: RecipientRow): RecipientRecord {
  return {
    senderAci: r.sender_aci as Aci,
    messageId: r.message_id as MessageId,
    recipientAci: r.recipient_aci as Aci,
    status: RANK[r.status] >= RANK.delivered ? r.status : r.message_status === 'delivered' || r.message_status === 'read' ? r.status : r.message_status,
    updatedAt: r.updated_at,
    ...(r.delivered_at !== null ? { deliveredAt: r.delivered_at } : {}),
    ...(r.read_at !== null ? { readAt: r.read_at } : {}),
  };
}

/** See the module comment. */
export class ReceiptStore {
  readonly #db: ClientDatabase;
  readonly #clock: Clock;

  /** Over the client schema in `db` (migration 0004 or later); `clock` stamps changes. */
  constructor(db: ClientDatabase, clock: Clock) {
    this.#db = db;
    this.#clock = clock;
  }

  /**
   * Records the recipients of message (senderAci, messageId), a message of this account, at
   * `status` (`pending` when queued here, `sent` for a transcript of another device's send, what
   * the archive says for history from another device). Rows that exist stay as they are. Early
   * receipts waiting for this message are applied.
   */
  addRecipients(senderAci: Aci, messageId: MessageId, recipients: readonly Aci[], status: RecipientStatus = 'pending'): void {
    checkAci(senderAci, 'senderAci');
    checkMessageId(messageId);
    const now = this.#clock.now();
    if (!(status in RANK)) throw new ClientError('INVALID_ARGUMENT', 'not a recipient status');
    for (const r of recipients) checkAci(r, 'recipient');
    const insert = 'INSERT INTO message_recipients (sender_aci, message_id, recipient_aci, status, updated_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING';
    if (status === 'pending' && recipients.length === 1) {
      // What every 1:1 send does: one statement, atomic on its own (no savepoint needed).
      this.#db.run(insert, [senderAci, messageId, recipients[0]!, status, now]);
      return;
    }
    this.#db.transaction(() => {
      for (const r of recipients) {
        this.#db.run(insert, [senderAci, messageId, r, status, now]);
      }
      // A message queued here has a fresh random id: no receipt can have come for it yet.
      if (status === 'pending') return;
      const early = this.#db.all<{ recipient_aci: string; status: ReceiptKind; received_at: number }>(
        'SELECT recipient_aci, status, received_at FROM early_receipts WHERE message_id = ?',
        [messageId],
      );
      let moved = false;
      for (const e of early) {
        if (!recipients.includes(e.recipient_aci as Aci)) continue;
        moved = this.#advance(senderAci, messageId, e.recipient_aci as Aci, e.status, e.received_at) || moved;
        this.#db.run('DELETE FROM early_receipts WHERE message_id = ? AND recipient_aci = ?', [messageId, e.recipient_aci]);
      }
      if (moved) this.#settle(senderAci, JSON.stringify([messageId]));
    });
  }

  /**
   * Applies a receipt from `recipientAci` for messages of `senderAci` (this account). Duplicate
   * ids count once; ids of messages that recipient was not sent are ignored; ids of messages not
   * stored here become early receipts. At most {@link MAX_RECEIPT_IDS} ids are looked at.
   */
  applyReceipt(senderAci: Aci, recipientAci: Aci, messageIds: readonly MessageId[], kind: ReceiptKind, at: number = this.#clock.now()): AppliedReceipt {
    checkAci(senderAci, 'senderAci');
    checkAci(recipientAci, 'recipientAci');
    checkInteger(at, 'at');
    const ids = [...new Set(messageIds)].slice(0, MAX_RECEIPT_IDS).map((id) => checkMessageId(id));
    // Set-based: a receipt names hundreds of ids, and a busy sender takes many receipts.
    const list = JSON.stringify(ids);
    return this.#db.transaction(() => {
      const ours = new Set(
        this.#db
          .all<{ message_id: string }>(
            'SELECT message_id FROM message_recipients WHERE sender_aci = ? AND recipient_aci = ? AND message_id IN (SELECT value FROM json_each(?))',
            [senderAci, recipientAci, list],
          )
          .map((r) => r.message_id),
      );
      const moved = new Set(
        this.#db
          .all<{ message_id: string }>(
            `UPDATE message_recipients SET status = ?, updated_at = ?, delivered_at = coalesce(delivered_at, ?),
               read_at = CASE WHEN ? = 'read' THEN ? ELSE read_at END
             WHERE sender_aci = ? AND recipient_aci = ? AND message_id IN (SELECT value FROM json_each(?)) AND ${rankOf('status')} < ?
             RETURNING message_id`,
            [kind, at, at, kind, at, senderAci, recipientAci, list, RANK[kind]],
          )
          .map((r) => r.message_id),
      );
      if (moved.size > 0) this.#settle(senderAci, JSON.stringify([...moved]));
      // Ids of no message here (yet): kept for when the message arrives (a transcript).
      const early = new Set(
        this.#db
          .all<{ message_id: string }>(
            `INSERT INTO early_receipts (message_id, recipient_aci, status, received_at)
               SELECT j.value, ?, ?, ? FROM json_each(?) j WHERE NOT EXISTS (SELECT 1 FROM messages m WHERE m.sender_aci = ? AND m.id = j.value)
             ON CONFLICT (message_id, recipient_aci) DO UPDATE SET status = CASE WHEN excluded.status = 'read' THEN 'read' ELSE status END
             RETURNING message_id`,
            [recipientAci, kind, at, list, senderAci],
          )
          .map((r) => r.message_id),
      );
      if (early.size > 0) this.#capEarly();
      // In the order the receipt named them.
      return { known: ids.filter((id) => ours.has(id)), changed: ids.filter((id) => moved.has(id)), early: ids.filter((id) => early.has(id)) };
    });
  }

  /** The recipients of message (senderAci, messageId), by recipient. */
  recipients(senderAci: Aci, messageId: MessageId): RecipientRecord[] {
    return this.#db
      .all<RecipientRow>(
        `SELECT r.*, m.status AS message_status FROM message_recipients r JOIN messages m ON m.sender_aci = r.sender_aci AND m.id = r.message_id
         WHERE r.sender_aci = ? AND r.message_id = ? ORDER BY r.recipient_aci`,
        [senderAci, messageId],
      )
      .map(toRecipient);
  }

  /**
   * The recipient rows of the newest `limit` messages `senderAci` sent in conversation
   * `conversationId`, newest message first (display order), recipients in ACI order.
   */
  recipientsInConversation(conversationId: ConversationId, senderAci: Aci, limit: number): RecipientRecord[] {
    checkInteger(limit, 'limit', 1, 1000);
    return this.#db
      .all<RecipientRow>(
        `SELECT r.*, m.status AS message_status FROM (SELECT id, lamport, status FROM messages WHERE conversation_id = ? AND sender_aci = ? AND direction = 'out'
           ORDER BY lamport DESC, id DESC LIMIT ?) m
         JOIN message_recipients r ON r.sender_aci = ? AND r.message_id = m.id
         ORDER BY m.lamport DESC, m.id DESC, r.recipient_aci`,
        [conversationId, senderAci, limit, senderAci],
      )
      .map(toRecipient);
  }

  /**
   * Marks incoming messages read that another device of this account read (read sync). Unknown
   * keys and outgoing messages are ignored. Returns the keys that changed.
   */
  markIncomingRead(keys: readonly MessageKey[]): MessageKey[] {
    const changed: MessageKey[] = [];
    const now = this.#clock.now();
    this.#db.transaction(() => {
      let early = false;
      for (const k of keys) {
        const n = this.#db.run("UPDATE messages SET status = 'read' WHERE sender_aci = ? AND id = ? AND direction = 'in' AND status <> 'read'", [
          k.senderAci,
          k.id,
        ]).changes;
        if (n > 0) {
          changed.push(k);
        } else if (this.#db.get('SELECT 1 FROM messages WHERE sender_aci = ? AND id = ?', [k.senderAci, k.id]) === undefined) {
          // Read on another device before it got here: kept, and applied when it arrives.
          this.#db.run('INSERT OR IGNORE INTO early_read_syncs (sender_aci, message_id, received_at) VALUES (?, ?, ?)', [k.senderAci, k.id, now]);
          early = true;
        }
      }
      if (early) {
        this.#db.run('DELETE FROM early_read_syncs WHERE received_at < ?', [now - EARLY_READ_SYNC_TTL_MS]);
        this.#db.run(
          'DELETE FROM early_read_syncs WHERE (sender_aci, message_id) IN (SELECT sender_aci, message_id FROM early_read_syncs ORDER BY received_at DESC LIMIT -1 OFFSET ?)',
          [MAX_EARLY_READ_SYNCS],
        );
      }
    });
    return changed;
  }

  /** Stores the presence token `aci` handed out; returns whether it is new or different. */
  savePresenceToken(aci: Aci, token: Uint8Array): boolean {
    checkAci(aci);
    if (!(token instanceof Uint8Array) || token.length !== 32) return false;
    const now = this.#clock.now();
    const known = this.#db.get<{ token: Uint8Array }>('SELECT token FROM contact_presence WHERE aci = ?', [aci]);
    if (known && Buffer.from(known.token).equals(token)) return false;
    this.#db.run(
      'INSERT INTO contact_presence (aci, token, updated_at) VALUES (?, ?, ?) ON CONFLICT (aci) DO UPDATE SET token = excluded.token, updated_at = excluded.updated_at',
      [aci, blob(token), now],
    );
    return true;
  }

  /** The presence token of `aci`, if it handed one out. */
  presenceToken(aci: Aci): Uint8Array | undefined {
    const row = this.#db.get<{ token: Uint8Array }>('SELECT token FROM contact_presence WHERE aci = ?', [aci]);
    return row ? copyBytes(row.token) : undefined;
  }

  /** Every contact's presence token, by ACI. */
  presenceTokens(): Array<{ aci: Aci; token: Uint8Array }> {
    return this.#db.all<{ aci: string; token: Uint8Array }>('SELECT aci, token FROM contact_presence ORDER BY aci').map((r) => ({ aci: r.aci as Aci, token: copyBytes(r.token) }));
  }

  /** Deletes early receipts older than {@link EARLY_RECEIPT_TTL_MS}; returns how many. */
  prune(now: number = this.#clock.now()): number {
    return this.#db.run('DELETE FROM early_receipts WHERE received_at < ?', [now - EARLY_RECEIPT_TTL_MS]).changes;
  }

  /** Number of early receipts kept. */
  earlyCount(): number {
    return Number(this.#db.value('SELECT count(*) FROM early_receipts'));
  }

  /** Moves one row forward to `kind` when that is progress. */
  #advance(senderAci: Aci, messageId: MessageId, recipientAci: Aci, kind: ReceiptKind, at: number): boolean {
    const row = this.#db.get<{ status: RecipientStatus }>('SELECT status FROM message_recipients WHERE sender_aci = ? AND message_id = ? AND recipient_aci = ?', [
      senderAci,
      messageId,
      recipientAci,
    ]);
    if (!row || RANK[row.status] >= RANK[kind]) return false;
    // A read receipt implies delivery: the delivered time is filled in when it never came.
    this.#db.run(
      `UPDATE message_recipients SET status = ?, updated_at = ?, delivered_at = coalesce(delivered_at, ?), read_at = CASE WHEN ? = 'read' THEN ? ELSE read_at END
       WHERE sender_aci = ? AND message_id = ? AND recipient_aci = ?`,
      [kind, at, at, kind, at, senderAci, messageId, recipientAci],
    );
    return true;
  }

  /** Raises each message's own status (a JSON list of ids) to its least advanced recipient's, once that is delivered or read. */
  #settle(senderAci: Aci, list: string): void {
    const least = `(SELECT min(${rankOf('r.status')}) FROM message_recipients r WHERE r.sender_aci = messages.sender_aci AND r.message_id = messages.id)`;
    this.#db.run(
      `UPDATE messages SET status = CASE WHEN ${least} >= ${RANK.read} THEN 'read' ELSE 'delivered' END
       WHERE sender_aci = ? AND direction = 'out' AND id IN (SELECT value FROM json_each(?)) AND ${least} >= ${RANK.delivered} AND ${rankOf('status')} < ${least}`,
      [senderAci, list],
    );
  }

  #capEarly(): void {
    const excess = this.earlyCount() - MAX_EARLY_RECEIPTS;
    if (excess <= 0) return;
    this.#db.run(
      `DELETE FROM early_receipts WHERE (message_id, recipient_aci) IN
         (SELECT message_id, recipient_aci FROM early_receipts ORDER BY received_at, message_id LIMIT ?)`,
      [excess],
    );
  }
}
