// SPDX-License-Identifier: AGPL-3.0-only
/**
 * Typing indicators (DESIGN §6, §8). They are encrypted messages sent online-only (`online: true`:
 * the relay hands them to connected devices and never queues them), so nothing of them outlives
 * the moment. A sender sends STARTED at most once per {@link TYPING_THROTTLE_MS} per conversation;
 * a receiver takes a STARTED as lasting {@link TYPING_EXPIRY_MS} unless another STARTED renews it,
 * and reports the end itself (`expired`) when no STOPPED came.
 */
import { TypingMessage_Action } from '@parley/protocol';
import type { TypingEvent } from './client-api.js';
import { encodeContent } from './content-codec.js';
import type { SettingsPort } from './privacy-settings.js';

/** Least time between two STARTED indicators to one conversation, ms. */
export const TYPING_THROTTLE_MS = 3_000;
/** How long a received STARTED lasts without another, ms. */
export const TYPING_EXPIRY_MS = 15_000;

/** What a typing indicator says. */
export type TypingAction = TypingEvent['action'];

/** The content of a typing indicator. */
export function typingContent(action: TypingAction, nowMs: number, groupId?: Uint8Array): Uint8Array {
  return encodeContent({
    body: {
      case: 'typing',
      value: {
        action: action === 'started' ? TypingMessage_Action.STARTED : TypingMessage_Action.STOPPED,
        timestamp: BigInt(Math.max(0, Math.floor(nowMs))),
        ...(groupId ? { groupId } : {}),
      },
    },
  });
}

/** The action of a received indicator; undefined for an action this version does not know. */
export function typingActionOf(action: TypingMessage_Action): TypingAction | undefined {
  if (action === TypingMessage_Action.STARTED) return 'started';
  if (action === TypingMessage_Action.STOPPED) return 'stopped';
  return undefined;
}

/** The settings entry holding when each conversation's last STARTED went out (JSON, ms by conversation). */
const LAST_STARTED_KEY = 'typing.lastStarted';

/** A settings port kept in memory, for a throttle that need not outlive its process. */
function memorySettings(): SettingsPort {
  const values = new Map<string, string>();
  return { getSetting: (name) => values.get(name), setSetting: (name, value) => void values.set(name, value) };
}

/**
 * Decides which outgoing STARTED indicators go out: at most one per conversation per
 * {@link TYPING_THROTTLE_MS}. The times are kept in the store's settings, so the limit holds
 * across processes too (each `parley typing` is one); only the last interval's entries are kept.
 */
export class TypingThrottle {
  private readonly now: () => number;
  private readonly settings: SettingsPort;
  private readonly intervalMs: number;

  /**
   * @param settings where the times are kept; default in memory.
   * @param intervalMs least time between two STARTED to one conversation, ms; default {@link TYPING_THROTTLE_MS}.
   */
  constructor(now: () => number, settings: SettingsPort = memorySettings(), intervalMs = TYPING_THROTTLE_MS) {
    this.now = now;
    this.settings = settings;
    this.intervalMs = intervalMs;
  }

  /** Whether `action` to `conversation` may go out now; a STARTED that may is counted. STOPPED always may. */
  allow(conversation: string, action: TypingAction): boolean {
    if (action === 'stopped') return true;
    const now = this.now();
    const recent = this.recent(now);
    if (recent.has(conversation)) return false;
    recent.set(conversation, now);
    this.settings.setSetting(LAST_STARTED_KEY, JSON.stringify(Object.fromEntries(recent)));
    return true;
  }

  /** The STARTED times of the last interval by conversation; a time ahead of the clock (it was set back) or unreadable counts as none. */
  private recent(now: number): Map<string, number> {
    const recent = new Map<string, number>();
    const raw = this.settings.getSetting(LAST_STARTED_KEY);
    if (raw === undefined) return recent;
    try {
      const parsed: unknown = JSON.parse(raw);
      if (typeof parsed !== 'object' || parsed === null) return recent;
      for (const [conversation, at] of Object.entries(parsed)) {
        if (typeof at === 'number' && at <= now && now - at < this.intervalMs) recent.set(conversation, at);
      }
    } catch {
      // A damaged entry only loses the throttle for one interval.
    }
    return recent;
  }
}

/** Timers, injected so tests move time instead of waiting. */
export interface TypingScheduler {
  now(): number;
  setTimer(fn: () => void, ms: number): unknown;
  clearTimer(handle: unknown): void;
}

/** Node's timers; they do not keep a process alive. */
export const NODE_TYPING_SCHEDULER: TypingScheduler = Object.freeze({
  now: () => Date.now(),
  setTimer: (fn: () => void, ms: number) => setTimeout(fn, ms).unref(),
  clearTimer: (handle: unknown) => clearTimeout(handle as NodeJS.Timeout),
});

/**
 * Who is typing where, from received indicators: announces each STARTED and STOPPED, and a
 * STOPPED with `expired` when a STARTED was not renewed in time.
 */
export class TypingTracker {
  private readonly active = new Map<string, unknown>();
  private readonly scheduler: TypingScheduler;
  private readonly emit: (e: TypingEvent) => void;
  private readonly expiryMs: number;

  constructor(emit: (e: TypingEvent) => void, scheduler: TypingScheduler = NODE_TYPING_SCHEDULER, expiryMs = TYPING_EXPIRY_MS) {
    this.emit = emit;
    this.scheduler = scheduler;
    this.expiryMs = expiryMs;
  }

  /** Handles one received indicator. */
  received(e: Omit<TypingEvent, 'at' | 'expired'>): void {
    const key = `${e.from}\u0000${e.conversation}\u0000${e.groupId ?? ''}`;
    const timer = this.active.get(key);
    if (timer !== undefined) this.scheduler.clearTimer(timer);
    this.active.delete(key);
    if (e.action === 'started') {
      this.active.set(
        key,
        this.scheduler.setTimer(() => {
          this.active.delete(key);
          this.emit({ ...e, action: 'stopped', expired: true, at: this.scheduler.now() });
        }, this.expiryMs),
      );
    } else if (timer === undefined) {
      // A STOPPED for nobody typing (after the expiry, or a repeat): nothing to announce.
      return;
    }
    this.emit({ ...e, at: this.scheduler.now() });
  }

  /** How many (sender, conversation) pairs are typing now. */
  typingNow(): number {
    return this.active.size;
  }

  /** Forgets everyone (the client closes); no expiry is announced. */
  clear(): void {
    for (const t of this.active.values()) this.scheduler.clearTimer(t);
    this.active.clear();
  }
}
