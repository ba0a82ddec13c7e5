// SPDX-License-Identifier: AGPL-3.0-only
/**
 * Edits, deletes for everyone, reactions, replies and disappearing-message timers (DESIGN §6):
 * the rules of each, for what this device sends and for what arrives. Every action is a
 * `DataMessage` of its own (with its own id and Lamport clock) that names its target by
 * (author ACI, message id); it goes to the peer and, as a sent transcript, to one's own other
 * devices, and every device applies it with the same rules:
 *
 * - an edit or a delete for everyone is only its author's: the target is looked up under the
 *   sender's own ACI, so nobody can reach someone else's message; it must come within 24 h of
 *   the target's timestamp, by the action's own timestamp and by the relay's commit time of the
 *   envelope that carried it (a sender cannot backdate its way around the window);
 * - concurrent versions converge: an edit shows when it ranks highest by (lamport, edit id)
 *   among the versions of its target; a reaction replaces the reactor's earlier one when it
 *   ranks higher by (lamport, action id); a timer change wins when it ranks highest by
 *   (lamport, sender ACI, message id) in the conversation;
 * - an action whose target is not here yet (out of order, or a resend still on its way) waits
 *   and is applied when the target arrives (see MessageActionsStore: kept 30 days, capped);
 * - an action naming a message of another conversation, a deleted message or a notice is
 *   ignored.
 *
 * The same code applies actions this device makes (after the sender-side checks), those of
 * its other devices (transcripts) and those of peers, so every device ends up in one state. A
 * group conversation is one more conversation name: nothing here is 1:1-specific.
 */
import { join } from 'node:path';
import type { MessageInitShape } from '@bufbuild/protobuf';
import { randomMessageId } from '@parley/crypto';
import { aciFromBytes, aciToBytes, fromHex, toHex, type Aci, type DataMessage, type DataMessageSchema } from '@parley/protocol';
import { ClientError } from '../errors.js';
import type { MessageActionEvent } from './client-api.js';
import type { EngineAttachment } from './attachment-pointers.js';
import type { EngineMessage, EngineStore } from './engine-store.js';

/** How long after a message its author may edit it, ms (checked by sender and receivers). */
export const EDIT_WINDOW_MS = 24 * 3600_000;
/** How long after a message its author may delete it for everyone, ms (as Signal). */
export const DELETE_WINDOW_MS = 24 * 3600_000;
/** Longest excerpt a reply carries of the message it quotes, characters (code points). */
export const MAX_QUOTE_CHARS = 200;
/** Largest reaction, bytes of UTF-8. */
export const MAX_EMOJI_BYTES = 32;
/** Longest disappearing-message timer, seconds (4 weeks). */
export const MAX_EXPIRE_TIMER_SECONDS = 28 * 24 * 3600;
/** Longest text of a message or an edit, UTF-16 code units (as `send`). */
export const MAX_TEXT_CHARS = 64 * 1024;

/** A DataMessage as a plain object (the init shape without the message class). */
export type DataMessageInit = Exclude<MessageInitShape<typeof DataMessageSchema>, DataMessage>;

/** Bytes of a hex id that is known to be well formed (stored ids are checked on the way in). */
function idBytes(hex: string): Uint8Array {
  const b = fromHex(hex);
  if (!b) throw new ClientError('INVALID_ARGUMENT', 'a message id is 32 hex characters');
  return b;
}

/** A stored message as an action's target. */
export interface ActionTarget {
  readonly id: string;
  readonly senderAci: string;
  readonly senderDevice: number;
  readonly direction: 'in' | 'out';
  /** The engine's conversation name. */
  readonly conversation: string;
  readonly kind: EngineMessage['kind'];
  readonly body: string;
  readonly sentAt: number;
  readonly lamport: number;
  readonly deleted?: 'everyone' | 'local';
}

/** A message the expiry sweep deleted. */
export interface ExpiredMessage {
  readonly id: string;
  readonly senderAci: string;
  readonly senderDevice: number;
  readonly conversation: string;
  readonly attachments: readonly EngineAttachment[];
}

/** The store operations of this module (implemented over MessageActionsStore). */
export interface MessageActionsPort {
  /** The message (senderAci, id), or undefined. */
  actionTarget(senderAci: string, id: string): ActionTarget | undefined;
  /** The messages of `conversation` with id `id` (normally one). */
  targetsById(conversation: string, id: string): ActionTarget[];
  applyEdit(senderAci: string, id: string, version: { id: string; lamport: number; sentAt: number; body: string }): 'shown' | 'kept' | 'duplicate' | 'missing' | 'deleted' | 'limit';
  /** Highest lamport among the versions of a message (0 when never edited). */
  versionLamport(senderAci: string, id: string): number;
  /** Turns a message into a tombstone; the files it had, or undefined when there was nothing to do. */
  tombstone(senderAci: string, id: string, scope: 'everyone' | 'local', at: number): EngineAttachment[] | undefined;
  setReaction(targetAuthor: string, targetId: string, change: { reactorAci: string; emoji: string | undefined; lamport: number; actionId: string; sentAt: number }): boolean;
  reactionLamport(targetAuthor: string, targetId: string, reactorAci: string): number;
  saveQuote(senderAci: string, id: string, quote: { targetAuthor: string; targetId: string; text: string }): void;
  /** The timer a stored message carried and the message it quotes (for a resend). */
  messageExtras(senderAci: string, id: string): { expireTimer?: number; quote?: { targetAuthor: string; targetId: string; text: string } };
  setExpiry(senderAci: string, id: string, timerSeconds: number, expiresAt: number): void;
  /** The conversation's timer in seconds (0: off). */
  conversationTimer(conversation: string): number;
  applyTimer(conversation: string, change: { seconds: number; lamport: number; senderAci: string; messageId: string }): boolean;
  markTimerUpdate(senderAci: string, id: string, seconds: number): void;
  addPending(action: { targetAuthor: string; targetId: string; senderAci: string; actionId: string; kind: ActionRecord['kind']; payload: string }): void;
  takePending(targetAuthor: string, targetId: string): Array<{ readonly payload: string }>;
  deleteExpired(nowMs: number, limit: number): ExpiredMessage[];
  nextExpiry(): number | undefined;
  purgeSearchIndex(): void;
  /** `user@domain` of an account (one's own too), or the ACI when none is known. */
  addressOf(aci: string): string;
}

/** Where an outgoing action goes: a conversation and the account that receives it. */
export interface ActionRoute {
  readonly conversation: string;
  readonly destinationAci: string;
}

/** An edit, delete or reaction in the form that is applied (and kept while it waits for its target). */
export interface ActionRecord {
  readonly kind: 'edit' | 'delete' | 'reaction';
  readonly actionId: string;
  readonly senderAci: string;
  readonly senderDevice: number;
  readonly conversation: string;
  readonly lamport: number;
  /** The action's own timestamp (sender clock), ms. */
  readonly timestamp: number;
  /** The relay's commit time of the envelope that carried it; absent for this device's own actions. */
  readonly serverTimestamp?: number;
  readonly targetAuthor: string;
  readonly targetId: string;
  /** Edits: the new text. */
  readonly text?: string;
  /** Reactions: the emoji (absent when `remove`). */
  readonly emoji?: string;
  readonly remove?: boolean;
}

/** What applying actions did, to announce and clean up after the transaction commits. */
export interface ActionOutcome {
  /** Events to emit. */
  readonly events: MessageActionEvent[];
  /** Messages stored (timer-change entries), to announce as message events. */
  readonly stored: EngineMessage[];
  /** Files to remove from disk (downloaded copies and partial downloads of deleted messages). */
  readonly files: string[];
  /**
   * Text left the search index: merge it (MessageActionsPort.purgeSearchIndex, see
   * {@link finishOutcome}) before the transaction commits, once however many messages went.
   */
  purge: boolean;
}

/** An empty outcome to collect into. */
export function newOutcome(): ActionOutcome {
  return { events: [], stored: [], files: [], purge: false };
}

/** The last step of a transaction that applied actions: merges the search index when text left it. */
export function finishOutcome(store: Pick<MessageActionsPort, 'purgeSearchIndex'>, out: ActionOutcome): void {
  if (!out.purge) return;
  store.purgeSearchIndex();
  out.purge = false;
}

/** Where an incoming DataMessage came from. */
export interface IncomingContext {
  readonly senderAci: string;
  readonly senderDevice: number;
  /** The conversation it belongs to (for a transcript: the destination's). */
  readonly conversation: string;
  /** The relay's commit time of its envelope, ms. */
  readonly serverTimestamp: number;
  readonly now: number;
}

/** The deps of {@link MessageActions}. */
export interface MessageActionsDeps {
  readonly store: MessageActionsPort & Pick<EngineStore, 'insertMessage' | 'maxLamport'>;
  readonly self: { readonly aci: string; readonly deviceId: number };
  /** Where partial downloads are kept (`<blob id>.part`). */
  readonly partialDir: string;
  /** Queues `data` for `route` (and a transcript for one's other devices); `messageId` when it is a stored message. Called inside a transaction. */
  readonly queue: (route: ActionRoute, data: DataMessageInit, messageId?: string) => void;
  readonly senderAddress: () => string;
}

/** Whether `emoji` is one reaction: a single emoji (one grapheme), at most {@link MAX_EMOJI_BYTES} bytes. */
export function isValidReaction(emoji: string): boolean {
  if (typeof emoji !== 'string' || emoji.length === 0) return false;
  if (Buffer.byteLength(emoji, 'utf8') > MAX_EMOJI_BYTES) return false;
  const graphemes = [...new Intl.Segmenter(undefined, { granularity: 'grapheme' }).segment(emoji)];
  if (graphemes.length !== 1) return false;
  // eslint-disable-next-line no-control-regex -- control characters are what is refused
  if (/[\u0000-\u001f\u007f-\u009f\s]/u.test(emoji)) return false;
  return /\p{Extended_Pictographic}|\p{Regional_Indicator}|\u20e3/u.test(emoji);
}

/** The first {@link MAX_QUOTE_CHARS} characters (code points) of `text`. */
export function quoteExcerpt(text: string): string {
  const points = [...text];
  return points.length <= MAX_QUOTE_CHARS ? text : points.slice(0, MAX_QUOTE_CHARS).join('');
}

/** `5 minutes`, `1 week`, `off`: a timer in words, for the conversation's notice. */
export function describeTimer(seconds: number): string {
  if (seconds === 0) return 'off';
  const units: Array<[number, string]> = [
    [7 * 86_400, 'week'],
    [86_400, 'day'],
    [3600, 'hour'],
    [60, 'minute'],
    [1, 'second'],
  ];
  for (const [size, name] of units) {
    if (seconds % size === 0) {
      const n = seconds / size;
      return `${n} ${name}${n === 1 ? '' : 's'}`;
    }
  }
  return `${seconds} seconds`;
}

/** Whether a DataMessage is an action (edit, delete, reaction, timer change) rather than a message to show. */
export function isAction(d: DataMessage): boolean {
  return d.deleteTargetMessageId.length > 0 || d.editTargetMessageId.length > 0 || d.reaction !== undefined || d.expireTimerUpdate;
}

function safeNumber(v: bigint): number | undefined {
  return v >= 0n && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : undefined;
}

/** See the module comment. */
export class MessageActions {
  private readonly deps: MessageActionsDeps;

  constructor(deps: MessageActionsDeps) {
    this.deps = deps;
  }

  // ── incoming ────────────────────────────────────────────────────────────────────────────────

  /**
   * Applies an action DataMessage (see {@link isAction}) from a peer or from one's own other
   * device, inside the receive transaction. Malformed actions are ignored, never shown.
   */
  applyIncoming(ctx: IncomingContext, d: DataMessage, out: ActionOutcome): void {
    const lamport = safeNumber(d.lamport);
    const timestamp = safeNumber(d.timestamp);
    if (lamport === undefined || timestamp === undefined || d.messageId.length !== 16) return;
    const base = {
      actionId: toHex(d.messageId),
      senderAci: ctx.senderAci,
      senderDevice: ctx.senderDevice,
      conversation: ctx.conversation,
      lamport,
      timestamp,
      serverTimestamp: ctx.serverTimestamp,
    };
    if (d.deleteTargetMessageId.length > 0) {
      if (d.deleteTargetMessageId.length !== 16) return;
      this.apply({ ...base, kind: 'delete', targetAuthor: ctx.senderAci, targetId: toHex(d.deleteTargetMessageId) }, out, true);
    } else if (d.editTargetMessageId.length > 0) {
      if (d.editTargetMessageId.length !== 16 || d.text.length > MAX_TEXT_CHARS) return;
      this.apply({ ...base, kind: 'edit', targetAuthor: ctx.senderAci, targetId: toHex(d.editTargetMessageId), text: d.text }, out, true);
    } else if (d.reaction) {
      const r = d.reaction;
      if (r.targetMessageId.length !== 16 || r.targetAuthor.length !== 16) return;
      if (!r.remove && !isValidReaction(r.emoji)) return;
      this.apply(
        {
          ...base,
          kind: 'reaction',
          targetAuthor: aciFromBytes(r.targetAuthor),
          targetId: toHex(r.targetMessageId),
          ...(r.remove ? { remove: true } : { emoji: r.emoji }),
        },
        out,
        true,
      );
    } else if (d.expireTimerUpdate) {
      if (d.expireTimerSeconds > MAX_EXPIRE_TIMER_SECONDS) return;
      this.applyTimerChange({ ...base, seconds: d.expireTimerSeconds, status: ctx.senderAci === this.deps.self.aci ? 'sent' : 'received', now: ctx.now }, out);
    }
  }

  /** Whether a message carrying `d`'s timer has disappeared already by `now` (it is not stored then). */
  expiredOnArrival(d: DataMessage, now: number): boolean {
    const timestamp = safeNumber(d.timestamp);
    return d.expireTimerSeconds > 0 && timestamp !== undefined && timestamp + d.expireTimerSeconds * 1000 <= now;
  }

  /**
   * After a message was stored (received, a transcript, or sent here): sets its expiry from the
   * timer it carries, records the message it quotes, and applies the actions that waited for it.
   */
  afterStored(
    m: EngineMessage,
    d: { readonly expireTimerSeconds: number; readonly quote?: { readonly targetMessageId?: Uint8Array; readonly targetAuthor?: Uint8Array; readonly text?: string } | undefined },
    out: ActionOutcome,
  ): void {
    const { store } = this.deps;
    if (d.expireTimerSeconds > 0 && m.kind === 'text') store.setExpiry(m.senderAci, m.id, d.expireTimerSeconds, m.sentAt + d.expireTimerSeconds * 1000);
    const q = d.quote;
    if (q && q.targetMessageId?.length === 16 && q.targetAuthor?.length === 16) {
      store.saveQuote(m.senderAci, m.id, { targetAuthor: aciFromBytes(q.targetAuthor), targetId: toHex(q.targetMessageId), text: quoteExcerpt(q.text ?? '') });
    }
    for (const p of store.takePending(m.senderAci, m.id)) {
      let record: ActionRecord;
      try {
        record = JSON.parse(p.payload) as ActionRecord;
      } catch {
        continue;
      }
      this.apply(record, out, false);
    }
  }

  /** The fields a resend of a stored message carries besides its text and files. */
  resendFields(m: EngineMessage): Pick<DataMessageInit, 'expireTimerSeconds' | 'quote'> {
    const extras = this.deps.store.messageExtras(m.senderAci, m.id);
    return {
      ...(extras.expireTimer ? { expireTimerSeconds: extras.expireTimer } : {}),
      ...(extras.quote
        ? { quote: { targetMessageId: idBytes(extras.quote.targetId), targetAuthor: aciToBytes(extras.quote.targetAuthor as Aci), text: extras.quote.text } }
        : {}),
    };
  }

  // ── outgoing ────────────────────────────────────────────────────────────────────────────────

  /**
   * Edits one of this account's messages in `route`'s conversation. Call inside a transaction.
   * @throws ClientError NOT_FOUND (no such message), NOT_AUTHOR (someone else's), TOO_LATE
   *   (past {@link EDIT_WINDOW_MS}), INVALID_ARGUMENT (empty or too long a text, a notice or
   *   a deleted message).
   */
  edit(route: ActionRoute, messageId: string, text: string, now: number, out: ActionOutcome): ActionTarget {
    if (text.length > MAX_TEXT_CHARS) throw new ClientError('INVALID_ARGUMENT', 'the text is over 64 KiB');
    const target = this.ownTarget(route.conversation, messageId, 'edit');
    if (now - target.sentAt > EDIT_WINDOW_MS) throw new ClientError('TOO_LATE', 'a message can be edited for 24 hours after it was sent');
    if (text.trim().length === 0) throw new ClientError('INVALID_ARGUMENT', 'the new text is empty (to remove the message, delete it)');
    const { store } = this.deps;
    const id = randomMessageId();
    const lamport = Math.max(store.maxLamport(route.conversation), store.versionLamport(target.senderAci, target.id)) + 1;
    const data: DataMessageInit = { ...this.header(route, id, lamport, now), text, editTargetMessageId: idBytes(target.id) };
    this.apply({ kind: 'edit', actionId: toHex(id), senderAci: this.deps.self.aci, senderDevice: this.deps.self.deviceId, conversation: route.conversation, lamport, timestamp: now, targetAuthor: target.senderAci, targetId: target.id, text }, out, false);
    this.deps.queue(route, data);
    return target;
  }

  /**
   * Deletes one of this account's messages for everyone (`local`: any message, on this device
   * only; nothing is sent). Call inside a transaction.
   * @throws ClientError NOT_FOUND, NOT_AUTHOR, TOO_LATE (past {@link DELETE_WINDOW_MS}).
   */
  delete(route: ActionRoute, messageId: string, scope: 'everyone' | 'local', now: number, out: ActionOutcome): ActionTarget {
    const { store } = this.deps;
    if (scope === 'local') {
      const [target] = store.targetsById(route.conversation, messageId).filter((t) => t.deleted !== 'local');
      if (!target) throw new ClientError('NOT_FOUND', `no message ${messageId} in the conversation with ${route.conversation}`);
      this.tombstone(target, 'local', now, out);
      return target;
    }
    const target = this.ownTarget(route.conversation, messageId, 'delete');
    if (now - target.sentAt > DELETE_WINDOW_MS) throw new ClientError('TOO_LATE', 'a message can be deleted for everyone for 24 hours after it was sent; delete it here with --local');
    const id = randomMessageId();
    const lamport = store.maxLamport(route.conversation) + 1;
    this.apply({ kind: 'delete', actionId: toHex(id), senderAci: this.deps.self.aci, senderDevice: this.deps.self.deviceId, conversation: route.conversation, lamport, timestamp: now, targetAuthor: target.senderAci, targetId: target.id }, out, false);
    this.deps.queue(route, { ...this.header(route, id, lamport, now), deleteTargetMessageId: idBytes(target.id) });
    return target;
  }

  /**
   * Reacts to a message of `route`'s conversation with `emoji`, or takes this account's reaction
   * back (`remove`). Call inside a transaction.
   * @throws ClientError NOT_FOUND, INVALID_ARGUMENT (not one emoji of at most 32 bytes; a notice or deleted message).
   */
  react(route: ActionRoute, messageId: string, emoji: string, remove: boolean, now: number, out: ActionOutcome): ActionTarget {
    if (!remove && !isValidReaction(emoji)) throw new ClientError('INVALID_ARGUMENT', `a reaction is one emoji of at most ${MAX_EMOJI_BYTES} bytes`);
    const target = this.anyTarget(route.conversation, messageId);
    const { store } = this.deps;
    const id = randomMessageId();
    const lamport = Math.max(store.maxLamport(route.conversation), store.reactionLamport(target.senderAci, target.id, this.deps.self.aci)) + 1;
    this.apply(
      {
        kind: 'reaction',
        actionId: toHex(id),
        senderAci: this.deps.self.aci,
        senderDevice: this.deps.self.deviceId,
        conversation: route.conversation,
        lamport,
        timestamp: now,
        targetAuthor: target.senderAci,
        targetId: target.id,
        ...(remove ? { remove: true } : { emoji }),
      },
      out,
      false,
    );
    this.deps.queue(route, {
      ...this.header(route, id, lamport, now),
      reaction: { targetMessageId: idBytes(target.id), targetAuthor: aciToBytes(target.senderAci as Aci), emoji: remove ? '' : emoji, remove },
    });
    return target;
  }

  /**
   * The quote for a reply to message `messageId` of `conversation`.
   * @throws ClientError NOT_FOUND, INVALID_ARGUMENT (a notice or a deleted message).
   */
  quoteFor(conversation: string, messageId: string): NonNullable<DataMessageInit['quote']> {
    const target = this.anyTarget(conversation, messageId);
    return { targetMessageId: idBytes(target.id), targetAuthor: aciToBytes(target.senderAci as Aci), text: quoteExcerpt(target.body) };
  }

  /**
   * Sets the disappearing-message timer of `route`'s conversation to `seconds` (0: off): a
   * notice in the conversation, and the change for the peer and one's other devices. Call
   * inside a transaction; returns the notice.
   * @throws ClientError INVALID_ARGUMENT past {@link MAX_EXPIRE_TIMER_SECONDS}.
   */
  setTimer(route: ActionRoute, seconds: number, now: number, out: ActionOutcome): EngineMessage {
    if (!Number.isSafeInteger(seconds) || seconds < 0 || seconds > MAX_EXPIRE_TIMER_SECONDS) {
      throw new ClientError('INVALID_ARGUMENT', `the timer is 0 (off) to ${MAX_EXPIRE_TIMER_SECONDS} seconds (4 weeks)`);
    }
    const id = randomMessageId();
    const lamport = this.deps.store.maxLamport(route.conversation) + 1;
    const entry = this.applyTimerChange(
      { actionId: toHex(id), senderAci: this.deps.self.aci, senderDevice: this.deps.self.deviceId, conversation: route.conversation, lamport, timestamp: now, seconds, status: 'pending', now },
      out,
    )!;
    this.deps.queue(route, { ...this.header(route, id, lamport, now), expireTimerSeconds: seconds, expireTimerUpdate: true }, entry.id);
    return entry;
  }

  /** The timer a message sent now in `conversation` carries, seconds (0: none). */
  timerOf(conversation: string): number {
    return this.deps.store.conversationTimer(conversation);
  }

  /** Files to remove from disk for a message that is gone: partial downloads, and downloaded copies (never the file this device sent from). */
  filesOf(m: { readonly senderAci: string; readonly senderDevice: number }, attachments: readonly EngineAttachment[]): string[] {
    const ownSource = m.senderAci === this.deps.self.aci && m.senderDevice === this.deps.self.deviceId;
    const out: string[] = [];
    for (const a of attachments) {
      out.push(join(this.deps.partialDir, `${a.blobId}.part`));
      if (a.localPath && !ownSource) out.push(a.localPath);
    }
    return out;
  }

  // ── internals ───────────────────────────────────────────────────────────────────────────────

  private header(route: ActionRoute, id: Uint8Array, lamport: number, now: number): DataMessageInit {
    return {
      messageId: id,
      lamport: BigInt(lamport),
      timestamp: BigInt(now),
      senderAddress: this.deps.senderAddress(),
      expireTimerSeconds: this.timerOf(route.conversation),
    };
  }

  /** One of this account's messages in `conversation` (edit, delete for everyone). */
  private ownTarget(conversation: string, messageId: string, what: 'edit' | 'delete'): ActionTarget {
    const all = this.deps.store.targetsById(conversation, messageId);
    const mine = all.find((t) => t.senderAci === this.deps.self.aci);
    if (!mine) {
      if (all.length > 0) throw new ClientError('NOT_AUTHOR', `only the author of a message can ${what} it${what === 'delete' ? ' for everyone (delete it here with --local)' : ''}`);
      throw new ClientError('NOT_FOUND', `no message ${messageId} in the conversation with ${conversation}`);
    }
    this.checkShown(mine);
    return mine;
  }

  /** Any shown message of `conversation` (reactions, replies). */
  private anyTarget(conversation: string, messageId: string): ActionTarget {
    const all = this.deps.store.targetsById(conversation, messageId).filter((t) => t.deleted !== 'local');
    if (all.length === 0) throw new ClientError('NOT_FOUND', `no message ${messageId} in the conversation with ${conversation}`);
    // Two senders with one id: only a misbehaving peer reuses an id; prefer one's own message.
    const target = all.find((t) => t.senderAci === this.deps.self.aci) ?? all[0]!;
    this.checkShown(target);
    return target;
  }

  private checkShown(t: ActionTarget): void {
    if (t.deleted !== undefined) throw new ClientError('INVALID_ARGUMENT', 'that message was deleted');
    if (t.kind !== 'text') throw new ClientError('INVALID_ARGUMENT', 'that entry is a notice, not a message');
  }

  /** Applies an action to its target, or keeps it for later when `mayWait` and the target is not here. */
  private apply(r: ActionRecord, out: ActionOutcome, mayWait: boolean): void {
    const { store } = this.deps;
    const target = store.actionTarget(r.targetAuthor, r.targetId);
    if (!target) {
      if (mayWait) {
        store.addPending({ targetAuthor: r.targetAuthor, targetId: r.targetId, senderAci: r.senderAci, actionId: r.actionId, kind: r.kind, payload: JSON.stringify(r) });
      }
      return;
    }
    // An action across conversations (a reaction sent in one chat to a message of another) is void.
    if (target.conversation !== r.conversation || target.kind !== 'text' || target.deleted === 'everyone') return;
    switch (r.kind) {
      case 'edit': {
        if (!this.withinWindow(r, target, EDIT_WINDOW_MS) || target.deleted) return;
        const result = store.applyEdit(target.senderAci, target.id, { id: r.actionId, lamport: r.lamport, sentAt: r.timestamp, body: r.text ?? '' });
        if (result === 'shown') {
          out.events.push({ type: 'edit', conversation: target.conversation, messageId: target.id, author: store.addressOf(target.senderAci), text: r.text ?? '', editedAt: r.timestamp });
        }
        return;
      }
      case 'delete': {
        if (!this.withinWindow(r, target, DELETE_WINDOW_MS)) return;
        this.tombstone(target, 'everyone', r.timestamp, out);
        return;
      }
      case 'reaction': {
        if (target.deleted) return;
        const changed = store.setReaction(target.senderAci, target.id, {
          reactorAci: r.senderAci,
          emoji: r.remove ? undefined : r.emoji,
          lamport: r.lamport,
          actionId: r.actionId,
          sentAt: r.timestamp,
        });
        if (changed) {
          out.events.push({
            type: 'reaction',
            conversation: target.conversation,
            messageId: target.id,
            author: store.addressOf(target.senderAci),
            reactor: store.addressOf(r.senderAci),
            ...(r.remove ? {} : { emoji: r.emoji! }),
            removed: r.remove === true,
          });
        }
        return;
      }
    }
  }

  private tombstone(target: ActionTarget, scope: 'everyone' | 'local', at: number, out: ActionOutcome): void {
    const { store } = this.deps;
    const files = store.tombstone(target.senderAci, target.id, scope, at);
    if (!files) return;
    out.purge = true;
    out.files.push(...this.filesOf(target, files));
    out.events.push({ type: 'delete', conversation: target.conversation, messageId: target.id, author: store.addressOf(target.senderAci), scope });
  }

  /** The action came within `windowMs` of its target, by its own clock and by the relay's. */
  private withinWindow(r: ActionRecord, target: ActionTarget, windowMs: number): boolean {
    if (r.timestamp - target.sentAt > windowMs) return false;
    return r.serverTimestamp === undefined || r.serverTimestamp === 0 || r.serverTimestamp - target.sentAt <= windowMs;
  }

  /** Stores a timer-change notice and ranks the change against the conversation's timer. */
  private applyTimerChange(
    c: {
      actionId: string;
      senderAci: string;
      senderDevice: number;
      conversation: string;
      lamport: number;
      timestamp: number;
      seconds: number;
      status: EngineMessage['status'];
      now: number;
    },
    out: ActionOutcome,
  ): EngineMessage | undefined {
    const { store } = this.deps;
    const by = store.addressOf(c.senderAci);
    const m: EngineMessage = {
      id: c.actionId,
      conversation: c.conversation,
      senderAci: c.senderAci,
      senderDevice: c.senderDevice,
      direction: c.senderAci === this.deps.self.aci ? 'out' : 'in',
      body: c.seconds === 0 ? `${by} turned disappearing messages off` : `${by} set disappearing messages to ${describeTimer(c.seconds)}`,
      kind: 'system',
      sentAt: c.timestamp,
      receivedAt: c.now,
      lamport: c.lamport,
      status: c.status,
    };
    if (store.insertMessage(m) !== 'inserted') return undefined; // a redelivery: applied already
    store.markTimerUpdate(m.senderAci, m.id, c.seconds);
    out.stored.push(m);
    if (store.applyTimer(c.conversation, { seconds: c.seconds, lamport: c.lamport, senderAci: c.senderAci, messageId: c.actionId })) {
      out.events.push({ type: 'expire', conversation: c.conversation, seconds: c.seconds, by });
    }
    return m;
  }
}
