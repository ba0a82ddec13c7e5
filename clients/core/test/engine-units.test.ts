// SPDX-License-Identifier: AGPL-3.0-only
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { createMemoryStores, generateIdentity, verifyPreKeySignature } from '@parley/crypto';
import { fromBase64Url } from '@parley/protocol';
import { ClientError } from '../src/errors.js';
import { initialDeviceKeys, maintenanceUpload, PREKEY_BATCH, REFILL_BELOW, ROTATE_AFTER_MS } from '../src/engine/account-keys.js';
import { decodeContent, encodeContent, PADDING_BLOCK_BYTES, withProfileKey } from '../src/engine/content-codec.js';
import { writeExport } from '../src/engine/export-archive.js';
import { formatLinkCode, parseLinkCode } from '../src/engine/link-code.js';
import type { MessageView } from '../src/engine/client-api.js';

describe('link codes', () => {
  const code = { relay: 'http://127.0.0.1:7070', address: 'AbCdEfGhIjKlMnOpQrStUvWx', publicKey: new Uint8Array(33).fill(5) };
  it('round-trip', () => {
    const text = formatLinkCode(code);
    assert.match(text, /^parley-link:[A-Za-z0-9_-]+$/);
    assert.deepEqual(parseLinkCode(`  ${text}\n`), code);
  });
  for (const bad of ['', 'parley-link:', 'parley-link:!!!', 'https://example.org', formatLinkCode(code).slice(0, 40), formatLinkCode({ ...code, publicKey: new Uint8Array(32) }), formatLinkCode({ ...code, relay: 'ftp://x' }), formatLinkCode({ ...code, address: 'short' })]) {
    it(`refuses ${JSON.stringify(bad.slice(0, 30))} with INVALID_LINK_CODE`, () => {
      assert.throws(() => parseLinkCode(bad), (e) => e instanceof ClientError && e.code === 'INVALID_LINK_CODE');
    });
  }
});

describe('content padding', () => {
  it('pads every content to a multiple of the block and decodes it back', () => {
    for (const n of [0, 1, 50, 120, 140, 150, 159, 160, 161, 300, 1000, 5000]) {
      const text = 'x'.repeat(n);
      const bytes = encodeContent({ body: { case: 'data', value: { messageId: new Uint8Array(16), lamport: 3n, timestamp: 1n, text } } });
      assert.equal(bytes.length % PADDING_BLOCK_BYTES, 0, `length ${bytes.length} for ${n} characters`);
      const back = decodeContent(bytes);
      assert.equal(back?.body.case, 'data');
      assert.equal(back?.body.case === 'data' && back.body.value.text, text);
      // The padding is a field of its own that fills the block exactly (one- and two-byte lengths).
      assert.ok(back!.padding.length > 0 && back!.padding.length < PADDING_BLOCK_BYTES + 3);
      assert.equal(encodeContent({ ...back!, padding: new Uint8Array(0) }).length, bytes.length);
    }
  });
  it('decodes at every length across two blocks, the padding a valid field each time', () => {
    for (let n = 0; n < 2 * PADDING_BLOCK_BYTES; n++) {
      const bytes = encodeContent({ body: { case: 'data', value: { messageId: new Uint8Array(16), lamport: 3n, timestamp: 1n, text: 'y'.repeat(n) } } });
      const back = decodeContent(bytes);
      assert.equal(back?.body.case === 'data' && back.body.value.text.length, n, `${n} characters`);
      // Whole blocks, except where 129 bytes are left to fill (no tag and length can take them).
      assert.ok(bytes.length % PADDING_BLOCK_BYTES === 0 || bytes.length % PADDING_BLOCK_BYTES === PADDING_BLOCK_BYTES - 1, `length ${bytes.length} for ${n}`);
    }
  });
  it('sets, replaces and removes the profile key without touching the rest, padded anew', () => {
    const key = new Uint8Array(32).fill(1);
    const other = new Uint8Array(32).fill(2);
    const data = { messageId: new Uint8Array(16).fill(9), lamport: 3n, timestamp: 1n, text: 'hello' };
    const plain = encodeContent({ body: { case: 'data', value: data }, presenceToken: new Uint8Array(16).fill(5) });
    const withKey = withProfileKey(plain, key)!;
    const back = decodeContent(withKey)!;
    assert.deepEqual(back.profileKey, key);
    assert.deepEqual(back.presenceToken, new Uint8Array(16).fill(5));
    assert.equal(back.body.case === 'data' && back.body.value.text, 'hello');
    assert.deepEqual(back.body.case === 'data' && back.body.value.messageId, data.messageId);
    assert.equal(withKey.length % PADDING_BLOCK_BYTES, 0);
    assert.equal(withProfileKey(withKey, key), withKey, 'the same bytes when the key is there already');
    assert.deepEqual(decodeContent(withProfileKey(withKey, other)!)!.profileKey, other);
    const removed = withProfileKey(withKey, undefined)!;
    assert.equal(decodeContent(removed)!.profileKey.length, 0);
    assert.equal(decodeContent(removed)!.body.case, 'data');
    assert.equal(withProfileKey(plain, undefined), plain);
    assert.equal(withProfileKey(plain, new Uint8Array(0)), plain);
    assert.equal(withProfileKey(Uint8Array.of(0x0a, 0x05, 0x01), key), undefined, 'a truncated message');
  });
  it('reads garbage as nothing', () => {
    assert.equal(decodeContent(Uint8Array.of(0xff, 0xff, 0xff)), undefined);
    assert.equal(decodeContent(new Uint8Array(0)), undefined);
  });
});

describe('key maintenance', () => {
  it('uploads signed keys and a batch of one-time keys of each kind at first, every signature valid', async () => {
    const id = generateIdentity();
    const stores = createMemoryStores(id);
    const { keys, state } = await initialDeviceKeys(stores, id.identityKeyPair, 1000);
    assert.equal(keys.preKeys?.length, PREKEY_BATCH);
    assert.equal(keys.kyberPreKeys?.length, PREKEY_BATCH);
    const ok = (k: { publicKey: string; signature: string }) => verifyPreKeySignature(id.identityKey, fromBase64Url(k.publicKey)!, fromBase64Url(k.signature)!);
    assert.ok(ok(keys.signedPreKey) && ok(keys.lastResortKyberPreKey) && keys.kyberPreKeys!.every(ok));
    const kyberIds = [keys.lastResortKyberPreKey.keyId, ...keys.kyberPreKeys!.map((k) => k.keyId)];
    assert.equal(new Set(kyberIds).size, kyberIds.length, 'the last-resort key and one-time Kyber keys never share an id');
    assert.equal(state.signedPreKeyCreatedAt, 1000);
  });

  it('does nothing while counts are high and keys are fresh, refills below the threshold, rotates after a week', async () => {
    const id = generateIdentity();
    const stores = createMemoryStores(id);
    const { state } = await initialDeviceKeys(stores, id.identityKeyPair, 0);
    assert.equal(await maintenanceUpload(stores, id.identityKeyPair, state, { preKeys: 50, kyberPreKeys: 50 }, 1000), undefined);
    const refill = await maintenanceUpload(stores, id.identityKeyPair, state, { preKeys: REFILL_BELOW - 1, kyberPreKeys: 50 }, 1000);
    assert.equal(refill?.upload.preKeys?.length, PREKEY_BATCH);
    assert.equal(refill?.upload.kyberPreKeys, undefined);
    assert.equal(refill?.upload.signedPreKey, undefined);
    assert.ok(refill!.state.nextPreKeyId > state.nextPreKeyId, 'ids move on');
    const rotate = await maintenanceUpload(stores, id.identityKeyPair, state, { preKeys: 50, kyberPreKeys: 50 }, ROTATE_AFTER_MS);
    assert.ok(rotate?.upload.signedPreKey && rotate.upload.lastResortKyberPreKey);
    assert.notEqual(rotate.upload.signedPreKey.keyId, 1);
    assert.equal(rotate.state.signedPreKeyCreatedAt, ROTATE_AFTER_MS);
  });
});

describe('export', () => {
  const m = (conversation: string, text: string, i: number): MessageView => ({
    id: i.toString(16).padStart(32, '0'),
    conversation,
    direction: i % 2 ? 'in' : 'out',
    sender: i % 2 ? conversation : 'me@localhost',
    senderDevice: 1,
    text,
    kind: 'text',
    sentAt: 1_800_000_000_000 + i,
    receivedAt: 1_800_000_000_000 + i,
    lamport: i,
    status: 'sent',
  });
  it('writes one file per conversation with every message, owner-readable only', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'parley-export-'));
    const messages = [m('bob@localhost', 'hello *bob*', 1), m('bob@localhost', 'line one\nline two', 2), m('carol@localhost', 'hi carol', 3)];
    const progress: number[] = [];
    const jsonl = await writeExport(messages, { format: 'jsonl', outDir: join(dir, 'j') }, (d) => progress.push(d));
    assert.equal(jsonl.messages, 3);
    assert.equal(jsonl.files.length, 2);
    const bob = readFileSync(jsonl.files[0]!, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as MessageView);
    assert.deepEqual(bob.map((x) => x.text), ['hello *bob*', 'line one\nline two']);
    assert.equal(statSync(jsonl.files[0]!).mode & 0o077, 0);
    assert.deepEqual(progress, [2, 3]);
    const md = await writeExport(messages, { format: 'md', outDir: join(dir, 'm') }, () => {});
    const text = readFileSync(md.files[1]!, 'utf8');
    assert.match(text, /^# carol@localhost/);
    assert.match(text, /hi carol/);
  });
});
