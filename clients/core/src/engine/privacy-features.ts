// SPDX-License-Identifier: AGPL-3.0-only
/**
 * Receipts, typing indicators and presence, and the privacy settings that govern them, as one
 * feature of the engine: the operations front ends call (mark read, list receipts, change
 * settings, type, list presence) and the receive hooks that handle what peers and one's own
 * devices send (receipts, typing, read and settings syncs, presence tokens).
 *
 * Everything here is an encrypted message between clients (DESIGN §6, §8); the relay sees only
 * that envelopes pass, and presence (which it must know to route) only for token holders.
 */
import { generatePresenceToken } from '@parley/crypto';
import { fromHex, toHex, type Content } from '@parley/protocol';
import { ClientError } from '../errors.js';
import type { RelayApi } from '../transport/relay-api.js';
import type { RelayConnection } from '../transport/relay-connection.js';
import type { MarkReadResult, PresenceView, PrivacySettings, ReceiptEvent, ReceiptView, TypingEvent, TypingResult } from './client-api.js';
import type { EngineMessage, EngineStore } from './engine-store.js';
import { GROUP_HANDLE_PREFIX, isGroupRef } from './groups.js';
import type { OnlineSender } from './online-sender.js';
import { PresenceService, type OwnPresence, type PresencePorts } from './presence.js';
import { mergeSettingsSync, nextVersion, readPrivacy, settingsSyncContent, switchesOf, writePrivacy, type StoredPrivacy } from './privacy-settings.js';
import type { ContentOutcome, ReceivedFrom, ReceiveHooks } from './receive-hooks.js';
import {
  byAuthor,
  deliveryReceiptsOwed,
  openDeliveryReceipt,
  parseReadSync,
  parseReceipt,
  readSyncContent,
  RECEIPT_BATCH,
  receiptBatches,
  receiptContent,
  type AuthoredMessage,
  type ReceiptPorts,
} from './receipts.js';
import { TypingThrottle, TypingTracker, typingActionOf, typingContent, type TypingAction, type TypingScheduler } from './typing.js';

/** What the feature needs of the store. */
export type PrivacyStore = ReceiptPorts & PresencePorts & Pick<EngineStore, 'transaction' | 'outboxAdd' | 'contactAddressByAci'>;

/** What the feature needs of the client it is part of. */
export interface PrivacyHost {
  /** This account. @throws ClientError NO_ACCOUNT */
  self(): { readonly aci: string };
  now(): number;
  /** The ACI and canonical address of `address` (a directory lookup for a new contact). */
  resolve(address: string): Promise<{ aci: string; conversation: string }>;
  /** The canonical conversation name of `address` (no lookup). */
  conversationOf(address: string): string;
  /** Runs `fn` with the connection open, up and drained. @throws TransportError when the relay cannot be reached. */
  connected<T>(fn: () => Promise<T>): Promise<T>;
  /** Sends what is queued if the relay can be reached; it stays queued otherwise. */
  deliverQueued(): Promise<void>;
  emitReceipt(e: ReceiptEvent): void;
  emitTyping(e: TypingEvent): void;
  emitPresence(p: PresenceView): void;
}

/** What a PrivacyFeatures needs. */
export interface PrivacyFeaturesDeps {
  readonly store: PrivacyStore;
  readonly host: PrivacyHost;
  readonly api: RelayApi;
  readonly connection: () => RelayConnection | undefined;
  readonly online: OnlineSender;
  /** Timers of the typing expiry; default Node's. */
  readonly scheduler?: TypingScheduler;
  /** Groups, for typing indicators in them; without it a group is refused. */
  readonly groups?: TypingGroups;
}

/** What typing indicators in groups need of the groups module. */
export interface TypingGroups {
  /** The group id (hex) a `#…` reference names. @throws ClientError NOT_FOUND, AMBIGUOUS_GROUP */
  resolveRef(ref: string): string;
  /** Sends `content` to the group online-only; resolves with the devices reached. */
  sendOnline(groupId: string, content: Uint8Array): Promise<number>;
  /** Whether `aci` is a member of group `groupId` (an indicator from anyone else is dropped). */
  isMember(groupId: string, aci: string): boolean;
  /** A member's address as the group's changes name it. */
  memberAddress(aci: string): string | undefined;
}

/** See the module comment. */
export class PrivacyFeatures implements ReceiveHooks {
  readonly presence: PresenceService;
  private readonly deps: PrivacyFeaturesDeps;
  private readonly typingIn: TypingTracker;
  private readonly typingOut: TypingThrottle;
  /** The presence token each contact last sent, as stored (saves a lookup per received message). */
  private readonly knownTokens = new Map<string, string>();
  /** This account's ACI (it never changes once there is one). */
  private selfAci: string | undefined;

  constructor(deps: PrivacyFeaturesDeps) {
    this.deps = deps;
    this.presence = new PresenceService({ store: deps.store, api: deps.api, connection: deps.connection, emit: (p) => deps.host.emitPresence(p) });
    this.typingIn = new TypingTracker((e) => deps.host.emitTyping(e), deps.scheduler);
    this.typingOut = new TypingThrottle(() => deps.host.now(), deps.store);
  }

  // --- settings -----------------------------------------------------------------------------

  /** The account's privacy switches as this device holds them. */
  settings(): PrivacySettings {
    return switchesOf(readPrivacy(this.deps.store));
  }

  /**
   * The settings of a new account: the defaults, as a first version, with a fresh presence token
   * (linked devices get both from the approving device instead).
   */
  initialize(): void {
    writePrivacy(this.deps.store, { ...readPrivacy(this.deps.store), version: nextVersion(readPrivacy(this.deps.store), this.deps.host.now()), presenceToken: generatePresenceToken() });
  }

  /**
   * Changes switches, shares them with one's own other devices (SettingsSync, newest version
   * wins), and registers or withdraws the presence token on the relay. Turning presence on makes
   * a token when the account has none yet.
   */
  async updateSettings(changes: Partial<PrivacySettings>): Promise<PrivacySettings> {
    for (const [k, v] of Object.entries(changes)) {
      if (!['readReceipts', 'typingIndicators', 'presence'].includes(k) || typeof v !== 'boolean') throw new ClientError('INVALID_ARGUMENT', `unknown setting ${k}`);
    }
    const current = readPrivacy(this.deps.store);
    const next: StoredPrivacy = { ...current, ...changes, version: nextVersion(current, this.deps.host.now()) };
    const withToken = next.presence && !next.presenceToken ? { ...next, presenceToken: generatePresenceToken() } : next;
    await this.share(withToken);
    return switchesOf(withToken);
  }

  /**
   * A new presence token for the account: the relay forgets the old one, so contacts who were
   * not sent a message since can no longer watch this account's presence.
   * @throws ClientError SETTING_OFF while presence is off.
   */
  async rotatePresenceToken(): Promise<void> {
    const current = readPrivacy(this.deps.store);
    if (!current.presence) throw new ClientError('SETTING_OFF', 'presence is off: turn it on with `parley settings presence on` first');
    await this.share({ ...current, version: nextVersion(current, this.deps.host.now()), presenceToken: generatePresenceToken() });
  }

  /** The SettingsSync for a newly linked device (queued after its history). */
  settingsSync(): Uint8Array {
    return settingsSyncContent(readPrivacy(this.deps.store));
  }

  private async share(next: StoredPrivacy): Promise<void> {
    const { store, host } = this.deps;
    const now = host.now();
    store.transaction(() => {
      writePrivacy(store, next);
      store.outboxAdd({ destinationAci: host.self().aci, content: settingsSyncContent(next), nowMs: now, urgent: false });
    });
    this.presence.refresh();
    try {
      await this.presence.reconcile();
    } catch {
      // The relay cannot be reached or refused: the next connection tries again (after its drain).
    }
    await host.deliverQueued();
  }

  // --- receipts -----------------------------------------------------------------------------

  /**
   * Marks every unread message of a conversation read: one read receipt per author (none while
   * read receipts are off) and one ReadSync to this account's other devices, queued durably in
   * one transaction, then sent if the relay can be reached.
   * @throws ClientError NOT_FOUND for a conversation this profile does not have.
   */
  async markRead(address: string): Promise<MarkReadResult> {
    const { store, host } = this.deps;
    const conversation = host.conversationOf(address);
    const self = host.self().aci;
    const now = host.now();
    const sendReceipts = readPrivacy(store).readReceipts;
    const result = store.transaction(() => {
      const read = store.markConversationRead(conversation);
      let receipts = 0;
      if (read.length === 0) return { read, receipts };
      if (sendReceipts) {
        for (const [author, ids] of byAuthor(read)) {
          const destinationAddress = store.routeAddress(author);
          if (author === self || !destinationAddress) continue;
          for (const batch of receiptBatches(ids)) {
            store.outboxAdd({ destinationAci: author, destinationAddress, content: receiptContent('read', batch, now), nowMs: now, urgent: false });
            receipts++;
          }
        }
      }
      for (const batch of batches(read)) store.outboxAdd({ destinationAci: self, content: readSyncContent(batch), nowMs: now, urgent: false });
      return { read, receipts };
    });
    if (result.read.length > 0) await host.deliverQueued();
    return { conversation, messageIds: result.read.map((m) => m.id), receipts: result.receipts };
  }

  /**
   * Per-recipient state of this account's messages in a conversation (one message, or the newest
   * `limit`, default 20). While read receipts are off nobody's read state shows: `read` reads
   * `delivered`.
   */
  receipts(address: string, options: { messageId?: string; limit?: number } = {}): ReceiptView[] {
    if (options.messageId !== undefined && !/^[0-9a-f]{32}$/.test(options.messageId)) throw new ClientError('INVALID_ARGUMENT', 'a message id is 32 hex characters');
    const conversation = this.deps.host.conversationOf(address);
    const views = this.deps.store.receiptViews(conversation, { limit: options.limit ?? 20, ...(options.messageId !== undefined ? { messageId: options.messageId } : {}) });
    if (readPrivacy(this.deps.store).readReceipts) return views;
    return views.map((v) => {
      const { readAt: _hidden, ...rest } = v;
      return v.status === 'read' ? { ...rest, status: 'delivered' as const } : rest;
    });
  }

  // --- typing -------------------------------------------------------------------------------

  /**
   * Tells `address` this user started or stopped typing, online-only (never queued). A STARTED
   * less than 3 s after the last one to that conversation is not sent (`throttled`); nothing is
   * sent while typing indicators are off.
   * @throws TransportError when the relay cannot be reached.
   */
  async typing(address: string, action: TypingAction): Promise<TypingResult> {
    if (action !== 'started' && action !== 'stopped') throw new ClientError('INVALID_ARGUMENT', 'a typing action is started or stopped');
    if (!readPrivacy(this.deps.store).typingIndicators) return { sent: false, reason: 'off', devices: 0 };
    if (isGroupRef(address)) {
      const groups = this.deps.groups;
      if (!groups) throw new ClientError('NOT_FOUND', 'no such group');
      const groupId = groups.resolveRef(address);
      if (!this.typingOut.allow(`${GROUP_HANDLE_PREFIX}${groupId}`, action)) return { sent: false, reason: 'throttled', devices: 0 };
      const content = typingContent(action, this.deps.host.now(), fromHex(groupId));
      return { sent: true, devices: await this.deps.host.connected(() => groups.sendOnline(groupId, content)) };
    }
    const { aci, conversation } = await this.deps.host.resolve(address);
    if (!this.typingOut.allow(conversation, action)) return { sent: false, reason: 'throttled', devices: 0 };
    const devices = await this.deps.host.connected(() => this.deps.online.send(aci, typingContent(action, this.deps.host.now())));
    return { sent: true, devices };
  }

  // --- presence -----------------------------------------------------------------------------

  /**
   * Every contact's presence now, asked of the relay with the tokens contacts handed out.
   * @throws ClientError SETTING_OFF while presence is off (reciprocal: no watching without
   *   sharing); TransportError when the relay cannot be reached.
   */
  async presenceList(): Promise<PresenceView[]> {
    if (!readPrivacy(this.deps.store).presence) throw new ClientError('SETTING_OFF', 'presence is off: turn it on with `parley settings presence on`');
    return this.deps.host.connected(() => this.presence.snapshot());
  }

  /** Sets this device's own presence (online or away): now when connected, and on every later connection. */
  setOwnPresence(state: OwnPresence): void {
    if (state !== 'online' && state !== 'away') throw new ClientError('INVALID_ARGUMENT', 'a presence state is online or away');
    this.presence.setOwnState(state);
  }

  // --- receive hooks ------------------------------------------------------------------------

  /** See ReceiveHooks.content. */
  content(from: ReceivedFrom, content: Content): ContentOutcome | undefined {
    const { store } = this.deps;
    const mine = from.source === this.self();
    // The sender's presence token rides on its messages; a changed one renews the subscription.
    let token: { effect: () => void; after: () => void } | undefined;
    if (!mine && !from.online && from.address !== undefined && content.presenceToken.length === 32) {
      const value = content.presenceToken;
      const hex = toHex(value);
      if (this.knownTokens.get(from.source) !== hex) {
        let changed = false;
        token = {
          effect: () => void (changed = store.savePresenceToken(from.source, value)),
          after: () => {
            // Remembered once committed: a batch that rolled back saved nothing.
            this.knownTokens.set(from.source, hex);
            if (changed) this.presence.refresh();
          },
        };
      }
    }
    const body = content.body;
    switch (body.case) {
      case 'receipt':
        return this.receiptReceived(from, mine, body.value, token);
      case 'typing': {
        const action = typingActionOf(body.value.action);
        if (mine || !action || !readPrivacy(store).typingIndicators) return { handled: true };
        const groupId = body.value.groupId.length > 0 ? toHex(body.value.groupId) : undefined;
        if (groupId !== undefined) {
          // In a group: only from a member, shown under the name the group's changes give it.
          const groups = this.deps.groups;
          const address = from.address ?? groups?.memberAddress(from.source);
          if (!groups || !address || !groups.isMember(groupId, from.source)) return { handled: true };
          return { handled: true, after: () => this.typingIn.received({ from: address, conversation: `${GROUP_HANDLE_PREFIX}${groupId}`, action, groupId }) };
        }
        const address = from.address;
        if (!address) return { handled: true };
        return { handled: true, after: () => this.typingIn.received({ from: address, conversation: address, action }) };
      }
      case 'sync': {
        if (!mine || from.online) return undefined;
        const kind = body.value.kind;
        if (kind.case === 'read') {
          const read = parseReadSync(kind.value);
          return { handled: true, effect: () => void store.markReadSync(read) };
        }
        if (kind.case === 'settings') {
          const synced = kind.value;
          let changed = false;
          return {
            handled: true,
            effect: () => {
              const merged = mergeSettingsSync(readPrivacy(store), synced);
              if (merged) writePrivacy(store, merged);
              changed = merged !== undefined;
            },
            after: () => changed && this.presence.refresh(),
          };
        }
        return undefined;
      }
      default:
        return token ? { handled: false, ...token } : undefined;
    }
  }

  /**
   * See ReceiveHooks.stored: one delivery receipt per author of the messages a batch stored, or
   * none when a delivery receipt to that author still waits in the outbox unencrypted: it takes
   * the new ids (a busy conversation sends fewer, fuller receipts).
   */
  stored(messages: readonly EngineMessage[], now: number): boolean {
    const { store } = this.deps;
    let queued = false;
    for (const [author, owed] of deliveryReceiptsOwed(messages, this.self())) {
      // A sender whose address could not be verified cannot be routed to by the outbox.
      const destinationAddress = store.routeAddress(author);
      if (!destinationAddress) continue;
      let ids = owed;
      for (const entry of store.unsentEntries(author, 4)) {
        const waiting = openDeliveryReceipt(entry.content);
        if (!waiting) continue;
        const room = RECEIPT_BATCH - waiting.length;
        const merged = [...new Set([...waiting, ...ids.slice(0, room)])];
        if (store.replaceUnsentContent(entry.id, receiptContent('delivered', merged, now))) ids = ids.slice(room);
        break;
      }
      for (const batch of receiptBatches(ids)) {
        store.outboxAdd({ destinationAci: author, destinationAddress, content: receiptContent('delivered', batch, now), nowMs: now, urgent: false });
      }
      queued = true;
    }
    return queued;
  }

  private self(): string {
    return (this.selfAci ??= this.deps.host.self().aci);
  }

  /** Stops the typing expiry timers. */
  close(): void {
    this.typingIn.clear();
  }

  private receiptReceived(
    from: ReceivedFrom,
    mine: boolean,
    receipt: Parameters<typeof parseReceipt>[0],
    token: { effect: () => void; after: () => void } | undefined,
  ): ContentOutcome {
    const { store, host } = this.deps;
    const parsed = mine || from.online ? undefined : parseReceipt(receipt);
    // Reciprocal: with read receipts off, others' read state is neither shown nor kept.
    if (!parsed || (parsed.kind === 'read' && !readPrivacy(store).readReceipts)) return { handled: true, ...(token ?? {}) };
    let known: string[] = [];
    return {
      handled: true,
      effect: () => {
        token?.effect();
        known = store.applyReceipt(from.source, parsed.ids, parsed.kind, from.now).known;
      },
      after: () => {
        token?.after();
        if (known.length === 0) return;
        const who = from.address ?? store.routeAddress(from.source) ?? from.source;
        host.emitReceipt({ type: parsed.kind === 'read' ? 'read' : 'delivery', from: who, messageIds: known, at: from.now });
      },
    };
  }
}

/** Read syncs in slices small enough for one envelope. */
function batches(messages: readonly AuthoredMessage[]): AuthoredMessage[][] {
  const out: AuthoredMessage[][] = [];
  for (let i = 0; i < messages.length; i += 500) out.push(messages.slice(i, i + 500));
  return out;
}
