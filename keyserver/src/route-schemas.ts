// SPDX-License-Identifier: AGPL-3.0-only
/**
 * JSON schemas of the key server's requests (protocol/src/http.ts in schema form). They bound
 * every string and integer and refuse unknown properties; what a schema cannot say (a username's
 * rules, key validity, signatures, batch sizes with their own error code) the service checks.
 * Batch sizes are deliberately not `maxItems` here: an oversized batch answers TOO_MANY_KEYS,
 * not BAD_REQUEST, and the body limit already bounds the work.
 */
import { AUTH_SECRET_BYTES, LIMITS } from '@parley/protocol';
import { MAX_PUSH_TOKEN_CHARS } from './push-tokens.js';
import type { StrictSchema } from './strict-schema.js';

/** Largest key id accepted: libsignal key ids are u32 (0 is refused: it reads as "absent" in places). */
export const MAX_KEY_ID = 0xffffffff;

const base64UrlChars = (bytes: number) => Math.ceil((bytes * 4) / 3);

const b64 = (minLength: number, maxLength: number): StrictSchema => ({ type: 'string', minLength, maxLength, pattern: '^[A-Za-z0-9_-]*$' });
const b64Exact = (bytes: number): StrictSchema => b64(base64UrlChars(bytes), base64UrlChars(bytes));

const EC_PUBLIC_KEY = b64Exact(33);
const SIGNATURE = b64Exact(64);
/** Kyber-1024 public keys are 1,569 bytes; the bound leaves room for another parameter set. */
const KYBER_PUBLIC_KEY = b64(1, base64UrlChars(3000));
const KEY_ID: StrictSchema = { type: 'integer', minimum: 1, maximum: MAX_KEY_ID };
const REGISTRATION_ID: StrictSchema = { type: 'integer', minimum: 1, maximum: LIMITS.maxRegistrationId };
const AUTH_SECRET = b64Exact(AUTH_SECRET_BYTES);

const preKey: StrictSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['keyId', 'publicKey'],
  properties: { keyId: KEY_ID, publicKey: EC_PUBLIC_KEY },
};

const signed = (publicKey: StrictSchema): StrictSchema => ({
  type: 'object',
  additionalProperties: false,
  required: ['keyId', 'publicKey', 'signature'],
  properties: { keyId: KEY_ID, publicKey, signature: SIGNATURE },
});

const keyUploadProperties = {
  signedPreKey: signed(EC_PUBLIC_KEY),
  lastResortKyberPreKey: signed(KYBER_PUBLIC_KEY),
  preKeys: { type: 'array', items: preKey },
  kyberPreKeys: { type: 'array', items: signed(KYBER_PUBLIC_KEY) },
} satisfies Record<string, StrictSchema>;

/** POST /v1/accounts */
export const registerBodySchema: StrictSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['username', 'identityKey', 'registrationId', 'authSecret', 'signedPreKey', 'lastResortKyberPreKey'],
  properties: {
    username: { type: 'string', minLength: 1, maxLength: LIMITS.maxUsernameLength },
    identityKey: EC_PUBLIC_KEY,
    registrationId: REGISTRATION_ID,
    authSecret: AUTH_SECRET,
    ...keyUploadProperties,
  },
};

/** POST /v1/devices */
export const linkDeviceBodySchema: StrictSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['token', 'registrationId', 'authSecret', 'signedPreKey', 'lastResortKyberPreKey'],
  properties: {
    token: b64(1, 64),
    registrationId: REGISTRATION_ID,
    authSecret: AUTH_SECRET,
    ...keyUploadProperties,
  },
};

/** PUT /v1/keys */
export const keyUploadBodySchema: StrictSchema = {
  type: 'object',
  additionalProperties: false,
  properties: keyUploadProperties,
};

/** PUT /v1/accounts/me/access-key */
export const accessKeyBodySchema: StrictSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['accessKey'],
  properties: { accessKey: b64Exact(LIMITS.accessKeyBytes) },
};

/** PUT /v1/accounts/me/presence: exactly 32 bytes, base64url (43 characters). */
export const presenceTokenBodySchema: StrictSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['token'],
  properties: { token: b64Exact(LIMITS.presenceTokenBytes) },
};

/** PUT /v1/devices/me/push: a provider and its token (the service checks the token per provider). */
export const pushTokenBodySchema: StrictSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['provider', 'token'],
  properties: {
    provider: { type: 'string', minLength: 3, maxLength: 4, pattern: '^(apns|fcm)$' },
    token: { type: 'string', minLength: 1, maxLength: MAX_PUSH_TOKEN_CHARS, pattern: '^[A-Za-z0-9_:.-]+$' },
  },
};

/** POST /v1/devices/link-tokens: no body, or an empty object. */
export const emptyBodySchema: StrictSchema = { type: ['object', 'null'], additionalProperties: false, properties: {} };

/** DELETE /v1/devices/:deviceId */
export const deviceParamsSchema: StrictSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['deviceId'],
  properties: { deviceId: { type: 'string', minLength: 1, maxLength: 3 } },
};

/** GET /v1/keys/:aci/:device */
export const bundleParamsSchema: StrictSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['aci', 'device'],
  properties: { aci: { type: 'string', minLength: 1, maxLength: 36 }, device: { type: 'string', minLength: 1, maxLength: 3 } },
};

/** GET /v1/directory/:username */
export const directoryParamsSchema: StrictSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['username'],
  properties: { username: { type: 'string', minLength: 1, maxLength: LIMITS.maxUsernameLength } },
};
