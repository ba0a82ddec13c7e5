// SPDX-License-Identifier: AGPL-3.0-only
/**
 * Safety numbers: what two people compare (read aloud, or by scanning a QR code) to know that
 * no one sits between them. Built like Signal's for ACIs: libsignal's Fingerprint, version 2,
 * 5200 hash iterations, each side identified by its ACI's 16 bytes.
 */
import { Aci, Fingerprint, PublicKey, ScannableFingerprint } from '@signalapp/libsignal-client';
import { CryptoError } from './errors.js';
import { owned } from './key-verification.js';

/** Hash iterations of the fingerprint (Signal's value; changing it changes every number). */
export const SAFETY_NUMBER_ITERATIONS = 5200;
/** Fingerprint format version for ACI-based identifiers. */
export const SAFETY_NUMBER_VERSION = 2;

/** One side of a conversation: its ACI (lowercase UUID) and its 33-byte identity key. */
export interface SafetyNumberParty {
  readonly aci: string;
  readonly identityKey: Uint8Array;
}

/** A safety number as shown and as encoded in the QR code. */
export interface SafetyNumber {
  /** 60 digits, the same on both sides (show in 12 groups of 5). */
  readonly displayString: string;
  /** Protobuf for the QR code; differs per side (ours first), compare with {@link compareScannedSafetyNumber}. */
  readonly scannable: Uint8Array;
}

function aciBytes(aci: string): Uint8Array<ArrayBuffer> {
  try {
    return Aci.fromUuid(aci).getRawUuidBytes();
  } catch {
    throw new CryptoError('INVALID_ARGUMENT', 'not an ACI');
  }
}

function identityKey(bytes: Uint8Array): PublicKey {
  try {
    return PublicKey.deserialize(owned(bytes));
  } catch {
    throw new CryptoError('INVALID_KEY', 'not an identity key');
  }
}

/** The safety number between `local` and `remote`. Both sides get the same `displayString`. */
export function safetyNumber(local: SafetyNumberParty, remote: SafetyNumberParty): SafetyNumber {
  const fingerprint = Fingerprint.new(
    SAFETY_NUMBER_ITERATIONS,
    SAFETY_NUMBER_VERSION,
    aciBytes(local.aci),
    identityKey(local.identityKey),
    aciBytes(remote.aci),
    identityKey(remote.identityKey),
  );
  return {
    displayString: fingerprint.displayableFingerprint().toString(),
    scannable: fingerprint.scannableFingerprint().toBuffer(),
  };
}

/**
 * True when `scanned` (read from the other person's QR code) matches `ours` (our
 * {@link SafetyNumber.scannable} for the same conversation). False for anything else, including
 * garbage and another fingerprint version.
 */
export function compareScannedSafetyNumber(ours: Uint8Array, scanned: Uint8Array): boolean {
  try {
    return ScannableFingerprint._fromBuffer(owned(ours)).compare(ScannableFingerprint._fromBuffer(owned(scanned)));
  } catch {
    return false;
  }
}
