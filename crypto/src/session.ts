// SPDX-License-Identifier: AGPL-3.0-only
/**
 * 1:1 sessions: PQXDH session setup from a prekey bundle, then Double Ratchet encryption and
 * decryption, all over this package's byte-level stores. libsignal types stay inside.
 */
import {
  CiphertextMessageType,
  KEMPublicKey,
  PreKeyBundle,
  PreKeySignalMessage,
  ProtocolAddress,
  PublicKey,
  SessionRecord,
  SignalMessage,
  processPreKeyBundle,
  signalDecrypt,
  signalDecryptPreKey,
  signalEncrypt,
} from '@signalapp/libsignal-client';
import { LIMITS } from '@parley/protocol';
import { type DeviceAddress, formatAddress } from './address.js';
import type { SenderCertificateMemo } from './certificate-memo.js';
import { CryptoError } from './errors.js';
import { isValidEcPublicKey, isValidKyberPublicKey, owned, verifyPreKeySignature } from './key-verification.js';
import * as group from './group-cipher.js';
import { PortCall } from './libsignal-adapters.js';
import * as sealed from './sealed-sender.js';
import type {
  GroupEncryptInput,
  SealedDecryptOptions,
  SealedDecryptResult,
  SealedEncryptOptions,
  SenderKeyDistributionInfo,
} from './sealed-types.js';
import type { ProtocolStores } from './stores.js';

/** Milliseconds since 1970; injected so tests can move time (CONVENTIONS 10). */
export interface Clock {
  now(): number;
}

/** A signed public prekey in a bundle (EC or Kyber). */
export interface SignedPublicPreKeyInput {
  readonly keyId: number;
  readonly publicKey: Uint8Array;
  readonly signature: Uint8Array;
}

/** A one-time public EC prekey in a bundle. */
export interface PublicPreKeyInput {
  readonly keyId: number;
  readonly publicKey: Uint8Array;
}

/** One device's prekey bundle as claimed from the key server (protocol's DeviceBundleJson, as bytes). */
export interface PreKeyBundleInput {
  /** The device's registration id, 1..16383. */
  readonly registrationId: number;
  /** Must equal the device id of the address the bundle is processed for. */
  readonly deviceId: number;
  /** The account's 33-byte identity key. */
  readonly identityKey: Uint8Array;
  readonly signedPreKey: SignedPublicPreKeyInput;
  /** A one-time Kyber prekey, or the last-resort one. Required: PQXDH is mandatory. */
  readonly kyberPreKey: SignedPublicPreKeyInput;
  /** Absent when the device has no one-time EC prekey left; the session is then set up without one. */
  readonly preKey?: PublicPreKeyInput;
}

/** How a ciphertext must be decrypted: `prekey` starts a session (PQXDH), `ciphertext` uses one. */
export type CiphertextType = 'prekey' | 'ciphertext';

/** The result of {@link SessionCipher.encrypt}. */
export interface EncryptedMessage {
  /** `prekey` until the peer has answered on the session, then `ciphertext`. */
  readonly type: CiphertextType;
  readonly body: Uint8Array;
  /** The destination device's registration id, as the relay's device-set check wants it. */
  readonly registrationId: number;
}

/** Options of a {@link SessionCipher}. */
export interface SessionCipherOptions {
  /** This device's own address (libsignal binds sessions to both ends). */
  readonly localAddress: DeviceAddress;
  /** Time source for session setup and expiry; default: the system clock. */
  readonly clock?: Clock;
  /**
   * Sender certificates found valid before, shared by the ciphers of one receive path, so that
   * {@link SessionCipher.sealedDecrypt} checks a certificate's signatures once rather than per
   * message. Default: none (every certificate checked in full).
   */
  readonly certificateMemo?: SenderCertificateMemo;
}

const SYSTEM_CLOCK: Clock = { now: () => Date.now() };
const U32_MAX = 0xffffffff;

function isU32(n: number): boolean {
  return Number.isInteger(n) && n >= 0 && n <= U32_MAX;
}

function protocolAddress(address: DeviceAddress): ProtocolAddress {
  return ProtocolAddress.new(address.aci, address.deviceId);
}

/**
 * Encrypts to and decrypts from peer devices over one device's {@link ProtocolStores}.
 *
 * Operations of one instance run one at a time, in call order: a session record is read,
 * advanced and written back by each operation, and two interleaved operations on the same
 * record would lose a ratchet step (and could reuse a message key). Use one instance per
 * store set.
 */
export class SessionCipher {
  readonly #stores: ProtocolStores;
  readonly #local: ProtocolAddress;
  readonly #clock: Clock;
  readonly #context: sealed.CipherContext;
  #tail: Promise<unknown> = Promise.resolve();

  constructor(stores: ProtocolStores, options: SessionCipherOptions) {
    formatAddress(options.localAddress);
    this.#stores = stores;
    this.#local = protocolAddress(options.localAddress);
    this.#clock = options.clock ?? SYSTEM_CLOCK;
    const local = { aci: options.localAddress.aci, deviceId: options.localAddress.deviceId };
    this.#context = { stores, local, now: () => this.#now(), ...(options.certificateMemo ? { certificates: options.certificateMemo } : {}) };
  }

  #serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#tail.then(fn, fn);
    this.#tail = run.catch(() => undefined);
    return run;
  }

  #now(): Date {
    return new Date(this.#clock.now());
  }

  async #loadSession(address: string): Promise<SessionRecord | undefined> {
    const bytes = await this.#stores.sessions.getSession(address);
    if (!bytes) return undefined;
    try {
      return SessionRecord.deserialize(owned(bytes));
    } catch {
      throw new CryptoError('INVALID_KEY', 'stored session is corrupt', { address });
    }
  }

  /**
   * Starts a session with `address` from its prekey bundle (PQXDH). Checks the keys and both
   * signatures first: a bad bundle is refused (INVALID_KEY, INVALID_SIGNATURE, INVALID_ARGUMENT)
   * and no state changes. An identity key that differs from the one the user trusts is refused
   * with UNTRUSTED_IDENTITY; accept it with `IdentityStore.acceptIdentity` and retry.
   * A session that already exists is replaced (its state is archived for late messages).
   */
  async processBundle(address: DeviceAddress, bundle: PreKeyBundleInput): Promise<void> {
    const name = formatAddress(address);
    const parsed = parseBundle(address, bundle, name);
    return this.#serial(async () => {
      const call = new PortCall(this.#stores);
      try {
        await processPreKeyBundle(parsed, protocolAddress(address), this.#local, call.sessions, call.identity, this.#now());
      } catch (err) {
        throw call.failure(err, 'INVALID_KEY', name);
      }
    });
  }

  /** Encrypts `plaintext` for `address`. NO_SESSION without a session; UNTRUSTED_IDENTITY after an unaccepted key change. */
  async encrypt(address: DeviceAddress, plaintext: Uint8Array): Promise<EncryptedMessage> {
    const name = formatAddress(address);
    if (!(plaintext instanceof Uint8Array)) throw new CryptoError('INVALID_ARGUMENT', 'plaintext must be bytes');
    const message = owned(plaintext);
    return this.#serial(async () => {
      const record = await this.#loadSession(name);
      if (!record?.hasCurrentState(this.#now())) throw new CryptoError('NO_SESSION', undefined, { address: name });
      const registrationId = record.remoteRegistrationId();
      const call = new PortCall(this.#stores);
      let out;
      try {
        out = await signalEncrypt(message, protocolAddress(address), this.#local, call.sessions, call.identity, this.#now());
      } catch (err) {
        throw call.failure(err, 'INTERNAL', name);
      }
      const kind = out.type();
      if (kind !== CiphertextMessageType.PreKey && kind !== CiphertextMessageType.Whisper) {
        throw new CryptoError('INTERNAL', 'libsignal produced an unexpected message type', { address: name });
      }
      return { type: kind === CiphertextMessageType.PreKey ? 'prekey' : 'ciphertext', body: out.serialize(), registrationId };
    });
  }

  /**
   * Decrypts a message from `address`. A `prekey` message may start (or restart) a session;
   * a `ciphertext` message needs one (else NO_SESSION). A message decrypted before gives
   * DUPLICATE_MESSAGE; anything malformed or tampered with gives INVALID_MESSAGE; a prekey
   * message naming keys this device no longer has gives UNKNOWN_PREKEY.
   */
  async decrypt(address: DeviceAddress, type: CiphertextType, body: Uint8Array): Promise<Uint8Array> {
    const name = formatAddress(address);
    if (type !== 'prekey' && type !== 'ciphertext') throw new CryptoError('INVALID_ARGUMENT', 'type must be prekey or ciphertext');
    if (!(body instanceof Uint8Array)) throw new CryptoError('INVALID_ARGUMENT', 'body must be bytes');
    const bytes = owned(body);
    const remote = protocolAddress(address);
    return this.#serial(async () => {
      const call = new PortCall(this.#stores);
      if (type === 'prekey') {
        const message = parseMessage(() => PreKeySignalMessage.deserialize(bytes), name);
        try {
          return await signalDecryptPreKey(
            message,
            remote,
            this.#local,
            call.sessions,
            call.identity,
            call.preKeys,
            call.signedPreKeys,
            call.kyberPreKeys,
          );
        } catch (err) {
          throw call.failure(err, 'INVALID_MESSAGE', name);
        }
      }
      if (!(await this.#loadSession(name))) throw new CryptoError('NO_SESSION', undefined, { address: name });
      const message = parseMessage(() => SignalMessage.deserialize(bytes), name);
      try {
        return await signalDecrypt(message, remote, this.#local, call.sessions, call.identity);
      } catch (err) {
        throw call.failure(err, 'INVALID_MESSAGE', name);
      }
    });
  }

  /**
   * Encrypts `plaintext` for `address` over the existing session (the ratchet advances as for
   * {@link encrypt}; a first message carries the PQXDH prekey content inside the seal) and seals
   * it with sealed sender v1: the relay sees only the destination. `senderCertificate` must be
   * this device's current certificate (else INVALID_CERTIFICATE). NO_SESSION without a session,
   * UNTRUSTED_IDENTITY after an unaccepted key change. Send the result as a `SEALED` envelope to
   * the device's registration id ({@link remoteRegistrationId}).
   */
  async sealedEncrypt(
    address: DeviceAddress,
    plaintext: Uint8Array,
    senderCertificate: Uint8Array,
    options: SealedEncryptOptions = {},
  ): Promise<Uint8Array> {
    formatAddress(address);
    if (!(plaintext instanceof Uint8Array)) throw new CryptoError('INVALID_ARGUMENT', 'plaintext must be bytes');
    const message = new Uint8Array(plaintext);
    return this.#serial(() => sealed.sealedEncrypt(this.#context, address, message, senderCertificate, options));
  }

  /**
   * Opens a sealed message: sealed sender v1, or one recipient's part of a multi-recipient send
   * (`header ‖ sharedBody`), whose content is a 1:1 message (`prekey`, `ciphertext`), a group
   * message (`senderkey`) or a decryption-error report (`plaintext`).
   *
   * Refuses, changing no state: a malformed seal or one not addressed to this device
   * (INVALID_MESSAGE); a certificate that is malformed, not signed by one of `trustRoots`, or
   * expired at `timestamp` (INVALID_CERTIFICATE); a message from this very device
   * (INVALID_MESSAGE); a certificate whose identity key is not the one the content uses or, for
   * a known sender, not the one the device knows (INVALID_CERTIFICATE). Then decrypts as
   * {@link decrypt} would: DUPLICATE_MESSAGE for a replay, NO_SENDER_KEY for a group message
   * without the sender's key. Errors raised after the certificate was believed carry the
   * sender's address, so the caller can ask the sender to resend.
   */
  async sealedDecrypt(ciphertext: Uint8Array, options: SealedDecryptOptions): Promise<SealedDecryptResult> {
    if (!(ciphertext instanceof Uint8Array)) throw new CryptoError('INVALID_ARGUMENT', 'ciphertext must be bytes');
    const bytes = new Uint8Array(ciphertext);
    return this.#serial(() => sealed.sealedDecrypt(this.#context, bytes, options));
  }

  /**
   * This device's SenderKeyDistributionMessage for group distribution `distributionId` (a
   * lowercase UUID), creating the sender key on first use. Send it to every other member device
   * inside a 1:1 message before the first group message. `self` must be this cipher's address.
   * To rotate (a member left), use a new distribution id and send it to the remaining members.
   */
  async createSenderKeyDistribution(self: DeviceAddress, distributionId: string): Promise<Uint8Array> {
    return this.#serial(() => group.createSenderKeyDistribution(this.#context, self, distributionId));
  }

  /**
   * Stores the sender key that device `sender` distributed (received inside a 1:1 message from
   * that device, whose sender the caller knows). INVALID_MESSAGE when `message` is not a
   * distribution message.
   */
  async processSenderKeyDistribution(sender: DeviceAddress, message: Uint8Array): Promise<SenderKeyDistributionInfo> {
    formatAddress(sender);
    const bytes = message instanceof Uint8Array ? new Uint8Array(message) : message;
    return this.#serial(() => group.processSenderKeyDistribution(this.#context, sender, bytes));
  }

  /**
   * Encrypts one group message with this device's sender key for `distributionId` and seals it
   * for every recipient device in one sealed sender v2 payload, to upload once
   * (`SendMulti`). Every recipient device needs a session: otherwise NO_SESSION naming all
   * devices without one in `addresses` (fetch their bundles, then retry). UNTRUSTED_IDENTITY
   * (with `addresses`) when a recipient account's key changed and was not accepted;
   * NO_SENDER_KEY before {@link createSenderKeyDistribution} made the key. Nothing is encrypted
   * when a check fails.
   */
  async groupEncryptMulti(input: GroupEncryptInput): Promise<Uint8Array> {
    return this.#serial(() => group.groupEncryptMulti(this.#context, input));
  }

  /** True when there is a session with `address` that can be used to send. */
  async hasSession(address: DeviceAddress): Promise<boolean> {
    const name = formatAddress(address);
    return this.#serial(async () => (await this.#loadSession(name))?.hasCurrentState(this.#now()) ?? false);
  }

  /** The registration id the session with `address` was set up with, or undefined without a session. */
  async remoteRegistrationId(address: DeviceAddress): Promise<number | undefined> {
    const name = formatAddress(address);
    return this.#serial(async () => {
      const record = await this.#loadSession(name);
      return record?.hasCurrentState(this.#now()) ? record.remoteRegistrationId() : undefined;
    });
  }

  /** Forgets the session with `address` (e.g. the device was removed, or is stale). */
  async deleteSession(address: DeviceAddress): Promise<void> {
    const name = formatAddress(address);
    return this.#serial(() => this.#stores.sessions.deleteSession(name));
  }
}

function parseMessage<T>(parse: () => T, address: string): T {
  try {
    return parse();
  } catch {
    throw new CryptoError('INVALID_MESSAGE', 'the ciphertext is not a well-formed message', { address });
  }
}

function checkKey(ok: boolean, what: string, address: string): void {
  if (!ok) throw new CryptoError('INVALID_KEY', `the bundle's ${what} is not a valid public key`, { address });
}

function parseBundle(address: DeviceAddress, bundle: PreKeyBundleInput, name: string): PreKeyBundle {
  const bad = (message: string): never => {
    throw new CryptoError('INVALID_ARGUMENT', message, { address: name });
  };
  if (typeof bundle !== 'object' || bundle === null || !bundle.signedPreKey || !bundle.kyberPreKey) {
    bad('a bundle needs a signed prekey and a Kyber prekey');
  }
  if (bundle.deviceId !== address.deviceId) bad('the bundle is for another device');
  const { registrationId, identityKey, signedPreKey, kyberPreKey, preKey } = bundle;
  if (!Number.isInteger(registrationId) || registrationId < 1 || registrationId > LIMITS.maxRegistrationId) {
    bad(`registration id must be an integer 1..${LIMITS.maxRegistrationId}`);
  }
  if (!isU32(signedPreKey.keyId) || !isU32(kyberPreKey.keyId) || (preKey && !isU32(preKey.keyId))) {
    bad('key ids must be unsigned 32-bit integers');
  }
  const bytes = [identityKey, signedPreKey.publicKey, signedPreKey.signature, kyberPreKey.publicKey, kyberPreKey.signature];
  if (preKey) bytes.push(preKey.publicKey);
  if (!bytes.every((b) => b instanceof Uint8Array)) bad('keys and signatures must be bytes');

  checkKey(isValidEcPublicKey(identityKey), 'identity key', name);
  checkKey(isValidEcPublicKey(signedPreKey.publicKey), 'signed prekey', name);
  checkKey(isValidKyberPublicKey(kyberPreKey.publicKey), 'Kyber prekey', name);
  if (preKey) checkKey(isValidEcPublicKey(preKey.publicKey), 'one-time prekey', name);
  // Checked here rather than left to libsignal, which reports a bad signature only as a
  // generic error that cannot be told apart from other failures.
  if (!verifyPreKeySignature(identityKey, signedPreKey.publicKey, signedPreKey.signature)) {
    throw new CryptoError('INVALID_SIGNATURE', 'the signed prekey signature does not verify', { address: name });
  }
  if (!verifyPreKeySignature(identityKey, kyberPreKey.publicKey, kyberPreKey.signature)) {
    throw new CryptoError('INVALID_SIGNATURE', 'the Kyber prekey signature does not verify', { address: name });
  }
  try {
    return PreKeyBundle.new(
      registrationId,
      bundle.deviceId,
      preKey ? preKey.keyId : null,
      preKey ? PublicKey.deserialize(owned(preKey.publicKey)) : null,
      signedPreKey.keyId,
      PublicKey.deserialize(owned(signedPreKey.publicKey)),
      owned(signedPreKey.signature),
      PublicKey.deserialize(owned(identityKey)),
      kyberPreKey.keyId,
      KEMPublicKey.deserialize(owned(kyberPreKey.publicKey)),
      owned(kyberPreKey.signature),
    );
  } catch {
    throw new CryptoError('INVALID_KEY', 'the bundle is not well formed', { address: name });
  }
}
