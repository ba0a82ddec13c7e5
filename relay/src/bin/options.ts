// SPDX-License-Identifier: AGPL-3.0-only
/**
 * Command-line flags and environment variables of `parley-relay`, one table: each setting has
 * a flag, an env var and a parser. Flags win over the environment, which wins over defaults.
 */
import { parseArgs } from 'node:util';
import { ConfigError, DEFAULT_RELAY_CONFIG, resolveRelayConfig, type RelayConfig } from '../config.js';
import { parseRateLimitSpec } from '../rate-limits.js';

/** One setting: its config key, flag, env var, parser kind and help line. */
export interface OptionSpec {
  readonly key: keyof RelayConfig;
  readonly flag: string;
  readonly env: string;
  /** `flag`: a switch without a value (env: 1/true/yes or 0/false/no); `limits`: `name=CAPACITY/WINDOW,…`. */
  readonly kind: 'string' | 'int' | 'flag' | 'limits';
  readonly help: string;
  /** Converts the given unit to the config's unit (e.g. days to ms). */
  readonly scale?: number;
  readonly unit?: string;
  /** How --help and the docs show a default that is derived from other settings. */
  readonly defaultText?: string;
}

/** Every option, in the order --help lists them. */
export const RELAY_OPTIONS: readonly OptionSpec[] = [
  { key: 'host', flag: 'host', env: 'PARLEY_HOST', kind: 'string', help: 'address to listen on' },
  { key: 'port', flag: 'port', env: 'PARLEY_PORT', kind: 'int', help: 'TCP port (0 = any free port)' },
  { key: 'dataDir', flag: 'data', env: 'PARLEY_DATA', kind: 'string', help: 'directory of the embedded databases' },
  { key: 'domain', flag: 'domain', env: 'PARLEY_DOMAIN', kind: 'string', help: 'domain this relay serves (user@domain)' },
  { key: 'maxDevicesPerAccount', flag: 'max-devices', env: 'PARLEY_MAX_DEVICES', kind: 'int', help: 'devices per account' },
  { key: 'maxQueueDepth', flag: 'max-queue', env: 'PARLEY_MAX_QUEUE', kind: 'int', help: 'queued envelopes per device before QUEUE_FULL' },
  { key: 'retentionMs', flag: 'retention-days', env: 'PARLEY_RETENTION_DAYS', kind: 'int', scale: 86_400_000, unit: 'days', help: 'how long undelivered envelopes and dedup entries live' },
  { key: 'windowEnvelopes', flag: 'window', env: 'PARLEY_WINDOW', kind: 'int', help: 'unacknowledged envelopes in flight per connection' },
  { key: 'maxFrameBytes', flag: 'max-frame-bytes', env: 'PARLEY_MAX_FRAME_BYTES', kind: 'int', help: 'largest WebSocket message' },
  { key: 'maxEnvelopeBytes', flag: 'max-envelope-bytes', env: 'PARLEY_MAX_ENVELOPE_BYTES', kind: 'int', help: 'largest ciphertext per device' },
  { key: 'maxMultiRecipients', flag: 'max-multi-recipients', env: 'PARLEY_MAX_MULTI_RECIPIENTS', kind: 'int', help: 'recipient accounts one multi-recipient (group) send may name' },
  { key: 'maxMultiPayloadBytes', flag: 'max-multi-payload-bytes', env: 'PARLEY_MAX_MULTI_PAYLOAD_BYTES', kind: 'int', help: 'largest multi-recipient upload (at most --max-frame-bytes)' },
  { key: 'senderCertificateTtlMs', flag: 'sender-certificate-hours', env: 'PARLEY_SENDER_CERTIFICATE_HOURS', kind: 'int', scale: 3_600_000, unit: 'hours', help: 'lifetime of the sealed-sender certificates devices fetch' },
  { key: 'keepaliveIntervalMs', flag: 'keepalive-ms', env: 'PARLEY_KEEPALIVE_MS', kind: 'int', help: 'ping interval; silent sockets are dropped after two' },
  { key: 'sqliteSynchronous', flag: 'sqlite-sync', env: 'PARLEY_SQLITE_SYNC', kind: 'string', help: "'full' (fsync each commit) or 'normal' (survives a crash of the process, not of the machine)" },
  { key: 'registrationsPerHour', flag: 'registrations-per-hour', env: 'PARLEY_REGISTRATIONS_PER_HOUR', kind: 'int', help: 'account registrations per client address per hour' },
  { key: 'sendsPerAccountPerMinute', flag: 'rate-limit-sends-per-minute', env: 'PARLEY_RATE_LIMIT_SENDS_PER_MINUTE', kind: 'int', help: 'sends per account (all its devices) per minute, sustained (its bucket holds at least 3,000: a large group\'s key distribution at once); 0 = no limit' },
  { key: 'sendsPerDevicePerMinute', flag: 'rate-limit-device-sends-per-minute', env: 'PARLEY_RATE_LIMIT_DEVICE_SENDS_PER_MINUTE', kind: 'int', help: 'sends per device per minute, sustained (its bucket holds at least 2,000); 0 = no limit' },
  { key: 'authFailuresPerMinute', flag: 'rate-limit-auth-failures-per-minute', env: 'PARLEY_RATE_LIMIT_AUTH_FAILURES_PER_MINUTE', kind: 'int', help: 'failed authentications per client address per minute' },
  { key: 'rateLimits', flag: 'rate-limits', env: 'PARLEY_RATE_LIMITS', kind: 'limits', help: 'any limit by name: name=CAPACITY/WINDOW[,…], WINDOW in ms|s|m|h|d, e.g. sendPerDevice=60/1m,claimPerTarget=100/10m (docs/operations.md lists the names)' },
  { key: 'redisUrl', flag: 'redis', env: 'PARLEY_REDIS_URL', kind: 'string', help: 'redis:// URL: keep rate limits and presence in Redis, shared by every relay node (prefer the env var when the URL holds a password)' },
  { key: 'presenceTtlMs', flag: 'presence-ttl-ms', env: 'PARLEY_PRESENCE_TTL_MS', kind: 'int', defaultText: '3 × keepalive', help: 'how long a device shows online without a heartbeat (its relay node died); at least two keepalive intervals' },
  { key: 'presenceMaxTargets', flag: 'presence-max-targets', env: 'PARLEY_PRESENCE_MAX_TARGETS', kind: 'int', help: 'accounts one connection may subscribe to for presence' },
  { key: 'presenceMaxSubscribersPerAccount', flag: 'presence-max-subscribers', env: 'PARLEY_PRESENCE_MAX_SUBSCRIBERS', kind: 'int', help: 'connections of this process subscribed to one account' },
  { key: 'attachmentStore', flag: 'attachment-store', env: 'PARLEY_ATTACHMENT_STORE', kind: 'string', help: "where attachments are kept: 'filesystem' (DATA/attachments) or 's3'" },
  { key: 'maxAttachmentBytes', flag: 'max-attachment-bytes', env: 'PARLEY_MAX_ATTACHMENT_BYTES', kind: 'int', help: 'largest attachment (file size; its encrypted blob is up to 5% larger)' },
  { key: 'attachmentSlotsPerHour', flag: 'attachment-slots-per-hour', env: 'PARLEY_ATTACHMENT_SLOTS_PER_HOUR', kind: 'int', help: 'attachment uploads a device may start per hour' },
  { key: 's3Bucket', flag: 's3-bucket', env: 'PARLEY_S3_BUCKET', kind: 'string', help: 'S3 bucket for attachments (with --attachment-store s3)' },
  { key: 's3Endpoint', flag: 's3-endpoint', env: 'PARLEY_S3_ENDPOINT', kind: 'string', help: 'S3 service URL (MinIO, Ceph…); default AWS' },
  { key: 's3Region', flag: 's3-region', env: 'PARLEY_S3_REGION', kind: 'string', help: 'S3 region' },
  { key: 's3ForcePathStyle', flag: 's3-path-style', env: 'PARLEY_S3_PATH_STYLE', kind: 'flag', help: 'path-style S3 URLs (endpoint/bucket/key), needed by most non-AWS services' },
  { key: 's3AccessKeyId', flag: 's3-access-key-id', env: 'PARLEY_S3_ACCESS_KEY_ID', kind: 'string', help: "S3 access key id (with the secret; default the AWS SDK's credential chain)" },
  { key: 's3SecretAccessKey', flag: 's3-secret-access-key', env: 'PARLEY_S3_SECRET_ACCESS_KEY', kind: 'string', help: 'S3 secret access key (give it by the env var: flags show in ps)' },
  { key: 'pushApnsKeyFile', flag: 'push-apns-key-file', env: 'PARLEY_PUSH_APNS_KEY_FILE', kind: 'string', help: "APNs provider token key (Apple's .p8 file): with the key id, team id and topic, wake iOS devices through APNs" },
  { key: 'pushApnsKeyId', flag: 'push-apns-key-id', env: 'PARLEY_PUSH_APNS_KEY_ID', kind: 'string', help: 'the .p8 key\u2019s 10-character key id' },
  { key: 'pushApnsTeamId', flag: 'push-apns-team-id', env: 'PARLEY_PUSH_APNS_TEAM_ID', kind: 'string', help: 'the Apple developer team id' },
  { key: 'pushApnsTopic', flag: 'push-apns-topic', env: 'PARLEY_PUSH_APNS_TOPIC', kind: 'string', help: 'the iOS app\u2019s bundle id' },
  { key: 'pushApnsEnvironment', flag: 'push-apns-environment', env: 'PARLEY_PUSH_APNS_ENVIRONMENT', kind: 'string', help: "'production' or 'sandbox' (development builds of the app)" },
  { key: 'pushApnsEndpoint', flag: 'push-apns-endpoint', env: 'PARLEY_PUSH_APNS_ENDPOINT', kind: 'string', help: "HOST:PORT instead of Apple's APNs host (a proxy, a test stand-in)" },
  { key: 'pushApnsCaFile', flag: 'push-apns-ca-file', env: 'PARLEY_PUSH_APNS_CA_FILE', kind: 'string', help: 'PEM CA certificates to trust for --push-apns-endpoint instead of the system CAs' },
  { key: 'pushFcmServiceAccountFile', flag: 'push-fcm-service-account-file', env: 'PARLEY_PUSH_FCM_SERVICE_ACCOUNT_FILE', kind: 'string', help: 'Google service account JSON file: wake Android devices through FCM' },
  { key: 'pushFcmProjectId', flag: 'push-fcm-project-id', env: 'PARLEY_PUSH_FCM_PROJECT_ID', kind: 'string', help: 'Firebase project to send through (default the service account\u2019s)' },
  { key: 'pushCoalesceMs', flag: 'push-coalesce-ms', env: 'PARLEY_PUSH_COALESCE_MS', kind: 'int', help: 'at most one wake-up per device per this many ms; none when the device connects within it' },
  { key: 'pushMaxPending', flag: 'push-max-pending', env: 'PARLEY_PUSH_MAX_PENDING', kind: 'int', help: 'devices with a wake-up pending at once; beyond it wake-ups are dropped and counted' },
  { key: 'pushRetries', flag: 'push-retries', env: 'PARLEY_PUSH_RETRIES', kind: 'int', help: 'retries of a wake-up after a retryable provider failure, with backoff' },
  { key: 'logLevel', flag: 'log-level', env: 'PARLEY_LOG_LEVEL', kind: 'string', help: 'fatal, error, warn, info, debug, trace or silent' },
  { key: 'tlsCertFile', flag: 'tls-cert', env: 'PARLEY_TLS_CERT', kind: 'string', help: 'PEM certificate chain: serve HTTPS and WSS (with --tls-key)' },
  { key: 'tlsKeyFile', flag: 'tls-key', env: 'PARLEY_TLS_KEY', kind: 'string', help: 'PEM private key of --tls-cert' },
  { key: 'behindProxy', flag: 'behind-proxy', env: 'PARLEY_BEHIND_PROXY', kind: 'flag', help: 'a TLS-terminating proxy is in front: allow plain HTTP on a public address, take client addresses from X-Forwarded-For' },
  { key: 'metricsToken', flag: 'metrics-token', env: 'PARLEY_METRICS_TOKEN', kind: 'string', help: 'bearer token /metrics requires (prefer the env var: flags show in ps)' },
];

/** What the command line asked for. */
export type RelayCommand = { kind: 'help' } | { kind: 'version' } | { kind: 'run'; config: RelayConfig };

/** Parses argv and env into a validated config. @throws ConfigError with a message for the user. */
export function parseRelayCommand(argv: readonly string[], env: Readonly<Record<string, string | undefined>>): RelayCommand {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      options: {
        help: { type: 'boolean', short: 'h' },
        version: { type: 'boolean' },
        ...Object.fromEntries(RELAY_OPTIONS.map((o) => [o.flag, { type: o.kind === 'flag' ? ('boolean' as const) : ('string' as const) }])),
      },
      strict: true,
      allowPositionals: false,
    });
  } catch (err) {
    throw new ConfigError(`${(err as Error).message}. Run parley-relay --help for the options.`);
  }
  if (parsed.values.help) return { kind: 'help' };
  if (parsed.values.version) return { kind: 'version' };
  const partial: Record<string, unknown> = {};
  for (const o of RELAY_OPTIONS) {
    const raw = (parsed.values as Record<string, unknown>)[o.flag] ?? env[o.env];
    if (raw === undefined || raw === '') continue;
    if (o.kind === 'flag') {
      partial[o.key] = parseSwitch(o, raw);
    } else if (o.kind === 'limits') {
      try {
        partial[o.key] = parseRateLimitSpec(String(raw));
      } catch (err) {
        throw new ConfigError(`--${o.flag} (${o.env}): ${(err as Error).message}`);
      }
    } else if (o.kind === 'int') {
      const text = String(raw);
      if (!/^[0-9]+$/.test(text)) throw new ConfigError(`--${o.flag} (${o.env}) must be a whole number (got ${JSON.stringify(text)})`);
      partial[o.key] = Number(text) * (o.scale ?? 1);
    } else {
      partial[o.key] = String(raw);
    }
  }
  return { kind: 'run', config: resolveRelayConfig(partial as Partial<RelayConfig>) };
}

function parseSwitch(o: OptionSpec, raw: unknown): boolean {
  if (raw === true) return true;
  const text = String(raw).toLowerCase();
  if (['1', 'true', 'yes'].includes(text)) return true;
  if (['0', 'false', 'no'].includes(text)) return false;
  throw new ConfigError(`${o.env} must be 1, true, yes, 0, false or no (got ${JSON.stringify(String(raw))})`);
}

/** An option's default as --help and the docs show it. */
export function shownDefault(o: OptionSpec): string {
  if (o.defaultText !== undefined) return o.defaultText;
  const def = DEFAULT_RELAY_CONFIG[o.key];
  if (def === undefined || o.kind === 'limits') return 'none';
  if (o.kind === 'flag') return def ? 'on' : 'off';
  return o.scale ? `${Number(def) / o.scale} ${o.unit}` : String(def);
}

/** The --help text. */
export function relayHelp(): string {
  const rows = RELAY_OPTIONS.map((o) => `  --${o.flag.padEnd(20)} ${o.env.padEnd(26)} ${o.help} (default ${shownDefault(o)})`);
  return [
    'Usage: parley-relay [options]',
    '',
    'Starts a Parley relay with its key server on embedded storage (SQLite files in --data).',
    '',
    'Options (flag, environment variable, meaning):',
    ...rows,
    '  -h, --help                                     show this help',
    '      --version                                  print the version',
    '',
    'SIGTERM or SIGINT shuts down gracefully: clients are told to reconnect, commits are flushed.',
  ].join('\n');
}
