// SPDX-License-Identifier: AGPL-3.0-only
/**
 * Sealed sender for one account, wired once by the composition root (DESIGN §5): the account
 * profile key, the certificate cache, sealed sending over the unidentified socket, the opening
 * of sealed envelopes, profile-key rotation when someone is blocked, and the status front ends
 * show. It hands the pipelines small hooks, so they know nothing of profile keys.
 */
import { toBase64Url, fromBase64Url, type RelayInfoResponse } from '@parley/protocol';
import { combineAccessKeys } from '@parley/crypto';
import type { RelayApi } from '../transport/relay-api.js';
import { UnidentifiedConnection } from '../transport/unidentified-connection.js';
import { AccountProfileKey, ensureAccountProfileKey, NOBODY_BLOCKED, type BlockedContacts } from './account-profile-key.js';
import { pinTrustRootFrom, SenderCertificateCache } from './certificate-cache.js';
import type { SealedSenderStatus } from './client-api.js';
import { encodeContent } from './content-codec.js';
import type { EngineStore } from './engine-store.js';
import { readPrivacy, type SettingsPort } from './privacy-settings.js';
import type { SettingsSyncMessage } from './receive-pipeline.js';
import { SealedReceiver } from './sealed-receive.js';
import { SealedSending } from './sealed-sender.js';
import type { SealedSenderStore } from './sealed-sender-store.js';

/** The provisioning-message fields that carry the profile key to a linked device. */
export interface ProvisionedProfileKey {
  /** base64url of the 32-byte key. */
  readonly profileKey?: string;
  readonly profileKeyVersion?: number;
}

/** What the feature needs. */
export interface SealedSenderFeatureDeps {
  readonly store: EngineStore & SealedSenderStore & SettingsPort;
  readonly api: RelayApi;
  readonly self: { readonly aci: string; readonly deviceId: number; readonly domain: string };
  readonly now: () => number;
  /** Who is blocked (the blocking module's answer); default nobody. */
  readonly blocked?: () => BlockedContacts;
}

/**
 * Pins the relay's trust root from `info` at registration or link, and makes the account's
 * profile key (or takes the one provisioned). Call it in the transaction that saves the account.
 */
export function setUpSealedSender(
  store: SealedSenderStore,
  domain: string,
  info: RelayInfoResponse,
  nowMs: number,
  provisioned?: ProvisionedProfileKey,
): void {
  pinTrustRootFrom(store, domain, info, nowMs);
  const key = provisioned?.profileKey === undefined ? undefined : fromBase64Url(provisioned.profileKey);
  const version = provisioned?.profileKeyVersion;
  ensureAccountProfileKey(
    store,
    nowMs,
    key && key.length === 32 ? { key, version: Number.isSafeInteger(version) && version! >= 0 ? version! : nowMs } : undefined,
  );
}

/** The profile-key fields of a provisioning message for a device joining this account. */
export function provisionedProfileKey(store: SealedSenderStore): ProvisionedProfileKey {
  const state = store.accountProfileKey();
  return state ? { profileKey: toBase64Url(state.key), profileKeyVersion: state.version } : {};
}

/** See the module comment. */
export class SealedSenderFeature {
  readonly profileKey: AccountProfileKey;
  readonly certificates: SenderCertificateCache;
  readonly sending: SealedSending;
  readonly receiver: SealedReceiver;
  private readonly deps: SealedSenderFeatureDeps;
  private unidentified: UnidentifiedConnection | undefined;

  constructor(deps: SealedSenderFeatureDeps) {
    this.deps = deps;
    const { store, self, now } = deps;
    this.profileKey = new AccountProfileKey({
      store,
      selfAci: self.aci,
      blocked: () => (deps.blocked ?? (() => NOBODY_BLOCKED))(),
      now,
      sealedSenderOn: () => store.trustRoot(self.domain) !== undefined,
    });
    // A profile from before sealed sender gets its key on first open; its access key is
    // uploaded on the next connection.
    this.profileKey.ensure();
    this.certificates = new SenderCertificateCache({ store, api: () => deps.api, self, now });
    this.sending = new SealedSending({
      store,
      certificates: this.certificates,
      connection: () => (this.unidentified ??= new UnidentifiedConnection({ url: deps.api.unidentifiedWebsocketUrl })),
      selfAci: self.aci,
      now,
    });
    this.receiver = new SealedReceiver({ self, trustRoots: () => this.trustRoots() });
  }

  /** What the send pipeline applies to a Content before encrypting it for `destinationAci`. */
  readonly prepareContent = (destinationAci: string, content: Uint8Array): Uint8Array => this.profileKey.contentFor(destinationAci, content);

  /** A contact's profile key from a decrypted Content (in the receive batch's transaction). */
  readonly onProfileKey = (senderAci: string, profileKey: Uint8Array): void => void this.profileKey.acceptFromContact(senderAci, profileKey);

  /** A SettingsSync from the account's own device: adopts a newer profile key (in the batch's transaction). */
  readonly onSettingsSync = (settings: SettingsSyncMessage): void => {
    // The transaction commits before the next turn; the upload reads the committed state.
    if (this.profileKey.adoptSynced(settings)) setImmediate(() => void this.uploadAccessKey().catch(() => undefined));
  };

  /** A sealed envelope that did not open and names nobody (in the receive batch's transaction). */
  readonly onUnreadableSealed = (nowMs: number): void => this.deps.store.noteUnreadableSealed(nowMs);

  /**
   * Upkeep after each connection drained: pins the home relay's trust root when none is (a
   * profile from before sealed sender) and uploads the access key if the relay does not have
   * the current one. Failures wait for the next connection.
   */
  async maintain(): Promise<void> {
    await this.trustRoots().catch(() => undefined);
    await this.uploadAccessKey().catch(() => undefined);
  }

  /**
   * Uploads the current access key unless the relay has it. Not before a trust root is pinned:
   * sealed messages this device could not open are not invited.
   */
  async uploadAccessKey(): Promise<void> {
    if (this.deps.store.trustRoot(this.deps.self.domain) === undefined) return;
    await this.profileKey.uploadIfDue(this.deps.api);
  }

  /**
   * Replaces the profile key after a block (call it in the transaction that commits the block):
   * the new key is queued for the account's other devices (SettingsSync) and goes to every
   * contact who is not blocked with the next message; the caller uploads the new access key
   * afterwards ({@link uploadAccessKey}; if that fails, the next connection does). From then
   * on the blocked contact's sealed sends present a stale access key and are refused.
   */
  rotateProfileKey(): void {
    // A SettingsSync carries the privacy settings too, and the newest version wins for them as
    // well: the rotation's sync carries this device's current settings at a version above
    // theirs, so the other devices take the key without losing a setting.
    const privacy = readPrivacy(this.deps.store);
    const fields = this.profileKey.rotate(privacy.version + 1);
    this.deps.store.outboxAdd({
      destinationAci: this.deps.self.aci,
      content: encodeContent({
        body: {
          case: 'sync',
          value: {
            kind: {
              case: 'settings',
              value: {
                ...fields,
                readReceipts: privacy.readReceipts,
                typingIndicators: privacy.typingIndicators,
                presence: privacy.presence,
                presenceToken: privacy.presenceToken ?? new Uint8Array(0),
              },
            },
          },
        },
      }),
      nowMs: this.deps.now(),
      urgent: false,
    });
  }

  /** What front ends show about sealed sender (no network). */
  status(): SealedSenderStatus {
    const { store, self } = this.deps;
    const trustRootPinned = store.trustRoot(self.domain) !== undefined;
    const accessKeyUploaded = this.profileKey.uploaded();
    // A refused root is remembered in the store, so a later process reports it too.
    const problem = store.trustRootRefused(self.domain) ? 'TRUST_ROOT_CHANGED' : this.sending.problem()?.code;
    const unreadable = store.unreadableSealed();
    return {
      active: trustRootPinned && accessKeyUploaded && problem === undefined,
      trustRootPinned,
      accessKeyUploaded,
      certificateExpiresAt: store.cachedCertificate()?.expiresAt,
      ...(problem ? { problem } : {}),
      ...(unreadable.count > 0 ? { unreadable: unreadable.count } : {}),
    };
  }

  /**
   * How a group upload to `recipientAcis` goes sealed: the unidentified socket and the XOR of
   * their access keys, when every one of them is known and sealed sending works now (a trust
   * root pinned, no refusal pending); undefined otherwise (the device socket).
   */
  multiRoute(recipientAcis: readonly string[]): { socket: UnidentifiedConnection; combinedAccessKey: Uint8Array } | undefined {
    const { store, self } = this.deps;
    if (recipientAcis.length === 0 || store.trustRoot(self.domain) === undefined || this.sending.problem() !== undefined) return undefined;
    const keys: Uint8Array[] = [];
    for (const aci of recipientAcis) {
      const key = store.contactKey(aci)?.accessKey;
      if (!key) return undefined;
      keys.push(key);
    }
    const socket = (this.unidentified ??= new UnidentifiedConnection({ url: this.deps.api.unidentifiedWebsocketUrl }));
    return { socket, combinedAccessKey: combineAccessKeys(keys) };
  }

  /** Closes the unidentified socket (with the device socket); the next sealed send opens it again. */
  async stop(): Promise<void> {
    const u = this.unidentified;
    this.unidentified = undefined;
    if (u) await u.stop();
  }

  /** The pinned roots; pins the home relay's first when none is (trust on first use). */
  private async trustRoots(): Promise<Uint8Array[]> {
    const { store, self } = this.deps;
    if (store.trustRoot(self.domain) === undefined) {
      const info = await this.deps.api.info();
      pinTrustRootFrom(store, self.domain, info, this.deps.now());
    }
    return store.trustRoots();
  }
}
