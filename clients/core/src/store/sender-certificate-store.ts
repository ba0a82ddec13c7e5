// SPDX-License-Identifier: AGPL-3.0-only
/**
 * Sealed-sender certificates on this device: the trust roots pinned per domain (from the relay's
 * `/v1/info` at registration or link), which certificates must chain to, and the cached sender
 * certificate of this device. A pinned root is never replaced: a relay that starts offering
 * another one is refused (the engine reports TRUST_ROOT_CHANGED).
 */
import { ClientError } from '../errors.js';
import type { ClientDatabase } from './database.js';
import { blob, copyBytes } from './sql-values.js';
import { checkInteger } from './store-types.js';

/** Bytes of a serialized Curve25519 public key (type byte + point). */
export const TRUST_ROOT_LENGTH = 33;

/** What {@link SenderCertificateStore.pinTrustRoot} found. */
export type PinResult = 'pinned' | 'unchanged' | 'conflict';

/** A cached sender certificate. */
export interface CachedSenderCertificate {
  /** The serialized certificate, as the relay issued it. */
  readonly certificate: Uint8Array;
  /** Milliseconds since the epoch. */
  readonly expiresAt: number;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

function checkDomain(domain: unknown): string {
  if (typeof domain !== 'string' || domain === '' || domain.length > 253) throw new ClientError('INVALID_ARGUMENT', 'a domain is 1..253 characters');
  return domain;
}

/** The `sender_trust_roots` and `sender_certificate` tables. */
export class SenderCertificateStore {
  readonly #db: ClientDatabase;

  /** Over the client schema in `db` (migration 0007). */
  constructor(db: ClientDatabase) {
    this.#db = db;
  }

  /** The root pinned for `domain`, or undefined. */
  trustRoot(domain: string): Uint8Array | undefined {
    const row = this.#db.getCached<{ public_key: Uint8Array }>(['sender_trust_roots'], 'SELECT public_key FROM sender_trust_roots WHERE domain = ?', [checkDomain(domain)]);
    return row ? copyBytes(row.public_key) : undefined;
  }

  /** Every pinned root (what a received certificate may chain to). */
  trustRoots(): Uint8Array[] {
    return this.#db.allCached<{ public_key: Uint8Array }>(['sender_trust_roots'], 'SELECT public_key FROM sender_trust_roots ORDER BY domain').map((r) => copyBytes(r.public_key));
  }

  /**
   * Pins `publicKey` as `domain`'s root when none is pinned. A different key for a pinned
   * domain is not adopted: it is remembered as refused (see {@link refused}) and answers
   * 'conflict'; the pinned key again clears that.
   * @throws ClientError INVALID_ARGUMENT for a key that is not 33 bytes or a bad domain.
   */
  pinTrustRoot(domain: string, publicKey: Uint8Array, nowMs: number): PinResult {
    checkDomain(domain);
    if (!(publicKey instanceof Uint8Array) || publicKey.length !== TRUST_ROOT_LENGTH) {
      throw new ClientError('INVALID_ARGUMENT', `a trust root is ${TRUST_ROOT_LENGTH} bytes`);
    }
    checkInteger(nowMs, 'nowMs');
    const pinned = this.trustRoot(domain);
    if (pinned) {
      const same = sameBytes(pinned, publicKey);
      this.#db.run('UPDATE sender_trust_roots SET refused_key = ? WHERE domain = ?', [same ? null : blob(publicKey), domain]);
      return same ? 'unchanged' : 'conflict';
    }
    this.#db.run('INSERT INTO sender_trust_roots (domain, public_key, pinned_at) VALUES (?, ?, ?)', [domain, blob(publicKey), nowMs]);
    return 'pinned';
  }

  /** Whether `domain`'s relay last announced a root other than the pinned one. */
  refused(domain: string): boolean {
    return this.#db.value('SELECT refused_key IS NOT NULL FROM sender_trust_roots WHERE domain = ?', [checkDomain(domain)]) === 1;
  }

  /** The cached certificate, or undefined. */
  certificate(): CachedSenderCertificate | undefined {
    const r = this.#db.get<{ certificate: Uint8Array; expires_at: number }>('SELECT certificate, expires_at FROM sender_certificate WHERE id = 1');
    return r && { certificate: copyBytes(r.certificate), expiresAt: r.expires_at };
  }

  /** Caches `certificate` (replacing the previous one). */
  saveCertificate(certificate: Uint8Array, expiresAt: number): void {
    if (!(certificate instanceof Uint8Array) || certificate.length === 0) throw new ClientError('INVALID_ARGUMENT', 'a certificate must be bytes');
    checkInteger(expiresAt, 'expiresAt');
    this.#db.run('INSERT OR REPLACE INTO sender_certificate (id, certificate, expires_at) VALUES (1, ?, ?)', [blob(certificate), expiresAt]);
  }

  /** Forgets the cached certificate. */
  clearCertificate(): void {
    this.#db.run('DELETE FROM sender_certificate');
  }
}
