// SPDX-License-Identifier: AGPL-3.0-only
/**
 * The embedded KeyStore on SQLite (better-sqlite3). better-sqlite3 is synchronous, so each
 * method runs to completion without yielding and every write method is one `BEGIN IMMEDIATE`
 * transaction: within the process, concurrent claims are serialized by the event loop, and
 * another process on the same file waits for the write lock instead of reading a key that is
 * about to be claimed. One-time keys are claimed with `DELETE … RETURNING`, so a key that was
 * returned no longer exists.
 */
import Database, { type Database as Db, type Statement } from 'better-sqlite3';
import { ParleyError, type Aci, type DeviceId, type PushProvider, type RegistrationId } from '@parley/protocol';
import type {
  ClaimedDeviceKeys,
  ClaimSelection,
  KeyCounts,
  KeyStore,
  KeyUpload,
  LinkDeviceInput,
  LinkedDevice,
  LiveLinkToken,
  NewAccount,
  NewDevice,
  NewLinkToken,
  RemoveDeviceResult,
  StoredAccount,
  StoredDevice,
  StoredPreKey,
  StoredPushToken,
  StoredSignedPreKey,
} from '../ports/key-store.js';
import { applyMigrations } from './migrate.js';

/** Options of {@link openSqliteKeyStore}. */
export interface SqliteKeyStoreOptions {
  /** How long a write waits for another process's lock before failing, milliseconds. Default 5,000. */
  readonly busyTimeoutMs?: number;
}

interface AccountRow {
  aci: string;
  username: string;
  identity_key: Buffer;
  created_at: number;
}

interface DeviceRow {
  aci: string;
  device_id: number;
  registration_id: number;
  secret_hash: Buffer;
  created_at: number;
}

interface BundleRow {
  device_id: number;
  registration_id: number;
  signed_prekey_id: number;
  signed_prekey: Buffer;
  signed_prekey_signature: Buffer;
  last_resort_kyber_id: number;
  last_resort_kyber: Buffer;
  last_resort_kyber_signature: Buffer;
}

interface KeyRow {
  key_id: number;
  public_key: Buffer;
  signature?: Buffer;
}

// Blobs come back as Buffers; callers get plain Uint8Arrays that own their bytes.
const bytes = (b: Buffer): Uint8Array => new Uint8Array(b);

const LAST_DEVICE_ID = 127;

function toAccount(r: AccountRow): StoredAccount {
  return { aci: r.aci as Aci, username: r.username, identityKey: bytes(r.identity_key), createdAt: r.created_at };
}

function toDevice(r: DeviceRow): StoredDevice {
  return {
    aci: r.aci as Aci,
    deviceId: r.device_id as DeviceId,
    registrationId: r.registration_id as RegistrationId,
    secretHash: bytes(r.secret_hash),
    createdAt: r.created_at,
  };
}

function toPreKey(r: KeyRow): StoredPreKey {
  return { keyId: r.key_id, publicKey: bytes(r.public_key) };
}

function toSignedPreKey(r: KeyRow): StoredSignedPreKey {
  return { keyId: r.key_id, publicKey: bytes(r.public_key), signature: bytes(r.signature!) };
}

/** The SQLite KeyStore. Build it with {@link openSqliteKeyStore}. */
export class SqliteKeyStore implements KeyStore {
  private readonly db: Db;
  private readonly s: ReturnType<typeof prepare>;
  private closed = false;

  /** Opens (creating if needed) the database at `path` and migrates it. `:memory:` works for tests. */
  constructor(path: string, options: SqliteKeyStoreOptions = {}) {
    this.db = new Database(path);
    try {
      this.db.pragma('journal_mode = WAL');
      // keys.db is the precious database (losing it loses every account): fsync every commit.
      this.db.pragma('synchronous = FULL');
      this.db.pragma('foreign_keys = ON');
      this.db.pragma(`busy_timeout = ${Math.max(0, Math.floor(options.busyTimeoutMs ?? 5000))}`);
      applyMigrations(this.db);
      this.s = prepare(this.db);
    } catch (err) {
      this.db.close();
      throw err;
    }
  }

  async createAccount(account: NewAccount, maxStoredPreKeys: number): Promise<void> {
    this.write(() => {
      if (this.s.accountByUsername.get(account.username)) throw new ParleyError('USERNAME_TAKEN', 'the username is taken');
      this.s.insertAccount.run(account.aci, account.username, account.identityKey, account.createdAt);
      this.insertDevice(account.aci, 1, account.device, maxStoredPreKeys);
    });
  }

  async getAccount(aci: Aci): Promise<StoredAccount | undefined> {
    const row = this.read(() => this.s.account.get(aci) as AccountRow | undefined);
    return row && toAccount(row);
  }

  async findAccountByUsername(username: string): Promise<StoredAccount | undefined> {
    const row = this.read(() => this.s.accountByUsername.get(username) as AccountRow | undefined);
    return row && toAccount(row);
  }

  async getDevice(aci: Aci, deviceId: DeviceId): Promise<StoredDevice | undefined> {
    const row = this.read(() => this.s.device.get(aci, deviceId) as DeviceRow | undefined);
    return row && toDevice(row);
  }

  async listDevices(aci: Aci): Promise<StoredDevice[]> {
    return this.read(() => (this.s.devices.all(aci) as DeviceRow[]).map(toDevice));
  }

  async createLinkToken(token: NewLinkToken): Promise<void> {
    this.write(() => {
      this.s.purgeLinkTokens.run(token.createdAt);
      this.s.insertLinkToken.run(token.tokenHash, token.aci, token.createdAt, token.expiresAt);
    });
  }

  async findLinkToken(tokenHash: Uint8Array, now: number): Promise<LiveLinkToken | undefined> {
    const row = this.read(() => this.s.liveLinkToken.get(tokenHash, now) as { aci: string; expires_at: number } | undefined);
    return row && { aci: row.aci as Aci, expiresAt: row.expires_at };
  }

  async linkDevice(request: LinkDeviceInput, maxStoredPreKeys: number): Promise<LinkedDevice> {
    return this.write(() => {
      const token = this.s.liveLinkToken.get(request.tokenHash, request.now) as { aci: string } | undefined;
      if (!token) throw new ParleyError('INVALID_LINK_TOKEN', 'the link token is unknown, used or expired');
      const aci = token.aci as Aci;
      const used = (this.s.deviceIds.all(aci) as Array<{ device_id: number }>).map((r) => r.device_id);
      if (used.length >= Math.min(request.maxDevices, LAST_DEVICE_ID)) {
        throw new ParleyError('DEVICE_LIMIT', 'the account has the maximum number of devices');
      }
      const taken = new Set(used);
      let deviceId = 1;
      while (taken.has(deviceId)) deviceId++;
      this.s.deleteLinkToken.run(request.tokenHash);
      this.insertDevice(aci, deviceId, request.device, maxStoredPreKeys);
      return { aci, deviceId: deviceId as DeviceId };
    });
  }

  async removeDevice(aci: Aci, deviceId: DeviceId): Promise<RemoveDeviceResult> {
    return this.write(() => {
      const count = (this.s.deviceCount.get(aci) as { n: number }).n;
      if (!this.s.device.get(aci, deviceId)) return 'not-found';
      if (count <= 1) return 'last-device';
      // The one-time keys go with the device through ON DELETE CASCADE.
      this.s.deleteDevice.run(aci, deviceId);
      return 'removed';
    });
  }

  async storeKeys(aci: Aci, deviceId: DeviceId, upload: KeyUpload, maxStoredPreKeys: number): Promise<void> {
    this.write(() => {
      if (!this.s.device.get(aci, deviceId)) throw new ParleyError('NOT_FOUND', 'no such device');
      this.writeKeys(aci, deviceId, upload, maxStoredPreKeys);
    });
  }

  async countKeys(aci: Aci, deviceId: DeviceId): Promise<KeyCounts | undefined> {
    return this.read(() => {
      if (!this.s.device.get(aci, deviceId)) return undefined;
      return this.counts(aci, deviceId);
    });
  }

  async claimKeys(aci: Aci, select: ClaimSelection = {}): Promise<ClaimedDeviceKeys[]> {
    return this.write(() => {
      const all = (select.deviceId === undefined ? this.s.bundleRows.all(aci) : this.s.bundleRow.all(aci, select.deviceId)) as BundleRow[];
      const rows = all.filter((r) => r.device_id !== select.exceptDeviceId);
      return rows.map((r): ClaimedDeviceKeys => {
        const preKey = this.s.claimPreKey.get(aci, r.device_id) as KeyRow | undefined;
        const kyber = this.s.claimKyberPreKey.get(aci, r.device_id) as KeyRow | undefined;
        return {
          deviceId: r.device_id as DeviceId,
          registrationId: r.registration_id as RegistrationId,
          signedPreKey: { keyId: r.signed_prekey_id, publicKey: bytes(r.signed_prekey), signature: bytes(r.signed_prekey_signature) },
          kyberPreKey: kyber
            ? toSignedPreKey(kyber)
            : { keyId: r.last_resort_kyber_id, publicKey: bytes(r.last_resort_kyber), signature: bytes(r.last_resort_kyber_signature) },
          kyberPreKeyIsLastResort: !kyber,
          ...(preKey ? { preKey: toPreKey(preKey) } : {}),
        };
      });
    });
  }

  async setAccessKey(aci: Aci, accessKey: Uint8Array, updatedAt: number): Promise<boolean> {
    return this.write(() => {
      if (!this.s.account.get(aci)) return false;
      this.s.upsertAccessKey.run(aci, accessKey, updatedAt);
      return true;
    });
  }

  async getAccessKeys(acis: readonly Aci[]): Promise<Map<Aci, Uint8Array>> {
    return this.read(() => {
      const out = new Map<Aci, Uint8Array>();
      // One primary-key lookup each: a few microseconds, also for a thousand recipients.
      for (const aci of acis) {
        const row = this.s.accessKey.get(aci) as { access_key: Buffer } | undefined;
        if (row) out.set(aci, bytes(row.access_key));
      }
      return out;
    });
  }

  async setPresenceToken(aci: Aci, tokenHash: Uint8Array, updatedAt: number): Promise<boolean> {
    return this.write(() => {
      if (!this.s.account.get(aci)) throw new ParleyError('NOT_FOUND', 'no such account');
      const before = this.s.presenceToken.get(aci) as { token_hash: Buffer } | undefined;
      this.s.upsertPresenceToken.run(aci, tokenHash, updatedAt);
      return !before || !Buffer.from(tokenHash).equals(before.token_hash);
    });
  }

  async clearPresenceToken(aci: Aci): Promise<boolean> {
    return this.write(() => this.s.deletePresenceToken.run(aci).changes > 0);
  }

  async getPresenceToken(aci: Aci): Promise<Uint8Array | undefined> {
    const row = this.read(() => this.s.presenceToken.get(aci) as { token_hash: Buffer } | undefined);
    return row && bytes(row.token_hash);
  }

  async setPushToken(aci: Aci, deviceId: DeviceId, token: StoredPushToken): Promise<void> {
    this.write(() => {
      if (!this.s.device.get(aci, deviceId)) throw new ParleyError('NOT_FOUND', 'no such device');
      this.s.takePushToken.run(token.provider, token.token, aci, deviceId);
      this.s.upsertPushToken.run(aci, deviceId, token.provider, token.token, token.updatedAt);
    });
  }

  async getPushToken(aci: Aci, deviceId: DeviceId): Promise<StoredPushToken | undefined> {
    const row = this.read(() => this.s.pushToken.get(aci, deviceId) as { provider: PushProvider; token: string; updated_at: number } | undefined);
    return row && { provider: row.provider, token: row.token, updatedAt: row.updated_at };
  }

  async removePushToken(aci: Aci, deviceId: DeviceId, onlyIf?: string): Promise<boolean> {
    return this.write(() =>
      onlyIf === undefined ? this.s.deletePushToken.run(aci, deviceId).changes > 0 : this.s.deletePushTokenIf.run(aci, deviceId, onlyIf).changes > 0,
    );
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.db.close();
  }

  private insertDevice(aci: Aci, deviceId: number, device: NewDevice, maxStoredPreKeys: number): void {
    const { signedPreKey: spk, lastResortKyberPreKey: lr } = device.keys;
    this.s.insertDevice.run(
      aci,
      deviceId,
      device.registrationId,
      device.secretHash,
      device.createdAt,
      spk.keyId,
      spk.publicKey,
      spk.signature,
      lr.keyId,
      lr.publicKey,
      lr.signature,
    );
    this.writeKeys(aci, deviceId, { preKeys: device.keys.preKeys, kyberPreKeys: device.keys.kyberPreKeys }, maxStoredPreKeys);
  }

  /** Runs inside a write transaction: a throw after the writes rolls them back. */
  private writeKeys(aci: Aci, deviceId: number, upload: KeyUpload, maxStoredPreKeys: number): void {
    if (upload.signedPreKey) {
      const k = upload.signedPreKey;
      this.s.replaceSignedPreKey.run(k.keyId, k.publicKey, k.signature, aci, deviceId);
    }
    if (upload.lastResortKyberPreKey) {
      const k = upload.lastResortKyberPreKey;
      this.s.replaceLastResort.run(k.keyId, k.publicKey, k.signature, aci, deviceId);
    }
    for (const k of upload.preKeys ?? []) this.s.upsertPreKey.run(aci, deviceId, k.keyId, k.publicKey);
    for (const k of upload.kyberPreKeys ?? []) this.s.upsertKyberPreKey.run(aci, deviceId, k.keyId, k.publicKey, k.signature);
    if ((upload.preKeys?.length ?? 0) + (upload.kyberPreKeys?.length ?? 0) > 0) {
      const counts = this.counts(aci, deviceId);
      if (counts.preKeys > maxStoredPreKeys || counts.kyberPreKeys > maxStoredPreKeys) {
        throw new ParleyError('TOO_MANY_KEYS', `a device may store at most ${maxStoredPreKeys} one-time prekeys of each kind`);
      }
    }
  }

  private counts(aci: Aci, deviceId: number): KeyCounts {
    return {
      preKeys: (this.s.countPreKeys.get(aci, deviceId) as { n: number }).n,
      kyberPreKeys: (this.s.countKyberPreKeys.get(aci, deviceId) as { n: number }).n,
    };
  }

  private open(): void {
    if (this.closed) throw new Error('the key store is closed');
  }

  private read<T>(fn: () => T): T {
    this.open();
    return fn();
  }

  private write<T>(fn: () => T): T {
    this.open();
    return this.db.transaction(fn).immediate();
  }
}

function prepare(db: Db) {
  const p = (sql: string): Statement => db.prepare(sql);
  return {
    account: p('SELECT aci, username, identity_key, created_at FROM accounts WHERE aci = ?'),
    accountByUsername: p('SELECT aci, username, identity_key, created_at FROM accounts WHERE username = ?'),
    insertAccount: p('INSERT INTO accounts (aci, username, identity_key, created_at) VALUES (?, ?, ?, ?)'),
    device: p('SELECT aci, device_id, registration_id, secret_hash, created_at FROM devices WHERE aci = ? AND device_id = ?'),
    devices: p('SELECT aci, device_id, registration_id, secret_hash, created_at FROM devices WHERE aci = ? ORDER BY device_id'),
    deviceIds: p('SELECT device_id FROM devices WHERE aci = ? ORDER BY device_id'),
    deviceCount: p('SELECT count(*) AS n FROM devices WHERE aci = ?'),
    insertDevice: p(
      `INSERT INTO devices (aci, device_id, registration_id, secret_hash, created_at,
         signed_prekey_id, signed_prekey, signed_prekey_signature,
         last_resort_kyber_id, last_resort_kyber, last_resort_kyber_signature)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ),
    deleteDevice: p('DELETE FROM devices WHERE aci = ? AND device_id = ?'),
    replaceSignedPreKey: p(
      'UPDATE devices SET signed_prekey_id = ?, signed_prekey = ?, signed_prekey_signature = ? WHERE aci = ? AND device_id = ?',
    ),
    replaceLastResort: p(
      'UPDATE devices SET last_resort_kyber_id = ?, last_resort_kyber = ?, last_resort_kyber_signature = ? WHERE aci = ? AND device_id = ?',
    ),
    upsertPreKey: p(
      `INSERT INTO one_time_prekeys (aci, device_id, key_id, public_key) VALUES (?, ?, ?, ?)
       ON CONFLICT (aci, device_id, key_id) DO UPDATE SET public_key = excluded.public_key`,
    ),
    upsertKyberPreKey: p(
      `INSERT INTO one_time_kyber_prekeys (aci, device_id, key_id, public_key, signature) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (aci, device_id, key_id) DO UPDATE SET public_key = excluded.public_key, signature = excluded.signature`,
    ),
    countPreKeys: p('SELECT count(*) AS n FROM one_time_prekeys WHERE aci = ? AND device_id = ?'),
    countKyberPreKeys: p('SELECT count(*) AS n FROM one_time_kyber_prekeys WHERE aci = ? AND device_id = ?'),
    bundleRows: p(
      `SELECT device_id, registration_id, signed_prekey_id, signed_prekey, signed_prekey_signature,
         last_resort_kyber_id, last_resort_kyber, last_resort_kyber_signature
       FROM devices WHERE aci = ? ORDER BY device_id`,
    ),
    bundleRow: p(
      `SELECT device_id, registration_id, signed_prekey_id, signed_prekey, signed_prekey_signature,
         last_resort_kyber_id, last_resort_kyber, last_resort_kyber_signature
       FROM devices WHERE aci = ? AND device_id = ?`,
    ),
    claimPreKey: p(
      `DELETE FROM one_time_prekeys WHERE id =
         (SELECT id FROM one_time_prekeys WHERE aci = ? AND device_id = ? ORDER BY id LIMIT 1)
       RETURNING key_id, public_key`,
    ),
    claimKyberPreKey: p(
      `DELETE FROM one_time_kyber_prekeys WHERE id =
         (SELECT id FROM one_time_kyber_prekeys WHERE aci = ? AND device_id = ? ORDER BY id LIMIT 1)
       RETURNING key_id, public_key, signature`,
    ),
    purgeLinkTokens: p('DELETE FROM link_tokens WHERE expires_at <= ?'),
    insertLinkToken: p('INSERT INTO link_tokens (token_hash, aci, created_at, expires_at) VALUES (?, ?, ?, ?)'),
    liveLinkToken: p('SELECT aci, expires_at FROM link_tokens WHERE token_hash = ? AND expires_at > ?'),
    deleteLinkToken: p('DELETE FROM link_tokens WHERE token_hash = ?'),
    upsertAccessKey: p(
      `INSERT INTO access_keys (aci, access_key, updated_at) VALUES (?, ?, ?)
       ON CONFLICT (aci) DO UPDATE SET access_key = excluded.access_key, updated_at = excluded.updated_at`,
    ),
    accessKey: p('SELECT access_key FROM access_keys WHERE aci = ?'),
    presenceToken: p('SELECT token_hash FROM presence_tokens WHERE aci = ?'),
    upsertPresenceToken: p(
      `INSERT INTO presence_tokens (aci, token_hash, updated_at) VALUES (?, ?, ?)
       ON CONFLICT (aci) DO UPDATE SET token_hash = excluded.token_hash, updated_at = excluded.updated_at`,
    ),
    deletePresenceToken: p('DELETE FROM presence_tokens WHERE aci = ?'),
    pushToken: p('SELECT provider, token, updated_at FROM push_tokens WHERE aci = ? AND device_id = ?'),
    takePushToken: p('DELETE FROM push_tokens WHERE provider = ? AND token = ? AND NOT (aci = ? AND device_id = ?)'),
    upsertPushToken: p(
      `INSERT INTO push_tokens (aci, device_id, provider, token, updated_at) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (aci, device_id) DO UPDATE SET provider = excluded.provider, token = excluded.token, updated_at = excluded.updated_at`,
    ),
    deletePushToken: p('DELETE FROM push_tokens WHERE aci = ? AND device_id = ?'),
    deletePushTokenIf: p('DELETE FROM push_tokens WHERE aci = ? AND device_id = ? AND token = ?'),
  };
}

/** Opens the SQLite key store at `path` (the relay passes `<data>/keys.db`), migrating it. */
export function openSqliteKeyStore(path: string, options: SqliteKeyStoreOptions = {}): SqliteKeyStore {
  return new SqliteKeyStore(path, options);
}
