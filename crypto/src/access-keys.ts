// SPDX-License-Identifier: AGPL-3.0-only
/**
 * Profile keys, access keys and presence tokens (DESIGN §5, §8). A profile key is an account's
 * 32-byte secret that it hands to its contacts inside the encryption. The access key derived
 * from it is what the account registers with its relay, and what a sender presents to deliver
 * a sealed (unidentified) message: knowing it proves the sender got the profile key from the
 * recipient. For a multi-recipient send the sender presents the XOR of the recipients' access
 * keys, which the relay computes from its own records and compares.
 *
 * Derivation (docs/protocol.md, "Access keys"): accessKey = HMAC-SHA256(key = profileKey,
 * message = ASCII "Parley access key v1")[0..16). The fixed label separates this use of the
 * profile key from every other one.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { CryptoError } from './errors.js';
import { randomBytes } from './random.js';

/** Length of a profile key in bytes. */
export const PROFILE_KEY_BYTES = 32;
/** Length of an access key in bytes. */
export const ACCESS_KEY_BYTES = 16;
/** Length of a presence token in bytes. */
export const PRESENCE_TOKEN_BYTES = 32;
/** The HMAC message of {@link deriveAccessKey}; changing it changes every access key. */
export const ACCESS_KEY_LABEL = 'Parley access key v1';

const LABEL_BYTES = new TextEncoder().encode(ACCESS_KEY_LABEL);

function checkBytes(bytes: unknown, length: number, what: string): asserts bytes is Uint8Array {
  if (!(bytes instanceof Uint8Array) || bytes.length !== length) throw new CryptoError('INVALID_ARGUMENT', `${what} must be ${length} bytes`);
}

/** A fresh random 32-byte profile key. */
export function generateProfileKey(): Uint8Array {
  return randomBytes(PROFILE_KEY_BYTES);
}

/** The 16-byte access key of a 32-byte profile key (see the module comment); INVALID_ARGUMENT for another length. */
export function deriveAccessKey(profileKey: Uint8Array): Uint8Array {
  checkBytes(profileKey, PROFILE_KEY_BYTES, 'a profile key');
  const mac = createHmac('sha256', profileKey).update(LABEL_BYTES).digest();
  return new Uint8Array(mac.subarray(0, ACCESS_KEY_BYTES));
}

/**
 * The XOR of one or more 16-byte access keys: what a multi-recipient sender presents for all its
 * recipients at once. INVALID_ARGUMENT for an empty list or a key of another length.
 */
export function combineAccessKeys(keys: readonly Uint8Array[]): Uint8Array {
  if (!Array.isArray(keys) || keys.length === 0) throw new CryptoError('INVALID_ARGUMENT', 'at least one access key is needed');
  const out = new Uint8Array(ACCESS_KEY_BYTES);
  for (const key of keys) {
    checkBytes(key, ACCESS_KEY_BYTES, 'an access key');
    for (let i = 0; i < ACCESS_KEY_BYTES; i++) out[i]! ^= key[i]!;
  }
  return out;
}

/**
 * Constant-time comparison of an expected and a presented access key; false (never a throw)
 * when either is not 16 bytes, so the caller can answer every failure alike.
 */
export function accessKeysEqual(expected: Uint8Array, presented: Uint8Array): boolean {
  if (!(expected instanceof Uint8Array) || !(presented instanceof Uint8Array)) return false;
  if (expected.length !== ACCESS_KEY_BYTES || presented.length !== ACCESS_KEY_BYTES) return false;
  return timingSafeEqual(expected, presented);
}

/** A fresh random 32-byte presence token (handed to contacts; lets its holder see the account's presence). */
export function generatePresenceToken(): Uint8Array {
  return randomBytes(PRESENCE_TOKEN_BYTES);
}
