// SPDX-License-Identifier: AGPL-3.0-only
/**
 * The protocol store ports: what a device must persist for the Signal protocol, as plain bytes.
 * Records are serialized libsignal records this package produces and reads; implementations
 * store them opaquely and never parse them, so a client can back these with SQLCipher without
 * seeing libsignal. Every method may be async. An implementation must return copies (or never
 * mutate what it returned) and must not keep a reference to a buffer it was given.
 *
 * Keys: sessions and sender keys by device address `"<aci>.<deviceId>"` (see formatAddress);
 * identities by ACI alone, because the identity key belongs to the account and all its devices
 * share it (DESIGN §3); prekeys by key id, in three separate id spaces (one-time EC, signed EC,
 * Kyber).
 */

/** Which way a message goes when libsignal asks whether an identity key is trusted. */
export type TrustDirection = 'sending' | 'receiving';

/**
 * The device's own identity and what it knows of its peers' identity keys.
 *
 * Trust policy (implementations must keep it; the contract suite checks it):
 * - Trust on first use: a peer's first key seen is trusted.
 * - Sending: only to the key the user trusts. After a peer's key changes, isTrustedIdentity(…,
 *   'sending') answers false until the user accepts the new key with acceptIdentity. A changed
 *   safety number therefore stops outgoing messages instead of passing unnoticed.
 * - Receiving: always trusted. As in Signal, a message from a peer who reinstalled is still
 *   decrypted and shown, so nothing is lost; saveIdentity records the new key and reports the
 *   change, and the conversation stays blocked for sending until the user decides.
 */
export interface IdentityStore {
  /** This device's serialized libsignal IdentityKeyPair. */
  getIdentityKeyPair(): Promise<Uint8Array>;
  /** This device's registration id, 1..16383. */
  getLocalRegistrationId(): Promise<number>;
  /**
   * Records `identityKey` (33 bytes) as the key last seen for account `aci`. Returns true when it
   * replaced a different key. A first key is also recorded as trusted; a replacing key is not.
   */
  saveIdentity(aci: string, identityKey: Uint8Array): Promise<boolean>;
  /** Whether `identityKey` may be used for account `aci` in `direction` (see the trust policy). */
  isTrustedIdentity(aci: string, identityKey: Uint8Array, direction: TrustDirection): Promise<boolean>;
  /** The key last seen for `aci` (trusted or not), or undefined when none was seen. */
  getIdentity(aci: string): Promise<Uint8Array | undefined>;
  /** The user accepts `identityKey` for `aci`: it becomes both the seen and the trusted key. */
  acceptIdentity(aci: string, identityKey: Uint8Array): Promise<void>;
}

/** Double Ratchet session records, one per peer device. */
export interface SessionStore {
  /** The record for `address`, or undefined. */
  getSession(address: string): Promise<Uint8Array | undefined>;
  /** Stores (replaces) the record for `address`. */
  saveSession(address: string, record: Uint8Array): Promise<void>;
  /** Removes the record for `address`; no error when there is none. */
  deleteSession(address: string): Promise<void>;
  /** Removes the records of every device of account `aci`. */
  deleteAllSessions(aci: string): Promise<void>;
  /** Device ids of account `aci` that have a record, ascending. */
  getSessionDeviceIds(aci: string): Promise<number[]>;
}

/** One-time EC prekeys. */
export interface PreKeyStore {
  getPreKey(keyId: number): Promise<Uint8Array | undefined>;
  savePreKey(keyId: number, record: Uint8Array): Promise<void>;
  /** Called once a prekey message used the key: a one-time key must never be used twice. */
  removePreKey(keyId: number): Promise<void>;
}

/** Signed EC prekeys (the current one and, after rotation, a few older ones for late messages). */
export interface SignedPreKeyStore {
  getSignedPreKey(keyId: number): Promise<Uint8Array | undefined>;
  saveSignedPreKey(keyId: number, record: Uint8Array): Promise<void>;
  removeSignedPreKey(keyId: number): Promise<void>;
}

/** Kyber prekeys: one-time keys, and last-resort keys that may be used many times. */
export interface KyberPreKeyStore {
  getKyberPreKey(keyId: number): Promise<Uint8Array | undefined>;
  /** Stores a key; `lastResort` says it survives use (the key server hands it out when one-time keys run out). */
  saveKyberPreKey(keyId: number, record: Uint8Array, lastResort: boolean): Promise<void>;
  /**
   * A prekey message used the key together with signed prekey `signedPreKeyId` and the sender's
   * 33-byte `baseKey`. A one-time key is removed. A last-resort key stays, and the store
   * remembers the (signedPreKeyId, baseKey) pair: when that pair was already recorded for the key,
   * the message is a replay and the method returns false (the caller refuses the message).
   * Returns true otherwise. Remembered pairs may be dropped with the key.
   */
  markKyberPreKeyUsed(keyId: number, signedPreKeyId: number, baseKey: Uint8Array): Promise<boolean>;
  removeKyberPreKey(keyId: number): Promise<void>;
}

/** Sender key records for groups: one per (sender device, distribution id). */
export interface SenderKeyStore {
  /** The record of sender device `address` for group distribution `distributionId` (a lowercase UUID). */
  getSenderKey(address: string, distributionId: string): Promise<Uint8Array | undefined>;
  saveSenderKey(address: string, distributionId: string, record: Uint8Array): Promise<void>;
  /**
   * Forgets the record of sender device `address` for `distributionId`; no error when there is
   * none. A client calls it for a member's devices when the member leaves a group, and for its
   * own old distribution after rotating to a new one.
   */
  deleteSenderKey(address: string, distributionId: string): Promise<void>;
}

/** Everything the protocol persists for one device. */
export interface ProtocolStores {
  readonly identity: IdentityStore;
  readonly sessions: SessionStore;
  readonly preKeys: PreKeyStore;
  readonly signedPreKeys: SignedPreKeyStore;
  readonly kyberPreKeys: KyberPreKeyStore;
  readonly senderKeys: SenderKeyStore;
}
