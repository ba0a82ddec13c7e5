// SPDX-License-Identifier: AGPL-3.0-only
/**
 * Groups in the local store (DESIGN §7): each group's change log, the cached state of its
 * replay (title, members, admins), the sender keys member devices handed this device, this
 * device's own sender key per group with the member devices that hold it, and the queue of
 * multi-recipient group sends.
 *
 * The store keeps what it is given: which changes count and what state they make is the
 * engine's replay (engine/group-state.ts), which rewrites the cached state after every change.
 * A group's messages are messages of its conversation (kind `group`) in the message store,
 * ordered like every conversation by (lamport, sender ACI, message id).
 */
import { randomBytes, randomUUID } from 'node:crypto';
import type { Clock } from '@parley/crypto';
import { ClientError } from '../errors.js';
import type { ClientDatabase } from './database.js';
import { blob, copyBytes } from './sql-values.js';
import { type ConversationId, checkAci, checkInteger, checkMessageId } from './store-types.js';

const HEX32 = /^[0-9a-f]{32}$/;
const HEX64 = /^[0-9a-f]{64}$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** A group as stored. */
export interface GroupRecord {
  /** 64 lowercase hex characters. */
  readonly id: string;
  readonly conversationId: ConversationId;
  readonly title: string;
  /** Number of changes held. */
  readonly revision: number;
  /** The highest Lamport clock of any change held. */
  readonly maxLamport: number;
  /** Whether this device's account is a member now. */
  readonly isMember: boolean;
  readonly creatorAci?: string;
  /** This device's current sender key for the group (a UUID), once it made one. */
  readonly ownDistributionId?: string;
  /** Milliseconds since the epoch. */
  readonly createdAt: number;
}

/** A member of a group's current state. */
export interface GroupMemberRecord {
  readonly aci: string;
  /** `user@domain` as the group's changes name it (not checked against the directory). */
  readonly address: string;
  readonly admin: boolean;
}

/** One change of a group's log. */
export interface StoredGroupChange {
  /** 32 lowercase hex characters. */
  readonly changeId: string;
  readonly lamport: number;
  readonly authorAci: string;
  /** The change, as the engine serialized it (JSON). */
  readonly body: string;
}

/** The cached state of a replay, as {@link GroupStore.saveState} takes it. */
export interface GroupStateRecord {
  readonly title: string;
  readonly revision: number;
  readonly maxLamport: number;
  readonly isMember: boolean;
  readonly creatorAci?: string;
  /** In the order they were added. */
  readonly members: readonly GroupMemberRecord[];
}

/** A device that holds (or should hold) a sender key. */
export interface MemberDevice {
  readonly aci: string;
  readonly deviceId: number;
}

/** A queued group send; see {@link GroupOutbox}. */
export interface GroupOutboxEntry {
  readonly id: number;
  readonly groupId: string;
  /** The logical message this send carries, if any. */
  readonly messageId?: string;
  /** 32 hex: the envelope id every attempt uses. */
  readonly envelopeMessageId: string;
  /** The plaintext Content. Secret. */
  readonly content: Uint8Array;
  readonly timestamp: number;
  readonly urgent: boolean;
  readonly attempts: number;
  readonly nextAttemptAt: number;
  readonly lastError?: string;
  /** The saved attempt: the sender key it was encrypted with and the sealed payload. */
  readonly distributionId?: string;
  readonly payload?: Uint8Array;
}

interface GroupRow {
  id: string;
  conversation_id: string;
  title: string;
  revision: number;
  max_lamport: number;
  is_member: number;
  creator_aci: string | null;
  own_distribution_id: string | null;
  created_at: number;
}

interface GroupOutboxRow {
  id: number;
  group_id: string;
  message_id: string | null;
  envelope_message_id: string;
  content: Uint8Array;
  timestamp: number;
  urgent: number;
  attempts: number;
  next_attempt_at: number;
  last_error: string | null;
  distribution_id: string | null;
  payload: Uint8Array | null;
}

function toGroup(r: GroupRow): GroupRecord {
  return {
    id: r.id,
    conversationId: r.conversation_id as ConversationId,
    title: r.title,
    revision: r.revision,
    maxLamport: r.max_lamport,
    isMember: r.is_member === 1,
    ...(r.creator_aci !== null ? { creatorAci: r.creator_aci } : {}),
    ...(r.own_distribution_id !== null ? { ownDistributionId: r.own_distribution_id } : {}),
    createdAt: r.created_at,
  };
}

/** @internal Throws INVALID_ARGUMENT unless `id` is a group id. */
export function checkGroupIdText(id: unknown): string {
  if (typeof id !== 'string' || !HEX64.test(id)) throw new ClientError('INVALID_ARGUMENT', 'a group id is 64 lowercase hex characters');
  return id;
}

function checkDistributionId(id: unknown): string {
  if (typeof id !== 'string' || !UUID.test(id)) throw new ClientError('INVALID_ARGUMENT', 'a distribution id is a lowercase UUID');
  return id;
}

/** See the module comment. */
export class GroupStore {
  readonly #db: ClientDatabase;
  readonly #clock: Clock;
  /** The queue of multi-recipient group sends. */
  readonly outbox: GroupOutbox;

  /** Over the client schema in `db`; `clock` stamps creation and arrival times. */
  constructor(db: ClientDatabase, clock: Clock) {
    this.#db = db;
    this.#clock = clock;
    this.outbox = new GroupOutbox(db, clock);
  }

  // ── groups and their state ─────────────────────────────────────────────────────────────────

  /** The group `id`, or undefined. */
  group(id: string): GroupRecord | undefined {
    const row = this.#db.get<GroupRow>('SELECT * FROM groups WHERE id = ?', [checkGroupIdText(id)]);
    return row ? toGroup(row) : undefined;
  }

  /** The group whose conversation is `conversationId`, or undefined. */
  groupByConversation(conversationId: ConversationId): GroupRecord | undefined {
    const row = this.#db.get<GroupRow>('SELECT * FROM groups WHERE conversation_id = ?', [conversationId]);
    return row ? toGroup(row) : undefined;
  }

  /** Every group, most recently active first. */
  groups(): GroupRecord[] {
    return this.#db
      .all<GroupRow>('SELECT g.* FROM groups g JOIN conversations c ON c.id = g.conversation_id ORDER BY c.last_activity_at DESC, g.id')
      .map(toGroup);
  }

  /**
   * The group `id`, created (with its conversation, empty, this account not a member) when
   * missing.
   */
  ensureGroup(id: string): GroupRecord {
    checkGroupIdText(id);
    return this.#db.transaction(() => {
      const existing = this.group(id);
      if (existing) return existing;
      const now = this.#clock.now();
      const conversationId = randomBytes(16).toString('hex');
      this.#db.run("INSERT INTO conversations (id, kind, peer_aci, created_at, last_activity_at) VALUES (?, 'group', NULL, ?, ?)", [
        conversationId,
        now,
        now,
      ]);
      this.#db.run(
        'INSERT INTO groups (id, conversation_id, title, revision, max_lamport, is_member, created_at) VALUES (?, ?, ?, 0, 0, 0, ?)',
        [id, conversationId, '', now],
      );
      return this.group(id)!;
    });
  }

  /** Adds changes to a group's log (ones held already are skipped); returns how many were new. */
  addChanges(groupId: string, changes: readonly StoredGroupChange[]): number {
    checkGroupIdText(groupId);
    const now = this.#clock.now();
    return this.#db.transaction(() => {
      let added = 0;
      for (const c of changes) {
        if (typeof c.changeId !== 'string' || !HEX32.test(c.changeId)) throw new ClientError('INVALID_ARGUMENT', 'a change id is 32 lowercase hex characters');
        if (typeof c.body !== 'string') throw new ClientError('INVALID_ARGUMENT', 'a change body is text');
        added += this.#db.run(
          `INSERT INTO group_changes (group_id, change_id, lamport, author_aci, body, received_at) VALUES (?, ?, ?, ?, ?, ?)
           ON CONFLICT (group_id, change_id) DO NOTHING`,
          [groupId, c.changeId, checkInteger(c.lamport, 'lamport'), checkAci(c.authorAci, 'author'), c.body, now],
        ).changes;
      }
      return added;
    });
  }

  /** A group's whole log in replay order (lamport, author, change id). */
  changes(groupId: string): StoredGroupChange[] {
    return this.#db
      .all<{ change_id: string; lamport: number; author_aci: string; body: string }>(
        'SELECT change_id, lamport, author_aci, body FROM group_changes WHERE group_id = ? ORDER BY lamport, author_aci, change_id',
        [checkGroupIdText(groupId)],
      )
      .map((r) => ({ changeId: r.change_id, lamport: r.lamport, authorAci: r.author_aci, body: r.body }));
  }

  /** Replaces a group's cached state (after a replay). */
  saveState(groupId: string, state: GroupStateRecord): void {
    checkGroupIdText(groupId);
    this.#db.transaction(() => {
      const changed = this.#db.run(
        'UPDATE groups SET title = ?, revision = ?, max_lamport = ?, is_member = ?, creator_aci = ? WHERE id = ?',
        [
          state.title,
          checkInteger(state.revision, 'revision'),
          checkInteger(state.maxLamport, 'maxLamport'),
          state.isMember ? 1 : 0,
          state.creatorAci === undefined ? null : checkAci(state.creatorAci, 'creator'),
          groupId,
        ],
      ).changes;
      if (changed === 0) throw new ClientError('NOT_FOUND', 'no such group');
      this.#db.run('DELETE FROM group_members WHERE group_id = ?', [groupId]);
      state.members.forEach((m, i) => {
        this.#db.run('INSERT INTO group_members (group_id, aci, address, admin, position) VALUES (?, ?, ?, ?, ?)', [
          groupId,
          checkAci(m.aci, 'member'),
          m.address,
          m.admin ? 1 : 0,
          i,
        ]);
      });
    });
  }

  /** The members of a group's current state, in the order they were added. */
  members(groupId: string): GroupMemberRecord[] {
    return this.#db
      .all<{ aci: string; address: string; admin: number }>('SELECT aci, address, admin FROM group_members WHERE group_id = ? ORDER BY position', [
        checkGroupIdText(groupId),
      ])
      .map((r) => ({ aci: r.aci, address: r.address, admin: r.admin === 1 }));
  }

  /** Whether `aci` is a member of group `groupId` now. */
  isMember(groupId: string, aci: string): boolean {
    return this.#db.value('SELECT 1 FROM group_members WHERE group_id = ? AND aci = ?', [groupId, aci]) !== undefined;
  }

  /** Whether `aci` is a member of a group this account is a member of. */
  sharesGroupWith(aci: string): boolean {
    return (
      this.#db.value('SELECT 1 FROM group_members m JOIN groups g ON g.id = m.group_id WHERE m.aci = ? AND g.is_member = 1 LIMIT 1', [aci]) !== undefined
    );
  }

  /** The address some group's changes give `aci`, if any (display only: not checked against the directory). */
  memberAddress(aci: string): string | undefined {
    const v = this.#db.value('SELECT address FROM group_members WHERE aci = ? LIMIT 1', [aci]);
    return typeof v === 'string' ? v : undefined;
  }

  /**
   * Deletes message (senderAci, id) of group `groupId`'s conversation (a change's notice that a
   * concurrent change ordered before it made void). Returns whether it existed.
   */
  deleteGroupMessage(groupId: string, senderAci: string, id: string): boolean {
    return (
      this.#db.run('DELETE FROM messages WHERE sender_aci = ? AND id = ? AND conversation_id = (SELECT conversation_id FROM groups WHERE id = ?)', [
        senderAci,
        id,
        groupId,
      ]).changes > 0
    );
  }

  // ── sender keys member devices handed this device ───────────────────────────────────────────

  /** Records that `sender`'s device uses sender key `distributionId` in group `groupId`. */
  recordSenderKey(groupId: string, sender: MemberDevice, distributionId: string): void {
    this.#db.run(
      `INSERT INTO group_sender_keys (group_id, sender_aci, sender_device, distribution_id, received_at) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT DO NOTHING`,
      [checkGroupIdText(groupId), checkAci(sender.aci), checkInteger(sender.deviceId, 'deviceId', 1, 127), checkDistributionId(distributionId), this.#clock.now()],
    );
  }

  /** Whether `sender`'s device handed this device sender key `distributionId` for group `groupId`. */
  hasSenderKey(groupId: string, sender: MemberDevice, distributionId: string): boolean {
    return (
      this.#db.value('SELECT 1 FROM group_sender_keys WHERE group_id = ? AND sender_aci = ? AND sender_device = ? AND distribution_id = ?', [
        groupId,
        sender.aci,
        sender.deviceId,
        distributionId,
      ]) !== undefined
    );
  }

  /**
   * Forgets every sender key `senderAci`'s devices handed this device for group `groupId` and
   * returns them (`"<aci>.<device>"`, distribution id) so the caller deletes the keys themselves.
   */
  takeSenderKeys(groupId: string, senderAci: string): Array<{ address: string; distributionId: string }> {
    return this.#db.transaction(() => {
      const rows = this.#db.all<{ sender_device: number; distribution_id: string }>(
        'SELECT sender_device, distribution_id FROM group_sender_keys WHERE group_id = ? AND sender_aci = ?',
        [groupId, senderAci],
      );
      this.#db.run('DELETE FROM group_sender_keys WHERE group_id = ? AND sender_aci = ?', [groupId, senderAci]);
      return rows.map((r) => ({ address: `${senderAci}.${r.sender_device}`, distributionId: r.distribution_id }));
    });
  }

  // ── this device's sender key ────────────────────────────────────────────────────────────────

  /**
   * Starts a new sender key for group `groupId` (a fresh random UUID) and returns it. Nobody
   * holds it yet; the old one's holders are forgotten.
   */
  rotateOwnDistribution(groupId: string): string {
    const id = randomUUID();
    this.#db.transaction(() => {
      const changed = this.#db.run('UPDATE groups SET own_distribution_id = ? WHERE id = ?', [id, checkGroupIdText(groupId)]).changes;
      if (changed === 0) throw new ClientError('NOT_FOUND', 'no such group');
      this.#db.run('DELETE FROM group_key_holders WHERE group_id = ?', [groupId]);
      this.#db.run('DELETE FROM group_key_sends WHERE group_id = ?', [groupId]);
    });
    return id;
  }

  /** Member devices the relay committed sender key `distributionId` of group `groupId` for. */
  holders(groupId: string, distributionId: string): MemberDevice[] {
    return this.#db
      .all<{ aci: string; device_id: number }>('SELECT aci, device_id FROM group_key_holders WHERE group_id = ? AND distribution_id = ? ORDER BY aci, device_id', [
        groupId,
        distributionId,
      ])
      .map((r) => ({ aci: r.aci, deviceId: r.device_id }));
  }

  /** Records that `devices` hold sender key `distributionId` of group `groupId`. */
  addHolders(groupId: string, distributionId: string, devices: readonly MemberDevice[]): void {
    this.#db.transaction(() => {
      for (const d of devices) {
        this.#db.run('INSERT INTO group_key_holders (group_id, distribution_id, aci, device_id) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING', [
          groupId,
          distributionId,
          checkAci(d.aci),
          checkInteger(d.deviceId, 'deviceId', 1, 127),
        ]);
      }
    });
  }

  /**
   * Forgets that devices of `aci` hold this device's sender keys in any group (all of its
   * devices, or the ones named): a device that was re-registered or removed lost them.
   */
  dropHolders(aci: string, deviceIds?: readonly number[]): void {
    if (deviceIds === undefined) {
      this.#db.run('DELETE FROM group_key_holders WHERE aci = ?', [aci]);
      return;
    }
    for (const d of deviceIds) this.#db.run('DELETE FROM group_key_holders WHERE aci = ? AND device_id = ?', [aci, d]);
  }

  /** Records that outbox entry `outboxId` carries sender key `distributionId` of group `groupId` to `destinationAci`. */
  recordKeySend(outboxId: number, groupId: string, distributionId: string, destinationAci: string): void {
    this.#db.run('INSERT INTO group_key_sends (outbox_id, group_id, distribution_id, destination_aci) VALUES (?, ?, ?, ?)', [
      checkInteger(outboxId, 'outboxId', 1),
      checkGroupIdText(groupId),
      checkDistributionId(distributionId),
      checkAci(destinationAci),
    ]);
  }

  /** Accounts a sender key `distributionId` of group `groupId` is on its way to (queued, not yet committed). */
  pendingKeySends(groupId: string, distributionId: string): string[] {
    return this.#db
      .all<{ destination_aci: string }>('SELECT DISTINCT destination_aci FROM group_key_sends WHERE group_id = ? AND distribution_id = ?', [groupId, distributionId])
      .map((r) => r.destination_aci);
  }

  /**
   * The relay committed outbox entry `outboxId` for `deviceIds`: when it carried a sender key,
   * those devices now hold it. Call before the outbox entry is removed.
   */
  keySendCommitted(outboxId: number, deviceIds: readonly number[]): void {
    const row = this.#db.get<{ group_id: string; distribution_id: string; destination_aci: string }>(
      'SELECT group_id, distribution_id, destination_aci FROM group_key_sends WHERE outbox_id = ?',
      [outboxId],
    );
    if (!row) return;
    this.#db.transaction(() => {
      this.addHolders(
        row.group_id,
        row.distribution_id,
        deviceIds.map((deviceId) => ({ aci: row.destination_aci, deviceId })),
      );
      this.#db.run('DELETE FROM group_key_sends WHERE outbox_id = ?', [outboxId]);
    });
  }
}

/**
 * Group messages waiting for their multi-recipient upload. The envelope id is fixed at
 * enqueue; the sealed payload is saved with the sender key state it advanced (one
 * transaction) before the first attempt, and every retry uploads exactly it. Only a refusal for
 * the device sets (nothing queued) clears it, so the next attempt encrypts for the corrected sets.
 */
export class GroupOutbox {
  readonly #db: ClientDatabase;
  readonly #clock: Clock;

  /** Over the client schema in `db`. */
  constructor(db: ClientDatabase, clock: Clock) {
    this.#db = db;
    this.#clock = clock;
  }

  /** Queues a group send and returns its id. */
  enqueue(entry: { groupId: string; messageId?: string; content: Uint8Array; timestamp: number; urgent?: boolean; notBefore?: number }): number {
    if (!(entry.content instanceof Uint8Array)) throw new ClientError('INVALID_ARGUMENT', 'content must be bytes');
    const now = this.#clock.now();
    return this.#db.run(
      `INSERT INTO group_outbox (group_id, message_id, envelope_message_id, content, timestamp, urgent, created_at, next_attempt_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
      [
        checkGroupIdText(entry.groupId),
        entry.messageId === undefined ? null : checkMessageId(entry.messageId),
        randomBytes(16).toString('hex'),
        blob(entry.content),
        checkInteger(entry.timestamp, 'timestamp'),
        entry.urgent === false ? 0 : 1,
        now,
        checkInteger(entry.notBefore ?? now, 'notBefore'),
      ],
    ).lastInsertRowid;
  }

  /** The entry `id`, or undefined. */
  get(id: number): GroupOutboxEntry | undefined {
    const r = this.#db.get<GroupOutboxRow>('SELECT * FROM group_outbox WHERE id = ?', [id]);
    return r ? this.#toEntry(r) : undefined;
  }

  /** Entries due at `now`, in queue order, at most `limit`. */
  due(now: number, limit: number): GroupOutboxEntry[] {
    return this.#db
      .all<GroupOutboxRow>('SELECT * FROM group_outbox WHERE next_attempt_at <= ? ORDER BY id LIMIT ?', [checkInteger(now, 'now'), checkInteger(limit, 'limit', 1, 10_000)])
      .map((r) => this.#toEntry(r));
  }

  /** Number of queued entries. */
  size(): number {
    return Number(this.#db.value('SELECT count(*) FROM group_outbox'));
  }

  /** Saves the sealed payload of entry `id` and the sender key it used (with the key state, in the caller's transaction). */
  saveAttempt(id: number, distributionId: string, payload: Uint8Array): void {
    if (!(payload instanceof Uint8Array) || payload.length === 0) throw new ClientError('INVALID_ARGUMENT', 'a payload must be bytes');
    const changed = this.#db.run('UPDATE group_outbox SET distribution_id = ?, payload = ?, encrypted_at = ? WHERE id = ?', [
      checkDistributionId(distributionId),
      blob(payload),
      this.#clock.now(),
      id,
    ]).changes;
    if (changed === 0) throw new ClientError('NOT_FOUND', 'no such group outbox entry');
  }

  /** Drops the saved payload (the relay refused it for its device sets: nothing was queued). */
  clearAttempt(id: number): void {
    this.#db.run('UPDATE group_outbox SET distribution_id = NULL, payload = NULL, encrypted_at = NULL WHERE id = ?', [id]);
  }

  /** An attempt failed: try again at `retryAt` (attempts + 1). */
  reschedule(id: number, retryAt: number, error: string): void {
    this.#db.run('UPDATE group_outbox SET attempts = attempts + 1, next_attempt_at = ?, last_error = ? WHERE id = ?', [
      checkInteger(retryAt, 'retryAt'),
      error.slice(0, 100),
      id,
    ]);
  }

  /**
   * Makes every entry held for a changed identity key due at `now` (the user accepted a key:
   * each is encrypted again, and held again if another member's key is still unaccepted).
   * Returns how many.
   */
  wakeUntrusted(now: number): number {
    return this.#db.run("UPDATE group_outbox SET next_attempt_at = ? WHERE last_error = 'UNTRUSTED_IDENTITY' AND next_attempt_at > ?", [
      checkInteger(now, 'now'),
      now,
    ]).changes;
  }

  /** The relay committed entry `id`: removes it and marks its message `sent`. */
  complete(id: number): void {
    this.#finish(id, 'sent');
  }

  /** Gives entry `id` up: removes it and marks its message `failed`. */
  fail(id: number): void {
    this.#finish(id, 'failed');
  }

  #finish(id: number, status: 'sent' | 'failed'): void {
    this.#db.transaction(() => {
      const row = this.#db.get<{ message_id: string | null }>('SELECT message_id FROM group_outbox WHERE id = ?', [id]);
      if (!row) return;
      this.#db.run('DELETE FROM group_outbox WHERE id = ?', [id]);
      if (row.message_id === null) return;
      // The transcript to one's own devices is an ordinary outbox entry of the same message; the
      // message is sent once the group upload is committed (the transcript may still be queued).
      const from = status === 'sent' ? "status IN ('pending', 'failed')" : "status = 'pending'";
      this.#db.run(`UPDATE messages SET status = ? WHERE direction = 'out' AND id = ? AND ${from}`, [status, row.message_id]);
    });
  }

  #toEntry(r: GroupOutboxRow): GroupOutboxEntry {
    return {
      id: r.id,
      groupId: r.group_id,
      ...(r.message_id !== null ? { messageId: r.message_id } : {}),
      envelopeMessageId: r.envelope_message_id,
      content: copyBytes(r.content),
      timestamp: r.timestamp,
      urgent: r.urgent === 1,
      attempts: r.attempts,
      nextAttemptAt: r.next_attempt_at,
      ...(r.last_error !== null ? { lastError: r.last_error } : {}),
      ...(r.distribution_id !== null && r.payload !== null ? { distributionId: r.distribution_id, payload: copyBytes(r.payload) } : {}),
    };
  }
}
