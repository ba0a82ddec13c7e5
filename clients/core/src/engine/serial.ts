// SPDX-License-Identifier: AGPL-3.0-only
/**
 * Runs async tasks one at a time, in call order. The send and receive pipelines share one: both
 * advance the same ratchets, and two interleaved operations on one session would lose a step.
 */
export class Serial {
  private tail: Promise<unknown> = Promise.resolve();

  /** Runs `fn` after everything queued before it. */
  run<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.tail.then(fn, fn);
    this.tail = next.catch(() => undefined);
    return next;
  }
}
