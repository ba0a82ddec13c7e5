// SPDX-License-Identifier: AGPL-3.0-only
/**
 * In-memory protocol stores: for tests, for tools, and as the reference behaviour the contract
 * suite (`@parley/crypto/testing`) pins for persistent implementations. Everything is copied in
 * and out, so callers cannot change stored state by mutating a buffer.
 */
import { toHex } from '@parley/protocol';
import { CryptoError } from './errors.js';
import type { LocalIdentity } from './identity.js';
import type {
  IdentityStore,
  KyberPreKeyStore,
  PreKeyStore,
  ProtocolStores,
  SenderKeyStore,
  SessionStore,
  SignedPreKeyStore,
  TrustDirection,
} from './stores.js';

const copy = (bytes: Uint8Array): Uint8Array => new Uint8Array(bytes);
const copyOrUndefined = (bytes: Uint8Array | undefined): Uint8Array | undefined => (bytes ? copy(bytes) : undefined);

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}

function aciOf(address: string): string {
  const dot = address.lastIndexOf('.');
  return dot < 0 ? address : address.slice(0, dot);
}

interface KnownIdentity {
  /** The key last seen (what getIdentity answers). */
  seen: Uint8Array;
  /** The key the user trusts for sending (first seen, or accepted). */
  trusted: Uint8Array;
}

/** {@link IdentityStore} in memory, with the trust policy documented there. */
export class MemoryIdentityStore implements IdentityStore {
  readonly #local: LocalIdentity;
  readonly #known = new Map<string, KnownIdentity>();

  constructor(local: LocalIdentity) {
    this.#local = { ...local, identityKeyPair: copy(local.identityKeyPair), identityKey: copy(local.identityKey) };
  }

  async getIdentityKeyPair(): Promise<Uint8Array> {
    return copy(this.#local.identityKeyPair);
  }

  async getLocalRegistrationId(): Promise<number> {
    return this.#local.registrationId;
  }

  async saveIdentity(aci: string, identityKey: Uint8Array): Promise<boolean> {
    const known = this.#known.get(aci);
    if (!known) {
      this.#known.set(aci, { seen: copy(identityKey), trusted: copy(identityKey) });
      return false;
    }
    if (bytesEqual(known.seen, identityKey)) return false;
    known.seen = copy(identityKey);
    return true;
  }

  async isTrustedIdentity(aci: string, identityKey: Uint8Array, direction: TrustDirection): Promise<boolean> {
    if (direction === 'receiving') return true;
    const known = this.#known.get(aci);
    return !known || bytesEqual(known.trusted, identityKey);
  }

  async getIdentity(aci: string): Promise<Uint8Array | undefined> {
    return copyOrUndefined(this.#known.get(aci)?.seen);
  }

  async acceptIdentity(aci: string, identityKey: Uint8Array): Promise<void> {
    this.#known.set(aci, { seen: copy(identityKey), trusted: copy(identityKey) });
  }
}

/** {@link SessionStore} in memory. */
export class MemorySessionStore implements SessionStore {
  readonly #records = new Map<string, Uint8Array>();

  async getSession(address: string): Promise<Uint8Array | undefined> {
    return copyOrUndefined(this.#records.get(address));
  }

  async saveSession(address: string, record: Uint8Array): Promise<void> {
    this.#records.set(address, copy(record));
  }

  async deleteSession(address: string): Promise<void> {
    this.#records.delete(address);
  }

  async deleteAllSessions(aci: string): Promise<void> {
    for (const address of [...this.#records.keys()]) if (aciOf(address) === aci) this.#records.delete(address);
  }

  async getSessionDeviceIds(aci: string): Promise<number[]> {
    const ids: number[] = [];
    for (const address of this.#records.keys()) {
      if (aciOf(address) === aci) ids.push(Number(address.slice(aci.length + 1)));
    }
    return ids.sort((a, b) => a - b);
  }
}

/** {@link PreKeyStore} in memory. */
export class MemoryPreKeyStore implements PreKeyStore {
  readonly #records = new Map<number, Uint8Array>();

  async getPreKey(keyId: number): Promise<Uint8Array | undefined> {
    return copyOrUndefined(this.#records.get(keyId));
  }

  async savePreKey(keyId: number, record: Uint8Array): Promise<void> {
    this.#records.set(keyId, copy(record));
  }

  async removePreKey(keyId: number): Promise<void> {
    this.#records.delete(keyId);
  }
}

/** {@link SignedPreKeyStore} in memory. */
export class MemorySignedPreKeyStore implements SignedPreKeyStore {
  readonly #records = new Map<number, Uint8Array>();

  async getSignedPreKey(keyId: number): Promise<Uint8Array | undefined> {
    return copyOrUndefined(this.#records.get(keyId));
  }

  async saveSignedPreKey(keyId: number, record: Uint8Array): Promise<void> {
    this.#records.set(keyId, copy(record));
  }

  async removeSignedPreKey(keyId: number): Promise<void> {
    this.#records.delete(keyId);
  }
}

interface KyberEntry {
  record: Uint8Array;
  lastResort: boolean;
  /** `"<signedPreKeyId>:<baseKey hex>"` pairs a last-resort key was used with. */
  used: Set<string>;
}

/** {@link KyberPreKeyStore} in memory. */
export class MemoryKyberPreKeyStore implements KyberPreKeyStore {
  readonly #entries = new Map<number, KyberEntry>();

  async getKyberPreKey(keyId: number): Promise<Uint8Array | undefined> {
    return copyOrUndefined(this.#entries.get(keyId)?.record);
  }

  async saveKyberPreKey(keyId: number, record: Uint8Array, lastResort: boolean): Promise<void> {
    this.#entries.set(keyId, { record: copy(record), lastResort, used: new Set() });
  }

  async markKyberPreKeyUsed(keyId: number, signedPreKeyId: number, baseKey: Uint8Array): Promise<boolean> {
    const entry = this.#entries.get(keyId);
    if (!entry) return true;
    if (!entry.lastResort) {
      this.#entries.delete(keyId);
      return true;
    }
    const use = `${signedPreKeyId}:${toHex(baseKey)}`;
    if (entry.used.has(use)) return false;
    entry.used.add(use);
    return true;
  }

  async removeKyberPreKey(keyId: number): Promise<void> {
    this.#entries.delete(keyId);
  }
}

/** {@link SenderKeyStore} in memory. */
export class MemorySenderKeyStore implements SenderKeyStore {
  readonly #records = new Map<string, Uint8Array>();

  async getSenderKey(address: string, distributionId: string): Promise<Uint8Array | undefined> {
    return copyOrUndefined(this.#records.get(`${address}/${distributionId}`));
  }

  async saveSenderKey(address: string, distributionId: string, record: Uint8Array): Promise<void> {
    this.#records.set(`${address}/${distributionId}`, copy(record));
  }

  async deleteSenderKey(address: string, distributionId: string): Promise<void> {
    this.#records.delete(`${address}/${distributionId}`);
  }
}

/** A fresh set of in-memory stores for a device with identity `identity`. */
export function createMemoryStores(identity: LocalIdentity): ProtocolStores {
  if (!identity || !(identity.identityKeyPair instanceof Uint8Array)) {
    throw new CryptoError('INVALID_ARGUMENT', 'a LocalIdentity is required');
  }
  return {
    identity: new MemoryIdentityStore(identity),
    sessions: new MemorySessionStore(),
    preKeys: new MemoryPreKeyStore(),
    signedPreKeys: new MemorySignedPreKeyStore(),
    kyberPreKeys: new MemoryKyberPreKeyStore(),
    senderKeys: new MemorySenderKeyStore(),
  };
}
