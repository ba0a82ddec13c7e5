// SPDX-License-Identifier: AGPL-3.0-only
/**
 * Delivery and read receipts (DESIGN §6): encrypted messages to the AUTHOR of the messages they
 * name, batched (one receipt names many messages), sent through the durable outbox and never
 * receipted themselves. A send names every device of its destination, so every device of the
 * author learns the state; and a ReadSync tells one's own other devices what was read here (they
 * mark it read and send no receipts of their own).
 *
 * The state is kept per message and per recipient (store/receipt-store.ts), so group messages
 * — one author, many recipients — fit the same tables: a receipt comes from one recipient.
 */
import { aciFromBytes, aciToBytes, ReceiptMessage_Type, toHex, type Aci, type ReadSync, type ReceiptMessage } from '@parley/protocol';
import type { ReceiptView } from './client-api.js';
import { decodeContent, encodeContent } from './content-codec.js';
import type { EngineMessage } from './engine-store.js';

/** What a receipt reports. */
export type ReceiptKind = 'delivered' | 'read';

/** The author and id of a message. */
export interface AuthoredMessage {
  readonly author: string;
  /** 32 hex. */
  readonly id: string;
}

/** What the receipt features need of the store. */
export interface ReceiptPorts {
  /** Records the recipients of message `messageId` of this account (see ReceiptStore.addRecipients). */
  addRecipients(messageId: string, recipients: readonly string[], status?: 'pending' | 'sent'): void;
  /**
   * Applies a receipt from `from` for this account's messages; answers the ids that named
   * messages sent to `from` (each once) and those whose state moved.
   */
  applyReceipt(from: string, messageIds: readonly string[], kind: ReceiptKind, at: number): { known: string[]; changed: string[] };
  /** Marks the unread incoming messages of `conversation` read; answers them, oldest first. NOT_FOUND for an unknown conversation. */
  markConversationRead(conversation: string): AuthoredMessage[];
  /** Marks incoming messages read that another own device read; answers those that changed. */
  markReadSync(messages: readonly AuthoredMessage[]): AuthoredMessage[];
  /**
   * Per-recipient state of this account's messages in `conversation`: of message `messageId`
   * (NOT_FOUND when it is not one of them), else of the newest `limit` ones, newest first.
   */
  receiptViews(conversation: string, options: { messageId?: string; limit: number }): ReceiptView[];
  /**
   * Queued sends to `destinationAci` that carry no message and are not encrypted yet (so their
   * content may still change), newest first, at most `limit`.
   */
  unsentEntries(destinationAci: string, limit: number): Array<{ id: number; content: Uint8Array }>;
  /** Replaces the content of such an entry; false when it was encrypted or sent meanwhile. */
  replaceUnsentContent(id: number, content: Uint8Array): boolean;
  /** Where a receipt to `aci` goes: its contact address, else the address a group it is in gives it. */
  routeAddress(aci: string): string | undefined;
}

/** Most message ids one receipt carries; a longer list goes out as several receipts. */
export const RECEIPT_BATCH = 500;

/** The content of a receipt for `ids` (32 hex each). */
export function receiptContent(kind: ReceiptKind, ids: readonly string[], nowMs: number): Uint8Array {
  return encodeContent({
    body: {
      case: 'receipt',
      value: {
        type: kind === 'read' ? ReceiptMessage_Type.READ : ReceiptMessage_Type.DELIVERY,
        messageIds: ids.map(hexBytes),
        timestamp: BigInt(Math.max(0, Math.floor(nowMs))),
      },
    },
  });
}

/** The content of a ReadSync: these messages were read on this device. */
export function readSyncContent(messages: readonly AuthoredMessage[]): Uint8Array {
  return encodeContent({
    body: {
      case: 'sync',
      value: { kind: { case: 'read', value: { messages: messages.map((m) => ({ author: aciToBytes(m.author as Aci), messageId: hexBytes(m.id) })) } } },
    },
  });
}

/**
 * The ids of a queued delivery receipt that can take more, when `content` is one; a receipt still
 * waiting in the outbox absorbs the ids of the next batch instead of a second receipt going out.
 */
export function openDeliveryReceipt(content: Uint8Array): string[] | undefined {
  const c = decodeContent(content);
  if (c?.body.case !== 'receipt' || c.body.value.type !== ReceiptMessage_Type.DELIVERY) return undefined;
  const ids = c.body.value.messageIds.filter((id) => id.length === 16).map((id) => toHex(id));
  return ids.length < RECEIPT_BATCH ? ids : undefined;
}

/** A received receipt's kind and ids (16-byte ids only, each once); undefined for a type this version does not know. */
export function parseReceipt(r: ReceiptMessage): { kind: ReceiptKind; ids: string[] } | undefined {
  const kind = r.type === ReceiptMessage_Type.DELIVERY ? 'delivered' : r.type === ReceiptMessage_Type.READ ? 'read' : undefined;
  if (!kind) return undefined;
  const ids = [...new Set(r.messageIds.filter((id) => id.length === 16).map((id) => toHex(id)))];
  return { kind, ids };
}

/** The well-formed entries of a received ReadSync. */
export function parseReadSync(r: ReadSync): AuthoredMessage[] {
  const out: AuthoredMessage[] = [];
  for (const m of r.messages) {
    if (m.author.length !== 16 || m.messageId.length !== 16) continue;
    try {
      out.push({ author: aciFromBytes(m.author), id: toHex(m.messageId) });
    } catch {
      // not an ACI: skipped
    }
  }
  return out;
}

/**
 * The messages a delivery receipt is owed for, by author: people's text messages from other
 * accounts, stored just now. Notices, one's own messages (transcripts) and receipts are not
 * receipted.
 */
export function deliveryReceiptsOwed(stored: readonly EngineMessage[], selfAci: string): Map<string, string[]> {
  const byAuthor = new Map<string, string[]>();
  for (const m of stored) {
    if (m.direction !== 'in' || m.kind !== 'text' || m.senderAci === selfAci) continue;
    const ids = byAuthor.get(m.senderAci) ?? [];
    ids.push(m.id);
    byAuthor.set(m.senderAci, ids);
  }
  return byAuthor;
}

/** `ids` in slices of at most {@link RECEIPT_BATCH}. */
export function receiptBatches(ids: readonly string[]): string[][] {
  const out: string[][] = [];
  for (let i = 0; i < ids.length; i += RECEIPT_BATCH) out.push(ids.slice(i, i + RECEIPT_BATCH));
  return out;
}

/** Groups messages by author, keeping their order. */
export function byAuthor(messages: readonly AuthoredMessage[]): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const m of messages) {
    const ids = out.get(m.author) ?? [];
    ids.push(m.id);
    out.set(m.author, ids);
  }
  return out;
}

function hexBytes(hex: string): Uint8Array {
  return Uint8Array.from(hex.match(/../g)!.map((h) => parseInt(h, 16)));
}
