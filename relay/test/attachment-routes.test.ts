// SPDX-License-Identifier: AGPL-3.0-only
/**
 * The attachment routes on a real listener (port 0) over the filesystem store and, for the
 * redirect path, over S3 (s3rver on loopback): auth, slot limits, the upload token, the size
 * cap, id checks (traversal), ranges and expiry.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import Fastify, { type FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { createInProcessRateLimiterBackend, keyServerErrorHandler } from '@parley/keyserver';
import { encryptedAttachmentSize } from '@parley/crypto';
import { ParleyError, type AttachmentSlotResponse } from '@parley/protocol';
import { parseRangeHeader, registerAttachmentRoutes, UPLOAD_SLOT_TTL_MS, type AttachmentRoutes, type AttachmentSettings } from '../src/attachments/attachment-routes.js';
import { UPLOAD_TOKEN_HEADER, UploadTokens } from '../src/attachments/upload-tokens.js';
import type { BlobStore } from '../src/ports/blob-store.js';
import { openFsBlobStore } from '../src/storage/fs-blob-store.js';
import { openS3BlobStore } from '../src/storage/s3-blob-store.js';
import { ManualClock } from './contract/manual-clock.js';
import { startS3TestServer, type S3TestServer } from './support/s3-test-server.js';

const ALICE = 'Basic YWxpY2U=';
const BOB = 'Basic Ym9i';
const DAY = 86_400_000;

const directory = {
  async authenticate(authorization: string | undefined) {
    if (authorization === ALICE) return { aci: '11111111-1111-4111-8111-111111111111', deviceId: 1 };
    if (authorization === BOB) return { aci: '22222222-2222-4222-8222-222222222222', deviceId: 1 };
    throw new ParleyError('UNAUTHORIZED', 'bad credentials');
  },
};

interface Served {
  readonly app: FastifyInstance;
  readonly url: string;
  readonly store: BlobStore;
  readonly routes: AttachmentRoutes;
  readonly root: string;
}

async function serve(clock: ManualClock, store: BlobStore, tokens: UploadTokens, root: string, settings: Partial<AttachmentSettings> = {}): Promise<Served> {
  const app = Fastify({ bodyLimit: 512 * 1024 });
  app.setErrorHandler(keyServerErrorHandler);
  const routes = registerAttachmentRoutes(app, {
    storage: { store, tokens },
    directory,
    clock,
    log: pino({ level: 'silent' }),
    config: { maxAttachmentBytes: 1024 * 1024, attachmentSlotsPerHour: 50, retentionMs: 30 * DAY, expirySweepIntervalMs: 3_600_000, ...settings },
    limiters: createInProcessRateLimiterBackend({ clock }),
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const addr = app.server.address();
  const url = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
  return { app, url, store, routes, root };
}

async function slot(s: Served, size: number, auth = ALICE): Promise<AttachmentSlotResponse> {
  const res = await fetch(`${s.url}/v1/attachments`, { method: 'POST', headers: { authorization: auth, 'content-type': 'application/json' }, body: JSON.stringify({ size }) });
  assert.equal(res.status, 200, await res.clone().text());
  return (await res.json()) as AttachmentSlotResponse;
}

async function put(s: Served, path: string, body: Uint8Array, headers: Record<string, string> = {}): Promise<{ status: number; json: { code?: string } }> {
  const res = await fetch(s.url + path, { method: 'PUT', headers: { 'content-type': 'application/octet-stream', ...headers }, body });
  const text = await res.text();
  return { status: res.status, json: text ? (JSON.parse(text) as { code?: string }) : {} };
}

/** A raw request, for what fetch will not send (chunked oversize bodies, unnormalized paths). */
function raw(
  s: Served,
  options: { method: string; path: string; headers?: Record<string, string>; chunks?: Buffer[] },
): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const u = new URL(s.url);
    const req = request({ host: u.hostname, port: u.port, method: options.method, path: options.path, headers: options.headers ?? {} }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (c: Buffer) => parts.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(parts) }));
      res.on('error', reject);
    });
    // The relay may answer and close before the whole body went out; that is the point.
    req.on('error', (err) => reject(err));
    for (const c of options.chunks ?? []) req.write(c);
    req.end();
  });
}

/** Files of the store, apart from the (empty) tmp directory. */
function blobFiles(root: string): string[] {
  return readdirSync(root, { recursive: true, withFileTypes: true })
    .filter((d) => d.isFile())
    .map((d) => join(d.parentPath, d.name));
}

describe('attachment routes (filesystem store)', () => {
  let dir: string;
  let clock: ManualClock;
  let s: Served;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'parley-attach-routes-'));
    clock = new ManualClock(Date.UTC(2027, 0, 15, 8));
    const tokens = new UploadTokens({ clock });
    s = await serve(clock, await openFsBlobStore({ root: dir, clock, tokens }), tokens, dir);
  });
  afterEach(async () => {
    await s.app.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('hands out upload slots only to authenticated devices', async () => {
    for (const authorization of [undefined, 'Basic bm9ib2R5', 'Bearer x']) {
      const res = await fetch(`${s.url}/v1/attachments`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...(authorization ? { authorization } : {}) },
        body: JSON.stringify({ size: 1000 }),
      });
      assert.equal(res.status, 401);
      assert.equal(((await res.json()) as { code: string }).code, 'UNAUTHORIZED');
    }
    // Credentials are checked before the body: a malformed body from a stranger is still 401.
    const res = await fetch(`${s.url}/v1/attachments`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"size":"x"}' });
    assert.equal(res.status, 401);
  });

  it('gives a slot on its own PUT route with a token, for exactly the size asked', async () => {
    const got = await slot(s, 5000);
    assert.match(got.id, /^[0-9a-f]{32}$/);
    assert.equal(got.uploadUrl, `/v1/attachments/${got.id}`);
    assert.match(got.headers[UPLOAD_TOKEN_HEADER]!, /^[A-Za-z0-9_-]{43}$/);
    assert.equal(got.size, 5000);
    assert.equal(got.expiresAt, clock.now() + UPLOAD_SLOT_TTL_MS);
    assert.notEqual((await slot(s, 5000)).id, got.id);
  });

  it('refuses slots over the cap, of no size, and bodies with anything but a size (no URLs taken)', async () => {
    const post = async (body: unknown) =>
      fetch(`${s.url}/v1/attachments`, { method: 'POST', headers: { authorization: ALICE, 'content-type': 'application/json' }, body: JSON.stringify(body) });
    // The cap is on files: a 1 MiB file's encrypted blob is accepted, one byte more is not.
    const cap = encryptedAttachmentSize(1024 * 1024);
    assert.equal((await post({ size: cap })).status, 200);
    const over = await post({ size: cap + 1 });
    assert.equal(over.status, 413);
    assert.equal(((await over.json()) as { code: string }).code, 'FRAME_TOO_LARGE');
    for (const body of [{ size: 0 }, { size: -1 }, { size: 1.5 }, { size: '1000' }, {}, { size: 1000, url: 'http://169.254.169.254/' }, { size: 1000, id: '../x' }]) {
      const res = await post(body);
      assert.equal(res.status, 400, JSON.stringify(body));
      assert.equal(((await res.json()) as { code: string }).code, 'BAD_REQUEST');
    }
    assert.deepEqual(blobFiles(dir), []);
  });

  it('rate limits slots per device', async () => {
    await s.app.close();
    const tokens = new UploadTokens({ clock });
    s = await serve(clock, await openFsBlobStore({ root: dir, clock, tokens }), tokens, dir, { attachmentSlotsPerHour: 3 });
    for (let i = 0; i < 3; i++) await slot(s, 100);
    const res = await fetch(`${s.url}/v1/attachments`, { method: 'POST', headers: { authorization: ALICE, 'content-type': 'application/json' }, body: '{"size":100}' });
    assert.equal(res.status, 429);
    const body = (await res.json()) as { code: string; retryAfterMs: number };
    assert.equal(body.code, 'RATE_LIMITED');
    assert.ok(body.retryAfterMs > 0);
    // Another device has its own bucket.
    await slot(s, 100, BOB);
  });

  it('takes an upload once, with its token, and serves it back', async () => {
    const bytes = randomBytes(5000);
    const got = await slot(s, bytes.length);
    assert.equal((await put(s, got.uploadUrl, bytes)).status, 401, 'no token');
    assert.equal((await put(s, got.uploadUrl, bytes, { [UPLOAD_TOKEN_HEADER]: 'A'.repeat(43) })).status, 401, 'wrong token');
    const ok = await put(s, got.uploadUrl, bytes, got.headers);
    assert.equal(ok.status, 201);
    const again = await put(s, got.uploadUrl, randomBytes(5000), got.headers);
    assert.equal(again.status, 401, 'single use');
    assert.equal(again.json.code, 'UNAUTHORIZED');
    const res = await fetch(`${s.url}${got.uploadUrl}`, { headers: { authorization: BOB } });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-length'), '5000');
    assert.equal(res.headers.get('accept-ranges'), 'bytes');
    assert.deepEqual(Buffer.from(await res.arrayBuffer()), bytes);
  });

  it('refuses a token of another slot, and an expired slot', async () => {
    const a = await slot(s, 10);
    const b = await slot(s, 10);
    assert.equal((await put(s, a.uploadUrl, randomBytes(10), b.headers)).status, 401);
    clock.advance(UPLOAD_SLOT_TTL_MS);
    assert.equal((await put(s, a.uploadUrl, randomBytes(10), a.headers)).status, 401);
    assert.equal((await put(s, b.uploadUrl, randomBytes(10), b.headers)).status, 401);
    assert.deepEqual(blobFiles(dir), []);
  });

  it('answers an oversize upload with 413 and stores nothing, by Content-Length or while streaming', async () => {
    const declared = await slot(s, 1000);
    const tooBig = await put(s, declared.uploadUrl, randomBytes(1001), declared.headers);
    assert.equal(tooBig.status, 413);
    assert.equal(tooBig.json.code, 'FRAME_TOO_LARGE');
    const chunked = await slot(s, 1000);
    // No Content-Length: the relay counts while it streams and stops at the slot's size.
    const res = await raw(s, {
      method: 'PUT',
      path: chunked.uploadUrl,
      headers: { ...chunked.headers, 'content-type': 'application/octet-stream', 'transfer-encoding': 'chunked' },
      chunks: [randomBytes(600), randomBytes(600)],
    });
    assert.equal(res.status, 413);
    for (const id of [declared.id, chunked.id]) {
      const get = await fetch(`${s.url}/v1/attachments/${id}`, { headers: { authorization: ALICE } });
      assert.equal(get.status, 404);
    }
    assert.deepEqual(blobFiles(dir), []);
  });

  it('answers a short upload with 400 and stores nothing', async () => {
    const got = await slot(s, 1000);
    const short = await put(s, got.uploadUrl, randomBytes(999), got.headers);
    assert.equal(short.status, 400);
    assert.equal(short.json.code, 'BAD_REQUEST');
    assert.deepEqual(blobFiles(dir), []);
  });

  it('refuses malformed ids and traversal attempts on every route, reading and writing nothing', async () => {
    const got = await slot(s, 4);
    for (const path of [
      '/v1/attachments/..%2F..%2F..%2Fetc%2Fpasswd',
      '/v1/attachments/%2e%2e',
      `/v1/attachments/${got.id.toUpperCase()}`,
      `/v1/attachments/${got.id}0`,
      `/v1/attachments/${got.id.slice(1)}%00`,
      '/v1/attachments/http%3A%2F%2F169.254.169.254%2Flatest',
    ]) {
      const g = await raw(s, { method: 'GET', path, headers: { authorization: ALICE } });
      assert.equal(g.status, 400, `GET ${path}`);
      const p = await raw(s, { method: 'PUT', path, headers: { ...got.headers, 'content-type': 'application/octet-stream' }, chunks: [Buffer.from('data')] });
      assert.equal(p.status, 400, `PUT ${path}`);
    }
    // Unencoded dots never reach a handler (no such route).
    for (const path of ['/v1/attachments/../../etc/passwd', '/v1/attachments/../attachments/x']) {
      const g = await raw(s, { method: 'GET', path, headers: { authorization: ALICE } });
      assert.ok(g.status === 404 || g.status === 400, `GET ${path}: ${g.status}`);
    }
    assert.deepEqual(blobFiles(dir), []);
    // The slot itself is still usable: failed attempts on other paths did not burn its token.
    assert.equal((await put(s, got.uploadUrl, Buffer.from('data'), got.headers)).status, 201);
  });

  it('needs device credentials to download, and answers 404 for unknown ids', async () => {
    const bytes = randomBytes(100);
    const got = await slot(s, bytes.length);
    await put(s, got.uploadUrl, bytes, got.headers);
    assert.equal((await fetch(`${s.url}${got.uploadUrl}`)).status, 401);
    assert.equal((await fetch(`${s.url}${got.uploadUrl}`, { headers: { authorization: 'Basic eA==' } })).status, 401);
    const missing = await fetch(`${s.url}/v1/attachments/${'0'.repeat(32)}`, { headers: { authorization: ALICE } });
    assert.equal(missing.status, 404);
    assert.equal(((await missing.json()) as { code: string }).code, 'NOT_FOUND');
  });

  it('serves byte ranges for resumed downloads', async () => {
    const bytes = randomBytes(10_000);
    const got = await slot(s, bytes.length);
    await put(s, got.uploadUrl, bytes, got.headers);
    const get = (range?: string) => fetch(`${s.url}${got.uploadUrl}`, { headers: { authorization: ALICE, ...(range ? { range } : {}) } });
    const from = await get('bytes=4000-');
    assert.equal(from.status, 206);
    assert.equal(from.headers.get('content-range'), 'bytes 4000-9999/10000');
    assert.equal(from.headers.get('content-length'), '6000');
    assert.deepEqual(Buffer.from(await from.arrayBuffer()), bytes.subarray(4000));
    const mid = await get('bytes=10-19');
    assert.equal(mid.status, 206);
    assert.deepEqual(Buffer.from(await mid.arrayBuffer()), bytes.subarray(10, 20));
    const suffix = await get('bytes=-100');
    assert.equal(suffix.headers.get('content-range'), 'bytes 9900-9999/10000');
    assert.deepEqual(Buffer.from(await suffix.arrayBuffer()), bytes.subarray(9900));
    const past = await get('bytes=10000-');
    assert.equal(past.status, 416);
    assert.equal(past.headers.get('content-range'), 'bytes */10000');
    assert.equal(((await past.json()) as { code: string }).code, 'RANGE_NOT_SATISFIABLE');
    // Ranges this relay does not serve are answered with the whole blob.
    for (const range of ['bytes=0-1,5-6', 'items=0-1', 'bytes=9-3', 'bytes=x-']) {
      const whole = await get(range);
      assert.equal(whole.status, 200, range);
      assert.equal((await whole.arrayBuffer()).byteLength, 10_000);
    }
  });

  it('deletes blobs after the retention', async () => {
    const got = await slot(s, 10);
    await put(s, got.uploadUrl, randomBytes(10), got.headers);
    clock.advance(30 * DAY - 1);
    await s.routes.sweep();
    assert.equal((await fetch(`${s.url}${got.uploadUrl}`, { headers: { authorization: ALICE } })).status, 200);
    clock.advance(2);
    await s.routes.sweep();
    assert.equal((await fetch(`${s.url}${got.uploadUrl}`, { headers: { authorization: ALICE } })).status, 404);
    assert.deepEqual(blobFiles(dir), []);
  });
});

describe('attachment routes (S3 store)', () => {
  let s3: S3TestServer;
  let s: Served;
  let clock: ManualClock;
  before(async () => {
    s3 = await startS3TestServer();
  });
  after(async () => {
    await s3.stop();
  });
  beforeEach(async () => {
    clock = new ManualClock(Date.now());
    const store = openS3BlobStore({ bucket: await s3.createBucket(), endpoint: s3.endpoint, forcePathStyle: true, credentials: s3.credentials, clock });
    s = await serve(clock, store, new UploadTokens({ clock }), '');
  });
  afterEach(async () => {
    await s.app.close();
  });

  it('hands out pre-signed PUT URLs and redirects downloads to pre-signed GETs', async () => {
    const bytes = randomBytes(3000);
    const got = await slot(s, bytes.length);
    assert.ok(got.uploadUrl.startsWith(`${s3.endpoint}/`), got.uploadUrl);
    assert.deepEqual(got.headers, {});
    const up = await fetch(got.uploadUrl, { method: 'PUT', headers: { 'content-length': String(bytes.length) }, body: bytes });
    assert.equal(up.status, 200);
    const res = await fetch(`${s.url}/v1/attachments/${got.id}`, { headers: { authorization: ALICE }, redirect: 'manual' });
    assert.equal(res.status, 302);
    const location = res.headers.get('location')!;
    assert.ok(location.startsWith(`${s3.endpoint}/`), location);
    const part = await fetch(location, { headers: { range: 'bytes=1000-' } });
    assert.equal(part.status, 206);
    assert.deepEqual(Buffer.from(await part.arrayBuffer()), bytes.subarray(1000));
    // The relay's own upload endpoint takes nothing when the bytes go to S3.
    assert.equal((await put(s, `/v1/attachments/${got.id}`, bytes, { [UPLOAD_TOKEN_HEADER]: 'x' })).status, 401);
    // Unknown ids are 404 from the relay, not a redirect to an S3 error.
    assert.equal((await fetch(`${s.url}/v1/attachments/${'1'.repeat(32)}`, { headers: { authorization: ALICE }, redirect: 'manual' })).status, 404);
    assert.equal((await fetch(`${s.url}/v1/attachments/${got.id}`, { redirect: 'manual' })).status, 401);
  });
});

describe('Range header parsing', () => {
  it('takes single byte ranges and ignores the rest', () => {
    assert.equal(parseRangeHeader(undefined, 100), undefined);
    assert.deepEqual(parseRangeHeader('bytes=0-', 100), { start: 0, end: 99 });
    assert.deepEqual(parseRangeHeader('bytes=10-20', 100), { start: 10, end: 20 });
    assert.deepEqual(parseRangeHeader('bytes=90-500', 100), { start: 90, end: 99 });
    assert.deepEqual(parseRangeHeader('bytes=-10', 100), { start: 90, end: 99 });
    assert.deepEqual(parseRangeHeader('bytes=-500', 100), { start: 0, end: 99 });
    assert.equal(parseRangeHeader('bytes=100-', 100), 'unsatisfiable');
    assert.equal(parseRangeHeader('bytes=-0', 100), 'unsatisfiable');
    assert.equal(parseRangeHeader('bytes=0-', 0), 'unsatisfiable');
    for (const h of ['bytes=', 'bytes=-', 'bytes=5-1', 'bytes=1-2,3-4', 'pages=1-2', 'bytes=a-b', `bytes=${'9'.repeat(20)}-`]) {
      assert.equal(parseRangeHeader(h, 100), undefined, h);
    }
  });
});
