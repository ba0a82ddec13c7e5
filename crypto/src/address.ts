// SPDX-License-Identifier: AGPL-3.0-only
/**
 * Device addresses as plain data. Stores key sessions and sender keys by the string form
 * `"<aci>.<deviceId>"`, the same text libsignal gives a ProtocolAddress, so records written by
 * one layer are found by the other.
 */
import { LIMITS } from '@parley/protocol';
import { CryptoError } from './errors.js';

/** One device of an account. `aci` is a lowercase hyphenated UUID; `deviceId` is 1..127. */
export interface DeviceAddress {
  readonly aci: string;
  readonly deviceId: number;
}

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** Throws CryptoError('INVALID_ARGUMENT') unless `address` is a canonical ACI and a device id 1..127. */
export function checkAddress(address: DeviceAddress): DeviceAddress {
  if (
    typeof address?.aci !== 'string' ||
    !UUID_RE.test(address.aci) ||
    !Number.isInteger(address.deviceId) ||
    address.deviceId < 1 ||
    address.deviceId > LIMITS.maxDeviceId
  ) {
    throw new CryptoError('INVALID_ARGUMENT', `address must be a lowercase UUID and a device id 1..${LIMITS.maxDeviceId}`);
  }
  return address;
}

/** `"<aci>.<deviceId>"`, the key stores use for sessions and sender keys. Validates first. */
export function formatAddress(address: DeviceAddress): string {
  checkAddress(address);
  return `${address.aci}.${address.deviceId}`;
}

/** Inverse of {@link formatAddress}; throws CryptoError('INVALID_ARGUMENT') on anything else. */
export function parseAddress(text: string): DeviceAddress {
  const dot = typeof text === 'string' ? text.lastIndexOf('.') : -1;
  const device = dot < 0 ? '' : text.slice(dot + 1);
  if (!/^[1-9][0-9]{0,2}$/.test(device)) throw new CryptoError('INVALID_ARGUMENT', 'address must be "<aci>.<deviceId>"');
  return checkAddress({ aci: text.slice(0, dot), deviceId: Number(device) });
}
