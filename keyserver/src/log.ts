// SPDX-License-Identifier: AGPL-3.0-only
/**
 * The few logging calls the key server makes. A pino logger fits as it is; the key server does
 * not depend on pino. Fields are ids and counts, never keys, secrets or tokens.
 */

/** A structured logger: `fields` first, then a constant message. */
export interface KeyServerLog {
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
  error(fields: object, message: string): void;
}

/** A logger that drops everything (the default). */
export const silentLog: KeyServerLog = Object.freeze({
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
});
