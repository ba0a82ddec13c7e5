// SPDX-License-Identifier: AGPL-3.0-only
/**
 * The encrypted local store of one profile, opened in one call: the key (key file or
 * passphrase), the SQLCipher database with its migrations, and every store over it.
 */
import { chmodSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Account } from './account-store.js';
import { AccountStore } from './account-store.js';
import { BlocklistStore } from './blocklist-store.js';
import type { Clock } from '@parley/crypto';
import { ClientDatabase, SYSTEM_CLOCK } from './database.js';
import { MessageActionsStore } from './message-actions-store.js';
import { GroupStore } from './group-store.js';
import { MessageStore } from './message-store.js';
import { STORE_MIGRATIONS } from './migrations.js';
import { Outbox } from './outbox.js';
import { DATABASE_FILE_NAME, type ScryptParams, resolveDatabaseKey } from './profile-key.js';
import { DatabaseProtocolStores } from './protocol-store.js';
import { ReceiptStore } from './receipt-store.js';
import { SeenEnvelopes } from './seen-envelopes.js';
import { SettingsStore } from './settings-store.js';

/** Options of {@link openClientStore}. */
export interface ClientStoreOptions {
  /** The profile directory (created, mode 0700, when missing). Holds `parley.db` and `db.key` or `db.salt`. */
  readonly profileDir: string;
  /** Protect (or open) the profile with this passphrase instead of a key file; default: key file. */
  readonly passphrase?: string;
  /** scrypt cost for a new passphrase profile; default `DEFAULT_SCRYPT_PARAMS`. */
  readonly scrypt?: ScryptParams;
  /** Time source for stored times; default the system clock. */
  readonly clock?: Clock;
}

/** Everything the engine keeps on disk for one profile. One instance per profile and process. */
export interface ClientStore {
  /** The profile directory. */
  readonly profileDir: string;
  /** The database underneath, for modules that add their own tables (by migration). */
  readonly database: ClientDatabase;
  /** The @parley/crypto store ports. Decrypt through `stageProtocolStores(protocol)` on receive. */
  readonly protocol: DatabaseProtocolStores;
  /** Contacts, conversations, messages and search. */
  readonly messages: MessageStore;
  /** Groups: change logs, state, sender keys, multi-recipient sends. */
  readonly groups: GroupStore;
  /** The durable send queue. */
  readonly outbox: Outbox;
  /** Envelopes processed that left no message. */
  readonly seenEnvelopes: SeenEnvelopes;
  /** Small named values. */
  readonly settings: SettingsStore;
  /** Per-recipient delivery and read state, early receipts, contacts' presence tokens. */
  readonly receipts: ReceiptStore;
  /** Edits, tombstones, reactions, quotes, expiry and disappearing-message timers. */
  readonly actions: MessageActionsStore;
  /** The contacts this account blocks. */
  readonly blocklist: BlocklistStore;
  /** The local account, or undefined before registration or linking. */
  getAccount(): Account | undefined;
  /** Stores the local account (replacing it). */
  saveAccount(account: Account): void;
  /** Runs `fn` in one transaction (synchronous; see ClientDatabase.transaction). */
  transaction<T>(fn: () => T): T;
  /** Closes the database (checkpointing the WAL). Idempotent. */
  close(): void;
}

/**
 * Opens the profile at `options.profileDir`, creating it (and its key) when new. Prunes seen
 * envelopes past their retention.
 * @throws ClientError WRONG_PASSPHRASE, PASSPHRASE_REQUIRED, KEY_MODE_MISMATCH,
 *   KEY_FILE_PERMISSIONS, KEY_FILE_INVALID, KEY_MISSING, PROFILE_IN_USE, DATABASE_TOO_NEW,
 *   SCHEMA_MISMATCH.
 */
export function openClientStore(options: ClientStoreOptions): ClientStore {
  const clock = options.clock ?? SYSTEM_CLOCK;
  const key = resolveDatabaseKey(options);
  const path = join(options.profileDir, DATABASE_FILE_NAME);
  const database = ClientDatabase.open(path, key, { migrations: STORE_MIGRATIONS, clock });
  try {
    // Encrypted, but nobody else's business either (its size and times tell how much one chats).
    if (process.platform !== 'win32' && (statSync(path).mode & 0o077) !== 0) chmodSync(path, 0o600);
    const account = new AccountStore(database);
    const seenEnvelopes = new SeenEnvelopes(database, clock);
    seenEnvelopes.prune();
    const receipts = new ReceiptStore(database, clock);
    receipts.prune();
    const actions = new MessageActionsStore(database, clock);
    actions.prunePending();
    return {
      profileDir: options.profileDir,
      database,
      protocol: new DatabaseProtocolStores(database, account, clock),
      messages: new MessageStore(database, clock),
      groups: new GroupStore(database, clock),
      outbox: new Outbox(database, clock),
      seenEnvelopes,
      settings: new SettingsStore(database),
      receipts,
      actions,
      blocklist: new BlocklistStore(database),
      getAccount: () => account.getAccount(),
      saveAccount: (a: Account) => account.saveAccount(a),
      transaction: <T>(fn: () => T): T => database.transaction(fn),
      close: () => database.close(),
    };
  } catch (err) {
    database.close();
    throw err;
  }
}
