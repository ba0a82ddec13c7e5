// SPDX-License-Identifier: AGPL-3.0-only
/**
 * A staged overlay of the database protocol stores, for the atomic receive pipeline
 * (DESIGN §14): libsignal reads and writes the stores asynchronously while it decrypts, but the
 * new session state must reach the disk in the same transaction as the decrypted message and its
 * dedup key, or a crash in between either loses the message (state saved, message not) or
 * breaks the session (message saved, ratchet not).
 *
 * So the receive pipeline decrypts through an overlay: its writes stay in memory (its reads see
 * them first), and `commit()` then applies them synchronously inside the caller's transaction:
 *
 * ```ts
 * const staged = stageProtocolStores(store.protocol);
 * const plaintext = await new SessionCipher(staged, { localAddress }).decrypt(from, type, body);
 * store.transaction(() => {
 *   staged.commit();
 *   store.messages.addMessage({ … });
 * }); // only now ack the envelope
 * ```
 *
 * Optimistic concurrency: the overlay remembers, for every piece of state it touched (a peer's
 * sessions, an identity, a prekey, a sender key), how far the database's write counter was when
 * it first touched it. If the database stores wrote that piece since (a send advanced the same
 * session meanwhile), `commit()` applies nothing and throws STAGE_CONFLICT: writing the stale
 * session back would undo the other step and reuse message keys. The caller discards the
 * plaintext, and decrypts the (unacked) envelope again over a fresh overlay.
 */
import type { ProtocolStores } from '@parley/crypto';
import { toHex } from '@parley/protocol';
import { ClientError } from '../errors.js';
import {
  type DatabaseProtocolState,
  type EcPreKeyKind,
  type KnownIdentity,
  type KyberEntry,
  type LocalIdentityState,
  type ProtocolState,
  stateKey,
} from './protocol-state.js';
import { type DatabaseProtocolStores, protocolStoresOver } from './protocol-store.js';

/** Protocol stores whose writes wait in memory until {@link commit} or {@link discard}. */
export interface StagedProtocolStores extends ProtocolStores {
  /**
   * Applies every buffered write to the database, synchronously, in a transaction (a savepoint
   * inside the caller's `transaction(…)`, so they commit or roll back with it). Finishes the
   * overlay. Throws STAGE_CONFLICT (applying nothing) when state it touched was written in the
   * database meanwhile, and STAGE_FINISHED when called twice or after {@link discard}.
   */
  commit(): void;
  /** Drops the buffered writes and finishes the overlay. Idempotent. */
  discard(): void;
  /** How many pieces of state the overlay would write (0: nothing to commit). */
  readonly pendingWrites: number;
}

/** Starts a staged overlay of `base` (see the module comment). */
export function stageProtocolStores(base: DatabaseProtocolStores): StagedProtocolStores {
  const state = new StagedProtocolState(base.state);
  const ports = protocolStoresOver(state);
  return {
    ...ports,
    commit: () => state.commit(),
    discard: () => state.discard(),
    get pendingWrites(): number {
      return state.pendingWrites;
    },
  };
}

interface KyberUse {
  readonly signedPreKeyId: number;
  readonly baseKey: Uint8Array;
}

const useKey = (signedPreKeyId: number, baseKey: Uint8Array): string => `${signedPreKeyId}:${toHex(baseKey)}`;

/** {@link ProtocolState} buffered in memory over the database state. */
class StagedProtocolState implements ProtocolState {
  readonly #base: DatabaseProtocolState;
  #finished = false;
  /** Every state key touched, with the base write counter at the first touch. */
  readonly #touched = new Map<string, number>();
  /** Keys written (for pendingWrites). */
  readonly #written = new Set<string>();
  readonly #identities = new Map<string, KnownIdentity>();
  /** Accounts whose stored sessions are all deleted (before the buffered ones apply). */
  readonly #clearedSessions = new Set<string>();
  /** aci → device → record, or null for deleted. */
  readonly #sessions = new Map<string, Map<number, Uint8Array | null>>();
  readonly #ecPreKeys: Record<EcPreKeyKind, Map<number, Uint8Array | null>> = { 'one-time': new Map(), signed: new Map() };
  readonly #kyber = new Map<number, KyberEntry | null>();
  readonly #kyberUses = new Map<number, Map<string, KyberUse>>();
  /** `record` null: deleted. */
  readonly #senderKeys = new Map<string, { address: string; distributionId: string; record: Uint8Array | null }>();

  constructor(base: DatabaseProtocolState) {
    this.#base = base;
  }

  get pendingWrites(): number {
    return this.#written.size;
  }

  #touch(key: string, write = false): void {
    if (this.#finished) throw new ClientError('STAGE_FINISHED');
    if (!this.#touched.has(key)) this.#touched.set(key, this.#base.version);
    if (write) this.#written.add(key);
  }

  localIdentity(): LocalIdentityState {
    if (this.#finished) throw new ClientError('STAGE_FINISHED');
    return this.#base.localIdentity();
  }

  identity(aci: string): KnownIdentity | undefined {
    this.#touch(stateKey.identity(aci));
    return this.#identities.get(aci) ?? this.#base.identity(aci);
  }

  putIdentity(aci: string, known: KnownIdentity): void {
    this.#touch(stateKey.identity(aci), true);
    this.#identities.set(aci, known);
  }

  session(aci: string, deviceId: number): Uint8Array | undefined {
    this.#touch(stateKey.sessions(aci));
    const staged = this.#sessions.get(aci)?.get(deviceId);
    if (staged !== undefined) return staged ?? undefined;
    return this.#clearedSessions.has(aci) ? undefined : this.#base.session(aci, deviceId);
  }

  putSession(aci: string, deviceId: number, record: Uint8Array | undefined): void {
    this.#touch(stateKey.sessions(aci), true);
    let devices = this.#sessions.get(aci);
    if (!devices) this.#sessions.set(aci, (devices = new Map()));
    devices.set(deviceId, record ?? null);
  }

  deleteSessions(aci: string): void {
    this.#touch(stateKey.sessions(aci), true);
    this.#clearedSessions.add(aci);
    this.#sessions.delete(aci);
  }

  sessionDeviceIds(aci: string): number[] {
    this.#touch(stateKey.sessions(aci));
    const ids = new Set(this.#clearedSessions.has(aci) ? [] : this.#base.sessionDeviceIds(aci));
    for (const [deviceId, record] of this.#sessions.get(aci) ?? []) {
      if (record) ids.add(deviceId);
      else ids.delete(deviceId);
    }
    return [...ids].sort((a, b) => a - b);
  }

  ecPreKey(kind: EcPreKeyKind, keyId: number): Uint8Array | undefined {
    this.#touch(stateKey.ecPreKey(kind, keyId));
    const staged = this.#ecPreKeys[kind].get(keyId);
    return staged !== undefined ? (staged ?? undefined) : this.#base.ecPreKey(kind, keyId);
  }

  putEcPreKey(kind: EcPreKeyKind, keyId: number, record: Uint8Array | undefined): void {
    this.#touch(stateKey.ecPreKey(kind, keyId), true);
    this.#ecPreKeys[kind].set(keyId, record ?? null);
  }

  kyberPreKey(keyId: number): KyberEntry | undefined {
    this.#touch(stateKey.kyberPreKey(keyId));
    const staged = this.#kyber.get(keyId);
    return staged !== undefined ? (staged ?? undefined) : this.#base.kyberPreKey(keyId);
  }

  putKyberPreKey(keyId: number, entry: KyberEntry | undefined): void {
    this.#touch(stateKey.kyberPreKey(keyId), true);
    this.#kyber.set(keyId, entry ?? null);
    this.#kyberUses.delete(keyId);
  }

  kyberUsed(keyId: number, signedPreKeyId: number, baseKey: Uint8Array): boolean {
    this.#touch(stateKey.kyberPreKey(keyId));
    if (this.#kyberUses.get(keyId)?.has(useKey(signedPreKeyId, baseKey))) return true;
    // A key stored again in this overlay starts without marks; the stored marks are then stale.
    return !this.#kyber.has(keyId) && this.#base.kyberUsed(keyId, signedPreKeyId, baseKey);
  }

  addKyberUse(keyId: number, signedPreKeyId: number, baseKey: Uint8Array): void {
    this.#touch(stateKey.kyberPreKey(keyId), true);
    let uses = this.#kyberUses.get(keyId);
    if (!uses) this.#kyberUses.set(keyId, (uses = new Map()));
    uses.set(useKey(signedPreKeyId, baseKey), { signedPreKeyId, baseKey });
  }

  senderKey(address: string, distributionId: string): Uint8Array | undefined {
    this.#touch(stateKey.senderKey(address, distributionId));
    const staged = this.#senderKeys.get(`${address}\n${distributionId}`);
    if (staged) return staged.record ?? undefined;
    return this.#base.senderKey(address, distributionId);
  }

  putSenderKey(address: string, distributionId: string, record: Uint8Array | undefined): void {
    this.#touch(stateKey.senderKey(address, distributionId), true);
    this.#senderKeys.set(`${address}\n${distributionId}`, { address, distributionId, record: record ?? null });
  }

  commit(): void {
    if (this.#finished) throw new ClientError('STAGE_FINISHED');
    this.#finished = true;
    for (const [key, version] of this.#touched) {
      if (this.#base.changedSince(key, version)) throw new ClientError('STAGE_CONFLICT');
    }
    if (this.#written.size === 0) return;
    const base = this.#base;
    base.database.transaction(() => {
      for (const [aci, known] of this.#identities) base.putIdentity(aci, known);
      for (const aci of this.#clearedSessions) base.deleteSessions(aci);
      for (const [aci, devices] of this.#sessions) {
        for (const [deviceId, record] of devices) base.putSession(aci, deviceId, record ?? undefined);
      }
      for (const kind of ['one-time', 'signed'] as const) {
        for (const [keyId, record] of this.#ecPreKeys[kind]) base.putEcPreKey(kind, keyId, record ?? undefined);
      }
      for (const [keyId, entry] of this.#kyber) base.putKyberPreKey(keyId, entry ?? undefined);
      for (const [keyId, uses] of this.#kyberUses) {
        for (const use of uses.values()) base.addKyberUse(keyId, use.signedPreKeyId, use.baseKey);
      }
      for (const { address, distributionId, record } of this.#senderKeys.values()) base.putSenderKey(address, distributionId, record ?? undefined);
    });
  }

  discard(): void {
    this.#finished = true;
    this.#identities.clear();
    this.#sessions.clear();
    this.#kyber.clear();
    this.#kyberUses.clear();
    this.#senderKeys.clear();
  }
}
