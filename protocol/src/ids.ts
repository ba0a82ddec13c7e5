// SPDX-License-Identifier: AGPL-3.0-only
/**
 * Branded identifier types, parsed once where bytes enter a process and trusted after that
 * (CONVENTIONS 11). Every parser throws ParleyError('BAD_REQUEST') on bad input.
 */
import { fromHex, toHex } from './bytes.js';
import { ParleyError } from './errors.js';
import { LIMITS } from './limits.js';

declare const brand: unique symbol;
type Brand<T, B extends string> = T & { readonly [brand]: B };

/** An account identifier in its canonical text form: a lowercase hyphenated UUID. */
export type Aci = Brand<string, 'Aci'>;
/** A device number within an account, 1..LIMITS.maxDeviceId. */
export type DeviceId = Brand<number, 'DeviceId'>;
/** A per-device queue sequence number, >= 1. */
export type Seq = Brand<number, 'Seq'>;
/** A libsignal registration id, 1..LIMITS.maxRegistrationId. */
export type RegistrationId = Brand<number, 'RegistrationId'>;
/** A sender-chosen 16-byte message id, as lowercase hex (32 characters). */
export type MessageId = Brand<string, 'MessageId'>;

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** Parses an ACI from its text form (case-insensitive UUID). */
export function parseAci(text: string): Aci {
  const lower = typeof text === 'string' ? text.toLowerCase() : '';
  if (!UUID_RE.test(lower)) throw new ParleyError('BAD_REQUEST', 'account id is not a UUID');
  return lower as Aci;
}

/** Parses an ACI from its 16 wire bytes. */
export function aciFromBytes(bytes: Uint8Array): Aci {
  if (bytes.length !== LIMITS.aciBytes) throw new ParleyError('BAD_REQUEST', 'account id must be 16 bytes');
  const h = toHex(bytes);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}` as Aci;
}

/** The 16 wire bytes of an ACI. */
export function aciToBytes(aci: Aci): Uint8Array {
  // On the relay's delivery path once per envelope: read the hex digits in place, skipping the
  // hyphens, instead of a regex replace and a second validation (the Aci was parsed already).
  const out = new Uint8Array(16);
  let o = 0;
  for (let i = 0; i < aci.length && o < 16; i++) {
    if (aci.charCodeAt(i) === 45) continue; // '-'
    out[o++] = (hexValue(aci.charCodeAt(i)) << 4) | hexValue(aci.charCodeAt(++i));
  }
  return out;
}

function hexValue(c: number): number {
  return c <= 57 ? c - 48 : c - 87; // '0'-'9', 'a'-'f' (an Aci is lowercase)
}

/** Parses a device id (an integer 1..127). */
export function parseDeviceId(value: unknown): DeviceId {
  const n = typeof value === 'string' && /^[0-9]{1,3}$/.test(value) ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 1 || n > LIMITS.maxDeviceId) {
    throw new ParleyError('BAD_REQUEST', `device id must be an integer 1..${LIMITS.maxDeviceId}`);
  }
  return n as DeviceId;
}

/** Parses a registration id (an integer 1..16383). */
export function parseRegistrationId(value: unknown): RegistrationId {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > LIMITS.maxRegistrationId) {
    throw new ParleyError('BAD_REQUEST', `registration id must be an integer 1..${LIMITS.maxRegistrationId}`);
  }
  return value as RegistrationId;
}

/** Parses a sequence number (a safe integer >= 1). */
export function parseSeq(value: unknown): Seq {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) {
    throw new ParleyError('BAD_REQUEST', 'sequence number must be a positive safe integer');
  }
  return value as Seq;
}

/** Parses a message id from its 16 wire bytes. */
export function messageIdFromBytes(bytes: Uint8Array): MessageId {
  if (bytes.length !== LIMITS.messageIdBytes) throw new ParleyError('BAD_REQUEST', 'message id must be 16 bytes');
  return toHex(bytes) as MessageId;
}

/** The 16 wire bytes of a message id. */
export function messageIdToBytes(id: MessageId): Uint8Array {
  return fromHex(id)!;
}
