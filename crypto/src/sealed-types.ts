// SPDX-License-Identifier: AGPL-3.0-only
/**
 * The plain-data types of sealed sender and group sending on the client (the operations are
 * {@link SessionCipher} methods). Kept apart from the implementation so the package entry's
 * declarations never reach a libsignal type.
 */
import type { DeviceAddress } from './address.js';

/**
 * What the sender says the receiver should do when the message cannot be decrypted:
 * `default` — show an error; `resendable` — ask the sender to send it again (a ResendRequest) and
 * show nothing yet; `implicit` — drop it silently (typing indicators, receipts).
 */
export type SealedContentHint = 'default' | 'resendable' | 'implicit';

/** How the sealed content was encrypted: a 1:1 session start, a 1:1 message, a group sender-key message, or a plaintext decryption-error report. */
export type SealedContentKind = 'prekey' | 'ciphertext' | 'senderkey' | 'plaintext';

/** Options of `SessionCipher.sealedEncrypt`. */
export interface SealedEncryptOptions {
  /** Default `default`. */
  readonly contentHint?: SealedContentHint;
  /** The group the message belongs to, if any (sealed inside; the relay never sees it). */
  readonly groupId?: Uint8Array;
}

/** Options of `SessionCipher.sealedDecrypt`. */
export interface SealedDecryptOptions {
  /** The 33-byte trust roots of every domain the device accepts certificates from (at least one). */
  readonly trustRoots: readonly Uint8Array[];
  /** The envelope's server timestamp in milliseconds: the certificate must be valid at that time. */
  readonly timestamp: number;
  /** This device's ACI and device id (a sealed message from this very device is refused). */
  readonly localAci: string;
  readonly localDeviceId: number;
}

/** An opened sealed message. */
export interface SealedDecryptResult {
  /** The sender, as its validated certificate names it. */
  readonly senderAci: string;
  readonly senderDeviceId: number;
  /** The sender's 33-byte identity key from the certificate (checked against the content). */
  readonly senderIdentityKey?: Uint8Array;
  readonly kind: SealedContentKind;
  readonly plaintext: Uint8Array;
  /** The group id the sender put into the seal, if any. */
  readonly groupId?: Uint8Array;
  readonly contentHint: SealedContentHint;
}


/** Input of `SessionCipher.groupEncryptMulti`. */
export interface GroupEncryptInput {
  /** This device (must be the cipher's local address). */
  readonly self: DeviceAddress;
  /** This device's sender key distribution for the group, a lowercase UUID. */
  readonly distributionId: string;
  readonly plaintext: Uint8Array;
  /** This device's current sender certificate. */
  readonly senderCertificate: Uint8Array;
  /** Every recipient device (each needs a session); at least one, no duplicates, not this device. */
  readonly recipients: readonly DeviceAddress[];
  /** The group's id, sealed inside for the recipients. */
  readonly groupId: Uint8Array;
  /** Default `default`. */
  readonly contentHint?: SealedContentHint;
  /**
   * Accounts deliberately left out (lowercase UUIDs), listed in the payload so the relay can
   * tell a deliberate omission from a forgotten device; must not overlap the recipients.
   */
  readonly excludedAcis?: readonly string[];
}

/** Result of `SessionCipher.processSenderKeyDistribution`. */
export interface SenderKeyDistributionInfo {
  /** The distribution the sender key belongs to, a lowercase UUID. */
  readonly distributionId: string;
}
