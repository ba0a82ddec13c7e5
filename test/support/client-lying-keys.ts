// SPDX-License-Identifier: AGPL-3.0-only
/**
 * Key material a LYING RELAY makes up to put itself between two people: an identity key pair of
 * its own and prekeys signed with it, so that a bundle it rewrites passes every signature check
 * and only the identity key gives it away. Used with the tampering proxy, which stands in for
 * that relay.
 */
import { generateIdentity, generateKyberPreKey, generateSignedPreKey } from '@parley/crypto';
import { toBase64Url, type BundleResponse } from '@parley/protocol';

/** A made-up identity and a way to rewrite real bundles under it. */
export interface MadeUpIdentity {
  /** The public identity key the relay presents instead of the real one. */
  readonly identityKey: Uint8Array;
  /** `real` with the identity key replaced and every device's prekeys re-made and signed with it. */
  rewrite(real: BundleResponse): BundleResponse;
}

/** Makes up an identity (fresh on each call). */
export function makeUpIdentity(): MadeUpIdentity {
  const identity = generateIdentity();
  const now = Date.now();
  const signedPreKey = generateSignedPreKey(identity.identityKeyPair, 4242, now).upload;
  const kyberPreKey = generateKyberPreKey(identity.identityKeyPair, 4242, now).upload;
  const signed = (k: { keyId: number; publicKey: Uint8Array; signature: Uint8Array }) => ({
    keyId: k.keyId,
    publicKey: toBase64Url(k.publicKey),
    signature: toBase64Url(k.signature),
  });
  return {
    identityKey: identity.identityKey,
    rewrite: (real) => ({
      aci: real.aci,
      identityKey: toBase64Url(identity.identityKey),
      // Device and registration ids stay real: the relay routes by them.
      devices: real.devices.map((d) => ({
        deviceId: d.deviceId,
        registrationId: d.registrationId,
        signedPreKey: signed(signedPreKey),
        kyberPreKey: signed(kyberPreKey),
      })),
    }),
  };
}
