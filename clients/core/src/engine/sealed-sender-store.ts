// SPDX-License-Identifier: AGPL-3.0-only
/**
 * The engine's store port for sealed sender (DESIGN §5): the account profile key, contacts'
 * profile keys, pinned trust roots and the cached sender certificate. The SQLCipher store
 * implements it (store-adapter.ts over store/account-profile-key.ts, store/contact-keys.ts,
 * store/sender-certificate-store.ts). Outbox attempts carry their sealed state on
 * `OutboxEntry` (engine-store.ts).
 */

/** The account's profile key as the engine sees it. `key` is secret. */
export interface EngineProfileKey {
  /** 32 bytes. */
  readonly key: Uint8Array;
  /** Between the account's devices the higher version wins. */
  readonly version: number;
  /** The access key the relay last accepted from this device (16 bytes), if any. */
  readonly uploadedAccessKey?: Uint8Array;
}

/** A contact's keys. Secret. */
export interface EngineContactKey {
  /** 32 bytes. */
  readonly profileKey: Uint8Array;
  /** 16 bytes: what a sealed send to the contact presents. */
  readonly accessKey: Uint8Array;
}

/** What the sealed-sender modules read and write. Synchronous (SQLCipher is). */
export interface SealedSenderStore {
  /** The account profile key, or undefined before one was made or received. */
  accountProfileKey(): EngineProfileKey | undefined;
  /** Makes `key` (32 bytes) the account profile key at `version`. */
  setAccountProfileKey(key: Uint8Array, version: number): void;
  /** Records that the relay accepted `accessKey` for the account. */
  markAccessKeyUploaded(accessKey: Uint8Array): void;

  /** `aci`'s profile key, or undefined. */
  contactKey(aci: string): EngineContactKey | undefined;
  /** Stores `aci`'s profile key (from a message decryption proved to be `aci`'s). */
  saveContactKey(aci: string, profileKey: Uint8Array, accessKey: Uint8Array, nowMs: number): 'new' | 'changed' | 'unchanged';
  /** Drops `aci`'s key if its access key is still `accessKey` (the one the relay refused). */
  dropContactKeyIfStale(aci: string, accessKey: Uint8Array): boolean;

  /** The trust root pinned for `domain`, or undefined. */
  trustRoot(domain: string): Uint8Array | undefined;
  /** Every pinned trust root. */
  trustRoots(): Uint8Array[];
  /**
   * Pins `publicKey` for `domain` unless one is pinned; 'conflict' when another one is (then it
   * is remembered as refused until the relay announces the pinned one again).
   */
  pinTrustRoot(domain: string, publicKey: Uint8Array, nowMs: number): 'pinned' | 'unchanged' | 'conflict';
  /** Whether the relay of `domain` last announced a root other than the pinned one. */
  trustRootRefused(domain: string): boolean;
  /** The cached sender certificate, or undefined. */
  cachedCertificate(): { readonly certificate: Uint8Array; readonly expiresAt: number } | undefined;
  /** Caches this device's sender certificate. */
  saveCertificate(certificate: Uint8Array, expiresAt: number): void;

  /**
   * Counts a sealed envelope that could not be opened and names no sender (a seal that does not
   * open, a certificate from an unpinned root): nobody can be shown or asked, but the user can
   * see that it happened.
   */
  noteUnreadableSealed(nowMs: number): void;
  /** How many sealed envelopes could not be opened, and when the last one came. */
  unreadableSealed(): { readonly count: number; readonly lastAt?: number };

  /** The relay refused entry `id` sealed: its later attempts go identified. */
  outboxSetIdentifiedOnly(id: number): void;
}
