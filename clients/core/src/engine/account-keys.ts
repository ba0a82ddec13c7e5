// SPDX-License-Identifier: AGPL-3.0-only
/**
 * Key material of a device: the first set at registration or linking, and maintenance after —
 * refill one-time EC and Kyber prekeys when the relay holds fewer than REFILL_BELOW, rotate the
 * signed EC prekey and the last-resort Kyber prekey every ROTATE_AFTER_MS, keeping the previous
 * ones for late session starts.
 */
import {
  generateKyberPreKey,
  generateKyberPreKeys,
  generatePreKeys,
  generateSignedPreKey,
  nextPreKeyId,
  type ProtocolStores,
} from '@parley/crypto';
import { toBase64Url, type DeviceKeysJson, type KeyUploadJson } from '@parley/protocol';

/** One-time keys of each kind uploaded at once. */
export const PREKEY_BATCH = 100;
/** Refill when the relay holds fewer one-time keys of a kind than this. */
export const REFILL_BELOW = 20;
/** Signed prekeys are replaced after this long, ms (7 days). */
export const ROTATE_AFTER_MS = 7 * 24 * 3600_000;

/** Where key ids continue and when the signed keys were made; kept with the account. */
export interface KeyState {
  readonly nextPreKeyId: number;
  readonly nextKyberPreKeyId: number;
  readonly nextSignedPreKeyId: number;
  readonly signedPreKeyCreatedAt: number;
}

type Signed = { keyId: number; publicKey: Uint8Array; signature: Uint8Array };
const signedJson = (k: Signed) => ({ keyId: k.keyId, publicKey: toBase64Url(k.publicKey), signature: toBase64Url(k.signature) });

/** Generates one-time keys, stores their records, returns the upload and the advanced ids. */
async function oneTimeKeys(
  stores: ProtocolStores,
  identityKeyPair: Uint8Array,
  state: KeyState,
  nowMs: number,
  ec: boolean,
  kyber: boolean,
): Promise<{ upload: KeyUploadJson; state: KeyState }> {
  const upload: KeyUploadJson = {};
  let next = state;
  if (ec) {
    const keys = generatePreKeys(state.nextPreKeyId, PREKEY_BATCH);
    for (const k of keys) await stores.preKeys.savePreKey(k.keyId, k.record);
    upload.preKeys = keys.map((k) => ({ keyId: k.keyId, publicKey: toBase64Url(k.upload.publicKey) }));
    next = { ...next, nextPreKeyId: nextPreKeyId(state.nextPreKeyId, PREKEY_BATCH) };
  }
  if (kyber) {
    const keys = generateKyberPreKeys(identityKeyPair, state.nextKyberPreKeyId, PREKEY_BATCH, nowMs);
    for (const k of keys) await stores.kyberPreKeys.saveKyberPreKey(k.keyId, k.record, false);
    upload.kyberPreKeys = keys.map((k) => signedJson(k.upload));
    next = { ...next, nextKyberPreKeyId: nextPreKeyId(state.nextKyberPreKeyId, PREKEY_BATCH) };
  }
  return { upload, state: next };
}

/** Rotates the signed EC prekey and the last-resort Kyber prekey. */
async function signedKeys(stores: ProtocolStores, identityKeyPair: Uint8Array, state: KeyState, nowMs: number) {
  const spk = generateSignedPreKey(identityKeyPair, state.nextSignedPreKeyId, nowMs);
  // The last-resort Kyber key takes its id from the Kyber sequence so ids never collide.
  const lastResort = generateKyberPreKey(identityKeyPair, state.nextKyberPreKeyId, nowMs);
  await stores.signedPreKeys.saveSignedPreKey(spk.keyId, spk.record);
  await stores.kyberPreKeys.saveKyberPreKey(lastResort.keyId, lastResort.record, true);
  return {
    upload: { signedPreKey: signedJson(spk.upload), lastResortKyberPreKey: signedJson(lastResort.upload) },
    state: {
      ...state,
      nextSignedPreKeyId: nextPreKeyId(state.nextSignedPreKeyId),
      nextKyberPreKeyId: nextPreKeyId(state.nextKyberPreKeyId),
      signedPreKeyCreatedAt: nowMs,
    },
  };
}

/** Every key a new device uploads, with the key state that follows. */
export async function initialDeviceKeys(
  stores: ProtocolStores,
  identityKeyPair: Uint8Array,
  nowMs: number,
): Promise<{ keys: DeviceKeysJson; state: KeyState }> {
  const start: KeyState = { nextPreKeyId: 1, nextKyberPreKeyId: 1, nextSignedPreKeyId: 1, signedPreKeyCreatedAt: nowMs };
  const signed = await signedKeys(stores, identityKeyPair, start, nowMs);
  const once = await oneTimeKeys(stores, identityKeyPair, signed.state, nowMs, true, true);
  return { keys: { ...signed.upload, ...once.upload }, state: once.state };
}

/**
 * What to upload now, given the relay's counts: refills below REFILL_BELOW, rotation after
 * ROTATE_AFTER_MS. Undefined when nothing is due.
 */
export async function maintenanceUpload(
  stores: ProtocolStores,
  identityKeyPair: Uint8Array,
  state: KeyState,
  counts: { preKeys: number; kyberPreKeys: number },
  nowMs: number,
): Promise<{ upload: KeyUploadJson; state: KeyState } | undefined> {
  const refillEc = counts.preKeys < REFILL_BELOW;
  const refillKyber = counts.kyberPreKeys < REFILL_BELOW;
  const rotate = nowMs - state.signedPreKeyCreatedAt >= ROTATE_AFTER_MS;
  if (!refillEc && !refillKyber && !rotate) return undefined;
  let upload: KeyUploadJson = {};
  let next = state;
  if (rotate) {
    const r = await signedKeys(stores, identityKeyPair, next, nowMs);
    upload = { ...upload, ...r.upload };
    next = r.state;
  }
  if (refillEc || refillKyber) {
    const r = await oneTimeKeys(stores, identityKeyPair, next, nowMs, refillEc, refillKyber);
    upload = { ...upload, ...r.upload };
    next = r.state;
  }
  return { upload, state: next };
}
