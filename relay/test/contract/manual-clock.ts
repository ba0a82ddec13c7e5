// SPDX-License-Identifier: AGPL-3.0-only
/** A clock that moves only when a test moves it. */
import type { Clock } from '../../src/clock.js';

/** See the module comment. */
export class ManualClock implements Clock {
  private ms: number;

  /** @param startMs the initial time, milliseconds since the epoch. */
  constructor(startMs: number) {
    this.ms = startMs;
  }

  now(): number {
    return this.ms;
  }

  /** Moves the clock forward by `ms` milliseconds. */
  advance(ms: number): void {
    this.ms += ms;
  }

  /** Sets the clock to `ms` milliseconds since the epoch. */
  set(ms: number): void {
    this.ms = ms;
  }
}
