// SPDX-License-Identifier: AGPL-3.0-only
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { describe, it } from 'node:test';
import {
  ACCESS_KEY_LABEL,
  CryptoError,
  accessKeysEqual,
  combineAccessKeys,
  deriveAccessKey,
  generatePresenceToken,
  generateProfileKey,
  randomBytes,
} from '../src/index.js';

const invalidArgument = (e: unknown): boolean => CryptoError.is(e, 'INVALID_ARGUMENT');

describe('access keys', () => {
  it('derives 16 bytes as HMAC-SHA256(profileKey, "Parley access key v1") truncated, as docs/protocol.md says', () => {
    const profileKey = new Uint8Array(32).map((_, i) => i);
    const expected = createHmac('sha256', profileKey).update('Parley access key v1').digest().subarray(0, 16);
    assert.equal(ACCESS_KEY_LABEL, 'Parley access key v1');
    assert.deepEqual(deriveAccessKey(profileKey), new Uint8Array(expected));
    // A fixed vector (computed once with Python's hmac), so a change of label or construction cannot go unnoticed.
    assert.equal(Buffer.from(deriveAccessKey(profileKey)).toString('hex'), 'b195211334995dd8a50510c81ec1f26f');
  });

  it('gives different profile keys different access keys, and the same key the same', () => {
    const a = generateProfileKey();
    const b = generateProfileKey();
    assert.equal(a.length, 32);
    assert.notDeepEqual(a, b);
    assert.deepEqual(deriveAccessKey(a), deriveAccessKey(new Uint8Array(a)));
    assert.notDeepEqual(deriveAccessKey(a), deriveAccessKey(b));
  });

  it('combines keys by XOR, so that the combination of one key is itself and of a pair cancels', () => {
    const [k1, k2, k3] = [randomBytes(16), randomBytes(16), randomBytes(16)];
    assert.deepEqual(combineAccessKeys([k1]), k1);
    assert.deepEqual(combineAccessKeys([k1, k1]), new Uint8Array(16));
    const all = combineAccessKeys([k1, k2, k3]);
    for (let i = 0; i < 16; i++) assert.equal(all[i], k1[i]! ^ k2[i]! ^ k3[i]!);
    assert.deepEqual(combineAccessKeys([k3, k1, k2]), all);
  });

  it('refuses profile keys and access keys of the wrong length, and an empty list', () => {
    assert.throws(() => deriveAccessKey(randomBytes(16)), invalidArgument);
    assert.throws(() => combineAccessKeys([]), invalidArgument);
    assert.throws(() => combineAccessKeys([randomBytes(16), randomBytes(15)]), invalidArgument);
  });

  it('compares access keys, answering false for any malformed one', () => {
    const k = randomBytes(16);
    assert.equal(accessKeysEqual(k, new Uint8Array(k)), true);
    assert.equal(accessKeysEqual(k, randomBytes(16)), false);
    assert.equal(accessKeysEqual(k, k.subarray(0, 15)), false);
    assert.equal(accessKeysEqual(k, undefined as unknown as Uint8Array), false);
  });

  it('makes 32-byte random presence tokens', () => {
    const t = generatePresenceToken();
    assert.equal(t.length, 32);
    assert.notDeepEqual(generatePresenceToken(), t);
  });
});
