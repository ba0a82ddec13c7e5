// SPDX-License-Identifier: AGPL-3.0-only
/**
 * Provisioning envelopes for linking a device (DESIGN §3). The new device makes a one-off
 * Curve25519 key pair and shows its public key in the link code; an existing device seals the
 * provisioning message (identity key pair, ACI, link token) to it. Sealing: an ephemeral key
 * pair, ECDH with the recipient key, HKDF-SHA256 to an AES-256-GCM key; the ephemeral public
 * key travels in front. The relay that carries it sees only ciphertext.
 *
 * Layout: version (1 byte, 1) | ephemeral public key (33) | nonce (12) | ciphertext | tag (16).
 */
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';
import { PrivateKey, PublicKey } from '@signalapp/libsignal-client';
import { CryptoError } from './errors.js';
import { owned } from './key-verification.js';

const VERSION = 1;
const INFO = new TextEncoder().encode('parley provisioning v1');
const HEADER = 1 + 33 + 12;
const TAG = 16;

/** A one-off key pair of a device being linked. `privateKey` is secret. */
export interface ProvisioningKeyPair {
  readonly publicKey: Uint8Array;
  readonly privateKey: Uint8Array;
}

/** A fresh provisioning key pair. */
export function generateProvisioningKeyPair(): ProvisioningKeyPair {
  const priv = PrivateKey.generate();
  return { publicKey: priv.getPublicKey().serialize(), privateKey: priv.serialize() };
}

function deriveKey(shared: Uint8Array, ephemeralPublic: Uint8Array, recipientPublic: Uint8Array): Buffer {
  // Both public keys in the salt bind the key to this exchange.
  const salt = Buffer.concat([ephemeralPublic, recipientPublic]);
  return Buffer.from(hkdfSync('sha256', shared, salt, INFO, 32));
}

/**
 * Seals `plaintext` to the linking device's public key.
 * @throws CryptoError INVALID_KEY when `recipientPublicKey` is not a Curve25519 public key.
 */
export function sealProvisioningMessage(recipientPublicKey: Uint8Array, plaintext: Uint8Array): Uint8Array {
  let recipient: PublicKey;
  try {
    recipient = PublicKey.deserialize(owned(recipientPublicKey));
  } catch {
    throw new CryptoError('INVALID_KEY', 'the link code holds no valid public key');
  }
  const ephemeral = PrivateKey.generate();
  const ephemeralPublic = ephemeral.getPublicKey().serialize();
  const key = deriveKey(ephemeral.agree(recipient), ephemeralPublic, recipientPublicKey);
  const nonce = randomBytes(12);
  const header = Buffer.concat([Buffer.of(VERSION), ephemeralPublic, nonce]);
  const cipher = createCipheriv('aes-256-gcm', key, nonce);
  cipher.setAAD(header);
  const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return new Uint8Array(Buffer.concat([header, body, cipher.getAuthTag()]));
}

/**
 * Opens a sealed provisioning message with the linking device's private key.
 * @throws CryptoError INVALID_MESSAGE when it was not sealed to this key or was altered.
 */
export function openProvisioningMessage(privateKey: Uint8Array, sealed: Uint8Array): Uint8Array {
  const fail = (): never => {
    throw new CryptoError('INVALID_MESSAGE', 'the provisioning message cannot be opened with this link code');
  };
  if (sealed.length < HEADER + TAG || sealed[0] !== VERSION) fail();
  const header = sealed.subarray(0, HEADER);
  const ephemeralPublic = sealed.subarray(1, 34);
  const nonce = sealed.subarray(34, HEADER);
  try {
    const priv = PrivateKey.deserialize(owned(privateKey));
    const key = deriveKey(priv.agree(PublicKey.deserialize(owned(ephemeralPublic))), ephemeralPublic, priv.getPublicKey().serialize());
    const decipher = createDecipheriv('aes-256-gcm', key, nonce);
    decipher.setAAD(header);
    decipher.setAuthTag(sealed.subarray(sealed.length - TAG));
    return new Uint8Array(Buffer.concat([decipher.update(sealed.subarray(HEADER, sealed.length - TAG)), decipher.final()]));
  } catch {
    return fail();
  }
}
