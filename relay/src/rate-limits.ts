// SPDX-License-Identifier: AGPL-3.0-only
/**
 * The relay's rate limits: which limits exist, what each bucket is keyed by, their defaults, the
 * `--rate-limits` override syntax, and the admission check every Send frame passes before
 * anything of it is validated or committed. The buckets live wherever the RateLimiterBackend
 * keeps them (in process, or Redis shared by every node); see docs/operations.md "Rate limits".
 */
import { DEFAULT_KEY_SERVER_CONFIG, enforceRateLimit, type KeyServerRateLimits, type RateLimiter, type RateLimiterBackend, type RateLimitRule } from '@parley/keyserver';
import { isParleyError, type Aci, type DeviceId } from '@parley/protocol';
import type { RelayConfig } from './config.js';
import type { RelayMetrics } from './relay-metrics.js';

const MINUTE = 60_000;

/** The limits the relay itself applies (the key server applies the others). */
export interface RelayOwnRateLimits {
  /** Send frames per sending account (all its devices together); undefined = off. */
  readonly sendPerAccount: RateLimitRule | undefined;
  /** Send frames per sending device; undefined = off. */
  readonly sendPerDevice: RateLimitRule | undefined;
  /**
   * Identified Send frames per (sending account, destination account), sends to one's own
   * account not counted; undefined = off. What keeps the sending bursts above from flooding
   * one person.
   */
  readonly sendPerDestination: RateLimitRule | undefined;
  /** Provisioning (device linking) sockets opened per client address. */
  readonly provisioning: RateLimitRule;
  /** Sender certificates issued per device. */
  readonly senderCertificate: RateLimitRule;
  /** Unidentified (sealed-sender) sockets opened per client address. */
  readonly unidentifiedSocket: RateLimitRule;
  /** Send and SendMulti frames on unidentified sockets, per client address. */
  readonly unidentifiedSend: RateLimitRule;
  /**
   * Unidentified sends refused for a wrong or missing access key, per destination account (each
   * recipient of a refused SendMulti counts); while exhausted, unidentified sends to it are refused.
   */
  readonly accessKeyFailure: RateLimitRule;
  /** PresenceSubscribe frames per device. */
  readonly presenceSubscribe: RateLimitRule;
  /** PresenceSet frames per device (each change of an account's presence fans out to all its subscribers). */
  readonly presenceSet: RateLimitRule;
}

/** Names of the relay's own limits. */
export const RELAY_OWN_RATE_LIMITS = [
  'sendPerAccount',
  'sendPerDevice',
  'sendPerDestination',
  'provisioning',
  'senderCertificate',
  'unidentifiedSocket',
  'unidentifiedSend',
  'accessKeyFailure',
  'presenceSubscribe',
  'presenceSet',
] as const;

/** Every limit `--rate-limits` can set: the relay's own and the key server's. */
export const RATE_LIMIT_NAMES: readonly string[] = [...RELAY_OWN_RATE_LIMITS, ...Object.keys(DEFAULT_KEY_SERVER_CONFIG.rateLimits)];

/** Limits that may be switched off (`name=off`); the others protect against abuse and only go up. */
const SWITCHABLE = new Set(['sendPerAccount', 'sendPerDevice', 'sendPerDestination']);

/** Overrides from `--rate-limits`: a rule, or 'off' for a limit that may be switched off. */
export type RateLimitOverrides = Readonly<Record<string, RateLimitRule | 'off'>>;

/**
 * Bursts of the send limits, in sends: the first message under a new sender key to a group of
 * 1,000 members is 1,000 pairwise key sends at once (and a membership change as many group
 * updates). The flags set the sustained rate; the bucket holds at least this many, so one such
 * distribution goes out in seconds and the rate over time stays what the flag says.
 */
export const SEND_BURST_PER_DEVICE = 2_000;
/** See {@link SEND_BURST_PER_DEVICE}; the account's bucket is shared by its devices. */
export const SEND_BURST_PER_ACCOUNT = 3_000;
/**
 * Default of the per-destination send limit: 600 at once from one account to another (what the
 * device limit allowed before it had bursts), refilled at 120 a minute.
 */
export const DEFAULT_SEND_PER_DESTINATION_RATE_LIMIT: RateLimitRule = Object.freeze({ capacity: 600, windowMs: 5 * MINUTE });
/** Default of the provisioning socket limit: 20 per minute per client address. */
export const DEFAULT_PROVISIONING_RATE_LIMIT: RateLimitRule = Object.freeze({ capacity: 20, windowMs: MINUTE });
/** Default of the sender certificate limit: 20 per 10 minutes per device (a device needs about one a day). */
export const DEFAULT_SENDER_CERTIFICATE_RATE_LIMIT: RateLimitRule = Object.freeze({ capacity: 20, windowMs: 10 * MINUTE });
/** Default of the unidentified socket limit: 60 per minute per client address. */
export const DEFAULT_UNIDENTIFIED_SOCKET_RATE_LIMIT: RateLimitRule = Object.freeze({ capacity: 60, windowMs: MINUTE });
/** Default of the unidentified send limit: 1,200 per minute per client address (many users may share one). */
export const DEFAULT_UNIDENTIFIED_SEND_RATE_LIMIT: RateLimitRule = Object.freeze({ capacity: 1200, windowMs: MINUTE });
/** Default of the access key failure limit: 60 per minute per destination account. */
export const DEFAULT_ACCESS_KEY_FAILURE_RATE_LIMIT: RateLimitRule = Object.freeze({ capacity: 60, windowMs: MINUTE });
/** Default of the PresenceSubscribe limit: 20 per minute per device (a connection needs one, and one per change of contacts). */
export const DEFAULT_PRESENCE_SUBSCRIBE_RATE_LIMIT: RateLimitRule = Object.freeze({ capacity: 20, windowMs: MINUTE });
/** Default of the PresenceSet limit: 60 per minute per device. */
export const DEFAULT_PRESENCE_SET_RATE_LIMIT: RateLimitRule = Object.freeze({ capacity: 60, windowMs: MINUTE });

const UNIT_MS: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: MINUTE, h: 60 * MINUTE, d: 24 * 60 * MINUTE };
const MAX_CAPACITY = 1_000_000_000;
const MAX_WINDOW_MS = 7 * 24 * 60 * MINUTE;

/**
 * Parses `name=CAPACITY/WINDOW[,…]` (WINDOW an integer with ms, s, m, h or d; `name=off` for a
 * send limit), e.g. `sendPerDevice=5/10s,claimPerTarget=100/10m`.
 * @throws Error with a message naming the part that is wrong.
 */
export function parseRateLimitSpec(text: string): RateLimitOverrides {
  const out: Record<string, RateLimitRule | 'off'> = {};
  for (const part of text.split(',').map((p) => p.trim()).filter((p) => p.length > 0)) {
    const m = /^([A-Za-z]+)=(?:(off)|([0-9]+)\/([0-9]+)(ms|s|m|h|d))$/.exec(part);
    if (!m) throw new Error(`"${part}" is not name=CAPACITY/WINDOW (e.g. sendPerDevice=60/1m) or name=off`);
    const name = m[1]!;
    if (name in out) throw new Error(`${name} is given twice`);
    out[name] = m[2] ? 'off' : { capacity: Number(m[3]), windowMs: Number(m[4]) * UNIT_MS[m[5]!]! };
  }
  return checkRateLimitOverrides(out);
}

/**
 * Checks overrides given as an object (config from code).
 * @returns a deeply frozen copy.
 * @throws Error naming the limit.
 */
export function checkRateLimitOverrides(overrides: RateLimitOverrides): RateLimitOverrides {
  if (typeof overrides !== 'object' || overrides === null) throw new Error('rateLimits must be an object');
  const out: Record<string, RateLimitRule | 'off'> = {};
  for (const [name, rule] of Object.entries(overrides)) {
    if (!RATE_LIMIT_NAMES.includes(name)) throw new Error(`unknown rate limit ${name} (known: ${RATE_LIMIT_NAMES.join(', ')})`);
    if (rule === 'off') {
      if (!SWITCHABLE.has(name)) throw new Error(`${name} cannot be switched off; raise it instead`);
      out[name] = 'off';
      continue;
    }
    const { capacity, windowMs } = rule ?? {};
    if (!Number.isInteger(capacity) || capacity < 1 || capacity > MAX_CAPACITY) throw new Error(`${name}: capacity must be an integer from 1 to ${MAX_CAPACITY}`);
    if (!Number.isInteger(windowMs) || windowMs < 1 || windowMs > MAX_WINDOW_MS) throw new Error(`${name}: the window must be from 1 ms to 7 days`);
    if (capacity * windowMs > Number.MAX_SAFE_INTEGER) throw new Error(`${name}: capacity × window is too large`);
    out[name] = Object.freeze({ capacity, windowMs });
  }
  return Object.freeze(out);
}

/**
 * `n` a minute sustained, in a bucket of at least `burst` (0: off): the bucket refills at `n` a
 * minute, so a burst drawn from it is paid back at the flag's rate.
 */
function perMinuteWithBurst(n: number, burst: number): RateLimitRule | undefined {
  if (n === 0) return undefined;
  const capacity = Math.max(n, burst);
  return Object.freeze({ capacity, windowMs: Math.round((capacity / n) * MINUTE) });
}

function pick<T extends RateLimitRule | undefined>(overrides: RateLimitOverrides, name: string, fallback: T): RateLimitRule | undefined | T {
  const o = overrides[name];
  if (o === undefined) return fallback;
  return o === 'off' ? undefined : Object.freeze({ capacity: o.capacity, windowMs: o.windowMs });
}

/** The relay's own limits after flags and `--rate-limits` (which wins). */
export function relayRateLimits(config: RelayConfig): RelayOwnRateLimits {
  const o = config.rateLimits;
  return Object.freeze({
    sendPerAccount: pick(o, 'sendPerAccount', perMinuteWithBurst(config.sendsPerAccountPerMinute, SEND_BURST_PER_ACCOUNT)),
    sendPerDevice: pick(o, 'sendPerDevice', perMinuteWithBurst(config.sendsPerDevicePerMinute, SEND_BURST_PER_DEVICE)),
    sendPerDestination: pick(o, 'sendPerDestination', DEFAULT_SEND_PER_DESTINATION_RATE_LIMIT),
    provisioning: pick(o, 'provisioning', DEFAULT_PROVISIONING_RATE_LIMIT) ?? DEFAULT_PROVISIONING_RATE_LIMIT,
    senderCertificate: pick(o, 'senderCertificate', DEFAULT_SENDER_CERTIFICATE_RATE_LIMIT) ?? DEFAULT_SENDER_CERTIFICATE_RATE_LIMIT,
    unidentifiedSocket: pick(o, 'unidentifiedSocket', DEFAULT_UNIDENTIFIED_SOCKET_RATE_LIMIT) ?? DEFAULT_UNIDENTIFIED_SOCKET_RATE_LIMIT,
    unidentifiedSend: pick(o, 'unidentifiedSend', DEFAULT_UNIDENTIFIED_SEND_RATE_LIMIT) ?? DEFAULT_UNIDENTIFIED_SEND_RATE_LIMIT,
    accessKeyFailure: pick(o, 'accessKeyFailure', DEFAULT_ACCESS_KEY_FAILURE_RATE_LIMIT) ?? DEFAULT_ACCESS_KEY_FAILURE_RATE_LIMIT,
    presenceSubscribe: pick(o, 'presenceSubscribe', DEFAULT_PRESENCE_SUBSCRIBE_RATE_LIMIT) ?? DEFAULT_PRESENCE_SUBSCRIBE_RATE_LIMIT,
    presenceSet: pick(o, 'presenceSet', DEFAULT_PRESENCE_SET_RATE_LIMIT) ?? DEFAULT_PRESENCE_SET_RATE_LIMIT,
  });
}

/** The key server's limits after flags and `--rate-limits` (which wins): its config's `rateLimits`. */
export function keyServerRateLimits(config: RelayConfig): Partial<KeyServerRateLimits> {
  const out: Partial<Record<keyof KeyServerRateLimits, RateLimitRule>> = {
    register: { capacity: config.registrationsPerHour, windowMs: 60 * MINUTE },
    failedAuth: { capacity: config.authFailuresPerMinute, windowMs: MINUTE },
  };
  for (const name of Object.keys(DEFAULT_KEY_SERVER_CONFIG.rateLimits) as Array<keyof KeyServerRateLimits>) {
    const o = config.rateLimits[name];
    if (o !== undefined && o !== 'off') out[name] = { capacity: o.capacity, windowMs: o.windowMs };
  }
  return out;
}

/** Who sends. */
export interface Sender {
  readonly aci: Aci;
  readonly deviceId: DeviceId;
}

/**
 * A token from `limiter` for `key`; a refusal is counted under `label` in
 * `parley_relay_rate_limited_total` and thrown on (ParleyError RATE_LIMITED).
 */
async function takeToken(limiter: RateLimiter, key: string, label: string, metrics: RelayMetrics): Promise<void> {
  await enforceRateLimit(limiter, key).catch((err: unknown) => {
    if (isParleyError(err) && err.code === 'RATE_LIMITED') metrics.rateLimitHit(label);
    throw err;
  });
}

/**
 * Builds the admission check of Send frames: a token from the sending device's bucket, then
 * one from its account's. A device flooding runs dry on its own bucket first and leaves the
 * account's to its other devices.
 * @returns a function that resolves when the send may go on.
 * @throws (the returned function) ParleyError RATE_LIMITED with `retryAfterMs`.
 */
export function createSendAdmission(
  backend: RateLimiterBackend,
  limits: Pick<RelayOwnRateLimits, 'sendPerDevice' | 'sendPerAccount'>,
  metrics: RelayMetrics,
): (sender: Sender) => Promise<void> {
  const perDevice: RateLimiter | undefined = limits.sendPerDevice && backend.limiter('sendPerDevice', limits.sendPerDevice);
  const perAccount: RateLimiter | undefined = limits.sendPerAccount && backend.limiter('sendPerAccount', limits.sendPerAccount);
  return async (sender) => {
    if (perDevice) await takeToken(perDevice, `${sender.aci}.${sender.deviceId}`, 'send_per_device', metrics);
    if (perAccount) await takeToken(perAccount, sender.aci, 'send_per_account', metrics);
  };
}

/**
 * Builds the check of an identified Send frame's destination: a token from the (sending account,
 * destination account) bucket; sends to one's own account are not counted.
 * @returns a function that resolves when the send may go on.
 * @throws (the returned function) ParleyError RATE_LIMITED with `retryAfterMs`.
 */
export function createDestinationAdmission(
  backend: RateLimiterBackend,
  limits: Pick<RelayOwnRateLimits, 'sendPerDestination'>,
  metrics: RelayMetrics,
): (sender: Sender, destination: Aci) => Promise<void> {
  const limiter: RateLimiter | undefined = limits.sendPerDestination && backend.limiter('sendPerDestination', limits.sendPerDestination);
  return async (sender, destination) => {
    if (!limiter || destination === sender.aci) return;
    await takeToken(limiter, `${sender.aci}>${destination}`, 'send_per_destination', metrics);
  };
}

/**
 * Builds the admission check of frames on unidentified sockets: a token from the client
 * address's bucket (the relay does not know the sender).
 * @throws (the returned function) ParleyError RATE_LIMITED with `retryAfterMs`.
 */
export function createUnidentifiedAdmission(backend: RateLimiterBackend, limits: Pick<RelayOwnRateLimits, 'unidentifiedSend'>, metrics: RelayMetrics): (clientAddress: string) => Promise<void> {
  const limiter = backend.limiter('unidentifiedSend', limits.unidentifiedSend);
  return (clientAddress) => takeToken(limiter, clientAddress, 'unidentified_send', metrics);
}
