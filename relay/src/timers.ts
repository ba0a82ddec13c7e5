// SPDX-License-Identifier: AGPL-3.0-only
/**
 * Timers, injected (CONVENTIONS 10) where a test must control when something fires: the push
 * wake-up scheduler's coalescing window and retry backoff. Tests move a manual implementation
 * instead of sleeping.
 */

/** A scheduled call; what `setTimeout` returned, for `clearTimeout`. */
export type TimerHandle = unknown;

/** The two calls the scheduler needs. */
export interface Timers {
  /** Calls `fn` once after `ms` milliseconds. */
  setTimeout(fn: () => void, ms: number): TimerHandle;
  /** Cancels a call that has not run yet; a handle that ran or was cleared is ignored. */
  clearTimeout(handle: TimerHandle): void;
}

/** Node's timers, unref'd: a pending wake-up alone does not keep the process alive. */
export const systemTimers: Timers = {
  setTimeout(fn, ms) {
    const t = setTimeout(fn, ms);
    t.unref();
    return t;
  },
  clearTimeout(handle) {
    clearTimeout(handle as NodeJS.Timeout);
  },
};
