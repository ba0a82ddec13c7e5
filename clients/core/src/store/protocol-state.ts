// SPDX-License-Identifier: AGPL-3.0-only
/**
 * @internal The protocol state as synchronous reads and writes, the seam between the store
 * rules (trust on first use, one-time prekeys, last-resort replay marks: protocol-store.ts) and
 * where the state lives: the database here, or a staged overlay in memory
 * (staged-protocol-stores.ts). Not exported from the package entry.
 *
 * The database state counts its writes per key (see {@link DatabaseProtocolState.changedSince}),
 * so a staged overlay can tell at commit whether what it read was changed meanwhile.
 */
import { type Clock, parseAddress } from '@parley/crypto';
import { ClientError } from '../errors.js';
import type { AccountStore } from './account-store.js';
import type { ClientDatabase } from './database.js';
import { blob, copyBytes } from './sql-values.js';

/** What the device knows of a peer account's identity key. */
export interface KnownIdentity {
  /** The key last seen (what getIdentity answers). */
  readonly seen: Uint8Array;
  /** The key the user trusts for sending: the first seen, or the last accepted. */
  readonly trusted: Uint8Array;
}

/** A stored Kyber prekey. */
export interface KyberEntry {
  readonly record: Uint8Array;
  readonly lastResort: boolean;
}

/** The two EC prekey id spaces. */
export type EcPreKeyKind = 'one-time' | 'signed';

/** The local identity libsignal asks for. */
export interface LocalIdentityState {
  readonly identityKeyPair: Uint8Array;
  readonly registrationId: number;
}

/** Synchronous access to one device's protocol state. Returned buffers may be shared: callers copy. */
export interface ProtocolState {
  localIdentity(): LocalIdentityState;
  identity(aci: string): KnownIdentity | undefined;
  putIdentity(aci: string, known: KnownIdentity): void;
  session(aci: string, deviceId: number): Uint8Array | undefined;
  /** `undefined` deletes. */
  putSession(aci: string, deviceId: number, record: Uint8Array | undefined): void;
  deleteSessions(aci: string): void;
  sessionDeviceIds(aci: string): number[];
  ecPreKey(kind: EcPreKeyKind, keyId: number): Uint8Array | undefined;
  /** `undefined` deletes. */
  putEcPreKey(kind: EcPreKeyKind, keyId: number, record: Uint8Array | undefined): void;
  kyberPreKey(keyId: number): KyberEntry | undefined;
  /** Stores (forgetting the key's use marks) or, with `undefined`, deletes. */
  putKyberPreKey(keyId: number, entry: KyberEntry | undefined): void;
  kyberUsed(keyId: number, signedPreKeyId: number, baseKey: Uint8Array): boolean;
  addKyberUse(keyId: number, signedPreKeyId: number, baseKey: Uint8Array): void;
  senderKey(address: string, distributionId: string): Uint8Array | undefined;
  /** `undefined` deletes. */
  putSenderKey(address: string, distributionId: string, record: Uint8Array | undefined): void;
}

/** Keys naming one unit of protocol state for conflict checks. Sessions count per account. */
export const stateKey = {
  identity: (aci: string): string => `i:${aci}`,
  sessions: (aci: string): string => `s:${aci}`,
  ecPreKey: (kind: EcPreKeyKind, keyId: number): string => `${kind === 'signed' ? 'sp' : 'p'}:${keyId}`,
  kyberPreKey: (keyId: number): string => `k:${keyId}`,
  senderKey: (address: string, distributionId: string): string => `sk:${address}/${distributionId}`,
};

/** `"<aci>.<deviceId>"` split, validated (CryptoError INVALID_ARGUMENT otherwise). */
export function splitAddress(address: string): { aci: string; deviceId: number } {
  return parseAddress(address);
}

const EC_TABLE: Record<EcPreKeyKind, string> = { 'one-time': 'pre_keys', signed: 'signed_pre_keys' };

/** {@link ProtocolState} in the database. */
export class DatabaseProtocolState implements ProtocolState {
  readonly #db: ClientDatabase;
  readonly #account: AccountStore;
  readonly #clock: Clock;
  #version = 0;
  readonly #lastWrite = new Map<string, number>();

  /** Over the client schema in `db`; the local identity comes from `account`. */
  constructor(db: ClientDatabase, account: AccountStore, clock: Clock) {
    this.#db = db;
    this.#account = account;
    this.#clock = clock;
  }

  /** The database the state lives in (a staged overlay commits inside its transactions). */
  get database(): ClientDatabase {
    return this.#db;
  }

  /** A counter that grows with every write through this object. */
  get version(): number {
    return this.#version;
  }

  /** True when `key` (see {@link stateKey}) was written after the counter read `version`. */
  changedSince(key: string, version: number): boolean {
    return (this.#lastWrite.get(key) ?? 0) > version;
  }

  #wrote(key: string): void {
    this.#lastWrite.set(key, ++this.#version);
  }

  localIdentity(): LocalIdentityState {
    const account = this.#account.getAccount();
    if (!account) throw new ClientError('NO_ACCOUNT');
    return { identityKeyPair: account.identityKeyPair, registrationId: account.registrationId };
  }

  identity(aci: string): KnownIdentity | undefined {
    const row = this.#db.getCached<{ seen: Uint8Array; trusted: Uint8Array | null }>(
      ['contacts'],
      'SELECT identity_key AS seen, trusted_identity_key AS trusted FROM contacts WHERE aci = ? AND identity_key IS NOT NULL',
      [aci],
    );
    return row ? { seen: copyBytes(row.seen), trusted: copyBytes(row.trusted ?? new Uint8Array(0)) } : undefined;
  }

  putIdentity(aci: string, known: KnownIdentity): void {
    this.#db.run(
      `INSERT INTO contacts (aci, identity_key, trusted_identity_key, updated_at) VALUES (?, ?, ?, ?)
       ON CONFLICT (aci) DO UPDATE SET identity_key = excluded.identity_key, trusted_identity_key = excluded.trusted_identity_key,
         updated_at = excluded.updated_at`,
      [aci, blob(known.seen), blob(known.trusted), this.#clock.now()],
    );
    this.#wrote(stateKey.identity(aci));
  }

  session(aci: string, deviceId: number): Uint8Array | undefined {
    const row = this.#db.get<{ record: Uint8Array }>('SELECT record FROM sessions WHERE aci = ? AND device_id = ?', [aci, deviceId]);
    return row ? copyBytes(row.record) : undefined;
  }

  putSession(aci: string, deviceId: number, record: Uint8Array | undefined): void {
    if (record) {
      this.#db.run('INSERT OR REPLACE INTO sessions (aci, device_id, record) VALUES (?, ?, ?)', [aci, deviceId, blob(record)]);
    } else {
      this.#db.run('DELETE FROM sessions WHERE aci = ? AND device_id = ?', [aci, deviceId]);
    }
    this.#wrote(stateKey.sessions(aci));
  }

  deleteSessions(aci: string): void {
    this.#db.run('DELETE FROM sessions WHERE aci = ?', [aci]);
    this.#wrote(stateKey.sessions(aci));
  }

  sessionDeviceIds(aci: string): number[] {
    return this.#db.all<{ device_id: number }>('SELECT device_id FROM sessions WHERE aci = ? ORDER BY device_id', [aci]).map((r) => r.device_id);
  }

  ecPreKey(kind: EcPreKeyKind, keyId: number): Uint8Array | undefined {
    const row = this.#db.get<{ record: Uint8Array }>(`SELECT record FROM ${EC_TABLE[kind]} WHERE key_id = ?`, [keyId]);
    return row ? copyBytes(row.record) : undefined;
  }

  putEcPreKey(kind: EcPreKeyKind, keyId: number, record: Uint8Array | undefined): void {
    if (record) {
      this.#db.run(`INSERT OR REPLACE INTO ${EC_TABLE[kind]} (key_id, record, stored_at) VALUES (?, ?, ?)`, [keyId, blob(record), this.#clock.now()]);
    } else {
      this.#db.run(`DELETE FROM ${EC_TABLE[kind]} WHERE key_id = ?`, [keyId]);
    }
    this.#wrote(stateKey.ecPreKey(kind, keyId));
  }

  kyberPreKey(keyId: number): KyberEntry | undefined {
    const row = this.#db.get<{ record: Uint8Array; last_resort: number }>('SELECT record, last_resort FROM kyber_pre_keys WHERE key_id = ?', [keyId]);
    return row ? { record: copyBytes(row.record), lastResort: row.last_resort === 1 } : undefined;
  }

  putKyberPreKey(keyId: number, entry: KyberEntry | undefined): void {
    this.#db.transaction(() => {
      // Explicitly, rather than trusting REPLACE to cascade: a re-saved key starts without marks.
      this.#db.run('DELETE FROM kyber_pre_key_uses WHERE key_id = ?', [keyId]);
      if (entry) {
        this.#db.run('INSERT OR REPLACE INTO kyber_pre_keys (key_id, record, last_resort, stored_at) VALUES (?, ?, ?, ?)', [
          keyId,
          blob(entry.record),
          entry.lastResort ? 1 : 0,
          this.#clock.now(),
        ]);
      } else {
        this.#db.run('DELETE FROM kyber_pre_keys WHERE key_id = ?', [keyId]);
      }
    });
    this.#wrote(stateKey.kyberPreKey(keyId));
  }

  kyberUsed(keyId: number, signedPreKeyId: number, baseKey: Uint8Array): boolean {
    return (
      this.#db.value('SELECT 1 FROM kyber_pre_key_uses WHERE key_id = ? AND signed_pre_key_id = ? AND base_key = ?', [
        keyId,
        signedPreKeyId,
        blob(baseKey),
      ]) !== undefined
    );
  }

  addKyberUse(keyId: number, signedPreKeyId: number, baseKey: Uint8Array): void {
    this.#db.run('INSERT INTO kyber_pre_key_uses (key_id, signed_pre_key_id, base_key) VALUES (?, ?, ?)', [keyId, signedPreKeyId, blob(baseKey)]);
    this.#wrote(stateKey.kyberPreKey(keyId));
  }

  senderKey(address: string, distributionId: string): Uint8Array | undefined {
    const row = this.#db.get<{ record: Uint8Array }>('SELECT record FROM sender_keys WHERE address = ? AND distribution_id = ?', [
      address,
      distributionId,
    ]);
    return row ? copyBytes(row.record) : undefined;
  }

  putSenderKey(address: string, distributionId: string, record: Uint8Array | undefined): void {
    if (record === undefined) {
      this.#db.run('DELETE FROM sender_keys WHERE address = ? AND distribution_id = ?', [address, distributionId]);
    } else {
      this.#db.run('INSERT OR REPLACE INTO sender_keys (address, distribution_id, record) VALUES (?, ?, ?)', [address, distributionId, blob(record)]);
    }
    this.#wrote(stateKey.senderKey(address, distributionId));
  }
}
