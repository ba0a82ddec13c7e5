// SPDX-License-Identifier: AGPL-3.0-only
/**
 * The push port (DESIGN §10, §12): one content-free wake-up to one device token. The embedded
 * default only logs (`push/log-push-sender.ts`); the real providers are APNs
 * (`push/apns-push-sender.ts`, through `@parse/node-apn`) and FCM (`push/fcm-push-sender.ts`,
 * through `firebase-admin`). All three pass one contract suite (`describePushSenderContract` in
 * `@parley/relay/testing`).
 *
 * Invariants every adapter keeps:
 * - What reaches the provider is a constant: the same bytes for every device and every message
 *   (one variant for urgent, one for non-urgent wake-ups). No content, no sender, no ids: the
 *   woken app fetches its queue over its own authenticated connection.
 * - `send` never rejects: every failure is one of the typed outcomes below.
 * - The token is a secret: it never appears in a log line, an outcome's `reason` or an error.
 */
import type { PushProvider } from '@parley/protocol';

/** A provider a device registers its token with (`PUT /v1/devices/me/push`). */
export type PushProviderName = PushProvider;

/** Every provider a token can name, in a fixed order. */
export const PUSH_PROVIDERS: readonly PushProviderName[] = Object.freeze(['apns', 'fcm']);

/** One wake-up to send. */
export interface WakeUp {
  /** The provider's device token. Secret: never logged. */
  readonly token: string;
  /** True: wake at high priority; false: the provider may hold it back to save power. */
  readonly urgent: boolean;
  /** The device as `<aci>.<deviceId>`, for log lines only; never sent to the provider. */
  readonly device: string;
}

/**
 * How one attempt ended:
 * - `delivered`: the provider accepted the wake-up (delivery to the device is its business);
 * - `dead-token`: the provider says the token is invalid or no longer registered; the caller
 *   removes it;
 * - `retry`: a failure that may pass (network, timeout, provider overloaded or down); the caller
 *   tries again later, after `retryAfterMs` when the provider named a time;
 * - `failed`: a failure that retrying will not fix and that is not the token's fault (wrong
 *   credentials or topic, a refused payload); the token is kept.
 * `reason` is a short provider code or error name for logs and never holds the token.
 */
export type PushOutcome =
  | { readonly kind: 'delivered' }
  | { readonly kind: 'dead-token'; readonly reason: string }
  | { readonly kind: 'retry'; readonly reason: string; readonly retryAfterMs?: number }
  | { readonly kind: 'failed'; readonly reason: string };

/** Sends wake-ups through one provider. */
export interface PushSender {
  /** The metric label: the provider, or `log` for the log-only adapter. */
  readonly name: 'apns' | 'fcm' | 'log';
  /** Sends one wake-up. Never rejects; after `close` it answers `failed`. */
  send(wakeUp: WakeUp): Promise<PushOutcome>;
  /** Closes connections to the provider; idempotent. */
  close(): Promise<void>;
}
