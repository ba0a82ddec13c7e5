// SPDX-License-Identifier: AGPL-3.0-only
/**
 * Many registered accounts for benchmarks of large groups, made cheaply: every account shares one
 * identity and one set of public keys (key generation is not what is measured), registers with
 * one device over HTTP, and uploads an access key so that sealed sends to it are authorized.
 * Nothing of them ever connects: they are recipients only.
 */
import { deriveAccessKey, generateIdentity, generateKyberPreKey, generateProfileKey, generateSignedPreKey, randomBytes, type SignedPreKeyUpload } from '@parley/crypto';
import { toBase64Url, type Aci, type RegisterAccountResponse } from '@parley/protocol';
import { http } from './test-device.js';

/** One cheap account. */
export interface CheapMember {
  readonly aci: Aci;
  readonly username: string;
  readonly deviceId: number;
  readonly registrationId: number;
  /** The device's auth secret (to connect as it). */
  readonly secret: Uint8Array;
  /** The access key it uploaded; empty when none was (see {@link registerCheapMembers}). */
  readonly accessKey: Uint8Array;
}

/** The accounts and the keys they all share. */
export interface CheapMembers {
  readonly members: CheapMember[];
  readonly identityKey: Uint8Array;
  readonly signedPreKey: SignedPreKeyUpload;
  readonly kyberPreKey: SignedPreKeyUpload;
}

/**
 * Registers `count` accounts named `${prefix}${i}` on the relay at `url`, 16 at a time, each
 * uploading an access key unless `accessKeys` is false. The relay must allow that many
 * registrations from one address (`--registrations-per-hour`).
 */
export async function registerCheapMembers(url: string, count: number, prefix: string, options: { readonly accessKeys?: boolean } = {}): Promise<CheapMembers> {
  const identity = generateIdentity();
  const spk = generateSignedPreKey(identity.identityKeyPair, 1, Date.now()).upload;
  const kyber = generateKyberPreKey(identity.identityKeyPair, 1, Date.now()).upload;
  const signed = (k: { keyId: number; publicKey: Uint8Array; signature: Uint8Array }) => ({ keyId: k.keyId, publicKey: toBase64Url(k.publicKey), signature: toBase64Url(k.signature) });
  const members: CheapMember[] = new Array(count);
  let next = 0;
  const worker = async () => {
    while (next < count) {
      const i = next++;
      const secret = randomBytes(32);
      const registrationId = 1 + (i % 16000);
      const username = `${prefix}${i}`;
      const res = await http<RegisterAccountResponse>(url, 'POST', '/v1/accounts', {
        username,
        identityKey: toBase64Url(identity.identityKey),
        registrationId,
        authSecret: toBase64Url(secret),
        signedPreKey: signed(spk),
        lastResortKyberPreKey: signed(kyber),
      });
      if (res.status >= 300) throw new Error(`registration failed: ${res.status} ${JSON.stringify(res.body)}`);
      const aci = res.body.aci as Aci;
      const deviceId = res.body.deviceId;
      let accessKey: Uint8Array = new Uint8Array(0);
      if (options.accessKeys !== false) {
        accessKey = deriveAccessKey(generateProfileKey());
        const auth = `Basic ${Buffer.from(`${aci}.${deviceId}:${toBase64Url(secret)}`).toString('base64')}`;
        const put = await http(url, 'PUT', '/v1/accounts/me/access-key', { accessKey: toBase64Url(accessKey) }, auth);
        if (put.status !== 204) throw new Error(`access key refused: ${put.status}`);
      }
      members[i] = { aci, username, deviceId, registrationId, secret, accessKey };
    }
  };
  await Promise.all(Array.from({ length: 16 }, worker));
  return { members, identityKey: identity.identityKey, signedPreKey: spk, kyberPreKey: kyber };
}
