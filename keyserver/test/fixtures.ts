// SPDX-License-Identifier: AGPL-3.0-only
/**
 * Real keys for key server tests: identities, signed EC prekeys, Kyber prekeys, one-time
 * prekeys and whole registration bodies. Public keys come from small pools generated once
 * (the server does not care that two accounts share a public key; Kyber generation is slow).
 */
import { randomBytes } from 'node:crypto';
import { IdentityKeyPair, KEMKeyPair, PrivateKey } from '@signalapp/libsignal-client'; // eslint-disable-line no-restricted-imports -- test fixtures need real keys
import {
  formatBasicAuth,
  toBase64Url,
  type DeviceKeysJson,
  type LinkDeviceRequest,
  type PreKeyJson,
  type RegisterAccountRequest,
  type SignedPreKeyJson,
} from '@parley/protocol';

/** An account identity key pair, able to sign prekeys. */
export interface TestIdentity {
  /** 33-byte serialized identity public key. */
  readonly identityKey: Uint8Array;
  /** The identity key's signature over `bytes`. */
  sign(bytes: Uint8Array): Uint8Array;
}

/** A fresh identity. */
export function newIdentity(): TestIdentity {
  const pair = IdentityKeyPair.generate();
  return {
    identityKey: pair.publicKey.serialize(),
    sign: (bytes) => pair.privateKey.sign(new Uint8Array(bytes)),
  };
}

const POOL = 120;
let ecPool: Uint8Array[] | undefined;
let kyberPool: Uint8Array[] | undefined;

/** A serialized EC public key (33 bytes) from the pool. */
export function ecPublicKey(i = 0): Uint8Array {
  ecPool ??= Array.from({ length: POOL }, () => PrivateKey.generate().getPublicKey().serialize());
  return ecPool[i % POOL]!;
}

/** A serialized Kyber public key from the pool. */
export function kyberPublicKey(i = 0): Uint8Array {
  kyberPool ??= Array.from({ length: POOL }, () => KEMKeyPair.generate().getPublicKey().serialize());
  return kyberPool[i % POOL]!;
}

const b64 = toBase64Url;

/** A signed EC prekey, signed by `identity`. */
export function signedPreKey(identity: TestIdentity, keyId = 1): SignedPreKeyJson {
  const publicKey = ecPublicKey(keyId);
  return { keyId, publicKey: b64(publicKey), signature: b64(identity.sign(publicKey)) };
}

/** A Kyber prekey (one-time or last-resort), signed by `identity`. */
export function kyberPreKey(identity: TestIdentity, keyId = 1): SignedPreKeyJson {
  const publicKey = kyberPublicKey(keyId);
  return { keyId, publicKey: b64(publicKey), signature: b64(identity.sign(publicKey)) };
}

/** `count` one-time EC prekeys with ids from `from`. */
export function preKeys(from: number, count: number): PreKeyJson[] {
  return Array.from({ length: count }, (_, i) => ({ keyId: from + i, publicKey: b64(ecPublicKey(from + i)) }));
}

/** `count` one-time Kyber prekeys with ids from `from`, signed by `identity`. */
export function kyberPreKeys(identity: TestIdentity, from: number, count: number): SignedPreKeyJson[] {
  return Array.from({ length: count }, (_, i) => kyberPreKey(identity, from + i));
}

/** The keys a device brings: signed prekey 1, last-resort Kyber 1, and `oneTime` of each one-time kind. */
export function deviceKeys(identity: TestIdentity, oneTime = 0): DeviceKeysJson {
  return {
    signedPreKey: signedPreKey(identity, 1),
    lastResortKyberPreKey: kyberPreKey(identity, 1),
    ...(oneTime > 0 ? { preKeys: preKeys(1, oneTime), kyberPreKeys: kyberPreKeys(identity, 100, oneTime) } : {}),
  };
}

/** A registration body and the secret it carries. */
export function registration(
  username: string,
  options: { identity?: TestIdentity; oneTime?: number; registrationId?: number } = {},
): { body: RegisterAccountRequest; secret: Uint8Array; identity: TestIdentity } {
  const identity = options.identity ?? newIdentity();
  const secret = new Uint8Array(randomBytes(32));
  return {
    identity,
    secret,
    body: {
      username,
      identityKey: b64(identity.identityKey),
      registrationId: options.registrationId ?? 1234,
      authSecret: b64(secret),
      ...deviceKeys(identity, options.oneTime ?? 0),
    },
  };
}

/** A link body for `token` and the secret it carries. */
export function linkBody(
  identity: TestIdentity,
  token: string,
  options: { oneTime?: number; registrationId?: number } = {},
): { body: LinkDeviceRequest; secret: Uint8Array } {
  const secret = new Uint8Array(randomBytes(32));
  return {
    secret,
    body: { token, registrationId: options.registrationId ?? 2345, authSecret: b64(secret), ...deviceKeys(identity, options.oneTime ?? 0) },
  };
}

/** The Authorization header of a device. */
export function authHeader(aci: string, deviceId: number, secret: Uint8Array): string {
  return formatBasicAuth(aci, deviceId, secret);
}

/** Flips one bit of a base64url value (a signature that no longer verifies). */
export function flipBit(value: string, byte = 5): string {
  const bytes = Buffer.from(value, 'base64url');
  bytes[byte]! ^= 1;
  return bytes.toString('base64url');
}
