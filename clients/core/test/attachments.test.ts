// SPDX-License-Identifier: AGPL-3.0-only
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { AttachmentPointerSchema, create, ParleyError, type Aci, type DeviceId, type MessageId } from '@parley/protocol';
import {
  AttachmentStore,
  attachmentsFromPointers,
  ClientError,
  openBlobDownload,
  sanitizeContentType,
  sanitizeFileName,
  type ClientStore,
} from '../src/index.js';
import { newAci, newMessageId, openStore } from './store-fixtures.js';

function file(over: Partial<{ blobId: string; key: Uint8Array; digest: Uint8Array; size: number; fileName: string; localPath: string }> = {}) {
  return {
    blobId: randomBytes(16).toString('hex'),
    domain: 'example.org',
    key: new Uint8Array(randomBytes(64)),
    digest: new Uint8Array(randomBytes(32)),
    size: 1234,
    contentType: 'image/png',
    fileName: 'a.png',
    ...over,
  };
}

function storedMessage(store: ClientStore, sender: Aci = newAci()): { sender: Aci; id: MessageId } {
  const conversation = store.messages.conversationWith({ aci: sender, address: `peer${Math.floor(Math.random() * 1e9)}@example.org` });
  const id = newMessageId();
  store.messages.addMessage({ conversationId: conversation.id, id, senderAci: sender, senderDevice: 1 as DeviceId, direction: 'in', body: 'see files', sentAt: 1, lamport: 1 });
  return { sender, id };
}

describe('attachment store (migration 0003)', () => {
  it('keeps a message’s files in order with their keys, and where this device keeps them', () => {
    const store = openStore();
    const files = new AttachmentStore(store.database);
    const { sender, id } = storedMessage(store);
    const a = file({ fileName: 'first.png' });
    const b = file({ fileName: 'second.pdf', size: 0 });
    files.add(sender, id, [a, b]);
    const got = files.forMessage(sender, id);
    assert.deepEqual(
      got.map((f) => [f.index, f.fileName, f.size]),
      [
        [0, 'first.png', 1234],
        [1, 'second.pdf', 0],
      ],
    );
    assert.deepEqual(got[0]!.key, a.key);
    assert.deepEqual(got[0]!.digest, a.digest);
    assert.equal(got[0]!.blobId, a.blobId);
    assert.equal(got[0]!.localPath, undefined);
    assert.equal(files.setLocalPath(sender, id, 1, '/tmp/second.pdf'), true);
    assert.equal(files.forMessage(sender, id)[1]!.localPath, '/tmp/second.pdf');
    assert.equal(files.setLocalPath(sender, id, 7, '/tmp/x'), false);
    assert.deepEqual(
      files.byMessageId(id).map((f) => f.senderAci),
      [sender, sender],
    );
    // A redelivery stores nothing twice.
    files.add(sender, id, [file({ fileName: 'other.png' })]);
    assert.equal(files.forMessage(sender, id)[0]!.fileName, 'first.png');
  });

  it('deletes the files with their message, and refuses files of no message', () => {
    const store = openStore();
    const files = new AttachmentStore(store.database);
    const { sender, id } = storedMessage(store);
    files.add(sender, id, [file()]);
    store.messages.deleteMessage({ senderAci: sender, id });
    assert.deepEqual(files.forMessage(sender, id), []);
    assert.throws(() => files.add(newAci(), newMessageId(), [file()]), (e) => ClientError.is(e, 'NOT_FOUND'));
  });

  it('refuses malformed pointers', () => {
    const store = openStore();
    const files = new AttachmentStore(store.database);
    const { sender, id } = storedMessage(store);
    for (const bad of [file({ blobId: '../etc' }), file({ key: new Uint8Array(32) }), file({ digest: new Uint8Array(31) }), file({ size: -1 })]) {
      assert.throws(() => files.add(sender, id, [bad]), (e) => ClientError.is(e, 'INVALID_ARGUMENT'));
    }
    assert.deepEqual(files.forMessage(sender, id), []);
  });
});

describe('received pointers', () => {
  it('reduce file names to a harmless base name', () => {
    assert.equal(sanitizeFileName('../../etc/passwd'), 'passwd');
    assert.equal(sanitizeFileName('C:\\Users\\bob\\evil.exe'), 'evil.exe');
    assert.equal(sanitizeFileName('.bashrc'), 'bashrc');
    assert.equal(sanitizeFileName('..'), 'attachment');
    assert.equal(sanitizeFileName(''), 'attachment');
    assert.equal(sanitizeFileName('/'), 'attachment');
    assert.equal(sanitizeFileName('re\u202eport\u0007\n.pdf'), 'report.pdf');
    assert.equal(sanitizeFileName('a:b*c?.txt'), 'abc.txt');
    const long = sanitizeFileName(`${'x'.repeat(500)}.jpeg`);
    assert.equal(long.length, 120);
    assert.ok(long.endsWith('.jpeg'));
  });

  it('keep plain MIME types only', () => {
    assert.equal(sanitizeContentType('Image/PNG'), 'image/png');
    assert.equal(sanitizeContentType('application/vnd.api+json'), 'application/vnd.api+json');
    for (const bad of ['', 'text', 'text/html; charset=utf-8', '../..', 'a/b\nX-Evil: 1', `a/${'b'.repeat(200)}`]) {
      assert.equal(sanitizeContentType(bad), 'application/octet-stream', bad);
    }
  });

  it('drop malformed pointers and keep the rest in order', () => {
    const good = (name: string) =>
      create(AttachmentPointerSchema, { blobId: randomBytes(16).toString('hex'), key: randomBytes(64), digest: randomBytes(32), size: 10n, contentType: 'text/plain', fileName: name, domain: 'Example.org' });
    const got = attachmentsFromPointers([
      good('one.txt'),
      create(AttachmentPointerSchema, { ...good('bad-id.txt'), blobId: '../../x' }),
      create(AttachmentPointerSchema, { ...good('short-key.txt'), key: randomBytes(63) }),
      create(AttachmentPointerSchema, { ...good('huge.txt'), size: 2n ** 60n }),
      good('../two.txt'),
    ]);
    assert.deepEqual(
      got.map((a) => a.fileName),
      ['one.txt', 'two.txt'],
    );
    assert.equal(got[0]!.domain, 'example.org');
  });
});

describe('blob downloads', () => {
  it('follow the relay’s redirect without the device’s credentials, with the same range', async () => {
    const seen: Array<{ url: string; headers: Record<string, string> }> = [];
    const fakeFetch = (async (url: string, init: RequestInit) => {
      seen.push({ url, headers: { ...(init.headers as Record<string, string>) } });
      if (seen.length === 1) return new Response(null, { status: 302, headers: { location: 'https://objects.example.net/b/attachments/x?X-Amz-Signature=s' } });
      return new Response(new Uint8Array(10), { status: 206, headers: { 'content-range': 'bytes 90-99/100', 'content-length': '10' } });
    }) as unknown as typeof fetch;
    const got = await openBlobDownload({ url: 'https://relay.example.org/v1/attachments/x', authorization: 'Basic c2VjcmV0', offset: 90, fetch: fakeFetch });
    assert.equal(got.kind, 'bytes');
    assert.deepEqual(got.kind === 'bytes' ? [got.start, got.total] : [], [90, 100]);
    assert.equal(seen[0]!.headers.authorization, 'Basic c2VjcmV0');
    assert.equal(seen[0]!.headers.range, 'bytes=90-');
    assert.equal(seen[1]!.url, 'https://objects.example.net/b/attachments/x?X-Amz-Signature=s');
    assert.equal(seen[1]!.headers.authorization, undefined);
    assert.equal(seen[1]!.headers.range, 'bytes=90-');
  });

  it('refuse a redirect anywhere but http(s), and map refusals to wire codes', async () => {
    for (const location of ['file:///etc/passwd', 'javascript:alert(1)', '']) {
      const fakeFetch = (async () => new Response(null, { status: 302, headers: location ? { location } : {} })) as unknown as typeof fetch;
      await assert.rejects(openBlobDownload({ url: 'https://relay.example.org/v1/attachments/x', authorization: 'Basic x', offset: 0, fetch: fakeFetch }), (e: unknown) => e instanceof ParleyError && e.code === 'BAD_REQUEST');
    }
    const gone = (async () => new Response('<Error><Code>NoSuchKey</Code></Error>', { status: 404 })) as unknown as typeof fetch;
    await assert.rejects(openBlobDownload({ url: 'https://relay.example.org/v1/attachments/x', authorization: 'Basic x', offset: 0, fetch: gone }), (e: unknown) => e instanceof ParleyError && e.code === 'NOT_FOUND');
    const past = (async () => new Response('{}', { status: 416, headers: { 'content-range': 'bytes */100' } })) as unknown as typeof fetch;
    assert.deepEqual(await openBlobDownload({ url: 'https://relay.example.org/v1/attachments/x', authorization: 'Basic x', offset: 100, fetch: past }), { kind: 'past-end', total: 100 });
  });
});
