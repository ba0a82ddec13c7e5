// SPDX-License-Identifier: AGPL-3.0-only
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  CRYPTO_ERROR_CODES,
  CryptoError,
  checkAddress,
  formatAddress,
  parseAddress,
  randomBytes,
  randomMessageId,
} from '../src/index.js';

const ACI = '0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d';

describe('addresses', () => {
  it('formats and parses "<aci>.<deviceId>"', () => {
    assert.equal(formatAddress({ aci: ACI, deviceId: 7 }), `${ACI}.7`);
    assert.deepEqual(parseAddress(`${ACI}.127`), { aci: ACI, deviceId: 127 });
    assert.deepEqual(parseAddress(formatAddress({ aci: ACI, deviceId: 1 })), { aci: ACI, deviceId: 1 });
  });

  it('refuses non-canonical ACIs and device ids outside 1..127', () => {
    const bad = (fn: () => unknown): void => assert.throws(fn, (e) => CryptoError.is(e, 'INVALID_ARGUMENT'));
    bad(() => formatAddress({ aci: ACI.toUpperCase(), deviceId: 1 }));
    bad(() => formatAddress({ aci: ACI, deviceId: 0 }));
    bad(() => formatAddress({ aci: ACI, deviceId: 128 }));
    bad(() => formatAddress({ aci: ACI, deviceId: 1.5 }));
    bad(() => checkAddress({ aci: 'x', deviceId: 1 }));
    for (const text of [ACI, `${ACI}.`, `${ACI}.0`, `${ACI}.01`, `${ACI}.128`, `${ACI}.1.2`, `.1`, `${ACI}.-1`, '']) {
      bad(() => parseAddress(text));
    }
  });
});

describe('CryptoError', () => {
  it('narrows by code, on the instance and statically', () => {
    const err: unknown = new CryptoError('NO_SESSION', undefined, { address: `${ACI}.1` });
    assert.ok(err instanceof CryptoError);
    assert.ok(err.is('NO_SESSION'));
    assert.equal(err.is('INVALID_KEY'), false);
    assert.ok(CryptoError.is(err, 'NO_SESSION'));
    assert.equal(CryptoError.is(new Error('x'), 'NO_SESSION'), false);
    assert.equal(err.address, `${ACI}.1`);
    assert.equal(err.name, 'CryptoError');
    assert.equal(err.message, CRYPTO_ERROR_CODES.NO_SESSION);
  });

  it('has every code the session layer promises', () => {
    for (const code of ['UNTRUSTED_IDENTITY', 'DUPLICATE_MESSAGE', 'INVALID_MESSAGE', 'NO_SESSION', 'INVALID_KEY', 'INVALID_SIGNATURE']) {
      assert.ok(Object.hasOwn(CRYPTO_ERROR_CODES, code), code);
    }
  });
});

describe('randomness', () => {
  it('gives fresh plain byte arrays of the asked length', () => {
    assert.equal(randomBytes(0).length, 0);
    const a = randomBytes(32);
    assert.equal(a.length, 32);
    assert.equal(Object.getPrototypeOf(a), Uint8Array.prototype);
    assert.equal(a.byteOffset, 0);
    assert.equal(a.buffer.byteLength, 32);
    assert.notDeepEqual(randomBytes(32), a);
    assert.throws(() => randomBytes(-1), RangeError);
    assert.throws(() => randomBytes(1.5), RangeError);
  });

  it('makes 16-byte message ids that do not repeat', () => {
    const ids = new Set(Array.from({ length: 1000 }, () => Buffer.from(randomMessageId()).toString('hex')));
    assert.equal(ids.size, 1000);
    assert.equal(randomMessageId().length, 16);
  });
});
