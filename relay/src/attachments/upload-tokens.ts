// SPDX-License-Identifier: AGPL-3.0-only
/**
 * Single-use upload tokens for the relay's own upload endpoint (the filesystem blob store's
 * upload slots). A token is 32 random bytes; only its SHA-256 is kept, in memory, with the slot's
 * size and expiry. Redeeming checks the token in constant time and consumes it, so a slot
 * uploads at most once. Tokens do not survive a restart: a client whose slot vanished asks for
 * a new one (upload slots live minutes, not days).
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { ParleyError } from '@parley/protocol';
import type { Clock } from '../clock.js';
import type { BlobId } from '../ports/blob-store.js';

/** The request header that carries an upload token. */
export const UPLOAD_TOKEN_HEADER = 'x-parley-upload-token';

/** Default cap of outstanding (issued, unused, unexpired) tokens. */
export const DEFAULT_MAX_OUTSTANDING_UPLOADS = 100_000;

/** Options of {@link UploadTokens}. */
export interface UploadTokensOptions {
  readonly clock: Clock;
  /** Most outstanding tokens; past it `issue` refuses with RATE_LIMITED. Default 100,000. */
  readonly maxOutstanding?: number;
}

interface Slot {
  readonly hash: Buffer;
  readonly size: number;
  readonly expiresAt: number;
}

/** See the module comment. */
export class UploadTokens {
  readonly #clock: Clock;
  readonly #max: number;
  readonly #slots = new Map<string, Slot>();

  constructor(options: UploadTokensOptions) {
    this.#clock = options.clock;
    this.#max = options.maxOutstanding ?? DEFAULT_MAX_OUTSTANDING_UPLOADS;
  }

  /** Outstanding tokens. */
  get size(): number {
    return this.#slots.size;
  }

  /**
   * A new token for uploading `size` bytes as blob `id` until `expiresAt` (ms since the epoch).
   * @throws ParleyError RATE_LIMITED when too many uploads are outstanding.
   */
  issue(id: BlobId, size: number, expiresAt: number): string {
    if (this.#slots.size >= this.#max) this.prune();
    if (this.#slots.size >= this.#max) throw new ParleyError('RATE_LIMITED', 'too many uploads are being prepared', { retryAfterMs: 10_000 });
    const token = randomBytes(32).toString('base64url');
    this.#slots.set(id, { hash: digest(token), size, expiresAt });
    return token;
  }

  /**
   * Consumes the token of blob `id`: the slot's size when `token` is the live token of `id`,
   * undefined otherwise. A wrong token leaves the slot usable (the id is no secret to the
   * person who knows it, and guessing a 256-bit token fails anyway).
   */
  redeem(id: string, token: string | undefined): { size: number } | undefined {
    const slot = this.#slots.get(id);
    if (!slot || typeof token !== 'string') return undefined;
    if (slot.expiresAt <= this.#clock.now()) {
      this.#slots.delete(id);
      return undefined;
    }
    if (!timingSafeEqual(digest(token), slot.hash)) return undefined;
    this.#slots.delete(id);
    return { size: slot.size };
  }

  /** Forgets expired tokens; returns how many. */
  prune(): number {
    const now = this.#clock.now();
    let n = 0;
    for (const [id, slot] of this.#slots) {
      if (slot.expiresAt <= now) {
        this.#slots.delete(id);
        n++;
      }
    }
    return n;
  }
}

function digest(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}
