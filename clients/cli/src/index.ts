// SPDX-License-Identifier: AGPL-3.0-only
/**
 * @parley/cli — the `parley` command. `main` runs one command in process (the binary in bin/
 * calls it with the real process streams); the rest is exported for embedders and tests.
 */
export { type CliIo, type MainOptions, main } from './main.js';
export {
  CLI_ERROR_CODES,
  CliError,
  type CliErrorCode,
  type ErrorContext,
  type ErrorReport,
  EXIT,
  EXIT_CODES_HELP,
  type ExitCode,
  describeError,
} from './errors.js';
export type * from './engine-contract.js';
export { type CliEnv, resolveProfileDir, readPassphrase } from './profile.js';
