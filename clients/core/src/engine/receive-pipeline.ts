// SPDX-License-Identifier: AGPL-3.0-only
/**
 * The receive pipeline: envelopes in relay order are decrypted through a staged overlay of the
 * protocol stores, and the new session state, the message and its dedup key are committed in
 * one transaction; only then does the connection ack. A crash anywhere before the commit leaves
 * the envelope unacked and the session untouched, so it is decrypted again after restart; after
 * the commit the dedup key makes a redelivery a no-op.
 *
 * A decryption failure is never dropped silently: it becomes a visible entry in the sender's
 * conversation, the session with that device is reset, and the sender is asked (through a
 * fresh session) to resend; the envelope is acked so the queue moves on.
 *
 * Sealed envelopes are opened by sealed-receive.ts (the sender comes from its certificate) and
 * then handled exactly like identified ones from that sender; a contact's profile key is stored
 * only from a Content whose sender decryption proved.
 */
import { CryptoError, SessionCipher } from '@parley/crypto';
import { aciFromBytes, EnvelopeType, parseAddress, toHex, type DataMessage, type Envelope, type SyncMessage } from '@parley/protocol';
import type { RelayApi } from '../transport/relay-api.js';
import { attachmentsFromPointers, pointerOf, type NewEngineAttachment } from './attachment-pointers.js';
import type { BlockChange, BlockList } from './blocklist.js';
import type { MessageActionEvent } from './client-api.js';
import { decodeContent, encodeContent } from './content-codec.js';
import type { EngineMessage, EngineStore } from './engine-store.js';
import type { GroupReceipt } from './groups.js';
import type { HistoryReceiver } from './history-transfer.js';
import { finishOutcome, isAction, type ActionOutcome, type DataMessageInit, type MessageActions, type MessageActionsPort } from './message-actions.js';
import type { ReceiveHooks } from './receive-hooks.js';
import type { SealedReceiver } from './sealed-receive.js';
import type { Serial } from './serial.js';
import type { SessionManager } from './session-manager.js';

/** Account-wide settings another device of the account synced. */
export type SettingsSyncMessage = Extract<SyncMessage['kind'], { case: 'settings' }>['value'];

/** The outcome of one envelope: handled (or deliberately dropped), or failed from a known sender. */
type Outcome = 'ok' | { readonly failed: { readonly source: string; readonly sourceDevice: number } };

/** Envelopes decrypted into one staged overlay, committed together. */
interface Batch {
  readonly staged: ReturnType<EngineStore['stageProtocol']>;
  readonly cipher: SessionCipher;
  /** Store writes, run in order inside the batch's transaction. */
  readonly effects: Array<() => void>;
  /** Messages stored by the effects, announced after the commit. */
  readonly stored: EngineMessage[];
  /** Edits, deletes, reactions, timer changes and blocks applied by the effects; files they freed. */
  readonly outcome: ActionOutcome;
  /** What the hooks announce once the batch committed. */
  readonly after: Array<() => void>;
}

/** What the pipeline needs. */
export interface ReceivePipelineDeps {
  readonly store: EngineStore & Pick<MessageActionsPort, 'purgeSearchIndex'>;
  readonly sessions: SessionManager;
  readonly serial: Serial;
  readonly api: RelayApi;
  readonly self: { readonly aci: string; readonly deviceId: number; readonly address: string; readonly domain: string };
  readonly now: () => number;
  /** Called with each message stored. */
  readonly onMessage: (m: EngineMessage) => void;
  /** Called when a resend request named a message this device sent (re-queued). */
  readonly onResend?: (messageId: string) => void;
  readonly history: HistoryReceiver;
  /** Takes over group contents (updates, sender keys, group messages and their transcripts). */
  readonly groups?: { receive(r: GroupReceipt): Promise<boolean>; isStranger(aci: string): boolean };
  /** Edits, deletes, reactions, replies, expiry. */
  readonly actions: MessageActions;
  readonly blocklist: BlockList;
  /**
   * Called after a commit with the actions applied, the files they freed and the block-list
   * changes among them.
   */
  readonly onActions?: (events: readonly MessageActionEvent[], files: readonly string[], blocks: readonly BlockChange[]) => void;
  /** Features riding on received content (receipts, typing, syncs, presence tokens). */
  readonly hooks?: ReceiveHooks;
  /** Called after a commit that queued sends (delivery receipts), to send them. */
  readonly onQueued?: () => void;
  /** Opens sealed envelopes; without it they are acked unread. */
  readonly sealed?: SealedReceiver;
  /** A contact's profile key from a decrypted Content; runs in the batch's transaction. */
  readonly onProfileKey?: (senderAci: string, profileKey: Uint8Array) => void;
  /** A sealed envelope that could not be opened and names nobody (counted); runs in the batch's transaction. */
  readonly onUnreadableSealed?: (nowMs: number) => void;
  /** Settings one of the account's own devices synced; runs in the batch's transaction. */
  readonly onSettingsSync?: (settings: SettingsSyncMessage) => void;
}

/** See the module comment. */
export class ReceivePipeline {
  private readonly deps: ReceivePipelineDeps;

  constructor(deps: ReceivePipelineDeps) {
    this.deps = deps;
  }

  /** Handles a batch in order; resolves once every envelope is committed (or deliberately dropped). */
  async handle(envelopes: readonly Envelope[]): Promise<void> {
    await this.deps.serial.run(async () => {
      // One staged overlay and one transaction for the whole delivered batch: decrypting stays
      // per envelope, but the commit (and its fsync) is paid once.
      let batch = this.newBatch();
      for (const e of envelopes) {
        const outcome = await this.handleOne(e, batch);
        // An online-only envelope (typing) is not worth a session reset or a resend request:
        // its sender keeps no copy, and the next real message shows a broken session anyway.
        if (outcome !== 'ok' && e.online) continue;
        if (outcome !== 'ok') {
          // Commit what decrypted before it, then recover this one on its own.
          await this.commitBatch(batch);
          await this.decryptionFailed(outcome.failed.source, outcome.failed.sourceDevice, toHex(e.messageId), e);
          batch = this.newBatch();
        }
      }
      await this.commitBatch(batch);
    });
  }

  private newBatch(): Batch {
    const staged = this.deps.store.stageProtocol();
    const stored: EngineMessage[] = [];
    return {
      staged,
      cipher: new SessionCipher(staged.stores, { localAddress: this.deps.self }),
      effects: [],
      stored,
      outcome: { events: [], stored, files: [], purge: false },
      after: [],
    };
  }

  private async commitBatch(batch: Batch): Promise<void> {
    if (batch.effects.length === 0) {
      batch.staged.discard();
      for (const a of batch.after) a();
      return;
    }
    let queued = false;
    this.deps.store.transaction(() => {
      batch.staged.commit();
      for (const effect of batch.effects) effect();
      finishOutcome(this.deps.store, batch.outcome);
      // Delivery receipts for what this batch stored, durable with it (and sent after it).
      queued = this.deps.hooks?.stored(batch.stored, this.deps.now()) ?? false;
    });
    for (const m of batch.stored) this.deps.onMessage(m);
    for (const a of batch.after) a();
    const { events, files } = batch.outcome;
    if (events.length > 0 || files.length > 0) {
      this.deps.onActions?.(events, files, events.filter((e): e is BlockChange => e.type === 'block'));
    }
    if (queued) this.deps.onQueued?.();
    await this.deps.history.maybeComplete();
  }

  /**
   * Decrypts one envelope into `batch` (its effects run in the batch's transaction).
   * A failed decryption changes nothing (libsignal stores state only on success) and is
   * answered with its sender for the caller to recover.
   */
  private async handleOne(envelope: Envelope, batch: Batch): Promise<Outcome> {
    const { store } = this.deps;
    if (envelope.type === EnvelopeType.SEALED || envelope.type === EnvelopeType.SEALED_MULTI) return this.handleSealed(envelope, batch);
    const source = aciFromBytes(envelope.source);
    const sourceDevice = envelope.sourceDevice;
    const envelopeId = toHex(envelope.messageId);
    if (envelope.type !== EnvelopeType.PREKEY && envelope.type !== EnvelopeType.CIPHERTEXT) {
      // Plaintext content comes with a later issue; record and move on.
      const now = this.deps.now();
      batch.effects.push(() => store.markEnvelopeSeen(source, sourceDevice, envelopeId, now));
      return 'ok';
    }
    const { staged, cipher } = batch;
    const previousKey = await staged.stores.identity.getIdentity(source);
    let plaintext: Uint8Array;
    try {
      plaintext = await cipher.decrypt({ aci: source, deviceId: sourceDevice }, envelope.type === EnvelopeType.PREKEY ? 'prekey' : 'ciphertext', envelope.content);
    } catch (err) {
      if (err instanceof CryptoError && err.is('DUPLICATE_MESSAGE')) return 'ok'; // a replay: shown once already
      return { failed: { source, sourceDevice } };
    }
    const newKey = await staged.stores.identity.getIdentity(source);
    const keyChanged = previousKey !== undefined && newKey !== undefined && !bytesEqual(previousKey, newKey);
    return this.handleDecrypted(envelope, batch, source, sourceDevice, plaintext, keyChanged);
  }

  /**
   * A sealed envelope: opened (the sender comes from its certificate), then handled like an
   * identified one. One whose seal or certificate does not check out names nobody who could
   * be shown or asked: it is acked and dropped. Group (sender-key) messages go to the groups
   * module's hook.
   */
  private async handleSealed(envelope: Envelope, batch: Batch): Promise<Outcome> {
    if (!this.deps.sealed) return 'ok';
    const opened = await this.deps.sealed.open(envelope, batch.staged.stores);
    if (!opened.ok) {
      if (opened.sender && opened.code === 'NO_SENDER_KEY' && this.deps.groups?.isStranger(opened.sender.aci)) {
        // A group message from someone in none of this account's groups (removed, or never a
        // member): its keys were dropped or never came. Nothing to show and nobody to ask.
        const { aci, deviceId } = opened.sender;
        const now = this.deps.now();
        batch.effects.push(() => void this.deps.store.markEnvelopeSeen(aci, deviceId, toHex(envelope.messageId), now));
        return 'ok';
      }
      if (opened.sender) return { failed: { source: opened.sender.aci, sourceDevice: opened.sender.deviceId } };
      if (!opened.duplicate) {
        const now = this.deps.now();
        batch.effects.push(() => this.deps.onUnreadableSealed?.(now));
      }
      return 'ok';
    }
    // A decryption-error report carries no Content; this engine asks for resends in Content.
    if (opened.kind === 'plaintext') return 'ok';
    return this.handleDecrypted(envelope, batch, opened.senderAci, opened.senderDeviceId, opened.plaintext, opened.keyChanged, opened.kind === 'senderkey');
  }

  /**
   * Stores what a decrypted envelope from `source` carried (as effects of the batch).
   * `viaSenderKey`: it came under a group sender key, so only a group message is taken.
   */
  private async handleDecrypted(
    envelope: Envelope,
    batch: Batch,
    source: string,
    sourceDevice: number,
    plaintext: Uint8Array,
    keyChanged: boolean,
    viaSenderKey = false,
  ): Promise<Outcome> {
    const { store } = this.deps;
    const envelopeId = toHex(envelope.messageId);
    if (this.deps.blocklist.isBlocked(source)) {
      // Decrypted, so the session stays in step; dropped: nothing of a blocked contact is kept.
      const now = this.deps.now();
      batch.effects.push(() => store.markEnvelopeSeen(source, sourceDevice, envelopeId, now));
      return 'ok';
    }
    const content = decodeContent(plaintext);
    if (viaSenderKey && !(content?.body.case === 'data' && content.body.value.group) && !(content?.body.case === 'typing' && content.body.value.groupId.length > 0)) {
      // A sender key encrypts group messages and group typing indicators only; anything else under one is dropped.
      const now = this.deps.now();
      batch.effects.push(() => void store.markEnvelopeSeen(source, sourceDevice, envelopeId, now));
      return 'ok';
    }
    // A group message's sender is named by the group; it need not be looked up as a contact.
    const senderAddress =
      content?.body.case === 'data' && !content.body.value.group ? await this.verifiedAddress(source, content.body.value) : store.contactAddressByAci(source);
    const conversationOf = senderAddress ?? source;
    const now = this.deps.now();
    const stored = batch.stored;
    const serverTimestamp = Number(envelope.serverTimestamp);
    const taken =
      content !== undefined &&
      (await this.deps.groups?.receive({
        source,
        sourceDevice,
        content,
        stores: batch.staged.stores,
        now,
        addEffect: (effect) => batch.effects.push(effect),
        announce: (m) => stored.push(m),
        markSeen: () => void store.markEnvelopeSeen(source, sourceDevice, envelopeId, now),
        serverTimestamp,
        outcome: batch.outcome,
      })) === true;
    const { actions } = this.deps;
    const hooked = content ? this.deps.hooks?.content({ source, sourceDevice, address: senderAddress, online: envelope.online, now }, content) : undefined;
    // Online-only content is never stored; content a hook took over is the hook's.
    const handledElsewhere = envelope.online || hooked?.handled === true;
    if (hooked?.after) batch.after.push(hooked.after);
    batch.effects.push(() => {
      if (senderAddress) store.rememberContact(source, senderAddress);
      // Bound to the sender decryption proved, never to anything the content claims.
      if (content && content.profileKey.length > 0 && source !== this.deps.self.aci) this.deps.onProfileKey?.(source, content.profileKey);
      // The account's profile key rides in the SettingsSync a rotation sends (whoever else takes
      // the settings it carries).
      if (source === this.deps.self.aci && content?.body.case === 'sync' && content.body.value.kind.case === 'settings') {
        this.deps.onSettingsSync?.(content.body.value.kind.value);
      }
      // A group member who is no contact gets no conversation of its own for the notice.
      if (keyChanged && !(taken && !senderAddress)) {
        const m = systemMessage(conversationOf, source, sourceDevice, `${conversationOf}'s safety number changed`, 'identity-change', now, store.maxLamport(conversationOf));
        if (store.insertMessage(m) === 'inserted') stored.push(m);
      }
      if (taken) return;
      if (!content) {
        if (envelope.online) return;
        const m = systemMessage(conversationOf, source, sourceDevice, 'received a message this version cannot read', 'system', now, store.maxLamport(conversationOf));
        if (store.insertMessage(m) === 'inserted') stored.push(m);
        return;
      }
      if (handledElsewhere) return;
      switch (content.body.case) {
        case 'data': {
          const d = content.body.value;
          if (isAction(d)) {
            actions.applyIncoming({ senderAci: source, senderDevice: sourceDevice, conversation: conversationOf, serverTimestamp, now }, d, batch.outcome);
            store.markEnvelopeSeen(source, sourceDevice, envelopeId, now);
            return;
          }
          if (actions.expiredOnArrival(d, now)) {
            store.markEnvelopeSeen(source, sourceDevice, envelopeId, now);
            return;
          }
          const m: EngineMessage = {
            id: toHex(d.messageId),
            conversation: conversationOf,
            senderAci: source,
            senderDevice: sourceDevice,
            direction: source === this.deps.self.aci ? 'out' : 'in',
            body: d.text,
            kind: 'text',
            sentAt: Number(d.timestamp),
            receivedAt: now,
            lamport: Number(d.lamport),
            status: 'received',
          };
          if (d.messageId.length === 16 && store.insertMessage(m) === 'inserted') {
            store.saveAttachments(source, m.id, attachmentsFromPointers(d.attachments));
            stored.push(m);
            actions.afterStored(m, d, batch.outcome);
          }
          return;
        }
        case 'sync': {
          const sync = content.body.value;
          if (source !== this.deps.self.aci) return; // sync only from one's own devices
          if (sync.kind.case === 'blocked') {
            batch.outcome.events.push(...this.deps.blocklist.applySync(sync.kind.value, sourceDevice, now));
            store.markEnvelopeSeen(source, sourceDevice, envelopeId, now);
            return;
          }
          if (sync.kind.case === 'settings') {
            store.markEnvelopeSeen(source, sourceDevice, envelopeId, now);
            return;
          }
          if (sync.kind.case !== 'sent') return;
          const t = sync.kind.value;
          const d = t.message;
          if (!d || d.messageId.length !== 16) return;
          let conversation: string;
          try {
            conversation = formatAddressOf(t.destinationAddress, this.deps.self.domain);
          } catch {
            return;
          }
          if (t.destination.length === 16) store.rememberContact(aciFromBytes(t.destination), conversation);
          if (isAction(d)) {
            actions.applyIncoming({ senderAci: source, senderDevice: sourceDevice, conversation, serverTimestamp, now }, d, batch.outcome);
            store.markEnvelopeSeen(source, sourceDevice, envelopeId, now);
            return;
          }
          if (actions.expiredOnArrival(d, now)) {
            store.markEnvelopeSeen(source, sourceDevice, envelopeId, now);
            return;
          }
          const m: EngineMessage = {
            id: toHex(d.messageId),
            conversation,
            senderAci: source,
            senderDevice: sourceDevice,
            direction: 'out',
            body: d.text,
            kind: 'text',
            sentAt: Number(d.timestamp),
            receivedAt: now,
            lamport: Number(d.lamport),
            status: 'sent',
          };
          if (store.insertMessage(m) === 'inserted') {
            store.saveAttachments(source, m.id, attachmentsFromPointers(d.attachments));
            if (t.destination.length === 16) store.addRecipients(m.id, [aciFromBytes(t.destination)], 'sent');
            stored.push(m);
            actions.afterStored(m, d, batch.outcome);
          }
          return;
        }
        case 'history': {
          if (source !== this.deps.self.aci) return; // history only from one's own devices
          this.deps.history.acceptChunk(content.body.value, now);
          store.markEnvelopeSeen(source, sourceDevice, envelopeId, now);
          return;
        }
        case 'resendRequest': {
          store.markEnvelopeSeen(source, sourceDevice, envelopeId, now);
          const envelopeMessageId = toHex(content.body.value.envelopeMessageId);
          const sent = store.sentEnvelope(envelopeMessageId);
          const original = sent ? store.outgoingMessage(sent.messageId) : undefined;
          if (!sent || !original) {
            // An edit, reaction, delete or timer change: the same Content again, under its own ids
            // (the peer applies each action once, whatever copies come).
            const action = sent ? undefined : store.sentAction(envelopeMessageId);
            if (action && action.destinationAci === source) store.outboxAdd({ destinationAci: source, content: action.content, nowMs: now });
            return;
          }
          if (sent.destinationAci !== source) return;
          store.outboxAdd({
            destinationAci: source,
            content: dataContent(original, this.deps.self.address, store.attachmentsOf(this.deps.self.aci, original.id), actions.resendFields(original)),
            nowMs: now,
          });
          this.deps.onResend?.(original.id);
          return;
        }
        default:
          return;
      }
    });
    if (hooked?.effect) batch.effects.push(hooked.effect);
    return 'ok';
  }

  /** A visible entry, a session reset, and a resend request through a fresh session. */
  private async decryptionFailed(source: string, sourceDevice: number, envelopeId: string, envelope: Envelope): Promise<void> {
    const { store } = this.deps;
    const address = store.contactAddressByAci(source);
    const conversation = address ?? source;
    // The outbox addresses sends by `user@domain`; a stranger's address is inside the envelope
    // that failed, so it cannot be asked. Without this check the resend request threw, the
    // transaction rolled back and the envelope was redelivered for ever, blocking the queue.
    const canAsk = address !== undefined && source !== this.deps.self.aci;
    const now = this.deps.now();
    await this.deps.sessions.reset(source, sourceDevice);
    const m: EngineMessage = {
      // The envelope id keeps a redelivery of the same broken envelope from showing twice.
      id: envelopeId,
      conversation,
      senderAci: source,
      senderDevice: sourceDevice,
      direction: 'in',
      body: canAsk ? 'could not decrypt a message; asked the sender to send it again' : 'could not decrypt a message from a sender this device does not know yet',
      kind: 'decryption-error',
      sentAt: Number(envelope.timestamp),
      receivedAt: now,
      lamport: store.maxLamport(conversation),
      status: 'received',
    };
    let inserted = false;
    store.transaction(() => {
      inserted = store.insertMessage(m) === 'inserted';
      if (inserted && canAsk) {
        store.outboxAdd({
          destinationAci: source,
          content: encodeContent({ body: { case: 'resendRequest', value: { envelopeMessageId: envelope.messageId, timestamp: envelope.timestamp } } }),
          nowMs: now,
        });
      }
    });
    if (inserted) this.deps.onMessage(m);
  }

  /** The sender's claimed address, believed only when the directory maps it to the sender's ACI. */
  private async verifiedAddress(source: string, d: DataMessage): Promise<string | undefined> {
    const known = this.deps.store.contactAddressByAci(source);
    if (known) return known;
    if (!d.senderAddress) return undefined;
    let address;
    try {
      address = parseAddress(d.senderAddress);
    } catch {
      return undefined;
    }
    if (address.domain !== this.deps.self.domain) return undefined; // no federation yet
    try {
      const found = await this.deps.api.lookup(address.username);
      return found.aci === source ? `${address.username}@${address.domain}` : undefined;
    } catch {
      return undefined;
    }
  }
}

function formatAddressOf(text: string, domain: string): string {
  const a = parseAddress(text, domain);
  return `${a.username}@${a.domain}`;
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

function systemMessage(
  conversation: string,
  senderAci: string,
  senderDevice: number,
  body: string,
  kind: EngineMessage['kind'],
  now: number,
  lamport: number,
): EngineMessage {
  const id = toHex(crypto.getRandomValues(new Uint8Array(16)));
  return { id, conversation, senderAci, senderDevice, direction: 'in', body, kind, sentAt: now, receivedAt: now, lamport, status: 'received' };
}

/** Content of a DataMessage rebuilt from a stored outgoing message (resend); `extra` adds its timer and quote. */
export function dataContent(m: EngineMessage, senderAddress: string, attachments: readonly NewEngineAttachment[] = [], extra: Partial<DataMessageInit> = {}): Uint8Array {
  return encodeContent({
    body: {
      case: 'data',
      value: {
        ...extra,
        messageId: hexBytes(m.id),
        lamport: BigInt(m.lamport),
        timestamp: BigInt(m.sentAt),
        text: m.body,
        senderAddress,
        attachments: attachments.map(pointerOf),
      },
    },
  });
}

function hexBytes(hex: string): Uint8Array {
  return Uint8Array.from(hex.match(/../g)!.map((h) => parseInt(h, 16)));
}
