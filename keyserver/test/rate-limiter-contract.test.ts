// SPDX-License-Identifier: AGPL-3.0-only
/**
 * The RateLimiter contract against both adapters: in process always; Redis against a real
 * redis-server this file starts on a free port (the suite says it was skipped where there is none).
 */
import { after, before } from 'node:test';
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { createInProcessRateLimiterBackend, createRedisRateLimiterBackend, type RateLimiterBackend } from '../src/index.js';
import { describeRateLimiterContract, redisServerSkipReason, startRedisServer, type RedisServerProcess } from '../src/testing/index.js';
import type { Clock } from '../src/clock.js';

let n = 0;
const uniqueName = () => `contract${++n}`;

describeRateLimiterContract('in-process', (rule, clock) => createInProcessRateLimiterBackend({ clock }).limiter(uniqueName(), rule));

const skip = redisServerSkipReason();
let server: RedisServerProcess | undefined;
let backend: RateLimiterBackend | undefined;
// The backend reads the clock of the test that built the limiter last (tests run one at a time).
let clock: Clock = { now: () => Date.now() };

if (!skip) {
  before(async () => {
    server = await startRedisServer();
    const redis = new Redis(server.url, { lazyConnect: true, maxRetriesPerRequest: 0 });
    await redis.connect();
    // A fresh prefix per run: a reused server never mixes runs.
    backend = createRedisRateLimiterBackend({ redis, prefix: `test:${randomUUID()}:`, clock: { now: () => clock.now() } });
  });
  after(async () => {
    await backend?.close();
    await server?.stop();
  });
}

describeRateLimiterContract(
  'Redis (ioredis, Lua token bucket)',
  (rule, testClock) => {
    clock = testClock;
    return backend!.limiter(uniqueName(), rule);
  },
  skip ? { skip } : {},
);
