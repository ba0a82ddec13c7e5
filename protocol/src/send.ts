// SPDX-License-Identifier: AGPL-3.0-only
/**
 * Validation of a `Send` frame's fields: everything that can be checked without the relay's
 * state. The relay then checks the device set against its directory.
 */
import { ParleyError } from './errors.js';
import { EnvelopeType, type Send, type SendMulti } from './gen/parley/v1/wire_pb.js';
import { aciFromBytes, messageIdFromBytes, type Aci, type DeviceId, type MessageId, type RegistrationId } from './ids.js';
import { LIMITS } from './limits.js';
import { parseDomain } from './address.js';

/** One device's part of a validated send. */
export interface ValidatedDeviceMessage {
  readonly deviceId: DeviceId;
  readonly registrationId: RegistrationId;
  readonly type: EnvelopeType;
  readonly content: Uint8Array;
}

/** A send whose fields are all in range. */
export interface ValidatedSend {
  readonly requestId: number;
  readonly destination: Aci;
  /** Lowercase domain; empty for the relay's own domain. */
  readonly destinationDomain: string;
  readonly messageId: MessageId;
  readonly messageIdBytes: Uint8Array;
  readonly timestamp: number;
  readonly urgent: boolean;
  readonly online: boolean;
  /** Sorted by device id. */
  readonly messages: readonly ValidatedDeviceMessage[];
}

/** Bounds applied by validateSend. */
export interface SendLimits {
  /** Most device messages; default LIMITS.maxDevicesPerSend. */
  readonly maxDevices: number;
  /** Largest content of one device message, bytes; default LIMITS.maxEnvelopeBytes. */
  readonly maxEnvelopeBytes: number;
  /** Largest future skew of `timestamp` against `now`, milliseconds. */
  readonly maxClockSkewMs: number;
}

const DEFAULT_SEND_LIMITS: SendLimits = {
  maxDevices: LIMITS.maxDevicesPerSend,
  maxEnvelopeBytes: LIMITS.maxEnvelopeBytes,
  maxClockSkewMs: LIMITS.maxClockSkewMs,
};

const VALID_TYPES = new Set<number>([
  EnvelopeType.CIPHERTEXT,
  EnvelopeType.PREKEY,
  EnvelopeType.SEALED,
  EnvelopeType.PLAINTEXT_CONTENT,
]);

/**
 * Checks every field of a Send.
 * @param nowMs the relay clock, milliseconds since the epoch.
 * @throws ParleyError BAD_REQUEST (or FRAME_TOO_LARGE for an oversize ciphertext).
 */
export function validateSend(send: Send, nowMs: number, limits: SendLimits = DEFAULT_SEND_LIMITS): ValidatedSend {
  const bad = (why: string): never => {
    throw new ParleyError('BAD_REQUEST', why);
  };
  if (send.requestId === 0) bad('request_id must be non-zero');
  const destination = aciFromBytes(send.destination);
  const destinationDomain = send.destinationDomain === '' ? '' : parseDomain(send.destinationDomain);
  const messageId = messageIdFromBytes(send.messageId);
  // uint64 on the wire: anything past the safe-integer range is out of range, not truncated.
  if (send.timestamp <= 0n || send.timestamp > BigInt(Number.MAX_SAFE_INTEGER)) bad('timestamp must be a positive number of milliseconds');
  const timestamp = Number(send.timestamp);
  if (timestamp > nowMs + limits.maxClockSkewMs) bad('timestamp is too far in the future');
  if (send.messages.length === 0) bad('messages must name at least one device');
  if (send.messages.length > limits.maxDevices) bad(`messages may name at most ${limits.maxDevices} devices`);
  const seen = new Set<number>();
  const messages: ValidatedDeviceMessage[] = [];
  for (const m of send.messages) {
    if (!Number.isInteger(m.deviceId) || m.deviceId < 1 || m.deviceId > LIMITS.maxDeviceId) bad('device id out of range');
    if (seen.has(m.deviceId)) bad('a device is named twice');
    seen.add(m.deviceId);
    if (m.registrationId < 1 || m.registrationId > LIMITS.maxRegistrationId) bad('registration id out of range');
    if (!VALID_TYPES.has(m.type)) bad('envelope type is not valid for a single-recipient send');
    if (m.content.length === 0) bad('content must not be empty');
    if (m.content.length > limits.maxEnvelopeBytes) {
      throw new ParleyError('FRAME_TOO_LARGE', `a device message is over ${limits.maxEnvelopeBytes} bytes`);
    }
    messages.push({
      deviceId: m.deviceId as DeviceId,
      registrationId: m.registrationId as RegistrationId,
      type: m.type,
      content: m.content,
    });
  }
  messages.sort((a, b) => a.deviceId - b.deviceId);
  return {
    requestId: send.requestId,
    destination,
    destinationDomain,
    messageId,
    messageIdBytes: send.messageId,
    timestamp,
    urgent: send.urgent,
    online: send.online,
    messages,
  };
}

/** A SendMulti whose fields are all in range (the payload is parsed by the relay). */
export interface ValidatedSendMulti {
  readonly requestId: number;
  readonly messageId: MessageId;
  readonly messageIdBytes: Uint8Array;
  readonly timestamp: number;
  readonly urgent: boolean;
  readonly online: boolean;
  readonly payload: Uint8Array;
  /** 16 bytes, or empty when absent. */
  readonly combinedAccessKey: Uint8Array;
}

/** Bounds applied by validateSendMulti. */
export interface SendMultiLimits {
  /** Largest payload, bytes; default LIMITS.maxMultiPayloadBytes. */
  readonly maxPayloadBytes: number;
  /** Largest future skew of `timestamp` against `now`, milliseconds. */
  readonly maxClockSkewMs: number;
}

const DEFAULT_SEND_MULTI_LIMITS: SendMultiLimits = {
  maxPayloadBytes: LIMITS.maxMultiPayloadBytes,
  maxClockSkewMs: LIMITS.maxClockSkewMs,
};

/**
 * Checks every field of a SendMulti but the payload's inside.
 * @param nowMs the relay clock, milliseconds since the epoch.
 * @throws ParleyError BAD_REQUEST (or FRAME_TOO_LARGE for an oversize payload).
 */
export function validateSendMulti(send: SendMulti, nowMs: number, limits: SendMultiLimits = DEFAULT_SEND_MULTI_LIMITS): ValidatedSendMulti {
  const bad = (why: string): never => {
    throw new ParleyError('BAD_REQUEST', why);
  };
  if (send.requestId === 0) bad('request_id must be non-zero');
  const messageId = messageIdFromBytes(send.messageId);
  if (send.timestamp <= 0n || send.timestamp > BigInt(Number.MAX_SAFE_INTEGER)) bad('timestamp must be a positive number of milliseconds');
  const timestamp = Number(send.timestamp);
  if (timestamp > nowMs + limits.maxClockSkewMs) bad('timestamp is too far in the future');
  if (send.payload.length === 0) bad('payload must not be empty');
  if (send.payload.length > limits.maxPayloadBytes) throw new ParleyError('FRAME_TOO_LARGE', `the payload is over ${limits.maxPayloadBytes} bytes`);
  if (send.combinedAccessKey.length !== 0 && send.combinedAccessKey.length !== LIMITS.accessKeyBytes) {
    bad(`combined_access_key must be ${LIMITS.accessKeyBytes} bytes or empty`);
  }
  return {
    requestId: send.requestId,
    messageId,
    messageIdBytes: send.messageId,
    timestamp,
    urgent: send.urgent,
    online: send.online,
    payload: send.payload,
    combinedAccessKey: send.combinedAccessKey,
  };
}
