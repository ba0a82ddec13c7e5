// SPDX-License-Identifier: AGPL-3.0-only
/**
 * The outbox: sends that must survive a crash. An entry is one Send to one destination account:
 * the plaintext Content to encrypt, and the envelope message id and timestamp fixed when it is
 * queued. Once encrypted, the per-device ciphertexts are saved with it (in the same transaction
 * as the session state the encryption advanced, through a staged overlay), so every retry
 * resends the same bytes under the same id: the relay answers a repeat with the original
 * sequence numbers, and would refuse different bytes under that id (ID_REUSED).
 *
 * The ciphertexts are dropped only when the relay refused them for the device set
 * (MISMATCHED_DEVICES / STALE_DEVICES: nothing was queued, so the id is still free) — see
 * {@link Outbox.clearEncrypted}.
 */
import { randomBytes } from 'node:crypto';
import type { Aci, MessageId } from '@parley/protocol';
import { ClientError } from '../errors.js';
import type { Clock } from '@parley/crypto';
import { type ClientDatabase, isForeignKeyViolation } from './database.js';
import { blob, copyBytes } from './sql-values.js';
import { type ConversationId, canonicalAddress, checkAci, checkInteger, checkMessageId } from './store-types.js';

/** One device's ciphertext of an outbox entry, as it goes into a Send's DeviceMessage. */
export interface DeviceCiphertext {
  readonly deviceId: number;
  /** The registration id the session was set up with (the relay checks it). */
  readonly registrationId: number;
  /** The wire `EnvelopeType` of `body` (ciphertext, prekey, sealed, …). */
  readonly type: number;
  readonly body: Uint8Array;
}

/** A send to queue. */
export interface NewOutboxEntry {
  /** The conversation it belongs to; absent for sends of no conversation (sync, receipts). */
  readonly conversationId?: ConversationId;
  readonly destinationAci: Aci;
  /** The destination's `user@domain` (the domain routes it). */
  readonly destinationAddress: string;
  /**
   * The outgoing message (direction `out`) this send delivers, if any: it becomes `sent` when
   * its last outbox entry completes, `failed` when one is given up.
   */
  readonly messageId?: MessageId;
  /** The envelope's 16-byte id for the relay's dedup, as hex; default: fresh random. */
  readonly envelopeMessageId?: MessageId;
  /** The plaintext Content bytes to encrypt. Secret. */
  readonly content: Uint8Array;
  /** The envelope's sender timestamp, milliseconds since the epoch. */
  readonly timestamp: number;
  /** Ask for a push wake-up; default true. */
  readonly urgent?: boolean;
  /** Earliest first attempt, milliseconds since the epoch; default now. */
  readonly notBefore?: number;
}

/** A queued send. */
export interface OutboxEntry {
  readonly id: number;
  readonly conversationId?: ConversationId;
  readonly destinationAci: Aci;
  readonly destinationAddress: string;
  readonly messageId?: MessageId;
  readonly envelopeMessageId: MessageId;
  readonly content: Uint8Array;
  readonly timestamp: number;
  readonly urgent: boolean;
  readonly createdAt: number;
  /** Failed attempts so far. */
  readonly attempts: number;
  readonly nextAttemptAt: number;
  /** The stable code of the last failure. */
  readonly lastError?: string;
  /** The saved ciphertexts, by device id; absent until encrypted. Resend exactly these. */
  readonly ciphertexts?: readonly DeviceCiphertext[];
  readonly encryptedAt?: number;
}

/** Options of {@link Outbox.fail}. */
export interface OutboxFailure {
  /** A stable error code (no message text, no secrets); at most 100 characters are kept. */
  readonly error: string;
  /** Try again at this time (milliseconds since the epoch); absent: give up. */
  readonly retryAt?: number;
}

interface OutboxRow {
  id: number;
  conversation_id: string | null;
  destination_aci: string;
  destination_address: string;
  message_id: string | null;
  envelope_message_id: string;
  content: Uint8Array;
  timestamp: number;
  urgent: number;
  created_at: number;
  attempts: number;
  next_attempt_at: number;
  last_error: string | null;
  encrypted_at: number | null;
}

/** Default number of entries {@link Outbox.due} returns. */
export const DEFAULT_OUTBOX_BATCH = 100;

/** The durable send queue of one profile. */
export class Outbox {
  readonly #db: ClientDatabase;
  readonly #clock: Clock;

  /** Over the client schema in `db`; `clock` gives "now" where a time is not passed. */
  constructor(db: ClientDatabase, clock: Clock) {
    this.#db = db;
    this.#clock = clock;
  }

  /**
   * Queues a send and returns it.
   * @throws ClientError NOT_FOUND for an unknown conversation; INVALID_ARGUMENT for a bad field or
   *   an envelope id already queued for that destination.
   */
  enqueue(entry: NewOutboxEntry): OutboxEntry {
    if (!(entry.content instanceof Uint8Array)) throw new ClientError('INVALID_ARGUMENT', 'content must be bytes');
    const now = this.#clock.now();
    const envelopeMessageId = entry.envelopeMessageId === undefined ? randomBytes(16).toString('hex') : checkMessageId(entry.envelopeMessageId, 'envelopeMessageId');
    const destinationAci = checkAci(entry.destinationAci, 'destinationAci');
    const destinationAddress = canonicalAddress(entry.destinationAddress);
    const messageId = entry.messageId === undefined ? undefined : checkMessageId(entry.messageId);
    const content = blob(entry.content);
    const timestamp = checkInteger(entry.timestamp, 'timestamp');
    const nextAttemptAt = checkInteger(entry.notBefore ?? now, 'notBefore');
    const params = [
      entry.conversationId ?? null,
      destinationAci,
      destinationAddress,
      messageId ?? null,
      envelopeMessageId,
      content,
      timestamp,
      entry.urgent === false ? 0 : 1,
      now,
      nextAttemptAt,
    ];
    let id: number;
    try {
      id = this.#db.run(
        `INSERT INTO outbox (conversation_id, destination_aci, destination_address, message_id, envelope_message_id, content, timestamp,
           urgent, created_at, next_attempt_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        params,
      ).lastInsertRowid;
    } catch (err) {
      if (isForeignKeyViolation(err)) throw new ClientError('NOT_FOUND', 'no such conversation', { cause: err });
      if ((err as { code?: string }).code === 'SQLITE_CONSTRAINT_UNIQUE') {
        throw new ClientError('INVALID_ARGUMENT', 'that envelope id is already queued for this destination', { cause: err });
      }
      throw err;
    }
    // What was just written (reading the row back cost a statement per send).
    return {
      id,
      ...(entry.conversationId !== undefined ? { conversationId: entry.conversationId } : {}),
      destinationAci,
      destinationAddress,
      ...(messageId !== undefined ? { messageId } : {}),
      envelopeMessageId: envelopeMessageId as MessageId,
      content: copyBytes(content),
      timestamp,
      urgent: entry.urgent !== false,
      createdAt: now,
      attempts: 0,
      nextAttemptAt,
    };
  }

  /** The entry `id`, or undefined (completed, given up, or never queued). */
  get(id: number): OutboxEntry | undefined {
    const row = this.#db.get<OutboxRow>('SELECT * FROM outbox WHERE id = ?', [id]);
    return row ? this.#toEntry(row) : undefined;
  }

  /** Entries whose next attempt is due at `now` (default the clock), in queue order, at most `limit` (default 100). */
  due(options: { readonly now?: number; readonly limit?: number } = {}): OutboxEntry[] {
    const now = checkInteger(options.now ?? this.#clock.now(), 'now');
    const limit = checkInteger(options.limit ?? DEFAULT_OUTBOX_BATCH, 'limit', 1, 10_000);
    return this.#db
      .all<OutboxRow>('SELECT * FROM outbox WHERE next_attempt_at <= ? ORDER BY id LIMIT ?', [now, limit])
      .map((row) => this.#toEntry(row));
  }

  /** When the earliest entry is due (milliseconds since the epoch), or undefined when the outbox is empty. */
  nextDueAt(): number | undefined {
    const next = this.#db.value('SELECT min(next_attempt_at) FROM outbox');
    return typeof next === 'number' ? next : undefined;
  }

  /** Number of queued entries. */
  size(): number {
    return Number(this.#db.value('SELECT count(*) FROM outbox'));
  }

  /**
   * Saves the ciphertexts of entry `id`, replacing any saved before. Call it in the transaction
   * that commits the staged session state of that encryption. `options.envelopeMessageId`
   * replaces the envelope id chosen at enqueue (for engines that pick the id per encryption);
   * never change it once a send with the saved ciphertexts may have reached the relay.
   * @throws ClientError NOT_FOUND when the entry is gone; INVALID_ARGUMENT for bad ciphertexts.
   */
  saveEncrypted(id: number, ciphertexts: readonly DeviceCiphertext[], options: { readonly envelopeMessageId?: MessageId } = {}): void {
    const newId = options.envelopeMessageId === undefined ? undefined : checkMessageId(options.envelopeMessageId, 'envelopeMessageId');
    if (!Array.isArray(ciphertexts) || ciphertexts.length === 0) throw new ClientError('INVALID_ARGUMENT', 'at least one ciphertext is required');
    const devices = new Set<number>();
    for (const c of ciphertexts) {
      checkInteger(c.deviceId, 'deviceId', 1, 127);
      checkInteger(c.registrationId, 'registrationId', 1, 16383);
      checkInteger(c.type, 'type', 1, 255);
      if (!(c.body instanceof Uint8Array) || c.body.length === 0) throw new ClientError('INVALID_ARGUMENT', 'a ciphertext body must be bytes');
      if (devices.has(c.deviceId)) throw new ClientError('INVALID_ARGUMENT', 'one ciphertext per device');
      devices.add(c.deviceId);
    }
    this.#db.transaction(() => {
      const changed = this.#db.run('UPDATE outbox SET encrypted_at = ?, envelope_message_id = coalesce(?, envelope_message_id) WHERE id = ?', [
        this.#clock.now(),
        newId ?? null,
        id,
      ]).changes;
      if (changed === 0) {
        throw new ClientError('NOT_FOUND', 'no such outbox entry');
      }
      this.#db.run('DELETE FROM outbox_ciphertexts WHERE outbox_id = ?', [id]);
      for (const c of ciphertexts) {
        this.#db.run('INSERT INTO outbox_ciphertexts (outbox_id, device_id, registration_id, type, body) VALUES (?, ?, ?, ?, ?)', [
          id,
          c.deviceId,
          c.registrationId,
          c.type,
          blob(c.body),
        ]);
      }
    });
  }

  /**
   * Drops the saved ciphertexts of entry `id`, so the next attempt encrypts again for the
   * corrected device set. Only after the relay refused the send for its device set: then
   * nothing was queued under the envelope id, and it may carry new bytes.
   */
  clearEncrypted(id: number): void {
    this.#db.transaction(() => {
      this.#db.run('DELETE FROM outbox_ciphertexts WHERE outbox_id = ?', [id]);
      this.#db.run('UPDATE outbox SET encrypted_at = NULL WHERE id = ?', [id]);
    });
  }

  /**
   * Makes every entry for `destinationAci` due at `now` (default the clock), e.g. after the user
   * accepted the destination's new identity key. Returns how many entries it moved.
   */
  wake(destinationAci: Aci, now: number = this.#clock.now()): number {
    return this.#db.run('UPDATE outbox SET next_attempt_at = ? WHERE destination_aci = ? AND next_attempt_at > ?', [
      checkInteger(now, 'now'),
      checkAci(destinationAci, 'destinationAci'),
      now,
    ]).changes;
  }

  /**
   * The relay accepted entry `id`: removes it, and marks its message `sent` when no other entry
   * for that message remains. Returns whether the entry existed.
   */
  complete(id: number): boolean {
    return this.#db.transaction(() => {
      const row = this.#db.get<{ message_id: string | null }>('DELETE FROM outbox WHERE id = ? RETURNING message_id', [id]);
      if (!row) return false;
      if (row.message_id !== null) {
        this.#db.run(
          `UPDATE messages SET status = 'sent' WHERE direction = 'out' AND id = ? AND status IN ('pending', 'failed')
             AND NOT EXISTS (SELECT 1 FROM outbox WHERE message_id = ?)`,
          [row.message_id, row.message_id],
        );
      }
      return true;
    });
  }

  /**
   * An attempt at entry `id` failed. With `retryAt` the entry waits until then (attempts + 1);
   * without, it is given up: removed, and its message marked `failed`.
   * @throws ClientError NOT_FOUND when the entry is gone.
   */
  fail(id: number, failure: OutboxFailure): void {
    if (typeof failure?.error !== 'string') throw new ClientError('INVALID_ARGUMENT', 'error must be a code string');
    const error = failure.error.slice(0, 100);
    this.#db.transaction(() => {
      const row = this.#db.get<{ message_id: string | null }>('SELECT message_id FROM outbox WHERE id = ?', [id]);
      if (!row) throw new ClientError('NOT_FOUND', 'no such outbox entry');
      if (failure.retryAt !== undefined) {
        this.#db.run('UPDATE outbox SET attempts = attempts + 1, next_attempt_at = ?, last_error = ? WHERE id = ?', [
          checkInteger(failure.retryAt, 'retryAt'),
          error,
          id,
        ]);
        return;
      }
      this.#db.run('DELETE FROM outbox WHERE id = ?', [id]);
      if (row.message_id !== null) {
        this.#db.run("UPDATE messages SET status = 'failed' WHERE direction = 'out' AND id = ? AND status = 'pending'", [row.message_id]);
      }
    });
  }

  #toEntry(r: OutboxRow): OutboxEntry {
    const ciphertexts =
      r.encrypted_at === null
        ? undefined
        : this.#db
            .all<{ device_id: number; registration_id: number; type: number; body: Uint8Array }>(
              'SELECT device_id, registration_id, type, body FROM outbox_ciphertexts WHERE outbox_id = ? ORDER BY device_id',
              [r.id],
            )
            .map((c) => ({ deviceId: c.device_id, registrationId: c.registration_id, type: c.type, body: copyBytes(c.body) }));
    return {
      id: r.id,
      ...(r.conversation_id !== null ? { conversationId: r.conversation_id as ConversationId } : {}),
      destinationAci: r.destination_aci as Aci,
      destinationAddress: r.destination_address,
      ...(r.message_id !== null ? { messageId: r.message_id as MessageId } : {}),
      envelopeMessageId: r.envelope_message_id as MessageId,
      content: copyBytes(r.content),
      timestamp: r.timestamp,
      urgent: r.urgent === 1,
      createdAt: r.created_at,
      attempts: r.attempts,
      nextAttemptAt: r.next_attempt_at,
      ...(r.last_error !== null ? { lastError: r.last_error } : {}),
      ...(ciphertexts ? { ciphertexts } : {}),
      ...(r.encrypted_at !== null ? { encryptedAt: r.encrypted_at } : {}),
    };
  }
}
