// SPDX-License-Identifier: AGPL-3.0-only
/**
 * Parsers for command arguments and option values. Each turns text into a checked value or
 * throws commander's InvalidArgumentError (reported as a usage error, exit 2) with a message
 * that says what is expected.
 */
import { InvalidArgumentError } from 'commander';
import { parseAddress, parseUsername } from '@parley/protocol';

/** A relay base URL: `http://` or `https://`, no credentials, query or fragment. */
export function parseServerUrl(text: string): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new InvalidArgumentError(`not a URL: give the relay's base URL, e.g. http://localhost:8080`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new InvalidArgumentError(`the relay URL must start with http:// or https://, e.g. http://localhost:8080`);
  }
  if (url.username || url.password || url.search || url.hash) {
    throw new InvalidArgumentError('the relay URL must not hold credentials, a query or a fragment');
  }
  // The base URL without a trailing slash, so that the engine can append paths.
  return url.href.replace(/\/+$/, '');
}

/** A positive whole number (`--limit`, a device id). */
export function parsePositiveInt(text: string): number {
  if (!/^[0-9]+$/.test(text.trim())) throw new InvalidArgumentError('expected a whole number of at least 1');
  const n = Number(text.trim());
  if (!Number.isSafeInteger(n) || n < 1) throw new InvalidArgumentError('expected a whole number of at least 1');
  return n;
}

/** A file's position in a message: 0..99, as `history --json` lists `attachments[].index`. */
export function parseFileIndex(text: string): number {
  const t = text.trim();
  if (!/^[0-9]+$/.test(t) || Number(t) > 99) throw new InvalidArgumentError('a file index is a whole number from 0 (the first file) to 99');
  return Number(t);
}

/** A device id: 1..127. */
export function parseDeviceId(text: string): number {
  const n = parsePositiveInt(text);
  if (n > 127) throw new InvalidArgumentError('device ids run from 1 to 127 (see `parley devices`)');
  return n;
}

/** A non-negative number of seconds, fractions allowed (`--wait`, `--timeout`); at most a day. */
export function parseSeconds(text: string): number {
  const t = text.trim();
  if (!/^[0-9]+(\.[0-9]+)?$/.test(t)) throw new InvalidArgumentError('expected a number of seconds, e.g. 30');
  const n = Number(t);
  if (n > 86_400) throw new InvalidArgumentError('at most 86400 seconds (one day)');
  return n;
}

/** A message id: 32 hex characters, as `history --json` prints them. */
export function parseMessageId(text: string): string {
  const t = text.trim().toLowerCase();
  if (!/^[0-9a-f]{32}$/.test(t)) throw new InvalidArgumentError('a message id is 32 hex characters, as printed by `parley history --json`');
  return t;
}

/** A username for `register`, canonical (lowercase). */
export function parseUsernameArg(text: string): string {
  try {
    return parseUsername(text);
  } catch (err) {
    throw new InvalidArgumentError(err instanceof Error ? err.message : 'not a valid username');
  }
}

/** An address `user@domain`, or `user` on one's own relay; canonical (lowercase). */
export function parseAddressArg(text: string): string {
  try {
    if (!text.includes('@')) return parseUsername(text);
    const a = parseAddress(text);
    return `${a.username}@${a.domain}`;
  } catch (err) {
    throw new InvalidArgumentError(`${err instanceof Error ? err.message : 'not a valid address'} (an address is user@domain, or user on your own relay)`);
  }
}

/** Longest group name (`#` and a title or an id) the CLI takes. */
const MAX_GROUP_REF = 200;

/** A group: `#<title>`, `#<id or a prefix of at least 6 hex digits>`; the `#` may be left out. */
export function parseGroupArg(text: string): string {
  const t = text.trim();
  const name = t.startsWith('#') ? t.slice(1).trim() : t;
  if (name.length === 0 || t.length > MAX_GROUP_REF) throw new InvalidArgumentError('name a group by its title or id (prefix), e.g. climbing or 3f2a0d');
  return `#${name}`;
}

/** An address (see {@link parseAddressArg}), or a group written `#<title or id prefix>`. */
export function parseAddressOrGroupArg(text: string): string {
  if (text.trim().startsWith('#')) {
    try {
      return parseGroupArg(text);
    } catch {
      throw new InvalidArgumentError("a group is #title or #id-prefix (quote it: '#climbing')");
    }
  }
  return parseAddressArg(text);
}

/** `jsonl` or `md`. */
export function parseExportFormat(text: string): 'jsonl' | 'md' {
  if (text === 'jsonl' || text === 'md') return text;
  throw new InvalidArgumentError('the format is jsonl or md');
}

/** Longest disappearing-message timer, seconds (4 weeks; the engine's limit). */
export const MAX_TIMER_SECONDS = 28 * 24 * 3600;

const TIMER_UNITS: Readonly<Record<string, number>> = { s: 1, m: 60, h: 3600, d: 86_400, w: 7 * 86_400 };

/**
 * A disappearing-message timer: `30s`, `5m`, `1h`, `1d`, `1w` (a bare number is seconds), or
 * `off` (also `0`); in seconds, 0 for off, at most 4 weeks.
 */
export function parseTimer(text: string): number {
  const t = text.trim().toLowerCase();
  if (t === 'off' || t === '0') return 0;
  const m = /^([0-9]+)([smhdw]?)$/.exec(t);
  if (!m) throw new InvalidArgumentError('a timer is a number with a unit: 30s, 5m, 1h, 1d, 1w (or off)');
  const seconds = Number(m[1]) * TIMER_UNITS[m[2] || 's']!;
  if (!Number.isSafeInteger(seconds) || seconds < 1 || seconds > MAX_TIMER_SECONDS) {
    throw new InvalidArgumentError('a timer is 1 second to 4 weeks (4w), or off');
  }
  return seconds;
}
