// SPDX-License-Identifier: AGPL-3.0-only
/**
 * The composition root of `parley-relay`: reads argv and env (the only place that does), opens
 * the embedded stores in the data directory, mounts the key server on the relay's listener,
 * listens, and shuts down gracefully on SIGTERM/SIGINT.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createSecureContext } from 'node:tls';
import {
  createInProcessRateLimiterBackend,
  createKeyServer,
  keyServerErrorHandler,
  openRedisRateLimiterBackend,
  openSqliteKeyStore,
  redisUrlForLog,
  type RateLimiterBackend,
} from '@parley/keyserver';
import { openAttachmentStorage } from '../attachments/open-attachment-storage.js';
import { systemClock } from '../clock.js';
import { ConfigError, type RelayConfig } from '../config.js';
import type { PushProviderName, PushSender } from '../ports/push-sender.js';
import { openPushSenders } from '../push/open-push-senders.js';
import { createRelayLogger } from '../relay-logger.js';
import { RelayMetrics } from '../relay-metrics.js';
import type { PresenceStore } from '../ports/presence-store.js';
import { openRedisPresenceStore } from '../presence/redis-presence-store.js';
import { createRelay, type TlsCredentials } from '../relay-server.js';
import { keyServerRateLimits } from '../rate-limits.js';
import { loadSenderCertificateAuthority } from '../sealed-sender/certificate-authority.js';
import { openSqliteEnvelopeStore } from '../storage/sqlite-envelope-store.js';
import { parseRelayCommand, relayHelp } from './options.js';

/**
 * Reads and checks the TLS pair named by the config (undefined without TLS).
 * @throws ConfigError naming the file or the problem (never the key's content).
 */
function loadTls(config: RelayConfig): TlsCredentials | undefined {
  if (config.tlsCertFile === undefined || config.tlsKeyFile === undefined) return undefined;
  const read = (flag: string, path: string) => {
    try {
      return readFileSync(path);
    } catch (err) {
      throw new ConfigError(`cannot read ${flag} ${path}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
    }
  };
  const credentials = { cert: read('--tls-cert', config.tlsCertFile), key: read('--tls-key', config.tlsKeyFile) };
  try {
    createSecureContext(credentials);
  } catch (err) {
    // OpenSSL's reason (bad PEM, key does not match the certificate); it holds no key material.
    throw new ConfigError(`the TLS certificate and key cannot be used together: ${(err as Error).message}`);
  }
  return credentials;
}

/** Runs the relay until a signal stops it. */
export async function main(argv: readonly string[], env: Readonly<Record<string, string | undefined>>): Promise<void> {
  let command;
  try {
    command = parseRelayCommand(argv, env);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`parley-relay: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  if (command.kind === 'help') {
    process.stdout.write(relayHelp() + '\n');
    return;
  }
  if (command.kind === 'version') {
    process.stdout.write('parley-relay 0.1.0\n');
    return;
  }
  const config = command.config;
  let tls: TlsCredentials | undefined;
  try {
    tls = loadTls(config);
  } catch (err) {
    process.stderr.write(`parley-relay: ${(err as Error).message}\n`);
    process.exit(2);
  }
  const log = createRelayLogger(config.logLevel);
  // Credential files are read now, so a wrong one stops the relay at start, not at the first wake-up.
  let pushSenders: Record<PushProviderName, PushSender>;
  try {
    pushSenders = openPushSenders(config, { clock: systemClock, log });
  } catch (err) {
    process.stderr.write(`parley-relay: ${(err as Error).message}\n`);
    process.exit(2);
  }
  log.info({ apns: pushSenders.apns.name, fcm: pushSenders.fcm.name }, 'push providers');
  const dataDir = resolve(config.dataDir);
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });

  // One backend for the key server's limits and the relay's: in process, or Redis shared by every node.
  let rateLimiters: RateLimiterBackend;
  if (config.redisUrl === undefined) {
    rateLimiters = createInProcessRateLimiterBackend({ clock: systemClock });
  } else {
    const redisLog = log.child({ component: 'ratelimit', redis: redisUrlForLog(config.redisUrl) });
    try {
      rateLimiters = await openRedisRateLimiterBackend({
        url: config.redisUrl,
        prefix: `parley:${config.domain}:rl:`,
        onHealthChange: (healthy, err) => {
          if (healthy) redisLog.info('Redis answers again: rate limits are shared by every node again');
          else redisLog.warn({ reason: err instanceof Error ? err.message : 'error' }, 'Redis does not answer: rate limits hold per node until it does');
        },
      });
    } catch (err) {
      process.stderr.write(`parley-relay: ${(err as Error).message}\n`);
      process.exit(2);
    }
    redisLog.info('rate limits in Redis');
  }

  // Presence: in process by default; in Redis with --redis, so every node sees every device.
  let presence: PresenceStore | undefined;
  if (config.redisUrl !== undefined) {
    try {
      presence = await openRedisPresenceStore({ url: config.redisUrl, prefix: `parley:${config.domain}:presence:` });
    } catch (err) {
      process.stderr.write(`parley-relay: ${(err as Error).message}\n`);
      process.exit(2);
    }
    log.info({ redis: redisUrlForLog(config.redisUrl) }, 'presence in Redis');
  }

  let senderCertificates;
  try {
    const loaded = loadSenderCertificateAuthority(dataDir, systemClock.now());
    senderCertificates = loaded.authority;
    for (const file of loaded.created) log.warn({ file }, 'created a sealed-sender key file: back it up (docs/operations.md, "Sealed sender keys")');
  } catch (err) {
    process.stderr.write(`parley-relay: ${(err as Error).message}\n`);
    process.exit(2);
  }

  const keyStore = openSqliteKeyStore(join(dataDir, 'keys.db'));
  const keyServer = createKeyServer({
    store: keyStore,
    clock: systemClock,
    config: {
      maxDevicesPerAccount: config.maxDevicesPerAccount,
      rateLimits: keyServerRateLimits(config),
    },
    log: log.child({ component: 'keyserver' }),
    rateLimiters,
  });
  const envelopes = openSqliteEnvelopeStore({ path: join(dataDir, 'relay.db'), synchronous: config.sqliteSynchronous, clock: systemClock });
  const dbFiles = ['keys.db', 'keys.db-wal', 'relay.db', 'relay.db-wal'].map((f) => join(dataDir, f));
  const metrics = new RelayMetrics({ processMetrics: true, dataFiles: dbFiles });
  const attachments = await openAttachmentStorage(config, { dataDir, clock: systemClock, log }).catch((err: unknown) => {
    process.stderr.write(`parley-relay: ${(err as Error).message}\n`);
    return process.exit(2);
  });
  const relay = createRelay(config, {
    envelopes,
    attachments,
    directory: keyServer.directory,
    mountRoutes: (app) => keyServer.registerRoutes(app),
    errorHandler: keyServerErrorHandler,
    clock: systemClock,
    log,
    metrics,
    rateLimiters,
    senderCertificates,
    ...(presence ? { presence } : {}),
    push: { senders: pushSenders, tokens: keyStore },
    ...(tls ? { tls } : {}),
  });

  const where = await relay.listen();
  log.info({ url: where.url, domain: config.domain, dataDir }, 'relay listening');
  process.stdout.write(`parley-relay listening on ${where.url} (domain ${config.domain}, data ${dataDir})\n`);

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down');
    relay
      .close()
      .then(() => keyServer.close())
      .then(() => rateLimiters.close())
      .then(
        () => process.exit(0),
        (err: unknown) => {
          log.error({ err }, 'shutdown failed');
          process.exit(1);
        },
      );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  // Certificate renewal: SIGHUP reads the files again; new connections get the new pair.
  process.on('SIGHUP', () => {
    if (!tls) return;
    try {
      const next = loadTls(config)!;
      relay.reloadTls(next);
      tls = next;
      log.info('TLS certificate reloaded');
    } catch (err) {
      log.error({ reason: (err as Error).message }, 'TLS reload failed; the previous certificate stays in use');
    }
  });
}
