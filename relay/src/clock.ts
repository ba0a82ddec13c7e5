// SPDX-License-Identifier: AGPL-3.0-only
/** Time, injected (CONVENTIONS 10): TTLs, keepalive and expiry read it, tests move it. */
export interface Clock {
  /** Milliseconds since the Unix epoch. */
  now(): number;
}

/** The real clock. */
export const systemClock: Clock = { now: () => Date.now() };
