// SPDX-License-Identifier: AGPL-3.0-only
/**
 * The contract every BlobStore adapter passes (CONVENTIONS 1): atomic, size-exact puts that never
 * replace a blob; reads with byte ranges; ids checked before any I/O; deletion; expiry by age;
 * upload slots a client can use; direct download URLs where the store has them. Adapters run it
 * from their own test file with a factory that gives a fresh, empty store.
 *
 * Time here is the real clock: an S3 service stamps objects with its own clock (to the second),
 * so expiry is checked with cutoffs well before and after the moment of storing.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, it } from 'node:test';
import {
  isBlobStoreError,
  newBlobId,
  type BlobId,
  type BlobStore,
  type BlobStoreErrorCode,
  type UploadSlot,
} from '../../src/ports/blob-store.js';

/** A fresh, empty store made by an adapter's factory. */
export interface BlobStoreFixture {
  readonly store: BlobStore;
  /**
   * Uploads `body` through `slot` the way a client does (an HTTP PUT to a pre-signed URL, or the
   * relay's endpoint with the slot's token) and resolves with the HTTP status.
   */
  uploadThroughSlot(slot: UploadSlot, body: Uint8Array): Promise<number>;
  /** Whether the store hands out direct download URLs (pre-signed GETs). */
  readonly directDownloads: boolean;
  /** Closes the store and deletes its data. */
  cleanup(): Promise<void>;
}

async function collect(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(Buffer.from(c as Uint8Array));
  return Buffer.concat(chunks);
}

/** `bytes` as a stream of `chunk`-byte pieces. */
function chunks(bytes: Uint8Array, chunk = 16 * 1024): Readable {
  const parts: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += chunk) parts.push(Buffer.from(bytes.subarray(i, i + chunk)));
  return Readable.from(parts);
}

const refusedWith = (code: BlobStoreErrorCode) => (e: unknown) => isBlobStoreError(e, code);

/** Ids that must be refused before any path or key is built. */
export const BAD_BLOB_IDS: readonly string[] = [
  '',
  '../../../../etc/passwd',
  '..',
  '../0123456789abcdef0123456789abcdef',
  '0123456789abcdef0123456789abcde', // 31
  '0123456789abcdef0123456789abcdef0', // 33
  '0123456789ABCDEF0123456789ABCDEF', // uppercase
  '0123456789abcdef0123456789abcdeg',
  '0123456789abcdef/123456789abcdef',
  '0123456789abcdef\\123456789abcdef',
  '0123456789abcdef0123456789abcde\0',
  '/0123456789abcdef0123456789abcde',
  '0123456789abcdef0123456789abcdef\n',
  'http://169.254.169.254/latest/meta-data',
];

/** Registers the contract tests for one adapter. */
export function describeBlobStoreContract(name: string, makeFixture: () => Promise<BlobStoreFixture>): void {
  describe(`BlobStore contract: ${name}`, () => {
    let f: BlobStoreFixture;
    let store: BlobStore;
    beforeEach(async () => {
      f = await makeFixture();
      store = f.store;
    });
    afterEach(async () => {
      await f.cleanup();
    });

    async function stored(id: BlobId, bytes: Uint8Array): Promise<void> {
      await store.put(id, chunks(bytes), { size: bytes.length });
    }

    it('stores a blob and reads it back whole, with its size and storage time', async () => {
      const id = newBlobId();
      const bytes = randomBytes(200 * 1024 + 7);
      const before = Date.now();
      await stored(id, bytes);
      const info = await store.head(id);
      assert.equal(info?.size, bytes.length);
      assert.ok(info.storedAt >= before - 2000 && info.storedAt <= Date.now() + 2000, `storedAt ${info.storedAt}`);
      const read = await store.get(id);
      assert.deepEqual({ size: read.size, start: read.start, end: read.end }, { size: bytes.length, start: 0, end: bytes.length - 1 });
      assert.deepEqual(await collect(read.stream), bytes);
    });

    it('reads byte ranges, clips the end and refuses ranges past the end', async () => {
      const id = newBlobId();
      const bytes = randomBytes(10_000);
      await stored(id, bytes);
      const tail = await store.get(id, { start: 9_000 });
      assert.deepEqual([tail.start, tail.end, tail.size], [9_000, 9_999, 10_000]);
      assert.deepEqual(await collect(tail.stream), bytes.subarray(9_000));
      const mid = await store.get(id, { start: 10, end: 19 });
      assert.deepEqual(await collect(mid.stream), bytes.subarray(10, 20));
      const clipped = await store.get(id, { start: 9_990, end: 50_000 });
      assert.equal(clipped.end, 9_999);
      assert.deepEqual(await collect(clipped.stream), bytes.subarray(9_990));
      const last = await store.get(id, { start: 9_999 });
      assert.deepEqual(await collect(last.stream), bytes.subarray(9_999));
      await assert.rejects(store.get(id, { start: 10_000 }), refusedWith('RANGE_NOT_SATISFIABLE'));
      await assert.rejects(store.get(id, { start: 20, end: 10 }), refusedWith('RANGE_NOT_SATISFIABLE'));
      await assert.rejects(store.get(id, { start: -1 }), refusedWith('RANGE_NOT_SATISFIABLE'));
    });

    it('stores an empty blob', async () => {
      const id = newBlobId();
      await store.put(id, Readable.from([]), { size: 0 });
      assert.equal((await store.head(id))?.size, 0);
      const read = await store.get(id);
      assert.equal(read.size, 0);
      assert.equal((await collect(read.stream)).length, 0);
    });

    it('refuses a source longer than declared and keeps nothing of it', async () => {
      const id = newBlobId();
      await assert.rejects(store.put(id, chunks(randomBytes(50_001)), { size: 50_000 }), refusedWith('TOO_LARGE'));
      assert.equal(await store.head(id), undefined);
      await assert.rejects(store.get(id), refusedWith('NOT_FOUND'));
      // The id is still free afterwards.
      const bytes = randomBytes(100);
      await stored(id, bytes);
      assert.deepEqual(await collect((await store.get(id)).stream), bytes);
    });

    it('refuses a source shorter than declared and keeps nothing of it', async () => {
      const id = newBlobId();
      await assert.rejects(store.put(id, chunks(randomBytes(49_999)), { size: 50_000 }), refusedWith('TRUNCATED'));
      assert.equal(await store.head(id), undefined);
      const nothing = newBlobId();
      await assert.rejects(store.put(nothing, Readable.from([]), { size: 10 }), refusedWith('TRUNCATED'));
      assert.equal(await store.head(nothing), undefined);
    });

    it('keeps nothing when the source fails midway, and passes its error on', async () => {
      const id = newBlobId();
      const boom = new Error('connection dropped');
      async function* failing(): AsyncGenerator<Uint8Array> {
        yield randomBytes(30_000);
        yield randomBytes(30_000);
        throw boom;
      }
      await assert.rejects(store.put(id, failing(), { size: 100_000 }), (e) => e === boom);
      assert.equal(await store.head(id), undefined);
    });

    it('never replaces a stored blob', async () => {
      const id = newBlobId();
      const first = randomBytes(1000);
      await stored(id, first);
      await assert.rejects(store.put(id, chunks(randomBytes(1000)), { size: 1000 }), refusedWith('EXISTS'));
      assert.deepEqual(await collect((await store.get(id)).stream), first);
    });

    it('answers unknown ids with nothing, NOT_FOUND and false', async () => {
      const id = newBlobId();
      assert.equal(await store.head(id), undefined);
      await assert.rejects(store.get(id), refusedWith('NOT_FOUND'));
      await assert.rejects(store.get(id, { start: 0 }), refusedWith('NOT_FOUND'));
      assert.equal(await store.delete(id), false);
    });

    it('refuses every malformed id before doing anything, in every method', async () => {
      for (const bad of BAD_BLOB_IDS) {
        const id = bad as BlobId;
        const label = JSON.stringify(bad);
        await assert.rejects(store.put(id, Readable.from([Buffer.from('x')]), { size: 1 }), refusedWith('INVALID_ID'), `put ${label}`);
        await assert.rejects(store.get(id), refusedWith('INVALID_ID'), `get ${label}`);
        await assert.rejects(store.head(id), refusedWith('INVALID_ID'), `head ${label}`);
        await assert.rejects(store.delete(id), refusedWith('INVALID_ID'), `delete ${label}`);
        await assert.rejects(store.createUploadSlot(id, { size: 1, expiresAt: Date.now() + 60_000 }), refusedWith('INVALID_ID'), `slot ${label}`);
        await assert.rejects(store.createDownloadUrl(id, Date.now() + 60_000), refusedWith('INVALID_ID'), `url ${label}`);
      }
      assert.deepEqual(await store.listExpired(Date.now() + 60_000, 100), []);
    });

    it('deletes a blob once', async () => {
      const id = newBlobId();
      const other = newBlobId();
      await stored(id, randomBytes(10));
      await stored(other, randomBytes(10));
      assert.equal(await store.delete(id), true);
      assert.equal(await store.delete(id), false);
      await assert.rejects(store.get(id), refusedWith('NOT_FOUND'));
      assert.equal((await store.head(other))?.size, 10);
    });

    it('lists and expires blobs stored before a cutoff, at most `limit` per call', async () => {
      const ids = [newBlobId(), newBlobId(), newBlobId()];
      const before = Date.now() - 5_000;
      for (const id of ids) await stored(id, randomBytes(64));
      assert.deepEqual(await store.listExpired(before, 100), []);
      assert.equal(await store.expire(before, 100), 0);
      const after = Date.now() + 5_000;
      assert.deepEqual(new Set(await store.listExpired(after, 100)), new Set(ids));
      assert.equal((await store.listExpired(after, 2)).length, 2);
      assert.equal(await store.expire(after, 2), 2);
      assert.equal(await store.expire(after, 100), 1);
      for (const id of ids) assert.equal(await store.head(id), undefined);
      assert.deepEqual(await store.listExpired(after, 100), []);
    });

    it('hands out an upload slot that takes exactly the declared bytes', async () => {
      const id = newBlobId();
      const bytes = randomBytes(70_000);
      const expiresAt = Date.now() + 15 * 60_000;
      const slot = await store.createUploadSlot(id, { size: bytes.length, expiresAt });
      assert.equal(slot.id, id);
      assert.equal(slot.size, bytes.length);
      assert.equal(slot.expiresAt, expiresAt);
      assert.ok(slot.uploadUrl.startsWith('/') || /^https?:\/\//.test(slot.uploadUrl), slot.uploadUrl);
      assert.ok(slot.uploadUrl.includes(id));
      const status = await f.uploadThroughSlot(slot, bytes);
      assert.ok(status >= 200 && status < 300, `upload answered ${status}`);
      assert.deepEqual(await collect((await store.get(id)).stream), bytes);
    });

    it('gives direct download URLs only where the store serves downloads itself', async () => {
      const id = newBlobId();
      const bytes = randomBytes(5000);
      await stored(id, bytes);
      const url = await store.createDownloadUrl(id, Date.now() + 60_000);
      if (!f.directDownloads) {
        assert.equal(url, undefined);
        return;
      }
      assert.ok(url && /^https?:\/\//.test(url), String(url));
      const whole = await fetch(url);
      assert.equal(whole.status, 200);
      assert.deepEqual(Buffer.from(await whole.arrayBuffer()), bytes);
      const part = await fetch(url, { headers: { range: 'bytes=4000-' } });
      assert.equal(part.status, 206);
      assert.deepEqual(Buffer.from(await part.arrayBuffer()), bytes.subarray(4000));
    });

    it('takes concurrent puts of different blobs', async () => {
      const blobs = Array.from({ length: 20 }, () => ({ id: newBlobId(), bytes: randomBytes(20_000 + Math.floor(Math.random() * 1000)) }));
      await Promise.all(blobs.map((b) => stored(b.id, b.bytes)));
      for (const b of blobs) assert.deepEqual(await collect((await store.get(b.id)).stream), b.bytes);
    });

    it('stops reading when a range stream is destroyed early', async () => {
      const id = newBlobId();
      await stored(id, randomBytes(1024 * 1024));
      const read = await store.get(id, { start: 0 });
      read.stream.destroy();
      // The store stays usable (no handle or connection left behind in a bad state).
      assert.equal((await store.head(id))?.size, 1024 * 1024);
    });
  });
}
