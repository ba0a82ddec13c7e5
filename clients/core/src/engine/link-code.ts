// SPDX-License-Identifier: AGPL-3.0-only
/**
 * Link codes: what a device being linked shows (as text and as a QR code) and an existing
 * device types in or scans. It names the relay, the provisioning address and the new device's
 * one-off public key: `parley-link:<base64url of JSON {v, relay, address, key}>`.
 */
import { fromBase64Url, fromUtf8, toBase64Url, utf8 } from '@parley/protocol';
import { ClientError } from '../errors.js';

/** What a link code holds. */
export interface LinkCode {
  /** The relay's base URL. */
  readonly relay: string;
  /** The provisioning socket's address on that relay. */
  readonly address: string;
  /** The new device's one-off Curve25519 public key (33 bytes). */
  readonly publicKey: Uint8Array;
}

const PREFIX = 'parley-link:';

/** The text form of a link code. */
export function formatLinkCode(code: LinkCode): string {
  const json = JSON.stringify({ v: 1, relay: code.relay, address: code.address, key: toBase64Url(code.publicKey) });
  return PREFIX + toBase64Url(utf8(json));
}

/**
 * Parses a link code.
 * @throws ClientError INVALID_LINK_CODE when it is not one (typo, truncated, another app's code).
 */
export function parseLinkCode(text: string): LinkCode {
  const bad = (): never => {
    throw new ClientError('INVALID_LINK_CODE', 'that is not a Parley link code: copy the whole line the new device shows, starting with parley-link:');
  };
  const t = text.trim();
  if (!t.startsWith(PREFIX) || t.length > 2048) bad();
  const raw = fromBase64Url(t.slice(PREFIX.length));
  if (!raw) return bad();
  let parsed: { v?: unknown; relay?: unknown; address?: unknown; key?: unknown };
  try {
    parsed = JSON.parse(fromUtf8(raw)) as typeof parsed;
  } catch {
    return bad();
  }
  if (parsed.v !== 1 || typeof parsed.relay !== 'string' || typeof parsed.address !== 'string' || typeof parsed.key !== 'string') bad();
  if (!/^https?:\/\/[^\s]+$/.test(parsed.relay as string) || !/^[A-Za-z0-9_-]{16,64}$/.test(parsed.address as string)) bad();
  const publicKey = fromBase64Url(parsed.key as string);
  if (!publicKey || publicKey.length !== 33) bad();
  return { relay: parsed.relay as string, address: parsed.address as string, publicKey: publicKey! };
}
