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
  readonly status: 'pending' | 'sent' | 'delivered' | 'read' | 'failed' | 'received';
  /** Files sent with the message (`text` is then their caption); absent when there are none. */
  readonly attachments?: readonly AttachmentView[];
}

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
}
