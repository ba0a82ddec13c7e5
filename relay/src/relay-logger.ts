// SPDX-License-Identifier: AGPL-3.0-only
/**
 * The relay's logger: pino JSON lines with a redaction list as a second line of defence. The
 * first is that no code logs message content, keys, auth secrets or tokens (ids go in structured
 * fields); redaction catches a field that slips through anyway — a request's Authorization
 * header, a body, a token — at the top level or one object deep, and replaces its value.
 */
import { pino, type DestinationStream, type Level, type Logger } from 'pino';

/** Field names whose values never reach a log line. */
const SECRET_FIELDS = [
  'authorization',
  'cookie',
  'authSecret',
  'secret',
  'token',
  'metricsToken',
  'identityKeyPair',
  'privateKey',
  'password',
  'passphrase',
  'content',
  'plaintext',
  'body',
] as const;

/** pino redaction paths: each field at the top level and one level down, plus request headers. */
export const LOG_REDACT_PATHS: readonly string[] = [
  ...SECRET_FIELDS,
  ...SECRET_FIELDS.map((f) => `*.${f}`),
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["proxy-authorization"]',
  'headers["proxy-authorization"]',
];

/** What replaces a redacted value. */
export const REDACTED = '[redacted]';

/** Creates the relay's root logger at `level`, writing to `destination` (stdout by default). */
export function createRelayLogger(level: Level | 'silent', destination?: DestinationStream): Logger {
  const options = {
    level,
    base: { service: 'parley-relay' },
    redact: { paths: [...LOG_REDACT_PATHS], censor: REDACTED },
  };
  return destination ? pino(options, destination) : pino(options);
}
