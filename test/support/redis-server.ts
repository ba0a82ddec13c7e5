// SPDX-License-Identifier: AGPL-3.0-only
/**
 * A throwaway redis-server for end-to-end tests (started on a free loopback port, persistence
 * off, killed afterwards): the key server's test helper, so both test tiers start Redis alike.
 * Tests call {@link redisServerSkipReason} first and skip, saying why, where there is none.
 */
export { redisServerSkipReason, startRedisServer, type RedisServerProcess } from '@parley/keyserver/testing'; // eslint-disable-line no-restricted-imports -- ./testing is @parley/keyserver's declared test entry (CONVENTIONS 2)
