// SPDX-License-Identifier: AGPL-3.0-only
/** The local account: one row holding this device's identity, address and credentials. */
import type { Aci, DeviceId } from '@parley/protocol';
import { ClientError } from '../errors.js';
import type { ClientDatabase } from './database.js';
import { blob, bytesOrUndefined, copyBytes } from './sql-values.js';

/**
 * Who this device is. Secret fields: `identityKeyPair` (the account's private identity key),
 * `authSecret` (the relay password of this device) and `profileKey`.
 */
export interface Account {
  readonly aci: Aci;
  readonly deviceId: DeviceId;
  /** Username on the home relay (without the domain). */
  readonly username: string;
  /** The home relay's domain: the address is `username@domain`. */
  readonly domain: string;
  /** Base URL of the home relay, e.g. `https://relay.example.org`. */
  readonly serverUrl: string;
  /** This device's 32-byte auth secret (HTTP Basic password; the relay keeps only a hash). */
  readonly authSecret: Uint8Array;
  /** Serialized libsignal IdentityKeyPair of the account (shared by its devices). */
  readonly identityKeyPair: Uint8Array;
  /** The 33-byte public identity key. */
  readonly identityKey: Uint8Array;
  /** This device's registration id, 1..16383. */
  readonly registrationId: number;
  /** The account's profile key, once there is one. */
  readonly profileKey?: Uint8Array;
}

interface AccountRow {
  aci: string;
  device_id: number;
  username: string;
  domain: string;
  server_url: string;
  auth_secret: Uint8Array;
  identity_key_pair: Uint8Array;
  identity_key: Uint8Array;
  registration_id: number;
  profile_key: Uint8Array | null;
}

/** Reads and writes the single account row. */
export class AccountStore {
  readonly #db: ClientDatabase;

  /** Over `db`, which must hold the client schema. */
  constructor(db: ClientDatabase) {
    this.#db = db;
  }

  /** The account, or undefined before registration or linking completed. */
  getAccount(): Account | undefined {
    // Read on nearly every statement of the send and receive paths, written rarely: kept by the
    // database's read cache until a write reaches the table.
    const row = this.#db.getCached<AccountRow>(['account'], 'SELECT * FROM account WHERE id = 1');
    if (!row) return undefined;
    const profileKey = bytesOrUndefined(row.profile_key);
    return {
      aci: row.aci as Aci,
      deviceId: row.device_id as DeviceId,
      username: row.username,
      domain: row.domain,
      serverUrl: row.server_url,
      authSecret: copyBytes(row.auth_secret),
      identityKeyPair: copyBytes(row.identity_key_pair),
      identityKey: copyBytes(row.identity_key),
      registrationId: row.registration_id,
      ...(profileKey ? { profileKey } : {}),
    };
  }

  /** Like {@link getAccount}, but throws ClientError NO_ACCOUNT when there is none. */
  requireAccount(): Account {
    const account = this.getAccount();
    if (!account) throw new ClientError('NO_ACCOUNT');
    return account;
  }

  /** Stores `account`, replacing the previous one. */
  saveAccount(account: Account): void {
    checkAccount(account);
    this.#db.run(
      `INSERT OR REPLACE INTO account (id, aci, device_id, username, domain, server_url, auth_secret, identity_key_pair, identity_key,
         registration_id, profile_key) VALUES (1, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      [
        account.aci,
        account.deviceId,
        account.username,
        account.domain,
        account.serverUrl,
        blob(account.authSecret),
        blob(account.identityKeyPair),
        blob(account.identityKey),
        account.registrationId,
        account.profileKey ? blob(account.profileKey) : null,
      ],
    );
  }
}

function checkAccount(a: Account): void {
  const bad = (what: string): never => {
    throw new ClientError('INVALID_ARGUMENT', `account: ${what}`);
  };
  if (typeof a !== 'object' || a === null) bad('an Account object is required');
  if (typeof a.aci !== 'string' || a.aci === '') bad('aci is required');
  if (!Number.isInteger(a.deviceId) || a.deviceId < 1 || a.deviceId > 127) bad('deviceId must be 1..127');
  for (const k of ['username', 'domain', 'serverUrl'] as const) if (typeof a[k] !== 'string' || a[k] === '') bad(`${k} is required`);
  for (const k of ['authSecret', 'identityKeyPair', 'identityKey'] as const) if (!(a[k] instanceof Uint8Array) || a[k].length === 0) bad(`${k} must be bytes`);
  if (a.profileKey !== undefined && !(a.profileKey instanceof Uint8Array)) bad('profileKey must be bytes');
  if (!Number.isInteger(a.registrationId) || a.registrationId < 1 || a.registrationId > 16383) bad('registrationId must be 1..16383');
}
