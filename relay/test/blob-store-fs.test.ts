// SPDX-License-Identifier: AGPL-3.0-only
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { isParleyError } from '@parley/protocol';
import { systemClock } from '../src/clock.js';
import { UPLOAD_TOKEN_HEADER, UploadTokens } from '../src/attachments/upload-tokens.js';
import { newBlobId, isBlobStoreError, type BlobId } from '../src/ports/blob-store.js';
import { openFsBlobStore } from '../src/storage/fs-blob-store.js';
import { describeBlobStoreContract } from './contract/blob-store-contract.js';
import { ManualClock } from './contract/manual-clock.js';

let root: string;
let n = 0;
before(async () => {
  root = await mkdtemp(join(tmpdir(), 'parley-blobs-'));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

describeBlobStoreContract('filesystem', async () => {
  const dir = join(root, `store-${++n}`);
  const tokens = new UploadTokens({ clock: systemClock });
  const store = await openFsBlobStore({ root: dir, clock: systemClock, tokens, fsync: n % 2 === 0 });
  return {
    store,
    directDownloads: false,
    // What the relay's PUT route does with a slot (its own tests cover the HTTP side).
    async uploadThroughSlot(slot, body) {
      const redeemed = tokens.redeem(slot.id, slot.headers[UPLOAD_TOKEN_HEADER]);
      if (!redeemed) return 401;
      await store.put(slot.id, Readable.from([Buffer.from(body)]), { size: redeemed.size });
      return 201;
    },
    async cleanup() {
      await store.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
});

describe('filesystem blob store', () => {
  it('keeps blobs as 0600 files in shard directories, with no temporary file left', async () => {
    const dir = join(root, `layout-${++n}`);
    const clock = new ManualClock(1_800_000_000_000);
    const store = await openFsBlobStore({ root: dir, clock, tokens: new UploadTokens({ clock }) });
    const id = newBlobId();
    await store.put(id, Readable.from([randomBytes(100)]), { size: 100 });
    const file = join(dir, id.slice(0, 2), id);
    const st = statSync(file);
    assert.equal(st.size, 100);
    assert.equal(st.mode & 0o777, 0o600);
    assert.equal(statSync(dir).mode & 0o777, 0o700);
    assert.deepEqual(readdirSync(join(dir, 'tmp')), []);
    // The storage time is the injected clock's, so expiry follows it.
    assert.equal((await store.head(id))?.storedAt, 1_800_000_000_000);
    assert.deepEqual(await store.listExpired(1_800_000_000_000, 10), []);
    assert.deepEqual(await store.listExpired(1_800_000_000_001, 10), [id]);
  });

  it('leaves no temporary file after a refused or failed put', async () => {
    const dir = join(root, `tmp-${++n}`);
    const store = await openFsBlobStore({ root: dir, clock: systemClock, tokens: new UploadTokens({ clock: systemClock }) });
    await assert.rejects(store.put(newBlobId(), Readable.from([randomBytes(11)]), { size: 10 }), (e) => isBlobStoreError(e, 'TOO_LARGE'));
    await assert.rejects(store.put(newBlobId(), Readable.from([randomBytes(9)]), { size: 10 }), (e) => isBlobStoreError(e, 'TRUNCATED'));
    assert.deepEqual(readdirSync(join(dir, 'tmp')), []);
    assert.deepEqual(readdirSync(dir), ['tmp']);
  });

  it('deletes leftovers of interrupted uploads when it opens, and ignores foreign files', async () => {
    const dir = join(root, `reopen-${++n}`);
    const tokens = new UploadTokens({ clock: systemClock });
    const first = await openFsBlobStore({ root: dir, clock: systemClock, tokens });
    const id = newBlobId();
    await first.put(id, Readable.from([Buffer.from('kept')]), { size: 4 });
    writeFileSync(join(dir, 'tmp', `${newBlobId()}.abc`), 'half an upload');
    mkdirSync(join(dir, 'zz'));
    writeFileSync(join(dir, 'zz', 'notes.txt'), 'not a blob');
    writeFileSync(join(dir, id.slice(0, 2), 'README'), 'not a blob either');
    const second = await openFsBlobStore({ root: dir, clock: systemClock, tokens });
    assert.deepEqual(readdirSync(join(dir, 'tmp')), []);
    assert.equal((await second.head(id))?.size, 4);
    assert.deepEqual(await second.listExpired(Date.now() + 60_000, 10), [id]);
  });

  it('never reads outside its directory, whatever the id', async () => {
    const dir = join(root, `jail-${++n}`);
    const store = await openFsBlobStore({ root: dir, clock: systemClock, tokens: new UploadTokens({ clock: systemClock }) });
    writeFileSync(join(root, 'secret'), 'outside');
    for (const id of ['../secret', '../../secret', `${'0'.repeat(30)}/..`, join('..', 'secret')]) {
      await assert.rejects(store.get(id as BlobId), (e) => isBlobStoreError(e, 'INVALID_ID'), id);
    }
  });

  it('makes upload slots on its own PUT route with a fresh token each', async () => {
    const clock = new ManualClock(1_800_000_000_000);
    const store = await openFsBlobStore({ root: join(root, `slots-${++n}`), clock, tokens: new UploadTokens({ clock }) });
    const id = newBlobId();
    const a = await store.createUploadSlot(id, { size: 10, expiresAt: clock.now() + 60_000 });
    assert.equal(a.uploadUrl, `/v1/attachments/${id}`);
    assert.match(a.headers[UPLOAD_TOKEN_HEADER]!, /^[A-Za-z0-9_-]{43}$/);
    assert.equal(await store.createDownloadUrl(id, clock.now() + 60_000), undefined);
  });
});

describe('upload tokens', () => {
  it('redeem once, with the right token, before expiry', () => {
    const clock = new ManualClock(1_000_000);
    const tokens = new UploadTokens({ clock });
    const id = newBlobId();
    const token = tokens.issue(id, 123, clock.now() + 1000);
    assert.equal(tokens.redeem(id, undefined), undefined);
    assert.equal(tokens.redeem(id, token.slice(0, -1) + (token.endsWith('A') ? 'B' : 'A')), undefined);
    assert.equal(tokens.redeem(newBlobId(), token), undefined);
    assert.deepEqual(tokens.redeem(id, token), { size: 123 });
    assert.equal(tokens.redeem(id, token), undefined, 'single use');

    const late = newBlobId();
    const lateToken = tokens.issue(late, 1, clock.now() + 1000);
    clock.advance(1000);
    assert.equal(tokens.redeem(late, lateToken), undefined, 'expired');
    assert.equal(tokens.size, 0);
  });

  it('cap outstanding tokens, pruning expired ones first', () => {
    const clock = new ManualClock(1_000_000);
    const tokens = new UploadTokens({ clock, maxOutstanding: 3 });
    for (let i = 0; i < 3; i++) tokens.issue(newBlobId(), 1, clock.now() + 1000);
    assert.throws(() => tokens.issue(newBlobId(), 1, clock.now() + 1000), (e) => isParleyError(e, 'RATE_LIMITED'));
    clock.advance(1000);
    tokens.issue(newBlobId(), 1, clock.now() + 1000);
    assert.equal(tokens.size, 1);
  });
});
