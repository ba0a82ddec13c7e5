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
 * An opener that loads the engine module with `load` on first use and calls its
 * `openParleyClient`.
 * @param load Default: `import('@parley/client')`.
 */
export function engineOpener(load: () => Promise<unknown> = () => import(ENGINE_PACKAGE)): OpenClient {
  return async (options: OpenClientOptions): Promise<ParleyClientApi> => {
    let engine: unknown;
    try {
      engine = await load();
    } catch (err) {
      const why = err instanceof Error ? `: ${err.message}` : '';
      throw new CliError('ENGINE_UNAVAILABLE', `the client engine (@parley/client) cannot be loaded${why}`);
    }
    const open = (engine as { openParleyClient?: unknown } | null)?.openParleyClient;
    if (typeof open !== 'function') {
      throw new CliError('ENGINE_UNAVAILABLE', 'the client engine (@parley/client) does not provide openParleyClient');
    }
    return (open as OpenClient)(options);
  };
}

/**
 * Opens a profile with @parley/client.
 * @throws CliError ENGINE_UNAVAILABLE when the engine is not built or lacks `openParleyClient`.
 */
export const openEngineClient: OpenClient = engineOpener();
