// SPDX-License-Identifier: AGPL-3.0-only
/**
 * The blob store port (DESIGN §9, §12): encrypted attachment blobs by random id. The embedded
 * adapter keeps files under `<data>/attachments` (`storage/fs-blob-store.ts`); the cluster
 * adapter is any S3-compatible service (`storage/s3-blob-store.ts`). Both pass one contract
 * suite (`test/contract/blob-store-contract.ts`).
 *
 * Invariants every adapter keeps:
 * - Ids are exactly 32 lowercase hex characters ({@link BLOB_ID_PATTERN}) and are checked before
 *   any path or key is built from them; anything else is refused with INVALID_ID, no I/O done.
 * - A blob is visible only complete: `put` stores all of it or nothing (more or fewer bytes
 *   than declared, or a failing source, leave no trace), and it never replaces an existing blob.
 * - Blobs are opaque ciphertext; a store never reads or transforms them.
 * - Time: a blob's age comes from when it was stored (the adapter's clock for files, the
 *   service's clock for S3); `expire(cutoff)` removes blobs stored before `cutoff`.
 */
import { randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';

/** A blob id: 32 lowercase hex characters (16 random bytes). */
export type BlobId = string & { readonly __brand: 'BlobId' };

/** What a blob id looks like; checked before any path or key is built from one. */
export const BLOB_ID_PATTERN = /^[0-9a-f]{32}$/;

/** Why a blob store refused or failed. Stable codes. */
export const BLOB_STORE_ERROR_CODES = {
  INVALID_ID: 'The id is not 32 lowercase hex characters.',
  NOT_FOUND: 'No blob has that id (never stored, deleted or expired).',
  EXISTS: 'A blob with that id is stored already; blobs are never replaced.',
  TOO_LARGE: 'The source held more bytes than declared; nothing was stored.',
  TRUNCATED: 'The source ended before the declared size; nothing was stored.',
  RANGE_NOT_SATISFIABLE: 'The byte range starts at or past the end of the blob.',
  UNAVAILABLE: 'The backing storage failed (disk, network, the S3 service).',
} as const;

/** A stable blob store error code. */
export type BlobStoreErrorCode = keyof typeof BLOB_STORE_ERROR_CODES;

/** A blob store failure; the message names no secret (ids are not secret, tokens are). */
export class BlobStoreError extends Error {
  override readonly name = 'BlobStoreError';
  readonly code: BlobStoreErrorCode;
  constructor(code: BlobStoreErrorCode, message: string = BLOB_STORE_ERROR_CODES[code], options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}

/** True when `err` is a BlobStoreError, optionally with `code`. */
export function isBlobStoreError(err: unknown, code?: BlobStoreErrorCode): err is BlobStoreError {
  return err instanceof BlobStoreError && (code === undefined || err.code === code);
}

/** Parses an untrusted id. @throws BlobStoreError INVALID_ID. */
export function parseBlobId(text: unknown): BlobId {
  if (typeof text !== 'string' || !BLOB_ID_PATTERN.test(text)) throw new BlobStoreError('INVALID_ID');
  return text as BlobId;
}

/** A fresh random id (128 bits: unguessable, so an id alone is no handle to someone else's blob). */
export function newBlobId(): BlobId {
  return randomBytes(16).toString('hex') as BlobId;
}

/** An inclusive byte range; `end` defaults to the last byte. */
export interface ByteRange {
  readonly start: number;
  readonly end?: number;
}

/**
 * The inclusive byte range a request names within a blob of `size` bytes: the whole blob without
 * a range, `end` clipped to the last byte.
 * @throws BlobStoreError RANGE_NOT_SATISFIABLE when the range starts at or past the end, or
 *   ends before it starts.
 */
export function resolveRange(size: number, range: ByteRange | undefined): { start: number; end: number } {
  if (!range) return { start: 0, end: size - 1 };
  const { start } = range;
  if (!Number.isSafeInteger(start) || start < 0 || start >= size) throw new BlobStoreError('RANGE_NOT_SATISFIABLE');
  const end = Math.min(range.end ?? size - 1, size - 1);
  if (!Number.isSafeInteger(end) || end < start) throw new BlobStoreError('RANGE_NOT_SATISFIABLE');
  return { start, end };
}

/** A stored blob's facts. */
export interface BlobInfo {
  readonly size: number;
  /** When it was stored, milliseconds since the epoch. */
  readonly storedAt: number;
}

/** An open read of a blob or a range of it. */
export interface BlobRead {
  /** The bytes `start..end` (inclusive); destroy it to stop early. */
  readonly stream: Readable;
  /** The whole blob's size. */
  readonly size: number;
  readonly start: number;
  /** Inclusive; `start - 1` for an empty blob. */
  readonly end: number;
}

/** Where and how a client uploads one blob. */
export interface UploadSlot {
  readonly id: BlobId;
  /**
   * Where to PUT the bytes: an absolute URL (a pre-signed S3 URL), or a path on the relay that
   * handed out the slot (starting with `/`), resolved against the relay's base URL.
   */
  readonly uploadUrl: string;
  /** Headers the PUT must carry besides Content-Length (e.g. a single-use upload token). */
  readonly headers: Readonly<Record<string, string>>;
  /** The exact byte count the PUT must carry. */
  readonly size: number;
  /** Milliseconds since the epoch; the slot cannot be used to start an upload after it. */
  readonly expiresAt: number;
}

/** Options of {@link BlobStore.createUploadSlot}. */
export interface UploadSlotOptions {
  /** The exact size of the upload, bytes. */
  readonly size: number;
  /** Milliseconds since the epoch. */
  readonly expiresAt: number;
}

/** See the module comment. */
export interface BlobStore {
  /** `filesystem` or `s3`, for logs and metrics. */
  readonly kind: 'filesystem' | 's3';
  /**
   * Stores exactly `size` bytes from `source` under `id`, atomically.
   * @throws BlobStoreError INVALID_ID, EXISTS, TOO_LARGE, TRUNCATED, UNAVAILABLE; or the
   *   source's own error. Nothing is stored when it throws.
   */
  put(id: BlobId, source: Readable | AsyncIterable<Uint8Array>, options: { readonly size: number }): Promise<void>;
  /**
   * Reads a blob, or the inclusive `range` of it (`end` is clipped to the last byte).
   * @throws BlobStoreError INVALID_ID, NOT_FOUND, RANGE_NOT_SATISFIABLE (start at or past the
   *   end, or end before start), UNAVAILABLE.
   */
  get(id: BlobId, range?: ByteRange): Promise<BlobRead>;
  /** The blob's size and age, or undefined when there is none. @throws INVALID_ID, UNAVAILABLE. */
  head(id: BlobId): Promise<BlobInfo | undefined>;
  /** Deletes a blob; false when there was none. @throws INVALID_ID, UNAVAILABLE. */
  delete(id: BlobId): Promise<boolean>;
  /** Up to `limit` ids of blobs stored before `cutoffMs` (milliseconds since the epoch). */
  listExpired(cutoffMs: number, limit: number): Promise<BlobId[]>;
  /** Deletes up to `limit` blobs stored before `cutoffMs`; resolves with how many went. */
  expire(cutoffMs: number, limit: number): Promise<number>;
  /**
   * A slot through which a client uploads blob `id` itself: a pre-signed PUT URL for S3 (the
   * relay never sees the bytes), the relay's own endpoint with a single-use token for files.
   */
  createUploadSlot(id: BlobId, options: UploadSlotOptions): Promise<UploadSlot>;
  /**
   * A URL a client downloads blob `id` from directly (a pre-signed GET for S3), valid until
   * `expiresAt`; undefined when the relay serves the bytes itself (files).
   */
  createDownloadUrl(id: BlobId, expiresAt: number): Promise<string | undefined>;
  /** Releases the store (clients, handles). */
  close(): Promise<void>;
}
