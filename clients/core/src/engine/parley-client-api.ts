// SPDX-License-Identifier: AGPL-3.0-only
/**
 * The contract of the engine object the CLI and the desktop app drive. Implemented by
 * ParleyClient (parley-client.ts); declared apart so front ends can code against it.
 */
import type {
  AccountInfo,
  BlockedView,
  ClientEvents,
  ContactView,
  ConversationView,
  DeviceView,
  GroupView,
  MarkReadResult,
  MessageView,
  PresenceView,
  PrivacySettings,
  ReceiptView,
  SafetyNumberView,
  SearchHit,
  TypingResult,
} from './client-api.js';

/** Options for opening a profile. */
export interface OpenClientOptions {
  /** The profile directory (created with mode 0700 when missing). */
  readonly profileDir: string;
  /** Passphrase protecting the database; default: a random key in a 0600 key file. */
  readonly passphrase?: string;
  /**
   * The engine's time source (sending, expiry, edit windows, stored times); default the system
   * clock. Tests inject one to move time (disappearing messages) without waiting.
   */
  readonly clock?: { now(): number };
}

/** Options of sendFile. */
export interface SendFileOptions {
  /** The message text shown with the file. Default none. */
  readonly caption?: string;
  /** MIME type; default a guess from the file's extension. */
  readonly contentType?: string;
  /** Stops the upload (nothing is sent). */
  readonly signal?: AbortSignal;
}

/** Options of downloadAttachment. */
export interface DownloadOptions {
  /** Which file of the message, 0-based. Default 0. */
  readonly index?: number;
  /** Destination file, or an existing directory to put it in under its own name. Default: the current directory. */
  readonly out?: string;
  /** Stops the download; the next call resumes it. */
  readonly signal?: AbortSignal;
}

/** What downloadAttachment wrote. */
export interface DownloadResult {
  /** Absolute path of the file written. */
  readonly path: string;
  /** Its size in bytes. */
  readonly size: number;
  readonly fileName: string;
  readonly contentType: string;
}

/** Export formats. */
export type ExportFormat = 'jsonl' | 'md';

/** What a client can do. Every method throws typed errors: ClientError, ParleyError, CryptoError, TransportError. */
export interface ParleyClientApi {
  /** The account of this profile, or undefined before register/link. */
  account(): AccountInfo | undefined;
  /** Creates an account on `server` (base URL) and uploads keys. Throws USERNAME_TAKEN etc. */
  register(server: string, username: string): Promise<AccountInfo>;
  /**
   * Links this (new) profile to an existing account: calls `onLinkCode` with the text link code
   * to show, waits for approval on another device, registers, then receives the history
   * archive (progress events 'link' and 'history-receive'). Resolves with the account.
   */
  link(server: string, onLinkCode: (linkCode: string) => void, options?: { timeoutMs?: number }): Promise<AccountInfo>;
  /** Approves a new device from its link code and sends it the history (progress 'history-send'). */
  approveLink(linkCode: string): Promise<{ deviceId: number }>;
  devices(): Promise<DeviceView[]>;
  removeDevice(deviceId: number): Promise<void>;
  /**
   * Queues a text for `address` (`user@domain`, or `user` on one's own relay; or a group named
   * `#<id or id prefix>` or `#<title>`) durably, then tries to deliver it (and a transcript to
   * one's other devices). Resolves with the message; its status is 'sent' when the relay
   * accepted it, 'pending' when it stays in the outbox.
   */
  send(address: string, text: string): Promise<MessageView>;
  /**
   * Creates a group titled `title` (1–128 characters) with `members` (addresses); this account
   * is its only admin. The other members' devices and this account's other devices are told at
   * once if the relay can be reached, else on the next run.
   */
  createGroup(title: string, members: readonly string[]): Promise<GroupView>;
  /** Adds members to a group (admins only: NOT_GROUP_ADMIN); they get the group's whole change log. */
  addGroupMembers(group: string, members: readonly string[]): Promise<GroupView>;
  /** Removes members from a group (admins only); they can read nothing sent after this. */
  removeGroupMembers(group: string, members: readonly string[]): Promise<GroupView>;
  /** Leaves a group; its history stays on this device. */
  leaveGroup(group: string): Promise<GroupView>;
  /** Makes members admins (`add`) or takes admin rights away (`remove`); admins only. */
  changeGroupAdmins(group: string, change: { add?: readonly string[]; remove?: readonly string[] }): Promise<GroupView>;
  /** Changes a group's title (admins only). */
  setGroupTitle(group: string, title: string): Promise<GroupView>;
  /** One group, named by `#<id or id prefix>` or `#<title>` (NOT_FOUND, AMBIGUOUS_GROUP). */
  group(group: string): GroupView;
  /** Every group this device knows, most recently active first. */
  groups(): GroupView[];
  /**
   * Encrypts and uploads the file at `path` (progress events 'upload'), then sends it like a
   * text, with `caption` as its text. Fails without sending anything when the upload fails.
   */
  sendFile(address: string, path: string, options?: SendFileOptions): Promise<MessageView>;
  /**
   * Downloads file `index` (default 0) of message `messageId`, checks it against its pointer
   * and writes it to `out` (default: its file name in the current directory, made unique).
   * An interrupted download resumes where it stopped on the next call (progress 'download').
   */
  downloadAttachment(messageId: string, options?: DownloadOptions): Promise<DownloadResult>;
  /**
   * Connects, delivers the outbox, handles everything queued (events 'message'), and keeps
   * listening until `idleSeconds` pass with nothing new (0: return once the queue is drained).
   * Resolves with the messages received.
   */
  receive(options?: { idleSeconds?: number }): Promise<MessageView[]>;
  /** Connects and streams until `signal` aborts. */
  listen(signal: AbortSignal): Promise<void>;
  conversations(): ConversationView[];
  /** Newest first; `before` is a message id (the page before it). `address` may name a group (`#…`). */
  history(address: string, options?: { limit?: number; before?: string }): MessageView[];
  search(query: string, options?: { limit?: number }): SearchHit[];
  contacts(): ContactView[];
  /** The safety number with `address`. */
  verify(address: string): Promise<SafetyNumberView>;
  /** Accepts `address`'s current identity key after the user compared safety numbers. */
  acceptIdentity(address: string): Promise<SafetyNumberView>;
  /**
   * Replaces the text of one's own message `messageId` in the conversation with `address`, on
   * every device of both sides (within 24 h of sending it; the earlier texts stay as its edit
   * history). Resolves with the edited message.
   * @throws ClientError NOT_FOUND, NOT_AUTHOR, TOO_LATE, BLOCKED, INVALID_ARGUMENT.
   */
  editMessage(address: string, messageId: string, text: string): Promise<MessageView>;
  /**
   * Deletes one's own message for everyone (within 24 h): every device of both sides keeps
   * only a tombstone. `local`: any message, from this device only (nothing is sent). Resolves
   * with the tombstone.
   * @throws ClientError NOT_FOUND, NOT_AUTHOR, TOO_LATE, BLOCKED.
   */
  deleteMessage(address: string, messageId: string, options?: { local?: boolean }): Promise<MessageView>;
  /**
   * Reacts to a message with one emoji (at most 32 bytes), replacing one's earlier reaction to
   * it; `remove` takes it back. Resolves with the message and its reactions.
   */
  react(address: string, messageId: string, emoji: string, options?: { remove?: boolean }): Promise<MessageView>;
  /** Sends `text` as a reply quoting message `messageId` (an excerpt of at most 200 characters). */
  reply(address: string, messageId: string, text: string): Promise<MessageView>;
  /**
   * Sets the conversation's disappearing-message timer (seconds; 0 turns it off; at most 4
   * weeks) for both sides. Resolves with the notice shown in the conversation.
   */
  setExpireTimer(address: string, seconds: number): Promise<MessageView>;
  /** The conversation's disappearing-message timer, seconds (0: off). */
  expireTimer(address: string): number;
  /** Blocks `address` on every device of this account: its messages are dropped, nothing is sent to it. */
  block(address: string): Promise<BlockedView>;
  /** Unblocks `address` (nothing happens when it is not blocked). */
  unblock(address: string): Promise<void>;
  /** The blocked contacts. */
  blocked(): BlockedView[];
  /**
   * Marks every unread message of the conversation with `address` read: a read receipt to each
   * author (none while read receipts are off) and a read sync to this account's other devices,
   * queued durably and sent now if the relay can be reached. NOT_FOUND for an unknown conversation.
   */
  markRead(address: string): Promise<MarkReadResult>;
  /**
   * Per-recipient delivery state of this account's messages with `address`: of message
   * `messageId`, else of the newest `limit` (default 20), newest first.
   */
  receipts(address: string, options?: { messageId?: string; limit?: number }): ReceiptView[];
  /** The account's privacy settings as this device holds them. */
  settings(): PrivacySettings;
  /** Changes privacy settings and shares them with this account's other devices (newest wins). */
  updateSettings(changes: Partial<PrivacySettings>): Promise<PrivacySettings>;
  /**
   * Tells `address` that this user started or stopped typing (online-only: only devices connected
   * now get it). STARTED goes out at most once per 3 s per conversation; nothing goes out while
   * typing indicators are off. TransportError when the relay cannot be reached.
   */
  typing(address: string, action: 'started' | 'stopped'): Promise<TypingResult>;
  /**
   * Every contact's presence now (contacts without a usable token are `unknown`).
   * ClientError SETTING_OFF while presence is off.
   */
  presence(): Promise<PresenceView[]>;
  /** This device's own presence, told to the relay now (when connected) and on every connection. */
  setPresence(state: 'online' | 'away'): void;
  /** A new presence token: contacts who were not sent a message since can no longer watch. SETTING_OFF while presence is off. */
  rotatePresenceToken(): Promise<void>;
  /** Writes an open archive of every conversation into `outDir`; resolves with the files written. */
  exportArchive(options: { format: ExportFormat; outDir: string }): Promise<{ files: string[]; messages: number }>;
  on<E extends keyof ClientEvents>(event: E, listener: ClientEvents[E]): () => void;
  close(): Promise<void>;
}
