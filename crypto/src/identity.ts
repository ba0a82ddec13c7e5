// SPDX-License-Identifier: AGPL-3.0-only
/**
 * Account identity and per-device registration ids. The identity key pair belongs to the account
 * and is shared by all its devices (DESIGN §3); each device draws its own registration id.
 */
import { IdentityKeyPair } from '@signalapp/libsignal-client';
import { LIMITS } from '@parley/protocol';
import { CryptoError } from './errors.js';
import { deserializeIdentityKeyPair } from './libsignal-keys.js';
import { randomIntInclusive } from './random.js';

/** What a device holds about its own identity. Secret: `identityKeyPair` holds the private key. */
export interface LocalIdentity {
  /** Serialized libsignal IdentityKeyPair (public and private key). */
  readonly identityKeyPair: Uint8Array;
  /** The 33-byte serialized public identity key (what the key server and peers see). */
  readonly identityKey: Uint8Array;
  /** This device's libsignal registration id, 1..16383. */
  readonly registrationId: number;
}

/** A fresh registration id, uniform in 1..16383 (libsignal uses 14 bits; 0 means "none"). */
export function generateRegistrationId(): number {
  return randomIntInclusive(1, LIMITS.maxRegistrationId);
}

/** Creates a new account identity with a registration id for its first device. */
export function generateIdentity(): LocalIdentity {
  const pair = IdentityKeyPair.generate();
  return {
    identityKeyPair: pair.serialize(),
    identityKey: pair.publicKey.serialize(),
    registrationId: generateRegistrationId(),
  };
}

/**
 * The identity of another device of the same account: the shared key pair (received when the
 * device is linked) with this device's own registration id, fresh unless given.
 */
export function identityFromKeyPair(identityKeyPair: Uint8Array, registrationId: number = generateRegistrationId()): LocalIdentity {
  if (!Number.isInteger(registrationId) || registrationId < 1 || registrationId > LIMITS.maxRegistrationId) {
    throw new CryptoError('INVALID_ARGUMENT', `registration id must be an integer 1..${LIMITS.maxRegistrationId}`);
  }
  const pair = deserializeIdentityKeyPair(identityKeyPair);
  return { identityKeyPair: pair.serialize(), identityKey: pair.publicKey.serialize(), registrationId };
}
