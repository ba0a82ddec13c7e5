// SPDX-License-Identifier: AGPL-3.0-only
/**
 * The APNs adapter of the push port, on `@parse/node-apn` with token-based (JWT, ES256)
 * authentication: the provider key (.p8), its key id and the team id sign a short-lived bearer
 * token that the library renews; each wake-up is one HTTP/2 POST to `/3/device/<token>`.
 *
 * What APNs receives is one of two constant payloads (see {@link APNS_WAKE_UP}):
 * - urgent: an `alert` push at priority 10 with `mutable-content`, so the app's notification
 *   service extension runs, fetches the queue over its own connection, decrypts and shows the
 *   message; the alert itself is a fixed localization key, never text from the message;
 * - not urgent: a `background` push (`content-available`) at priority 5, which iOS delivers when
 *   it suits the battery (APNs refuses priority 10 for a push that only sets content-available).
 * Both carry the same collapse id, so APNs keeps only the newest undelivered wake-up per device.
 *
 * The library's own retries are off (`connectionRetryLimit: 0`): it retries at once, without
 * backoff; the wake-up scheduler retries with backoff instead. Its `debug` loggers are silenced
 * because they print device tokens.
 */
import apn from '@parse/node-apn';
import type { Clock } from '../clock.js';
import type { PushOutcome, PushSender, WakeUp } from '../ports/push-sender.js';

/** The `apns-collapse-id` of every wake-up. */
export const APNS_COLLAPSE_ID = 'parley-wake';

/** The two wake-ups APNs can get: headers that vary and the exact JSON body. */
export const APNS_WAKE_UP = Object.freeze({
  urgent: Object.freeze({
    pushType: 'alert' as const,
    priority: 10,
    body: '{"aps":{"alert":{"loc-key":"PARLEY_WAKE"},"mutable-content":1},"parley":"wake"}',
  }),
  normal: Object.freeze({
    pushType: 'background' as const,
    priority: 5,
    body: '{"aps":{"content-available":1},"parley":"wake"}',
  }),
});

/** Reasons APNs gives for a token that will never work again for this topic. */
const DEAD_TOKEN_REASONS = new Set(['BadDeviceToken', 'Unregistered', 'DeviceTokenNotForTopic', 'ExpiredToken']);
/** HTTP statuses worth another attempt later (APNs overloaded, down, or our JWT just expired). */
const RETRY_STATUSES = new Set([408, 429, 500, 502, 503, 504]);

/** Longest wait for node-apn to close its connection. */
const SHUTDOWN_WAIT_MS = 1000;

/** Options of {@link createApnsPushSender}. */
export interface ApnsPushSenderOptions {
  /** The provider token signing key: the PEM text of Apple's .p8 file (EC P-256). Secret. */
  readonly key: string | Buffer;
  /** The key's 10-character id from the Apple developer account. */
  readonly keyId: string;
  /** The 10-character team id. */
  readonly teamId: string;
  /** The app's bundle id (the `apns-topic`). */
  readonly topic: string;
  /** Production APNs (`api.push.apple.com`) when true, the sandbox otherwise. */
  readonly production: boolean;
  /** Another host than Apple's (a test stand-in, a proxy in front of APNs). Default Apple's. */
  readonly host?: string;
  /** Port of `host`. Default 443. */
  readonly port?: number;
  /** PEM certificates to trust for `host` instead of the system CAs. Default the system CAs. */
  readonly ca?: string | Buffer;
  /** How long APNs keeps a wake-up for a device it cannot reach, ms. Default 1 day. */
  readonly expiryMs?: number;
  /** Longest wait for APNs' answer, ms. Default 10,000. */
  readonly requestTimeoutMs?: number;
  /** Wall time for `apns-expiration`. */
  readonly clock: Clock;
}

/** One failed request as node-apn reports it (never logged whole: `device` is the token). */
interface ApnsFailure {
  readonly status?: number | string;
  readonly response?: { readonly reason?: string };
  readonly error?: { readonly message?: string; readonly name?: string };
}

/** Maps one failure of node-apn to an outcome. */
export function classifyApnsFailure(failure: ApnsFailure): PushOutcome {
  // Timeouts and connection failures come without a number (node-apn puts '(timeout)' there).
  const status = typeof failure.status === 'number' ? failure.status : undefined;
  if (status === undefined) return { kind: 'retry', reason: 'network' };
  // node-apn keeps APNs' reason in `response`, except for the expired JWT, which it renews and
  // reports as an error named after the reason.
  const expiredJwt = status === 403 && failure.error?.message === 'ExpiredProviderToken';
  const reason = failure.response?.reason ?? (expiredJwt ? 'ExpiredProviderToken' : `HTTP ${status}`);
  if (status === 410 || DEAD_TOKEN_REASONS.has(reason)) return { kind: 'dead-token', reason };
  if (RETRY_STATUSES.has(status) || expiredJwt) return { kind: 'retry', reason };
  return { kind: 'failed', reason };
}

/** Builds the APNs adapter. @throws Error when node-apn refuses the key or options. */
export function createApnsPushSender(options: ApnsPushSenderOptions): PushSender {
  const provider = new apn.Provider({
    token: { key: options.key, keyId: options.keyId, teamId: options.teamId },
    production: options.production,
    ...(options.host !== undefined ? { address: options.host } : {}),
    port: options.port ?? 443,
    ...(options.ca !== undefined ? { ca: [options.ca] } : {}),
    connectionRetryLimit: 0,
    requestTimeout: options.requestTimeoutMs ?? 10_000,
  });
  // node-apn's loggers are `debug` instances that print tokens when DEBUG=apn is set.
  const silent = Object.assign(() => {}, { enabled: false });
  (provider as unknown as { client?: { setLogger?: (l: unknown, e: unknown) => void } }).client?.setLogger?.(silent, silent);
  const expiryMs = options.expiryMs ?? 86_400_000;
  let closed = false;
  return {
    name: 'apns',
    async send(wakeUp: WakeUp): Promise<PushOutcome> {
      if (closed) return { kind: 'failed', reason: 'closed' };
      const variant = wakeUp.urgent ? APNS_WAKE_UP.urgent : APNS_WAKE_UP.normal;
      const note = new apn.Notification();
      note.topic = options.topic;
      note.pushType = variant.pushType;
      note.priority = variant.priority;
      note.collapseId = APNS_COLLAPSE_ID;
      note.expiry = Math.floor((options.clock.now() + expiryMs) / 1000);
      // The exact bytes: a raw payload is sent as it is, without the library adding keys.
      note.rawPayload = JSON.parse(variant.body) as object;
      try {
        const result = await provider.send(note, wakeUp.token);
        if (result.sent.length === 1) return { kind: 'delivered' };
        const failure = result.failed[0];
        return failure ? classifyApnsFailure(failure) : { kind: 'retry', reason: 'no answer' };
      } catch {
        return { kind: 'retry', reason: 'network' };
      }
    },
    async close() {
      if (closed) return;
      closed = true;
      // node-apn's shutdown never calls back when its session died of a connection error (it
      // waits for a graceful close of a destroyed session); its timers are gone by then anyway.
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, SHUTDOWN_WAIT_MS);
        provider.shutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    },
  };
}
