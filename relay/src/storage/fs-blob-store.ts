// SPDX-License-Identifier: AGPL-3.0-only
/**
 * The embedded blob store: one file per blob under `<data>/attachments/<first two hex>/<id>`
 * (256 shard directories keep any one directory small), written to `tmp/` first, flushed to
 * disk, and moved into place with `link` (atomic, and it refuses to replace an existing blob,
 * which `rename` would silently do). A blob's modification time is the time it was stored, by
 * the injected clock. Uploads reach it through the relay's own endpoint with a single-use token
 * (see UploadTokens); downloads are served by the relay.
 *
 * Every id is checked against BLOB_ID_PATTERN before it becomes part of a path, so no id can
 * name anything outside the store (`../`, absolute paths, NUL and the like never get that far).
 */
import { constants } from 'node:fs';
import { link, mkdir, open, readdir, rm, stat, unlink, utimes, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { randomBytes } from 'node:crypto';
import { HTTP_ROUTES } from '@parley/protocol';
import type { Clock } from '../clock.js';
import { UPLOAD_TOKEN_HEADER, type UploadTokens } from '../attachments/upload-tokens.js';
import {
  BLOB_ID_PATTERN,
  BlobStoreError,
  parseBlobId,
  resolveRange,
  type BlobId,
  type BlobInfo,
  type BlobRead,
  type BlobStore,
  type ByteRange,
  type UploadSlot,
  type UploadSlotOptions,
} from '../ports/blob-store.js';

/** Options of {@link openFsBlobStore}. */
export interface FsBlobStoreOptions {
  /** The store's directory (created with mode 0700), e.g. `<data>/attachments`. */
  readonly root: string;
  /** Stamps each blob's storage time. */
  readonly clock: Clock;
  /** Issues the single-use tokens of upload slots; the relay's PUT route redeems them. */
  readonly tokens: UploadTokens;
  /** Flush each blob to disk before it becomes visible. Default true. */
  readonly fsync?: boolean;
}

/**
 * Opens the store under `options.root`, creating it when missing. Leftovers of uploads that a
 * crash interrupted (files in `tmp/`) are deleted.
 */
export async function openFsBlobStore(options: FsBlobStoreOptions): Promise<BlobStore> {
  const { root, clock, tokens } = options;
  const fsync = options.fsync ?? true;
  const tmpDir = join(root, 'tmp');
  await mkdir(root, { recursive: true, mode: 0o700 });
  await rm(tmpDir, { recursive: true, force: true });
  await mkdir(tmpDir, { mode: 0o700 });

  /** The path of a checked id; the only place a path is built from an id. */
  const pathOf = (id: BlobId): string => {
    // parseBlobId ran at every entry point; this repeats the check where it matters most.
    if (!BLOB_ID_PATTERN.test(id)) throw new BlobStoreError('INVALID_ID');
    return join(root, id.slice(0, 2), id);
  };

  const unavailable = (err: unknown): BlobStoreError =>
    err instanceof BlobStoreError ? err : new BlobStoreError('UNAVAILABLE', `the attachment directory failed: ${(err as NodeJS.ErrnoException).code ?? 'error'}`, { cause: err });

  async function infoOf(id: BlobId): Promise<BlobInfo | undefined> {
    try {
      const st = await stat(pathOf(id));
      return { size: st.size, storedAt: Math.floor(st.mtimeMs) };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw unavailable(err);
    }
  }

  async function syncDir(dir: string): Promise<void> {
    if (!fsync) return;
    const fh = await open(dir, constants.O_RDONLY);
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
  }

  async function listExpired(cutoffMs: number, limit: number): Promise<BlobId[]> {
    const out: BlobId[] = [];
    let shards: string[];
    try {
      shards = (await readdir(root)).filter((d) => /^[0-9a-f]{2}$/.test(d)).sort();
    } catch (err) {
      throw unavailable(err);
    }
    for (const shard of shards) {
      let names: string[];
      try {
        names = await readdir(join(root, shard));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
        throw unavailable(err);
      }
      for (const name of names) {
        if (!BLOB_ID_PATTERN.test(name) || !name.startsWith(shard)) continue;
        const info = await infoOf(name as BlobId);
        if (info && info.storedAt < cutoffMs) {
          out.push(name as BlobId);
          if (out.length >= limit) return out;
        }
      }
    }
    return out;
  }

  async function remove(id: BlobId): Promise<boolean> {
    try {
      await unlink(pathOf(id));
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw unavailable(err);
    }
  }

  return {
    kind: 'filesystem',

    async put(idText, source, { size }) {
      const id = parseBlobId(idText);
      if (!Number.isSafeInteger(size) || size < 0) throw new RangeError('size must be a whole number of bytes');
      const final = pathOf(id);
      if (await infoOf(id)) throw new BlobStoreError('EXISTS');
      const tmp = join(tmpDir, `${id}.${randomBytes(6).toString('hex')}`);
      let fh: FileHandle | undefined;
      try {
        fh = await open(tmp, 'wx', 0o600);
        let written = 0;
        for await (const chunk of source as AsyncIterable<Uint8Array>) {
          written += chunk.length;
          if (written > size) throw new BlobStoreError('TOO_LARGE');
          await fh.write(chunk);
        }
        if (written < size) throw new BlobStoreError('TRUNCATED');
        if (fsync) await fh.sync();
        await fh.close();
        fh = undefined;
        const at = clock.now() / 1000;
        await utimes(tmp, at, at);
        await mkdir(join(root, id.slice(0, 2)), { recursive: true, mode: 0o700 });
        try {
          await link(tmp, final);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw new BlobStoreError('EXISTS');
          throw err;
        }
        await syncDir(join(root, id.slice(0, 2)));
      } catch (err) {
        if (err instanceof BlobStoreError) throw err;
        // A source that failed (a dropped connection) keeps its own error; disk failures are UNAVAILABLE.
        if ((err as NodeJS.ErrnoException).syscall !== undefined) throw unavailable(err);
        throw err;
      } finally {
        await fh?.close().catch(() => undefined);
        await unlink(tmp).catch(() => undefined);
      }
    },

    async get(idText, range?: ByteRange): Promise<BlobRead> {
      const id = parseBlobId(idText);
      let fh: FileHandle;
      try {
        fh = await open(pathOf(id), 'r');
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new BlobStoreError('NOT_FOUND');
        throw unavailable(err);
      }
      try {
        const { size } = await fh.stat();
        const { start, end } = resolveRange(size, range);
        if (end < start) {
          await fh.close();
          return { stream: Readable.from([]), size, start, end };
        }
        // The stream owns the handle now and closes it when it ends or is destroyed.
        return { stream: fh.createReadStream({ start, end, highWaterMark: 64 * 1024 }), size, start, end };
      } catch (err) {
        await fh.close().catch(() => undefined);
        throw unavailable(err);
      }
    },

    head: async (idText) => infoOf(parseBlobId(idText)),
    delete: async (idText) => remove(parseBlobId(idText)),
    listExpired,

    async expire(cutoffMs, limit) {
      let n = 0;
      for (const id of await listExpired(cutoffMs, limit)) if (await remove(id)) n++;
      return n;
    },

    async createUploadSlot(idText, options: UploadSlotOptions): Promise<UploadSlot> {
      const id = parseBlobId(idText);
      const token = tokens.issue(id, options.size, options.expiresAt);
      return {
        id,
        uploadUrl: HTTP_ROUTES.attachment.replace(':id', id),
        headers: { [UPLOAD_TOKEN_HEADER]: token },
        size: options.size,
        expiresAt: options.expiresAt,
      };
    },

    async createDownloadUrl(idText) {
      parseBlobId(idText);
      return undefined;
    },

    async close() {},
  };
}
