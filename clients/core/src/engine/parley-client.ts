// SPDX-License-Identifier: AGPL-3.0-only
/**
 * The composition root of the client engine (CONVENTIONS 5): one ParleyClient per open profile,
 * wiring the store, the relay API and connection, the session manager and the two pipelines.
 */
import { mkdirSync } from 'node:fs';
import { stat, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  generateIdentity,
  generateProvisioningKeyPair,
  generateRegistrationId,
  identityFromKeyPair,
  openProvisioningMessage,
  randomBytes,
  randomMessageId,
  safetyNumber,
  sealProvisioningMessage,
} from '@parley/crypto';
import {
  aciToBytes,
  decodeFrame,
  fromBase64Url,
  fromUtf8,
  LIMITS,
  parseAddress,
  parseUsername,
  toBase64Url,
  toHex,
  utf8,
  type Aci,
  type RelayInfoResponse,
} from '@parley/protocol';
import WebSocket from 'ws';
import { ClientError } from '../errors.js';
import { RelayApi } from '../transport/relay-api.js';
import { RelayConnection } from '../transport/relay-connection.js';
import { TransportError } from '../transport/transport-error.js';
import { maintenanceUpload, initialDeviceKeys, type KeyState } from './account-keys.js';
import type {
  AccountInfo,
  BlockedView,
  ClientEvents,
  ContactView,
  ConversationView,
  DeviceView,
  MessageActionEvent,
  MarkReadResult,
  MessageView,
  GroupView,
  PresenceView,
  PrivacySettings,
  ReceiptView,
  SafetyNumberView,
  SearchHit,
  TypingResult,
} from './client-api.js';
import { BlockList, type BlockChange } from './blocklist.js';
import { encodeContent } from './content-codec.js';
import { ExpirySweeper } from './expiry-sweeper.js';
import { finishOutcome, MessageActions, newOutcome, type ActionOutcome, type ActionRoute, type DataMessageInit } from './message-actions.js';
import type { MessageActionsAdapter } from './message-actions-adapter.js';
import type { EngineAccount, EngineMessage, EngineStore } from './engine-store.js';
import type { SealedSenderStore } from './sealed-sender-store.js';
import { buildHistoryChunks, HistoryReceiver, type HistoryStore } from './history-transfer.js';
import { formatLinkCode, parseLinkCode } from './link-code.js';
import type { DownloadOptions, DownloadResult, ExportFormat, OpenClientOptions, ParleyClientApi, SendFileOptions } from './parley-client-api.js';
import { pointerOf, type NewEngineAttachment } from './attachment-pointers.js';
import { downloadFile, freePathIn, uploadFile } from './attachment-transfer.js';
import { OnlineSender } from './online-sender.js';
import type { PresencePorts } from './presence.js';
import { PrivacyFeatures } from './privacy-features.js';
import { ReceivePipeline } from './receive-pipeline.js';
import type { ReceiptPorts } from './receipts.js';
import { NOBODY_BLOCKED } from './account-profile-key.js';
import { provisionedProfileKey, SealedSenderFeature, setUpSealedSender, type ProvisionedProfileKey } from './sealed-sender-feature.js';
import { SendPipeline } from './send-pipeline.js';
import { GroupSender, type GroupCipherPort } from './group-sender.js';
import { sessionGroupCipher } from './group-cipher.js';
import { Groups, isGroupRef, GROUP_HANDLE_PREFIX } from './groups.js';
import type { GroupStore } from '../store/group-store.js';
import { Serial } from './serial.js';
import { SessionManager } from './session-manager.js';
import { writeExport } from './export-archive.js';

/** How long queued delivery receipts wait for more ids before they are sent, ms. */
export const RECEIPT_FLUSH_DELAY_MS = 100;

/** Read models the front ends list. */
export interface ViewStore {
  conversations(): ConversationView[];
  history(conversation: string, options: { limit: number; before?: string }): MessageView[];
  search(query: string, options: { limit: number }): SearchHit[];
  contacts(): ContactView[];
  messageView(id: string, senderAci: string): MessageView | undefined;
  /** Every message of every conversation, oldest first per conversation (export). */
  allMessages(): Iterable<MessageView>;
}

/** Everything the engine needs of its store. */
export interface ClientStorePorts extends EngineStore, HistoryStore, ViewStore, MessageActionsAdapter, ReceiptPorts, PresencePorts, SealedSenderStore {
  getKeyState(): KeyState | undefined;
  saveKeyState(state: KeyState): void;
  /** Groups: logs, state, sender keys, the multi-recipient outbox. */
  readonly groups: GroupStore;
  /** Deletes a sender key from the protocol store (a member removed from a group). */
  deleteSenderKey(address: string, distributionId: string): void;
  close(): void;
}

/** Opens the store of a profile (the SQLCipher one by default). */
export type StoreOpener = (options: OpenClientOptions) => ClientStorePorts;

/** Options beyond the profile. */
export interface ParleyClientDeps {
  readonly store: ClientStorePorts;
  readonly now?: () => number;
  /** The profile directory; partial downloads are kept in its `downloads/`. Default: the system's temp directory. */
  readonly profileDir?: string;
  /** The sender-key operations of groups; default: @parley/crypto's SessionCipher. */
  readonly groupCipher?: GroupCipherPort;
}

interface ProvisioningPayload extends ProvisionedProfileKey {
  v: 1;
  aci: string;
  username: string;
  domain: string;
  server: string;
  identityKeyPair: string;
  token: string;
  /**
   * The registration id the new device takes: how the approver tells its device apart from
   * another one being linked to the account at the same time. Absent from older approvers.
   */
  registrationId?: number;
}

/** See the module comment. */
export class ParleyClient implements ParleyClientApi {
  private readonly store: ClientStorePorts;
  private readonly now: () => number;
  private readonly serial = new Serial();
  private readonly listeners = new Map<keyof ClientEvents, Set<(...args: never[]) => void>>();
  private api: RelayApi | undefined;
  private sessions: SessionManager | undefined;
  private sender: SendPipeline | undefined;
  private receiver: ReceivePipeline | undefined;
  private groupsModule: Groups | undefined;
  private groupSender: GroupSender | undefined;
  private readonly groupCipher: GroupCipherPort;
  private actions: MessageActions | undefined;
  private blocklist: BlockList | undefined;
  private sweeper: ExpirySweeper | undefined;
  /** Receipts, typing, presence and the privacy settings. */
  private privacy: PrivacyFeatures | undefined;
  /** The pending flush of delivery receipts (see flushReceiptsSoon). */
  private receiptFlush: NodeJS.Timeout | undefined;
  private connection: RelayConnection | undefined;
  private sealed: SealedSenderFeature | undefined;
  /** The groups module's handler of group messages that arrive sealed. */
  private drainWaiters: Array<() => void> = [];
  private drained = false;
  private lastActivity = 0;
  private fatal: ClientError | undefined;
  private historyImported: Array<(n: number) => void> = [];
  /** Sends waiting for the next group commit (see queueSend). */
  private intake: Array<{
    account: EngineAccount;
    aci: string;
    conversation: string;
    text: string;
    attachments?: readonly NewEngineAttachment[];
    quote?: DataMessageInit['quote'];
    resolve: (m: EngineMessage) => void;
    reject: (e: unknown) => void;
  }> = [];
  /** Key upkeep started after the last drain; awaited before a connection is closed. */
  private maintenance: Promise<void> = Promise.resolve();
  /** Operations holding the connection open (see useConnection). */
  private connectionUsers = 0;
  /** The closing of the previous connection; a new one waits for it (one socket per device). */
  private stopping: Promise<void> = Promise.resolve();
  /** Aborted by close(): ends listen() and receive() waits that nobody else would end. */
  private readonly closing = new AbortController();

  /** Where partial (encrypted) downloads wait to be resumed. */
  private readonly partialDir: string;

  constructor(deps: ParleyClientDeps) {
    this.store = deps.store;
    this.now = deps.now ?? (() => Date.now());
    this.partialDir = join(deps.profileDir ?? join(tmpdir(), 'parley'), 'downloads');
    this.groupCipher = deps.groupCipher ?? sessionGroupCipher();
    const account = this.store.getAccount();
    if (account) {
      this.wire(account);
      this.sweep();
    }
  }

  account(): AccountInfo | undefined {
    const a = this.store.getAccount();
    return (
      a && {
        aci: a.aci,
        username: a.username,
        address: `${a.username}@${a.domain}`,
        deviceId: a.deviceId,
        server: a.serverUrl,
        ...(this.sealed ? { sealedSender: this.sealed.status() } : {}),
      }
    );
  }

  on<E extends keyof ClientEvents>(event: E, listener: ClientEvents[E]): () => void {
    let set = this.listeners.get(event);
    if (!set) this.listeners.set(event, (set = new Set()));
    const fn = listener as (...args: never[]) => void;
    set.add(fn);
    return () => void set.delete(fn);
  }

  private emit<E extends keyof ClientEvents>(event: E, ...args: Parameters<ClientEvents[E]>): void {
    for (const l of this.listeners.get(event) ?? []) (l as unknown as (...a: Parameters<ClientEvents[E]>) => void)(...args);
  }

  async register(server: string, username: string): Promise<AccountInfo> {
    if (this.store.getAccount()) throw new ClientError('INVALID_ARGUMENT', 'this profile already has an account; use another --profile');
    const name = parseUsername(username);
    const api = new RelayApi({ baseUrl: server });
    const identity = generateIdentity();
    const secret = randomBytes(32);
    const { keys, state } = await initialDeviceKeys(this.store.protocol, identity.identityKeyPair, this.now());
    const res = await api.register({
      username: name,
      identityKey: toBase64Url(identity.identityKey),
      registrationId: identity.registrationId,
      authSecret: toBase64Url(secret),
      ...keys,
    });
    const info = await api.info();
    this.saveNewAccount(
      { aci: res.aci, deviceId: res.deviceId, username: res.username, domain: info.domain, serverUrl: api.baseUrl, authSecret: secret, ...identity },
      state,
      info,
    );
    // A new account's first settings and presence token; linked devices get them synced.
    this.privacy!.initialize();
    // Contacts can send sealed once the relay has the access key; a failure here is retried on
    // the next connection.
    await this.sealed!.uploadAccessKey().catch(() => undefined);
    return this.account()!;
  }

  async link(server: string, onLinkCode: (code: string) => void, options: { timeoutMs?: number } = {}): Promise<AccountInfo> {
    if (this.store.getAccount()) throw new ClientError('INVALID_ARGUMENT', 'this profile already has an account; link a new --profile');
    const api = new RelayApi({ baseUrl: server });
    const keyPair = generateProvisioningKeyPair();
    const timeoutMs = options.timeoutMs ?? 10 * 60_000;
    const sealed = await new Promise<Uint8Array>((resolve, reject) => {
      const ws = new WebSocket(api.provisioningUrl);
      const timer = setTimeout(() => {
        ws.terminate();
        reject(new TransportError('TIMEOUT', 'no device approved the link in time'));
      }, timeoutMs);
      ws.on('message', (data: Buffer) => {
        try {
          const f = decodeFrame(new Uint8Array(data));
          if (f.kind.case === 'provisioningAddress') {
            onLinkCode(formatLinkCode({ relay: api.baseUrl, address: f.kind.value.address, publicKey: keyPair.publicKey }));
            this.emit('progress', { task: 'link', done: 1, total: 3, unit: 'steps' });
          } else if (f.kind.case === 'provisioningMessage') {
            clearTimeout(timer);
            resolve(f.kind.value.body);
          }
        } catch (err) {
          reject(err);
        }
      });
      ws.once('error', () => {
        clearTimeout(timer);
        reject(new TransportError('UNREACHABLE', `cannot reach the relay at ${api.baseUrl}`));
      });
      ws.once('close', () => clearTimeout(timer));
    });
    const payload = JSON.parse(fromUtf8(openProvisioningMessage(keyPair.privateKey, sealed))) as ProvisioningPayload;
    const identityKeyPair = fromBase64Url(payload.identityKeyPair);
    if (payload.v !== 1 || !identityKeyPair) throw new ClientError('INVALID_ARGUMENT', 'the approving device sent a provisioning message this version cannot read');
    const given = payload.registrationId;
    const registrationId = Number.isInteger(given) && given! >= 1 && given! <= LIMITS.maxRegistrationId ? given! : generateRegistrationId();
    const identity = identityFromKeyPair(identityKeyPair, registrationId);
    const secret = randomBytes(32);
    const { keys, state } = await initialDeviceKeys(this.store.protocol, identity.identityKeyPair, this.now());
    const res = await api.linkDevice({ token: payload.token, registrationId: identity.registrationId, authSecret: toBase64Url(secret), ...keys });
    this.emit('progress', { task: 'link', done: 2, total: 3, unit: 'steps' });
    const info = await api.info();
    this.saveNewAccount(
      { aci: res.aci, deviceId: res.deviceId, username: res.username, domain: payload.domain, serverUrl: api.baseUrl, authSecret: secret, ...identity },
      state,
      info,
      payload,
    );
    await this.sealed!.uploadAccessKey().catch(() => undefined);
    // The approving device sends the history next; wait for it to be imported.
    const imported = new Promise<number>((resolve) => this.historyImported.push(resolve));
    await this.useConnection(async () => {
      await this.stopping;
      this.startConnection();
      const deadline = new Promise<never>((_, reject) => setTimeout(() => reject(new TransportError('TIMEOUT', 'the history did not arrive in time')), timeoutMs).unref());
      await Promise.race([imported, deadline]);
    });
    this.emit('progress', { task: 'link', done: 3, total: 3, unit: 'steps' });
    return this.account()!;
  }

  async approveLink(linkCode: string): Promise<{ deviceId: number }> {
    const account = this.requireAccount();
    const code = parseLinkCode(linkCode);
    const api = this.api!;
    if (code.relay.replace(/\/+$/, '') !== api.baseUrl) throw new ClientError('INVALID_ARGUMENT', `the new device uses another relay (${code.relay}); link it to ${api.baseUrl}`);
    const existing = (await api.devices()).devices;
    const before = new Set(existing.map((d) => d.deviceId));
    let registrationId: number;
    do registrationId = generateRegistrationId();
    while (existing.some((d) => d.registrationId === registrationId));
    const token = await api.linkToken();
    const payload: ProvisioningPayload = {
      v: 1,
      aci: account.aci,
      username: account.username,
      domain: account.domain,
      server: account.serverUrl,
      identityKeyPair: toBase64Url(account.identityKeyPair),
      token: token.token,
      registrationId,
      ...provisionedProfileKey(this.store),
    };
    await api.sendProvisioning(code.address, toBase64Url(sealProvisioningMessage(code.publicKey, utf8(JSON.stringify(payload)))));
    // Wait for the new device to register itself. Any new device is not enough: another link
    // may be running at the same time, and its device must not get this one's history.
    let newId: number | undefined;
    for (let i = 0; i < 600 && newId === undefined; i++) {
      const now = (await api.devices()).devices;
      newId = now.find((d) => !before.has(d.deviceId) && d.registrationId === registrationId)?.deviceId;
      if (newId === undefined) await new Promise((r) => setTimeout(r, 100));
    }
    if (newId === undefined) throw new TransportError('TIMEOUT', 'the new device did not register in time');
    await this.serial.run(() => this.sessions!.repair(account.aci, { missing: [newId!] }));
    const chunks = buildHistoryChunks(this.store, newId);
    const ids = this.store.transaction(() => [
      ...chunks.map((content) => this.store.outboxAdd({ destinationAci: account.aci, content, nowMs: this.now() })),
      // The privacy settings and presence token, after the history.
      this.store.outboxAdd({ destinationAci: account.aci, content: this.privacy!.settingsSync(), nowMs: this.now(), urgent: false }),
    ]);
    const pendingIds = new Set(ids);
    await this.useConnection(async () => {
      await this.ensureConnected();
      let done = 0;
      this.emit('progress', { task: 'history-send', done, total: ids.length, unit: 'chunks' });
      for (let round = 0; pendingIds.size > 0 && round < 1000; round++) {
        await this.sender!.flush();
        for (const id of [...pendingIds]) if (!this.store.outboxHas(id)) pendingIds.delete(id);
        if (ids.length - pendingIds.size !== done) {
          done = ids.length - pendingIds.size;
          this.emit('progress', { task: 'history-send', done, total: ids.length, unit: 'chunks' });
        }
        if (pendingIds.size > 0) await new Promise((r) => setTimeout(r, 200));
      }
    });
    if (pendingIds.size > 0) throw new TransportError('TIMEOUT', 'the history could not be sent; it stays queued and is sent on the next run');
    return { deviceId: newId };
  }

  async devices(): Promise<DeviceView[]> {
    const account = this.requireAccount();
    const res = await this.api!.devices();
    return res.devices.map((d) => ({ deviceId: d.deviceId, registrationId: d.registrationId, createdAt: d.createdAt, current: d.deviceId === account.deviceId }));
  }

  async removeDevice(deviceId: number): Promise<void> {
    this.requireAccount();
    await this.api!.removeDevice(deviceId);
    await this.serial.run(() => this.sessions!.repair(this.requireAccount().aci, { extra: [deviceId] }));
  }

  async send(address: string, text: string): Promise<MessageView> {
    const account = this.requireAccount();
    if (text.length === 0) throw new ClientError('INVALID_ARGUMENT', 'the message is empty');
    if (text.length > 64 * 1024) throw new ClientError('INVALID_ARGUMENT', 'the message is over 64 KiB of text');
    if (isGroupRef(address)) {
      const message = await this.serial.run(async () => this.groupsModule!.queueMessage(address, text));
      return this.deliverToGroup(account, address, message);
    }
    const { aci, conversation } = await this.resolveForSending(address);
    const message = await this.queueSend(account, aci, conversation, text);
    return this.deliver(account, aci, conversation, message);
  }

  /**
   * Sends what is queued, then answers the group message's view — or IDENTITY_CHANGED when it
   * waits because a member's safety number changed (as a 1:1 send does: nothing is encrypted to
   * the new key until the user accepts it with `verify --accept`, which sends it on).
   */
  private async deliverToGroup(account: EngineAccount, ref: string, message: EngineMessage): Promise<MessageView> {
    const untrusted = await this.deliverQueued();
    const view = this.store.messageView(message.id, account.aci) ?? toView(message);
    if (view.status !== 'pending' || untrusted.length === 0) return view;
    const groupId = this.groupsModule!.resolveRef(ref);
    const changed: string[] = [];
    for (const m of this.store.groups.members(groupId)) {
      if (m.aci !== account.aci && untrusted.includes(m.aci) && (await this.identityUnaccepted(m.aci))) changed.push(m.address);
    }
    if (changed.length === 0) return view;
    const first = changed[0]!;
    const who = changed.length === 1 ? `${first}'s safety number` : `the safety numbers of ${changed.join(', ')}`;
    throw new ClientError(
      'IDENTITY_CHANGED',
      `${who} changed: compare it with \`parley verify ${first}\`, then accept it with \`parley verify ${first} --accept\`; the message to the group waits until then`,
    );
  }

  async sendFile(address: string, path: string, options: SendFileOptions = {}): Promise<MessageView> {
    const account = this.requireAccount();
    const caption = options.caption ?? '';
    if (caption.length > 64 * 1024) throw new ClientError('INVALID_ARGUMENT', 'the caption is over 64 KiB of text');
    // A group is checked before the upload: a file for a group this account is not in goes nowhere.
    const groupId = isGroupRef(address) ? this.groupsModule!.resolveRef(address) : undefined;
    if (groupId !== undefined && !this.store.groups.group(groupId)?.isMember) throw new ClientError('NOT_GROUP_MEMBER', 'this account is not a member of the group');
    const target = groupId === undefined ? await this.resolveForSending(address) : undefined;
    const attachment = await uploadFile({
      api: this.api!,
      path,
      domain: account.domain,
      ...(options.contentType !== undefined ? { contentType: options.contentType } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
      onProgress: (done, total) => this.emit('progress', { task: 'upload', done, total, unit: 'bytes' }),
    });
    if (!target) {
      // Uploaded once; every member device gets the same pointer inside the group message.
      const message = await this.serial.run(async () => this.groupsModule!.queueMessage(address, caption, { attachments: [attachment] }));
      return this.deliverToGroup(account, address, message);
    }
    const message = await this.queueSend(account, target.aci, target.conversation, caption, [attachment]);
    return this.deliver(account, target.aci, target.conversation, message);
  }

  async downloadAttachment(messageId: string, options: DownloadOptions = {}): Promise<DownloadResult> {
    this.requireAccount();
    if (!/^[0-9a-f]{32}$/.test(messageId)) throw new ClientError('INVALID_ARGUMENT', 'a message id is 32 hex characters');
    const index = options.index ?? 0;
    const all = this.store.attachmentsByMessageId(messageId);
    if (all.length === 0) throw new ClientError('NOT_FOUND', `message ${messageId} has no file (or is not in this profile)`);
    const a = all.find((x) => x.index === index);
    if (!a) throw new ClientError('NOT_FOUND', `message ${messageId} has ${all.length} file${all.length === 1 ? '' : 's'}; --index counts from 0`);
    if (a.domain !== '' && a.domain !== this.requireAccount().domain) throw new ClientError('INVALID_ARGUMENT', `the file is on another relay (${a.domain}); federation is not available yet`);
    const outPath = await this.downloadTarget(options.out, a.fileName);
    const done = await downloadFile({
      api: this.api!,
      attachment: a,
      partialPath: join(this.partialDir, `${a.blobId}.part`),
      outPath,
      ...(options.signal ? { signal: options.signal } : {}),
      onProgress: (d, total) => this.emit('progress', { task: 'download', done: d, total, unit: 'bytes' }),
    });
    this.store.setAttachmentPath(a.senderAci, messageId, a.index, done.path);
    return { path: done.path, size: done.size, fileName: a.fileName, contentType: a.contentType };
  }

  /** `out` as given, a free name inside `out` when it is a directory, or one in the current directory. */
  private async downloadTarget(out: string | undefined, fileName: string): Promise<string> {
    if (out === undefined) return freePathIn(process.cwd(), fileName);
    const isDir = await stat(out).then(
      (st) => st.isDirectory(),
      () => false,
    );
    return isDir ? freePathIn(out, fileName) : out;
  }

  /** Delivers a queued message now if the relay can be reached; it stays queued otherwise. */
  private async deliver(account: EngineAccount, aci: string, conversation: string, message: EngineMessage): Promise<MessageView> {
    try {
      const result = await this.useConnection(async () => {
        await this.ensureConnected();
        return this.sender!.flush();
      });
      // The run that met the changed key may have been another caller's (a flush started on
      // connect), so the stored state decides, not only this flush's result.
      const view = this.store.messageView(message.id, account.aci);
      const held = view?.status === 'pending';
      if (result.untrusted.includes(aci) || (held && (await this.identityUnaccepted(aci)))) {
        throw new ClientError('IDENTITY_CHANGED', `${conversation}'s safety number changed: compare it with \`parley verify ${conversation}\`, then accept it with \`parley verify ${conversation} --accept\`; the message waits until then`);
      }
      // Nothing was awaited since the view was read unless it was held: then read it again.
      if (view && !held) return view;
    } catch (err) {
      if (!(err instanceof TransportError)) throw err;
      // Offline: the message stays in the outbox and goes out on the next run.
    }
    return this.store.messageView(message.id, account.aci) ?? toView(message);
  }

  /**
   * Commits a send to the outbox. Sends made in the same event-loop turn share one transaction
   * (group commit, as on the relay): one fsync for a burst instead of one per message.
   */
  private queueSend(
    account: EngineAccount,
    aci: string,
    conversation: string,
    text: string,
    attachments?: readonly NewEngineAttachment[],
    quote?: DataMessageInit['quote'],
  ): Promise<EngineMessage> {
    return new Promise((resolve, reject) => {
      this.intake.push({ account, aci, conversation, text, ...(attachments ? { attachments } : {}), ...(quote ? { quote } : {}), resolve, reject });
      if (this.intake.length === 1) setImmediate(() => this.commitIntake());
    });
  }

  private commitIntake(): void {
    const batch = this.intake.splice(0);
    const now = this.now();
    let messages: EngineMessage[];
    try {
      messages = this.store.transaction(() => batch.map((req) => this.intakeOne(req, now)));
    } catch (err) {
      for (const req of batch) req.reject(err);
      return;
    }
    batch.forEach((req, i) => req.resolve(messages[i]!));
  }

  private intakeOne(
    req: { account: EngineAccount; aci: string; conversation: string; text: string; attachments?: readonly NewEngineAttachment[]; quote?: DataMessageInit['quote'] },
    now: number,
  ): EngineMessage {
    const { account, aci, conversation, text } = req;
    const attachments = req.attachments ?? [];
    const id = randomMessageId();
    const lamport = this.store.maxLamport(conversation) + 1;
    const m: EngineMessage = {
      id: toHex(id),
      conversation,
      senderAci: account.aci,
      senderDevice: account.deviceId,
      direction: 'out',
      body: text,
      kind: 'text',
      sentAt: now,
      receivedAt: now,
      lamport,
      status: 'pending',
    };
    this.store.insertMessage(m);
    if (aci !== account.aci) this.store.addRecipients(m.id, [aci]);
    if (attachments.length > 0) this.store.saveAttachments(account.aci, m.id, attachments);
    const expireTimerSeconds = this.actions!.timerOf(conversation);
    const data = {
      messageId: id,
      lamport: BigInt(lamport),
      timestamp: BigInt(now),
      text,
      senderAddress: `${account.username}@${account.domain}`,
      attachments: attachments.map(pointerOf),
      expireTimerSeconds,
      ...(req.quote ? { quote: req.quote } : {}),
    };
    this.actions!.afterStored(m, { expireTimerSeconds, quote: req.quote }, newOutcome());
    this.queueData(account, { conversation, destinationAci: aci }, data, m.id);
    return m;
  }

  /** Queues `data` for the route's account and, as a sent transcript, for one's other devices (inside a transaction). */
  private queueData(account: EngineAccount, route: ActionRoute, data: DataMessageInit, messageId?: string): void {
    if (isGroupRef(route.conversation)) {
      this.groupsModule!.queueData(route.conversation.slice(GROUP_HANDLE_PREFIX.length), data, messageId);
      return;
    }
    const now = this.now();
    // The presence token rides on every data message to a contact while presence is on.
    const presenceToken = route.destinationAci !== account.aci ? this.privacy?.presence.tokenForContent() : undefined;
    this.store.outboxAdd({
      ...(messageId ? { messageId } : {}),
      destinationAci: route.destinationAci,
      content: encodeContent({ body: { case: 'data', value: data }, ...(presenceToken ? { presenceToken } : {}) }),
      nowMs: now,
    });
    if (route.destinationAci !== account.aci && this.transcriptsWanted(account)) {
      this.store.outboxAdd({
        destinationAci: account.aci,
        content: encodeContent({
          body: { case: 'sync', value: { kind: { case: 'sent', value: { destination: aciToBytes(route.destinationAci as Aci), destinationAddress: route.conversation, message: data } } } },
        }),
        nowMs: now,
      });
    }
  }

  /**
   * Whether a sent transcript could reach anyone: not when the relay said lately that this device
   * is alone on its account and no session with another of its devices exists since. The
   * pipeline would encrypt it for nobody and drop it; not queueing it spares a single-device
   * account an outbox entry per message.
   */
  private transcriptsWanted(account: EngineAccount): boolean {
    if (!this.sessions?.aloneRecently()) return true;
    return this.store.sessionDeviceIds(account.aci).some((d) => d !== account.deviceId);
  }

  // --- edits, deletes, reactions, replies, disappearing messages, blocking -------------------

  async editMessage(address: string, messageId: string, text: string): Promise<MessageView> {
    const id = checkMessageIdArg(messageId);
    const route = await this.routeFor(address);
    const target = this.runActions((out) => this.actions!.edit(route, id, text, this.now(), out));
    await this.deliverActions(route);
    return this.store.messageView(target.id, target.senderAci)!;
  }

  async deleteMessage(address: string, messageId: string, options: { local?: boolean } = {}): Promise<MessageView> {
    const id = checkMessageIdArg(messageId);
    if (options.local) {
      this.requireAccount();
      const conversation = this.conversationKey(address);
      const route = { conversation, destinationAci: isGroupRef(conversation) ? '' : (this.store.contactAciByAddress(conversation) ?? '') };
      const target = this.runActions((out) => this.actions!.delete(route, id, 'local', this.now(), out));
      return this.store.messageView(target.id, target.senderAci)!;
    }
    const route = await this.routeFor(address);
    const target = this.runActions((out) => this.actions!.delete(route, id, 'everyone', this.now(), out));
    await this.deliverActions(route);
    return this.store.messageView(target.id, target.senderAci)!;
  }

  async react(address: string, messageId: string, emoji: string, options: { remove?: boolean } = {}): Promise<MessageView> {
    const id = checkMessageIdArg(messageId);
    const route = await this.routeFor(address);
    const target = this.runActions((out) => this.actions!.react(route, id, emoji, options.remove === true, this.now(), out));
    await this.deliverActions(route);
    return this.store.messageView(target.id, target.senderAci)!;
  }

  async reply(address: string, messageId: string, text: string): Promise<MessageView> {
    const account = this.requireAccount();
    const id = checkMessageIdArg(messageId);
    if (text.trim().length === 0) throw new ClientError('INVALID_ARGUMENT', 'the message is empty');
    if (text.length > 64 * 1024) throw new ClientError('INVALID_ARGUMENT', 'the message is over 64 KiB of text');
    if (isGroupRef(address)) {
      const quote = this.actions!.quoteFor(this.conversationKey(address), id);
      const message = await this.serial.run(async () => this.groupsModule!.queueMessage(address, text, { quote }));
      await this.deliverQueued();
      return this.store.messageView(message.id, account.aci) ?? toView(message);
    }
    const { aci, conversation } = await this.resolveForSending(address);
    const quote = this.actions!.quoteFor(conversation, id);
    const message = await this.queueSend(account, aci, conversation, text, undefined, quote);
    return this.deliver(account, aci, conversation, message);
  }

  async setExpireTimer(address: string, seconds: number): Promise<MessageView> {
    const account = this.requireAccount();
    const route = await this.routeFor(address);
    const notice = this.runActions((out) => this.actions!.setTimer(route, seconds, this.now(), out));
    if (!isGroupRef(route.conversation)) return this.deliver(account, route.destinationAci, route.conversation, notice);
    await this.deliverQueued();
    return this.store.messageView(notice.id, account.aci) ?? toView(notice);
  }

  expireTimer(address: string): number {
    this.requireAccount();
    return this.actions!.timerOf(this.conversationKey(address));
  }

  /** Where an action for `address` (a user, or a group `#…`) goes; refused with BLOCKED for a blocked contact. */
  private async routeFor(address: string): Promise<ActionRoute> {
    if (isGroupRef(address)) return { conversation: this.conversationKey(address), destinationAci: '' };
    return this.resolveForSending(address);
  }

  /** The engine's conversation name for `address`: `user@domain`, or `#<group id>`. */
  private conversationKey(address: string): string {
    return isGroupRef(address) ? `${GROUP_HANDLE_PREFIX}${this.groupsModule!.resolveRef(address)}` : this.conversationOf(address);
  }

  async block(address: string): Promise<BlockedView> {
    const account = this.requireAccount();
    const { aci, conversation } = await this.resolve(address);
    if (aci === account.aci) throw new ClientError('INVALID_ARGUMENT', 'you cannot block your own account');
    await this.changeBlock(account, aci, conversation, true);
    return this.blocklist!.list().find((b) => b.aci === aci)!;
  }

  async unblock(address: string): Promise<void> {
    const account = this.requireAccount();
    const conversation = this.conversationOf(address);
    const aci = this.store.contactAciByAddress(conversation);
    if (!aci || !this.blocklist!.isBlocked(aci)) return;
    await this.changeBlock(account, aci, conversation, false);
  }

  blocked(): BlockedView[] {
    this.requireAccount();
    return this.blocklist!.list();
  }

  private async changeBlock(account: EngineAccount, aci: string, address: string, blocked: boolean): Promise<void> {
    const change = this.store.transaction(() => {
      const c = this.blocklist!.set(aci, address, blocked, this.now());
      if (c) this.store.outboxAdd({ destinationAci: account.aci, content: c.sync, nowMs: this.now() });
      // Blocking replaces the profile key (committed with the block, so a crash cannot keep
      // the block and lose the rotation): the blocked contact's sealed sends are refused.
      if (c && blocked) this.sealed!.rotateProfileKey();
      return c;
    });
    if (!change) return;
    if (blocked) await this.sealed!.uploadAccessKey().catch(() => undefined);
    this.afterActions(change.changes, [], change.changes);
    try {
      await this.useConnection(async () => {
        await this.ensureConnected();
        await this.sender!.flush();
      });
    } catch (err) {
      if (!(err instanceof TransportError)) throw err;
      // Offline: one's other devices get the new list with the next run.
    }
  }

  /** Runs local actions in one transaction and announces them once it is committed. */
  private runActions<T>(fn: (out: ActionOutcome) => T): T {
    const out = newOutcome();
    const result = this.store.transaction(() => {
      const r = fn(out);
      finishOutcome(this.store, out);
      return r;
    });
    this.afterActions(out.events, out.files, []);
    return result;
  }

  /**
   * After a commit that applied actions: files of deleted messages leave the disk, listeners
   * hear the events. Block-list changes reach BlockList's listeners too: sealed sender rotates
   * the profile key there (`this.blocklist.onChanged`; the sealed-sender work owns profile keys).
   */
  private afterActions(events: readonly MessageActionEvent[], files: readonly string[], blocks: readonly BlockChange[]): void {
    removeFiles(files);
    for (const e of events) this.emit('action', e);
    this.blocklist?.announce(blocks);
  }

  /** Delivers queued actions now if the relay can be reached; they stay queued otherwise. */
  private async deliverActions(route: ActionRoute): Promise<void> {
    if (isGroupRef(route.conversation)) {
      await this.deliverQueued();
      return;
    }
    try {
      const result = await this.useConnection(async () => {
        await this.ensureConnected();
        return this.sender!.flush();
      });
      if (result.untrusted.includes(route.destinationAci)) {
        throw new ClientError('IDENTITY_CHANGED', `${route.conversation}'s safety number changed: compare it with \`parley verify ${route.conversation}\`, then accept it with \`parley verify ${route.conversation} --accept\`; the change waits until then`);
      }
    } catch (err) {
      if (!(err instanceof TransportError)) throw err;
    }
  }

  /** Deletes expired messages now (see ExpirySweeper); a failure waits for the next sweep. */
  private sweep(): void {
    try {
      this.sweeper?.sweep();
    } catch (err) {
      if (!(err instanceof ClientError)) throw err;
    }
  }

  async createGroup(title: string, members: readonly string[]): Promise<GroupView> {
    this.requireAccount();
    const view = await this.groupsModule!.create(title, members);
    await this.deliverQueued();
    return view;
  }

  async addGroupMembers(group: string, members: readonly string[]): Promise<GroupView> {
    this.requireAccount();
    return this.afterGroupChange(await this.groupsModule!.addMembers(group, members));
  }

  async removeGroupMembers(group: string, members: readonly string[]): Promise<GroupView> {
    this.requireAccount();
    return this.afterGroupChange(await this.groupsModule!.removeMembers(group, members));
  }

  async leaveGroup(group: string): Promise<GroupView> {
    this.requireAccount();
    return this.afterGroupChange(await this.groupsModule!.leave(group));
  }

  async changeGroupAdmins(group: string, change: { add?: readonly string[]; remove?: readonly string[] }): Promise<GroupView> {
    this.requireAccount();
    return this.afterGroupChange(await this.groupsModule!.changeAdmins(group, change));
  }

  async setGroupTitle(group: string, title: string): Promise<GroupView> {
    this.requireAccount();
    return this.afterGroupChange(await this.groupsModule!.setTitle(group, title));
  }

  group(group: string): GroupView {
    this.requireAccount();
    return this.groupsModule!.view(this.groupsModule!.resolveRef(group));
  }

  groups(): GroupView[] {
    this.requireAccount();
    return this.groupsModule!.list();
  }

  private async afterGroupChange(view: GroupView): Promise<GroupView> {
    await this.deliverQueued();
    return this.groupsModule!.view(view.id);
  }

  /**
   * Sends what is queued (pairwise and group sends) now if the relay can be reached; it stays
   * queued otherwise. Answers the accounts whose changed identity key held a send back.
   */
  private async deliverQueued(): Promise<string[]> {
    try {
      return await this.useConnection(async () => {
        await this.ensureConnected();
        const pairwise = await this.sender!.flush();
        const group = await this.groupSender!.flush();
        return [...new Set([...pairwise.untrusted, ...group.untrusted])];
      });
    } catch (err) {
      if (!(err instanceof TransportError)) throw err;
      return [];
    }
  }

  /** Both send queues: pairwise first (sender keys and transcripts), then group uploads. */
  private async flushAll(): Promise<void> {
    await this.sender!.flush();
    await this.groupSender!.flush();
  }

  async receive(options: { idleSeconds?: number } = {}): Promise<MessageView[]> {
    this.requireAccount();
    const got: MessageView[] = [];
    const off = this.on('message', (m) => got.push(m));
    try {
      await this.useConnection(async () => {
        await this.ensureConnected();
        await this.waitDrained();
        await this.flushAll();
        this.sweep();
        const idleMs = (options.idleSeconds ?? 0) * 1000;
        this.lastActivity = this.now();
        while (idleMs > 0 && this.now() - this.lastActivity < idleMs && !this.fatal && !this.closing.signal.aborted) {
          await new Promise((r) => setTimeout(r, Math.min(200, idleMs)));
        }
        await this.flushAll();
        if (this.fatal) throw this.fatal;
      });
    } finally {
      off();
    }
    return got;
  }

  async listen(signal: AbortSignal): Promise<void> {
    this.requireAccount();
    await this.useConnection(async () => {
      await this.ensureConnected();
      const flushTimer = setInterval(() => void this.flushAll().catch(() => undefined), 5000);
      const stopSweeping = this.sweeper!.start();
      // Contacts' presence streams to a listener (while presence is on).
      const unwatch = this.privacy!.presence.watch();
      try {
        await new Promise<void>((resolve) => {
          if (signal.aborted || this.closing.signal.aborted) return resolve();
          signal.addEventListener('abort', () => resolve(), { once: true });
          this.closing.signal.addEventListener('abort', () => resolve(), { once: true });
        });
      } finally {
        clearInterval(flushTimer);
        stopSweeping();
        unwatch();
      }
    });
  }

  async markRead(address: string): Promise<MarkReadResult> {
    this.requireAccount();
    return this.privacy!.markRead(address);
  }

  receipts(address: string, options: { messageId?: string; limit?: number } = {}): ReceiptView[] {
    this.requireAccount();
    return this.privacy!.receipts(address, options);
  }

  settings(): PrivacySettings {
    this.requireAccount();
    return this.privacy!.settings();
  }

  async updateSettings(changes: Partial<PrivacySettings>): Promise<PrivacySettings> {
    this.requireAccount();
    return this.privacy!.updateSettings(changes);
  }

  async typing(address: string, action: 'started' | 'stopped'): Promise<TypingResult> {
    this.requireAccount();
    return this.privacy!.typing(address, action);
  }

  async presence(): Promise<PresenceView[]> {
    this.requireAccount();
    return this.privacy!.presenceList();
  }

  setPresence(state: 'online' | 'away'): void {
    this.requireAccount();
    this.privacy!.setOwnPresence(state);
  }

  async rotatePresenceToken(): Promise<void> {
    this.requireAccount();
    await this.privacy!.rotatePresenceToken();
  }

  conversations(): ConversationView[] {
    return this.store.conversations();
  }

  history(address: string, options: { limit?: number; before?: string } = {}): MessageView[] {
    const conversation = isGroupRef(address) ? `${GROUP_HANDLE_PREFIX}${this.groupsModule!.resolveRef(address)}` : this.conversationOf(address);
    return this.store.history(conversation, { limit: options.limit ?? 50, ...(options.before ? { before: options.before } : {}) });
  }

  search(query: string, options: { limit?: number } = {}): SearchHit[] {
    return this.store.search(query, { limit: options.limit ?? 20 });
  }

  contacts(): ContactView[] {
    return this.store.contacts();
  }

  async verify(address: string): Promise<SafetyNumberView> {
    const account = this.requireAccount();
    const { aci, conversation } = await this.resolve(address);
    let remoteKey = await this.store.protocol.identity.getIdentity(aci);
    if (!remoteKey) {
      await this.serial.run(() => this.sessions!.ensureSessions(aci));
      remoteKey = await this.store.protocol.identity.getIdentity(aci);
    }
    if (!remoteKey) throw new ClientError('NOT_FOUND', `no identity key is known for ${conversation}`);
    const sn = safetyNumber({ aci: account.aci, identityKey: account.identityKey }, { aci, identityKey: remoteKey });
    const trusted = await this.store.protocol.identity.isTrustedIdentity(aci, remoteKey, 'sending');
    const contact = this.store.contacts().find((c) => c.aci === aci);
    return {
      address: conversation,
      safetyNumber: sn.displayString.match(/.{5}/g)!.join(' '),
      identityChanged: !trusted,
      verified: contact?.verified ?? false,
    };
  }

  async acceptIdentity(address: string): Promise<SafetyNumberView> {
    const { aci } = await this.resolve(address);
    const key = await this.store.protocol.identity.getIdentity(aci);
    if (!key) throw new ClientError('NOT_FOUND', `no identity key is known for ${address}`);
    await this.store.protocol.identity.acceptIdentity(aci, key);
    // The user compared the numbers before accepting: the key is verified as well as trusted.
    this.store.setVerified(aci, true);
    this.store.outboxWake(aci, this.now());
    // Group sends held for this key (or any other now accepted) go round again.
    this.store.groups.outbox.wakeUntrusted(this.now());
    return this.verify(address);
  }

  async exportArchive(options: { format: ExportFormat; outDir: string }): Promise<{ files: string[]; messages: number }> {
    return writeExport(this.store.allMessages(), options, (done, total) => this.emit('progress', { task: 'export', done, total, unit: 'messages' }));
  }

  async close(): Promise<void> {
    this.closing.abort();
    this.sweeper = undefined;
    this.privacy?.close();
    clearTimeout(this.receiptFlush);
    await this.stopConnection(true);
    this.store.close();
  }

  // --- wiring -------------------------------------------------------------------------------

  private saveNewAccount(account: EngineAccount, state: KeyState, info: RelayInfoResponse, provisioned?: ProvisionedProfileKey): void {
    this.store.transaction(() => {
      this.store.saveAccount(account);
      this.store.saveKeyState(state);
      this.store.rememberContact(account.aci, `${account.username}@${account.domain}`);
      setUpSealedSender(this.store, account.domain, info, this.now(), provisioned);
    });
    this.wire(account);
  }

  private wire(account: EngineAccount): void {
    const api = new RelayApi({ baseUrl: account.serverUrl });
    api.authenticate({ aci: account.aci, deviceId: account.deviceId, secret: account.authSecret });
    this.api = api;
    this.sessions = new SessionManager({ api, stores: this.store.protocol, self: { aci: account.aci, deviceId: account.deviceId } });
    const sealed = new SealedSenderFeature({
      store: this.store,
      api,
      self: { aci: account.aci, deviceId: account.deviceId, domain: account.domain },
      now: this.now,
      blocked: () => this.blocklist ?? NOBODY_BLOCKED,
    });
    this.sealed = sealed;
    this.sender = new SendPipeline({
      selfAci: account.aci,
      store: this.store,
      sessions: this.sessions,
      serial: this.serial,
      connection: () => this.connection,
      now: this.now,
      // A committed sender key distribution makes its devices holders of the key.
      onCommitted: (entry) => this.store.groups.keySendCommitted(entry.id, (entry.ciphertexts ?? []).map((c) => c.deviceId)),
      prepareContent: sealed.prepareContent,
      sealed: sealed.sending,
    });
    const groupSelf = { aci: account.aci, deviceId: account.deviceId, address: `${account.username}@${account.domain}`, domain: account.domain };
    const cipher = this.groupCipher;
    const self = { aci: account.aci, deviceId: account.deviceId };
    const actions = new MessageActions({
      store: this.store,
      self,
      partialDir: this.partialDir,
      queue: (route, data, messageId) => this.queueData(account, route, data, messageId),
      senderAddress: () => `${account.username}@${account.domain}`,
    });
    this.actions = actions;
    this.groupsModule = new Groups({
      store: this.store,
      groups: this.store.groups,
      deleteSenderKey: (address, distributionId) => this.store.deleteSenderKey(address, distributionId),
      self: groupSelf,
      now: this.now,
      resolve: (address) => this.resolve(address),
      serial: (fn) => this.serial.run(async () => fn()),
      processDistribution: (stores, sender, message) => cipher.processDistribution(stores, groupSelf, sender, message),
      actions,
    });
    this.groupSender = new GroupSender({
      store: this.store,
      groups: this.store.groups,
      sessions: this.sessions,
      serial: this.serial,
      self: groupSelf,
      now: this.now,
      connection: () => this.connection,
      certificate: () => sealed.certificates.get(),
      cipher,
      flushPairwise: () => this.sender!.flush(),
      sealedRoute: (acis) => sealed.multiRoute(acis),
    });
    const history = new HistoryReceiver({
      store: this.store,
      deviceId: account.deviceId,
      onProgress: (done, total) => this.emit('progress', { task: 'history-receive', done, total, unit: 'chunks' }),
      onImported: (n) => {
        for (const w of this.historyImported.splice(0)) w(n);
      },
      importGroup: (id, changes) => this.groupsModule?.importLog(id, changes),
    });
    this.privacy = new PrivacyFeatures({
      store: this.store,
      api,
      connection: () => this.connection,
      groups: {
        resolveRef: (ref) => this.groupsModule!.resolveRef(ref),
        sendOnline: (groupId, content) => this.groupSender!.sendOnline(groupId, content),
        isMember: (groupId, aci) => this.store.groups.isMember(groupId, aci),
        memberAddress: (aci) => this.store.groups.memberAddress(aci),
      },
      online: new OnlineSender({ store: this.store, sessions: this.sessions, serial: this.serial, connection: () => this.connection, now: this.now }),
      host: {
        self: () => this.requireAccount(),
        now: this.now,
        resolve: (address) => this.resolve(address),
        conversationOf: (address) => (isGroupRef(address) ? `${GROUP_HANDLE_PREFIX}${this.groupsModule!.resolveRef(address)}` : this.conversationOf(address)),
        connected: (fn) =>
          this.useConnection(async () => {
            await this.ensureConnected();
            await this.waitDrained();
            return fn();
          }),
        deliverQueued: async () => void (await this.deliverQueued()),
        emitReceipt: (e) => this.emit('receipt', e),
        emitTyping: (e) => this.emit('typing', e),
        emitPresence: (p) => this.emit('presence', p),
      },
    });
    this.blocklist = new BlockList({ store: this.store, self });
    this.sweeper = new ExpirySweeper({
      store: this.store,
      now: this.now,
      filesOf: (m) => actions.filesOf(m, m.attachments),
      removeFiles,
      onExpired: (e) => this.emit('action', e),
    });
    this.receiver = new ReceivePipeline({
      store: this.store,
      actions,
      blocklist: this.blocklist,
      onActions: (events, files, blocks) => this.afterActions(events, files, blocks),
      sessions: this.sessions,
      serial: this.serial,
      api,
      self: { aci: account.aci, deviceId: account.deviceId, address: `${account.username}@${account.domain}`, domain: account.domain },
      now: this.now,
      history,
      groups: this.groupsModule,
      onMessage: (m) => {
        this.lastActivity = this.now();
        this.emit('message', this.store.messageView(m.id, m.senderAci) ?? toView(m));
      },
      onResend: () => void this.sender?.flush().catch(() => undefined),
      hooks: this.privacy,
      onQueued: () => this.flushReceiptsSoon(),
      sealed: sealed.receiver,
      onProfileKey: sealed.onProfileKey,
      onSettingsSync: sealed.onSettingsSync,
      onUnreadableSealed: sealed.onUnreadableSealed,
    });
  }

  /**
   * Sends queued delivery receipts a moment later rather than at once: batches arriving meanwhile
   * add their ids to the receipt still waiting, so a busy conversation sends few, full receipts.
   */
  private flushReceiptsSoon(): void {
    if (this.receiptFlush) return;
    this.receiptFlush = setTimeout(() => {
      this.receiptFlush = undefined;
      void this.sender?.flush().catch(() => undefined);
    }, RECEIPT_FLUSH_DELAY_MS);
    this.receiptFlush.unref();
  }

  /** Whether the last identity key seen for `aci` is not the one the user trusts. */
  private async identityUnaccepted(aci: string): Promise<boolean> {
    const seen = await this.store.protocol.identity.getIdentity(aci);
    return seen !== undefined && !(await this.store.protocol.identity.isTrustedIdentity(aci, seen, 'sending'));
  }

  private requireAccount(): EngineAccount {
    const a = this.store.getAccount();
    if (!a) throw new ClientError('NO_ACCOUNT');
    return a;
  }

  private conversationOf(address: string): string {
    const account = this.requireAccount();
    const a = parseAddress(address, account.domain);
    return `${a.username}@${a.domain}`;
  }

  /** {@link resolve}, refused with BLOCKED for a blocked contact. */
  private async resolveForSending(address: string): Promise<{ aci: string; conversation: string; destinationAci: string }> {
    const r = await this.resolve(address);
    if (this.blocklist!.isBlocked(r.aci)) throw new ClientError('BLOCKED', `you blocked ${r.conversation}; unblock it to send`);
    return { ...r, destinationAci: r.aci };
  }

  private async resolve(address: string): Promise<{ aci: string; conversation: string }> {
    const account = this.requireAccount();
    const a = parseAddress(address, account.domain);
    const conversation = `${a.username}@${a.domain}`;
    if (a.domain !== account.domain) throw new ClientError('INVALID_ARGUMENT', `${conversation} is on another relay; federation is not available yet`);
    const known = this.store.contactAciByAddress(conversation);
    if (known) return { aci: known, conversation };
    const found = await this.api!.lookup(a.username);
    this.store.rememberContact(found.aci, conversation);
    return { aci: found.aci, conversation };
  }

  private startConnection(): void {
    if (this.connection) return;
    const api = this.api!;
    this.drained = false;
    this.connection = new RelayConnection({
      url: api.websocketUrl,
      authorization: () => api.authorization,
      onEnvelopes: async (envs) => {
        await this.receiver!.handle(envs);
        this.sweep();
      },
      onDrained: () => {
        this.drained = true;
        for (const w of this.drainWaiters.splice(0)) w();
        // After the drain: settings synced from other devices are in by then.
        this.maintenance = Promise.all([
          this.maintainKeys().catch(() => undefined),
          this.privacy!.presence.reconcile().catch(() => undefined),
          this.sealed?.maintain(),
        ]).then(() => undefined);
        void this.flushAll().catch(() => undefined);
      },
      onPresence: (u) => this.privacy!.presence.onUpdate(u),
      onPresenceEnded: (refused) => this.privacy!.presence.onEnded(refused),
      onState: (state, detail) => {
        if (state === 'connected') this.privacy!.presence.onConnected();
        if (state === 'disconnected' || state === 'stopped') this.privacy!.presence.reset();
        this.emit('connection', state, detail);
      },
      onFatal: (err) => {
        this.fatal =
          err.code === 'CONNECTED_ELSEWHERE'
            ? new ClientError('PROFILE_IN_USE', 'this device is connected from another process; stop that one first')
            : new ClientError('DEVICE_REMOVED', 'this device was removed from its account or its credentials are no longer valid; link it again');
        this.emit('fatal', err.code, err.message);
        for (const w of this.drainWaiters.splice(0)) w();
      },
    });
    this.connection.start();
  }

  /**
   * Runs `fn` with the connection held open; the last holder to finish closes it. Without the
   * count a `receive()` ended a `listen()` running beside it, and a `send()` left its socket
   * open (consuming the queue unseen) after it returned.
   */
  private async useConnection<T>(fn: () => Promise<T>): Promise<T> {
    this.connectionUsers++;
    try {
      return await fn();
    } finally {
      if (--this.connectionUsers === 0) await this.stopConnection();
    }
  }

  private async ensureConnected(): Promise<void> {
    if (this.fatal) throw this.fatal;
    await this.stopping;
    this.startConnection();
    try {
      await this.connection!.waitConnected(15_000);
    } catch (err) {
      throw this.fatal ?? err;
    }
  }

  private async waitDrained(): Promise<void> {
    if (this.drained || this.fatal) return;
    await new Promise<void>((resolve) => this.drainWaiters.push(resolve));
    if (this.fatal) throw this.fatal;
  }

  /** Closes the connection once key upkeep is done, unless someone holds it again by then (or `force`). */
  private async stopConnection(force = false): Promise<void> {
    const previous = this.stopping;
    this.stopping = (async () => {
      await previous;
      await this.maintenance;
      // A holder that arrived while key upkeep finished keeps the connection.
      if (this.connectionUsers > 0 && !force) return;
      const c = this.connection;
      this.connection = undefined;
      if (c) await c.stop();
      await this.sealed?.stop();
    })();
    await this.stopping;
  }

  private async maintainKeys(): Promise<void> {
    const account = this.requireAccount();
    const state = this.store.getKeyState();
    if (!state) return;
    const counts = await this.api!.keyCounts();
    const next = await this.serial.run(() => maintenanceUpload(this.store.protocol, account.identityKeyPair, state, counts, this.now()));
    if (!next) return;
    await this.api!.uploadKeys(next.upload);
    this.store.saveKeyState(next.state);
  }
}

function toView(m: EngineMessage): MessageView {
  return {
    id: m.id,
    conversation: m.conversation,
    direction: m.direction,
    sender: m.senderAci,
    senderDevice: m.senderDevice,
    text: m.body,
    kind: m.kind,
    sentAt: m.sentAt,
    receivedAt: m.receivedAt,
    lamport: m.lamport,
    status: m.status,
  };
}

/** Removes files in the background; one that is gone already is no error. */
function removeFiles(paths: readonly string[]): void {
  for (const p of paths) void unlink(p).catch(() => undefined);
}

/** A message id argument: 32 hex characters. */
function checkMessageIdArg(id: string): string {
  if (typeof id !== 'string' || !/^[0-9a-f]{32}$/.test(id)) throw new ClientError('INVALID_ARGUMENT', 'a message id is 32 lowercase hex characters');
  return id;
}

/** Ensures the profile directory exists with owner-only permissions. */
export function ensureProfileDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
}
