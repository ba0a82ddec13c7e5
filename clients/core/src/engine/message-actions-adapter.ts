// SPDX-License-Identifier: AGPL-3.0-only
/**
 * The engine's ports for message actions and blocking (message-actions.ts, blocklist.ts) over
 * the SQLCipher store's MessageActionsStore and BlocklistStore, and the parts of a message view
 * they add (edits, tombstone, reactions, quote, expiry). Conversations are names on the engine
 * side and local ids in the store; the store adapter hands over its mapping.
 */
import type { Aci, MessageId } from '@parley/protocol';
import type { ClientStore } from '../store/client-store.js';
import type { ConversationId, MessageKey } from '../store/store-types.js';
import type { BlocklistPort } from './blocklist.js';
import type { MessageView } from './client-api.js';
import { quoteExcerpt, type ActionTarget, type ExpiredMessage, type MessageActionsPort } from './message-actions.js';

/** What the store adapter shares with this one. */
export interface ActionsAdapterHelpers {
  /** The local conversation for an engine conversation name (created when `create`). */
  conversationId(conversation: string, create: boolean): ConversationId | undefined;
  /** The engine conversation name of a local conversation. */
  conversationName(id: ConversationId): string;
  /** `user@domain` of an account (one's own too), or the ACI. */
  addressOf(aci: string): string;
  /** The engine's clock, ms since the epoch. */
  now(): number;
}

/** The fields of a message view that actions add. */
export type ActionViewFields = Pick<MessageView, 'deleted' | 'editedAt' | 'edits' | 'reactions' | 'quote' | 'expireTimer' | 'expiresAt' | 'timerUpdate'>;

/** The action state of a message in a history archive (device linking). */
export interface ArchivedActions {
  readonly expireTimer?: number;
  readonly expiresAt?: number;
  readonly editedAt?: number;
  readonly deleted?: 'everyone';
  readonly deletedAt?: number;
  readonly timerUpdate?: number;
  readonly versions?: ReadonlyArray<{ id: string; lamport: number; sentAt: number; body: string }>;
  readonly reactions?: ReadonlyArray<{ reactorAci: string; emoji: string; lamport: number; actionId: string; sentAt: number }>;
  readonly quote?: { targetAuthor: string; targetId: string; text: string };
}

/** Archive lines of conversation state besides messages. */
export type ActionsArchiveLine =
  | { readonly type: 'timer'; readonly conversation: string; readonly seconds: number; readonly lamport: number; readonly senderAci: string; readonly messageId: string }
  | { readonly type: 'blocked'; readonly version: number; readonly deviceId: number; readonly contacts: ReadonlyArray<{ aci: string; address?: string }> };

/** The ports and view parts, over `store`. */
export interface MessageActionsAdapter extends MessageActionsPort, BlocklistPort {
  /** The view fields of message (senderAci, id). */
  viewFields(senderAci: string, id: string): ActionViewFields;
  /** The action state of a message for the history archive; undefined when it has none. */
  archivedActions(senderAci: string, id: string): ArchivedActions | undefined;
  /** Restores a message's action state from the archive (the message is stored). */
  restoreActions(senderAci: string, id: string, actions: ArchivedActions): void;
  /** Timer and block-list lines of the archive. */
  actionArchiveLines(): Iterable<ActionsArchiveLine>;
  /** Imports a timer or block-list line of the archive. */
  importActionLine(line: ActionsArchiveLine): void;
}

interface TargetRow {
  conversation_id: string;
  sender_aci: string;
  id: string;
  direction: 'in' | 'out';
  sender_device: number;
  kind: ActionTarget['kind'];
  body: string;
  sent_at: number;
  lamport: number;
  deleted: 'everyone' | 'local' | null;
}

const TARGET_COLUMNS = 'conversation_id, sender_aci, id, direction, sender_device, kind, body, sent_at, lamport, deleted';

/** Builds the ports over `store`. */
export function adaptMessageActions(store: ClientStore, helpers: ActionsAdapterHelpers): MessageActionsAdapter {
  const { database, actions, blocklist, messages } = store;
  const key = (senderAci: string, id: string): MessageKey => ({ senderAci: senderAci as Aci, id: id as MessageId });
  const toTarget = (r: TargetRow): ActionTarget => ({
    id: r.id,
    senderAci: r.sender_aci,
    senderDevice: r.sender_device,
    direction: r.direction,
    conversation: helpers.conversationName(r.conversation_id as ConversationId),
    kind: r.kind,
    body: r.body,
    sentAt: r.sent_at,
    lamport: r.lamport,
    ...(r.deleted !== null ? { deleted: r.deleted } : {}),
  });

  return {
    actionTarget(senderAci, id) {
      const r = database.get<TargetRow>(`SELECT ${TARGET_COLUMNS} FROM messages WHERE sender_aci = ? AND id = ?`, [senderAci, id]);
      return r && toTarget(r);
    },
    targetsById(conversation, id) {
      const conv = helpers.conversationId(conversation, false);
      if (!conv) return [];
      return database.all<TargetRow>(`SELECT ${TARGET_COLUMNS} FROM messages WHERE conversation_id = ? AND id = ? ORDER BY sender_aci`, [conv, id]).map(toTarget);
    },
    applyEdit: (senderAci, id, v) => actions.applyEdit(key(senderAci, id), { id: v.id as MessageId, lamport: v.lamport, sentAt: v.sentAt, body: v.body }),
    versionLamport: (senderAci, id) => actions.maxVersionLamport(key(senderAci, id)),
    tombstone: (senderAci, id, scope, at) => actions.tombstone(key(senderAci, id), scope, at),
    setReaction: (targetAuthor, targetId, c) =>
      actions.setReaction(key(targetAuthor, targetId), { reactorAci: c.reactorAci as Aci, emoji: c.emoji, lamport: c.lamport, actionId: c.actionId as MessageId, sentAt: c.sentAt }),
    reactionLamport: (targetAuthor, targetId, reactorAci) => actions.reactionLamport(key(targetAuthor, targetId), reactorAci as Aci),
    saveQuote: (senderAci, id, q) => actions.saveQuote(key(senderAci, id), { targetAuthor: q.targetAuthor as Aci, targetId: q.targetId as MessageId, text: q.text }),
    messageExtras(senderAci, id) {
      const state = actions.state(key(senderAci, id));
      const quote = actions.quote(key(senderAci, id));
      return { ...(state?.expireTimer ? { expireTimer: state.expireTimer } : {}), ...(quote ? { quote } : {}) };
    },
    setExpiry: (senderAci, id, timer, at) => void actions.setExpiry(key(senderAci, id), timer, at),
    conversationTimer(conversation) {
      const conv = helpers.conversationId(conversation, false);
      return conv ? (actions.timer(conv)?.seconds ?? 0) : 0;
    },
    applyTimer(conversation, c) {
      const conv = helpers.conversationId(conversation, true)!;
      return actions.applyTimer(conv, { seconds: c.seconds, lamport: c.lamport, senderAci: c.senderAci as Aci, messageId: c.messageId as MessageId });
    },
    markTimerUpdate: (senderAci, id, seconds) => actions.markTimerUpdate(key(senderAci, id), seconds),
    addPending: (a) =>
      actions.addPending({ targetAuthor: a.targetAuthor as Aci, targetId: a.targetId as MessageId, senderAci: a.senderAci as Aci, actionId: a.actionId as MessageId, kind: a.kind, payload: a.payload }),
    takePending: (targetAuthor, targetId) => actions.takePending(key(targetAuthor, targetId)),
    deleteExpired(nowMs, limit): ExpiredMessage[] {
      return actions.deleteExpired(nowMs, limit).map((r) => ({
        id: r.id,
        senderAci: r.senderAci,
        senderDevice: r.senderDevice,
        conversation: helpers.conversationName(r.conversationId),
        attachments: r.attachments,
      }));
    },
    nextExpiry: () => actions.nextExpiry(),
    purgeSearchIndex: () => actions.purgeSearchIndex(),
    addressOf: (aci) => helpers.addressOf(aci),

    isBlocked: (aci) => blocklist.isBlocked(aci),
    blockedList: () => blocklist.list(),
    blocklistVersion: () => blocklist.version(),
    replaceBlocklist(contacts, version, nowMs) {
      const r = blocklist.replace(contacts, version, nowMs);
      // A blocked contact's address is a contact's address too (so history and views can name it).
      if (r) for (const c of contacts) if (c.address) messages.saveContact({ aci: c.aci as Aci, address: c.address });
      return r;
    },

    viewFields(senderAci, id): ActionViewFields {
      const k = key(senderAci, id);
      const state = actions.state(k);
      if (!state) return {};
      const out: { -readonly [K in keyof ActionViewFields]: ActionViewFields[K] } = {};
      if (state.deleted === 'everyone') out.deleted = true;
      if (state.editedAt !== undefined) {
        out.editedAt = state.editedAt;
        out.edits = actions.versions(k).map((v) => ({ id: v.id, text: v.body, sentAt: v.sentAt }));
      }
      const reactions = actions.reactions(k);
      if (reactions.length > 0) out.reactions = reactions.map((r) => ({ emoji: r.emoji, reactor: helpers.addressOf(r.reactorAci), sentAt: r.sentAt }));
      const quote = actions.quote(k);
      if (quote) {
        const target = database.get<{ body: string }>('SELECT body FROM messages WHERE sender_aci = ? AND id = ? AND deleted IS NULL', [quote.targetAuthor, quote.targetId]);
        out.quote = { id: quote.targetId, author: helpers.addressOf(quote.targetAuthor), text: target ? quoteExcerpt(target.body) : quote.text, found: target !== undefined };
      }
      if (state.expireTimer !== undefined) out.expireTimer = state.expireTimer;
      if (state.expiresAt !== undefined) out.expiresAt = state.expiresAt;
      if (state.timerUpdate !== undefined) out.timerUpdate = state.timerUpdate;
      return out;
    },

    archivedActions(senderAci, id) {
      const k = key(senderAci, id);
      const state = actions.state(k);
      if (!state) return undefined;
      const versions = actions.versions(k);
      const reactions = actions.reactions(k);
      const quote = actions.quote(k);
      const out: ArchivedActions = {
        ...(state.expireTimer !== undefined ? { expireTimer: state.expireTimer } : {}),
        ...(state.expiresAt !== undefined ? { expiresAt: state.expiresAt } : {}),
        ...(state.editedAt !== undefined ? { editedAt: state.editedAt } : {}),
        ...(state.deleted === 'everyone' ? { deleted: 'everyone' as const, ...(state.deletedAt !== undefined ? { deletedAt: state.deletedAt } : {}) } : {}),
        ...(state.timerUpdate !== undefined ? { timerUpdate: state.timerUpdate } : {}),
        ...(versions.length > 0 ? { versions } : {}),
        ...(reactions.length > 0 ? { reactions } : {}),
        ...(quote ? { quote } : {}),
      };
      return Object.keys(out).length > 0 ? out : undefined;
    },

    restoreActions(senderAci, id, a) {
      const k = key(senderAci, id);
      if (a.deleted === 'everyone') {
        actions.tombstone(k, 'everyone', a.deletedAt ?? 0);
        return;
      }
      if (a.expireTimer !== undefined && a.expiresAt !== undefined) actions.setExpiry(k, a.expireTimer, a.expiresAt);
      if (a.timerUpdate !== undefined) actions.markTimerUpdate(k, a.timerUpdate);
      if (a.versions) actions.restoreVersions(k, a.versions.map((v) => ({ id: v.id as MessageId, lamport: v.lamport, sentAt: v.sentAt, body: v.body })));
      for (const r of a.reactions ?? []) {
        actions.setReaction(k, { reactorAci: r.reactorAci as Aci, emoji: r.emoji, lamport: r.lamport, actionId: r.actionId as MessageId, sentAt: r.sentAt });
      }
      if (a.quote) actions.saveQuote(k, { targetAuthor: a.quote.targetAuthor as Aci, targetId: a.quote.targetId as MessageId, text: a.quote.text });
    },

    *actionArchiveLines(): Iterable<ActionsArchiveLine> {
      const rows = database.all<{ conversation_id: string; seconds: number; lamport: number; sender_aci: string; message_id: string }>(
        'SELECT conversation_id, seconds, lamport, sender_aci, message_id FROM conversation_timers ORDER BY conversation_id',
      );
      for (const r of rows) {
        yield {
          type: 'timer',
          conversation: helpers.conversationName(r.conversation_id as ConversationId),
          seconds: r.seconds,
          lamport: r.lamport,
          senderAci: r.sender_aci,
          messageId: r.message_id,
        };
      }
      const version = blocklist.version();
      if (version.version > 0) {
        yield { type: 'blocked', version: version.version, deviceId: version.deviceId, contacts: blocklist.list().map((c) => ({ aci: c.aci, ...(c.address ? { address: c.address } : {}) })) };
      }
    },

    importActionLine(line) {
      if (line.type === 'timer') {
        const conv = helpers.conversationId(line.conversation, true);
        if (conv) actions.applyTimer(conv, { seconds: line.seconds, lamport: line.lamport, senderAci: line.senderAci as Aci, messageId: line.messageId as MessageId });
      } else if (line.type === 'blocked') {
        blocklist.replace(line.contacts, { version: line.version, deviceId: line.deviceId }, helpers.now());
      }
    },
  };
}
