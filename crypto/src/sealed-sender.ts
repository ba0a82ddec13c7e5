// SPDX-License-Identifier: AGPL-3.0-only
/**
 * Sealed sender on the client (DESIGN §5): 1:1 messages sealed with sealed sender v1, and the
 * opening of every sealed message a device receives (v1, and v2 parts of multi-recipient sends,
 * whose content may be a 1:1 message or a group sender-key message). {@link SessionCipher}
 * exposes these as methods and runs them in its one-at-a-time queue; this module holds the
 * work and the plain-data types.
 *
 * Opening order, so that nothing an attacker sends can touch a store before it is believed:
 * unseal → validate the certificate at the envelope's time → refuse our own device → compare
 * the certificate's identity key with the sender's → decrypt the content.
 */
import {
  CiphertextMessageType,
  PlaintextContent,
  PreKeySignalMessage,
  ProtocolAddress,
  type PublicKey,
  type SenderCertificate,
  SenderKeyMessage,
  SessionRecord,
  SignalMessage,
  UnidentifiedSenderMessageContent,
  groupDecrypt,
  sealedSenderDecryptToUsmc,
  sealedSenderEncrypt,
  signalDecrypt,
  signalDecryptPreKey,
  signalEncrypt,
} from '@signalapp/libsignal-client';
import { type DeviceAddress, checkAddress, formatAddress } from './address.js';
import { EXPIRY_OF, REMEMBER, type SenderCertificateMemo } from './certificate-memo.js';
import { bytesEqual, parseSenderCertificate, parseTrustRoots, senderCertificateInfo } from './certificate-parsing.js';
import { CryptoError } from './errors.js';
import { owned } from './key-verification.js';
import { PortCall } from './libsignal-adapters.js';
import { deserializeIdentityKeyPair } from './libsignal-keys.js';
import { preKeyMessageIdentityKey } from './prekey-message.js';
import type {
  SealedContentHint,
  SealedContentKind,
  SealedDecryptOptions,
  SealedDecryptResult,
  SealedEncryptOptions,
} from './sealed-types.js';
import type { ProtocolStores } from './stores.js';

/** @internal What a sealed operation needs of its {@link SessionCipher}. */
export interface CipherContext {
  readonly stores: ProtocolStores;
  readonly local: DeviceAddress;
  now(): Date;
  /** Certificates found valid before (see certificate-memo.ts); without it each is checked in full. */
  readonly certificates?: SenderCertificateMemo;
}

const HINTS: Record<SealedContentHint, number> = { default: 0, resendable: 1, implicit: 2 };

/** @internal The libsignal content hint of `hint`; INVALID_ARGUMENT for anything else. */
export function contentHintNumber(hint: SealedContentHint | undefined): number {
  if (hint === undefined) return HINTS.default;
  if (!Object.hasOwn(HINTS, hint)) throw new CryptoError('INVALID_ARGUMENT', 'contentHint must be default, resendable or implicit');
  return HINTS[hint];
}

function contentHintName(hint: number): SealedContentHint {
  // An unknown future hint is treated as the safe default: show an error, do not drop silently.
  return hint === HINTS.resendable ? 'resendable' : hint === HINTS.implicit ? 'implicit' : 'default';
}

/** @internal Checks an optional group id; INVALID_ARGUMENT unless bytes. */
export function groupIdBytes(groupId: Uint8Array | undefined): Uint8Array<ArrayBuffer> | null {
  if (groupId === undefined) return null;
  if (!(groupId instanceof Uint8Array) || groupId.length === 0) throw new CryptoError('INVALID_ARGUMENT', 'groupId must be non-empty bytes');
  return new Uint8Array(groupId);
}

/**
 * @internal Parses `senderCertificate` and checks it is this device's own: the local ACI and
 * device id, and the account's identity key. A certificate of another device (or one issued
 * before the identity key changed) would make every recipient refuse the message.
 */
export async function ownCertificate(ctx: CipherContext, senderCertificate: Uint8Array): Promise<ReturnType<typeof parseSenderCertificate>> {
  const certificate = parseSenderCertificate(senderCertificate);
  const info = senderCertificateInfo(certificate);
  const pair = deserializeIdentityKeyPair(await ctx.stores.identity.getIdentityKeyPair());
  if (
    info.senderAci !== ctx.local.aci ||
    info.senderDeviceId !== ctx.local.deviceId ||
    !bytesEqual(info.senderIdentityKey, pair.publicKey.serialize())
  ) {
    throw new CryptoError('INVALID_CERTIFICATE', 'the sender certificate is not this device’s (another device, or an old identity key)');
  }
  return certificate;
}

/** @internal Sealed sender v1 over the session with `address` (the caller serializes). */
export async function sealedEncrypt(
  ctx: CipherContext,
  address: DeviceAddress,
  plaintext: Uint8Array,
  senderCertificate: Uint8Array,
  options: SealedEncryptOptions = {},
): Promise<Uint8Array> {
  const name = formatAddress(address);
  const hint = contentHintNumber(options.contentHint);
  const groupId = groupIdBytes(options.groupId);
  const certificate = await ownCertificate(ctx, senderCertificate);
  const remote = ProtocolAddress.new(address.aci, address.deviceId);
  const record = await ctx.stores.sessions.getSession(name);
  if (!record || !hasCurrentState(record, ctx.now(), name)) throw new CryptoError('NO_SESSION', undefined, { address: name });
  const call = new PortCall(ctx.stores);
  try {
    const local = ProtocolAddress.new(ctx.local.aci, ctx.local.deviceId);
    const message = await signalEncrypt(new Uint8Array(plaintext), remote, local, call.sessions, call.identity, ctx.now());
    const content = UnidentifiedSenderMessageContent.new(message, certificate, hint, groupId);
    return await sealedSenderEncrypt(content, remote, call.identity);
  } catch (err) {
    throw call.failure(err, 'INTERNAL', name);
  }
}

/** @internal Opens a sealed message (v1 or a v2 part); see the module comment for the order. */
export async function sealedDecrypt(ctx: CipherContext, ciphertext: Uint8Array, options: SealedDecryptOptions): Promise<SealedDecryptResult> {
  if (!(ciphertext instanceof Uint8Array)) throw new CryptoError('INVALID_ARGUMENT', 'ciphertext must be bytes');
  if (typeof options !== 'object' || options === null) throw new CryptoError('INVALID_ARGUMENT', 'options are required');
  const roots = parseTrustRoots(options.trustRoots);
  if (!Number.isSafeInteger(options.timestamp) || options.timestamp < 0) {
    throw new CryptoError('INVALID_ARGUMENT', 'timestamp must be a non-negative integer of milliseconds');
  }
  checkAddress({ aci: options.localAci, deviceId: options.localDeviceId });

  const unseal = new PortCall(ctx.stores);
  let usmc: UnidentifiedSenderMessageContent;
  try {
    usmc = await sealedSenderDecryptToUsmc(owned(ciphertext), unseal.identity);
  } catch (err) {
    throw unseal.failure(err, 'INVALID_MESSAGE');
  }

  let certificate;
  try {
    certificate = usmc.senderCertificate();
  } catch {
    throw new CryptoError('INVALID_CERTIFICATE', 'the sealed message holds no readable sender certificate');
  }
  const info = senderCertificateInfo(certificate);
  if (!validWithMemo(ctx.certificates, certificate, options.trustRoots, roots, options.timestamp)) throw new CryptoError('INVALID_CERTIFICATE', 'the sender certificate is expired or not signed by a trusted root');

  const sender = { aci: info.senderAci, deviceId: info.senderDeviceId };
  const name = formatAddress(sender);
  if (sender.aci === options.localAci && sender.deviceId === options.localDeviceId) {
    throw new CryptoError('INVALID_MESSAGE', 'a sealed message from this very device', { address: name });
  }

  const kind = usmc.msgType();
  const contents = usmc.contents();
  const mismatch = (): CryptoError =>
    new CryptoError('INVALID_CERTIFICATE', 'the certificate’s identity key is not the sender’s', { address: name });
  if (kind === CiphertextMessageType.PreKey) {
    const inner = preKeyMessageIdentityKey(contents);
    if (!inner) throw new CryptoError('INVALID_MESSAGE', 'the ciphertext is not a well-formed message', { address: name });
    if (!bytesEqual(inner, info.senderIdentityKey)) throw mismatch();
  } else {
    // A known sender must use the key the device knows. A changed key arrives first in a prekey
    // message (a new session), which the branch above accepts when it matches the certificate.
    const known = await ctx.stores.identity.getIdentity(sender.aci);
    if (known && !bytesEqual(known, info.senderIdentityKey)) throw mismatch();
  }

  const remote = ProtocolAddress.new(sender.aci, sender.deviceId);
  const local = ProtocolAddress.new(ctx.local.aci, ctx.local.deviceId);
  const call = new PortCall(ctx.stores);
  let plaintext: Uint8Array;
  let resultKind: SealedContentKind;
  try {
    if (kind === CiphertextMessageType.PreKey) {
      resultKind = 'prekey';
      const message = parseContent(() => PreKeySignalMessage.deserialize(contents), name);
      plaintext = await signalDecryptPreKey(
        message,
        remote,
        local,
        call.sessions,
        call.identity,
        call.preKeys,
        call.signedPreKeys,
        call.kyberPreKeys,
      );
    } else if (kind === CiphertextMessageType.Whisper) {
      resultKind = 'ciphertext';
      if (!(await ctx.stores.sessions.getSession(name))) throw new CryptoError('NO_SESSION', undefined, { address: name });
      const message = parseContent(() => SignalMessage.deserialize(contents), name);
      plaintext = await signalDecrypt(message, remote, local, call.sessions, call.identity);
    } else if (kind === CiphertextMessageType.SenderKey) {
      resultKind = 'senderkey';
      const message = parseContent(() => SenderKeyMessage.deserialize(contents), name);
      // libsignal reports a missing sender key only as a generic error; look first.
      if (!(await ctx.stores.senderKeys.getSenderKey(name, message.distributionId().toLowerCase()))) {
        throw new CryptoError('NO_SENDER_KEY', undefined, { address: name });
      }
      plaintext = await groupDecrypt(remote, call.senderKeys, contents);
    } else if (kind === CiphertextMessageType.Plaintext) {
      resultKind = 'plaintext';
      plaintext = parseContent(() => PlaintextContent.deserialize(contents), name).body();
    } else {
      throw new CryptoError('INVALID_MESSAGE', 'the sealed content has an unknown type', { address: name });
    }
  } catch (err) {
    throw call.failure(err, 'INVALID_MESSAGE', name);
  }

  const groupId = usmc.groupId();
  return {
    senderAci: sender.aci,
    senderDeviceId: sender.deviceId,
    senderIdentityKey: info.senderIdentityKey,
    kind: resultKind,
    plaintext,
    ...(groupId && groupId.length > 0 ? { groupId } : {}),
    contentHint: contentHintName(usmc.contentHint()),
  };
}

function hasCurrentState(record: Uint8Array, now: Date, address: string): boolean {
  try {
    return SessionRecord.deserialize(owned(record)).hasCurrentState(now);
  } catch {
    throw new CryptoError('INVALID_KEY', 'stored session is corrupt', { address });
  }
}

/**
 * {@link validAt}, asking `memo` first: a certificate that checked out against the same roots
 * before is valid exactly while `timestamp <= expiration` (what libsignal's check adds to the
 * two signatures, which depend only on the bytes).
 */
function validWithMemo(
  memo: SenderCertificateMemo | undefined,
  certificate: SenderCertificate,
  rootBytes: readonly Uint8Array[],
  roots: PublicKey[],
  timestamp: number,
): boolean {
  if (!memo) return validAt(certificate, roots, timestamp);
  const bytes = certificate.serialize();
  const expiresAt = memo[EXPIRY_OF](bytes, rootBytes);
  if (expiresAt !== undefined) return timestamp <= expiresAt;
  if (!validAt(certificate, roots, timestamp)) return false;
  memo[REMEMBER](bytes, rootBytes, certificate.expiration());
  return true;
}

function validAt(certificate: SenderCertificate, roots: PublicKey[], timestamp: number): boolean {
  try {
    return certificate.validateWithTrustRoots(roots, timestamp);
  } catch {
    return false;
  }
}

function parseContent<T>(parse: () => T, address: string): T {
  try {
    return parse();
  } catch {
    throw new CryptoError('INVALID_MESSAGE', 'the ciphertext is not a well-formed message', { address });
  }
}
