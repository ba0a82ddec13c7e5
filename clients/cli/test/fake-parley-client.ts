// SPDX-License-Identifier: AGPL-3.0-only
/**
 * FakeParleyClient: a scripted stand-in for the engine, for CLI-level tests only. It records
 * every call, answers with canned views, emits the events a real client would, and throws the
 * error a test plants for a method. It models none of the engine's behaviour.
 */
import type {
  AccountInfo,
  BlockedView,
  DownloadOptions,
  DownloadResult,
  SendFileOptions,
  ClientEvents,
  ContactView,
  ConversationView,
  DeviceView,
  ExportFormat,
  GroupView,
  MarkReadResult,
  MessageView,
  PresenceView,
  PrivacySettings,
  ReceiptEvent,
  ReceiptView,
  TypingEvent,
  TypingResult,
  OpenClientOptions,
  ParleyClientApi,
  ProgressEvent,
  SafetyNumberView,
  SearchHit,
  MessageActionEvent,
} from '../src/engine-contract.js';

/** 2026-11-22 10:31 UTC. */
export const T0 = Date.UTC(2026, 10, 22, 10, 31);

export const ALICE: AccountInfo = {
  aci: '0f8e3c2a-6b1d-4e57-9a20-3c4d5e6f7a8b',
  username: 'alice',
  address: 'alice@localhost',
  deviceId: 1,
  server: 'http://localhost:8080',
};

/** A message view with defaults; `over` replaces fields. */
export function message(over: Partial<MessageView> = {}): MessageView {
  return {
    id: '0123456789abcdef0123456789abcdef',
    conversation: 'bob@localhost',
    direction: 'in',
    sender: 'bob@localhost',
    senderDevice: 1,
    text: 'hello',
    kind: 'text',
    sentAt: T0,
    receivedAt: T0 + 1000,
    lamport: 1,
    status: 'received',
    ...over,
  };
}

/** A group view with defaults; `over` replaces fields. */
export function groupView(over: Partial<GroupView> = {}): GroupView {
  const id = '3f2a0d4e'.repeat(8);
  return {
    id,
    handle: `#${id}`,
    title: 'climbing',
    members: [
      { aci: ALICE.aci, address: 'alice@localhost', admin: true },
      { aci: '1b2c3d4e-5f60-4718-8a9b-0c1d2e3f4a5b', address: 'bob@localhost', admin: false },
    ],
    revision: 2,
    member: true,
    admin: true,
    ...over,
  };
}

/** A recorded call. */
export interface Call {
  readonly method: string;
  readonly args: readonly unknown[];
}

type Listeners = { [E in keyof ClientEvents]: Set<ClientEvents[E]> };

/** See the file comment. */
export class FakeParleyClient implements ParleyClientApi {
  accountInfo: AccountInfo | undefined = ALICE;
  readonly calls: Call[] = [];
  /** Errors to throw, by method name. */
  readonly failures = new Map<string, unknown>();
  closed = 0;

  registered: AccountInfo = ALICE;
  linkCodes: string[] = ['parley-link:eyJ2IjoxfQ'];
  linked: AccountInfo = { ...ALICE, deviceId: 2 };
  linkProgress: ProgressEvent[] = [];
  approvedDevice = 2;
  approveProgress: ProgressEvent[] = [];
  deviceList: DeviceView[] = [];
  sent: (address: string, text: string) => MessageView = (address, text) =>
    message({ conversation: address.includes('@') ? address : `${address}@localhost`, direction: 'out', sender: 'alice@localhost', text, status: 'sent' });
  /** Emitted during sendFile and downloadAttachment. */
  transferProgress: ProgressEvent[] = [];
  sentFile: (address: string, path: string, options?: SendFileOptions) => MessageView = (address, path, options) =>
    message({
      conversation: address.includes('@') ? address : `${address}@localhost`,
      direction: 'out',
      sender: 'alice@localhost',
      text: options?.caption ?? '',
      status: 'sent',
      attachments: [{ index: 0, fileName: path.split('/').pop()!, contentType: 'application/pdf', size: 1_572_864, path }],
    });
  downloaded: DownloadResult = { path: '/home/alice/report.pdf', size: 1_572_864, fileName: 'report.pdf', contentType: 'application/pdf' };
  /** Emitted as 'message' events during receive. */
  receivedEvents: MessageView[] = [];
  /** Returned by receive. */
  receivedResult: MessageView[] = [];
  /** Emitted during listen, before it waits for the abort. */
  listenEvents: Array<
    | { event: 'message'; m: MessageView }
    | { event: 'connection'; state: 'connecting' | 'connected' | 'disconnected' | 'stopped'; detail?: string }
    | { event: 'fatal'; code: string; message: string }
    | { event: 'action'; e: MessageActionEvent }
    | { event: 'receipt'; r: ReceiptEvent }
    | { event: 'typing'; t: TypingEvent }
    | { event: 'presence'; p: PresenceView }
  > = [];
  markedRead: MarkReadResult = { conversation: 'bob@localhost', messageIds: ['0123456789abcdef0123456789abcdef'], receipts: 1 };
  receiptList: ReceiptView[] = [];
  privacy: PrivacySettings = { readReceipts: true, typingIndicators: true, presence: true };
  typingResult: TypingResult = { sent: true, devices: 1 };
  presenceList: PresenceView[] = [];
  conversationList: ConversationView[] = [];
  /** Newest first, as the engine returns it. */
  historyList: MessageView[] = [];
  hits: SearchHit[] = [];
  contactList: ContactView[] = [];
  safety: SafetyNumberView = {
    address: 'bob@localhost',
    safetyNumber: '123451234512345123451234512345123451234512345123451234512345',
    identityChanged: false,
    verified: false,
  };
  /** Returned by every group command. */
  groupResult: GroupView = groupView();
  groupList: GroupView[] = [];
  /** Answer of editMessage, deleteMessage, react, reply and setExpireTimer. */
  acted: (method: string, address: string, messageId: string, arg?: unknown) => MessageView = (method, address, messageId, arg) =>
    message({
      id: messageId,
      conversation: address.includes('@') ? address : `${address}@localhost`,
      direction: 'out',
      sender: 'alice@localhost',
      text: method === 'editMessage' ? String(arg) : 'hello',
      status: 'sent',
      ...(method === 'editMessage' ? { editedAt: T0 + 5000, edits: [{ id: messageId, text: 'hello', sentAt: T0 }, { id: 'fedcba9876543210fedcba9876543210', text: String(arg), sentAt: T0 + 5000 }] } : {}),
      ...(method === 'deleteMessage' ? { text: '', deleted: true as const } : {}),
      ...(method === 'react' ? { reactions: [{ emoji: String(arg), reactor: 'alice@localhost', sentAt: T0 + 5000 }] } : {}),
    });
  timerSeconds = 0;
  blockedList: BlockedView[] = [];
  exportProgress: ProgressEvent[] = [];
  exportResult = { files: ['bob@localhost.jsonl'], messages: 3 };

  readonly #listeners: Listeners = {
    message: new Set(),
    progress: new Set(),
    connection: new Set(),
    fatal: new Set(),
    action: new Set(),
    receipt: new Set(),
    typing: new Set(),
    presence: new Set(),
  };

  #record(method: string, ...args: unknown[]): void {
    this.calls.push({ method, args });
    const failure = this.failures.get(method);
    if (failure !== undefined) throw failure;
  }

  /** The calls of `method`. */
  callsOf(method: string): Call[] {
    return this.calls.filter((c) => c.method === method);
  }

  /** Listeners still subscribed (a command must unsubscribe what it subscribed). */
  listenerCount(): number {
    return Object.values(this.#listeners).reduce((n, set) => n + set.size, 0);
  }

  emit<E extends keyof ClientEvents>(event: E, ...args: Parameters<ClientEvents[E]>): void {
    for (const l of this.#listeners[event]) (l as (...a: Parameters<ClientEvents[E]>) => void)(...args);
  }

  account(): AccountInfo | undefined {
    return this.accountInfo;
  }

  async register(server: string, username: string): Promise<AccountInfo> {
    this.#record('register', server, username);
    this.accountInfo = this.registered;
    return this.registered;
  }

  async link(server: string, onLinkCode: (linkCode: string) => void, options?: { timeoutMs?: number }): Promise<AccountInfo> {
    this.#record('link', server, options);
    for (const code of this.linkCodes) onLinkCode(code);
    await Promise.resolve();
    for (const p of this.linkProgress) this.emit('progress', p);
    this.accountInfo = this.linked;
    return this.linked;
  }

  async approveLink(linkCode: string): Promise<{ deviceId: number }> {
    this.#record('approveLink', linkCode);
    for (const p of this.approveProgress) this.emit('progress', p);
    return { deviceId: this.approvedDevice };
  }

  async devices(): Promise<DeviceView[]> {
    this.#record('devices');
    return this.deviceList;
  }

  async removeDevice(deviceId: number): Promise<void> {
    this.#record('removeDevice', deviceId);
  }

  async send(address: string, text: string): Promise<MessageView> {
    this.#record('send', address, text);
    return this.sent(address, text);
  }

  async sendFile(address: string, path: string, options?: SendFileOptions): Promise<MessageView> {
    this.#record('sendFile', address, path, options);
    for (const p of this.transferProgress) this.emit('progress', p);
    return this.sentFile(address, path, options);
  }

  async downloadAttachment(messageId: string, options?: DownloadOptions): Promise<DownloadResult> {
    this.#record('downloadAttachment', messageId, options);
    for (const p of this.transferProgress) this.emit('progress', p);
    return this.downloaded;
  }

  async receive(options?: { idleSeconds?: number }): Promise<MessageView[]> {
    this.#record('receive', options);
    for (const m of this.receivedEvents) this.emit('message', m);
    return this.receivedResult;
  }

  async listen(signal: AbortSignal): Promise<void> {
    this.#record('listen', signal);
    for (const e of this.listenEvents) {
      if (e.event === 'message') this.emit('message', e.m);
      else if (e.event === 'connection') this.emit('connection', e.state, e.detail);
      else if (e.event === 'action') this.emit('action', e.e);
      else if (e.event === 'receipt') this.emit('receipt', e.r);
      else if (e.event === 'typing') this.emit('typing', e.t);
      else if (e.event === 'presence') this.emit('presence', e.p);
      else this.emit('fatal', e.code, e.message);
    }
    if (signal.aborted) return;
    await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
    this.emit('connection', 'stopped');
  }

  async createGroup(title: string, members: readonly string[]): Promise<GroupView> {
    this.#record('createGroup', title, members);
    return this.groupResult;
  }

  async addGroupMembers(group: string, members: readonly string[]): Promise<GroupView> {
    this.#record('addGroupMembers', group, members);
    return this.groupResult;
  }

  async removeGroupMembers(group: string, members: readonly string[]): Promise<GroupView> {
    this.#record('removeGroupMembers', group, members);
    return this.groupResult;
  }

  async leaveGroup(group: string): Promise<GroupView> {
    this.#record('leaveGroup', group);
    return this.groupResult;
  }

  async changeGroupAdmins(group: string, change: { add?: readonly string[]; remove?: readonly string[] }): Promise<GroupView> {
    this.#record('changeGroupAdmins', group, change);
    return this.groupResult;
  }

  async setGroupTitle(group: string, title: string): Promise<GroupView> {
    this.#record('setGroupTitle', group, title);
    return this.groupResult;
  }

  group(group: string): GroupView {
    this.#record('group', group);
    return this.groupResult;
  }

  groups(): GroupView[] {
    this.#record('groups');
    return this.groupList;
  }

  conversations(): ConversationView[] {
    this.#record('conversations');
    return this.conversationList;
  }

  history(address: string, options?: { limit?: number; before?: string }): MessageView[] {
    this.#record('history', address, options);
    return this.historyList;
  }

  search(query: string, options?: { limit?: number }): SearchHit[] {
    this.#record('search', query, options);
    return this.hits;
  }

  contacts(): ContactView[] {
    this.#record('contacts');
    return this.contactList;
  }

  async verify(address: string): Promise<SafetyNumberView> {
    this.#record('verify', address);
    return this.safety;
  }

  async acceptIdentity(address: string): Promise<SafetyNumberView> {
    this.#record('acceptIdentity', address);
    return { ...this.safety, identityChanged: false, verified: true };
  }

  async editMessage(address: string, messageId: string, text: string): Promise<MessageView> {
    this.#record('editMessage', address, messageId, text);
    return this.acted('editMessage', address, messageId, text);
  }

  async deleteMessage(address: string, messageId: string, options?: { local?: boolean }): Promise<MessageView> {
    this.#record('deleteMessage', address, messageId, options);
    return this.acted('deleteMessage', address, messageId, options);
  }

  async react(address: string, messageId: string, emoji: string, options?: { remove?: boolean }): Promise<MessageView> {
    this.#record('react', address, messageId, emoji, options);
    return this.acted('react', address, messageId, emoji);
  }

  async reply(address: string, messageId: string, text: string): Promise<MessageView> {
    this.#record('reply', address, messageId, text);
    return message({
      id: 'fedcba9876543210fedcba9876543210',
      conversation: address.includes('@') ? address : `${address}@localhost`,
      direction: 'out',
      sender: 'alice@localhost',
      text,
      status: 'sent',
      quote: { id: messageId, author: 'bob@localhost', text: 'hello', found: true },
    });
  }

  async setExpireTimer(address: string, seconds: number): Promise<MessageView> {
    this.#record('setExpireTimer', address, seconds);
    this.timerSeconds = seconds;
    return message({ kind: 'system', direction: 'out', sender: 'alice@localhost', text: `alice@localhost set disappearing messages to ${seconds} seconds`, timerUpdate: seconds });
  }

  expireTimer(address: string): number {
    this.#record('expireTimer', address);
    return this.timerSeconds;
  }

  async block(address: string): Promise<BlockedView> {
    this.#record('block', address);
    const b = { address: address.includes('@') ? address : `${address}@localhost`, aci: '11111111-2222-4333-8444-555555555555', blockedAt: T0 };
    this.blockedList.push(b);
    return b;
  }

  async unblock(address: string): Promise<void> {
    this.#record('unblock', address);
  }

  blocked(): BlockedView[] {
    this.#record('blocked');
    return this.blockedList;
  }

  async markRead(address: string): Promise<MarkReadResult> {
    this.#record('markRead', address);
    return this.markedRead;
  }

  receipts(address: string, options?: { messageId?: string; limit?: number }): ReceiptView[] {
    this.#record('receipts', address, options);
    return this.receiptList;
  }

  settings(): PrivacySettings {
    this.#record('settings');
    return this.privacy;
  }

  async updateSettings(changes: Partial<PrivacySettings>): Promise<PrivacySettings> {
    this.#record('updateSettings', changes);
    this.privacy = { ...this.privacy, ...changes };
    return this.privacy;
  }

  async typing(address: string, action: 'started' | 'stopped'): Promise<TypingResult> {
    this.#record('typing', address, action);
    return this.typingResult;
  }

  async presence(): Promise<PresenceView[]> {
    this.#record('presence');
    return this.presenceList;
  }

  setPresence(state: 'online' | 'away'): void {
    this.#record('setPresence', state);
  }

  async rotatePresenceToken(): Promise<void> {
    this.#record('rotatePresenceToken');
  }

  async exportArchive(options: { format: ExportFormat; outDir: string }): Promise<{ files: string[]; messages: number }> {
    this.#record('exportArchive', options);
    for (const p of this.exportProgress) this.emit('progress', p);
    return this.exportResult;
  }

  on<E extends keyof ClientEvents>(event: E, listener: ClientEvents[E]): () => void {
    this.#listeners[event].add(listener);
    return () => {
      this.#listeners[event].delete(listener);
    };
  }

  async close(): Promise<void> {
    this.closed += 1;
  }
}

/** An opener that hands out `client` and records what it was asked to open. */
export function fakeOpener(client: FakeParleyClient): { open: (o: OpenClientOptions) => Promise<ParleyClientApi>; opened: OpenClientOptions[] } {
  const opened: OpenClientOptions[] = [];
  return {
    opened,
    open: async (o) => {
      opened.push(o);
      return client;
    },
  };
}
