// SPDX-License-Identifier: AGPL-3.0-only
/**
 * The account's privacy settings (read receipts, typing indicators, presence) and its presence
 * token, shared by all its devices with `SettingsSync` (DESIGN §6, §8). Each change gets a new
 * version; a device takes a synced value only when its version is newer than the one it holds,
 * so every device ends on the newest change whatever order the syncs arrive in.
 *
 * Read receipts are reciprocal, as in Signal: with them off this account sends no read receipts
 * and does not show (nor keep) other people's read state. Presence too: with it off the token is
 * withdrawn from the relay and this account does not watch anyone else's presence.
 */
import { fromBase64Url, toBase64Url, type SettingsSync } from '@parley/protocol';
import type { PrivacySettings } from './client-api.js';
import { encodeContent } from './content-codec.js';

/** What a device keeps: the switches, their version, and the account's presence token. */
export interface StoredPrivacy extends PrivacySettings {
  /** 0 before any change was made or synced (defaults); higher is newer. */
  readonly version: number;
  /** The account's 32-byte presence token, once one was made (on this or another device). Secret. */
  readonly presenceToken?: Uint8Array;
}

/** Reads and writes small named text values (the store's `settings` table). */
export interface SettingsPort {
  getSetting(name: string): string | undefined;
  setSetting(name: string, value: string): void;
}

/** The settings of a profile that never changed or synced any. */
export const DEFAULT_PRIVACY: StoredPrivacy = Object.freeze({ version: 0, readReceipts: true, typingIndicators: true, presence: true });

const KEY = 'privacy.settings';

interface Json {
  version: number;
  readReceipts: boolean;
  typingIndicators: boolean;
  presence: boolean;
  presenceToken?: string;
}

/** The stored settings, or the defaults. A value that does not parse counts as unset. */
export function readPrivacy(port: SettingsPort): StoredPrivacy {
  const raw = port.getSetting(KEY);
  if (!raw) return DEFAULT_PRIVACY;
  try {
    const j = JSON.parse(raw) as Json;
    const token = j.presenceToken ? fromBase64Url(j.presenceToken) : undefined;
    return {
      version: Number.isSafeInteger(j.version) && j.version >= 0 ? j.version : 0,
      readReceipts: j.readReceipts !== false,
      typingIndicators: j.typingIndicators !== false,
      presence: j.presence !== false,
      ...(token && token.length === 32 ? { presenceToken: token } : {}),
    };
  } catch {
    return DEFAULT_PRIVACY;
  }
}

/** Stores `p` as it is. */
export function writePrivacy(port: SettingsPort, p: StoredPrivacy): void {
  const j: Json = { version: p.version, readReceipts: p.readReceipts, typingIndicators: p.typingIndicators, presence: p.presence };
  if (p.presenceToken) j.presenceToken = toBase64Url(p.presenceToken);
  port.setSetting(KEY, JSON.stringify(j));
}

/**
 * The version of a change made now: above the one held, and otherwise the clock, so that of two
 * devices changing at about the same time the later change wins.
 */
export function nextVersion(current: StoredPrivacy, nowMs: number): number {
  return Math.max(current.version + 1, Math.floor(nowMs));
}

/** The switches of `p`, without version and token. */
export function switchesOf(p: PrivacySettings): PrivacySettings {
  return { readReceipts: p.readReceipts, typingIndicators: p.typingIndicators, presence: p.presence };
}

/** A `SettingsSync` carrying `p` to one's own other devices. */
export function settingsSyncContent(p: StoredPrivacy): Uint8Array {
  return encodeContent({
    body: {
      case: 'sync',
      value: {
        kind: {
          case: 'settings',
          value: {
            version: BigInt(p.version),
            readReceipts: p.readReceipts,
            typingIndicators: p.typingIndicators,
            presence: p.presence,
            presenceToken: p.presenceToken ?? new Uint8Array(0),
          },
        },
      },
    },
  });
}

/**
 * What a device holds after a synced `incoming`: it when newer than `local`, else undefined
 * (nothing changes). A synced value without a token keeps the token held here.
 */
export function mergeSettingsSync(local: StoredPrivacy, incoming: SettingsSync): StoredPrivacy | undefined {
  if (incoming.version > BigInt(Number.MAX_SAFE_INTEGER)) return undefined;
  const version = Number(incoming.version);
  if (version <= local.version) return undefined;
  const token = incoming.presenceToken.length === 32 ? incoming.presenceToken : local.presenceToken;
  return {
    version,
    readReceipts: incoming.readReceipts,
    typingIndicators: incoming.typingIndicators,
    presence: incoming.presence,
    ...(token ? { presenceToken: token } : {}),
  };
}
