// SPDX-License-Identifier: AGPL-3.0-only
/** PUT /v1/accounts/me/access-key: the sealed-sender access key an account's devices set. */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { parseAci, toBase64Url, type ErrorResponse } from '@parley/protocol';
import { startHarness } from './harness.js';

const dir = mkdtempSync(join(tmpdir(), 'parley-ks-access-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const dbPath = () => join(dir, `keys-${++n}.db`);
const ROUTE = '/v1/accounts/me/access-key';

describe('access keys', () => {
  it('stores the key any device of the account sets, and the directory answers it', async () => {
    const h = await startHarness();
    try {
      const a1 = await h.register('alice');
      const a2 = await h.link(a1);
      const bob = await h.register('bob');
      const key = randomBytes(16);
      const put = await h.call('PUT', ROUTE, { accessKey: toBase64Url(key) }, a1.auth);
      assert.equal(put.status, 204);
      const aliceAci = parseAci(a1.aci);
      const bobAci = parseAci(bob.aci);
      assert.deepEqual(Buffer.from((await h.keyServer.directory.getAccessKeys([aliceAci, bobAci])).get(aliceAci)!), key);
      assert.equal((await h.keyServer.directory.getAccessKeys([bobAci])).size, 0);
      const next = randomBytes(16);
      assert.equal((await h.call('PUT', ROUTE, { accessKey: toBase64Url(next) }, a2.auth)).status, 204);
      assert.deepEqual(Buffer.from((await h.keyServer.directory.getAccessKeys([aliceAci])).get(aliceAci)!), next);
    } finally {
      await h.close();
    }
  });

  it('refuses anything but exactly 16 bytes of unpadded base64url, and changes nothing', async () => {
    const path = dbPath();
    const h = await startHarness({}, path);
    try {
      const a1 = await h.register('alice');
      assert.equal((await h.call('PUT', ROUTE, { accessKey: toBase64Url(randomBytes(16)) }, a1.auth)).status, 204);
      const before = h.snapshot();
      const bad: unknown[] = [
        { accessKey: toBase64Url(randomBytes(15)) },
        { accessKey: toBase64Url(randomBytes(17)) },
        { accessKey: toBase64Url(randomBytes(32)) },
        { accessKey: Buffer.from(randomBytes(16)).toString('base64') }, // padded standard base64
        { accessKey: '' },
        { accessKey: 12 },
        { accessKey: toBase64Url(randomBytes(16)), extra: 1 },
        {},
        '{"accessKey":',
        'null',
      ];
      // 16 bytes encode to 22 characters whose last one carries 4 unused bits: a non-zero one is
      // another encoding of the same bytes and must be refused, not decoded.
      const canonical = toBase64Url(randomBytes(16));
      const lastIndex = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'.indexOf(canonical[21]!);
      bad.push({ accessKey: canonical.slice(0, 21) + 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'[(lastIndex & ~15) | 1] });
      for (const body of bad) {
        const res = await h.call<ErrorResponse>('PUT', ROUTE, body, a1.auth);
        assert.equal(res.status, 400, `body ${JSON.stringify(body)}`);
        assert.equal(res.body.code, 'BAD_REQUEST');
      }
      assert.deepEqual(h.snapshot(), before);
    } finally {
      await h.close();
    }
  });

  it('needs device credentials', async () => {
    const path = dbPath();
    const h = await startHarness({}, path);
    try {
      const a1 = await h.register('alice');
      const before = h.snapshot();
      const none = await h.call<ErrorResponse>('PUT', ROUTE, { accessKey: toBase64Url(randomBytes(16)) });
      assert.equal(none.status, 401);
      const wrong = a1.auth.slice(0, -4) + 'AAA=';
      assert.equal((await h.call('PUT', ROUTE, { accessKey: toBase64Url(randomBytes(16)) }, wrong)).status, 401);
      assert.deepEqual(h.snapshot(), before);
    } finally {
      await h.close();
    }
  });
});
