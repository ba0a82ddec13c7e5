// SPDX-License-Identifier: AGPL-3.0-only
/**
 * @parley/keyserver — accounts, devices, usernames, link tokens and prekeys behind the KeyStore
 * port; the REST routes; the AccountDirectory the relay authenticates devices and checks device
 * sets with; and the rate limiter port with its in-process and Redis adapters, which the relay
 * reuses.
 */
export {
  AccountDirectory,
  type AccountDirectoryOptions,
  type AuthenticatedDevice,
  type DeviceChange,
  type DirectoryDevice,
  type PresenceTokenChange,
} from './account-directory.js';
export { type Clock, systemClock } from './clock.js';
export {
  DEFAULT_KEY_SERVER_CONFIG,
  KeyServerConfigError,
  resolveKeyServerConfig,
  type KeyServerConfig,
  type KeyServerConfigInput,
  type KeyServerRateLimitName,
  type KeyServerRateLimits,
} from './config.js';
export { keyServerErrorHandler, toParleyError } from './error-handler.js';
export { createKeyServer, type KeyServer, type KeyServerOptions } from './key-server.js';
export { KeyService, type KeyServiceDeps } from './key-service.js';
export { type KeyServerLog, silentLog } from './log.js';
export type {
  ClaimedDeviceKeys,
  ClaimSelection,
  KeyCounts,
  KeyStore,
  KeyUpload,
  LinkDeviceInput,
  LinkedDevice,
  LiveLinkToken,
  NewAccount,
  NewDevice,
  NewDeviceKeys,
  NewLinkToken,
  RemoveDeviceResult,
  StoredAccount,
  StoredDevice,
  StoredPreKey,
  StoredPushToken,
  StoredSignedPreKey,
} from './ports/key-store.js';
export {
  createInProcessRateLimiterBackend,
  createRateLimiter,
  DEFAULT_RATE_LIMITER_MAX_KEYS,
  type InProcessRateLimiter,
  type InProcessRateLimiterBackendOptions,
  type RateLimiterOptions,
} from './rate-limit/in-process-rate-limiter.js';
export {
  checkRateLimitRule,
  enforceRateLimit,
  MAX_RATE_LIMIT_UNITS,
  type RateLimitDecision,
  type RateLimiter,
  type RateLimiterBackend,
  type RateLimitRule,
} from './rate-limit/rate-limiter.js';
export {
  createRedisRateLimiterBackend,
  DEFAULT_REDIS_RATE_LIMIT_PREFIX,
  openRedisRateLimiterBackend,
  RedisConnectError,
  redisUrlForLog,
  type OpenRedisRateLimiterOptions,
  type RedisRateLimiterBackendOptions,
} from './rate-limit/redis-rate-limiter.js';
export { APNS_TOKEN_PATTERN, FCM_TOKEN_PATTERN, MAX_PUSH_TOKEN_CHARS, parsePushToken, type ParsedPushToken } from './push-tokens.js';
export { applyMigrations, KEY_STORE_MIGRATIONS, MigrationError, type Migration } from './sqlite/migrate.js';
export { openSqliteKeyStore, SqliteKeyStore, type SqliteKeyStoreOptions } from './sqlite/sqlite-key-store.js';
export { compileStrictSchema, strictValidatorCompiler, type StrictSchema, type StrictValidator } from './strict-schema.js';
