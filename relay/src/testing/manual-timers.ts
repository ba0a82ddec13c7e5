// SPDX-License-Identifier: AGPL-3.0-only
/** Timers that fire only when a test moves time ({@link ManualTimers.advance}). */
import type { TimerHandle, Timers } from '../timers.js';

interface Scheduled {
  readonly id: number;
  readonly at: number;
  readonly fn: () => void;
}

/** See the module comment. */
export class ManualTimers implements Timers {
  private now = 0;
  private nextId = 1;
  private readonly scheduled = new Map<number, Scheduled>();

  setTimeout(fn: () => void, ms: number): TimerHandle {
    const id = this.nextId++;
    this.scheduled.set(id, { id, at: this.now + Math.max(0, ms), fn });
    return id;
  }

  clearTimeout(handle: TimerHandle): void {
    this.scheduled.delete(handle as number);
  }

  /** Calls that are scheduled and have not run. */
  get pending(): number {
    return this.scheduled.size;
  }

  /** Delays of the scheduled calls from now, soonest first (to check backoff). */
  delays(): number[] {
    return [...this.scheduled.values()].map((s) => s.at - this.now).sort((a, b) => a - b);
  }

  /**
   * Moves time forward by `ms`, running every call that falls due, in time order (calls
   * scheduled by a call run too when they fall within the step).
   */
  advance(ms: number): void {
    const end = this.now + ms;
    for (;;) {
      let next: Scheduled | undefined;
      for (const s of this.scheduled.values()) if (s.at <= end && (!next || s.at < next.at || (s.at === next.at && s.id < next.id))) next = s;
      if (!next) break;
      this.scheduled.delete(next.id);
      this.now = next.at;
      next.fn();
    }
    this.now = end;
  }
}
