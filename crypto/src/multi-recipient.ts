// SPDX-License-Identifier: AGPL-3.0-only
/**
 * The relay's side of sealed sender v2 multi-recipient sends (DESIGN §5, §7). A sender uploads
 * one payload for many devices: a recipient table (per account: its devices, their registration
 * ids, and a small per-account key header) followed by one body shared by all. The relay checks
 * the device sets, and queues for each account `header ‖ sharedBody`, which is exactly what
 * libsignal's `SealedSenderMultiRecipientMessage.messageForRecipient` produces and what
 * `SessionCipher.sealedDecrypt` takes. Keeping the two parts apart lets the relay store the
 * shared body once for a group of 1,000 and reference it from every queue.
 */
import SealedSenderMultiRecipientMessage from '@signalapp/libsignal-client/dist/SealedSenderMultiRecipientMessage.js';
import { LIMITS } from '@parley/protocol';
import { CryptoError } from './errors.js';
import { owned } from './key-verification.js';

/**
 * The version byte of a sealed sender v2 message as one recipient receives it (libsignal's
 * "ReceivedMessage"); it starts every {@link MultiRecipientRecipient.header}.
 */
export const SEALED_SENDER_V2_RECEIVED_VERSION = 0x22;

/** One device of a recipient of a multi-recipient payload. */
export interface MultiRecipientDevice {
  /** 1..127. */
  readonly deviceId: number;
  /** The registration id the sender's session with this device has, 1..16383 (for the STALE_DEVICES check). */
  readonly registrationId: number;
}

/** One recipient account of a multi-recipient payload. */
export interface MultiRecipientRecipient {
  /** Lowercase hyphenated UUID. */
  readonly aci: string;
  /** The devices the sender encrypted to, in payload order. */
  readonly devices: readonly MultiRecipientDevice[];
  /**
   * The per-account part: the version byte 0x22 and this account's key material (about 50
   * bytes). Every device of the account gets the same `header ‖ sharedBody`.
   */
  readonly header: Uint8Array;
}

/** A parsed multi-recipient payload. */
export interface MultiRecipientMessage {
  /** Each recipient once, in payload order. */
  readonly recipients: readonly MultiRecipientRecipient[];
  /** Accounts the sender deliberately left out (lowercase UUIDs); disjoint from `recipients`. */
  readonly excludedAcis: readonly string[];
  /** The part every recipient shares (a single copy, not one per recipient). */
  readonly sharedBody: Uint8Array;
}

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

function invalid(message: string): CryptoError {
  return new CryptoError('INVALID_MESSAGE', message);
}

/**
 * libsignal prints an ACI as its bare UUID and every other kind of service id with a prefix
 * (`PNI:…`); only ACIs may receive here, since only they have devices and sessions.
 */
function aciOf(serviceId: string): string {
  const aci = serviceId.toLowerCase();
  if (!UUID_RE.test(aci)) throw invalid('a multi-recipient payload may only name ACIs');
  return aci;
}

/**
 * Parses a sealed sender v2 multi-recipient payload. INVALID_MESSAGE for anything malformed
 * (truncated, garbage, a table that claims more than the bytes hold, a recipient that is not an
 * ACI, a device id outside 1..127, a registration id outside 1..16383, a recipient without
 * devices). INVALID_ARGUMENT when `payload` is not bytes. Never throws anything else.
 */
export function parseMultiRecipientMessage(payload: Uint8Array): MultiRecipientMessage {
  if (!(payload instanceof Uint8Array)) throw new CryptoError('INVALID_ARGUMENT', 'the payload must be bytes');
  const buffer = owned(payload);
  let parsed: SealedSenderMultiRecipientMessage;
  try {
    parsed = new SealedSenderMultiRecipientMessage(buffer);
  } catch {
    throw invalid('not a well-formed multi-recipient payload');
  }
  const shared = parsed._offsetOfSharedData;
  if (!Number.isInteger(shared) || shared < 1 || shared > buffer.length) throw invalid('not a well-formed multi-recipient payload');

  const recipients: MultiRecipientRecipient[] = [];
  for (const [serviceId, r] of Object.entries(parsed.recipientsByServiceIdString())) {
    const aci = aciOf(serviceId);
    const native = r as typeof r & { rangeOffset: number; rangeLen: number };
    const { deviceIds, registrationIds, rangeOffset, rangeLen } = native;
    if (deviceIds.length === 0 || deviceIds.length !== registrationIds.length) throw invalid('a recipient without devices');
    if (!Number.isInteger(rangeOffset) || !Number.isInteger(rangeLen) || rangeOffset < 0 || rangeLen < 0 || rangeOffset + rangeLen > shared) {
      throw invalid('not a well-formed multi-recipient payload');
    }
    const devices: MultiRecipientDevice[] = [];
    for (let i = 0; i < deviceIds.length; i++) {
      const deviceId = deviceIds[i]!;
      const registrationId = registrationIds[i]!;
      if (!Number.isInteger(deviceId) || deviceId < 1 || deviceId > LIMITS.maxDeviceId) throw invalid('a device id outside 1..127');
      if (!Number.isInteger(registrationId) || registrationId < 1 || registrationId > LIMITS.maxRegistrationId) {
        throw invalid('a registration id out of range');
      }
      devices.push({ deviceId, registrationId });
    }
    const header = new Uint8Array(1 + rangeLen);
    header[0] = SEALED_SENDER_V2_RECEIVED_VERSION;
    header.set(buffer.subarray(rangeOffset, rangeOffset + rangeLen), 1);
    recipients.push({ aci, devices, header });
  }
  const excludedAcis = parsed.excludedRecipientServiceIdStrings().map(aciOf);
  // One copy, so the result does not pin the caller's (possibly pooled) buffer.
  return { recipients, excludedAcis, sharedBody: new Uint8Array(buffer.subarray(shared)) };
}

/** `header ‖ sharedBody`: one recipient's sealed message, ready for `SessionCipher.sealedDecrypt`. */
export function joinMultiRecipientPart(header: Uint8Array, sharedBody: Uint8Array): Uint8Array {
  if (!(header instanceof Uint8Array) || !(sharedBody instanceof Uint8Array)) throw new CryptoError('INVALID_ARGUMENT', 'the parts must be bytes');
  const out = new Uint8Array(header.length + sharedBody.length);
  out.set(header, 0);
  out.set(sharedBody, header.length);
  return out;
}
