// SPDX-License-Identifier: AGPL-3.0-only
/**
 * The S3 adapter against a real S3 API server on loopback (s3rver, started here on a free port
 * in a temporary directory; a fresh bucket per test).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { systemClock } from '../src/clock.js';
import { newBlobId } from '../src/ports/blob-store.js';
import { openS3BlobStore } from '../src/storage/s3-blob-store.js';
import { describeBlobStoreContract } from './contract/blob-store-contract.js';
import { ManualClock } from './contract/manual-clock.js';
import { startS3TestServer, type S3TestServer } from './support/s3-test-server.js';

let s3: S3TestServer;
before(async () => {
  s3 = await startS3TestServer();
});
after(async () => {
  await s3.stop();
});

describeBlobStoreContract('s3 (s3rver on loopback)', async () => {
  const bucket = await s3.createBucket();
  const store = openS3BlobStore({ bucket, endpoint: s3.endpoint, forcePathStyle: true, credentials: s3.credentials, clock: systemClock });
  return {
    store,
    directDownloads: true,
    async uploadThroughSlot(slot, body) {
      const res = await fetch(slot.uploadUrl, { method: 'PUT', headers: { ...slot.headers, 'content-length': String(body.length) }, body });
      await res.arrayBuffer();
      return res.status;
    },
    async cleanup() {
      await store.close();
    },
  };
});

describe('s3 blob store', () => {
  it('signs Content-Length into upload URLs, so the service refuses any other size', async () => {
    const clock = new ManualClock(Date.UTC(2027, 0, 15, 8));
    const store = openS3BlobStore({ bucket: 'b-test', endpoint: s3.endpoint, forcePathStyle: true, credentials: s3.credentials, clock });
    const id = newBlobId();
    const slot = await store.createUploadSlot(id, { size: 12345, expiresAt: clock.now() + 15 * 60_000 });
    const url = new URL(slot.uploadUrl);
    assert.equal(`${url.protocol}//${url.host}`, s3.endpoint);
    assert.equal(url.pathname, `/b-test/attachments/${id}`);
    assert.deepEqual(url.searchParams.get('X-Amz-SignedHeaders')?.split(';').sort(), ['content-length', 'host']);
    assert.equal(url.searchParams.get('X-Amz-Expires'), '900');
    assert.equal(url.searchParams.get('X-Amz-Date'), '20270115T080000Z');
    // No checksum of an empty body in the URL (it would make S3 refuse the real body).
    for (const k of url.searchParams.keys()) assert.doesNotMatch(k, /checksum/i);
    const get = new URL((await store.createDownloadUrl(id, clock.now() + 60_000))!);
    assert.equal(get.searchParams.get('X-Amz-Expires'), '60');
    assert.equal(get.searchParams.get('X-Amz-SignedHeaders'), 'host');
    await store.close();
  });

  it('reports an unreachable service as UNAVAILABLE without credentials in the message', async () => {
    const store = openS3BlobStore({
      bucket: 'b-test',
      endpoint: 'http://127.0.0.1:1',
      forcePathStyle: true,
      credentials: { accessKeyId: 'AKIAEXAMPLE', secretAccessKey: 'very-secret-key' },
      clock: systemClock,
    });
    const err = await store.head(newBlobId()).then(
      () => undefined,
      (e: unknown) => e as Error & { code?: string },
    );
    assert.equal(err?.code, 'UNAVAILABLE');
    assert.doesNotMatch(err.message, /very-secret-key|AKIAEXAMPLE/);
    await store.close();
  });
});
