// SPDX-License-Identifier: AGPL-3.0-only
/**
 * The one error registry of @parley/crypto. Codes are stable strings: callers branch on them,
 * never on messages. Messages are fixed texts that hold no key, plaintext or ciphertext; the
 * peer a failure concerns travels in the structured `address` field (CONVENTIONS 7, 8).
 */

/** Every code a {@link CryptoError} can carry, with what it means. Never rename or reuse one. */
export const CRYPTO_ERROR_CODES = {
  UNTRUSTED_IDENTITY:
    'The peer’s identity key differs from the one the user trusts; sending stays refused until the user accepts the new key.',
  DUPLICATE_MESSAGE: 'The message was already decrypted (a replay, or a redelivery after it was processed).',
  INVALID_MESSAGE: 'The ciphertext is malformed, was tampered with, or belongs to no session state this device has.',
  NO_SESSION: 'There is no session with that device: fetch its prekey bundle and call processBundle first.',
  INVALID_KEY: 'A key or serialized record is not well formed.',
  INVALID_SIGNATURE: 'A signed EC prekey or Kyber prekey signature does not verify against the identity key.',
  UNKNOWN_PREKEY: 'A prekey message names a one-time, signed or Kyber prekey this device does not have (used up or deleted).',
  INVALID_ARGUMENT: 'An argument is out of range: an address, device id, key id, registration id or count.',
  INVALID_CERTIFICATE:
    'A sender or server certificate is malformed, expired at the time it is checked for, not signed by a trusted root, or names an identity key that is not the sender’s.',
  NO_SENDER_KEY:
    'There is no sender key for that sender and distribution: the group message came before (or without) the sender’s key distribution, or the sender rotated its key and this device was not given the new one.',
  INVALID_ATTACHMENT:
    'An encrypted attachment does not match its pointer: wrong key, tampered or truncated bytes, or another digest or size. Nothing of it may be kept.',
  INTERNAL: 'libsignal failed in a way this package does not expect; a bug.',
} as const;

/** A stable @parley/crypto error code. */
export type CryptoErrorCode = keyof typeof CRYPTO_ERROR_CODES;

/** Options of a {@link CryptoError}. */
export interface CryptoErrorOptions {
  /** The peer device the failure concerns, as `"<aci>.<deviceId>"`. Not secret, not a key. */
  readonly address?: string;
  /** Several peer devices the failure concerns (e.g. every recipient without a session), as `"<aci>.<deviceId>"`. */
  readonly addresses?: readonly string[];
}

/** A failure of @parley/crypto, narrowed with {@link CryptoError.is}. */
export class CryptoError extends Error {
  /** Stable code; see {@link CRYPTO_ERROR_CODES}. */
  readonly code: CryptoErrorCode;
  /** The peer device concerned, when there is one. */
  readonly address: string | undefined;
  /** Every peer device concerned, when the failure names several (else empty, or just `address`). */
  readonly addresses: readonly string[];

  /** `message` must not contain keys, plaintext or ciphertext. */
  constructor(code: CryptoErrorCode, message: string = CRYPTO_ERROR_CODES[code], options: CryptoErrorOptions = {}) {
    super(message);
    this.name = 'CryptoError';
    this.code = code;
    this.address = options.address ?? options.addresses?.[0];
    this.addresses = Object.freeze([...(options.addresses ?? (options.address === undefined ? [] : [options.address]))]);
  }

  /** True when this error has `code`. */
  is<C extends CryptoErrorCode>(code: C): this is CryptoError & { readonly code: C } {
    return this.code === code;
  }

  /** True when `err` is a CryptoError with `code`. */
  static is<C extends CryptoErrorCode>(err: unknown, code: C): err is CryptoError & { readonly code: C } {
    return err instanceof CryptoError && err.code === code;
  }
}
