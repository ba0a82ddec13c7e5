// SPDX-License-Identifier: AGPL-3.0-only
/**
 * Turns uploaded key JSON into verified store values. Everything is checked before anything is
 * written, in a fixed order so the answer does not depend on which key happens to come first:
 * batch sizes (TOO_MANY_KEYS), duplicate ids and encodings (BAD_REQUEST), key formats
 * (INVALID_KEY), then every signature against the account's identity key (INVALID_SIGNATURE).
 */
import { isValidEcPublicKey, isValidKyberPublicKey, verifyPreKeySignature } from '@parley/crypto';
import { fromBase64Url, ParleyError, type KeyUploadJson, type PreKeyJson, type SignedPreKeyJson } from '@parley/protocol';
import type { KeyUpload, NewDeviceKeys, StoredPreKey, StoredSignedPreKey } from './ports/key-store.js';

/** Batch limits of an upload. */
export interface UploadLimits {
  /** Most one-time keys of one kind in one upload. */
  readonly maxPreKeysPerUpload: number;
}

/**
 * Decodes an unpadded base64url field.
 * @throws ParleyError BAD_REQUEST naming the field (never its value).
 */
export function decodeField(text: string, field: string, expectedBytes?: number): Uint8Array {
  const bytes = fromBase64Url(text);
  if (!bytes) throw new ParleyError('BAD_REQUEST', `${field} is not unpadded base64url`);
  if (expectedBytes !== undefined && bytes.length !== expectedBytes) {
    throw new ParleyError('BAD_REQUEST', `${field} must be ${expectedBytes} bytes`);
  }
  return bytes;
}

/**
 * Decodes and checks an identity public key.
 * @throws ParleyError BAD_REQUEST (not base64url) or INVALID_KEY (not a Curve25519 public key).
 */
export function parseIdentityKey(text: string): Uint8Array {
  const key = decodeField(text, 'identityKey');
  if (!isValidEcPublicKey(key)) throw new ParleyError('INVALID_KEY', 'identityKey is not a valid public key');
  return key;
}

function checkBatch(keys: readonly { keyId: number }[] | undefined, field: string, limits: UploadLimits): void {
  if (!keys) return;
  if (keys.length > limits.maxPreKeysPerUpload) {
    throw new ParleyError('TOO_MANY_KEYS', `${field} may hold at most ${limits.maxPreKeysPerUpload} keys`);
  }
  const ids = new Set<number>();
  for (const k of keys) {
    if (ids.has(k.keyId)) throw new ParleyError('BAD_REQUEST', `${field} holds a key id twice`);
    ids.add(k.keyId);
  }
}

type Kind = 'ec' | 'kyber';

interface PendingSigned {
  readonly field: string;
  readonly kind: Kind;
  readonly key: StoredSignedPreKey;
}

function decodeSigned(json: SignedPreKeyJson, field: string, kind: Kind): PendingSigned {
  return {
    field,
    kind,
    key: { keyId: json.keyId, publicKey: decodeField(json.publicKey, `${field}.publicKey`), signature: decodeField(json.signature, `${field}.signature`, 64) },
  };
}

function decodeOneTime(json: PreKeyJson, field: string): StoredPreKey {
  return { keyId: json.keyId, publicKey: decodeField(json.publicKey, `${field}.publicKey`) };
}

const validKey = (kind: Kind, bytes: Uint8Array): boolean => (kind === 'ec' ? isValidEcPublicKey(bytes) : isValidKyberPublicKey(bytes));

/**
 * Checks an upload and returns it as store values.
 * @throws ParleyError TOO_MANY_KEYS, BAD_REQUEST, INVALID_KEY or INVALID_SIGNATURE, in that order
 * of precedence.
 */
export function parseKeyUpload(json: KeyUploadJson, identityKey: Uint8Array, limits: UploadLimits): KeyUpload {
  checkBatch(json.preKeys, 'preKeys', limits);
  checkBatch(json.kyberPreKeys, 'kyberPreKeys', limits);

  const signed: PendingSigned[] = [];
  if (json.signedPreKey) signed.push(decodeSigned(json.signedPreKey, 'signedPreKey', 'ec'));
  if (json.lastResortKyberPreKey) signed.push(decodeSigned(json.lastResortKyberPreKey, 'lastResortKyberPreKey', 'kyber'));
  const kyberStart = signed.length;
  (json.kyberPreKeys ?? []).forEach((k, i) => signed.push(decodeSigned(k, `kyberPreKeys[${i}]`, 'kyber')));
  const preKeys = (json.preKeys ?? []).map((k, i) => decodeOneTime(k, `preKeys[${i}]`));

  for (const [i, k] of preKeys.entries()) {
    if (!isValidEcPublicKey(k.publicKey)) throw new ParleyError('INVALID_KEY', `preKeys[${i}].publicKey is not a valid public key`);
  }
  for (const p of signed) {
    if (!validKey(p.kind, p.key.publicKey)) throw new ParleyError('INVALID_KEY', `${p.field}.publicKey is not a valid ${p.kind === 'ec' ? 'EC' : 'Kyber'} public key`);
  }
  for (const p of signed) {
    if (!verifyPreKeySignature(identityKey, p.key.publicKey, p.key.signature)) {
      throw new ParleyError('INVALID_SIGNATURE', `${p.field}.signature does not verify against the identity key`);
    }
  }

  const byField = (field: string) => signed.find((p) => p.field === field)?.key;
  const signedPreKey = byField('signedPreKey');
  const lastResort = byField('lastResortKyberPreKey');
  return {
    ...(signedPreKey ? { signedPreKey } : {}),
    ...(lastResort ? { lastResortKyberPreKey: lastResort } : {}),
    ...(json.preKeys ? { preKeys } : {}),
    ...(json.kyberPreKeys ? { kyberPreKeys: signed.slice(kyberStart).map((p) => p.key) } : {}),
  };
}

/**
 * Checks the keys a new device brings (the signed and last-resort keys are required; the
 * route schema already enforces their presence).
 */
export function parseDeviceKeys(json: KeyUploadJson, identityKey: Uint8Array, limits: UploadLimits): NewDeviceKeys {
  const upload = parseKeyUpload(json, identityKey, limits);
  if (!upload.signedPreKey || !upload.lastResortKyberPreKey) {
    throw new ParleyError('BAD_REQUEST', 'a new device must bring signedPreKey and lastResortKyberPreKey');
  }
  return upload as NewDeviceKeys;
}
