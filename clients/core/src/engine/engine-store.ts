// SPDX-License-Identifier: AGPL-3.0-only
/**
 * The engine's view of its local store: exactly what the pipelines need, nothing of SQL. The
 * SQLCipher store implements it (store-adapter.ts); keeping the engine on this narrow port keeps
 * the pipelines readable and the store replaceable.
 */
import type { ProtocolStores } from '@parley/crypto';
import type { EngineAttachment, NewEngineAttachment } from './attachment-pointers.js';

/** This device's account, as stored. `authSecret` and `identityKeyPair` are secrets. */
export interface EngineAccount {
  readonly aci: string;
  readonly deviceId: number;
  readonly username: string;
  readonly domain: string;
  readonly serverUrl: string;
  readonly authSecret: Uint8Array;
  readonly identityKeyPair: Uint8Array;
  readonly identityKey: Uint8Array;
  readonly registrationId: number;
}

/** A message row to store. */
export interface EngineMessage {
  /** 32 hex characters. */
  readonly id: string;
  /** The peer's address `user@domain`: the conversation. */
  readonly conversation: string;
  readonly senderAci: string;
  readonly senderDevice: number;
  readonly direction: 'in' | 'out';
  readonly body: string;
  readonly kind: 'text' | 'decryption-error' | 'identity-change' | 'system';
  readonly sentAt: number;
  readonly receivedAt: number;
  readonly lamport: number;
  readonly status: 'pending' | 'sent' | 'delivered' | 'read' | 'failed' | 'received';
}

/** One device's ciphertext, saved before the first attempt so retries resend the same bytes. */
export interface DeviceCiphertext {
  readonly deviceId: number;
  readonly registrationId: number;
  /** protocol EnvelopeType */
  readonly type: number;
  readonly content: Uint8Array;
}

/** A queued send. */
export interface OutboxEntry {
  readonly id: number;
  /** The logical message this send carries (32 hex), if any. */
  readonly messageId: string | undefined;
  readonly destinationAci: string;
  /** The encoded Content to encrypt. */
  readonly content: Uint8Array;
  /** Envelope message id and ciphertexts of the attempt in flight, once encrypted. */
  readonly envelopeMessageId: Uint8Array | undefined;
  readonly ciphertexts: readonly DeviceCiphertext[] | undefined;
  readonly attempts: number;
  readonly nextAttemptAt: number;
  /** Ask the relay for a push wake-up (default true; receipts and syncs are not worth waking a phone). */
  readonly urgent?: boolean;
  /** The recipient's access key when the saved attempt is sealed (unidentified socket); else identified. */
  readonly accessKey?: Uint8Array;
  /** The relay refused a sealed attempt of this entry: it goes identified from now on. */
  readonly identifiedOnly?: boolean;
}

/** What the engine reads and writes. Methods are synchronous (SQLCipher is). */
export interface EngineStore {
  getAccount(): EngineAccount | undefined;
  saveAccount(account: EngineAccount): void;
  /** The libsignal stores over the database. */
  readonly protocol: ProtocolStores;
  /** Device ids of `aci` this device has a session with (synchronous; see protocol.sessions for the port). */
  sessionDeviceIds(aci: string): number[];
  /** An overlay whose writes stay in memory until `commit()` (inside a transaction) applies them. */
  stageProtocol(): { readonly stores: ProtocolStores; commit(): void; discard(): void };
  /** Runs `fn` in one transaction. */
  transaction<T>(fn: () => T): T;

  /** Records that `aci` is `address` (from a directory lookup or a received message). */
  rememberContact(aci: string, address: string): void;
  contactAciByAddress(address: string): string | undefined;
  contactAddressByAci(aci: string): string | undefined;
  /** Marks `aci`'s current identity key as verified by the user. */
  setVerified(aci: string, verified: boolean): void;

  /** Inserts a message; 'duplicate' when (sender, id) is already stored. */
  insertMessage(message: EngineMessage): 'inserted' | 'duplicate';
  /** Sets the status of an outgoing message of this account. */
  setOutgoingStatus(id: string, status: EngineMessage['status']): void;
  /** The highest lamport clock stored in a conversation (0 when empty). */
  maxLamport(conversation: string): number;
  /**
   * Records the recipient accounts of outgoing message `messageId` (one for 1:1, every member for
   * a group), at `pending` (queued here; default) or `sent` (another own device sent it).
   */
  addRecipients(messageId: string, recipients: readonly string[], status?: 'pending' | 'sent'): void;
  /** A stored outgoing message by id (for resend requests). */
  outgoingMessage(id: string): EngineMessage | undefined;

  /**
   * Queues a send. `destinationAddress` routes it when the destination is no contact (a group
   * member known only from the group's changes); otherwise the contact's address does. `urgent`
   * (default true) asks the relay for a push wake-up; receipts and syncs are not worth one.
   */
  outboxAdd(entry: { messageId?: string; destinationAci: string; destinationAddress?: string; content: Uint8Array; nowMs: number; urgent?: boolean }): number;
  outboxDue(nowMs: number, limit: number): OutboxEntry[];
  /** The content of a queued entry as it is now (a queued receipt may have taken more ids); undefined once gone. */
  outboxContent(id: number): Uint8Array | undefined;
  /** Whether an outbox entry is still queued. */
  outboxHas(id: number): boolean;
  /** Saves an attempt; with `accessKey` it is sealed and goes over the unidentified socket. */
  outboxSaveAttempt(id: number, envelopeMessageId: Uint8Array, ciphertexts: readonly DeviceCiphertext[], accessKey?: Uint8Array): void;
  /** Forgets the saved attempt, sealed or not (the relay refused it, so nothing of it was committed). */
  outboxClearAttempt(id: number): void;
  outboxReschedule(id: number, nextAttemptAt: number): void;
  /** The relay took entry `id`: removed, and its message (if any) marked sent once no other entry of it is queued. */
  outboxDone(id: number): void;
  /** Gives entry `id` up: removed, and its message (if any) marked failed while pending. */
  outboxFail(id: number): void;
  /** Makes every outbox entry for `aci` due now (after the user accepted its new identity key). */
  outboxWake(destinationAci: string, nowMs: number): void;

  /** Stores the files of message (senderAci, messageId), numbered in order (kept when stored already). */
  saveAttachments(senderAci: string, messageId: string, attachments: readonly NewEngineAttachment[]): void;
  /** The files of message (senderAci, messageId), in order. */
  attachmentsOf(senderAci: string, messageId: string): EngineAttachment[];
  /** The files of every message with id `messageId`, with their sender, by sender then position. */
  attachmentsByMessageId(messageId: string): Array<EngineAttachment & { readonly senderAci: string }>;
  /** Records where this device keeps a file of a message. */
  setAttachmentPath(senderAci: string, messageId: string, index: number, path: string): void;

  /** Records an envelope that carried no visible message; false when it was seen before. */
  markEnvelopeSeen(sourceAci: string, sourceDevice: number, envelopeMessageId: string, nowMs: number): boolean;
  /** Remembers which logical message an envelope carried, for resend requests. */
  recordSentEnvelope(envelopeMessageId: string, messageId: string, destinationAci: string, nowMs: number): void;
  sentEnvelope(envelopeMessageId: string): { messageId: string; destinationAci: string } | undefined;
  /** Keeps the Content of an action (edit, reaction, delete, timer) sent under `envelopeMessageId`, for a resend request. */
  recordSentAction(envelopeMessageId: string, destinationAci: string, content: Uint8Array, nowMs: number): void;
  sentAction(envelopeMessageId: string): { destinationAci: string; content: Uint8Array } | undefined;
}
