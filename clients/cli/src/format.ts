// SPDX-License-Identifier: AGPL-3.0-only
/**
 * Human-readable lines for the views. Everything that came from a peer (message text,
 * snippets) passes through {@link sanitize}, so a message cannot move the cursor, recolour the
 * terminal or forge lines of output.
 */
import type {
  AccountInfo,
  BlockedView,
  DownloadResult,
  MessageActionEvent,
  ContactView,
  ConversationView,
  DeviceView,
  GroupView,
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
} from './engine-contract.js';

const pad2 = (n: number): string => String(n).padStart(2, '0');

/** `2026-11-22 10:31` in local time. */
export function formatTime(ms: number): string {
  const d = new Date(ms);
  if (Number.isNaN(d.getTime())) return '????-??-?? ??:??';
  return `${d.getFullYear()}-${pad2(d.getMonth() + 1)}-${pad2(d.getDate())} ${pad2(d.getHours())}:${pad2(d.getMinutes())}`;
}

/**
 * Removes terminal control characters (escape sequences, carriage returns, bells) and bidi
 * overrides (which can make a text read differently from what it is), and indents
 * continuation lines so that a multi-line text stays visibly one message.
 */
export function sanitize(text: string, indent = '  '): string {
  // eslint-disable-next-line no-control-regex -- the point is to remove control characters
  const clean = text.replace(/\r\n?/g, '\n').replace(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g, '');
  return clean.replace(/\n/g, `\n${indent}`);
}

/** `[2026-11-22 10:31] alice@localhost: hello`, with a marker for unusual kinds and states. */
export function formatMessage(m: MessageView): string {
  const when = `[${formatTime(m.sentAt)}]`;
  const text = sanitize(m.text);
  switch (m.kind) {
    case 'decryption-error':
      return `${when} ${m.sender}: (a message from this sender could not be decrypted) ${text}`.trimEnd();
    case 'identity-change':
    case 'system':
      return `${when} * ${text}`;
    default: {
      if (m.deleted) return `${when} ${m.sender}: (This message was deleted)`;
      // What became of one's own message: pending, failed, delivered or read (plain `sent` unmarked).
      const marked = m.status === 'pending' || m.status === 'failed' || (m.direction === 'out' && (m.status === 'delivered' || m.status === 'read'));
      const state = marked ? ` (${m.status})` : '';
      const files = (m.attachments ?? []).map((a) => `[file ${a.index}: ${sanitize(a.fileName)}, ${formatBytes(a.size)}]`);
      const quote = m.quote ? [`(replying to ${m.quote.author}: "${sanitize(shorten(m.quote.text, 40))}")`] : [];
      const body = [...quote, text, ...files].filter((p) => p.length > 0).join(' ');
      const edited = m.editedAt !== undefined ? ' (edited)' : '';
      const reactions = m.reactions && m.reactions.length > 0 ? `  [${m.reactions.map((r) => `${sanitize(r.emoji)} ${r.reactor}`).join(', ')}]` : '';
      const disappears = m.expiresAt !== undefined ? ` (disappears ${formatTime(m.expiresAt)})` : '';
      return `${when} ${m.sender}: ${body}${edited}${state}${disappears}${reactions}`;
    }
  }
}

function shorten(text: string, max: number): string {
  const points = [...text.replace(/\s+/g, ' ')];
  return points.length <= max ? points.join('') : `${points.slice(0, max - 1).join('')}…`;
}

/** `30 seconds`, `5 minutes`, `1 week`, `off`. */
export function formatTimer(seconds: number): string {
  if (seconds === 0) return 'off';
  for (const [size, name] of [
    [604_800, 'week'],
    [86_400, 'day'],
    [3600, 'hour'],
    [60, 'minute'],
  ] as const) {
    if (seconds % size === 0) return `${seconds / size} ${name}${seconds === size ? '' : 's'}`;
  }
  return `${seconds} second${seconds === 1 ? '' : 's'}`;
}

/** The versions of an edited message, oldest first: `[time] text`, the shown one marked. */
export function formatVersions(m: MessageView): string[] {
  const versions = m.edits && m.edits.length > 0 ? m.edits : [{ id: m.id, text: m.text, sentAt: m.sentAt }];
  return versions.map((v, i) => `[${formatTime(v.sentAt)}] ${sanitize(v.text)}${i === versions.length - 1 ? '  (shown)' : ''}`);
}

/** A human line for an edit, delete, reaction, timer change, expiry or block. */
export function formatActionEvent(e: MessageActionEvent): string {
  switch (e.type) {
    case 'edit':
      return `* ${e.author} edited message ${e.messageId}: ${sanitize(e.text)}`;
    case 'delete':
      return e.scope === 'everyone' ? `* ${e.author} deleted message ${e.messageId}` : `* message ${e.messageId} was deleted on this device`;
    case 'reaction':
      return e.removed
        ? `* ${e.reactor} took back their reaction to message ${e.messageId}`
        : `* ${e.reactor} reacted ${sanitize(e.emoji ?? '')} to message ${e.messageId}`;
    case 'expire':
      return e.seconds === 0 ? `* ${e.by} turned disappearing messages off in ${e.conversation}` : `* ${e.by} set disappearing messages in ${e.conversation} to ${formatTimer(e.seconds)}`;
    case 'expired':
      return `* ${e.messageIds.length} message${e.messageIds.length === 1 ? '' : 's'} disappeared from ${e.conversation}`;
    case 'block':
      return `* ${e.address} was ${e.blocked ? 'blocked' : 'unblocked'}`;
  }
}

/** `bob@localhost  blocked 2026-11-22 10:31`. */
export function formatBlocked(b: BlockedView): string {
  return `${b.address}  blocked ${formatTime(b.blockedAt)}`;
}

/** `bob@localhost  2 unread  [time] bob@localhost: hello` and a warning when the key changed. */
export function formatConversation(c: ConversationView): string {
  const parts = [c.group ? formatGroupName(c.group.id, c.group.title) : c.address];
  if (c.unread > 0) parts.push(`${c.unread} unread`);
  if (c.identityChanged) parts.push('SAFETY NUMBER CHANGED');
  if (c.lastMessage) parts.push(formatMessage(c.lastMessage));
  return parts.join('  ');
}

/** `[time] bob@localhost: the [hit] in context`; one's own messages name the conversation. */
export function formatSearchHit(h: SearchHit): string {
  const m = h.message;
  const where = m.direction === 'out' ? `  (to ${m.conversation})` : '';
  return `[${formatTime(m.sentAt)}] ${m.sender}: ${sanitize(h.snippet)}${where}`;
}

/** `#3f2a0d4e climbing`: a group by the first 8 hex digits of its id and its title (`#3f2a0d4e` without one). */
export function formatGroupName(id: string, title?: string): string {
  return title === undefined || title.length === 0 ? `#${id.slice(0, 8)}` : `#${id.slice(0, 8)} ${sanitize(title)}`;
}

/** Members shown on one line of `group list`. */
const LIST_MEMBERS = 5;

/** `#3f2a0d4e climbing  3 members  (admin)`: one line of `group list`. */
export function formatGroupLine(g: GroupView): string {
  const names = g.members.slice(0, LIST_MEMBERS).map((m) => m.address);
  const more = g.members.length > LIST_MEMBERS ? `, +${g.members.length - LIST_MEMBERS}` : '';
  const role = !g.member ? '  (not a member)' : g.admin ? '  (admin)' : '';
  return `${formatGroupName(g.id, g.title)}  ${g.members.length} member${g.members.length === 1 ? '' : 's'}: ${names.join(', ')}${more}${role}`;
}

/** The lines of `group info` and of the group commands that change a group. */
export function formatGroup(g: GroupView): string[] {
  const role = !g.member ? 'you are not a member' : g.admin ? 'you are an admin' : 'you are a member';
  return [
    formatGroupName(g.id, g.title),
    `id       ${g.id}`,
    `members  ${g.members.length} (${role})`,
    ...g.members.map((m) => `  ${m.address}${m.admin ? '  admin' : ''}`),
  ];
}

/** `device 2  registration 1234  added 2026-11-22 10:31  (this device)`. */
export function formatDevice(d: DeviceView): string {
  return `device ${d.deviceId}  registration ${d.registrationId}  added ${formatTime(d.createdAt)}${d.current ? '  (this device)' : ''}`;
}

/** `bob@localhost  verified` and the like. */
export function formatContact(c: ContactView): string {
  const state = c.identityChanged ? 'SAFETY NUMBER CHANGED' : c.verified ? 'verified' : 'not verified';
  return `${c.address}  ${state}${c.sealedSender ? '  sealed' : ''}`;
}

/** The safety number in three rows of four groups, as people read it aloud. */
export function formatSafetyNumber(s: SafetyNumberView): string[] {
  const groups = s.safetyNumber.replace(/\s+/g, '').match(/.{1,5}/g) ?? [];
  const rows: string[] = [];
  for (let i = 0; i < groups.length; i += 4) rows.push(`  ${groups.slice(i, i + 4).join(' ')}`);
  const state = s.identityChanged ? 'CHANGED, not accepted' : s.verified ? 'verified' : 'not verified';
  return [`safety number with ${s.address} (${state}):`, ...rows];
}

/** The lines of `whoami`. */
export function formatAccount(a: AccountInfo): string[] {
  const lines = [`address  ${a.address}`, `device   ${a.deviceId}`, `server   ${a.server}`, `aci      ${a.aci}`];
  if (a.sealedSender) {
    const n = a.sealedSender.unreadable;
    lines.push(`sealed   ${sealedSenderState(a.sealedSender)}${n ? `; ${n} sealed message${n === 1 ? '' : 's'} could not be opened (sender unknown)` : ''}`);
  }
  return lines;
}

/** `active`, or `off` with the first reason. */
function sealedSenderState(s: SealedSenderStatus): string {
  if (s.active) return 'active';
  const why = s.problem ?? (!s.trustRootPinned ? 'no trust root pinned yet' : !s.accessKeyUploaded ? 'access key not uploaded yet' : undefined);
  return why ? `off (${why})` : 'off';
}

const TASK_LABELS: Readonly<Record<ProgressEvent['task'], string>> = {
  'history-send': 'sending history',
  'history-receive': 'history',
  export: 'export',
  link: 'link',
  upload: 'upload',
  download: 'download',
};

/** `1.5 MiB`, `512 B`: binary units, one decimal from KiB on. */
export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(1)} ${units[i]}`;
}

/** `history 12/40 chunks`; `upload 1.5/3.0 MiB (50%)` for bytes. */
export function formatProgress(p: ProgressEvent): string {
  const label = TASK_LABELS[p.task] ?? p.task;
  if (p.unit === 'bytes') {
    const pct = p.total > 0 ? Math.floor((p.done / p.total) * 100) : 100;
    return `${label} ${formatBytes(p.done)} of ${formatBytes(p.total)} (${pct}%)`;
  }
  return `${label} ${p.done}/${p.total} ${p.unit}`;
}

/** `saved report.pdf (1.5 MiB, application/pdf) to /home/alice/report.pdf`. */
export function formatDownload(d: DownloadResult): string {
  return `saved ${sanitize(d.fileName)} (${formatBytes(d.size)}, ${d.contentType}) to ${d.path}`;
}

/** `0123456789abcdef…  bob@localhost  read  2026-11-22 10:33`. */
export function formatReceipt(r: ReceiptView): string {
  const id = `${r.messageId.slice(0, 16)}…`;
  return `${id}  ${r.recipient}  ${r.status}  ${formatTime(r.updatedAt)}`;
}

/** The lines of `settings`: one switch per line, `on` or `off`. */
export function formatSettings(s: PrivacySettings): string[] {
  const on = (b: boolean): string => (b ? 'on' : 'off');
  return [`read-receipts  ${on(s.readReceipts)}`, `typing         ${on(s.typingIndicators)}`, `presence       ${on(s.presence)}`];
}

/** `bob@localhost  online`, `bob@localhost  offline (last seen 2026-11-22 10:31)`. */
export function formatPresence(p: PresenceView): string {
  const seen = p.state === 'offline' && p.lastSeen !== undefined ? ` (last seen ${formatTime(p.lastSeen)})` : '';
  return `${p.address}  ${p.state}${seen}`;
}

/** `* bob@localhost read 2 of your messages`, `* bob@localhost received your message`. */
export function formatReceiptEvent(e: ReceiptEvent): string {
  const n = e.messageIds.length;
  const what = n === 1 ? 'your message' : `${n} of your messages`;
  return `* ${e.from} ${e.type === 'read' ? 'read' : 'received'} ${what}`;
}

/**
 * `* bob@localhost is typing…`, `* bob@localhost stopped typing`; in a group
 * `* bob@localhost is typing in #3f2a0d4e climbing…` (`groupTitle` from the group, when known).
 */
export function formatTypingEvent(e: TypingEvent, groupTitle?: string): string {
  const where = e.groupId === undefined ? '' : ` in ${formatGroupName(e.groupId, groupTitle)}`;
  return `* ${e.from} ${e.action === 'started' ? `is typing${where}…` : `stopped typing${where}`}`;
}

/** `* bob@localhost is online`. */
export function formatPresenceEvent(p: PresenceView): string {
  return `* ${formatPresence(p).replace('  ', ' is ')}`;
}
