// SPDX-License-Identifier: AGPL-3.0-only
/** The envelope store's migrations, in order. Append only: never edit or reorder a shipped one. */
import { migration0001EnvelopeQueues } from './migrations/0001-envelope-queues.js';
import { migration0002SharedBodies } from './migrations/0002-shared-bodies.js';
import type { SqliteMigration } from './sqlite-migrations.js';

/** Every migration of `relay.db`, oldest first. */
export const ENVELOPE_STORE_MIGRATIONS: readonly SqliteMigration[] = [migration0001EnvelopeQueues, migration0002SharedBodies];
