// SPDX-License-Identifier: AGPL-3.0-only
/**
 * The engine contract the CLI codes against: a structural copy of `ParleyClientApi`,
 * `OpenClientOptions` and the view types of @parley/client
 * (clients/core/src/engine/parley-client-api.ts and client-api.ts). The engine's package entry
 * does not export them yet, and packages meet only at their entry, so the CLI keeps this copy;
 * test/engine-contract.test.ts fails to compile when the two drift apart. Once @parley/client
 * exports these types, this file becomes a re-export of them.
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

/** A message as a person sees it. */
export interface MessageView {
  /** 32 hex characters: the sender-chosen logical message id. */
  readonly id: string;
  readonly conversation: string;
  readonly direction: 'in' | 'out';
  /** Sender address (`user@domain`). */
  readonly sender: string;
  readonly senderDevice: number;
  readonly text: string;
  readonly kind: 'text' | 'decryption-error' | 'identity-change' | 'system';
  /** Sender clock, milliseconds since the epoch. */
  readonly sentAt: number;
  /** When this device stored it, milliseconds since the epoch. */
  readonly receivedAt: number;
  readonly lamport: number;
  readonly status: 'pending' | 'sent' | 'delivered' | 'read' | 'failed' | 'received';
}

/** A conversation in the list. */
export interface ConversationView {
  /** The peer's address `user@domain`. */
  readonly address: string;
  readonly lastMessage?: MessageView;
  readonly unread: number;
  /** The peer's identity key changed and the user has not accepted it yet. */
  readonly identityChanged: boolean;
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
  /** Milliseconds since the epoch. */
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

/** Progress of long work (linking, history transfer, export). */
export interface ProgressEvent {
  readonly task: 'history-send' | 'history-receive' | 'export' | 'link';
  readonly done: number;
  readonly total: number;
  readonly unit: 'chunks' | 'messages' | 'steps';
}

/** Events a running client emits. */
export interface ClientEvents {
  message: (m: MessageView) => void;
  progress: (p: ProgressEvent) => void;
  connection: (state: 'connecting' | 'connected' | 'disconnected' | 'stopped', detail?: string) => void;
  /** The relay refused this device for good (removed from its account). */
  fatal: (code: string, message: string) => void;
}

/** Options for opening a profile. */
export interface OpenClientOptions {
  /** The profile directory (created with mode 0700 when missing). */
  readonly profileDir: string;
  /** Passphrase protecting the database; default: a random key in a 0600 key file. */
  readonly passphrase?: string;
}

/** Export formats. */
export type ExportFormat = 'jsonl' | 'md';

/** What the engine can do; every method throws errors with a string `code`. */
export interface ParleyClientApi {
  account(): AccountInfo | undefined;
  register(server: string, username: string): Promise<AccountInfo>;
  link(server: string, onLinkCode: (linkCode: string) => void, options?: { timeoutMs?: number }): Promise<AccountInfo>;
  approveLink(linkCode: string): Promise<{ deviceId: number }>;
  devices(): Promise<DeviceView[]>;
  removeDevice(deviceId: number): Promise<void>;
  send(address: string, text: string): Promise<MessageView>;
  receive(options?: { idleSeconds?: number }): Promise<MessageView[]>;
  listen(signal: AbortSignal): Promise<void>;
  conversations(): ConversationView[];
  history(address: string, options?: { limit?: number; before?: string }): MessageView[];
  search(query: string, options?: { limit?: number }): SearchHit[];
  contacts(): ContactView[];
  verify(address: string): Promise<SafetyNumberView>;
  acceptIdentity(address: string): Promise<SafetyNumberView>;
  exportArchive(options: { format: ExportFormat; outDir: string }): Promise<{ files: string[]; messages: number }>;
  on<E extends keyof ClientEvents>(event: E, listener: ClientEvents[E]): () => void;
  close(): Promise<void>;
}

/** Opens a profile; the engine's `openParleyClient` has this shape. */
export type OpenClient = (options: OpenClientOptions) => Promise<ParleyClientApi>;
