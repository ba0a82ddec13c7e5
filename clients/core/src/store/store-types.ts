// SPDX-License-Identifier: AGPL-3.0-only
/** Ids and value types of the local store, with their parsers for input from outside. */
import { type Aci, type DeviceId, type MessageId, parseAddress as parseUserAddress, formatAddress as formatUserAddress } from '@parley/protocol';
import { ClientError } from '../errors.js';

declare const conversationIdBrand: unique symbol;
/** A local conversation id: 32 lowercase hex characters, random, never sent to anyone. */
export type ConversationId = string & { readonly [conversationIdBrand]: true };

const HEX32 = /^[0-9a-f]{32}$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** Parses a conversation id (e.g. from a CLI argument). ClientError INVALID_ARGUMENT otherwise. */
export function parseConversationId(text: unknown): ConversationId {
  if (typeof text !== 'string' || !HEX32.test(text)) throw new ClientError('INVALID_ARGUMENT', 'a conversation id is 32 lowercase hex characters');
  return text as ConversationId;
}

/** Who sent a message, or which way it went, from this device's view. */
export type MessageDirection = 'in' | 'out';
/** Every {@link MessageDirection}. */
export const MESSAGE_DIRECTIONS: readonly MessageDirection[] = Object.freeze(['in', 'out']);

/**
 * What a history entry is: a person's `text`; a `decryption-error` placeholder for an envelope
 * that could not be decrypted; an `identity-change` notice (the peer's safety number changed);
 * a `system` notice. Only `text` is searchable and counts as unread.
 */
export type MessageKind = 'text' | 'decryption-error' | 'identity-change' | 'system';
/** Every {@link MessageKind}. */
export const MESSAGE_KINDS: readonly MessageKind[] = Object.freeze(['text', 'decryption-error', 'identity-change', 'system']);

/**
 * Delivery state. Outgoing: `pending` (queued) → `sent` (the relay has it) → `delivered` →
 * `read`, or `failed` (given up; back to `pending` on a retry). Incoming: `delivered` (unread)
 * → `read`.
 */
export type MessageStatus = 'pending' | 'sent' | 'delivered' | 'read' | 'failed';
/** Every {@link MessageStatus}. */
export const MESSAGE_STATUSES: readonly MessageStatus[] = Object.freeze(['pending', 'sent', 'delivered', 'read', 'failed']);

/** What names a message everywhere: the logical message id is unique per sender. */
export interface MessageKey {
  readonly senderAci: Aci;
  readonly id: MessageId;
}

/** A stored message. */
export interface MessageRecord extends MessageKey {
  readonly conversationId: ConversationId;
  readonly senderDevice: DeviceId;
  readonly direction: MessageDirection;
  readonly kind: MessageKind;
  /** The text; empty for notices without text. */
  readonly body: string;
  /** The sender's timestamp, milliseconds since the epoch. */
  readonly sentAt: number;
  /** When this device stored it, milliseconds since the epoch. */
  readonly receivedAt: number;
  /** The message's Lamport clock: display order is (lamport, senderAci, id) ascending. */
  readonly lamport: number;
  readonly status: MessageStatus;
}

/** @internal Throws ClientError INVALID_ARGUMENT unless `value` is a lowercase UUID. */
export function checkAci(value: unknown, what = 'aci'): Aci {
  if (typeof value !== 'string' || !UUID.test(value)) throw new ClientError('INVALID_ARGUMENT', `${what} must be a lowercase UUID`);
  return value as Aci;
}

/** @internal Throws ClientError INVALID_ARGUMENT unless `value` is 32 lowercase hex characters. */
export function checkMessageId(value: unknown, what = 'message id'): MessageId {
  if (typeof value !== 'string' || !HEX32.test(value)) throw new ClientError('INVALID_ARGUMENT', `${what} must be 32 lowercase hex characters`);
  return value as MessageId;
}

/** @internal Throws ClientError INVALID_ARGUMENT unless `value` is an integer in `min..max`. */
export function checkInteger(value: unknown, what: string, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) {
    throw new ClientError('INVALID_ARGUMENT', `${what} must be an integer ${min}..${max}`);
  }
  return value;
}

/** @internal The canonical `user@domain` form of `text`; ClientError INVALID_ARGUMENT when it is not an address. */
export function canonicalAddress(text: unknown): string {
  try {
    return formatUserAddress(parseUserAddress(text as string));
  } catch (err) {
    throw new ClientError('INVALID_ARGUMENT', 'an address must be user@domain', { cause: err });
  }
}
