// SPDX-License-Identifier: AGPL-3.0-only
/** Time, injected (CONVENTIONS 10): token expiry and rate limits read it, tests move it. */

/** A source of the current time. */
export interface Clock {
  /** Milliseconds since the Unix epoch. */
  now(): number;
}

/** The real clock. */
export const systemClock: Clock = Object.freeze({ now: () => Date.now() });
