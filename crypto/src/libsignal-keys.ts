// SPDX-License-Identifier: AGPL-3.0-only
/** @internal Parsing of libsignal key types, kept out of modules whose declarations are public. */
import { IdentityKeyPair } from '@signalapp/libsignal-client';
import { CryptoError } from './errors.js';
import { owned } from './key-verification.js';

/** Parses a serialized key pair, throwing CryptoError('INVALID_KEY') when it is not one. */
export function deserializeIdentityKeyPair(bytes: Uint8Array): IdentityKeyPair {
  try {
    return IdentityKeyPair.deserialize(owned(bytes));
  } catch {
    throw new CryptoError('INVALID_KEY', 'not a serialized identity key pair');
  }
}
