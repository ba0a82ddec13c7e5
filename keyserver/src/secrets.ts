// SPDX-License-Identifier: AGPL-3.0-only
/**
 * Hashing of bearer secrets (device auth secrets, link tokens, presence tokens). Both are 32 random bytes, so a
 * fast hash is enough: there is nothing to brute-force that a slow hash would protect. Only
 * the hash is ever stored, so a copy of keys.db does not let anyone authenticate.
 */
import { createHash, randomBytes } from 'node:crypto';
import { LIMITS } from '@parley/protocol';

/** Bytes of a link token. */
export const LINK_TOKEN_BYTES = 32;

/** Bytes of a presence token (chosen by the client, handed to its contacts inside the encryption). */
export const PRESENCE_TOKEN_BYTES = LIMITS.presenceTokenBytes;

/** SHA-256 of `secret`. */
export function hashSecret(secret: Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha256').update(secret).digest());
}

/** A fresh random link token. */
export function newLinkToken(): Uint8Array {
  return new Uint8Array(randomBytes(LINK_TOKEN_BYTES));
}
