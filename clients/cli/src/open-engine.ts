// SPDX-License-Identifier: AGPL-3.0-only
/**
 * The default engine opener: `openParleyClient` of @parley/client, imported on first use so
 * that `parley --help`, usage errors and the CLI's own tests never load the engine (SQLCipher,
 * libsignal).
 */
import { CliError } from './errors.js';
import type { OpenClient, OpenClientOptions, ParleyClientApi } from './engine-contract.js';

/** The engine's package; a variable so the type checker does not demand its export yet. */
const ENGINE_PACKAGE: string = '@parley/client';

/**
 * Opens a profile with the engine.
 * @throws CliError ENGINE_UNAVAILABLE when @parley/client is not built or lacks `openParleyClient`.
 */
export const openEngineClient: OpenClient = async (options: OpenClientOptions): Promise<ParleyClientApi> => {
  let engine: { openParleyClient?: unknown };
  try {
    engine = (await import(ENGINE_PACKAGE)) as { openParleyClient?: unknown };
  } catch (err) {
    const why = err instanceof Error ? `: ${err.message}` : '';
    throw new CliError('ENGINE_UNAVAILABLE', `the client engine (@parley/client) cannot be loaded${why}`);
  }
  if (typeof engine.openParleyClient !== 'function') {
    throw new CliError('ENGINE_UNAVAILABLE', 'the client engine (@parley/client) does not provide openParleyClient');
  }
  return (engine.openParleyClient as OpenClient)(options);
};
