// SPDX-License-Identifier: AGPL-3.0-only
/**
 * Disappearing messages: deletes every message whose time is up, with everything that belongs
 * to it, from the store and the search index (merged, so no word of it stays in the file), and
 * removes its downloaded files from disk. It runs when the profile is opened, after every batch
 * of received envelopes and on a tick while the client listens; reads never wait for it, as the
 * store hides expired messages by itself. Time comes from the engine's clock, so tests move it.
 */
import type { MessageActionEvent } from './client-api.js';
import type { EngineStore } from './engine-store.js';
import type { ExpiredMessage, MessageActionsPort } from './message-actions.js';

/** How often a listening client looks for expired messages, ms. */
export const SWEEP_TICK_MS = 1000;
/** Messages deleted per statement batch. */
const SWEEP_BATCH = 500;

/** What the sweeper needs. */
export interface ExpirySweeperDeps {
  readonly store: Pick<MessageActionsPort, 'deleteExpired' | 'nextExpiry' | 'purgeSearchIndex'> & Pick<EngineStore, 'transaction'>;
  readonly now: () => number;
  /** The files on disk of a message that is gone (see MessageActions.filesOf). */
  readonly filesOf: (m: ExpiredMessage) => string[];
  /** Removes files, after the deletion is committed. */
  readonly removeFiles: (paths: readonly string[]) => void;
  /** Called with one `expired` event per conversation after the deletion is committed. */
  readonly onExpired: (e: Extract<MessageActionEvent, { type: 'expired' }>) => void;
}

/** See the module comment. */
export class ExpirySweeper {
  private readonly deps: ExpirySweeperDeps;

  constructor(deps: ExpirySweeperDeps) {
    this.deps = deps;
  }

  /** Deletes everything expired by now; returns how many messages went. */
  sweep(): number {
    const { store } = this.deps;
    const now = this.deps.now();
    const next = store.nextExpiry();
    if (next === undefined || next > now) return 0;
    const removed = store.transaction(() => {
      const all: ExpiredMessage[] = [];
      for (;;) {
        const batch = store.deleteExpired(now, SWEEP_BATCH);
        all.push(...batch);
        if (batch.length < SWEEP_BATCH) break;
      }
      if (all.length > 0) store.purgeSearchIndex();
      return all;
    });
    this.deps.removeFiles(removed.flatMap((m) => this.deps.filesOf(m)));
    const byConversation = new Map<string, string[]>();
    for (const m of removed) {
      const ids = byConversation.get(m.conversation) ?? [];
      ids.push(m.id);
      byConversation.set(m.conversation, ids);
    }
    for (const [conversation, messageIds] of byConversation) this.deps.onExpired({ type: 'expired', conversation, messageIds });
    return removed.length;
  }

  /** Sweeps every `tickMs` until the returned function is called (the timer does not keep the process alive). */
  start(tickMs = SWEEP_TICK_MS): () => void {
    const timer = setInterval(() => {
      try {
        this.sweep();
      } catch {
        // The store closed under a tick, or a write failed: the next tick (or open) sweeps again.
      }
    }, tickMs);
    timer.unref();
    return () => clearInterval(timer);
  }
}
