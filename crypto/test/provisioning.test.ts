// SPDX-License-Identifier: AGPL-3.0-only
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CryptoError, generateProvisioningKeyPair, openProvisioningMessage, sealProvisioningMessage } from '../src/index.js';

describe('provisioning messages', () => {
  const plaintext = new TextEncoder().encode('identity key pair, aci and link token');

  it('opens with the matching private key', () => {
    const kp = generateProvisioningKeyPair();
    const sealed = sealProvisioningMessage(kp.publicKey, plaintext);
    assert.deepEqual(openProvisioningMessage(kp.privateKey, sealed), plaintext);
    assert.equal(Buffer.from(sealed).indexOf(Buffer.from('link token')), -1, 'no plaintext in the sealed bytes');
  });

  it('seals the same plaintext differently each time', () => {
    const kp = generateProvisioningKeyPair();
    assert.notDeepEqual(sealProvisioningMessage(kp.publicKey, plaintext), sealProvisioningMessage(kp.publicKey, plaintext));
  });

  it('refuses another key, any flipped byte, truncation and a wrong version', () => {
    const kp = generateProvisioningKeyPair();
    const sealed = sealProvisioningMessage(kp.publicKey, plaintext);
    const refuses = (priv: Uint8Array, bytes: Uint8Array) =>
      assert.throws(() => openProvisioningMessage(priv, bytes), (e) => e instanceof CryptoError && e.code === 'INVALID_MESSAGE');
    refuses(generateProvisioningKeyPair().privateKey, sealed);
    for (const i of [0, 5, 40, sealed.length - 20, sealed.length - 1]) {
      const bad = new Uint8Array(sealed);
      bad[i]! ^= 1;
      refuses(kp.privateKey, bad);
    }
    refuses(kp.privateKey, sealed.subarray(0, 50));
  });

  it('refuses a public key that is no key', () => {
    assert.throws(() => sealProvisioningMessage(new Uint8Array(33), plaintext), (e) => e instanceof CryptoError && e.code === 'INVALID_KEY');
  });
});
