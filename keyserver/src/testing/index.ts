// SPDX-License-Identifier: AGPL-3.0-only
/**
 * @parley/keyserver/testing — the KeyStore and RateLimiter contract suites for adapters, and a
 * throwaway redis-server for tests. Imports node:test; for tests only.
 */
export { describeKeyStoreContract, type KeyStoreFactory } from './key-store-contract.js';
export {
  ContractClock,
  describeRateLimiterContract,
  type RateLimiterContractOptions,
  type RateLimiterFactory,
} from '../rate-limit/rate-limiter-contract.js';
export { redisServerSkipReason, startRedisServer, type RedisServerProcess } from '../rate-limit/redis-server.js';
