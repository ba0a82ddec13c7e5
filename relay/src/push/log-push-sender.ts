// SPDX-License-Identifier: AGPL-3.0-only
/**
 * The embedded default of the push port: no provider, one structured log line per wake-up (the
 * device and the priority, never the token). A relay without push credentials runs with it, so
 * devices may register tokens and the whole wake-up path — coalescing, metrics — works and can
 * be watched before an operator configures APNs or FCM.
 */
import type { Logger } from 'pino';
import type { PushOutcome, PushProviderName, PushSender, WakeUp } from '../ports/push-sender.js';

/** Options of {@link createLogPushSender}. */
export interface LogPushSenderOptions {
  readonly log: Logger;
  /** The provider whose tokens this adapter stands in for (named in the log line). */
  readonly provider: PushProviderName;
}

/** Builds the log-only adapter; every wake-up is `delivered` (to the log). */
export function createLogPushSender(options: LogPushSenderOptions): PushSender {
  const log = options.log.child({ component: 'push' });
  let closed = false;
  return {
    name: 'log',
    async send(wakeUp: WakeUp): Promise<PushOutcome> {
      if (closed) return { kind: 'failed', reason: 'closed' };
      log.info({ device: wakeUp.device, provider: options.provider, urgent: wakeUp.urgent }, 'wake-up (log only: this relay has no credentials for the provider)');
      return { kind: 'delivered' };
    },
    async close() {
      closed = true;
    },
  };
}
