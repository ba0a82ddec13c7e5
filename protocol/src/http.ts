// SPDX-License-Identifier: AGPL-3.0-only
/**
 * The REST API's JSON shapes (key server and device management). Every byte field is unpadded
 * base64url. Errors answer `{ code, message, ...details }` with the HTTP status of the code.
 * docs/protocol.md lists the routes.
 */

/** REST paths, relative to the relay's base URL. */
export const HTTP_ROUTES = {
  register: '/v1/accounts',
  whoami: '/v1/accounts/me',
  linkTokens: '/v1/devices/link-tokens',
  devices: '/v1/devices',
  keys: '/v1/keys',
  keyCounts: '/v1/keys/count',
  /** `/v1/keys/{aci}/{deviceId|*}` */
  bundle: '/v1/keys/:aci/:device',
  /** `/v1/directory/{username}` */
  directory: '/v1/directory/:username',
  /** The relay's domain and version. */
  info: '/v1/info',
  websocket: '/v1/websocket',
  /** Unauthenticated WebSocket for sealed-sender sends (`Send` with an access key, `SendMulti`). */
  unidentifiedWebsocket: '/v1/websocket/unidentified',
  /** `GET` — a short-lived sender certificate for the authenticated device (sealed sender). */
  senderCertificate: '/v1/certificate/sender',
  /** `PUT` — the account's sealed-sender access key (derived from its profile key). */
  accessKey: '/v1/accounts/me/access-key',
  /** `PUT` — the account's presence token; `DELETE` — presence off (nobody can subscribe). */
  presenceToken: '/v1/accounts/me/presence',
  /** `PUT` — this device's push token; `DELETE` — no push for this device. */
  pushToken: '/v1/devices/me/push',
  /** Unauthenticated WebSocket of a device being linked. */
  provisioningSocket: '/v1/provisioning',
  /** `PUT /v1/provisioning/{address}` — an existing device sends the linking device one message. */
  provisioningMessage: '/v1/provisioning/:address',
  /** `POST` — an upload slot for one encrypted attachment. */
  attachments: '/v1/attachments',
  /** `GET /v1/attachments/{id}` (download, Range) and `PUT` (upload through the relay). */
  attachment: '/v1/attachments/:id',
  health: '/healthz',
  ready: '/readyz',
} as const;

/** A one-time EC prekey. */
export interface PreKeyJson {
  keyId: number;
  /** 33-byte Curve25519 public key. */
  publicKey: string;
}

/** A signed EC prekey or a (one-time or last-resort) Kyber prekey, signed by the identity key. */
export interface SignedPreKeyJson {
  keyId: number;
  publicKey: string;
  signature: string;
}

/** Keys a device uploads; every field optional on PUT /v1/keys. */
export interface KeyUploadJson {
  signedPreKey?: SignedPreKeyJson;
  lastResortKyberPreKey?: SignedPreKeyJson;
  preKeys?: PreKeyJson[];
  kyberPreKeys?: SignedPreKeyJson[];
}

/** Keys every new device must bring. */
export interface DeviceKeysJson extends KeyUploadJson {
  signedPreKey: SignedPreKeyJson;
  lastResortKyberPreKey: SignedPreKeyJson;
}

/** POST /v1/accounts — create an account and its device 1. */
export interface RegisterAccountRequest extends DeviceKeysJson {
  username: string;
  /** 33-byte identity public key. */
  identityKey: string;
  registrationId: number;
  /** 32 random bytes; the relay stores only a hash. Used with HTTP Basic auth afterwards. */
  authSecret: string;
}

/** Answer to registration and to linking. */
export interface RegisterAccountResponse {
  aci: string;
  deviceId: number;
  username: string;
}

/** POST /v1/devices/link-tokens — a single-use token for linking one new device. */
export interface LinkTokenResponse {
  token: string;
  /** Milliseconds since the epoch. */
  expiresAt: number;
}

/** POST /v1/devices — a new device joins an account with a link token. */
export interface LinkDeviceRequest extends DeviceKeysJson {
  token: string;
  registrationId: number;
  authSecret: string;
}

/** One entry of GET /v1/devices. */
export interface DeviceInfoJson {
  deviceId: number;
  registrationId: number;
  /** Milliseconds since the epoch. */
  createdAt: number;
}

/** GET /v1/devices */
export interface DeviceListResponse {
  devices: DeviceInfoJson[];
}

/** GET /v1/keys/count */
export interface KeyCountsResponse {
  preKeys: number;
  kyberPreKeys: number;
}

/** One device's bundle in GET /v1/keys/{aci}/{device}. */
export interface DeviceBundleJson {
  deviceId: number;
  registrationId: number;
  signedPreKey: SignedPreKeyJson;
  /** A one-time Kyber prekey, or the last-resort one when none is left. */
  kyberPreKey: SignedPreKeyJson;
  /** Absent when the device has no one-time EC prekey left. */
  preKey?: PreKeyJson;
}

/** GET /v1/keys/{aci}/{device} */
export interface BundleResponse {
  aci: string;
  identityKey: string;
  devices: DeviceBundleJson[];
}

/** GET /v1/directory/{username} and GET /v1/accounts/me */
export interface AccountInfoResponse {
  aci: string;
  username: string;
  /** Only on /v1/accounts/me. */
  deviceId?: number;
}

/** PUT /v1/provisioning/{address} */
export interface ProvisioningMessageRequest {
  /** The encrypted provisioning message, at most LIMITS.maxProvisioningMessageBytes. */
  body: string;
}

/** GET /v1/info */
export interface RelayInfoResponse {
  /** The domain this relay serves: addresses on it are `user@domain`. */
  domain: string;
  version: string;
  /**
   * The relay's sender-certificate trust root: a 33-byte public key. Clients pin it on first
   * contact and validate sealed-sender certificates of this domain against it.
   */
  senderCertificateTrustRoot?: string;
}

/** GET /v1/certificate/sender */
export interface SenderCertificateResponse {
  /** The serialized libsignal SenderCertificate for the authenticated device. */
  certificate: string;
  /** Milliseconds since the epoch; fetch a new one well before then. */
  expiresAt: number;
}

/** PUT /v1/accounts/me/access-key */
export interface AccessKeyRequest {
  /** 16 bytes derived from the account's profile key; proves a sealed sender knows it. */
  accessKey: string;
}

/** PUT /v1/accounts/me/presence */
export interface PresenceTokenRequest {
  /** 32 random bytes the account hands to its contacts; the relay stores only a hash. */
  token: string;
}

/** Push providers a device can register a token with. */
export type PushProvider = 'apns' | 'fcm';

/** PUT /v1/devices/me/push */
export interface PushTokenRequest {
  provider: PushProvider;
  /** The provider's device token (APNs: hex; FCM: registration token), at most 4096 characters. */
  token: string;
}

/** POST /v1/attachments — ask for a slot to upload one encrypted attachment. */
export interface AttachmentSlotRequest {
  /** Exact bytes of the encrypted blob, 1..the relay's cap (100 MiB by default). */
  size: number;
}

/** Answer to POST /v1/attachments: where and how to upload the blob. */
export interface AttachmentSlotResponse {
  /** The blob's id: 32 lowercase hex characters. */
  id: string;
  /**
   * Where to `PUT` the bytes: an absolute URL (a pre-signed URL of the relay's object store),
   * or a path on the relay (starting with `/`) to resolve against the relay's base URL.
   */
  uploadUrl: string;
  /** Headers the PUT must carry besides Content-Length. */
  headers: Record<string, string>;
  /** The exact Content-Length the PUT must have. */
  size: number;
  /** Milliseconds since the epoch; start the upload before then. */
  expiresAt: number;
}

/** Every REST error body. */
export interface ErrorResponse {
  code: string;
  message: string;
  retryAfterMs?: number;
}
