// SPDX-License-Identifier: AGPL-3.0-only
/**
 * The key server's storage port (CONVENTIONS 1): accounts, devices, link tokens and public
 * prekeys. The embedded adapter is SQLite; a Cassandra adapter will implement the same
 * interface and pass the same contract suite (`describeKeyStoreContract` in ./testing).
 *
 * Every method is async so that a networked backend fits. Callers pass validated, canonical
 * values (branded ids, lowercase usernames, verified keys, hashes of secrets): the store checks
 * invariants that need its data (uniqueness, caps, single use), not the format of its input.
 * Methods that write are all-or-nothing: when one throws, nothing of the call was written.
 */
import type { Aci, DeviceId, PushProvider, RegistrationId } from '@parley/protocol';

/** A one-time EC prekey as stored: its id and 33-byte public key. */
export interface StoredPreKey {
  readonly keyId: number;
  readonly publicKey: Uint8Array;
}

/** A signed EC prekey or a Kyber prekey: id, public key and the identity key's signature. */
export interface StoredSignedPreKey {
  readonly keyId: number;
  readonly publicKey: Uint8Array;
  readonly signature: Uint8Array;
}

/** An account. */
export interface StoredAccount {
  readonly aci: Aci;
  /** Canonical (lowercase) username, unique in the store. */
  readonly username: string;
  /** 33-byte identity public key, shared by every device of the account. */
  readonly identityKey: Uint8Array;
  /** Milliseconds since the epoch. */
  readonly createdAt: number;
}

/** A device of an account. */
export interface StoredDevice {
  readonly aci: Aci;
  readonly deviceId: DeviceId;
  readonly registrationId: RegistrationId;
  /** SHA-256 of the device's auth secret (the secret itself is never stored). */
  readonly secretHash: Uint8Array;
  /** Milliseconds since the epoch. */
  readonly createdAt: number;
}

/** Keys a device uploads; absent parts are left as they are. */
export interface KeyUpload {
  /** Replaces the device's signed EC prekey. */
  readonly signedPreKey?: StoredSignedPreKey;
  /** Replaces the device's last-resort Kyber prekey. */
  readonly lastResortKyberPreKey?: StoredSignedPreKey;
  /** Added to the device's one-time EC prekeys; a key id already stored is replaced. */
  readonly preKeys?: readonly StoredPreKey[];
  /** Added to the device's one-time Kyber prekeys; a key id already stored is replaced. */
  readonly kyberPreKeys?: readonly StoredSignedPreKey[];
}

/** Keys every new device brings: the signed and last-resort keys are required. */
export interface NewDeviceKeys extends KeyUpload {
  readonly signedPreKey: StoredSignedPreKey;
  readonly lastResortKyberPreKey: StoredSignedPreKey;
}

/** A device to create; its id is chosen by the store when linking. */
export interface NewDevice {
  readonly registrationId: RegistrationId;
  /** SHA-256 of the auth secret. */
  readonly secretHash: Uint8Array;
  /** Milliseconds since the epoch. */
  readonly createdAt: number;
  readonly keys: NewDeviceKeys;
}

/** A new account with its first device (device 1). */
export interface NewAccount {
  readonly aci: Aci;
  /** Canonical (lowercase) username. */
  readonly username: string;
  readonly identityKey: Uint8Array;
  /** Milliseconds since the epoch. */
  readonly createdAt: number;
  readonly device: NewDevice;
}

/** A link token to store: only a hash of the bearer token is kept. */
export interface NewLinkToken {
  /** SHA-256 of the token. */
  readonly tokenHash: Uint8Array;
  /** The account a device linked with this token joins. */
  readonly aci: Aci;
  /** Milliseconds since the epoch. */
  readonly createdAt: number;
  /** Milliseconds since the epoch; the token is refused from this instant on. */
  readonly expiresAt: number;
}

/** A link token that can still be used. */
export interface LiveLinkToken {
  readonly aci: Aci;
  readonly expiresAt: number;
}

/** A request to link a device with a token. */
export interface LinkDeviceInput {
  /** SHA-256 of the presented token. */
  readonly tokenHash: Uint8Array;
  /** The current time, milliseconds since the epoch: expired tokens are refused. */
  readonly now: number;
  /** The account's device cap (1..127). */
  readonly maxDevices: number;
  readonly device: NewDevice;
}

/** Result of a successful link. */
export interface LinkedDevice {
  readonly aci: Aci;
  /** The lowest device id in 1..127 the account does not use. */
  readonly deviceId: DeviceId;
}

/** How many one-time keys a device has left. */
export interface KeyCounts {
  readonly preKeys: number;
  readonly kyberPreKeys: number;
}

/** One device's claimed bundle keys. */
export interface ClaimedDeviceKeys {
  readonly deviceId: DeviceId;
  readonly registrationId: RegistrationId;
  readonly signedPreKey: StoredSignedPreKey;
  /** A one-time Kyber prekey (now deleted), or the last-resort one when none was left. */
  readonly kyberPreKey: StoredSignedPreKey;
  /** True when `kyberPreKey` is the last-resort key. */
  readonly kyberPreKeyIsLastResort: boolean;
  /** A one-time EC prekey (now deleted); absent when none was left. */
  readonly preKey?: StoredPreKey;
}

/** Which devices of an account a claim covers. */
export interface ClaimSelection {
  /** Only this device; default every device. */
  readonly deviceId?: DeviceId;
  /** Every device but this one (a device claiming its own account's bundles skips itself). */
  readonly exceptDeviceId?: DeviceId;
}

/** A device's push token: what its app got from its platform's push service. */
export interface StoredPushToken {
  readonly provider: PushProvider;
  /** The provider's device token. Secret: never logged. */
  readonly token: string;
  /** Milliseconds since the epoch. */
  readonly updatedAt: number;
}

/** Outcome of {@link KeyStore.removeDevice}. */
export type RemoveDeviceResult = 'removed' | 'not-found' | 'last-device';

/** Storage of accounts, devices, link tokens and public prekeys. */
export interface KeyStore {
  /**
   * Creates an account, its device 1 and that device's keys, atomically.
   * @throws ParleyError USERNAME_TAKEN when the username exists; TOO_MANY_KEYS when a batch holds more one-time keys than `maxStoredPreKeys`.
   */
  createAccount(account: NewAccount, maxStoredPreKeys: number): Promise<void>;
  /** The account, or undefined. */
  getAccount(aci: Aci): Promise<StoredAccount | undefined>;
  /** The account with this canonical username, or undefined. */
  findAccountByUsername(username: string): Promise<StoredAccount | undefined>;
  /** One device, or undefined. */
  getDevice(aci: Aci, deviceId: DeviceId): Promise<StoredDevice | undefined>;
  /** Every device of the account in device id order; empty when there is no such account. */
  listDevices(aci: Aci): Promise<StoredDevice[]>;

  /** Stores a link token. Expired tokens (of any account) may be purged on the way. */
  createLinkToken(token: NewLinkToken): Promise<void>;
  /** The token's account when the token exists, is unused and `now` is before its expiry. */
  findLinkToken(tokenHash: Uint8Array, now: number): Promise<LiveLinkToken | undefined>;
  /**
   * Consumes the token and adds the device (lowest free id) with its keys, atomically.
   * @throws ParleyError INVALID_LINK_TOKEN when the token is unknown, used or expired;
   * DEVICE_LIMIT when the account has `maxDevices` devices (the token stays usable);
   * TOO_MANY_KEYS as in createAccount.
   */
  linkDevice(request: LinkDeviceInput, maxStoredPreKeys: number): Promise<LinkedDevice>;
  /**
   * Removes a device and every key it uploaded. An account always keeps at least one device:
   * removing its last one answers 'last-device' and changes nothing.
   */
  removeDevice(aci: Aci, deviceId: DeviceId): Promise<RemoveDeviceResult>;

  /**
   * Replaces the signed and last-resort keys given and adds the one-time keys, atomically.
   * @throws ParleyError NOT_FOUND when the device does not exist; TOO_MANY_KEYS when a kind of
   * one-time key would then number more than `maxStoredPreKeys` (nothing is written).
   */
  storeKeys(aci: Aci, deviceId: DeviceId, upload: KeyUpload, maxStoredPreKeys: number): Promise<void>;
  /** One-time keys left on the device; undefined when the device does not exist. */
  countKeys(aci: Aci, deviceId: DeviceId): Promise<KeyCounts | undefined>;
  /**
   * Claims the bundles of the selected devices (in device id order), atomically: per device one
   * one-time EC prekey and one one-time Kyber prekey are removed and returned (oldest upload
   * first). A one-time key is never returned twice, also under concurrent claims. Empty when the
   * account or device does not exist.
   */
  claimKeys(aci: Aci, select?: ClaimSelection): Promise<ClaimedDeviceKeys[]>;

  /**
   * Sets (or replaces) the account's 16-byte sealed-sender access key.
   * @returns false when there is no such account (nothing is written).
   */
  setAccessKey(aci: Aci, accessKey: Uint8Array, updatedAt: number): Promise<boolean>;
  /**
   * The access keys of the given accounts that have one; accounts without a key and unknown
   * accounts are absent from the map. One call for a whole multi-recipient send.
   */
  getAccessKeys(acis: readonly Aci[]): Promise<Map<Aci, Uint8Array>>;

  /**
   * Stores the account's presence token (its SHA-256; the token itself is never stored),
   * replacing any earlier one, atomically.
   * @returns true when the hash differs from the one stored before (presence turned on, or the
   * token rotated), false when the same hash was stored already.
   * @throws ParleyError NOT_FOUND when there is no such account (nothing is written).
   */
  setPresenceToken(aci: Aci, tokenHash: Uint8Array, updatedAt: number): Promise<boolean>;
  /** Turns the account's presence off: forgets its token. @returns true when one was stored. */
  clearPresenceToken(aci: Aci): Promise<boolean>;
  /** SHA-256 of the account's presence token; undefined when presence is off or there is no such account. */
  getPresenceToken(aci: Aci): Promise<Uint8Array | undefined>;

  /**
   * Sets the device's push token, replacing its previous one. A token is one app install: when
   * another device holds the same provider and token, it loses it (atomically with this write).
   * @throws ParleyError NOT_FOUND when there is no such device (nothing is written).
   */
  setPushToken(aci: Aci, deviceId: DeviceId, token: StoredPushToken): Promise<void>;
  /** The device's push token; undefined when it has none or there is no such device. */
  getPushToken(aci: Aci, deviceId: DeviceId): Promise<StoredPushToken | undefined>;
  /**
   * Removes the device's push token. With `onlyIf`, only when the stored token is exactly that
   * one: a provider's late "dead token" answer must not remove a token registered since.
   * @returns true when a token was removed.
   */
  removePushToken(aci: Aci, deviceId: DeviceId, onlyIf?: string): Promise<boolean>;

  /** Releases the store; no call may follow. */
  close(): Promise<void>;
}
