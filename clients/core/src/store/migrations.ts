// SPDX-License-Identifier: AGPL-3.0-only
/** The client store's migrations, in order. Append only: never edit or reorder a shipped one. */
import type { StoreMigration } from './database.js';
import { migration0001InitialSchema } from './migrations/0001-initial-schema.js';
import { migration0002EngineTables } from './migrations/0002-engine-tables.js';
import { migration0003Attachments } from './migrations/0003-attachments.js';
import { migration0004ReceiptsSettings } from './migrations/0004-receipts-settings.js';
import { migration0005MessageActions } from './migrations/0005-message-actions.js';
import { migration0006Groups } from './migrations/0006-groups.js';
import { migration0007ProfileKeys } from './migrations/0007-profile-keys.js';
import { migration0008ResendsEarlyReads } from './migrations/0008-resends-early-reads.js';

/** Every migration of `parley.db`, oldest first. */
export const STORE_MIGRATIONS: readonly StoreMigration[] = Object.freeze([migration0001InitialSchema, migration0002EngineTables, migration0003Attachments, migration0004ReceiptsSettings,
  migration0005MessageActions,
  migration0006Groups,
  migration0007ProfileKeys,
  migration0008ResendsEarlyReads,
]);
