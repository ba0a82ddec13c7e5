// SPDX-License-Identifier: AGPL-3.0-only
/**
 * What the key server does, apart from HTTP: each operation takes the parsed request (and the
 * authenticated device where one is needed), validates everything before the first write, then
 * writes through one atomic store call, then tells the directory about device changes. The
 * fastify routes (routes.ts) only translate HTTP to these calls; federation can reuse them.
 */
import { randomUUID } from 'node:crypto';
import {
  AUTH_SECRET_BYTES,
  LIMITS,
  parseAci,
  parseRegistrationId,
  parseUsername,
  ParleyError,
  toBase64Url,
  type AccessKeyRequest,
  type AccountInfoResponse,
  type Aci,
  type BundleResponse,
  type DeviceBundleJson,
  type DeviceId,
  type DeviceListResponse,
  type KeyCountsResponse,
  type KeyUploadJson,
  type LinkDeviceRequest,
  type LinkTokenResponse,
  type PresenceTokenRequest,
  type PushTokenRequest,
  type RegisterAccountRequest,
  type RegisterAccountResponse,
} from '@parley/protocol';
import type { AccountDirectory, AuthenticatedDevice } from './account-directory.js';
import type { Clock } from './clock.js';
import type { KeyServerConfig } from './config.js';
import { decodeField, parseDeviceKeys, parseIdentityKey, parseKeyUpload } from './key-upload.js';
import type { KeyServerLog } from './log.js';
import { parsePushToken } from './push-tokens.js';
import type { KeyStore, StoredPreKey, StoredSignedPreKey } from './ports/key-store.js';
import { hashSecret, LINK_TOKEN_BYTES, newLinkToken, PRESENCE_TOKEN_BYTES } from './secrets.js';

/** What {@link KeyService} is built from. */
export interface KeyServiceDeps {
  readonly store: KeyStore;
  readonly clock: Clock;
  readonly config: KeyServerConfig;
  readonly directory: AccountDirectory;
  readonly log: KeyServerLog;
}

const FIRST_DEVICE = 1 as DeviceId;

const signedJson = (k: StoredSignedPreKey) => ({ keyId: k.keyId, publicKey: toBase64Url(k.publicKey), signature: toBase64Url(k.signature) });
const preKeyJson = (k: StoredPreKey) => ({ keyId: k.keyId, publicKey: toBase64Url(k.publicKey) });

/** The key server's operations. */
export class KeyService {
  constructor(private readonly deps: KeyServiceDeps) {}

  /**
   * Creates an account with a random ACI and its device 1.
   * @throws ParleyError BAD_REQUEST, USERNAME_TAKEN, TOO_MANY_KEYS, INVALID_KEY, INVALID_SIGNATURE.
   */
  async register(body: RegisterAccountRequest): Promise<RegisterAccountResponse> {
    const { store, clock, config, directory, log } = this.deps;
    const username = parseUsername(body.username);
    const registrationId = parseRegistrationId(body.registrationId);
    const secret = decodeField(body.authSecret, 'authSecret', AUTH_SECRET_BYTES);
    const identityKey = parseIdentityKey(body.identityKey);
    // Cheap refusal before the signature checks; the store checks again atomically.
    if (await store.findAccountByUsername(username)) throw new ParleyError('USERNAME_TAKEN', 'the username is taken');
    const keys = parseDeviceKeys(body, identityKey, config);
    const aci = parseAci(randomUUID());
    const now = clock.now();
    await store.createAccount(
      { aci, username, identityKey, createdAt: now, device: { registrationId, secretHash: hashSecret(secret), createdAt: now, keys } },
      config.maxStoredPreKeys,
    );
    directory.publishDeviceChange({ kind: 'added', aci, deviceId: FIRST_DEVICE });
    log.info({ aci, deviceId: FIRST_DEVICE }, 'account registered');
    return { aci, deviceId: FIRST_DEVICE, username };
  }

  /** The authenticated device's account. */
  async whoami(who: AuthenticatedDevice): Promise<AccountInfoResponse> {
    const account = await this.deps.store.getAccount(who.aci);
    if (!account) throw new ParleyError('NOT_FOUND', 'no such account');
    return { aci: account.aci, username: account.username, deviceId: who.deviceId };
  }

  /** Issues a single-use link token for the authenticated device's account. */
  async issueLinkToken(who: AuthenticatedDevice): Promise<LinkTokenResponse> {
    const { store, clock, config, log } = this.deps;
    const token = newLinkToken();
    const now = clock.now();
    const expiresAt = now + config.linkTokenTtlMs;
    await store.createLinkToken({ tokenHash: hashSecret(token), aci: who.aci, createdAt: now, expiresAt });
    log.info({ aci: who.aci, deviceId: who.deviceId }, 'link token issued');
    return { token: toBase64Url(token), expiresAt };
  }

  /**
   * A new device joins the token's account with the lowest free device id.
   * @throws ParleyError BAD_REQUEST, INVALID_LINK_TOKEN, DEVICE_LIMIT, TOO_MANY_KEYS, INVALID_KEY,
   * INVALID_SIGNATURE.
   */
  async linkDevice(body: LinkDeviceRequest): Promise<RegisterAccountResponse> {
    const { store, clock, config, directory, log } = this.deps;
    const registrationId = parseRegistrationId(body.registrationId);
    const secret = decodeField(body.authSecret, 'authSecret', AUTH_SECRET_BYTES);
    let token: Uint8Array;
    try {
      token = decodeField(body.token, 'token', LINK_TOKEN_BYTES);
    } catch {
      throw invalidLinkToken();
    }
    const tokenHash = hashSecret(token);
    const now = clock.now();
    const live = await store.findLinkToken(tokenHash, now);
    const account = live && (await store.getAccount(live.aci));
    if (!account) throw invalidLinkToken();
    const keys = parseDeviceKeys(body, account.identityKey, config);
    const linked = await store.linkDevice(
      { tokenHash, now, maxDevices: config.maxDevicesPerAccount, device: { registrationId, secretHash: hashSecret(secret), createdAt: now, keys } },
      config.maxStoredPreKeys,
    );
    directory.publishDeviceChange({ kind: 'added', aci: linked.aci, deviceId: linked.deviceId });
    log.info({ aci: linked.aci, deviceId: linked.deviceId }, 'device linked');
    return { aci: linked.aci, deviceId: linked.deviceId, username: account.username };
  }

  /** The devices of the authenticated device's account. */
  async listDevices(who: AuthenticatedDevice): Promise<DeviceListResponse> {
    const devices = await this.deps.store.listDevices(who.aci);
    return { devices: devices.map((d) => ({ deviceId: d.deviceId, registrationId: d.registrationId, createdAt: d.createdAt })) };
  }

  /**
   * Removes a device of the authenticated device's account (itself included) with its keys.
   * @throws ParleyError NOT_FOUND, or BAD_REQUEST for the account's last device.
   */
  async removeDevice(who: AuthenticatedDevice, deviceId: DeviceId): Promise<void> {
    const { store, directory, log } = this.deps;
    const result = await store.removeDevice(who.aci, deviceId);
    if (result === 'not-found') throw new ParleyError('NOT_FOUND', 'no such device');
    if (result === 'last-device') throw new ParleyError('BAD_REQUEST', 'an account\u2019s last device cannot be removed');
    directory.publishDeviceChange({ kind: 'removed', aci: who.aci, deviceId });
    log.info({ aci: who.aci, deviceId, by: who.deviceId }, 'device removed');
  }

  /**
   * Stores the authenticated device's uploaded keys.
   * @throws ParleyError TOO_MANY_KEYS, BAD_REQUEST, INVALID_KEY, INVALID_SIGNATURE.
   */
  async uploadKeys(who: AuthenticatedDevice, body: KeyUploadJson): Promise<void> {
    const { store, config } = this.deps;
    const account = await store.getAccount(who.aci);
    if (!account) throw new ParleyError('NOT_FOUND', 'no such account');
    const upload = parseKeyUpload(body, account.identityKey, config);
    await store.storeKeys(who.aci, who.deviceId, upload, config.maxStoredPreKeys);
  }

  /** One-time keys the authenticated device has left. */
  async keyCounts(who: AuthenticatedDevice): Promise<KeyCountsResponse> {
    const counts = await this.deps.store.countKeys(who.aci, who.deviceId);
    if (!counts) throw new ParleyError('NOT_FOUND', 'no such device');
    return { preKeys: counts.preKeys, kyberPreKeys: counts.kyberPreKeys };
  }

  /**
   * Claims bundles of one device or of all devices (`'*'`) of `aci`. A device claiming its own
   * account's `'*'` does not get (and use up) its own keys.
   * @throws ParleyError NOT_FOUND for an unknown account or device.
   */
  async claimBundles(who: AuthenticatedDevice, aci: Aci, device: DeviceId | '*'): Promise<BundleResponse> {
    const { store } = this.deps;
    const account = await store.getAccount(aci);
    if (!account) throw new ParleyError('NOT_FOUND', 'no such account');
    const claimed = await store.claimKeys(
      aci,
      device === '*' ? (aci === who.aci ? { exceptDeviceId: who.deviceId } : {}) : { deviceId: device },
    );
    if (device !== '*' && claimed.length === 0) throw new ParleyError('NOT_FOUND', 'no such device');
    return {
      aci,
      identityKey: toBase64Url(account.identityKey),
      devices: claimed.map(
        (c): DeviceBundleJson => ({
          deviceId: c.deviceId,
          registrationId: c.registrationId,
          signedPreKey: signedJson(c.signedPreKey),
          kyberPreKey: signedJson(c.kyberPreKey),
          ...(c.preKey ? { preKey: preKeyJson(c.preKey) } : {}),
        }),
      ),
    };
  }

  /**
   * Sets the authenticated device's account's sealed-sender access key (any device may).
   * @throws ParleyError BAD_REQUEST unless `accessKey` is unpadded base64url of exactly 16 bytes.
   */
  async setAccessKey(who: AuthenticatedDevice, body: AccessKeyRequest): Promise<void> {
    const { store, clock, log } = this.deps;
    const key = decodeField(body.accessKey, 'accessKey', LIMITS.accessKeyBytes);
    if (!(await store.setAccessKey(who.aci, key, clock.now()))) throw new ParleyError('NOT_FOUND', 'no such account');
    log.info({ aci: who.aci, deviceId: who.deviceId }, 'access key set');
  }

  /**
   * Turns presence on for the authenticated device's account, or rotates its token: only the
   * token's SHA-256 is stored. A changed token ends every subscription made with the old one
   * (the relay hears it through the directory); the same token again changes nothing.
   * @throws ParleyError BAD_REQUEST when the token is not 32 bytes of base64url.
   */
  async setPresenceToken(who: AuthenticatedDevice, body: PresenceTokenRequest): Promise<void> {
    const { store, clock, directory, log } = this.deps;
    const token = decodeField(body.token, 'token', PRESENCE_TOKEN_BYTES);
    const changed = await store.setPresenceToken(who.aci, hashSecret(token), clock.now());
    if (!changed) return;
    directory.publishPresenceTokenChange(who.aci);
    log.info({ aci: who.aci, deviceId: who.deviceId }, 'presence token set');
  }

  /** Turns presence off for the authenticated device's account: nobody can subscribe, current subscriptions end. */
  async clearPresenceToken(who: AuthenticatedDevice): Promise<void> {
    const { store, directory, log } = this.deps;
    if (!(await store.clearPresenceToken(who.aci))) return;
    directory.publishPresenceTokenChange(who.aci);
    log.info({ aci: who.aci, deviceId: who.deviceId }, 'presence turned off');
  }

  /**
   * Sets the authenticated device's push token (replacing its previous one; a device that held
   * the same token loses it). The token is logged by provider only, never by value.
   * @throws ParleyError BAD_REQUEST when the token does not look like one of the provider's.
   */
  async setPushToken(who: AuthenticatedDevice, body: PushTokenRequest): Promise<void> {
    const { store, clock, log } = this.deps;
    const { provider, token } = parsePushToken(body);
    await store.setPushToken(who.aci, who.deviceId, { provider, token, updatedAt: clock.now() });
    log.info({ aci: who.aci, deviceId: who.deviceId, provider }, 'push token registered');
  }

  /** Removes the authenticated device's push token: no more wake-ups for it. Removing none is fine. */
  async removePushToken(who: AuthenticatedDevice): Promise<void> {
    const { store, log } = this.deps;
    if (await store.removePushToken(who.aci, who.deviceId)) log.info({ aci: who.aci, deviceId: who.deviceId }, 'push token removed');
  }

  /**
   * Looks a username up.
   * @throws ParleyError BAD_REQUEST for a malformed username, NOT_FOUND for an unknown one.
   */
  async lookupUsername(text: string): Promise<AccountInfoResponse> {
    const username = parseUsername(text);
    const account = await this.deps.store.findAccountByUsername(username);
    if (!account) throw new ParleyError('NOT_FOUND', 'no such username');
    return { aci: account.aci, username: account.username };
  }
}

function invalidLinkToken(): ParleyError {
  return new ParleyError('INVALID_LINK_TOKEN', 'the link token is unknown, used or expired');
}
