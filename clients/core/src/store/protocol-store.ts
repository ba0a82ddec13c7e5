// SPDX-License-Identifier: AGPL-3.0-only
/**
 * The @parley/crypto store ports on the client database. The rules (trust on first use, sending
 * blocked after a key change until accepted, one-time prekeys removed on use, last-resort Kyber
 * replay marks) are written once over {@link ProtocolState}, so the database stores and a staged
 * overlay of them (staged-protocol-stores.ts) behave exactly alike; both pass
 * `describeProtocolStoresContract`.
 *
 * Every method is synchronous underneath (SQLCipher is) and returns a settled promise, as the
 * ports require. Records are opaque bytes: this package never parses a libsignal record.
 */
import type {
  Clock,
  IdentityStore,
  KyberPreKeyStore,
  PreKeyStore,
  ProtocolStores,
  SenderKeyStore,
  SessionStore,
  SignedPreKeyStore,
  TrustDirection,
} from '@parley/crypto';
import { bytesEqual } from '@parley/protocol';
import { ClientError } from '../errors.js';
import type { AccountStore } from './account-store.js';
import type { ClientDatabase } from './database.js';
import { DatabaseProtocolState, type ProtocolState, splitAddress } from './protocol-state.js';

const copy = (bytes: Uint8Array): Uint8Array => new Uint8Array(bytes);
const copyOrUndefined = (bytes: Uint8Array | undefined): Uint8Array | undefined => (bytes ? new Uint8Array(bytes) : undefined);

function checkBytes(value: unknown, what: string): Uint8Array {
  if (!(value instanceof Uint8Array)) throw new ClientError('INVALID_ARGUMENT', `${what} must be bytes`);
  return value;
}

function checkText(value: unknown, what: string): string {
  if (typeof value !== 'string' || value === '') throw new ClientError('INVALID_ARGUMENT', `${what} must be a non-empty string`);
  return value;
}

function checkKeyId(value: unknown): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > 0xffffffff) {
    throw new ClientError('INVALID_ARGUMENT', 'a key id must be an unsigned 32-bit integer');
  }
  return value;
}

/**
 * The six store ports over `state`, keeping the trust policy documented on
 * `@parley/crypto`'s IdentityStore. Everything is copied in and out.
 */
export function protocolStoresOver(state: ProtocolState): ProtocolStores {
  const identity: IdentityStore = {
    getIdentityKeyPair: async () => copy(state.localIdentity().identityKeyPair),
    getLocalRegistrationId: async () => state.localIdentity().registrationId,
    async saveIdentity(aci: string, identityKey: Uint8Array): Promise<boolean> {
      checkText(aci, 'aci');
      checkBytes(identityKey, 'identityKey');
      const known = state.identity(aci);
      if (!known) {
        state.putIdentity(aci, { seen: copy(identityKey), trusted: copy(identityKey) });
        return false;
      }
      if (bytesEqual(known.seen, identityKey)) return false;
      state.putIdentity(aci, { seen: copy(identityKey), trusted: known.trusted });
      return true;
    },
    async isTrustedIdentity(aci: string, identityKey: Uint8Array, direction: TrustDirection): Promise<boolean> {
      checkText(aci, 'aci');
      checkBytes(identityKey, 'identityKey');
      if (direction === 'receiving') return true;
      if (direction !== 'sending') throw new ClientError('INVALID_ARGUMENT', 'direction must be sending or receiving');
      const known = state.identity(aci);
      return !known || bytesEqual(known.trusted, identityKey);
    },
    getIdentity: async (aci: string) => copyOrUndefined(state.identity(checkText(aci, 'aci'))?.seen),
    async acceptIdentity(aci: string, identityKey: Uint8Array): Promise<void> {
      checkText(aci, 'aci');
      checkBytes(identityKey, 'identityKey');
      state.putIdentity(aci, { seen: copy(identityKey), trusted: copy(identityKey) });
    },
  };

  const sessions: SessionStore = {
    async getSession(address: string): Promise<Uint8Array | undefined> {
      const { aci, deviceId } = splitAddress(address);
      return copyOrUndefined(state.session(aci, deviceId));
    },
    async saveSession(address: string, record: Uint8Array): Promise<void> {
      const { aci, deviceId } = splitAddress(address);
      state.putSession(aci, deviceId, copy(checkBytes(record, 'record')));
    },
    async deleteSession(address: string): Promise<void> {
      const { aci, deviceId } = splitAddress(address);
      if (state.session(aci, deviceId)) state.putSession(aci, deviceId, undefined);
    },
    deleteAllSessions: async (aci: string) => state.deleteSessions(checkText(aci, 'aci')),
    getSessionDeviceIds: async (aci: string) => state.sessionDeviceIds(checkText(aci, 'aci')),
  };

  const preKeys: PreKeyStore = {
    getPreKey: async (keyId: number) => copyOrUndefined(state.ecPreKey('one-time', checkKeyId(keyId))),
    savePreKey: async (keyId: number, record: Uint8Array) => state.putEcPreKey('one-time', checkKeyId(keyId), copy(checkBytes(record, 'record'))),
    removePreKey: async (keyId: number) => state.putEcPreKey('one-time', checkKeyId(keyId), undefined),
  };

  const signedPreKeys: SignedPreKeyStore = {
    getSignedPreKey: async (keyId: number) => copyOrUndefined(state.ecPreKey('signed', checkKeyId(keyId))),
    saveSignedPreKey: async (keyId: number, record: Uint8Array) => state.putEcPreKey('signed', checkKeyId(keyId), copy(checkBytes(record, 'record'))),
    removeSignedPreKey: async (keyId: number) => state.putEcPreKey('signed', checkKeyId(keyId), undefined),
  };

  const kyberPreKeys: KyberPreKeyStore = {
    getKyberPreKey: async (keyId: number) => copyOrUndefined(state.kyberPreKey(checkKeyId(keyId))?.record),
    async saveKyberPreKey(keyId: number, record: Uint8Array, lastResort: boolean): Promise<void> {
      if (typeof lastResort !== 'boolean') throw new ClientError('INVALID_ARGUMENT', 'lastResort must be a boolean');
      state.putKyberPreKey(checkKeyId(keyId), { record: copy(checkBytes(record, 'record')), lastResort });
    },
    async markKyberPreKeyUsed(keyId: number, signedPreKeyId: number, baseKey: Uint8Array): Promise<boolean> {
      checkKeyId(keyId);
      checkKeyId(signedPreKeyId);
      checkBytes(baseKey, 'baseKey');
      const entry = state.kyberPreKey(keyId);
      if (!entry) return true;
      if (!entry.lastResort) {
        state.putKyberPreKey(keyId, undefined);
        return true;
      }
      if (state.kyberUsed(keyId, signedPreKeyId, baseKey)) return false;
      state.addKyberUse(keyId, signedPreKeyId, copy(baseKey));
      return true;
    },
    removeKyberPreKey: async (keyId: number) => state.putKyberPreKey(checkKeyId(keyId), undefined),
  };

  const senderKeys: SenderKeyStore = {
    getSenderKey: async (address: string, distributionId: string) =>
      copyOrUndefined(state.senderKey(checkText(address, 'address'), checkText(distributionId, 'distributionId'))),
    saveSenderKey: async (address: string, distributionId: string, record: Uint8Array) =>
      state.putSenderKey(checkText(address, 'address'), checkText(distributionId, 'distributionId'), copy(checkBytes(record, 'record'))),
    deleteSenderKey: async (address: string, distributionId: string) =>
      state.putSenderKey(checkText(address, 'address'), checkText(distributionId, 'distributionId'), undefined),
  };

  return { identity, sessions, preKeys, signedPreKeys, kyberPreKeys, senderKeys };
}

/** A stored prekey as key maintenance sees it. */
export interface StoredKeyInfo {
  readonly keyId: number;
  /** When this store saved it, milliseconds since the epoch (for rotation). */
  readonly storedAt: number;
}

/** What key maintenance needs to decide on refills and rotation. */
export interface KeyInventory {
  /** Number of one-time EC prekeys held. */
  readonly oneTimePreKeys: number;
  /** Number of one-time Kyber prekeys held. */
  readonly oneTimeKyberPreKeys: number;
  /** Signed EC prekeys, oldest first. */
  readonly signedPreKeys: readonly StoredKeyInfo[];
  /** Last-resort Kyber prekeys, oldest first. */
  readonly lastResortKyberPreKeys: readonly StoredKeyInfo[];
}

/**
 * The protocol stores of one profile, in its database. The local identity and registration id
 * come from the account row (ClientError NO_ACCOUNT before there is one); peers' identities are
 * the identity columns of `contacts`.
 *
 * Writes land in the database at once. For the receive pipeline, decrypt through
 * `stageProtocolStores(this)` instead and commit the staged writes together with the message.
 */
export class DatabaseProtocolStores implements ProtocolStores {
  /** @internal The state underneath, for `stageProtocolStores`. */
  readonly state: DatabaseProtocolState;
  readonly identity: IdentityStore;
  readonly sessions: SessionStore;
  readonly preKeys: PreKeyStore;
  readonly signedPreKeys: SignedPreKeyStore;
  readonly kyberPreKeys: KyberPreKeyStore;
  readonly senderKeys: SenderKeyStore;
  readonly #db: ClientDatabase;

  /** Over the client schema in `db`. */
  constructor(db: ClientDatabase, account: AccountStore, clock: Clock) {
    this.#db = db;
    this.state = new DatabaseProtocolState(db, account, clock);
    const ports = protocolStoresOver(this.state);
    this.identity = ports.identity;
    this.sessions = ports.sessions;
    this.preKeys = ports.preKeys;
    this.signedPreKeys = ports.signedPreKeys;
    this.kyberPreKeys = ports.kyberPreKeys;
    this.senderKeys = ports.senderKeys;
  }

  /** Counts and ages of the prekeys this device holds. */
  keyInventory(): KeyInventory {
    const count = (sql: string): number => Number(this.#db.value(sql));
    const list = (sql: string): StoredKeyInfo[] =>
      this.#db.all<{ key_id: number; stored_at: number }>(sql).map((r) => ({ keyId: r.key_id, storedAt: r.stored_at }));
    return {
      oneTimePreKeys: count('SELECT count(*) FROM pre_keys'),
      oneTimeKyberPreKeys: count('SELECT count(*) FROM kyber_pre_keys WHERE last_resort = 0'),
      signedPreKeys: list('SELECT key_id, stored_at FROM signed_pre_keys ORDER BY stored_at, key_id'),
      lastResortKyberPreKeys: list('SELECT key_id, stored_at FROM kyber_pre_keys WHERE last_resort = 1 ORDER BY stored_at, key_id'),
    };
  }
}
