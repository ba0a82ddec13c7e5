// SPDX-License-Identifier: AGPL-3.0-only
/**
 * The receipt and presence ports (receipts.ts, presence.ts) over the SQLCipher client store. Part
 * of the engine's store adapter (store-adapter.ts), kept apart because it is one concern: who has
 * which message, who has read what, and whose presence this account may watch.
 */
import type { Aci, MessageId } from '@parley/protocol';
import { ClientError } from '../errors.js';
import type { ClientStore } from '../store/client-store.js';
import type { ConversationId } from '../store/store-types.js';
import type { ReceiptView } from './client-api.js';
import type { PresencePorts } from './presence.js';
import type { ReceiptPorts } from './receipts.js';

/** What the adapter needs from the store adapter it is part of. */
export interface ReceiptAdapterHelpers {
  /** The local conversation for a peer named by address, if there is one. */
  conversationId(peer: string): ConversationId | undefined;
  /** A contact's address, or its ACI when the address is unknown. */
  addressOf(aci: string): string;
  /** This account's ACI. @throws ClientError NO_ACCOUNT */
  selfAci(): string;
}

/** The receipt and presence ports over `store`. */
export function adaptReceiptPorts(store: ClientStore, h: ReceiptAdapterHelpers): ReceiptPorts & PresencePorts {
  const { receipts, messages, settings } = store;
  const self = () => h.selfAci() as Aci;
  const requireConversation = (conversation: string): ConversationId => {
    const id = h.conversationId(conversation);
    if (!id) throw new ClientError('NOT_FOUND', `no conversation with ${conversation}`);
    return id;
  };
  return {
    getSetting: (name) => settings.get(name),
    setSetting: (name, value) => settings.set(name, value),

    addRecipients: (messageId, recipients, status = 'pending') => receipts.addRecipients(self(), messageId as MessageId, recipients as Aci[], status),
    applyReceipt(from, ids, kind, at) {
      const r = receipts.applyReceipt(self(), from as Aci, ids as MessageId[], kind, at);
      return { known: r.known, changed: r.changed };
    },
    markConversationRead(conversation) {
      return messages.markRead(requireConversation(conversation)).map((k) => ({ author: k.senderAci, id: k.id }));
    },
    markReadSync(list) {
      return receipts.markIncomingRead(list.map((m) => ({ senderAci: m.author as Aci, id: m.id as MessageId }))).map((k) => ({ author: k.senderAci, id: k.id }));
    },
    receiptViews(conversation, options): ReceiptView[] {
      const id = requireConversation(conversation);
      let rows;
      if (options.messageId !== undefined) {
        const m = messages.message({ senderAci: self(), id: options.messageId as MessageId });
        if (!m || m.conversationId !== id || m.direction !== 'out') throw new ClientError('NOT_FOUND', `no message ${options.messageId} of yours with ${conversation}`);
        rows = receipts.recipients(self(), m.id);
      } else {
        rows = receipts.recipientsInConversation(id, self(), options.limit);
      }
      return rows.map((r) => ({
        messageId: r.messageId,
        conversation,
        recipient: h.addressOf(r.recipientAci),
        status: r.status,
        updatedAt: r.updatedAt,
        ...(r.deliveredAt !== undefined ? { deliveredAt: r.deliveredAt } : {}),
        ...(r.readAt !== undefined ? { readAt: r.readAt } : {}),
      }));
    },

    unsentEntries(destinationAci, limit) {
      return store.database
        .all<{ id: number; content: Uint8Array }>(
          'SELECT id, content FROM outbox WHERE destination_aci = ? AND message_id IS NULL AND encrypted_at IS NULL ORDER BY id DESC LIMIT ?',
          [destinationAci, limit],
        )
        .map((r) => ({ id: r.id, content: new Uint8Array(r.content) }));
    },
    replaceUnsentContent(id, content) {
      return store.database.run('UPDATE outbox SET content = ? WHERE id = ? AND encrypted_at IS NULL', [new Uint8Array(content), id]).changes > 0;
    },

    routeAddress: (aci) => messages.contact(aci as Aci)?.address ?? store.groups.memberAddress(aci),

    savePresenceToken(aci, token) {
      // Only for a known contact: the token's row hangs off the contact's.
      if (!messages.contact(aci as Aci)) return false;
      return receipts.savePresenceToken(aci as Aci, token);
    },
    presenceContacts() {
      const me = h.selfAci();
      const tokens = new Map(receipts.presenceTokens().map((t) => [t.aci as string, t.token]));
      return messages
        .contacts()
        .filter((c) => c.aci !== me && c.address !== undefined)
        .map((c) => {
          const token = tokens.get(c.aci);
          return { aci: c.aci, address: c.address!, ...(token ? { token } : {}) };
        });
    },
  };
}
