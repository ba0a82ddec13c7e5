// SPDX-License-Identifier: AGPL-3.0-only
/**
 * The client engine's public surface, shared by the CLI and the desktop app. Plain data only:
 * no libsignal type, no database handle crosses it.
 */

/** The account this profile belongs to. */
export interface AccountInfo {
  readonly aci: string;
  readonly username: string;
  /** `username@domain`. */
  readonly address: string;
  readonly deviceId: number;
  /** The relay's base URL. */
  readonly server: string;
  /** Whether contacts can send to this account sealed, and this device can send sealed. */
  readonly sealedSender?: SealedSenderStatus;
}

/** Sealed sender on this device (DESIGN §5), as far as it is known without asking the relay. */
export interface SealedSenderStatus {
  /**
   * The relay's trust root is pinned, it has this account's current access key, and nothing is
   * wrong: messages to contacts whose profile key this device holds go sealed, and contacts
   * holding this account's key can send to it sealed.
   */
  readonly active: boolean;
  /** The relay's sender-certificate trust root is pinned (at registration, link or first use). */
  readonly trustRootPinned: boolean;
  /** The relay accepted the access key of the account's current profile key from this device. */
  readonly accessKeyUploaded: boolean;
  /** When the cached sender certificate expires, ms since the epoch; absent before the first. */
  readonly certificateExpiresAt?: number;
  /** Why sealed sending is off: TRUST_ROOT_CHANGED or SEALED_SENDER_UNAVAILABLE. */
  readonly problem?: string;
  /**
   * Sealed envelopes that arrived but could not be opened and name no sender (a seal that does
   * not open, a certificate from a root this device does not trust): nobody can be asked to
   * resend them. Absent when there were none.
   */
  readonly unreadable?: number;
}

/** A file of a message. */
export interface AttachmentView {
  /** 0-based position in the message (what `download --index` takes). */
  readonly index: number;
  /** The sender's file name, sanitized (no directories, no control characters). */
  readonly fileName: string;
  readonly contentType: string;
  /** Bytes of the file. */
  readonly size: number;
  /** Where this device keeps it: the file sent, or where it was downloaded to. */
  readonly path?: string;
}

/** A message as a person sees it. */
export interface MessageView {
  /** 32 hex characters: the sender-chosen logical message id. */
  readonly id: string;
  readonly conversation: string;
  readonly direction: 'in' | 'out';
  /** Sender address (`user@domain`) and device. */
  readonly sender: string;
  readonly senderDevice: number;
  readonly text: string;
  readonly kind: 'text' | 'decryption-error' | 'identity-change' | 'system';
  /** Sender clock, ms since the epoch. */
  readonly sentAt: number;
  /** When this device stored it, ms since the epoch. */
  readonly receivedAt: number;
  readonly lamport: number;
  /**
   * This account's messages: `pending` (queued here), `sent` (the relay has it), `delivered` (on a
   * device of every recipient), `read` (by every recipient; never while read receipts are off),
   * `failed`. Others' messages: `received`, then `read` once read on a device of this account.
   */
  readonly status: 'pending' | 'sent' | 'delivered' | 'read' | 'failed' | 'received';
  /** Files sent with the message (`text` is then their caption); absent when there are none. */
  readonly attachments?: readonly AttachmentView[];
  /** Its author deleted it for everyone: `text` is empty and nothing else of it is kept. */
  readonly deleted?: true;
  /** The sender's timestamp of the edit shown, when the text was edited. */
  readonly editedAt?: number;
  /** Every version of an edited text, the original first and the shown one last. */
  readonly edits?: readonly MessageVersionView[];
  /** Reactions standing on it, oldest first; absent when there are none. */
  readonly reactions?: readonly ReactionView[];
  /** The message this one replies to. */
  readonly quote?: QuoteView;
  /** The disappearing-message timer it carried, seconds. */
  readonly expireTimer?: number;
  /** When it disappears from every device, ms since the epoch. */
  readonly expiresAt?: number;
  /** On a "disappearing messages" entry (kind `system`): the timer it set, seconds (0: off). */
  readonly timerUpdate?: number;
}

/** One version of an edited message. */
export interface MessageVersionView {
  /** The message's id for the original, the edit's id for an edit. */
  readonly id: string;
  readonly text: string;
  /** The sender's timestamp of this version, ms since the epoch. */
  readonly sentAt: number;
}

/** A reaction to a message. */
export interface ReactionView {
  readonly emoji: string;
  /** Who reacted, `user@domain`. */
  readonly reactor: string;
  /** The reactor's timestamp, ms since the epoch. */
  readonly sentAt: number;
}

/** The message a reply quotes. */
export interface QuoteView {
  /** The quoted message's id. */
  readonly id: string;
  /** Its author, `user@domain`. */
  readonly author: string;
  /**
   * Its text: the current text when the message is here, else the excerpt (at most 200
   * characters) the replier saw; empty when the quoted message was deleted or disappeared.
   */
  readonly text: string;
  /** Whether the quoted message is on this device. */
  readonly found: boolean;
}

/** A contact this account blocks. */
export interface BlockedView {
  /** `user@domain`, or the ACI when no address is known. */
  readonly address: string;
  readonly aci: string;
  /** When this device learned of the block, ms since the epoch. */
  readonly blockedAt: number;
}

/**
 * Something that happened to earlier messages or to the conversation, announced by the `action`
 * event (the message events stay for messages that are shown on their own):
 * - `edit`: a message's text changed (`text` is the new one);
 * - `delete`: a message was deleted (`scope` everyone: by its author on every device; local: on this device);
 * - `reaction`: `reactor` reacted to a message with `emoji`, or took the reaction back (`removed`);
 * - `expire`: the conversation's disappearing-message timer changed to `seconds` (0: off);
 * - `expired`: messages disappeared from this device (their timer ran out);
 * - `block`: this account blocked or unblocked `address` (on this device or another one of the account).
 */
export type MessageActionEvent =
  | { readonly type: 'edit'; readonly conversation: string; readonly messageId: string; readonly author: string; readonly text: string; readonly editedAt: number }
  | { readonly type: 'delete'; readonly conversation: string; readonly messageId: string; readonly author: string; readonly scope: 'everyone' | 'local' }
  | {
      readonly type: 'reaction';
      readonly conversation: string;
      readonly messageId: string;
      readonly author: string;
      readonly reactor: string;
      readonly emoji?: string;
      readonly removed: boolean;
    }
  | { readonly type: 'expire'; readonly conversation: string; readonly seconds: number; readonly by: string }
  | { readonly type: 'expired'; readonly conversation: string; readonly messageIds: readonly string[] }
  | { readonly type: 'block'; readonly address: string; readonly aci: string; readonly blocked: boolean };

/** A conversation in the list. */
export interface ConversationView {
  /** The peer's address `user@domain`, or `#<group id>` for a group. */
  readonly address: string;
  /** Set for a group's conversation: its id and current title. */
  readonly group?: { readonly id: string; readonly title: string };
  readonly lastMessage?: MessageView;
  readonly unread: number;
  /** The peer's identity key changed and the user has not accepted it yet. */
  readonly identityChanged: boolean;
}

/** A member of a group. */
export interface GroupMemberView {
  readonly aci: string;
  /** `user@domain` as the group's changes name it. */
  readonly address: string;
  readonly admin: boolean;
}

/** A group as this device knows it. */
export interface GroupView {
  /** 64 lowercase hex characters. */
  readonly id: string;
  /** `#<id>`: how `send`, `history` and the conversation list name the group. */
  readonly handle: string;
  readonly title: string;
  /** Members in the order they were added. */
  readonly members: readonly GroupMemberView[];
  /** Number of changes this device holds (devices holding the same changes show the same state). */
  readonly revision: number;
  /** Whether this account is a member (false after leaving or being removed: the history stays). */
  readonly member: boolean;
  /** Whether this account is an admin. */
  readonly admin: boolean;
}

/** A search hit. */
export interface SearchHit {
  readonly message: MessageView;
  /** The matching text with the hits marked by `[` and `]`. */
  readonly snippet: string;
}

/** A device of one's account. */
export interface DeviceView {
  readonly deviceId: number;
  readonly registrationId: number;
  readonly createdAt: number;
  readonly current: boolean;
}

/** A contact. */
export interface ContactView {
  readonly address: string;
  readonly aci: string;
  readonly identityChanged: boolean;
  readonly verified: boolean;
  /**
   * This device holds the contact's profile key, so messages to it go sealed (the relay does
   * not learn who sends them). Absent from engines without sealed sender.
   */
  readonly sealedSender?: boolean;
}

/** The result of `verify`. */
export interface SafetyNumberView {
  readonly address: string;
  /** 60 digits in 12 groups of 5. */
  readonly safetyNumber: string;
  readonly identityChanged: boolean;
  readonly verified: boolean;
}

/** Progress of long work (linking, history transfer, export, file upload and download). */
export interface ProgressEvent {
  readonly task: 'history-send' | 'history-receive' | 'export' | 'link' | 'upload' | 'download';
  readonly done: number;
  readonly total: number;
  /** `bytes` for uploads and downloads: of the encrypted blob (the file plus up to 5%). */
  readonly unit: 'chunks' | 'messages' | 'steps' | 'bytes';
}

/** Events a running client emits. */
export interface ClientEvents {
  message: (m: MessageView) => void;
  progress: (p: ProgressEvent) => void;
  connection: (state: 'connecting' | 'connected' | 'disconnected' | 'stopped', detail?: string) => void;
  /** The relay refused this device for good (removed from its account). */
  fatal: (code: string, message: string) => void;
  /** An edit, delete, reaction, timer change, expiry or block (see {@link MessageActionEvent}). */
  action: (e: MessageActionEvent) => void;
  /** A delivery or read receipt for messages this account sent. */
  receipt: (r: ReceiptEvent) => void;
  /** Someone started or stopped typing (or their indicator expired). */
  typing: (t: TypingEvent) => void;
  /** A contact's presence, when it changes (while listening). */
  presence: (p: PresenceView) => void;
}

/** Delivery state of a message this account sent, for one recipient. */
export interface ReceiptView {
  /** The message (32 hex). */
  readonly messageId: string;
  readonly conversation: string;
  /** The recipient account's address `user@domain` (its ACI when the address is unknown). */
  readonly recipient: string;
  /**
   * `pending` (queued here), `sent` (the relay has it), `delivered` (on a device of the recipient),
   * `read`, or `failed` (given up). Never `read` while read receipts are off.
   */
  readonly status: 'pending' | 'sent' | 'delivered' | 'read' | 'failed';
  /** When the status last moved, ms since the epoch. */
  readonly updatedAt: number;
  readonly deliveredAt?: number;
  readonly readAt?: number;
}

/** A receipt that arrived: a recipient has (or has read) messages this account sent. */
export interface ReceiptEvent {
  readonly type: 'delivery' | 'read';
  /** Who sent the receipt (a recipient of the messages, in a 1:1 or a group conversation): `user@domain`. */
  readonly from: string;
  /** Ids (32 hex) of this account's messages the receipt named that were sent to `from`. */
  readonly messageIds: readonly string[];
  /** When it arrived, ms since the epoch. */
  readonly at: number;
}

/** A typing indicator as front ends see it. */
export interface TypingEvent {
  /** Who is typing: `user@domain`. */
  readonly from: string;
  /** The conversation it is typed in (the sender's address for 1:1). */
  readonly conversation: string;
  readonly action: 'started' | 'stopped';
  /** True when this `stopped` is the expiry of a STARTED that was not renewed (no STOPPED came). */
  readonly expired?: boolean;
  /** The group, as hex, when typed in a group. */
  readonly groupId?: string;
  /** When it arrived (or expired), ms since the epoch. */
  readonly at: number;
}

/** A contact's presence. */
export interface PresenceView {
  readonly address: string;
  readonly aci: string;
  /**
   * `online` (a device is connected and active), `away` (connected, but its user set away),
   * `offline` (no device connected; see lastSeen), or `unknown`: the contact handed out no
   * presence token, turned presence off, or the token is outdated.
   */
  readonly state: 'online' | 'away' | 'offline' | 'unknown';
  /** When a device of the contact was last connected, ms since the epoch (offline only, when known). */
  readonly lastSeen?: number;
}

/** The account's privacy settings, shared by its devices. */
export interface PrivacySettings {
  /** Send read receipts and show other people's read state (reciprocal). Default on. */
  readonly readReceipts: boolean;
  /** Send typing indicators and show other people's. Default on. */
  readonly typingIndicators: boolean;
  /** Hand out the presence token and watch contacts' presence (reciprocal). Default on. */
  readonly presence: boolean;
}

/** What `typing()` did. */
export interface TypingResult {
  /** Whether an indicator went out. */
  readonly sent: boolean;
  /** Why not: typing indicators are off, or a STARTED went out less than 3 s ago. */
  readonly reason?: 'off' | 'throttled';
  /** Devices of the peer connected at that moment (those that got it). */
  readonly devices: number;
}

/** What `markRead()` did. */
export interface MarkReadResult {
  readonly conversation: string;
  /** Ids of the messages newly marked read, oldest first. */
  readonly messageIds: readonly string[];
  /** Read receipts queued (one per author; none while read receipts are off). */
  readonly receipts: number;
}
