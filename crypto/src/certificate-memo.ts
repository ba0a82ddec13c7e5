// SPDX-License-Identifier: AGPL-3.0-only
/**
 * Sender certificates already found valid, so that opening a sealed message checks the two
 * signatures of its certificate once per certificate instead of once per message (a sender's
 * certificate changes about daily; the checks were a fifth of the cost of opening a message).
 *
 * What a check depends on is the certificate's bytes and the trust roots, except for its
 * expiry, which depends on the message's time: a remembered certificate is valid at `timestamp`
 * exactly when `timestamp <= expiration`, as libsignal decides. Only certificates that passed
 * are remembered; anything else is checked in full every time.
 */
/** Certificates a memo keeps by default (one per sender device recently heard from). */
export const DEFAULT_CERTIFICATE_MEMO_SIZE = 256;

/**
 * @internal The memo's methods are keyed by these symbols, which only this package holds (the
 * entry does not export them): whoever holds a memo cannot mark a certificate valid.
 */
export const EXPIRY_OF: unique symbol = Symbol('expiryOf');
/** @internal See {@link EXPIRY_OF}. */
export const REMEMBER: unique symbol = Symbol('remember');

interface Entry {
  readonly roots: readonly Uint8Array[];
  readonly expiresAt: number;
}

/**
 * Remembers valid sender certificates for every {@link SessionCipher} given it (one per device's
 * receive path; the ciphers come and go per batch, the memo stays). Holds no secret: certificates
 * travel inside seals, and trust roots are public keys.
 */
export class SenderCertificateMemo {
  readonly #capacity: number;
  /** By certificate bytes (as latin1 text, a cheap exact key); oldest first. */
  readonly #entries = new Map<string, Entry>();

  /** Keeps at most `capacity` certificates (default {@link DEFAULT_CERTIFICATE_MEMO_SIZE}), dropping the oldest. */
  constructor(capacity: number = DEFAULT_CERTIFICATE_MEMO_SIZE) {
    if (!Number.isSafeInteger(capacity) || capacity < 1) throw new RangeError('capacity must be a positive integer');
    this.#capacity = capacity;
  }

  /** Number of certificates remembered. */
  get size(): number {
    return this.#entries.size;
  }

  /**
   * @internal The expiry (ms since the epoch) of the serialized certificate `certificate` when
   * it was found to chain to exactly `roots` before; undefined when it was not.
   */
  [EXPIRY_OF](certificate: Uint8Array, roots: readonly Uint8Array[]): number | undefined {
    const known = this.#entries.get(keyOf(certificate));
    return known && sameRoots(known.roots, roots) ? known.expiresAt : undefined;
  }

  /** @internal Remembers that `certificate` (serialized) chains to `roots` and expires at `expiresAt`. */
  [REMEMBER](certificate: Uint8Array, roots: readonly Uint8Array[], expiresAt: number): void {
    const key = keyOf(certificate);
    this.#entries.delete(key);
    this.#entries.set(key, { roots: roots.map((r) => new Uint8Array(r)), expiresAt });
    if (this.#entries.size > this.#capacity) this.#entries.delete(this.#entries.keys().next().value!);
  }
}

function keyOf(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1');
}

function sameRoots(a: readonly Uint8Array[], b: readonly Uint8Array[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (!bytesEqual(a[i]!, b[i]!)) return false;
  return true;
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
