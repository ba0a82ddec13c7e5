// SPDX-License-Identifier: AGPL-3.0-only
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { fromBase64Url, formatBasicAuth, isParleyError, parseBasicAuth, toBase64, toBase64Url, utf8 } from '../src/index.js';

describe('base64url', () => {
  it('round-trips every length and matches Node', () => {
    for (let n = 0; n < 70; n++) {
      const bytes = Uint8Array.from({ length: n }, (_, i) => (i * 37 + n) & 0xff);
      const text = toBase64Url(bytes);
      assert.equal(text, Buffer.from(bytes).toString('base64url'));
      assert.equal(toBase64(bytes), Buffer.from(bytes).toString('base64'));
      assert.deepEqual(fromBase64Url(text), bytes);
    }
  });
  it('refuses padding, standard alphabet, impossible lengths and non-canonical tails', () => {
    for (const t of ['AA==', 'A+B/', 'A', 'AB!C', 'AR']) assert.equal(fromBase64Url(t), undefined, t);
  });
});

describe('basic auth', () => {
  const aci = '3f2a0d4e-8b1c-4c6f-9e2a-7d5b1c0a9e8f';
  const secret = new Uint8Array(32).fill(9);
  it('round-trips credentials', () => {
    const c = parseBasicAuth(formatBasicAuth(aci, 3, secret));
    assert.equal(c.aci, aci);
    assert.equal(c.deviceId, 3);
    assert.deepEqual(c.secret, secret);
  });
  const b64 = (s: string) => 'Basic ' + toBase64(utf8(s));
  const bad: Array<[string, string | undefined]> = [
    ['missing', undefined],
    ['bearer scheme', 'Bearer abc'],
    ['not base64', 'Basic !!!'],
    ['no colon', b64(`${aci}.1${toBase64Url(secret)}`)],
    ['no device', b64(`${aci}:${toBase64Url(secret)}`)],
    ['device 0', b64(`${aci}.0:${toBase64Url(secret)}`)],
    ['short secret', b64(`${aci}.1:${toBase64Url(secret.subarray(1))}`)],
    ['bad uuid', b64(`not-a-uuid.1:${toBase64Url(secret)}`)],
    ['huge header', 'Basic ' + 'A'.repeat(600)],
  ];
  for (const [name, header] of bad) {
    it(`refuses ${name} with UNAUTHORIZED`, () => {
      assert.throws(() => parseBasicAuth(header), (err) => isParleyError(err, 'UNAUTHORIZED'));
    });
  }
});

describe('aci bytes', () => {
  it('round-trips ACIs through their 16 wire bytes', async () => {
    const { aciFromBytes, aciToBytes } = await import('../src/index.js');
    for (let n = 0; n < 50; n++) {
      const bytes = Uint8Array.from({ length: 16 }, (_, i) => (i * 53 + n * 17) & 0xff);
      assert.deepEqual(aciToBytes(aciFromBytes(bytes)), bytes);
    }
  });
});
