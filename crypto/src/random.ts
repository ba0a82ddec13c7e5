// SPDX-License-Identifier: AGPL-3.0-only
/** Randomness from the operating system's CSPRNG (node:crypto). */
import { randomFillSync, randomInt } from 'node:crypto';
import { LIMITS } from '@parley/protocol';

/** `n` random bytes in a fresh, unshared buffer (never a slice of Node's Buffer pool). */
export function randomBytes(n: number): Uint8Array<ArrayBuffer> {
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError('byte count must be a non-negative integer');
  return randomFillSync(new Uint8Array(n));
}

/** A fresh 16-byte message id (DESIGN §5: chosen by the sender, used by the relay to dedup). */
export function randomMessageId(): Uint8Array<ArrayBuffer> {
  return randomBytes(LIMITS.messageIdBytes);
}

/** A uniformly random integer in `min..max` inclusive. */
export function randomIntInclusive(min: number, max: number): number {
  return randomInt(min, max + 1);
}
