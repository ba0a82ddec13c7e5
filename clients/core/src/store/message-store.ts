// SPDX-License-Identifier: AGPL-3.0-only
/**
 * Contacts, conversations and messages. Every device of every member orders a conversation the
 * same way, by (lamport, sender ACI, message id) (DESIGN §6); history pages walk that order
 * backwards. A message is unique per (sender ACI, logical message id): storing it twice is
 * answered with the stored one, which is how redelivered envelopes are dropped (the insert is
 * the dedup check, inside the receive pipeline's transaction).
 */
import { randomBytes } from 'node:crypto';
import type { Aci, DeviceId, MessageId } from '@parley/protocol';
import { ClientError } from '../errors.js';
import type { Clock } from '@parley/crypto';
import { type ClientDatabase, isForeignKeyViolation } from './database.js';
import { type SearchOptions, type SearchResult, searchMessages } from './message-search.js';
import { bytesOrUndefined } from './sql-values.js';
import {
  type ConversationId,
  MESSAGE_DIRECTIONS,
  MESSAGE_KINDS,
  MESSAGE_STATUSES,
  type MessageDirection,
  type MessageKey,
  type MessageKind,
  type MessageRecord,
  type MessageStatus,
  canonicalAddress,
  checkAci,
  checkInteger,
  checkMessageId,
} from './store-types.js';

/** A peer account as this device knows it. */
export interface Contact {
  readonly aci: Aci;
  /** `user@domain`, once known. */
  readonly address?: string;
  /** The identity key last seen for the account, once a message or bundle showed one. */
  readonly identityKey?: Uint8Array;
  /** The key last seen differs from the key the user trusts: sending is blocked until accepted. */
  readonly identityChanged: boolean;
  /** The user compared safety numbers for the current key. Cleared by any key change. */
  readonly verified: boolean;
  /** Milliseconds since the epoch. */
  readonly updatedAt: number;
}

/** What every conversation has. */
interface ConversationBase {
  readonly id: ConversationId;
  /** Milliseconds since the epoch. */
  readonly createdAt: number;
  /** Latest `receivedAt` of its messages (or `createdAt`), for ordering the conversation list. */
  readonly lastActivityAt: number;
}

/** A conversation with one peer account. */
export interface DirectConversation extends ConversationBase {
  readonly kind: 'direct';
  readonly peerAci: Aci;
  /** The peer's `user@domain`, when known. */
  readonly peerAddress?: string;
}

/** The conversation of a group (its state lives in the group store). */
export interface GroupConversation extends ConversationBase {
  readonly kind: 'group';
  /** The group's id, 64 lowercase hex characters. */
  readonly groupId: string;
  /** The group's current title. */
  readonly title: string;
}

/** A conversation: one per peer account (`direct`) or per group (`group`). */
export type Conversation = DirectConversation | GroupConversation;

/** A line of the conversation list. */
export type ConversationSummary = Conversation & {
  /** The last message in display order, if any. */
  readonly lastMessage?: MessageRecord;
  /** Incoming text messages not yet read. */
  readonly unreadCount: number;
};

/** A message to store; see {@link MessageRecord}. */
export interface NewMessage {
  readonly conversationId: ConversationId;
  readonly id: MessageId;
  readonly senderAci: Aci;
  readonly senderDevice: DeviceId;
  readonly direction: MessageDirection;
  /** Default `text`. */
  readonly kind?: MessageKind;
  readonly body: string;
  /** The sender's timestamp, milliseconds since the epoch. */
  readonly sentAt: number;
  /** Default: now, from the store's clock. */
  readonly receivedAt?: number;
  /** A non-negative safe integer; see {@link MessageStore.nextLamport}. */
  readonly lamport: number;
  /** Default `pending` for outgoing, `delivered` (unread) for incoming. */
  readonly status?: MessageStatus;
}

/** The answer of {@link MessageStore.addMessage}. */
export type AddMessageResult =
  | { readonly added: true; readonly message: MessageRecord }
  /** The (sender, id) pair is stored already: a redelivery or a replay. Nothing changed. */
  | { readonly added: false; readonly reason: 'duplicate'; readonly existing: MessageRecord };

/** Options of {@link MessageStore.history}. */
export interface HistoryOptions {
  /** Page size, 1..1000; default 50. */
  readonly limit?: number;
  /** Return the page just before this message (in display order); default: the newest page. */
  readonly before?: MessageId;
}

/** Default page size of {@link MessageStore.history}. */
export const DEFAULT_HISTORY_LIMIT = 50;
/** Largest page size of {@link MessageStore.history}. */
export const MAX_HISTORY_LIMIT = 1000;

const STATUS_RANK: Record<MessageStatus, number> = { pending: 0, failed: 0, sent: 1, delivered: 2, read: 3 };

interface MessageRow {
  id: string;
  conversation_id: string;
  sender_aci: string;
  sender_device: number;
  direction: MessageDirection;
  kind: MessageKind;
  body: string;
  sent_at: number;
  received_at: number;
  lamport: number;
  status: MessageStatus;
}

interface ContactRow {
  aci: string;
  address: string | null;
  identity_key: Uint8Array | null;
  identity_changed: number;
  verified: number;
  updated_at: number;
}

interface ConversationRow {
  id: string;
  kind: 'direct' | 'group';
  peer_aci: string | null;
  peer_address: string | null;
  group_id: string | null;
  group_title: string | null;
  created_at: number;
  last_activity_at: number;
}

const MESSAGE_COLUMNS = 'id, conversation_id, sender_aci, sender_device, direction, kind, body, sent_at, received_at, lamport, status';
/**
 * What history, search and the conversation list show (one parameter: now, ms): not a message
 * deleted on this device only, not an expired one (the expiry sweeper deletes those, but a
 * reader must not depend on it having run). Tombstones of deletes for everyone are shown.
 */
export const VISIBLE_MESSAGE = "deleted IS NOT 'local' AND (expires_at IS NULL OR expires_at > ?)";
/** Incoming text that counts as unread (one parameter: now, ms); tombstones do not. */
const UNREAD = `direction = 'in' AND kind = 'text' AND status <> 'read' AND deleted IS NULL AND (expires_at IS NULL OR expires_at > ?)`;
const CONVERSATION_COLUMNS = `c.id, c.kind, c.peer_aci, ct.address AS peer_address, g.id AS group_id, g.title AS group_title,
  c.created_at, c.last_activity_at`;
const CONVERSATION_FROM = 'conversations c LEFT JOIN contacts ct ON ct.aci = c.peer_aci LEFT JOIN groups g ON g.conversation_id = c.id';
const CONVERSATION_SELECT = `SELECT ${CONVERSATION_COLUMNS} FROM ${CONVERSATION_FROM}`;
/** What {@link CONVERSATION_SELECT} reads (for the read cache). */
const CONVERSATION_TABLES = ['conversations', 'contacts', 'groups'];
const CONVERSATION_BY_ID = `${CONVERSATION_SELECT} WHERE c.id = ?`;
const CONVERSATION_BY_PEER = `${CONVERSATION_SELECT} WHERE c.peer_aci = ?`;

function toMessage(r: MessageRow): MessageRecord {
  return {
    conversationId: r.conversation_id as ConversationId,
    id: r.id as MessageId,
    senderAci: r.sender_aci as Aci,
    senderDevice: r.sender_device as DeviceId,
    direction: r.direction,
    kind: r.kind,
    body: r.body,
    sentAt: r.sent_at,
    receivedAt: r.received_at,
    lamport: r.lamport,
    status: r.status,
  };
}

function toContact(r: ContactRow): Contact {
  const identityKey = bytesOrUndefined(r.identity_key);
  return {
    aci: r.aci as Aci,
    ...(r.address !== null ? { address: r.address } : {}),
    ...(identityKey ? { identityKey } : {}),
    identityChanged: r.identity_changed === 1,
    verified: r.verified === 1,
    updatedAt: r.updated_at,
  };
}

function toConversation(r: ConversationRow): Conversation {
  const base = { id: r.id as ConversationId, createdAt: r.created_at, lastActivityAt: r.last_activity_at };
  if (r.kind === 'group') return { ...base, kind: 'group', groupId: r.group_id ?? '', title: r.group_title ?? '' };
  return { ...base, kind: 'direct', peerAci: r.peer_aci as Aci, ...(r.peer_address !== null ? { peerAddress: r.peer_address } : {}) };
}

function oneOf<T extends string>(value: unknown, allowed: readonly T[], what: string): T {
  if (!allowed.includes(value as T)) throw new ClientError('INVALID_ARGUMENT', `${what} must be one of ${allowed.join(', ')}`);
  return value as T;
}

/** Contacts, conversations and messages of one profile. */
export class MessageStore {
  readonly #db: ClientDatabase;
  readonly #clock: Clock;

  /** Over the client schema in `db`; `clock` stamps receipt and update times. */
  constructor(db: ClientDatabase, clock: Clock) {
    this.#db = db;
    this.#clock = clock;
  }

  // ── contacts ────────────────────────────────────────────────────────────────────────────────

  /**
   * Records that account `aci` has address `address` (canonicalized to lowercase `user@domain`).
   * An address moves: another account that had it loses it (usernames can be released and
   * taken again).
   */
  saveContact(contact: { readonly aci: Aci; readonly address: string }): Contact {
    const aci = checkAci(contact.aci);
    const address = canonicalAddress(contact.address);
    // Called for every message; the address rarely moves, and a kept read answers this one.
    const known = this.contactByAddress(address);
    if (known?.aci === aci) return known;
    const now = this.#clock.now();
    this.#db.transaction(() => {
      this.#db.run('UPDATE contacts SET address = NULL, updated_at = ? WHERE address = ? AND aci <> ?', [now, address, aci]);
      this.#db.run(
        `INSERT INTO contacts (aci, address, updated_at) VALUES (?, ?, ?)
         ON CONFLICT (aci) DO UPDATE SET address = excluded.address, updated_at = excluded.updated_at WHERE address IS NOT excluded.address`,
        [aci, address, now],
      );
    });
    return this.contact(aci)!;
  }

  /** The contact with account `aci`, or undefined. */
  contact(aci: Aci): Contact | undefined {
    const row = this.#db.getCached<ContactRow>(['contacts'], 'SELECT * FROM contacts WHERE aci = ?', [checkAci(aci)]);
    return row ? toContact(row) : undefined;
  }

  /** The contact with address `address` (any case), or undefined. */
  contactByAddress(address: string): Contact | undefined {
    const row = this.#db.getCached<ContactRow>(['contacts'], 'SELECT * FROM contacts WHERE address = ?', [canonicalAddress(address)]);
    return row ? toContact(row) : undefined;
  }

  /** Every contact, by address (those without one last). */
  contacts(): Contact[] {
    return this.#db.all<ContactRow>('SELECT * FROM contacts ORDER BY address IS NULL, address, aci').map(toContact);
  }

  /**
   * Marks the identity key currently seen for `aci` as verified by the user (or clears the
   * mark). A later key change clears it by itself. Verifying does not accept a changed key:
   * call the identity store's `acceptIdentity` for that.
   * @throws ClientError NOT_FOUND when no identity key is known for `aci`.
   */
  setVerified(aci: Aci, verified: boolean): void {
    checkAci(aci);
    const sql = verified
      ? 'UPDATE contacts SET verified_identity_key = identity_key, updated_at = ? WHERE aci = ? AND identity_key IS NOT NULL'
      : 'UPDATE contacts SET verified_identity_key = NULL, updated_at = ? WHERE aci = ? AND identity_key IS NOT NULL';
    if (this.#db.run(sql, [this.#clock.now(), aci]).changes === 0) {
      throw new ClientError('NOT_FOUND', 'no identity key is known for that account');
    }
  }

  // ── conversations ───────────────────────────────────────────────────────────────────────────

  /** The direct conversation with `peer`, created when missing; records the peer's address too. */
  conversationWith(peer: { readonly aci: Aci; readonly address: string }): DirectConversation {
    return this.#db.transaction(() => {
      this.saveContact(peer);
      const existing = this.conversationByPeer(peer.aci);
      if (existing) return existing;
      const id = randomBytes(16).toString('hex');
      const now = this.#clock.now();
      this.#db.run("INSERT INTO conversations (id, kind, peer_aci, created_at, last_activity_at) VALUES (?, 'direct', ?, ?, ?)", [
        id,
        peer.aci,
        now,
        now,
      ]);
      return this.conversation(id as ConversationId) as DirectConversation;
    });
  }

  /** The conversation `id`, or undefined. */
  conversation(id: ConversationId): Conversation | undefined {
    const row = this.#db.getCached<ConversationRow>(CONVERSATION_TABLES, CONVERSATION_BY_ID, [id]);
    return row ? toConversation(row) : undefined;
  }

  /** The direct conversation with account `aci`, or undefined. */
  conversationByPeer(aci: Aci): DirectConversation | undefined {
    const row = this.#db.getCached<ConversationRow>(CONVERSATION_TABLES, CONVERSATION_BY_PEER, [checkAci(aci)]);
    return row ? (toConversation(row) as DirectConversation) : undefined;
  }

  /** Every conversation with its last message and unread count, most recently active first. */
  conversations(): ConversationSummary[] {
    const now = this.#clock.now();
    const rows = this.#db.all<ConversationRow & { unread: number }>(
      `SELECT ${CONVERSATION_COLUMNS},
         (SELECT count(*) FROM messages m WHERE m.conversation_id = c.id AND ${UNREAD}) AS unread
       FROM ${CONVERSATION_FROM} ORDER BY c.last_activity_at DESC, c.id`,
      [now],
    );
    return rows.map((row) => {
      const last = this.#db.get<MessageRow>(
        `SELECT ${MESSAGE_COLUMNS} FROM messages WHERE conversation_id = ? AND ${VISIBLE_MESSAGE} ORDER BY lamport DESC, sender_aci DESC, id DESC LIMIT 1`,
        [row.id, now],
      );
      return { ...toConversation(row), ...(last ? { lastMessage: toMessage(last) } : {}), unreadCount: row.unread };
    });
  }

  /** The highest Lamport clock in conversation `id`; 0 when it has no messages. */
  maxLamport(id: ConversationId): number {
    return Number(this.#db.value('SELECT coalesce(max(lamport), 0) FROM messages WHERE conversation_id = ?', [id]));
  }

  /** The Lamport clock for a message this device sends now in conversation `id`: {@link maxLamport} + 1. */
  nextLamport(id: ConversationId): number {
    return this.maxLamport(id) + 1;
  }

  // ── messages ────────────────────────────────────────────────────────────────────────────────

  /**
   * Stores a message, or answers `{ added: false, reason: 'duplicate' }` with the stored one
   * when (senderAci, id) is taken. Raises the conversation's last activity.
   * @throws ClientError NOT_FOUND for an unknown conversation; INVALID_ARGUMENT for a bad field.
   */
  addMessage(input: NewMessage): AddMessageResult {
    const direction = oneOf(input.direction, MESSAGE_DIRECTIONS, 'direction');
    const kind = oneOf(input.kind ?? 'text', MESSAGE_KINDS, 'kind');
    let status = oneOf(input.status ?? (direction === 'out' ? 'pending' : 'delivered'), MESSAGE_STATUSES, 'status');
    if (typeof input.body !== 'string') throw new ClientError('INVALID_ARGUMENT', 'body must be a string');
    const receivedAt = checkInteger(input.receivedAt ?? this.#clock.now(), 'receivedAt');
    const params = [
      checkMessageId(input.id),
      input.conversationId,
      checkAci(input.senderAci, 'senderAci'),
      checkInteger(input.senderDevice, 'senderDevice', 1, 127),
      direction,
      kind,
      input.body,
      checkInteger(input.sentAt, 'sentAt'),
      receivedAt,
      checkInteger(input.lamport, 'lamport'),
      status,
    ];
    const insert = (): AddMessageResult => {
      let changes: number;
      try {
        changes = this.#db.run(
          `INSERT INTO messages (${MESSAGE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (sender_aci, id) DO NOTHING`,
          params,
        ).changes;
      } catch (err) {
        if (isForeignKeyViolation(err)) throw new ClientError('NOT_FOUND', 'no such conversation', { cause: err });
        throw err;
      }
      if (changes === 0) return { added: false, reason: 'duplicate', existing: this.message(input)! } as const;
      if (direction === 'in' && status !== 'read' && this.#readElsewhere(input.senderAci, input.id)) {
        this.#db.run("UPDATE messages SET status = 'read' WHERE sender_aci = ? AND id = ?", [input.senderAci, input.id]);
        status = 'read';
      }
      this.#db.run('UPDATE conversations SET last_activity_at = max(last_activity_at, ?) WHERE id = ?', [receivedAt, input.conversationId]);
      const message: MessageRecord = {
        conversationId: input.conversationId,
        id: input.id,
        senderAci: input.senderAci,
        senderDevice: input.senderDevice,
        direction,
        kind,
        body: input.body,
        sentAt: input.sentAt,
        receivedAt,
        lamport: input.lamport,
        status,
      };
      return { added: true, message };
    };
    // Inside a caller's transaction (the send and receive paths, per message) the two statements
    // need no savepoint of their own: once the insert succeeded, the update can only fail on an
    // I/O error, which fails the caller's transaction whole.
    return this.#db.inTransaction ? insert() : this.#db.transaction(insert);
  }

  /**
   * Whether this account's other device read message (`senderAci`, `id`) before it got here (an
   * early read sync, see ReceiptStore.markIncomingRead); takes the note. One kept read answers
   * "none waiting" for every message while there are none.
   */
  #readElsewhere(senderAci: Aci, id: MessageId): boolean {
    if (!this.#db.getCached<{ any: number }>(['early_read_syncs'], 'SELECT EXISTS (SELECT 1 FROM early_read_syncs) AS any')?.any) return false;
    return this.#db.get('DELETE FROM early_read_syncs WHERE sender_aci = ? AND message_id = ? RETURNING 1', [senderAci, id]) !== undefined;
  }

  /** The message `key`, or undefined. */
  message(key: MessageKey): MessageRecord | undefined {
    const row = this.#db.get<MessageRow>(`SELECT ${MESSAGE_COLUMNS} FROM messages WHERE sender_aci = ? AND id = ?`, [key.senderAci, key.id]);
    return row ? toMessage(row) : undefined;
  }

  /**
   * A page of conversation `conversationId`, newest first in display order (the reverse of
   * (lamport, senderAci, id)). Pass the last (oldest) id of a page as `before` for the next one.
   * @throws ClientError NOT_FOUND when `before` is not a message of the conversation.
   */
  history(conversationId: ConversationId, options: HistoryOptions = {}): MessageRecord[] {
    const limit = checkInteger(options.limit ?? DEFAULT_HISTORY_LIMIT, 'limit', 1, MAX_HISTORY_LIMIT);
    const order = `AND ${VISIBLE_MESSAGE} ORDER BY lamport DESC, sender_aci DESC, id DESC LIMIT ?`;
    const now = this.#clock.now();
    if (options.before === undefined) {
      return this.#db.all<MessageRow>(`SELECT ${MESSAGE_COLUMNS} FROM messages WHERE conversation_id = ? ${order}`, [conversationId, now, limit]).map(toMessage);
    }
    const cursor = this.#db.get<{ lamport: number; sender_aci: string; id: string }>(
      'SELECT lamport, sender_aci, id FROM messages WHERE conversation_id = ? AND id = ? ORDER BY sender_aci LIMIT 1',
      [conversationId, checkMessageId(options.before, 'before')],
    );
    if (!cursor) throw new ClientError('NOT_FOUND', 'the message to page before is not in this conversation');
    return this.#db
      .all<MessageRow>(`SELECT ${MESSAGE_COLUMNS} FROM messages WHERE conversation_id = ? AND (lamport, sender_aci, id) < (?, ?, ?) ${order}`, [
        conversationId,
        cursor.lamport,
        cursor.sender_aci,
        cursor.id,
        now,
        limit,
      ])
      .map(toMessage);
  }

  /**
   * Moves message `key` to `status` when that is progress: sent → delivered → read only go
   * forward (receipts can arrive out of order), `failed` only follows `pending`, and `pending`
   * only follows `failed` (a retry). Returns whether the status changed.
   */
  setStatus(key: MessageKey, status: MessageStatus): boolean {
    oneOf(status, MESSAGE_STATUSES, 'status');
    return this.#db.transaction(() => {
      const current = this.message(key)?.status;
      if (current === undefined || current === status) return false;
      const allowed =
        status === 'failed' ? current === 'pending' : status === 'pending' ? current === 'failed' : STATUS_RANK[status] > STATUS_RANK[current];
      if (!allowed) return false;
      this.#db.run('UPDATE messages SET status = ? WHERE sender_aci = ? AND id = ?', [status, key.senderAci, key.id]);
      return true;
    });
  }

  /** Replaces the text of message `key` (an edit); the search index follows. Returns whether it exists. */
  editBody(key: MessageKey, body: string): boolean {
    if (typeof body !== 'string') throw new ClientError('INVALID_ARGUMENT', 'body must be a string');
    return this.#db.run('UPDATE messages SET body = ? WHERE sender_aci = ? AND id = ?', [body, key.senderAci, key.id]).changes > 0;
  }

  /**
   * Deletes message `key` from history and from the search index. Returns whether it existed.
   * Its dedup key goes with it: a redelivery of a deleted message would be stored again, so
   * the engine records deletions it must remember (delete-for-everyone) as tombstones.
   */
  deleteMessage(key: MessageKey): boolean {
    return this.#db.run('DELETE FROM messages WHERE sender_aci = ? AND id = ?', [key.senderAci, key.id]).changes > 0;
  }

  /** Incoming text messages of conversation `id` not yet read. */
  unreadCount(id: ConversationId): number {
    return Number(
      this.#db.value(`SELECT count(*) FROM messages WHERE conversation_id = ? AND ${UNREAD}`, [id, this.#clock.now()]),
    );
  }

  /**
   * Marks the incoming text messages of conversation `id` read, up to and including `upTo` in
   * display order (default: all). Returns the keys that changed, oldest first: the messages to
   * send read receipts for.
   * @throws ClientError NOT_FOUND when `upTo` is not a message of the conversation.
   */
  markRead(id: ConversationId, upTo?: MessageKey): MessageKey[] {
    return this.#db.transaction(() => {
      let bound = '';
      const params: (string | number)[] = [id];
      if (upTo) {
        const cursor = this.#db.get<{ lamport: number }>('SELECT lamport FROM messages WHERE conversation_id = ? AND sender_aci = ? AND id = ?', [
          id,
          upTo.senderAci,
          upTo.id,
        ]);
        if (!cursor) throw new ClientError('NOT_FOUND', 'that message is not in this conversation');
        bound = 'AND (lamport, sender_aci, id) <= (?, ?, ?)';
        params.push(cursor.lamport, upTo.senderAci, upTo.id);
      }
      const rows = this.#db.all<{ sender_aci: string; id: string }>(
        `SELECT sender_aci, id FROM messages WHERE conversation_id = ? AND direction = 'in' AND kind = 'text' AND status <> 'read' ${bound}
         ORDER BY lamport, sender_aci, id`,
        params,
      );
      for (const r of rows) this.#db.run("UPDATE messages SET status = 'read' WHERE sender_aci = ? AND id = ?", [r.sender_aci, r.id]);
      return rows.map((r) => ({ senderAci: r.sender_aci as Aci, id: r.id as MessageId }));
    });
  }

  /**
   * Full-text search over text messages, newest first. Each whitespace-separated word of
   * `query` must match; a word ending in `*` matches as a prefix. The query is never parsed as
   * FTS syntax, so quotes, `*`, `-`, `NEAR(` and the like are just text. A query without any
   * searchable word answers an empty list.
   */
  search(query: string, options: SearchOptions = {}): SearchResult[] {
    return searchMessages(this.#db, query, options, this.#clock.now());
  }
}
