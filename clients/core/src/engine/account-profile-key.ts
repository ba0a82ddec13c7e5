// SPDX-License-Identifier: AGPL-3.0-only
/**
 * The account's profile key and contacts' profile keys (DESIGN §5, §6).
 *
 * - The account has one 32-byte profile key, shared by its devices: made at registration (or on
 *   the first open of a profile that predates sealed sender), handed to a linked device in the
 *   provisioning message, and synced to the account's devices in `SettingsSync.profile_key`
 *   (the higher version wins). The access key derived from it is registered with the relay
 *   after every change; an upload that fails is retried on the next connection.
 * - Every Content to a contact who is not blocked carries the key (`Content.profile_key`);
 *   Content to a blocked one never does. When the block set gains someone the key is replaced
 *   (rotation): the new access key goes to the relay, the new key to the account's devices and,
 *   with their next message, to every contact but the blocked ones, so a blocked contact's
 *   sealed sends are refused from then on.
 * - A contact's key is stored from a received Content once decryption proved who sent it, and
 *   gives the access key for sealed sends to that contact.
 */
import { deriveAccessKey, generateProfileKey } from '@parley/crypto';
import { ClientError } from '../errors.js';
import { withProfileKey } from './content-codec.js';
import type { SealedSenderStore } from './sealed-sender-store.js';

/** Who is blocked, as far as profile keys are concerned (the blocking module answers it). */
export interface BlockedContacts {
  /** Whether the account blocks `aci`. */
  isBlocked(aci: string): boolean;
}

/** Nobody is blocked (until a block list is wired in). */
export const NOBODY_BLOCKED: BlockedContacts = Object.freeze({ isBlocked: () => false });

/** What the relay must do for profile keys. */
export interface AccessKeyApi {
  putAccessKey(accessKey: Uint8Array): Promise<void>;
}

/** What {@link AccountProfileKey} needs. */
export interface AccountProfileKeyDeps {
  readonly store: SealedSenderStore;
  /** This account's ACI (its own devices get no profile key in Content: they have it). */
  readonly selfAci: string;
  readonly blocked: () => BlockedContacts;
  readonly now: () => number;
  /**
   * Whether this device takes sealed messages (a trust root is pinned): only then is the key
   * handed out, so no contact sends sealed what this device could not open. Default: yes.
   */
  readonly sealedSenderOn?: () => boolean;
}

/** The `SettingsSync` fields this module owns. */
export interface ProfileKeySyncFields {
  readonly version: bigint;
  readonly profileKey: Uint8Array;
}

function sameBytes(a: Uint8Array | undefined, b: Uint8Array | undefined): boolean {
  return a !== undefined && b !== undefined && a.length === b.length && a.every((x, i) => x === b[i]);
}

/**
 * Makes the account's profile key when it has none (a new account, or a profile from before
 * sealed sender); with `given` (a linked device's key from its provisioning message) takes that
 * one. Returns the key.
 */
export function ensureAccountProfileKey(
  store: Pick<SealedSenderStore, 'accountProfileKey' | 'setAccountProfileKey'>,
  nowMs: number,
  given?: { readonly key: Uint8Array; readonly version: number },
): Uint8Array {
  const existing = store.accountProfileKey();
  if (existing) return existing.key;
  const key = given?.key ?? generateProfileKey();
  store.setAccountProfileKey(key, given?.version ?? nowMs);
  return key;
}

/** See the module comment. */
export class AccountProfileKey {
  private readonly deps: AccountProfileKeyDeps;

  constructor(deps: AccountProfileKeyDeps) {
    this.deps = deps;
  }

  /** The current key (32 bytes), or undefined before there is one. Secret. */
  current(): Uint8Array | undefined {
    return this.deps.store.accountProfileKey()?.key;
  }

  /** The current key's access key (16 bytes), or undefined. */
  accessKey(): Uint8Array | undefined {
    const key = this.current();
    return key && deriveAccessKey(key);
  }

  /** Whether the relay has accepted the current key's access key from this device. */
  uploaded(): boolean {
    const state = this.deps.store.accountProfileKey();
    return state !== undefined && sameBytes(state.uploadedAccessKey, deriveAccessKey(state.key));
  }

  /** See {@link ensureAccountProfileKey}. */
  ensure(given?: { readonly key: Uint8Array; readonly version: number }): Uint8Array {
    return ensureAccountProfileKey(this.deps.store, this.deps.now(), given);
  }

  /**
   * Replaces the key (after a block). Returns the SettingsSync fields to send to the account's
   * other devices; the caller queues them and uploads the new access key. The version is at
   * least `minVersion` (the sync's other fields may need it higher).
   */
  rotate(minVersion = 0): ProfileKeySyncFields {
    const previous = this.deps.store.accountProfileKey();
    // A version above every earlier one, also when the clock went back.
    const version = Math.max(this.deps.now(), (previous?.version ?? 0) + 1, minVersion);
    const key = generateProfileKey();
    this.deps.store.setAccountProfileKey(key, version);
    return { version: BigInt(version), profileKey: key };
  }

  /** The SettingsSync fields of the current key (for a settings sync built elsewhere). */
  syncFields(): ProfileKeySyncFields | undefined {
    const state = this.deps.store.accountProfileKey();
    return state && { version: BigInt(state.version), profileKey: state.key };
  }

  /**
   * Takes the key another device of the account synced, when it is newer than this device's.
   * Returns whether it was adopted (then the caller uploads its access key: idempotent, and it
   * makes the relay's copy converge on the newest key).
   */
  adoptSynced(fields: { readonly version: bigint; readonly profileKey: Uint8Array }): boolean {
    if (fields.profileKey.length !== 32) return false;
    const current = this.deps.store.accountProfileKey();
    const version = Number(fields.version);
    if (!Number.isSafeInteger(version) || (current && (version <= current.version || sameBytes(current.key, fields.profileKey)))) return false;
    this.deps.store.setAccountProfileKey(fields.profileKey, version);
    return true;
  }

  /**
   * Uploads the current key's access key unless the relay has it already. A relay without
   * sealed sender (NOT_FOUND on the route) is left alone; other failures propagate, and the
   * upload is tried again on the next connection.
   */
  async uploadIfDue(api: AccessKeyApi): Promise<void> {
    const state = this.deps.store.accountProfileKey();
    if (!state) return;
    const accessKey = deriveAccessKey(state.key);
    if (sameBytes(state.uploadedAccessKey, accessKey)) return;
    await api.putAccessKey(accessKey);
    // A rotation may have happened while the upload ran; record only what was uploaded.
    if (sameBytes(this.deps.store.accountProfileKey()?.key, state.key)) this.deps.store.markAccessKeyUploaded(accessKey);
  }

  /**
   * `content` as it goes to `destinationAci`: with the current profile key for a contact who is
   * not blocked, without any for a blocked one, the account's own devices, or while this device
   * has no trust root to open sealed messages with. Content bytes that do not decode are
   * returned unchanged.
   */
  contentFor(destinationAci: string, content: Uint8Array): Uint8Array {
    const withhold = destinationAci === this.deps.selfAci || this.deps.blocked().isBlocked(destinationAci) || this.deps.sealedSenderOn?.() === false;
    const key = withhold ? undefined : this.current();
    return withProfileKey(content, key) ?? content;
  }

  /**
   * Stores `profileKey` for `senderAci`, who decryption proved sent it. Keys of one's own
   * account and keys of the wrong length are ignored. Returns whether it was new or changed.
   * Call it inside the transaction that commits the decrypted envelope.
   */
  acceptFromContact(senderAci: string, profileKey: Uint8Array): boolean {
    if (senderAci === this.deps.selfAci || profileKey.length !== 32) return false;
    try {
      // Every message from a contact carries the key; it changes rarely, so compare before deriving.
      if (sameBytes(this.deps.store.contactKey(senderAci)?.profileKey, profileKey)) return false;
      return this.deps.store.saveContactKey(senderAci, profileKey, deriveAccessKey(profileKey), this.deps.now()) !== 'unchanged';
    } catch (err) {
      if (err instanceof ClientError && err.is('INVALID_ARGUMENT')) return false;
      throw err;
    }
  }
}
