// SPDX-License-Identifier: AGPL-3.0-only
/**
 * Addresses `username@domain`. A username is unique on its relay; the domain names the relay
 * (DNS name or IPv4 literal, optionally with a port). Both are case-insensitive and kept in
 * lowercase, so one person has exactly one canonical address.
 */
import { ParleyError } from './errors.js';
import { LIMITS } from './limits.js';

/** A parsed, canonical address. */
export interface Address {
  readonly username: string;
  readonly domain: string;
}

const USERNAME_RE = /^[a-z][a-z0-9_.]*$/;
const LABEL_RE = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

/** Lowercases and checks a username: 3–32 of `a-z 0-9 _ .`, starting with a letter, no `..`. */
export function parseUsername(text: string): string {
  const u = typeof text === 'string' ? text.toLowerCase() : '';
  if (
    u.length < LIMITS.minUsernameLength ||
    u.length > LIMITS.maxUsernameLength ||
    !USERNAME_RE.test(u) ||
    u.includes('..') ||
    u.endsWith('.')
  ) {
    throw new ParleyError(
      'BAD_REQUEST',
      `username must be ${LIMITS.minUsernameLength}-${LIMITS.maxUsernameLength} characters of a-z, 0-9, '_' and '.', starting with a letter`,
    );
  }
  return u;
}

/** Lowercases and checks a domain: DNS labels or an IPv4 literal, optionally `:port`. */
export function parseDomain(text: string): string {
  const d = typeof text === 'string' ? text.toLowerCase() : '';
  const bad = (): never => {
    throw new ParleyError('BAD_REQUEST', 'domain must be a host name or IPv4 address, optionally with :port');
  };
  if (d.length === 0 || d.length > LIMITS.maxDomainLength) bad();
  const colon = d.lastIndexOf(':');
  const host = colon >= 0 ? d.slice(0, colon) : d;
  if (colon >= 0) {
    const port = d.slice(colon + 1);
    if (!/^[0-9]{1,5}$/.test(port) || Number(port) < 1 || Number(port) > 65535 || port.startsWith('0')) bad();
  }
  const labels = host.split('.');
  if (labels.some((l) => !LABEL_RE.test(l))) bad();
  if (/^[0-9.]+$/.test(host) && (labels.length !== 4 || labels.some((l) => Number(l) > 255 || (l.length > 1 && l.startsWith('0'))))) bad();
  return d;
}

/**
 * Parses `user@domain`, or a bare `user` when `defaultDomain` is given (an address on one's
 * own relay).
 */
export function parseAddress(text: string, defaultDomain?: string): Address {
  if (typeof text !== 'string') throw new ParleyError('BAD_REQUEST', 'address must be user@domain');
  const at = text.indexOf('@');
  if (at < 0) {
    if (defaultDomain === undefined) throw new ParleyError('BAD_REQUEST', 'address must be user@domain');
    return { username: parseUsername(text), domain: parseDomain(defaultDomain) };
  }
  if (text.indexOf('@', at + 1) >= 0) throw new ParleyError('BAD_REQUEST', 'address must contain one @');
  return { username: parseUsername(text.slice(0, at)), domain: parseDomain(text.slice(at + 1)) };
}

/** The canonical text form `user@domain`. */
export function formatAddress(address: Address): string {
  return `${address.username}@${address.domain}`;
}
