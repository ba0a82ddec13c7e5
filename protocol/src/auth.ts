// SPDX-License-Identifier: AGPL-3.0-only
/**
 * Device credentials: `Authorization: Basic base64("<aci>.<deviceId>:<secret>")`, the secret
 * being 32 random bytes in base64url. Used on REST and on the WebSocket upgrade.
 */
import { fromBase64, fromBase64Url, fromUtf8, toBase64, toBase64Url, utf8 } from './bytes.js';
import { ParleyError } from './errors.js';
import { parseAci, parseDeviceId, type Aci, type DeviceId } from './ids.js';

/** Bytes of an auth secret. */
export const AUTH_SECRET_BYTES = 32;

/** Parsed device credentials. */
export interface DeviceCredentials {
  readonly aci: Aci;
  readonly deviceId: DeviceId;
  readonly secret: Uint8Array;
}

/** The `Authorization` header value for device credentials. */
export function formatBasicAuth(aci: string, deviceId: number, secret: Uint8Array): string {
  return `Basic ${toBase64(utf8(`${aci}.${deviceId}:${toBase64Url(secret)}`))}`;
}

/**
 * Parses an `Authorization` header.
 * @throws ParleyError UNAUTHORIZED for any malformed header — the same code as a wrong secret,
 * so a prober learns nothing from the difference.
 */
export function parseBasicAuth(header: string | undefined): DeviceCredentials {
  const fail = (): never => {
    throw new ParleyError('UNAUTHORIZED', 'missing or invalid credentials');
  };
  if (typeof header !== 'string' || header.length > 512 || !header.startsWith('Basic ')) fail();
  const raw = fromBase64(header!.slice(6).trim());
  if (!raw) return fail();
  let text: string;
  try {
    text = fromUtf8(raw);
  } catch {
    return fail();
  }
  const colon = text.indexOf(':');
  const dot = text.lastIndexOf('.', colon);
  if (colon < 0 || dot < 0) return fail();
  try {
    const aci = parseAci(text.slice(0, dot));
    const deviceId = parseDeviceId(text.slice(dot + 1, colon));
    const secret = fromBase64Url(text.slice(colon + 1));
    if (!secret || secret.length !== AUTH_SECRET_BYTES) return fail();
    return { aci, deviceId, secret };
  } catch {
    return fail();
  }
}
