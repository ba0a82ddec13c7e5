// SPDX-License-Identifier: AGPL-3.0-only
/**
 * The default engine opener: `openParleyClient` of @parley/client, imported on first use so
 * that `parley --help`, usage errors and the CLI's own tests never load the engine (SQLCipher,
 * libsignal).
 */
import { CliError } from './errors.js';
import type { OpenClient, OpenClientOptions, ParleyClientApi } from './engine-contract.js';

/** What the opener needs of the engine module. */
export interface EngineModule {
  readonly openParleyClient: OpenClient;
}

/**
 * An opener that loads the engine module with `load` on first use and calls its
 * `openParleyClient`.
 * @param load Default: `import('@parley/client')`.
 */
export function engineOpener(load: () => Promise<Partial<EngineModule>> = () => import('@parley/client')): OpenClient {
  return async (options: OpenClientOptions): Promise<ParleyClientApi> => {
    let engine: Partial<EngineModule>;
    try {
      engine = await load();
    } catch (err) {
      const why = err instanceof Error ? `: ${err.message}` : '';
      throw new CliError('ENGINE_UNAVAILABLE', `the client engine (@parley/client) cannot be loaded${why}`);
    }
    if (typeof engine.openParleyClient !== 'function') {
      throw new CliError('ENGINE_UNAVAILABLE', 'the client engine (@parley/client) does not provide openParleyClient');
    }
    return engine.openParleyClient(options);
  };
}

/**
 * Opens a profile with @parley/client.
 * @throws CliError ENGINE_UNAVAILABLE when the engine or its native modules cannot be loaded.
 */
export const openEngineClient: OpenClient = engineOpener();
