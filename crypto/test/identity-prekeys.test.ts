// SPDX-License-Identifier: AGPL-3.0-only
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { KyberPreKeyRecord, PreKeyRecord, SignedPreKeyRecord } from '@signalapp/libsignal-client';
import {
  CryptoError,
  PREKEY_ID_MAX,
  generateIdentity,
  generateKyberPreKey,
  generateKyberPreKeys,
  generatePreKeys,
  generateRegistrationId,
  generateSignedPreKey,
  identityFromKeyPair,
  isValidEcPublicKey,
  isValidKyberPublicKey,
  nextPreKeyId,
  owned,
  verifyPreKeySignature,
} from '../src/index.js';

const NOW = 1_790_000_000_000;

function flipped(bytes: Uint8Array, index: number): Uint8Array {
  const out = new Uint8Array(bytes);
  out[index] = out[index]! ^ 0x01;
  return out;
}

function code(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return err instanceof CryptoError ? err.code : 'not a CryptoError';
  }
  return undefined;
}

describe('identity', () => {
  it('creates a 33-byte Curve25519 identity key and a registration id in 1..16383', () => {
    const id = generateIdentity();
    assert.equal(id.identityKey.length, 33);
    assert.equal(id.identityKey[0], 0x05);
    assert.ok(isValidEcPublicKey(id.identityKey));
    assert.ok(Number.isInteger(id.registrationId) && id.registrationId >= 1 && id.registrationId <= 16383);
    assert.notDeepEqual(generateIdentity().identityKey, id.identityKey);
  });

  it('draws registration ids across the whole 14-bit range and never 0', () => {
    const ids = Array.from({ length: 2000 }, generateRegistrationId);
    assert.ok(ids.every((n) => n >= 1 && n <= 16383));
    assert.ok(Math.max(...ids) > 12000 && Math.min(...ids) < 4000);
  });

  it('derives a linked device identity with the same key and its own registration id', () => {
    const id = generateIdentity();
    const linked = identityFromKeyPair(id.identityKeyPair, 42);
    assert.deepEqual(linked.identityKey, id.identityKey);
    assert.deepEqual(linked.identityKeyPair, id.identityKeyPair);
    assert.equal(linked.registrationId, 42);
    const fresh = identityFromKeyPair(id.identityKeyPair);
    assert.ok(fresh.registrationId >= 1 && fresh.registrationId <= 16383);
  });

  it('refuses out-of-range registration ids and a key pair that is not one', () => {
    const id = generateIdentity();
    for (const bad of [0, 16384, 1.5, -1, NaN]) assert.equal(code(() => identityFromKeyPair(id.identityKeyPair, bad)), 'INVALID_ARGUMENT');
    assert.equal(code(() => identityFromKeyPair(new Uint8Array(10))), 'INVALID_KEY');
    assert.equal(code(() => generateSignedPreKey(new Uint8Array(69), 1, NOW)), 'INVALID_KEY');
  });
});

describe('signed prekeys', () => {
  it('signs the EC prekey with the identity key; the signature fails after any one-byte change', () => {
    const id = generateIdentity();
    const spk = generateSignedPreKey(id.identityKeyPair, 7, NOW);
    const { publicKey, signature } = spk.upload;
    assert.equal(spk.keyId, 7);
    assert.equal(spk.upload.keyId, 7);
    assert.equal(publicKey.length, 33);
    assert.equal(signature.length, 64);
    assert.ok(verifyPreKeySignature(id.identityKey, publicKey, signature));
    for (const i of [0, 31, 63]) assert.equal(verifyPreKeySignature(id.identityKey, publicKey, flipped(signature, i)), false);
    for (const i of [1, 32]) assert.equal(verifyPreKeySignature(id.identityKey, flipped(publicKey, i), signature), false);
    assert.equal(verifyPreKeySignature(generateIdentity().identityKey, publicKey, signature), false);
  });

  it('stores id, time and the same public key in the record', () => {
    const id = generateIdentity();
    const spk = generateSignedPreKey(id.identityKeyPair, 9, NOW);
    const record = SignedPreKeyRecord.deserialize(owned(spk.record));
    assert.equal(record.id(), 9);
    assert.equal(record.timestamp(), NOW);
    assert.deepEqual(record.publicKey().serialize(), spk.upload.publicKey);
    assert.deepEqual(record.signature(), spk.upload.signature);
  });

  it('keeps the private record out of the upload form', () => {
    const id = generateIdentity();
    const spk = generateSignedPreKey(id.identityKeyPair, 1, NOW);
    assert.deepEqual(Object.keys(spk.upload).sort(), ['keyId', 'publicKey', 'signature']);
    assert.deepEqual(Object.keys(generatePreKeys(1, 1)[0]!.upload).sort(), ['keyId', 'publicKey']);
  });

  it('refuses key ids outside 1..0xFFFFFF and bad times', () => {
    const id = generateIdentity();
    for (const bad of [0, PREKEY_ID_MAX + 1, -1, 2.5]) {
      assert.equal(code(() => generateSignedPreKey(id.identityKeyPair, bad, NOW)), 'INVALID_ARGUMENT');
      assert.equal(code(() => generateKyberPreKey(id.identityKeyPair, bad, NOW)), 'INVALID_ARGUMENT');
    }
    assert.equal(code(() => generateSignedPreKey(id.identityKeyPair, PREKEY_ID_MAX, NOW)), undefined);
    assert.equal(code(() => generateSignedPreKey(id.identityKeyPair, 1, -5)), 'INVALID_ARGUMENT');
  });
});

describe('Kyber prekeys', () => {
  it('signs a Kyber-1024 public key with the identity key; a flipped byte fails', () => {
    const id = generateIdentity();
    const kpk = generateKyberPreKey(id.identityKeyPair, 3, NOW);
    const { publicKey, signature } = kpk.upload;
    assert.equal(publicKey.length, 1569);
    assert.ok(isValidKyberPublicKey(publicKey));
    assert.ok(verifyPreKeySignature(id.identityKey, publicKey, signature));
    assert.equal(verifyPreKeySignature(id.identityKey, publicKey, flipped(signature, 10)), false);
    assert.equal(verifyPreKeySignature(id.identityKey, flipped(publicKey, 800), signature), false);
    const record = KyberPreKeyRecord.deserialize(owned(kpk.record));
    assert.equal(record.id(), 3);
    assert.equal(record.timestamp(), NOW);
    assert.deepEqual(record.publicKey().serialize(), publicKey);
  });

  it('generates batches with consecutive ids, each key distinct and correctly signed', () => {
    const id = generateIdentity();
    const keys = generateKyberPreKeys(id.identityKeyPair, 100, 4, NOW);
    assert.deepEqual(keys.map((k) => k.keyId), [100, 101, 102, 103]);
    assert.equal(new Set(keys.map((k) => Buffer.from(k.upload.publicKey).toString('hex'))).size, 4);
    for (const k of keys) {
      assert.ok(verifyPreKeySignature(id.identityKey, k.upload.publicKey, k.upload.signature));
      assert.equal(k.upload.keyId, k.keyId);
      assert.equal(KyberPreKeyRecord.deserialize(owned(k.record)).id(), k.keyId);
    }
  });

  it('wraps batch ids after 0xFFFFFF to 1', () => {
    const id = generateIdentity();
    assert.deepEqual(
      generateKyberPreKeys(id.identityKeyPair, PREKEY_ID_MAX, 2, NOW).map((k) => k.keyId),
      [PREKEY_ID_MAX, 1],
    );
  });
});

describe('one-time EC prekeys', () => {
  it('generates consecutive ids with distinct valid keys matching their records', () => {
    const keys = generatePreKeys(10, 5);
    assert.deepEqual(keys.map((k) => k.keyId), [10, 11, 12, 13, 14]);
    assert.equal(new Set(keys.map((k) => Buffer.from(k.upload.publicKey).toString('hex'))).size, 5);
    for (const k of keys) {
      assert.ok(isValidEcPublicKey(k.upload.publicKey));
      const record = PreKeyRecord.deserialize(owned(k.record));
      assert.equal(record.id(), k.keyId);
      assert.deepEqual(record.publicKey().serialize(), k.upload.publicKey);
    }
  });

  it('wraps from 0xFFFFFF to 1, skipping 0', () => {
    assert.deepEqual(generatePreKeys(PREKEY_ID_MAX - 1, 3).map((k) => k.keyId), [PREKEY_ID_MAX - 1, PREKEY_ID_MAX, 1]);
    assert.equal(nextPreKeyId(PREKEY_ID_MAX), 1);
    assert.equal(nextPreKeyId(1), 2);
    assert.equal(nextPreKeyId(5, 0), 5);
    assert.equal(nextPreKeyId(PREKEY_ID_MAX, PREKEY_ID_MAX), PREKEY_ID_MAX);
    assert.equal(nextPreKeyId(PREKEY_ID_MAX - 2, 5), 3);
  });

  it('returns an empty batch for 0 and refuses bad starts and counts', () => {
    assert.deepEqual(generatePreKeys(1, 0), []);
    assert.equal(code(() => generatePreKeys(0, 1)), 'INVALID_ARGUMENT');
    assert.equal(code(() => generatePreKeys(1, -1)), 'INVALID_ARGUMENT');
    assert.equal(code(() => generatePreKeys(1, 1001)), 'INVALID_ARGUMENT');
    assert.equal(code(() => generateKyberPreKeys(generateIdentity().identityKeyPair, 1, 1.5, NOW)), 'INVALID_ARGUMENT');
    assert.equal(code(() => nextPreKeyId(0)), 'INVALID_ARGUMENT');
    assert.equal(code(() => nextPreKeyId(1, -1)), 'INVALID_ARGUMENT');
  });
});
