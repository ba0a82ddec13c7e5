// SPDX-License-Identifier: AGPL-3.0-only
/**
 * @internal Parsing of certificates and keys into libsignal types, kept apart from the modules
 * the package entry re-exports so that no libsignal type reaches a public declaration.
 */
import { PrivateKey, PublicKey, SenderCertificate } from '@signalapp/libsignal-client';
import { LIMITS } from '@parley/protocol';
import { CryptoError } from './errors.js';
import { isValidEcPublicKey, owned } from './key-verification.js';
import type { SenderCertificateInfo } from './sender-certificates.js';

/** True for an unsigned 32-bit integer. */
export function isU32(n: number): boolean {
  return Number.isInteger(n) && n >= 0 && n <= 0xffffffff;
}

/** Parses a 32-byte private key; INVALID_KEY otherwise. */
export function privateKey(bytes: Uint8Array, what: string): PrivateKey {
  if (!(bytes instanceof Uint8Array) || bytes.length !== 32) throw new CryptoError('INVALID_KEY', `${what} must be a 32-byte private key`);
  try {
    return PrivateKey.deserialize(owned(bytes));
  } catch {
    throw new CryptoError('INVALID_KEY', `${what} is not a private key`);
  }
}

/** Parses a 33-byte public key; INVALID_KEY otherwise. */
export function publicKey(bytes: unknown, what: string): PublicKey {
  if (!(bytes instanceof Uint8Array) || !isValidEcPublicKey(bytes)) throw new CryptoError('INVALID_KEY', `${what} must be a 33-byte public key`);
  return PublicKey.deserialize(owned(bytes));
}

/** Constant-time equality of two byte strings (the length is not secret). */
export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}

/** @internal Parses a sender certificate; INVALID_CERTIFICATE on anything else. */
export function parseSenderCertificate(bytes: unknown): SenderCertificate {
  if (!(bytes instanceof Uint8Array)) throw new CryptoError('INVALID_CERTIFICATE', 'a sender certificate must be bytes');
  try {
    return SenderCertificate.deserialize(owned(bytes));
  } catch {
    throw new CryptoError('INVALID_CERTIFICATE', 'not a sender certificate');
  }
}

/** @internal The fields of a parsed certificate, checked to be a well-formed device and key. */
export function senderCertificateInfo(certificate: SenderCertificate): SenderCertificateInfo {
  let info: SenderCertificateInfo;
  try {
    info = {
      senderAci: certificate.senderUuid(),
      senderDeviceId: certificate.senderDeviceId(),
      senderIdentityKey: certificate.key().serialize(),
      expiresAt: certificate.expiration(),
      serverKeyId: certificate.serverCertificate().keyId(),
    };
  } catch {
    throw new CryptoError('INVALID_CERTIFICATE', 'not a sender certificate');
  }
  const deviceOk = Number.isInteger(info.senderDeviceId) && info.senderDeviceId >= 1 && info.senderDeviceId <= LIMITS.maxDeviceId;
  if (!deviceOk || !/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(info.senderAci)) {
    throw new CryptoError('INVALID_CERTIFICATE', 'the sender certificate does not name an ACI and a device id 1..127');
  }
  return info;
}

/** @internal Parses trust roots; INVALID_KEY when one is not a public key, INVALID_ARGUMENT for none. */
export function parseTrustRoots(trustRoots: readonly Uint8Array[]): PublicKey[] {
  if (!Array.isArray(trustRoots) || trustRoots.length === 0) throw new CryptoError('INVALID_ARGUMENT', 'at least one trust root is needed');
  return trustRoots.map((root) => publicKey(root, 'a trust root'));
}

