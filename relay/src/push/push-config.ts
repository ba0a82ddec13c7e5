// SPDX-License-Identifier: AGPL-3.0-only
/**
 * The push settings of the relay config: provider credentials (from files: a secret never sits
 * on a command line), the coalescing window and the retry budget. The defaults live in
 * DEFAULT_RELAY_CONFIG with the rest; this module checks them.
 */

/** The push part of RelayConfig. Durations in milliseconds. */
export interface PushConfig {
  /** Apple's provider token key (.p8, PEM); with the key id, team id and topic it turns APNs on. Default none. */
  readonly pushApnsKeyFile: string | undefined;
  /** The .p8 key's 10-character id. Default none. */
  readonly pushApnsKeyId: string | undefined;
  /** The Apple developer team id (10 characters). Default none. */
  readonly pushApnsTeamId: string | undefined;
  /** The iOS app's bundle id (`apns-topic`). Default none. */
  readonly pushApnsTopic: string | undefined;
  /** `production` (api.push.apple.com) or `sandbox` (development builds). Default production. */
  readonly pushApnsEnvironment: 'production' | 'sandbox';
  /** `HOST:PORT` to send to instead of Apple's host (a stand-in, a proxy). Default none. */
  readonly pushApnsEndpoint: string | undefined;
  /** PEM CA certificates to trust for `pushApnsEndpoint` instead of the system's. Default none. */
  readonly pushApnsCaFile: string | undefined;
  /** A Google service account JSON file; it turns FCM on. Default none. */
  readonly pushFcmServiceAccountFile: string | undefined;
  /** The Firebase project to send through; default the service account's. */
  readonly pushFcmProjectId: string | undefined;
  /** Wake-ups per device are at most one per window; a device that connects within it gets none. Default 3,000. */
  readonly pushCoalesceMs: number;
  /** Most devices with a wake-up pending at once; more are dropped and counted. Default 100,000. */
  readonly pushMaxPending: number;
  /** Further attempts after a retryable failure. Default 3. */
  readonly pushRetries: number;
  /** Backoff before the first retry (then doubling, with jitter). Default 1,000. */
  readonly pushRetryBaseMs: number;
  /** Longest backoff between retries. Default 60,000. */
  readonly pushRetryMaxMs: number;
}

/** The push defaults (merged into DEFAULT_RELAY_CONFIG). */
export const DEFAULT_PUSH_CONFIG: PushConfig = Object.freeze({
  pushApnsKeyFile: undefined,
  pushApnsKeyId: undefined,
  pushApnsTeamId: undefined,
  pushApnsTopic: undefined,
  pushApnsEnvironment: 'production',
  pushApnsEndpoint: undefined,
  pushApnsCaFile: undefined,
  pushFcmServiceAccountFile: undefined,
  pushFcmProjectId: undefined,
  pushCoalesceMs: 3000,
  pushMaxPending: 100_000,
  pushRetries: 3,
  pushRetryBaseMs: 1000,
  pushRetryMaxMs: 60_000,
});

/** Apple's key and team ids: 10 upper-case letters and digits. */
const APPLE_ID = /^[A-Z0-9]{10}$/;
/** A bundle id. */
const BUNDLE_ID = /^[A-Za-z0-9][A-Za-z0-9.-]{0,254}$/;

function intProblem(flag: string, v: unknown, min: number, max: number): string | undefined {
  return typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max ? undefined : `${flag} must be an integer from ${min} to ${max}`;
}

/** Parses `HOST:PORT` (IPv6 in brackets). @returns undefined when malformed. */
export function parseHostPort(text: string): { host: string; port: number } | undefined {
  const m = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):([0-9]{1,5})$/.exec(text);
  if (!m) return undefined;
  const port = Number(m[2]);
  if (port < 1 || port > 65535) return undefined;
  return { host: m[1]!.replace(/^\[|\]$/g, ''), port };
}

/** What is wrong with the push settings, or undefined. Messages name the flag, never a secret. */
export function pushConfigProblem(c: PushConfig): string | undefined {
  for (const [flag, v] of [
    ['--push-apns-key-file', c.pushApnsKeyFile],
    ['--push-apns-key-id', c.pushApnsKeyId],
    ['--push-apns-team-id', c.pushApnsTeamId],
    ['--push-apns-topic', c.pushApnsTopic],
    ['--push-apns-endpoint', c.pushApnsEndpoint],
    ['--push-apns-ca-file', c.pushApnsCaFile],
    ['--push-fcm-service-account-file', c.pushFcmServiceAccountFile],
    ['--push-fcm-project-id', c.pushFcmProjectId],
  ] as const) {
    if (v !== undefined && (typeof v !== 'string' || v.length === 0)) return `${flag} must not be empty`;
  }
  const apns = [c.pushApnsKeyFile, c.pushApnsKeyId, c.pushApnsTeamId, c.pushApnsTopic];
  if (apns.some((v) => v !== undefined) && apns.some((v) => v === undefined)) {
    return 'APNs needs --push-apns-key-file, --push-apns-key-id, --push-apns-team-id and --push-apns-topic together';
  }
  if (c.pushApnsKeyId !== undefined && !APPLE_ID.test(c.pushApnsKeyId)) return '--push-apns-key-id must be the 10-character key id (A-Z, 0-9)';
  if (c.pushApnsTeamId !== undefined && !APPLE_ID.test(c.pushApnsTeamId)) return '--push-apns-team-id must be the 10-character team id (A-Z, 0-9)';
  if (c.pushApnsTopic !== undefined && !BUNDLE_ID.test(c.pushApnsTopic)) return '--push-apns-topic must be the app\u2019s bundle id (e.g. org.example.parley)';
  if (c.pushApnsEnvironment !== 'production' && c.pushApnsEnvironment !== 'sandbox') return '--push-apns-environment must be production or sandbox';
  if ((c.pushApnsEndpoint !== undefined || c.pushApnsCaFile !== undefined) && c.pushApnsKeyFile === undefined) {
    return '--push-apns-endpoint and --push-apns-ca-file need the APNs credentials (--push-apns-key-file …)';
  }
  if (c.pushApnsEndpoint !== undefined && !parseHostPort(c.pushApnsEndpoint)) return '--push-apns-endpoint must be HOST:PORT';
  if (c.pushFcmProjectId !== undefined) {
    if (c.pushFcmServiceAccountFile === undefined) return '--push-fcm-project-id needs --push-fcm-service-account-file';
    if (!/^[a-z][a-z0-9-]{4,61}[a-z0-9]$/.test(c.pushFcmProjectId)) return '--push-fcm-project-id must be a Firebase project id (6-63 of a-z, 0-9 and -)';
  }
  return (
    intProblem('--push-coalesce-ms', c.pushCoalesceMs, 0, 3_600_000) ??
    intProblem('--push-max-pending', c.pushMaxPending, 1, 10_000_000) ??
    intProblem('--push-retries', c.pushRetries, 0, 20) ??
    intProblem('pushRetryBaseMs', c.pushRetryBaseMs, 1, 3_600_000) ??
    intProblem('pushRetryMaxMs', c.pushRetryMaxMs, c.pushRetryBaseMs, 86_400_000)
  );
}
