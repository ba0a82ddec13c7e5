// SPDX-License-Identifier: AGPL-3.0-only
/**
 * The engine's store port over the SQLCipher client store. Conversations are named by the
 * peer's address on the engine side and by a local random id in the store; this adapter maps
 * between the two and turns records into the views front ends show.
 */
import { deriveAccessKey } from '@parley/crypto';
import { fromBase64Url, fromHex, toBase64Url, toHex, type Aci, type DeviceId, type MessageId } from '@parley/protocol';
import { ClientError } from '../errors.js';
import { AccountProfileKeyStore } from '../store/account-profile-key.js';
import { AttachmentStore } from '../store/attachment-store.js';
import { ContactKeys } from '../store/contact-keys.js';
import { SealedAttempts } from '../store/sealed-attempts.js';
import { SenderCertificateStore } from '../store/sender-certificate-store.js';
import type { ClientStore } from '../store/client-store.js';
import { stageProtocolStores } from '../store/staged-protocol-stores.js';
import type { Conversation } from '../store/message-store.js';
import type { ConversationId, MessageRecord, MessageStatus } from '../store/store-types.js';
import type { KeyState } from './account-keys.js';
import type { AttachmentView, ContactView, ConversationView, MessageView, SearchHit } from './client-api.js';
import type { DeviceCiphertext, EngineAccount, EngineMessage, OutboxEntry } from './engine-store.js';
import type { ArchiveLine } from './history-transfer.js';
import { adaptMessageActions } from './message-actions-adapter.js';
import type { ClientStorePorts } from './parley-client.js';
import { readPrivacy } from './privacy-settings.js';
import { adaptReceiptPorts } from './receipt-adapter.js';

const KEY_STATE = 'engine.keyState';
const UNREADABLE_SEALED = 'sealed.unreadable';
/** How the engine names a group's conversation: `#` and the group id. */
const GROUP_PREFIX = '#';

/** The engine's name of a conversation: the peer's address (or ACI), or `#<group id>`. */
function conversationName(c: Conversation): string {
  return c.kind === 'group' ? `${GROUP_PREFIX}${c.groupId}` : (c.peerAddress ?? c.peerAci);
}
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

interface MessageRow {
  id: string;
  sender_aci: string;
  sender_device: number;
  direction: 'in' | 'out';
  kind: MessageView['kind'];
  body: string;
  sent_at: number;
  received_at: number;
  lamport: number;
  status: MessageStatus;
  peer_aci: string | null;
  peer_address: string | null;
  group_id: string | null;
}

/** Wraps an open client store as the engine's ports; `now` is the engine's clock (ms since the epoch). */
export function adaptClientStore(store: ClientStore, now: () => number = () => Date.now()): ClientStorePorts {
  const { messages, outbox, database } = store;
  const files = new AttachmentStore(database);
  const profileKey = new AccountProfileKeyStore(database);
  const contactKeys = new ContactKeys(database);
  const certificates = new SenderCertificateStore(database);
  const sealedAttempts = new SealedAttempts(database);
  const unreadableSealed = (): { count: number; lastAt?: number } => {
    try {
      const j = JSON.parse(store.settings.get(UNREADABLE_SEALED) ?? '{}') as { count?: unknown; lastAt?: unknown };
      const count = typeof j.count === 'number' && Number.isSafeInteger(j.count) && j.count > 0 ? j.count : 0;
      return { count, ...(typeof j.lastAt === 'number' ? { lastAt: j.lastAt } : {}) };
    } catch {
      return { count: 0 };
    }
  };

  /** The files of a message as views; undefined when it has none (most messages). */
  const filesOf = (senderAci: string, id: string): { attachments?: AttachmentView[] } => {
    const list = files.forMessage(senderAci, id);
    if (list.length === 0) return {};
    return {
      attachments: list.map((a) => ({ index: a.index, fileName: a.fileName, contentType: a.contentType, size: a.size, ...(a.localPath ? { path: a.localPath } : {}) })),
    };
  };
  let lastSentPrune = 0;
  /** Prunes the logs of sent envelopes and actions now and then (30 days), not on every send. */
  const pruneSent = (now: number): void => {
    if (now - lastSentPrune <= 3600_000) return;
    lastSentPrune = now;
    database.run('DELETE FROM sent_envelopes WHERE sent_at < ?', [now - 30 * 24 * 3600_000]);
    database.run('DELETE FROM sent_actions WHERE sent_at < ?', [now - 30 * 24 * 3600_000]);
  };

  const self = (): EngineAccount => {
    const a = store.getAccount();
    if (!a) throw new ClientError('NO_ACCOUNT');
    return a;
  };

  /**
   * The local conversation for a peer named by address (or, when unverified, by ACI), or for a
   * group named `#<group id>` (groups are made by the group store, never here).
   */
  const conversationId = (peer: string, create: boolean): ConversationId | undefined => {
    if (peer.startsWith(GROUP_PREFIX)) {
      const group = /^[0-9a-f]{64}$/.test(peer.slice(1)) ? store.groups.group(peer.slice(1)) : undefined;
      if (!group && create) throw new ClientError('NOT_FOUND', 'no such group');
      return group?.conversationId;
    }
    if (UUID.test(peer)) {
      const existing = messages.conversationByPeer(peer as Aci);
      if (existing || !create) return existing?.id;
      // A sender whose address could not be verified: a conversation without an address.
      const at = now();
      database.run('INSERT INTO contacts (aci, address, updated_at) VALUES (?, NULL, ?) ON CONFLICT (aci) DO NOTHING', [peer, at]);
      const id = toHex(crypto.getRandomValues(new Uint8Array(16)));
      database.run("INSERT INTO conversations (id, kind, peer_aci, created_at, last_activity_at) VALUES (?, 'direct', ?, ?, ?)", [id, peer, at, at]);
      return id as ConversationId;
    }
    const contact = messages.contactByAddress(peer);
    if (!contact) {
      if (create) throw new ClientError('NOT_FOUND', `no contact is known for ${peer}`);
      return undefined;
    }
    const existing = messages.conversationByPeer(contact.aci);
    if (existing || !create) return existing?.id;
    return messages.conversationWith({ aci: contact.aci, address: peer }).id;
  };

  const addressOf = (aci: string): string => {
    const account = store.getAccount();
    if (account && aci === account.aci) return `${account.username}@${account.domain}`;
    // A group member who is no contact is shown under the address the group's changes give it.
    return messages.contact(aci as Aci)?.address ?? store.groups.memberAddress(aci) ?? aci;
  };

  /** While read receipts are off, nobody's read state shows (reciprocal, like Signal). */
  const hideRead = (): boolean => !readPrivacy({ getSetting: (n) => store.settings.get(n), setSetting: (n, v) => store.settings.set(n, v) }).readReceipts;

  const view = (r: MessageRecord | MessageRow, conversation?: string): MessageView => {
    const row = 'conversationId' in r ? undefined : r;
    const rec = 'conversationId' in r ? r : undefined;
    const senderAci = rec ? rec.senderAci : row!.sender_aci;
    const conv = conversation ?? (rec ? peerOfConversation(rec.conversationId) : row!.group_id ? `${GROUP_PREFIX}${row!.group_id}` : (row!.peer_address ?? row!.peer_aci ?? ''));
    const direction = rec ? rec.direction : row!.direction;
    const status = rec ? rec.status : row!.status;
    return {
      id: rec ? rec.id : row!.id,
      conversation: conv,
      direction,
      sender: addressOf(senderAci),
      senderDevice: rec ? rec.senderDevice : row!.sender_device,
      text: rec ? rec.body : row!.body,
      kind: rec ? rec.kind : row!.kind,
      sentAt: rec ? rec.sentAt : row!.sent_at,
      receivedAt: rec ? rec.receivedAt : row!.received_at,
      lamport: rec ? rec.lamport : row!.lamport,
      status: direction === 'in' ? (status === 'read' ? 'read' : 'received') : status === 'read' && hideRead() ? 'delivered' : status,
      ...filesOf(senderAci, rec ? rec.id : row!.id),
      ...acts.viewFields(senderAci, rec ? rec.id : row!.id),
    };
  };

  const peerOfConversation = (id: ConversationId): string => {
    const c = messages.conversation(id);
    return c ? conversationName(c) : id;
  };

  const acts = adaptMessageActions(store, {
    conversationId: (conversation, create) => conversationId(conversation, create),
    conversationName: (id) => peerOfConversation(id),
    addressOf: (aci) => addressOf(aci),
    now,
  });

  const toEngineEntry = (e: ReturnType<typeof outbox.get> & object): OutboxEntry => {
    const sealed = sealedAttempts.get(e.id);
    return {
      id: e.id,
      messageId: e.messageId,
      destinationAci: e.destinationAci,
      content: e.content,
      envelopeMessageId: e.ciphertexts ? fromHex(e.envelopeMessageId) : undefined,
      ciphertexts: e.ciphertexts?.map((c) => ({ deviceId: c.deviceId, registrationId: c.registrationId, type: c.type, content: c.body })),
      attempts: e.attempts,
      nextAttemptAt: e.nextAttemptAt,
      urgent: e.urgent,
      ...(e.ciphertexts && sealed.accessKey ? { accessKey: sealed.accessKey } : {}),
      ...(sealed.identifiedOnly ? { identifiedOnly: true } : {}),
    };
  };

  const allRows = (): MessageRow[] =>
    database.all<MessageRow>(
      `SELECT m.id, m.sender_aci, m.sender_device, m.direction, m.kind, m.body, m.sent_at, m.received_at, m.lamport, m.status,
              c.peer_aci, ct.address AS peer_address, g.id AS group_id
       FROM messages m JOIN conversations c ON c.id = m.conversation_id LEFT JOIN contacts ct ON ct.aci = c.peer_aci
         LEFT JOIN groups g ON g.conversation_id = c.id
       WHERE m.deleted IS NOT 'local' AND (m.expires_at IS NULL OR m.expires_at > ?)
       ORDER BY c.peer_aci, g.id, m.lamport, m.sender_aci, m.id`,
      [now()],
    );

  return {
    ...adaptReceiptPorts(store, {
      conversationId: (peer) => conversationId(peer, false),
      addressOf,
      selfAci: () => self().aci,
    }),
    protocol: store.protocol,
    groups: store.groups,
    deleteSenderKey: (address, distributionId) => store.protocol.state.putSenderKey(address, distributionId, undefined),
    transaction: (fn) => store.transaction(fn),
    close: () => store.close(),
    getAccount: () => store.getAccount(),
    saveAccount: (a) => store.saveAccount({ ...a, aci: a.aci as Aci, deviceId: a.deviceId as DeviceId }),
    sessionDeviceIds: (aci) => store.protocol.state.sessionDeviceIds(aci),
    stageProtocol() {
      const staged = stageProtocolStores(store.protocol);
      return { stores: staged, commit: () => staged.commit(), discard: () => staged.discard() };
    },
    getKeyState() {
      const raw = store.settings.get(KEY_STATE);
      return raw ? (JSON.parse(raw) as KeyState) : undefined;
    },
    saveKeyState: (state) => store.settings.set(KEY_STATE, JSON.stringify(state)),

    rememberContact: (aci, address) => void messages.saveContact({ aci: aci as Aci, address }),
    contactAciByAddress: (address) => messages.contactByAddress(address)?.aci,
    contactAddressByAci: (aci) => messages.contact(aci as Aci)?.address,
    setVerified: (aci, verified) => messages.setVerified(aci as Aci, verified),

    insertMessage(m: EngineMessage) {
      const peer = m.conversation;
      const id = conversationId(peer, true)!;
      const r = messages.addMessage({
        conversationId: id,
        id: m.id as MessageId,
        senderAci: m.senderAci as Aci,
        senderDevice: m.senderDevice as DeviceId,
        direction: m.direction,
        kind: m.kind,
        body: m.body,
        sentAt: m.sentAt,
        receivedAt: m.receivedAt,
        // A peer's clock is believed up to a bound, so nobody can pin their messages to the end.
        lamport: Math.min(m.lamport, messages.maxLamport(id) + 1_000_000),
        status: m.status === 'received' ? 'delivered' : m.status,
      });
      return r.added ? 'inserted' : 'duplicate';
    },
    setOutgoingStatus(id, status) {
      messages.setStatus({ senderAci: self().aci as Aci, id: id as MessageId }, status === 'received' ? 'delivered' : status);
    },
    maxLamport(conversation) {
      const id = conversationId(conversation, false);
      return id ? messages.maxLamport(id) : 0;
    },
    outgoingMessage(id) {
      const r = messages.message({ senderAci: self().aci as Aci, id: id as MessageId });
      if (!r) return undefined;
      return {
        id: r.id,
        conversation: peerOfConversation(r.conversationId),
        senderAci: r.senderAci,
        senderDevice: r.senderDevice,
        direction: r.direction,
        body: r.body,
        kind: r.kind,
        sentAt: r.sentAt,
        receivedAt: r.receivedAt,
        lamport: r.lamport,
        status: r.status,
      };
    },

    outboxAdd({ messageId, destinationAci, content, nowMs, urgent, ...given }) {
      const known = messages.contact(destinationAci as Aci)?.address;
      const destinationAddress = destinationAci === self().aci ? addressOf(destinationAci) : (known ?? given.destinationAddress ?? addressOf(destinationAci));
      if (UUID.test(destinationAddress)) throw new ClientError('NOT_FOUND', 'the destination has no known address');
      const conv = destinationAci === self().aci ? undefined : conversationId(destinationAddress, false);
      return outbox.enqueue({
        destinationAci: destinationAci as Aci,
        destinationAddress,
        ...(conv ? { conversationId: conv } : {}),
        ...(messageId ? { messageId: messageId as MessageId } : {}),
        content,
        timestamp: nowMs,
        notBefore: nowMs,
        ...(urgent === false ? { urgent: false } : {}),
      }).id;
    },
    outboxDue: (nowMs, limit) => outbox.due({ now: nowMs, limit }).map(toEngineEntry),
    outboxHas: (id) => outbox.get(id) !== undefined,
    outboxContent: (id) => outbox.get(id)?.content,
    outboxSaveAttempt(id, envelopeMessageId, ciphertexts: readonly DeviceCiphertext[], accessKey?: Uint8Array) {
      database.transaction(() => {
        outbox.saveEncrypted(
          id,
          ciphertexts.map((c) => ({ deviceId: c.deviceId, registrationId: c.registrationId, type: c.type, body: c.content })),
          { envelopeMessageId: toHex(envelopeMessageId) as MessageId },
        );
        sealedAttempts.setAccessKey(id, accessKey);
      });
    },
    outboxClearAttempt(id) {
      database.transaction(() => {
        outbox.clearEncrypted(id);
        sealedAttempts.setAccessKey(id, undefined);
      });
    },
    outboxSetIdentifiedOnly: (id) => sealedAttempts.setIdentifiedOnly(id),

    accountProfileKey: () => profileKey.get(),
    setAccountProfileKey: (key, version) => profileKey.set(key, version),
    markAccessKeyUploaded: (accessKey) => profileKey.markUploaded(accessKey),
    contactKey: (aci) => (UUID.test(aci) ? contactKeys.get(aci as Aci) : undefined),
    saveContactKey: (aci, key, accessKey, now) => contactKeys.save(aci as Aci, key, accessKey, now),
    dropContactKeyIfStale: (aci, accessKey) => contactKeys.dropIfStale(aci as Aci, accessKey),
    trustRoot: (domain) => certificates.trustRoot(domain),
    trustRoots: () => certificates.trustRoots(),
    pinTrustRoot: (domain, key, now) => certificates.pinTrustRoot(domain, key, now),
    trustRootRefused: (domain) => certificates.refused(domain),
    noteUnreadableSealed(nowMs) {
      const before = unreadableSealed();
      store.settings.set(UNREADABLE_SEALED, JSON.stringify({ count: before.count + 1, lastAt: nowMs }));
    },
    unreadableSealed: () => unreadableSealed(),
    cachedCertificate: () => certificates.certificate(),
    saveCertificate: (certificate, expiresAt) => certificates.saveCertificate(certificate, expiresAt),
    outboxReschedule: (id, at) => outbox.fail(id, { error: 'RETRY', retryAt: at }),
    outboxDone: (id) => void outbox.complete(id),
    outboxFail: (id) => outbox.fail(id, { error: 'FAILED' }),
    outboxWake: (aci, now) => void outbox.wake(aci as Aci, now),

    saveAttachments: (senderAci, messageId, list) => files.add(senderAci as Aci, messageId as MessageId, list),
    attachmentsOf: (senderAci, messageId) => files.forMessage(senderAci, messageId),
    attachmentsByMessageId: (messageId) => files.byMessageId(messageId),
    setAttachmentPath: (senderAci, messageId, index, path) => void files.setLocalPath(senderAci, messageId, index, path),

    markEnvelopeSeen: (aci, deviceId, envelopeId, now) =>
      store.seenEnvelopes.markSeen({ aci: aci as Aci, deviceId: deviceId as DeviceId }, envelopeId as MessageId, now),
    recordSentEnvelope(envelopeId, messageId, destinationAci, now) {
      database.run('INSERT OR REPLACE INTO sent_envelopes (envelope_message_id, message_id, destination_aci, sent_at) VALUES (?, ?, ?, ?)', [
        envelopeId,
        messageId,
        destinationAci,
        now,
      ]);
      pruneSent(now);
    },
    recordSentAction(envelopeId, destinationAci, content, now) {
      database.run('INSERT OR REPLACE INTO sent_actions (envelope_message_id, destination_aci, content, sent_at) VALUES (?, ?, ?, ?)', [
        envelopeId,
        destinationAci,
        new Uint8Array(content),
        now,
      ]);
      pruneSent(now);
    },
    sentAction(envelopeId) {
      const r = database.get<{ destination_aci: string; content: Uint8Array }>('SELECT destination_aci, content FROM sent_actions WHERE envelope_message_id = ?', [envelopeId]);
      return r && { destinationAci: r.destination_aci, content: new Uint8Array(r.content) };
    },
    sentEnvelope(envelopeId) {
      const r = database.get<{ message_id: string; destination_aci: string }>('SELECT message_id, destination_aci FROM sent_envelopes WHERE envelope_message_id = ?', [envelopeId]);
      return r && { messageId: r.message_id, destinationAci: r.destination_aci };
    },

    *archiveLines(): Iterable<ArchiveLine> {
      for (const c of messages.contacts()) {
        if (!c.address) continue;
        const key = contactKeys.get(c.aci);
        yield { type: 'contact', aci: c.aci, address: c.address, ...(key ? { profileKey: toBase64Url(key.profileKey) } : {}) };
      }
      // Groups before their messages, so the new device knows their conversations.
      for (const g of store.groups.groups()) {
        if (g.revision > 0) yield { type: 'group', id: g.id, changes: store.groups.changes(g.id).map((c) => c.body) };
      }
      for (const row of allRows()) {
        const v = view(row);
        const actions = acts.archivedActions(row.sender_aci, row.id);
        yield {
          type: 'message',
          id: row.id,
          conversation: v.conversation,
          senderAci: row.sender_aci,
          senderDevice: row.sender_device,
          direction: row.direction,
          body: row.body,
          kind: row.kind,
          sentAt: row.sent_at,
          receivedAt: row.received_at,
          lamport: row.lamport,
          status: row.status,
          ...(actions ? { actions } : {}),
        };
      }
      yield* acts.actionArchiveLines();
    },
    saveHistoryChunk(transferId, index, total, data, now) {
      database.run('INSERT OR IGNORE INTO history_chunks (transfer_id, chunk_index, total, data, received_at) VALUES (?, ?, ?, ?, ?)', [
        transferId,
        index,
        total,
        new Uint8Array(data),
        now,
      ]);
    },
    completeHistoryTransfers: () =>
      database
        .all<{ transfer_id: string }>('SELECT transfer_id FROM history_chunks GROUP BY transfer_id HAVING count(*) = max(total)')
        .map((r) => r.transfer_id),
    historyProgress(transferId) {
      const r = database.get<{ n: number; total: number }>('SELECT count(*) AS n, max(total) AS total FROM history_chunks WHERE transfer_id = ?', [transferId]);
      return { received: r?.n ?? 0, total: r?.total ?? 0 };
    },
    takeHistoryChunks(transferId) {
      const rows = database.all<{ data: Uint8Array }>('SELECT data FROM history_chunks WHERE transfer_id = ? ORDER BY chunk_index', [transferId]);
      database.run('DELETE FROM history_chunks WHERE transfer_id = ?', [transferId]);
      return rows.map((r) => r.data);
    },
    importArchiveLine(line) {
      try {
        if (line.type === 'contact') {
          if (line.aci === self().aci) return;
          messages.saveContact({ aci: line.aci as Aci, address: line.address });
          // From one's own device, so as good as from the contact; a malformed key is skipped, and
          // one the contact sent this device directly (newer) is kept.
          const key = typeof line.profileKey === 'string' ? fromBase64Url(line.profileKey) : undefined;
          if (key?.length === 32 && !contactKeys.get(line.aci as Aci)) contactKeys.save(line.aci as Aci, key, deriveAccessKey(key), now());
          return;
        }
        if (line.type === 'timer' || line.type === 'blocked') {
          acts.importActionLine(line);
          return;
        }
        if (line.type !== 'message') return;
        const id = conversationId(line.conversation, true)!;
        const added = messages.addMessage({
          conversationId: id,
          id: line.id as MessageId,
          senderAci: line.senderAci as Aci,
          senderDevice: line.senderDevice as DeviceId,
          direction: line.senderAci === self().aci ? 'out' : 'in',
          kind: line.kind,
          body: line.body,
          sentAt: line.sentAt,
          receivedAt: line.receivedAt,
          lamport: line.lamport,
          status: line.status === 'received' ? 'delivered' : line.status,
        });
        if (added.added && line.actions) acts.restoreActions(line.senderAci, line.id, line.actions);
        // A 1:1 message of this account has one recipient, the peer; later receipts find it.
        const c = messages.conversation(id);
        const peer = c?.kind === 'direct' ? c.peerAci : undefined;
        if (added.added && line.senderAci === self().aci && line.kind === 'text' && peer && peer !== self().aci) {
          store.receipts.addRecipients(self().aci as Aci, line.id as MessageId, [peer], line.status === 'received' ? 'delivered' : line.status);
        }
      } catch (err) {
        // A line that does not validate is skipped; the rest of the archive still imports.
        if (!(err instanceof ClientError)) throw err;
      }
    },

    conversations(): ConversationView[] {
      return messages.conversations().map((c) => ({
        address: conversationName(c),
        ...(c.lastMessage ? { lastMessage: view(c.lastMessage, conversationName(c)) } : {}),
        unread: c.unreadCount,
        identityChanged: c.kind === 'direct' ? (messages.contact(c.peerAci)?.identityChanged ?? false) : false,
        ...(c.kind === 'group' ? { group: { id: c.groupId, title: c.title } } : {}),
      }));
    },
    history(conversation, options) {
      const id = conversationId(conversation, false);
      if (!id) return [];
      return messages.history(id, { limit: options.limit, ...(options.before ? { before: options.before as MessageId } : {}) }).map((r) => view(r, conversation));
    },
    search(query, options): SearchHit[] {
      return messages.search(query, { limit: options.limit }).flatMap((hit) => {
        const r = messages.message({ senderAci: hit.senderAci, id: hit.messageId });
        return r ? [{ message: view(r), snippet: hit.snippet }] : [];
      });
    },
    contacts(): ContactView[] {
      const me = store.getAccount()?.aci;
      return messages
        .contacts()
        .filter((c) => c.aci !== me)
        .map((c) => ({
          address: c.address ?? c.aci,
          aci: c.aci,
          identityChanged: c.identityChanged,
          verified: c.verified,
          sealedSender: contactKeys.get(c.aci) !== undefined,
        }));
    },
    messageView(id, senderAci) {
      const r = messages.message({ senderAci: senderAci as Aci, id: id as MessageId });
      return r && view(r);
    },
    ...acts,
    *allMessages() {
      for (const row of allRows()) yield view(row);
    },
  };

}
