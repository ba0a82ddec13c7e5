// SPDX-License-Identifier: AGPL-3.0-only
/**
 * @internal Groups over sender keys (DESIGN §7). Each member device has one sender key per
 * group (its distribution id); it hands the key to the other members' devices pairwise, inside
 * 1:1 messages (a SenderKeyDistributionMessage), then encrypts each group message once with
 * `groupEncrypt`, seals it for all member devices in one sealed sender v2 payload, and uploads
 * that once. Rotation (a member left or was removed) is a new distribution id, distributed to
 * the remaining members only: the removed member keeps the old key, which nothing uses again.
 * {@link SessionCipher} exposes these as methods and serializes them.
 */
import {
  Aci,
  ProtocolAddress,
  SenderKeyDistributionMessage,
  SessionRecord,
  UnidentifiedSenderMessageContent,
  groupEncrypt,
  processSenderKeyDistributionMessage,
  sealedSenderMultiRecipientEncrypt,
} from '@signalapp/libsignal-client';
import { type DeviceAddress, formatAddress } from './address.js';
import { CryptoError } from './errors.js';
import { owned } from './key-verification.js';
import { PortCall } from './libsignal-adapters.js';
import { type CipherContext, contentHintNumber, groupIdBytes, ownCertificate } from './sealed-sender.js';
import type { GroupEncryptInput, SenderKeyDistributionInfo } from './sealed-types.js';

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** @internal Throws INVALID_ARGUMENT unless `id` is a lowercase hyphenated UUID. */
export function checkDistributionId(id: string): string {
  if (typeof id !== 'string' || !UUID_RE.test(id)) throw new CryptoError('INVALID_ARGUMENT', 'a distribution id must be a lowercase UUID');
  return id;
}

function checkSelf(ctx: CipherContext, self: DeviceAddress): void {
  formatAddress(self);
  if (self.aci !== ctx.local.aci || self.deviceId !== ctx.local.deviceId) {
    throw new CryptoError('INVALID_ARGUMENT', 'self must be this cipher’s local address');
  }
}

function localAddress(ctx: CipherContext): ProtocolAddress {
  return ProtocolAddress.new(ctx.local.aci, ctx.local.deviceId);
}

/** A stored session record that can encrypt; a corrupt one counts as none. */
function usableSession(bytes: Uint8Array | undefined, now: Date): boolean {
  if (!bytes) return false;
  try {
    return SessionRecord.deserialize(owned(bytes)).hasCurrentState(now);
  } catch {
    return false;
  }
}

/** @internal This device's SenderKeyDistributionMessage for `distributionId` (creating the key on first use). */
export async function createSenderKeyDistribution(ctx: CipherContext, self: DeviceAddress, distributionId: string): Promise<Uint8Array> {
  checkSelf(ctx, self);
  checkDistributionId(distributionId);
  const call = new PortCall(ctx.stores);
  try {
    return (await SenderKeyDistributionMessage.create(localAddress(ctx), distributionId, call.senderKeys)).serialize();
  } catch (err) {
    throw call.failure(err, 'INTERNAL');
  }
}

/** @internal Stores `sender`'s sender key from its distribution message. */
export async function processSenderKeyDistribution(
  ctx: CipherContext,
  sender: DeviceAddress,
  message: Uint8Array,
): Promise<SenderKeyDistributionInfo> {
  const name = formatAddress(sender);
  if (!(message instanceof Uint8Array)) throw new CryptoError('INVALID_ARGUMENT', 'the message must be bytes');
  let parsed: SenderKeyDistributionMessage;
  let distributionId: string;
  try {
    parsed = SenderKeyDistributionMessage.deserialize(owned(message));
    distributionId = parsed.distributionId().toLowerCase();
  } catch {
    throw new CryptoError('INVALID_MESSAGE', 'not a sender key distribution message', { address: name });
  }
  const call = new PortCall(ctx.stores);
  try {
    await processSenderKeyDistributionMessage(ProtocolAddress.new(sender.aci, sender.deviceId), parsed, call.senderKeys);
  } catch (err) {
    throw call.failure(err, 'INVALID_MESSAGE', name);
  }
  return { distributionId };
}

/** @internal One sender-key message for all `recipients`, as one sealed sender v2 payload. */
export async function groupEncryptMulti(ctx: CipherContext, input: GroupEncryptInput): Promise<Uint8Array> {
  if (typeof input !== 'object' || input === null) throw new CryptoError('INVALID_ARGUMENT', 'input is required');
  checkSelf(ctx, input.self);
  checkDistributionId(input.distributionId);
  if (!(input.plaintext instanceof Uint8Array)) throw new CryptoError('INVALID_ARGUMENT', 'plaintext must be bytes');
  const hint = contentHintNumber(input.contentHint);
  const groupId = groupIdBytes(input.groupId);
  if (!groupId) throw new CryptoError('INVALID_ARGUMENT', 'groupId is required');
  if (!Array.isArray(input.recipients) || input.recipients.length === 0) throw new CryptoError('INVALID_ARGUMENT', 'at least one recipient is needed');
  const names = input.recipients.map((r) => formatAddress(r));
  const self = formatAddress(ctx.local);
  if (new Set(names).size !== names.length || names.includes(self)) {
    throw new CryptoError('INVALID_ARGUMENT', 'recipients must be distinct devices other than this one');
  }
  const recipientAcis = new Set(input.recipients.map((r) => r.aci));
  const excluded = (input.excludedAcis ?? []).map((aci) => {
    if (typeof aci !== 'string' || !UUID_RE.test(aci) || recipientAcis.has(aci)) {
      throw new CryptoError('INVALID_ARGUMENT', 'excluded accounts must be lowercase UUIDs that are not recipients');
    }
    return Aci.parseFromServiceIdString(aci);
  });
  const certificate = await ownCertificate(ctx, input.senderCertificate);
  // libsignal reports a missing sender key only as a generic error; look first.
  if (!(await ctx.stores.senderKeys.getSenderKey(self, input.distributionId))) {
    throw new CryptoError('NO_SENDER_KEY', 'this device has no sender key for the distribution: create and distribute it first');
  }

  // Every device without a usable session is named at once, so the caller fetches all missing
  // bundles in one round instead of one failed attempt per device.
  const now = ctx.now();
  const missing: string[] = [];
  for (const name of names) {
    const bytes = await ctx.stores.sessions.getSession(name);
    if (!usableSession(bytes, now)) missing.push(name);
  }
  if (missing.length > 0) throw new CryptoError('NO_SESSION', 'some recipient devices have no session: fetch their bundles first', { addresses: missing });

  // The same trust policy as 1:1 sends: an unaccepted identity change stops the whole send.
  const untrusted: string[] = [];
  for (const aci of recipientAcis) {
    const known = await ctx.stores.identity.getIdentity(aci);
    if (known && !(await ctx.stores.identity.isTrustedIdentity(aci, known, 'sending'))) {
      untrusted.push(...names.filter((n) => n.startsWith(`${aci}.`)));
    }
  }
  if (untrusted.length > 0) throw new CryptoError('UNTRUSTED_IDENTITY', undefined, { addresses: untrusted });

  const call = new PortCall(ctx.stores);
  try {
    const message = await groupEncrypt(localAddress(ctx), input.distributionId, call.senderKeys, new Uint8Array(input.plaintext));
    const content = UnidentifiedSenderMessageContent.new(message, certificate, hint, groupId);
    return await sealedSenderMultiRecipientEncrypt({
      content,
      recipients: input.recipients.map((r) => ProtocolAddress.new(r.aci, r.deviceId)),
      excludedRecipients: excluded,
      identityStore: call.identity,
      sessionStore: call.sessions,
    });
  } catch (err) {
    throw call.failure(err, 'INTERNAL');
  }
}
