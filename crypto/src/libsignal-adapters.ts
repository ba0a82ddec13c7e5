// SPDX-License-Identifier: AGPL-3.0-only
/**
 * @internal Wraps this package's byte-level store ports into libsignal's abstract store classes,
 * and turns libsignal failures into CryptoErrors. Not exported from the package entry.
 *
 * libsignal calls the stores from native code and, when a store throws, replaces the error by
 * a generic one that only quotes it in its message. A {@link PortCall} therefore keeps the first
 * error a port threw during one libsignal call, so the caller can rethrow that very error: a
 * CryptoError raised here (an unknown prekey, a replayed last-resort key) keeps its code, and a
 * store's own failure (a database error) reaches the caller unchanged.
 */
import {
  Direction,
  ErrorCode,
  IdentityChange,
  IdentityKeyPair,
  IdentityKeyStore,
  KyberPreKeyRecord,
  KyberPreKeyStore,
  LibSignalErrorBase,
  PreKeyRecord,
  PreKeyStore,
  PrivateKey,
  ProtocolAddress,
  PublicKey,
  SenderKeyRecord,
  SenderKeyStore,
  SessionRecord,
  SessionStore,
  SignedPreKeyRecord,
  SignedPreKeyStore,
  type Uuid,
} from '@signalapp/libsignal-client';
import { CryptoError, type CryptoErrorCode } from './errors.js';
import { deserializeIdentityKeyPair } from './libsignal-keys.js';
import { owned } from './key-verification.js';
import type { ProtocolStores } from './stores.js';

/** `"<aci>.<deviceId>"` of a libsignal address. */
export function addressString(address: ProtocolAddress): string {
  return `${address.name()}.${address.deviceId()}`;
}

function parseRecord<T>(parse: (bytes: Uint8Array<ArrayBuffer>) => T, bytes: Uint8Array, what: string): T {
  try {
    return parse(owned(bytes));
  } catch {
    throw new CryptoError('INVALID_KEY', `stored ${what} is corrupt`);
  }
}

/** One libsignal operation's view of the stores; remembers the first port failure. */
export class PortCall {
  #failure: { error: unknown } | undefined;
  readonly identity: IdentityKeyStore;
  readonly sessions: SessionStore;
  readonly preKeys: PreKeyStore;
  readonly signedPreKeys: SignedPreKeyStore;
  readonly kyberPreKeys: KyberPreKeyStore;
  readonly senderKeys: SenderKeyStore;

  constructor(stores: ProtocolStores) {
    const guard = <T>(fn: () => Promise<T>): Promise<T> => this.#guard(fn);
    this.identity = new IdentityAdapter(stores, guard);
    this.sessions = new SessionAdapter(stores, guard);
    this.preKeys = new PreKeyAdapter(stores, guard);
    this.signedPreKeys = new SignedPreKeyAdapter(stores, guard);
    this.kyberPreKeys = new KyberPreKeyAdapter(stores, guard);
    this.senderKeys = new SenderKeyAdapter(stores, guard);
  }

  async #guard<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (error) {
      this.#failure ??= { error };
      throw error;
    }
  }

  /**
   * The error to throw for `err`, raised by a libsignal call through this view: the port's own
   * failure when there was one, else libsignal's error mapped to a code (`fallback` for
   * libsignal's generic errors, whose meaning depends on the operation).
   */
  failure(err: unknown, fallback: CryptoErrorCode, address?: string): unknown {
    const cause = this.#failure ? this.#failure.error : err;
    if (cause instanceof CryptoError) {
      return cause.address === undefined && address !== undefined ? new CryptoError(cause.code, cause.message, { address }) : cause;
    }
    if (!(cause instanceof LibSignalErrorBase)) return cause;
    const code = mapCode(cause.code, fallback);
    return new CryptoError(code, undefined, address === undefined ? {} : { address });
  }
}

function mapCode(code: ErrorCode, fallback: CryptoErrorCode): CryptoErrorCode {
  switch (code) {
    case ErrorCode.DuplicatedMessage:
      return 'DUPLICATE_MESSAGE';
    case ErrorCode.UntrustedIdentity:
      return 'UNTRUSTED_IDENTITY';
    case ErrorCode.InvalidSession:
      return 'NO_SESSION';
    case ErrorCode.VerificationFailed:
      return 'INVALID_SIGNATURE';
    case ErrorCode.InvalidProtocolAddress:
    case ErrorCode.InvalidRegistrationId:
      return 'INVALID_ARGUMENT';
    case ErrorCode.SealedSenderSelfSend:
      return 'INVALID_MESSAGE';
    case ErrorCode.InvalidSenderKeySession:
      return 'NO_SENDER_KEY';
    default:
      return fallback;
  }
}

type Guard = <T>(fn: () => Promise<T>) => Promise<T>;

class IdentityAdapter extends IdentityKeyStore {
  #pair: Promise<IdentityKeyPair> | undefined;

  constructor(
    private readonly stores: ProtocolStores,
    private readonly guard: Guard,
  ) {
    super();
  }

  override getIdentityKeyPair(): Promise<IdentityKeyPair> {
    this.#pair ??= this.guard(async () => deserializeIdentityKeyPair(await this.stores.identity.getIdentityKeyPair()));
    return this.#pair;
  }

  async getIdentityKey(): Promise<PrivateKey> {
    return (await this.getIdentityKeyPair()).privateKey;
  }

  getLocalRegistrationId(): Promise<number> {
    return this.guard(() => this.stores.identity.getLocalRegistrationId());
  }

  saveIdentity(name: ProtocolAddress, key: PublicKey): Promise<IdentityChange> {
    return this.guard(async () =>
      (await this.stores.identity.saveIdentity(name.name(), key.serialize())) ? IdentityChange.ReplacedExisting : IdentityChange.NewOrUnchanged,
    );
  }

  isTrustedIdentity(name: ProtocolAddress, key: PublicKey, direction: Direction): Promise<boolean> {
    const way = direction === Direction.Sending ? 'sending' : 'receiving';
    return this.guard(() => this.stores.identity.isTrustedIdentity(name.name(), key.serialize(), way));
  }

  getIdentity(name: ProtocolAddress): Promise<PublicKey | null> {
    return this.guard(async () => {
      const bytes = await this.stores.identity.getIdentity(name.name());
      return bytes ? parseRecord((b) => PublicKey.deserialize(b), bytes, 'identity key') : null;
    });
  }
}

class SessionAdapter extends SessionStore {
  constructor(
    private readonly stores: ProtocolStores,
    private readonly guard: Guard,
  ) {
    super();
  }

  saveSession(name: ProtocolAddress, record: SessionRecord): Promise<void> {
    return this.guard(() => this.stores.sessions.saveSession(addressString(name), record.serialize()));
  }

  getSession(name: ProtocolAddress): Promise<SessionRecord | null> {
    return this.guard(async () => {
      const bytes = await this.stores.sessions.getSession(addressString(name));
      return bytes ? parseRecord((b) => SessionRecord.deserialize(b), bytes, 'session') : null;
    });
  }

  getExistingSessions(addresses: ProtocolAddress[]): Promise<SessionRecord[]> {
    return this.guard(async () => {
      const out: SessionRecord[] = [];
      for (const address of addresses) {
        const name = addressString(address);
        const bytes = await this.stores.sessions.getSession(name);
        if (!bytes) throw new CryptoError('NO_SESSION', undefined, { address: name });
        out.push(parseRecord((b) => SessionRecord.deserialize(b), bytes, 'session'));
      }
      return out;
    });
  }
}

class PreKeyAdapter extends PreKeyStore {
  constructor(
    private readonly stores: ProtocolStores,
    private readonly guard: Guard,
  ) {
    super();
  }

  savePreKey(id: number, record: PreKeyRecord): Promise<void> {
    return this.guard(() => this.stores.preKeys.savePreKey(id, record.serialize()));
  }

  getPreKey(id: number): Promise<PreKeyRecord> {
    return this.guard(async () => {
      const bytes = await this.stores.preKeys.getPreKey(id);
      if (!bytes) throw new CryptoError('UNKNOWN_PREKEY', 'the message names a one-time prekey this device does not have');
      return parseRecord((b) => PreKeyRecord.deserialize(b), bytes, 'prekey');
    });
  }

  removePreKey(id: number): Promise<void> {
    return this.guard(() => this.stores.preKeys.removePreKey(id));
  }
}

class SignedPreKeyAdapter extends SignedPreKeyStore {
  constructor(
    private readonly stores: ProtocolStores,
    private readonly guard: Guard,
  ) {
    super();
  }

  saveSignedPreKey(id: number, record: SignedPreKeyRecord): Promise<void> {
    return this.guard(() => this.stores.signedPreKeys.saveSignedPreKey(id, record.serialize()));
  }

  getSignedPreKey(id: number): Promise<SignedPreKeyRecord> {
    return this.guard(async () => {
      const bytes = await this.stores.signedPreKeys.getSignedPreKey(id);
      if (!bytes) throw new CryptoError('UNKNOWN_PREKEY', 'the message names a signed prekey this device does not have');
      return parseRecord((b) => SignedPreKeyRecord.deserialize(b), bytes, 'signed prekey');
    });
  }
}

class KyberPreKeyAdapter extends KyberPreKeyStore {
  constructor(
    private readonly stores: ProtocolStores,
    private readonly guard: Guard,
  ) {
    super();
  }

  saveKyberPreKey(_id: number, _record: KyberPreKeyRecord): Promise<void> {
    // libsignal never stores Kyber keys itself; if it ever does, we cannot tell a last-resort
    // key from a one-time one, and guessing wrong would break replay protection or delivery.
    return this.guard(() => Promise.reject(new CryptoError('INTERNAL', 'libsignal tried to store a Kyber prekey')));
  }

  getKyberPreKey(id: number): Promise<KyberPreKeyRecord> {
    return this.guard(async () => {
      const bytes = await this.stores.kyberPreKeys.getKyberPreKey(id);
      if (!bytes) throw new CryptoError('UNKNOWN_PREKEY', 'the message names a Kyber prekey this device does not have');
      return parseRecord((b) => KyberPreKeyRecord.deserialize(b), bytes, 'Kyber prekey');
    });
  }

  markKyberPreKeyUsed(id: number, signedPreKeyId: number, baseKey: PublicKey): Promise<void> {
    return this.guard(async () => {
      const fresh = await this.stores.kyberPreKeys.markKyberPreKeyUsed(id, signedPreKeyId, baseKey.serialize());
      if (!fresh) throw new CryptoError('DUPLICATE_MESSAGE', 'a prekey message was replayed against a last-resort key');
    });
  }
}

class SenderKeyAdapter extends SenderKeyStore {
  constructor(
    private readonly stores: ProtocolStores,
    private readonly guard: Guard,
  ) {
    super();
  }

  saveSenderKey(sender: ProtocolAddress, distributionId: Uuid, record: SenderKeyRecord): Promise<void> {
    return this.guard(() => this.stores.senderKeys.saveSenderKey(addressString(sender), distributionId, record.serialize()));
  }

  getSenderKey(sender: ProtocolAddress, distributionId: Uuid): Promise<SenderKeyRecord | null> {
    return this.guard(async () => {
      const bytes = await this.stores.senderKeys.getSenderKey(addressString(sender), distributionId);
      return bytes ? parseRecord((b) => SenderKeyRecord.deserialize(b), bytes, 'sender key') : null;
    });
  }
}
