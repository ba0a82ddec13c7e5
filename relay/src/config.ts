// SPDX-License-Identifier: AGPL-3.0-only
/**
 * The relay's configuration: one schema, every default in one place, validated at startup and
 * frozen (CONVENTIONS 9). Only the binary's entry reads argv and the environment.
 */
import { BlockList, isIP } from 'node:net';
import { LIMITS, parseDomain } from '@parley/protocol';
import { checkRateLimitOverrides, type RateLimitOverrides } from './rate-limits.js';
import { attachmentConfigProblem, type AttachmentConfig } from './attachments/attachment-config.js';
import { DEFAULT_PUSH_CONFIG, pushConfigProblem, type PushConfig } from './push/push-config.js';

/** Every setting of a relay process. Units are in the names. The attachment and push settings are documented in AttachmentConfig and PushConfig. */
export interface RelayConfig extends AttachmentConfig, PushConfig {
  /** Address to listen on. Default 127.0.0.1. */
  readonly host: string;
  /** TCP port; 0 picks a free one. Default 7070. */
  readonly port: number;
  /** Directory for the embedded databases. Default ./data. */
  readonly dataDir: string;
  /** The domain this relay serves (addresses are user@domain). Default localhost. */
  readonly domain: string;
  /** Largest WebSocket message accepted, bytes. Default LIMITS.maxFrameBytes (1 MiB). */
  readonly maxFrameBytes: number;
  /** Largest ciphertext for one device, bytes. Default LIMITS.maxEnvelopeBytes (256 KiB). */
  readonly maxEnvelopeBytes: number;
  /** Unacknowledged envelopes in flight per connection. Default 1024. */
  readonly windowEnvelopes: number;
  /** Queue cap per device, envelopes; past it senders get QUEUE_FULL. Default 100,000. */
  readonly maxQueueDepth: number;
  /** How long queued envelopes and message-id dedup entries live, ms. Default 30 days. */
  readonly retentionMs: number;
  /** Device cap per account. Default 16. */
  readonly maxDevicesPerAccount: number;
  /** Interval of WebSocket pings; a connection silent for two intervals is dropped, ms. Default 30,000. */
  readonly keepaliveIntervalMs: number;
  /** Most sends committed in one transaction. Default 2,048. */
  readonly commitBatchMax: number;
  /** Most sends waiting for a commit before new ones are refused (RATE_LIMITED). Default 50,000. */
  readonly commitQueueMax: number;
  /** SQLite durability: 'full' fsyncs every commit; 'normal' survives a process crash, not power loss. Default full. */
  readonly sqliteSynchronous: 'full' | 'normal';
  /** Interval of the expiry sweep, ms. Default 60,000. */
  readonly expirySweepIntervalMs: number;
  /** Account registrations allowed per client address per hour. Default 50. */
  readonly registrationsPerHour: number;
  /** Log level (pino). Default info. */
  readonly logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  /** How long a graceful shutdown waits for commits and sockets, ms. Default 10,000. */
  readonly shutdownGraceMs: number;
  /** PEM certificate chain file; with `tlsKeyFile` the relay serves HTTPS and WSS. Default none (plain HTTP). */
  readonly tlsCertFile: string | undefined;
  /** PEM private key file of `tlsCertFile`. Default none. */
  readonly tlsKeyFile: string | undefined;
  /**
   * A TLS-terminating proxy sits in front: plain HTTP is allowed on a non-loopback address, and
   * client addresses come from the last X-Forwarded-For hop. Default false.
   */
  readonly behindProxy: boolean;
  /** Bearer token /metrics requires, at least 16 characters. Default none (/metrics is open). */
  readonly metricsToken: string | undefined;
  /** Send frames per account (all its devices together) per minute, as a burst refilled over a minute; 0 = no limit. Default 1,800. */
  readonly sendsPerAccountPerMinute: number;
  /** Send frames per device per minute, as a burst refilled over a minute; 0 = no limit. Default 600. */
  readonly sendsPerDevicePerMinute: number;
  /** Failed authentications per client address per minute; past it every attempt is refused. Default 50. */
  readonly authFailuresPerMinute: number;
  /** Any limit by name (`--rate-limits`), winning over the flags above. Default none. */
  readonly rateLimits: RateLimitOverrides;
  /** Redis for the rate limits of relay and key server and for presence, shared by every node (`redis://…`). Default none (in process). */
  readonly redisUrl: string | undefined;
  /** Lifetime of an issued sealed-sender certificate, ms, 1 minute..7 days. Default 24 hours. */
  readonly senderCertificateTtlMs: number;
  /** Recipient accounts one SendMulti may name. Default LIMITS.maxMultiRecipients (1,000). */
  readonly maxMultiRecipients: number;
  /**
   * Largest SendMulti payload (the whole sealed-sender v2 upload), bytes, 1 KiB..maxFrameBytes.
   * Separate from maxEnvelopeBytes, which still caps what one device receives (header plus the
   * shared body). Default LIMITS.maxMultiPayloadBytes (512 KiB).
   */
  readonly maxMultiPayloadBytes: number;
  /**
   * How long a device's presence lasts without a heartbeat, ms; heartbeats come every
   * `keepaliveIntervalMs`. At least two keepalive intervals. Default none: three keepalive
   * intervals (see {@link presenceTtlMs}).
   */
  readonly presenceTtlMs: number | undefined;
  /** Most accounts one connection may subscribe to in one PresenceSubscribe. Default 1,000. */
  readonly presenceMaxTargets: number;
  /** Most connections of one relay process subscribed to one account; past it targets are refused. Default 10,000. */
  readonly presenceMaxSubscribersPerAccount: number;
}

/** Heartbeat lifetime when none is configured: three keepalive intervals. */
export const PRESENCE_TTL_KEEPALIVES = 3;

/** The presence heartbeat lifetime in effect, ms. */
export function presenceTtlMs(config: RelayConfig): number {
  return config.presenceTtlMs ?? PRESENCE_TTL_KEEPALIVES * config.keepaliveIntervalMs;
}

/** The defaults, in one place. */
export const DEFAULT_RELAY_CONFIG: RelayConfig = Object.freeze({
  host: '127.0.0.1',
  port: 7070,
  dataDir: './data',
  domain: 'localhost',
  maxFrameBytes: LIMITS.maxFrameBytes,
  maxEnvelopeBytes: LIMITS.maxEnvelopeBytes,
  windowEnvelopes: LIMITS.defaultWindowEnvelopes,
  maxQueueDepth: LIMITS.defaultMaxQueueDepth,
  retentionMs: LIMITS.defaultRetentionMs,
  maxDevicesPerAccount: LIMITS.defaultMaxDevicesPerAccount,
  keepaliveIntervalMs: 30_000,
  commitBatchMax: 2048,
  commitQueueMax: 50_000,
  sqliteSynchronous: 'full',
  expirySweepIntervalMs: 60_000,
  registrationsPerHour: 50,
  logLevel: 'info',
  shutdownGraceMs: 10_000,
  tlsCertFile: undefined,
  tlsKeyFile: undefined,
  behindProxy: false,
  metricsToken: undefined,
  sendsPerAccountPerMinute: 1800,
  sendsPerDevicePerMinute: 600,
  authFailuresPerMinute: 50,
  rateLimits: Object.freeze({}),
  redisUrl: undefined,
  senderCertificateTtlMs: 24 * 3600 * 1000,
  maxMultiRecipients: LIMITS.maxMultiRecipients,
  maxMultiPayloadBytes: LIMITS.maxMultiPayloadBytes,
  presenceTtlMs: undefined,
  presenceMaxTargets: 1000,
  presenceMaxSubscribersPerAccount: 10_000,
  attachmentStore: 'filesystem',
  maxAttachmentBytes: 100 * 1024 * 1024,
  attachmentSlotsPerHour: 200,
  s3Bucket: undefined,
  s3Endpoint: undefined,
  s3Region: 'us-east-1',
  s3AccessKeyId: undefined,
  s3SecretAccessKey: undefined,
  s3ForcePathStyle: false,
  ...DEFAULT_PUSH_CONFIG,
});

/** A configuration value that is out of range; the message names the setting. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  readonly code = 'INVALID_CONFIG';
}

function intIn(name: string, v: unknown, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw new ConfigError(`${name} must be an integer from ${min} to ${max} (got ${String(v)})`);
  }
  return v;
}

/** Merges `partial` over the defaults, checks every value, and freezes the result. */
export function resolveRelayConfig(partial: Partial<RelayConfig> = {}): RelayConfig {
  const known = new Set(Object.keys(DEFAULT_RELAY_CONFIG));
  for (const key of Object.keys(partial)) {
    if (!known.has(key)) throw new ConfigError(`unknown setting ${key}`);
  }
  const c = { ...DEFAULT_RELAY_CONFIG, ...Object.fromEntries(Object.entries(partial).filter(([, v]) => v !== undefined)) } as RelayConfig;
  if (typeof c.host !== 'string' || c.host.length === 0) throw new ConfigError('host must be a non-empty address');
  intIn('port', c.port, 0, 65535);
  if (typeof c.dataDir !== 'string' || c.dataDir.length === 0) throw new ConfigError('dataDir must be a path');
  try {
    parseDomain(c.domain);
  } catch {
    throw new ConfigError(`domain must be a host name, optionally with :port (got ${JSON.stringify(c.domain)})`);
  }
  intIn('maxFrameBytes', c.maxFrameBytes, 1024, 64 * 1024 * 1024);
  intIn('maxEnvelopeBytes', c.maxEnvelopeBytes, 256, c.maxFrameBytes);
  intIn('windowEnvelopes', c.windowEnvelopes, 1, 65_536);
  intIn('maxQueueDepth', c.maxQueueDepth, 1, 100_000_000);
  intIn('retentionMs', c.retentionMs, 1000, 365 * 24 * 3600 * 1000);
  intIn('maxDevicesPerAccount', c.maxDevicesPerAccount, 1, LIMITS.maxDevicesPerSend);
  intIn('keepaliveIntervalMs', c.keepaliveIntervalMs, 100, 3_600_000);
  intIn('commitBatchMax', c.commitBatchMax, 1, 100_000);
  intIn('commitQueueMax', c.commitQueueMax, c.commitBatchMax, 10_000_000);
  if (c.sqliteSynchronous !== 'full' && c.sqliteSynchronous !== 'normal') throw new ConfigError('sqliteSynchronous must be full or normal');
  intIn('expirySweepIntervalMs', c.expirySweepIntervalMs, 100, 86_400_000);
  intIn('registrationsPerHour', c.registrationsPerHour, 1, 10_000_000);
  if (!['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].includes(c.logLevel)) throw new ConfigError('logLevel is not a pino level');
  intIn('shutdownGraceMs', c.shutdownGraceMs, 0, 600_000);
  intIn('senderCertificateTtlMs', c.senderCertificateTtlMs, 60_000, 7 * 24 * 3600 * 1000);
  intIn('maxMultiRecipients', c.maxMultiRecipients, 1, 100_000);
  // The default follows a lowered frame cap instead of turning into a configuration error.
  const maxMultiPayloadBytes = partial.maxMultiPayloadBytes === undefined ? Math.min(c.maxMultiPayloadBytes, c.maxFrameBytes) : c.maxMultiPayloadBytes;
  intIn('maxMultiPayloadBytes', maxMultiPayloadBytes, 1024, c.maxFrameBytes);
  if (c.presenceTtlMs !== undefined) intIn('presenceTtlMs', c.presenceTtlMs, 2 * c.keepaliveIntervalMs, 86_400_000);
  intIn('presenceMaxTargets', c.presenceMaxTargets, 1, 100_000);
  intIn('presenceMaxSubscribersPerAccount', c.presenceMaxSubscribersPerAccount, 1, 10_000_000);
  const rateLimits = checkRateLimitSettings(c);
  const attachmentProblem = attachmentConfigProblem(c);
  if (attachmentProblem) throw new ConfigError(attachmentProblem);
  const pushProblem = pushConfigProblem(c);
  if (pushProblem) throw new ConfigError(pushProblem);
  checkListenSafety(c);
  return Object.freeze({ ...c, domain: parseDomain(c.domain), rateLimits, maxMultiPayloadBytes });
}

/**
 * True for addresses only this machine can reach: 127.0.0.0/8, ::1 (also IPv4-mapped) and the
 * name `localhost`. Any other name counts as public: what it resolves to is not known here.
 */
export function isLoopbackHost(host: string): boolean {
  const h = host.toLowerCase().replace(/^\[|\]$/g, '');
  if (h === 'localhost') return true;
  const family = isIP(h);
  if (family === 0) return false;
  const loopback = new BlockList();
  loopback.addSubnet('127.0.0.0', 8, 'ipv4');
  loopback.addAddress('::1', 'ipv6');
  // BlockList matches IPv4-mapped IPv6 addresses (::ffff:127.0.0.1) against the IPv4 rule.
  return loopback.check(h, family === 6 ? 'ipv6' : 'ipv4');
}

/** Rate limit flags, `--rate-limits` and `--redis`; returns the overrides, frozen. */
function checkRateLimitSettings(c: RelayConfig): RateLimitOverrides {
  intIn('sendsPerAccountPerMinute', c.sendsPerAccountPerMinute, 0, 10_000_000);
  intIn('sendsPerDevicePerMinute', c.sendsPerDevicePerMinute, 0, 10_000_000);
  intIn('authFailuresPerMinute', c.authFailuresPerMinute, 1, 1_000_000);
  if (c.redisUrl !== undefined && (typeof c.redisUrl !== 'string' || !/^rediss?:\/\/[^/\s]+/.test(c.redisUrl))) {
    throw new ConfigError('--redis must be a redis:// or rediss:// URL');
  }
  try {
    return checkRateLimitOverrides(c.rateLimits);
  } catch (err) {
    throw new ConfigError(`--rate-limits: ${(err as Error).message}`);
  }
}

function optionalText(name: string, v: unknown): void {
  if (v !== undefined && (typeof v !== 'string' || v.length === 0)) throw new ConfigError(`${name} must be a non-empty string`);
}

/** TLS settings hang together, and a public address needs TLS or a proxy in front (DESIGN §13). */
function checkListenSafety(c: RelayConfig): void {
  optionalText('tlsCertFile', c.tlsCertFile);
  optionalText('tlsKeyFile', c.tlsKeyFile);
  if ((c.tlsCertFile === undefined) !== (c.tlsKeyFile === undefined)) {
    throw new ConfigError('--tls-cert and --tls-key go together: give both or neither');
  }
  if (typeof c.behindProxy !== 'boolean') throw new ConfigError('behindProxy must be true or false');
  optionalText('metricsToken', c.metricsToken);
  if (c.metricsToken !== undefined && c.metricsToken.length < 16) throw new ConfigError('--metrics-token must have at least 16 characters');
  if (c.tlsCertFile === undefined && !c.behindProxy && !isLoopbackHost(c.host)) {
    throw new ConfigError(
      `refusing to listen on ${c.host} without TLS: give --tls-cert and --tls-key, or --behind-proxy if a TLS-terminating proxy sits in front of the relay`,
    );
  }
}
