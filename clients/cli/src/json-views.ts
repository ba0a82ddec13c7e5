// SPDX-License-Identifier: AGPL-3.0-only
/**
 * The JSON shapes of `--json` output. Each picks the view type's fields by name, so the output
 * keeps stable field names even if the engine's objects carry more than the contract says.
 */
import type {
  AccountInfo,
  AttachmentView,
  BlockedView,
  MessageActionEvent,
  DownloadResult,
  ContactView,
  ConversationView,
  DeviceView,
  GroupView,
  MarkReadResult,
  MessageView,
  PresenceView,
  PrivacySettings,
  ProgressEvent,
  ReceiptEvent,
  ReceiptView,
  SafetyNumberView,
  SealedSenderStatus,
  SearchHit,
  TypingEvent,
  TypingResult,
} from './engine-contract.js';

/** `whoami`, `register` and the last line of `link`. */
export function accountJson(a: AccountInfo): Record<string, unknown> {
  return {
    aci: a.aci,
    username: a.username,
    address: a.address,
    deviceId: a.deviceId,
    server: a.server,
    ...(a.sealedSender ? { sealedSender: sealedSenderJson(a.sealedSender) } : {}),
  };
}

/** The `sealedSender` object of `whoami`. */
export function sealedSenderJson(s: SealedSenderStatus): Record<string, unknown> {
  return {
    active: s.active,
    trustRootPinned: s.trustRootPinned,
    accessKeyUploaded: s.accessKeyUploaded,
    ...(s.certificateExpiresAt !== undefined ? { certificateExpiresAt: s.certificateExpiresAt } : {}),
    ...(s.problem !== undefined ? { problem: s.problem } : {}),
    ...(s.unreadable !== undefined ? { unreadable: s.unreadable } : {}),
  };
}

/** A message line of `send`, `receive`, `listen` and `history`. */
export function messageJson(m: MessageView): Record<string, unknown> {
  return {
    id: m.id,
    conversation: m.conversation,
    direction: m.direction,
    sender: m.sender,
    senderDevice: m.senderDevice,
    text: m.text,
    kind: m.kind,
    sentAt: m.sentAt,
    receivedAt: m.receivedAt,
    lamport: m.lamport,
    status: m.status,
    ...(m.attachments && m.attachments.length > 0 ? { attachments: m.attachments.map(attachmentJson) } : {}),
    ...(m.deleted ? { deleted: true } : {}),
    ...(m.editedAt !== undefined ? { editedAt: m.editedAt } : {}),
    ...(m.edits && m.edits.length > 0 ? { edits: m.edits.map((e) => ({ id: e.id, text: e.text, sentAt: e.sentAt })) } : {}),
    ...(m.reactions && m.reactions.length > 0 ? { reactions: m.reactions.map((r) => ({ emoji: r.emoji, reactor: r.reactor, sentAt: r.sentAt })) } : {}),
    ...(m.quote ? { quote: { id: m.quote.id, author: m.quote.author, text: m.quote.text, found: m.quote.found } } : {}),
    ...(m.expireTimer !== undefined ? { expireTimer: m.expireTimer } : {}),
    ...(m.expiresAt !== undefined ? { expiresAt: m.expiresAt } : {}),
    ...(m.timerUpdate !== undefined ? { timerUpdate: m.timerUpdate } : {}),
  };
}

/** A line of `listen` and `receive` for an edit, delete, reaction, timer change, expiry or block: `{"event":…}`. */
export function actionEventJson(e: MessageActionEvent): Record<string, unknown> {
  switch (e.type) {
    case 'edit':
      return { event: 'edit', conversation: e.conversation, messageId: e.messageId, author: e.author, text: e.text, editedAt: e.editedAt };
    case 'delete':
      return { event: 'delete', conversation: e.conversation, messageId: e.messageId, author: e.author, scope: e.scope };
    case 'reaction':
      return {
        event: 'reaction',
        conversation: e.conversation,
        messageId: e.messageId,
        author: e.author,
        reactor: e.reactor,
        ...(e.emoji !== undefined ? { emoji: e.emoji } : {}),
        removed: e.removed,
      };
    case 'expire':
      return { event: 'expire', conversation: e.conversation, seconds: e.seconds, by: e.by };
    case 'expired':
      return { event: 'expired', conversation: e.conversation, messageIds: [...e.messageIds] };
    case 'block':
      return { event: 'block', address: e.address, aci: e.aci, blocked: e.blocked };
  }
}

/** A line of `blocked` and the line of `block`. */
export function blockedJson(b: BlockedView): Record<string, unknown> {
  return { address: b.address, aci: b.aci, blockedAt: b.blockedAt };
}

/** One file of a message (`attachments` of a message line). */
export function attachmentJson(a: AttachmentView): Record<string, unknown> {
  return { index: a.index, fileName: a.fileName, contentType: a.contentType, size: a.size, ...(a.path !== undefined ? { path: a.path } : {}) };
}

/** The line of `download`. */
export function downloadJson(d: DownloadResult): Record<string, unknown> {
  return { path: d.path, size: d.size, fileName: d.fileName, contentType: d.contentType };
}

/** A line of `conversations`; `lastMessage` is left out when there is none. */
export function conversationJson(c: ConversationView): Record<string, unknown> {
  return {
    address: c.address,
    ...(c.lastMessage ? { lastMessage: messageJson(c.lastMessage) } : {}),
    unread: c.unread,
    identityChanged: c.identityChanged,
    ...(c.group ? { group: { id: c.group.id, title: c.group.title } } : {}),
  };
}

/** A line of `group list` and the line of every other `group` command. */
export function groupJson(g: GroupView): Record<string, unknown> {
  return {
    id: g.id,
    handle: g.handle,
    title: g.title,
    members: g.members.map((m) => ({ aci: m.aci, address: m.address, admin: m.admin })),
    revision: g.revision,
    member: g.member,
    admin: g.admin,
  };
}

/** A line of `search`. */
export function searchHitJson(h: SearchHit): Record<string, unknown> {
  return { message: messageJson(h.message), snippet: h.snippet };
}

/** A line of `devices`. */
export function deviceJson(d: DeviceView): Record<string, unknown> {
  return { deviceId: d.deviceId, registrationId: d.registrationId, createdAt: d.createdAt, current: d.current };
}

/** A line of `contacts`. */
export function contactJson(c: ContactView): Record<string, unknown> {
  return { address: c.address, aci: c.aci, identityChanged: c.identityChanged, verified: c.verified, ...(c.sealedSender !== undefined ? { sealedSender: c.sealedSender } : {}) };
}

/** The line of `verify`. */
export function safetyNumberJson(s: SafetyNumberView): Record<string, unknown> {
  return { address: s.address, safetyNumber: s.safetyNumber, identityChanged: s.identityChanged, verified: s.verified };
}

/** A progress line on stderr: `{"progress":{…}}`. */
export function progressJson(p: ProgressEvent): Record<string, unknown> {
  return { progress: { task: p.task, done: p.done, total: p.total, unit: p.unit } };
}

/** A line of `receipts`: one recipient of one message. */
export function receiptJson(r: ReceiptView): Record<string, unknown> {
  return {
    messageId: r.messageId,
    conversation: r.conversation,
    recipient: r.recipient,
    status: r.status,
    updatedAt: r.updatedAt,
    ...(r.deliveredAt !== undefined ? { deliveredAt: r.deliveredAt } : {}),
    ...(r.readAt !== undefined ? { readAt: r.readAt } : {}),
  };
}

/** The line of `read` (and of `history --mark-read` on stderr). */
export function markReadJson(r: MarkReadResult): Record<string, unknown> {
  return { conversation: r.conversation, messageIds: [...r.messageIds], receipts: r.receipts };
}

/** The line of `settings`. */
export function settingsJson(s: PrivacySettings): Record<string, unknown> {
  return { readReceipts: s.readReceipts, typingIndicators: s.typingIndicators, presence: s.presence };
}

/** The line of `typing`. */
export function typingResultJson(action: 'started' | 'stopped', r: TypingResult): Record<string, unknown> {
  return { action, sent: r.sent, ...(r.reason !== undefined ? { reason: r.reason } : {}), devices: r.devices };
}

/** A line of `presence`, and (with `event`) a presence event of `listen`. */
export function presenceJson(p: PresenceView): Record<string, unknown> {
  return { address: p.address, aci: p.aci, state: p.state, ...(p.lastSeen !== undefined ? { lastSeen: p.lastSeen } : {}) };
}

/** A receipt event of `listen`: `{"event":"receipt",…}`. */
export function receiptEventJson(e: ReceiptEvent): Record<string, unknown> {
  return { event: 'receipt', type: e.type, messageIds: [...e.messageIds], from: e.from, at: e.at };
}

/** A typing event of `listen`: `{"event":"typing",…}`. */
export function typingEventJson(e: TypingEvent): Record<string, unknown> {
  return {
    event: 'typing',
    action: e.action,
    from: e.from,
    conversation: e.conversation,
    ...(e.expired ? { expired: true } : {}),
    ...(e.groupId !== undefined ? { groupId: e.groupId } : {}),
    at: e.at,
  };
}

/** A presence event of `listen`: `{"event":"presence",…}`. */
export function presenceEventJson(p: PresenceView): Record<string, unknown> {
  return { event: 'presence', ...presenceJson(p) };
}
