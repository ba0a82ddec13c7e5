// SPDX-License-Identifier: AGPL-3.0-only
/**
 * @parley/crypto — the one package that touches libsignal. Everything it exports is plain data
 * (bytes, numbers, strings) or its own types; no libsignal type crosses this entry.
 */
export { isValidEcPublicKey, isValidKyberPublicKey, owned, verifyPreKeySignature } from './key-verification.js';
export { CRYPTO_ERROR_CODES, CryptoError, type CryptoErrorCode, type CryptoErrorOptions } from './errors.js';
export { type DeviceAddress, checkAddress, formatAddress, parseAddress } from './address.js';
export { type LocalIdentity, generateIdentity, generateRegistrationId, identityFromKeyPair } from './identity.js';
export {
  PREKEY_ID_MAX,
  type GeneratedKyberPreKey,
  type GeneratedPreKey,
  type GeneratedSignedPreKey,
  type PreKeyUpload,
  type SignedPreKeyUpload,
  generateKyberPreKey,
  generateKyberPreKeys,
  generatePreKeys,
  generateSignedPreKey,
  isValidPreKeyId,
  nextPreKeyId,
} from './prekeys.js';
export type {
  IdentityStore,
  KyberPreKeyStore,
  PreKeyStore,
  ProtocolStores,
  SenderKeyStore,
  SessionStore,
  SignedPreKeyStore,
  TrustDirection,
} from './stores.js';
export {
  MemoryIdentityStore,
  MemoryKyberPreKeyStore,
  MemoryPreKeyStore,
  MemorySenderKeyStore,
  MemorySessionStore,
  MemorySignedPreKeyStore,
  createMemoryStores,
} from './memory-stores.js';
export {
  type CiphertextType,
  type Clock,
  type EncryptedMessage,
  type PreKeyBundleInput,
  type PublicPreKeyInput,
  type SessionCipherOptions,
  type SignedPublicPreKeyInput,
  SessionCipher,
} from './session.js';
export type {
  GroupEncryptInput,
  SealedContentHint,
  SealedContentKind,
  SealedDecryptOptions,
  SealedDecryptResult,
  SealedEncryptOptions,
  SenderKeyDistributionInfo,
} from './sealed-types.js';
export {
  SAFETY_NUMBER_ITERATIONS,
  SAFETY_NUMBER_VERSION,
  type SafetyNumber,
  type SafetyNumberParty,
  compareScannedSafetyNumber,
  safetyNumber,
} from './safety-number.js';
export { randomBytes, randomMessageId } from './random.js';
export { DEFAULT_CERTIFICATE_MEMO_SIZE, SenderCertificateMemo } from './certificate-memo.js';
export {
  ATTACHMENT_DIGEST_BYTES,
  ATTACHMENT_IV_BYTES,
  ATTACHMENT_KEY_BYTES,
  ATTACHMENT_MAC_BYTES,
  ATTACHMENT_MAX_PLAINTEXT_BYTES,
  ATTACHMENT_MIN_PADDED_BYTES,
  AttachmentDecryptor,
  AttachmentEncryptor,
  type AttachmentDecryptorOptions,
  type AttachmentEncryptorOptions,
  type AttachmentEncryptResult,
  createAttachmentDecryptor,
  createAttachmentEncryptor,
  encryptedAttachmentSize,
  generateAttachmentKey,
  paddedAttachmentSize,
} from './attachments.js';
export * from './provisioning.js';
export {
  REVOKED_SERVER_CERTIFICATE_KEY_ID,
  type SenderCertificateInfo,
  type SenderCertificateInput,
  type ServerCertificateKeys,
  type TrustRootKeyPair,
  createServerCertificate,
  generateTrustRoot,
  issueSenderCertificate,
  publicKeyOf,
  readSenderCertificate,
  readServerCertificate,
  validateSenderCertificate,
} from './sender-certificates.js';
export {
  SEALED_SENDER_V2_RECEIVED_VERSION,
  type MultiRecipientDevice,
  type MultiRecipientMessage,
  type MultiRecipientRecipient,
  joinMultiRecipientPart,
  parseMultiRecipientMessage,
} from './multi-recipient.js';
export {
  ACCESS_KEY_BYTES,
  ACCESS_KEY_LABEL,
  PRESENCE_TOKEN_BYTES,
  PROFILE_KEY_BYTES,
  accessKeysEqual,
  combineAccessKeys,
  deriveAccessKey,
  generatePresenceToken,
  generateProfileKey,
} from './access-keys.js';
