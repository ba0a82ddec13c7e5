// SPDX-License-Identifier: AGPL-3.0-only
/**
 * The composition root of `parley-relay`: reads argv and env (the only place that does), opens
 * the embedded stores in the data directory, mounts the key server on the relay's listener,
 * listens, and shuts down gracefully on SIGTERM/SIGINT.
 */
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pino } from 'pino';
import { createKeyServer, keyServerErrorHandler, openSqliteKeyStore } from '@parley/keyserver';
import { systemClock } from '../clock.js';
import { ConfigError } from '../config.js';
import { createRelay } from '../relay-server.js';
import { openSqliteEnvelopeStore } from '../storage/sqlite-envelope-store.js';
import { parseRelayCommand, relayHelp } from './options.js';

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
  const log = pino({ level: config.logLevel, base: { service: 'parley-relay' } });
  const dataDir = resolve(config.dataDir);
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });

  const keyStore = openSqliteKeyStore(join(dataDir, 'keys.db'));
  const keyServer = createKeyServer({
    store: keyStore,
    clock: systemClock,
    config: {
      maxDevicesPerAccount: config.maxDevicesPerAccount,
      rateLimits: { register: { capacity: config.registrationsPerHour, windowMs: 3_600_000 } },
    },
    log: log.child({ component: 'keyserver' }),
  });
  const envelopes = openSqliteEnvelopeStore({ path: join(dataDir, 'relay.db'), synchronous: config.sqliteSynchronous, clock: systemClock });
  const relay = createRelay(config, {
    envelopes,
    directory: keyServer.directory,
    mountRoutes: (app) => keyServer.registerRoutes(app),
    errorHandler: keyServerErrorHandler,
    clock: systemClock,
    log,
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
}
