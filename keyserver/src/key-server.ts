// SPDX-License-Identifier: AGPL-3.0-only
/**
 * The key server's composition: config, rate limiters, the account directory, the service and
 * its routes, built once from a store and a clock (CONVENTIONS 5). The relay mounts the routes
 * on its own listener and uses the directory for WebSocket auth and device-set checks.
 */
import type { FastifyInstance } from 'fastify';
import { AccountDirectory } from './account-directory.js';
import type { Clock } from './clock.js';
import { resolveKeyServerConfig, type KeyServerConfig, type KeyServerConfigInput } from './config.js';
import { KeyService } from './key-service.js';
import { silentLog, type KeyServerLog } from './log.js';
import type { KeyStore } from './ports/key-store.js';
import { createInProcessRateLimiterBackend } from './rate-limit/in-process-rate-limiter.js';
import type { RateLimiter, RateLimiterBackend } from './rate-limit/rate-limiter.js';
import { registerKeyServerRoutes, type RouteLimiters } from './routes.js';

/** What {@link createKeyServer} is built from. */
export interface KeyServerOptions {
  /** The storage; closed by {@link KeyServer.close}. */
  readonly store: KeyStore;
  readonly clock: Clock;
  /** Overrides of DEFAULT_KEY_SERVER_CONFIG; validated and frozen. Default: all defaults. */
  readonly config?: KeyServerConfigInput;
  /** Default: silent. */
  readonly log?: KeyServerLog;
  /**
   * Where the rate limit buckets live: Redis for a cluster (every node shares them). Not closed
   * by {@link KeyServer.close} (the relay shares it). Default: in process, each limiter holding
   * at most `config.rateLimiterMaxKeys` buckets.
   */
  readonly rateLimiters?: RateLimiterBackend;
}

/** A composed key server. */
export interface KeyServer {
  /** The relay's view: authentication, device sets, device change notifications. */
  readonly directory: AccountDirectory;
  /** The resolved, frozen configuration. */
  readonly config: KeyServerConfig;
  /** The operations behind the routes (for federation and tests). */
  readonly service: KeyService;
  /** Mounts the REST routes of HTTP_ROUTES on `app`, in their own encapsulated context. */
  registerRoutes(app: FastifyInstance): void;
  /** Closes the store. Stop the HTTP listener first. */
  close(): Promise<void>;
}

/**
 * Builds a key server.
 * @throws KeyServerConfigError when a config value is out of range or unknown.
 */
export function createKeyServer(options: KeyServerOptions): KeyServer {
  const { store, clock } = options;
  const config = resolveKeyServerConfig(options.config);
  const log = options.log ?? silentLog;
  const backend = options.rateLimiters ?? createInProcessRateLimiterBackend({ clock, maxKeysPerLimiter: config.rateLimiterMaxKeys });
  const limiter = (name: keyof KeyServerConfig['rateLimits']): RateLimiter => backend.limiter(name, config.rateLimits[name]);
  const directory = new AccountDirectory({
    store,
    clock,
    failedAuthLimiter: limiter('failedAuth'),
    cacheMaxAccounts: config.deviceCacheMaxAccounts,
    cacheTtlMs: config.deviceCacheTtlMs,
    log,
  });
  const service = new KeyService({ store, clock, config, directory, log });
  const limiters: RouteLimiters = {
    register: limiter('register'),
    linkDevice: limiter('linkDevice'),
    linkToken: limiter('linkToken'),
    claimPerRequester: limiter('claimPerRequester'),
    claimPerTarget: limiter('claimPerTarget'),
    directory: limiter('directory'),
    presenceToken: limiter('presenceToken'),
    pushToken: limiter('pushToken'),
  };
  let closed: Promise<void> | undefined;
  return {
    directory,
    config,
    service,
    registerRoutes: (app) => registerKeyServerRoutes(app, { service, directory, limiters }),
    close: () => (closed ??= store.close()),
  };
}
