// SPDX-License-Identifier: AGPL-3.0-only
/**
 * Wake-ups for devices that are offline when an envelope is committed for them (DESIGN §10).
 *
 * Per device there is at most one pending wake-up. The first envelope for an offline device
 * opens a coalescing window; envelopes during the window (and while its wake-up is being sent
 * or waits for a retry) fold into it — urgent if any of them was. When the window ends the
 * scheduler asks the token store for the device's token (none: nothing to do), and sends one
 * wake-up through that provider's sender. A device that connects before the window ends gets
 * none: it is draining its queue already.
 *
 * Outcomes: `delivered` ends it; `dead-token` removes the token (compare-and-delete, so a token
 * registered meanwhile stays); `retry` tries again after an exponential backoff with jitter, a
 * bounded number of times, unless the device connected meanwhile; `failed` ends it. Every end
 * is counted in `parley_relay_push_results_total`, with the envelopes that were folded in as
 * `coalesced`. The pending set is capped: past the cap a new device's wake-up is dropped and
 * counted (`parley_relay_rate_limited_total{limiter="push_pending"}`) rather than growing
 * memory. Tokens never reach a log line; devices do, as `<aci>.<deviceId>`.
 */
import type { Aci, DeviceId } from '@parley/protocol';
import type { Logger } from 'pino';
import type { PushProviderName, PushSender } from '../ports/push-sender.js';
import type { RelayMetrics } from '../relay-metrics.js';
import type { TimerHandle, Timers } from '../timers.js';

/** A device's registered token as the token store gives it. */
export interface PushTokenRecord {
  readonly provider: PushProviderName;
  /** Secret: never logged. */
  readonly token: string;
}

/** Where tokens live (the key store satisfies it). */
export interface PushTokenStore {
  getPushToken(aci: Aci, deviceId: DeviceId): Promise<PushTokenRecord | undefined>;
  /** Removes the device's token only when it is still `onlyIf`. */
  removePushToken(aci: Aci, deviceId: DeviceId, onlyIf?: string): Promise<boolean>;
}

/** Options of {@link WakeUpScheduler}. Durations in milliseconds. */
export interface WakeUpSchedulerOptions {
  /** One sender per provider a token can name (the log adapter for providers not configured). */
  readonly senders: Readonly<Record<PushProviderName, PushSender>>;
  readonly tokens: PushTokenStore;
  readonly metrics: RelayMetrics;
  readonly log: Logger;
  readonly timers: Timers;
  /** Whether the device (`<aci>.<deviceId>`) is connected to this relay right now. */
  readonly isConnected: (device: string) => boolean;
  /** The coalescing window. */
  readonly coalesceMs: number;
  /** Most devices with a pending wake-up. */
  readonly maxPending: number;
  /** Attempts per wake-up, the first included. */
  readonly maxAttempts: number;
  /** Backoff before the second attempt; doubles per attempt, with jitter. */
  readonly retryBaseMs: number;
  /** Longest backoff. */
  readonly retryMaxMs: number;
  /** Uniform in [0, 1), for the jitter. Default Math.random. */
  readonly random?: () => number;
}

type State = 'waiting' | 'sending' | 'backoff';

interface Pending {
  readonly aci: Aci;
  readonly deviceId: DeviceId;
  readonly key: string;
  urgent: boolean;
  /** Envelopes beyond the first folded into this wake-up. */
  folded: number;
  state: State;
  attempts: number;
  timer: TimerHandle | undefined;
  /** The device connected while a send was in flight: no retry. */
  connected: boolean;
}

/** See the module comment. */
export class WakeUpScheduler {
  private readonly o: WakeUpSchedulerOptions;
  private readonly log: Logger;
  private readonly pendingByDevice = new Map<string, Pending>();
  private readonly inFlight = new Set<Promise<void>>();
  private closed = false;

  constructor(options: WakeUpSchedulerOptions) {
    this.o = options;
    this.log = options.log.child({ component: 'push' });
  }

  /** Devices with a wake-up waiting, being sent or waiting for a retry. */
  get pending(): number {
    return this.pendingByDevice.size;
  }

  /** An envelope was committed for a device; nothing happens when it is connected here. */
  envelopeQueued(aci: Aci, deviceId: DeviceId, urgent: boolean): void {
    if (this.closed) return;
    const key = `${aci}.${deviceId}`;
    const p = this.pendingByDevice.get(key);
    if (p) {
      p.folded++;
      p.urgent ||= urgent;
      return;
    }
    if (this.o.isConnected(key)) return;
    if (this.pendingByDevice.size >= this.o.maxPending) {
      this.o.metrics.rateLimitHit('push_pending');
      return;
    }
    const entry: Pending = { aci, deviceId, key, urgent, folded: 0, state: 'waiting', attempts: 0, timer: undefined, connected: false };
    entry.timer = this.o.timers.setTimeout(() => this.fire(entry), this.o.coalesceMs);
    this.pendingByDevice.set(key, entry);
  }

  /** The device connected to this relay: it fetches its queue, no wake-up is needed. */
  deviceConnected(key: string): void {
    const p = this.pendingByDevice.get(key);
    if (!p) return;
    if (p.state === 'sending') {
      p.connected = true;
      return;
    }
    this.o.timers.clearTimeout(p.timer);
    this.pendingByDevice.delete(key);
  }

  /** Resolves when no send is in flight (tests; shutdown). */
  async settled(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.all([...this.inFlight]);
  }

  /** Drops pending wake-ups, waits for sends in flight, closes the senders. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const p of this.pendingByDevice.values()) this.o.timers.clearTimeout(p.timer);
    await this.settled();
    this.pendingByDevice.clear();
    await Promise.all([...new Set(Object.values(this.o.senders))].map((s) => s.close()));
  }

  private fire(p: Pending): void {
    p.timer = undefined;
    if (this.closed || this.pendingByDevice.get(p.key) !== p) return;
    if (this.o.isConnected(p.key)) {
      this.pendingByDevice.delete(p.key);
      return;
    }
    p.state = 'sending';
    const run = this.attempt(p).catch((err: unknown) => {
      // attempt() handles every outcome; this is a bug or a failing token store.
      this.log.error({ err, device: p.key }, 'wake-up failed');
      this.pendingByDevice.delete(p.key);
    });
    this.inFlight.add(run);
    void run.finally(() => this.inFlight.delete(run));
  }

  private async attempt(p: Pending): Promise<void> {
    const record = await this.o.tokens.getPushToken(p.aci, p.deviceId);
    if (!record) {
      // No token (a desktop device, or push turned off): nothing to wake.
      this.pendingByDevice.delete(p.key);
      return;
    }
    const sender = this.o.senders[record.provider];
    p.attempts++;
    const outcome = await sender.send({ token: record.token, urgent: p.urgent, device: p.key });
    const m = this.o.metrics;
    const end = (result: 'sent' | 'invalid_token' | 'failed') => {
      m.pushResult(sender.name, result);
      if (p.folded > 0) m.pushResult(sender.name, 'coalesced', p.folded);
      this.pendingByDevice.delete(p.key);
    };
    switch (outcome.kind) {
      case 'delivered':
        this.log.debug({ device: p.key, provider: sender.name, urgent: p.urgent, attempts: p.attempts }, 'wake-up sent');
        return end('sent');
      case 'dead-token': {
        const removed = await this.o.tokens.removePushToken(p.aci, p.deviceId, record.token);
        this.log.info({ device: p.key, provider: sender.name, reason: outcome.reason, removed }, 'push token removed: the provider says it is dead');
        return end('invalid_token');
      }
      case 'failed':
        this.log.warn({ device: p.key, provider: sender.name, reason: outcome.reason }, 'wake-up failed');
        return end('failed');
      case 'retry': {
        if (this.closed || p.connected || p.attempts >= this.o.maxAttempts) {
          if (!p.connected && !this.closed) this.log.warn({ device: p.key, provider: sender.name, reason: outcome.reason, attempts: p.attempts }, 'wake-up given up');
          return end('failed');
        }
        m.pushResult(sender.name, 'retried');
        const backoff = Math.min(this.o.retryMaxMs, this.o.retryBaseMs * 2 ** (p.attempts - 1));
        // Half fixed, half random: retries of many devices after one outage spread out.
        const jittered = Math.round(backoff / 2 + (backoff / 2) * (this.o.random ?? Math.random)());
        const delay = Math.min(this.o.retryMaxMs, Math.max(jittered, outcome.retryAfterMs ?? 0));
        p.state = 'backoff';
        p.timer = this.o.timers.setTimeout(() => this.fire(p), delay);
        this.log.debug({ device: p.key, provider: sender.name, reason: outcome.reason, delayMs: delay }, 'wake-up will be retried');
        return;
      }
    }
  }
}
