// SPDX-License-Identifier: AGPL-3.0-only
/**
 * Sealed sender certificates (DESIGN §5). A relay operator keeps a trust root key pair offline;
 * its public half is what clients trust. The root signs a server certificate (the relay's
 * signing key and a key id); the relay signs short-lived sender certificates with that key,
 * each binding a device (ACI, device id) to the account's identity key until an expiry time.
 * A recipient of a sealed message learns the sender only from the certificate inside the seal,
 * and believes it because the chain ends at a root it trusts.
 *
 * Everything here is plain bytes: certificates are libsignal's serialized protobufs, keys are
 * serialized Curve25519 keys (33-byte public with type byte 0x05, 32-byte private).
 */
import { PrivateKey, SenderCertificate, ServerCertificate } from '@signalapp/libsignal-client';
import { checkAddress } from './address.js';
import {
  bytesEqual,
  isU32,
  parseSenderCertificate,
  parseTrustRoots,
  privateKey,
  publicKey,
  senderCertificateInfo,
} from './certificate-parsing.js';
import { CryptoError } from './errors.js';
import { owned } from './key-verification.js';

/** The fields of a sender certificate, read without checking any signature. */
export interface SenderCertificateInfo {
  readonly senderAci: string;
  readonly senderDeviceId: number;
  /** 33 bytes. */
  readonly senderIdentityKey: Uint8Array;
  /** Milliseconds since 1970; the certificate is valid up to and including this instant. */
  readonly expiresAt: number;
  /** Key id of the server certificate that signed it. */
  readonly serverKeyId: number;
}

/**
 * A server certificate key id libsignal refuses everywhere (its own revoked test key). Never
 * issued here, so that no relay ends up with certificates every client rejects.
 */
export const REVOKED_SERVER_CERTIFICATE_KEY_ID = 0xdeadc357;

/** A trust root key pair: the public key goes into client configuration, the private key stays with the operator. */
export interface TrustRootKeyPair {
  /** 33 bytes (type byte 0x05 + Curve25519 point). */
  readonly publicKey: Uint8Array;
  /** 32 bytes. Signs server certificates only; keep it offline. */
  readonly privateKey: Uint8Array;
}

/** A relay's server certificate and the private key it certifies. */
export interface ServerCertificateKeys {
  /** Serialized server certificate (key id + public key, signed by the trust root). */
  readonly certificate: Uint8Array;
  /** 32 bytes; signs sender certificates. */
  readonly privateKey: Uint8Array;
}

/** What the relay puts into one sender certificate. */
export interface SenderCertificateInput {
  /** The authenticated sender's ACI, a lowercase hyphenated UUID. */
  readonly senderAci: string;
  /** The authenticated sender's device id, 1..127. */
  readonly senderDeviceId: number;
  /** The account's 33-byte identity key, as registered with the key server. */
  readonly senderIdentityKey: Uint8Array;
  /** Milliseconds since 1970 after which the certificate is no longer valid. */
  readonly expiresAt: number;
  /** The relay's serialized server certificate. */
  readonly serverCertificate: Uint8Array;
  /** The 32-byte private key that `serverCertificate` certifies. */
  readonly serverPrivateKey: Uint8Array;
}

/** Generates a fresh trust root key pair. */
export function generateTrustRoot(): TrustRootKeyPair {
  const key = PrivateKey.generate();
  return { publicKey: key.getPublicKey().serialize(), privateKey: key.serialize() };
}

/** The 33-byte public key of a 32-byte trust root (or server) private key; INVALID_KEY when it is not one. */
export function publicKeyOf(privateKeyBytes: Uint8Array): Uint8Array {
  return privateKey(privateKeyBytes, 'the private key').getPublicKey().serialize();
}

/**
 * Generates a server signing key pair and certifies it with the trust root's private key.
 * `keyId` (an unsigned 32-bit integer) names the key so that a rotated one can be told apart;
 * {@link REVOKED_SERVER_CERTIFICATE_KEY_ID} is refused.
 */
export function createServerCertificate(keyId: number, trustRootPrivateKey: Uint8Array): ServerCertificateKeys {
  if (!isU32(keyId) || keyId === REVOKED_SERVER_CERTIFICATE_KEY_ID) {
    throw new CryptoError('INVALID_ARGUMENT', 'the server key id must be an unsigned 32-bit integer other than the revoked one');
  }
  const root = privateKey(trustRootPrivateKey, 'the trust root private key');
  const server = PrivateKey.generate();
  const certificate = ServerCertificate.new(keyId, server.getPublicKey(), root);
  return { certificate: certificate.serialize(), privateKey: server.serialize() };
}

/** The key id and 33-byte public key of a serialized server certificate (signature not checked); INVALID_CERTIFICATE on garbage. */
export function readServerCertificate(bytes: Uint8Array): { readonly keyId: number; readonly publicKey: Uint8Array } {
  const certificate = parseServerCertificate(bytes);
  return { keyId: certificate.keyId(), publicKey: certificate.key().serialize() };
}

function parseServerCertificate(bytes: unknown): ServerCertificate {
  if (!(bytes instanceof Uint8Array)) throw new CryptoError('INVALID_CERTIFICATE', 'a server certificate must be bytes');
  try {
    const certificate = ServerCertificate.deserialize(owned(bytes));
    certificate.key();
    return certificate;
  } catch {
    throw new CryptoError('INVALID_CERTIFICATE', 'not a server certificate');
  }
}

/**
 * Signs a sender certificate for an authenticated device. The relay calls this; the inputs
 * come from the device's authenticated session and the account record, never from the
 * request. INVALID_ARGUMENT for an address or expiry out of range, INVALID_KEY for a malformed
 * key, INVALID_CERTIFICATE for a malformed server certificate or one that does not certify
 * `serverPrivateKey`.
 */
export function issueSenderCertificate(input: SenderCertificateInput): Uint8Array {
  checkAddress({ aci: input.senderAci, deviceId: input.senderDeviceId });
  if (!Number.isSafeInteger(input.expiresAt) || input.expiresAt < 0) {
    throw new CryptoError('INVALID_ARGUMENT', 'expiresAt must be a non-negative integer of milliseconds');
  }
  const identity = publicKey(input.senderIdentityKey, 'the sender identity key');
  const server = parseServerCertificate(input.serverCertificate);
  const signer = privateKey(input.serverPrivateKey, 'the server private key');
  // A certificate signed by a key its server certificate does not name would verify nowhere;
  // refusing it here turns a configuration mistake into an error at issue time.
  if (!bytesEqual(signer.getPublicKey().serialize(), server.key().serialize())) {
    throw new CryptoError('INVALID_CERTIFICATE', 'the server private key does not belong to the server certificate');
  }
  return SenderCertificate.new(input.senderAci, null, input.senderDeviceId, identity, input.expiresAt, server, signer).serialize();
}

/**
 * Reads a sender certificate's fields without validating its signatures or expiry (use
 * {@link validateSenderCertificate} for that). INVALID_CERTIFICATE when `bytes` is not a
 * certificate naming an ACI and a device.
 */
export function readSenderCertificate(bytes: Uint8Array): SenderCertificateInfo {
  return senderCertificateInfo(parseSenderCertificate(bytes));
}

/**
 * True when `bytes` is a sender certificate whose server certificate one of `trustRoots` signed,
 * whose own signature the server key makes, and which has not expired at `nowMs` (valid up to
 * and including `expiresAt`). False for a malformed certificate. Throws only for bad
 * arguments: INVALID_ARGUMENT without trust roots, INVALID_KEY for a malformed root.
 */
export function validateSenderCertificate(bytes: Uint8Array, trustRoots: readonly Uint8Array[], nowMs: number): boolean {
  const roots = parseTrustRoots(trustRoots);
  if (!Number.isSafeInteger(nowMs) || nowMs < 0) throw new CryptoError('INVALID_ARGUMENT', 'the time must be a non-negative integer of milliseconds');
  let certificate: SenderCertificate;
  try {
    certificate = parseSenderCertificate(bytes);
    senderCertificateInfo(certificate);
  } catch {
    return false;
  }
  try {
    return certificate.validateWithTrustRoots(roots, nowMs);
  } catch {
    return false;
  }
}
