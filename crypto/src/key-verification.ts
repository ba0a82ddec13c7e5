// SPDX-License-Identifier: AGPL-3.0-only
/**
 * What a server must do with public keys: check they are well formed and that prekey
 * signatures verify against the account identity key. No private key is ever involved.
 */
import { KEMPublicKey, PublicKey } from '@signalapp/libsignal-client';

/** libsignal wants ArrayBuffer-backed arrays; bytes from sockets may sit in a shared pool. */
export function owned(bytes: Uint8Array): Uint8Array<ArrayBuffer> {
  return bytes.buffer instanceof ArrayBuffer ? (bytes as Uint8Array<ArrayBuffer>) : new Uint8Array(bytes);
}

/** True when `bytes` is a serialized Curve25519 public key (33 bytes, type byte 0x05). */
export function isValidEcPublicKey(bytes: Uint8Array): boolean {
  if (bytes.length !== 33) return false;
  try {
    PublicKey.deserialize(owned(bytes));
    return true;
  } catch {
    return false;
  }
}

/** True when `bytes` is a serialized Kyber (ML-KEM) public key libsignal accepts. */
export function isValidKyberPublicKey(bytes: Uint8Array): boolean {
  try {
    KEMPublicKey.deserialize(owned(bytes));
    return true;
  } catch {
    return false;
  }
}

/**
 * Verifies an XEdDSA signature by an identity key over a serialized public key (a signed EC
 * prekey or a Kyber prekey). False for any malformed input, never a throw.
 */
export function verifyPreKeySignature(identityKey: Uint8Array, publicKey: Uint8Array, signature: Uint8Array): boolean {
  if (signature.length !== 64) return false;
  try {
    return PublicKey.deserialize(owned(identityKey)).verify(owned(publicKey), owned(signature));
  } catch {
    return false;
  }
}
