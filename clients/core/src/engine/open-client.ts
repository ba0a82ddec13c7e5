// SPDX-License-Identifier: AGPL-3.0-only
/** Opens a profile: its encrypted store, wrapped as the engine's ports, driven by a ParleyClient. */
import { setLogger } from '@signalapp/sqlcipher';
import { openClientStore } from '../store/client-store.js';
import { ensureProfileDir, ParleyClient } from './parley-client.js';
import type { OpenClientOptions, ParleyClientApi } from './parley-client-api.js';
import { adaptClientStore } from './store-adapter.js';

/** Opens the profile at `options.profileDir` (created when missing). */
export async function openParleyClient(options: OpenClientOptions): Promise<ParleyClientApi> {
  // SQLCipher logs to stderr by default (e.g. "hmac check failed" on a wrong passphrase, which
  // the store reports as WRONG_PASSPHRASE anyway); a client process wants its stderr for itself.
  setLogger(() => {});
  ensureProfileDir(options.profileDir);
  const clock = options.clock ?? { now: () => Date.now() };
  const store = openClientStore({ profileDir: options.profileDir, clock, ...(options.passphrase !== undefined ? { passphrase: options.passphrase } : {}) });
  const now = (): number => clock.now();
  return new ParleyClient({ store: adaptClientStore(store, now), profileDir: options.profileDir, now });
}
