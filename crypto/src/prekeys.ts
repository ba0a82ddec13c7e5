// SPDX-License-Identifier: AGPL-3.0-only
/**
 * Prekey generation. Each generated key comes as the serialized libsignal record the device
 * keeps in its own store (secret: it holds the private key) and, apart from it, the public upload
 * form the key server takes (protocol's PreKeyJson / SignedPreKeyJson, as bytes). They are kept
 * apart so that serializing an upload can never carry a private key along.
 *
 * Key ids. libsignal ids are u32, but ids here stay in 1..0xFFFFFF and wrap from 0xFFFFFF back to
 * 1: 0 is never used, because several encodings (protobuf defaults, SQL columns, "no prekey"
 * markers) read 0 as "absent"; and staying in 24 bits, as Signal's clients do, leaves room so that
 * `id + count` arithmetic never leaves u32 in any layer. Wrapping is safe because a device never
 * holds more than LIMITS.maxStoredPreKeys one-time keys of a kind, so by the time a counter comes
 * round, the key that last had an id is long used or deleted.
 */
import { KEMKeyPair, KyberPreKeyRecord, PreKeyRecord, PrivateKey, SignedPreKeyRecord } from '@signalapp/libsignal-client';
import { LIMITS } from '@parley/protocol';
import { CryptoError } from './errors.js';
import { deserializeIdentityKeyPair } from './libsignal-keys.js';

/** Largest prekey id handed out; ids run 1..PREKEY_ID_MAX and then wrap to 1. */
export const PREKEY_ID_MAX = 0xffffff;

/** Upload form of a one-time EC prekey (protocol's PreKeyJson as bytes). */
export interface PreKeyUpload {
  readonly keyId: number;
  /** 33-byte serialized Curve25519 public key. */
  readonly publicKey: Uint8Array;
}

/** Upload form of a signed EC prekey or a Kyber prekey (protocol's SignedPreKeyJson as bytes). */
export interface SignedPreKeyUpload {
  readonly keyId: number;
  /** Serialized public key: 33 bytes for EC, 1569 bytes for Kyber-1024. */
  readonly publicKey: Uint8Array;
  /** 64-byte XEdDSA signature by the identity key over `publicKey`. */
  readonly signature: Uint8Array;
}

/** A one-time EC prekey: the record for the PreKeyStore and what to upload. */
export interface GeneratedPreKey {
  readonly keyId: number;
  /** Serialized libsignal PreKeyRecord. Secret. */
  readonly record: Uint8Array;
  readonly upload: PreKeyUpload;
}

/** A signed EC prekey: the record for the SignedPreKeyStore and what to upload. */
export interface GeneratedSignedPreKey {
  readonly keyId: number;
  /** Serialized libsignal SignedPreKeyRecord. Secret. */
  readonly record: Uint8Array;
  readonly upload: SignedPreKeyUpload;
}

/** A Kyber prekey (one-time or last-resort): the record for the KyberPreKeyStore and what to upload. */
export interface GeneratedKyberPreKey {
  readonly keyId: number;
  /** Serialized libsignal KyberPreKeyRecord. Secret. */
  readonly record: Uint8Array;
  readonly upload: SignedPreKeyUpload;
}

/** True when `id` is a prekey id this package hands out (an integer 1..PREKEY_ID_MAX). */
export function isValidPreKeyId(id: number): boolean {
  return Number.isInteger(id) && id >= 1 && id <= PREKEY_ID_MAX;
}

/** The id `step` places after `id`, wrapping from PREKEY_ID_MAX to 1. `step` defaults to 1. */
export function nextPreKeyId(id: number, step = 1): number {
  checkKeyId(id);
  if (!Number.isSafeInteger(step) || step < 0) throw new CryptoError('INVALID_ARGUMENT', 'step must be a non-negative integer');
  return ((id - 1 + step) % PREKEY_ID_MAX) + 1;
}

function checkKeyId(id: number): void {
  if (!isValidPreKeyId(id)) throw new CryptoError('INVALID_ARGUMENT', `key id must be an integer 1..${PREKEY_ID_MAX}`);
}

function checkCount(count: number): void {
  if (!Number.isInteger(count) || count < 0 || count > LIMITS.maxStoredPreKeys) {
    throw new CryptoError('INVALID_ARGUMENT', `count must be an integer 0..${LIMITS.maxStoredPreKeys}`);
  }
}

function checkTime(nowMs: number): void {
  if (!Number.isSafeInteger(nowMs) || nowMs < 0) throw new CryptoError('INVALID_ARGUMENT', 'time must be milliseconds since 1970');
}

/**
 * A signed EC prekey with id `keyId`, signed by the account identity. `nowMs` (milliseconds
 * since 1970, from the caller's Clock) is stored in the record so rotation can find old keys.
 */
export function generateSignedPreKey(identityKeyPair: Uint8Array, keyId: number, nowMs: number): GeneratedSignedPreKey {
  checkKeyId(keyId);
  checkTime(nowMs);
  const identity = deserializeIdentityKeyPair(identityKeyPair);
  const privateKey = PrivateKey.generate();
  const publicKey = privateKey.getPublicKey().serialize();
  const signature = identity.privateKey.sign(publicKey);
  const record = SignedPreKeyRecord.new(keyId, nowMs, privateKey.getPublicKey(), privateKey, signature);
  return { keyId, record: record.serialize(), upload: { keyId, publicKey, signature } };
}

/**
 * A Kyber-1024 prekey with id `keyId`, signed by the account identity. The same form serves as
 * the last-resort key and as a one-time key; which one it is, is the store's business
 * (KyberPreKeyStore.saveKyberPreKey's `lastResort`). `nowMs` is milliseconds since 1970.
 */
export function generateKyberPreKey(identityKeyPair: Uint8Array, keyId: number, nowMs: number): GeneratedKyberPreKey {
  checkKeyId(keyId);
  checkTime(nowMs);
  return kyberPreKey(deserializeIdentityKeyPair(identityKeyPair).privateKey, keyId, nowMs);
}

function kyberPreKey(signer: PrivateKey, keyId: number, nowMs: number): GeneratedKyberPreKey {
  const keyPair = KEMKeyPair.generate();
  const publicKey = keyPair.getPublicKey().serialize();
  const signature = signer.sign(publicKey);
  const record = KyberPreKeyRecord.new(keyId, nowMs, keyPair, signature);
  return { keyId, record: record.serialize(), upload: { keyId, publicKey, signature } };
}

/** `count` one-time EC prekeys with ids from `startId` on (wrapping after PREKEY_ID_MAX). */
export function generatePreKeys(startId: number, count: number): GeneratedPreKey[] {
  checkKeyId(startId);
  checkCount(count);
  const out: GeneratedPreKey[] = [];
  for (let i = 0; i < count; i++) {
    const keyId = nextPreKeyId(startId, i);
    const privateKey = PrivateKey.generate();
    const publicKey = privateKey.getPublicKey();
    const record = PreKeyRecord.new(keyId, publicKey, privateKey);
    out.push({ keyId, record: record.serialize(), upload: { keyId, publicKey: publicKey.serialize() } });
  }
  return out;
}

/** `count` one-time Kyber prekeys with ids from `startId` on (wrapping), signed by the identity. */
export function generateKyberPreKeys(identityKeyPair: Uint8Array, startId: number, count: number, nowMs: number): GeneratedKyberPreKey[] {
  checkKeyId(startId);
  checkCount(count);
  checkTime(nowMs);
  const signer = deserializeIdentityKeyPair(identityKeyPair).privateKey;
  const out: GeneratedKyberPreKey[] = [];
  for (let i = 0; i < count; i++) out.push(kyberPreKey(signer, nextPreKeyId(startId, i), nowMs));
  return out;
}
