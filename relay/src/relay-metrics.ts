// SPDX-License-Identifier: AGPL-3.0-only
/**
 * The relay's Prometheus metrics, one prom-client Registry per relay instance (never the
 * library's global default registry: two relays in one process keep apart).
 *
 * The hot path only adds to plain numbers (`envelopesDelivered` is a field increment, the latency
 * histogram a bucket search); the prom-client metrics read those numbers when `/metrics` is
 * scraped (`collect`), as do the gauges, which sample their sources then. The metric names and
 * their meaning are listed in docs/operations.md; a test keeps the two in step.
 */
import { statSync } from 'node:fs';
import { basename } from 'node:path';
import { performance } from 'node:perf_hooks';
import { collectDefaultMetrics, Counter, Gauge, Registry, type Metric } from 'prom-client';
import type { ErrorCode } from '@parley/protocol';
import { BucketHistogram } from './bucket-histogram.js';

/** How an envelope reached a device: straight after its commit, read from the queue, or online-only (typing). */
export type DeliveryPath = 'live' | 'queue' | 'online';

/** The answer a Send got: accepted, accepted again (same message id and body), or a refusal's wire code. */
export type SendOutcome = 'ok' | 'duplicate' | ErrorCode;

/** Where an authentication failed. */
export type AuthTransport = 'http' | 'websocket';

/** Who sent a wake-up: a provider, or `log` where the relay has no credentials for it. */
export type PushProvider = 'apns' | 'fcm' | 'log';

/**
 * How a wake-up ended or went on: `sent` (the provider took it), `invalid_token` (the provider
 * called the token dead; it was removed), `failed` (refused for another reason, or retries used
 * up), `retried` (a failure that will be tried again), `coalesced` (envelopes folded into a
 * wake-up that went out anyway, counted when it ends).
 */
export type PushResult = 'sent' | 'coalesced' | 'invalid_token' | 'failed' | 'retried';

/** What the gauges sample at scrape time; given once by the relay that owns the metrics. */
export interface RelayMetricSources {
  /** Devices with an open authenticated WebSocket on this process. */
  readonly connectedDevices: () => number;
  /** Open provisioning (device linking) sockets. */
  readonly provisioningSockets: () => number;
  /** Open unidentified (sealed-sender) sockets. */
  readonly unidentifiedSockets: () => number;
  /** Sends waiting for their commit batch. */
  readonly pendingCommits: () => number;
  /** Envelopes stored in all queues; absent when the store cannot count cheaply (the gauge is then left out). */
  readonly queuedEnvelopes?: () => Promise<number>;
  /** Accepted presence subscriptions (connection × account) on this process. */
  readonly presenceSubscriptions?: () => number;
  /** Reported as labels of `parley_relay_info`. */
  readonly version: string;
  readonly domain: string;
}

/** Options of {@link RelayMetrics}. */
export interface RelayMetricsOptions {
  /** Also export Node's process metrics (CPU, memory, event-loop lag, GC, handles). Default false (the binary turns it on). */
  readonly processMetrics?: boolean;
  /** Files whose sizes are exported as `parley_relay_data_bytes{file}` (the databases and their WAL). Default none. */
  readonly dataFiles?: readonly string[];
  /**
   * Shortest time between two reads of the queued-envelope total, ms: scrapes in between reuse
   * the last figure, so a burst of scrapes cannot turn into a burst of store queries. Default 1,000.
   */
  readonly queueSampleMs?: number;
  /** Monotonic milliseconds, for the sampling interval. Default `performance.now`. */
  readonly now?: () => number;
}

/** Upper bounds of the latency histograms, seconds. */
const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];
/** Upper bounds of the batch size histogram, sends. */
const BATCH_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096];
/** Upper bounds of the fan-out histogram, recipient devices of one multi-recipient send. */
const FANOUT_BUCKETS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000];

const COMMON_SEND_OUTCOMES: readonly SendOutcome[] = [
  'ok',
  'duplicate',
  'MISMATCHED_DEVICES',
  'STALE_DEVICES',
  'ID_REUSED',
  'QUEUE_FULL',
  'RATE_LIMITED',
  'NOT_FOUND',
  'BAD_REQUEST',
  'INTERNAL',
];

const LIMITER_NAME = /^[A-Za-z0-9_:./ -]{1,80}$/;

/** Every metric name this module exports (process metrics aside), for the docs test. */
export const RELAY_METRIC_NAMES = [
  'parley_relay_info',
  'parley_relay_connected_devices',
  'parley_relay_connections_opened_total',
  'parley_relay_provisioning_sockets',
  'parley_relay_unidentified_sockets',
  'parley_relay_pending_commits',
  'parley_relay_queued_envelopes',
  'parley_relay_envelopes_committed_total',
  'parley_relay_envelopes_delivered_total',
  'parley_relay_envelopes_acked_total',
  'parley_relay_envelopes_expired_total',
  'parley_relay_sends_total',
  'parley_relay_multi_sends_total',
  'parley_relay_multi_send_fanout',
  'parley_relay_rate_limited_total',
  'parley_relay_auth_failures_total',
  'parley_relay_push_results_total',
  'parley_relay_delivery_latency_seconds',
  'parley_relay_commit_duration_seconds',
  'parley_relay_commit_batch_size',
  'parley_relay_data_bytes',
  'parley_relay_presence_subscriptions',
  'parley_relay_presence_updates_total',
] as const;

/** See the module comment. */
export class RelayMetrics {
  /** The registry `/metrics` renders. */
  readonly registry = new Registry();
  private readonly options: RelayMetricsOptions;
  private bound = false;

  // Plain tallies, written on the hot path, read at scrape time.
  private committed = 0;
  private acked = 0;
  private expired = 0;
  private opened = 0;
  private presenceUpdates = 0;
  private readonly delivered: Record<DeliveryPath, number> = { live: 0, queue: 0, online: 0 };
  private readonly sends = new Map<SendOutcome, number>();
  private readonly multiSends = new Map<SendOutcome, number>();
  private readonly limited = new Map<string, number>();
  private readonly authFailures: Record<AuthTransport, number> = { http: 0, websocket: 0 };
  private readonly pushes = new Map<string, { provider: PushProvider; result: PushResult; n: number }>();

  private readonly deliveryLatency = new BucketHistogram({
    name: 'parley_relay_delivery_latency_seconds',
    help: 'Time from a send reaching the relay to its envelope being written to an online, caught-up recipient (the live path; includes the commit)',
    buckets: LATENCY_BUCKETS,
  });
  private readonly commitDuration = new BucketHistogram({
    name: 'parley_relay_commit_duration_seconds',
    help: 'Duration of one envelope commit batch in the store (one transaction, one fsync)',
    buckets: LATENCY_BUCKETS,
  });
  private readonly commitBatchSize = new BucketHistogram({
    name: 'parley_relay_commit_batch_size',
    help: 'Sends committed together in one batch',
    buckets: BATCH_BUCKETS,
  });
  private readonly fanout = new BucketHistogram({
    name: 'parley_relay_multi_send_fanout',
    help: 'Recipient devices of one accepted multi-recipient send (SendMulti): envelopes it queued or, online-only, could reach',
    buckets: FANOUT_BUCKETS,
  });

  constructor(options: RelayMetricsOptions = {}) {
    this.options = options;
    // Outcomes a send commonly gets start at 0, so rates and ratios exist before the first one;
    // any other code appears when it first happens.
    for (const outcome of COMMON_SEND_OUTCOMES) {
      this.sends.set(outcome, 0);
      this.multiSends.set(outcome, 0);
    }
    this.multiSends.set('UNAUTHORIZED', 0);
    this.sends.set('UNAUTHORIZED', 0);
    const reg = [this.registry];

    counter(reg, 'parley_relay_envelopes_committed_total', 'Envelopes committed to device queues (one per destination device; duplicates not counted)', [], (c) => {
      c.inc(this.committed);
    });
    counter(reg, 'parley_relay_envelopes_delivered_total', 'Envelopes written to device sockets, by path (live: right after the commit; queue: read from the store; online: typing, never stored). Redeliveries count again.', ['path'], (c) => {
      for (const path of ['live', 'queue', 'online'] as const) c.inc({ path }, this.delivered[path]);
    });
    counter(reg, 'parley_relay_envelopes_acked_total', 'Envelopes deleted because their device acknowledged them', [], (c) => {
      c.inc(this.acked);
    });
    counter(reg, 'parley_relay_envelopes_expired_total', 'Envelopes deleted unacknowledged at the end of the retention time', [], (c) => {
      c.inc(this.expired);
    });
    counter(reg, 'parley_relay_presence_updates_total', 'PresenceUpdate frames written to device sockets (changes of subscribed accounts, first states, and ends of revoked subscriptions)', [], (c) => {
      c.inc(this.presenceUpdates);
    });
    counter(reg, 'parley_relay_connections_opened_total', 'Authenticated device WebSockets accepted', [], (c) => {
      c.inc(this.opened);
    });
    counter(reg, 'parley_relay_sends_total', 'Send frames answered, by outcome: ok, duplicate, or the wire error code of the refusal', ['outcome'], (c) => {
      for (const [outcome, n] of this.sends) c.inc({ outcome }, n);
    });
    counter(reg, 'parley_relay_multi_sends_total', 'SendMulti frames (multi-recipient uploads) answered, by outcome: ok, duplicate, or the wire error code of the refusal', ['outcome'], (c) => {
      for (const [outcome, n] of this.multiSends) c.inc({ outcome }, n);
    });
    counter(reg, 'parley_relay_rate_limited_total', 'Requests refused by a rate limit or a full queue of work, by limiter', ['limiter'], (c) => {
      for (const [limiter, n] of this.limited) c.inc({ limiter }, n);
    });
    counter(reg, 'parley_relay_auth_failures_total', 'Refused device authentications, by transport', ['transport'], (c) => {
      for (const transport of ['http', 'websocket'] as const) c.inc({ transport }, this.authFailures[transport]);
    });
    counter(reg, 'parley_relay_push_results_total', 'Push wake-ups by provider and result: sent, invalid_token (token removed), failed, retried, and coalesced (envelopes folded into a wake-up)', ['provider', 'result'], (c) => {
      for (const p of this.pushes.values()) c.inc({ provider: p.provider, result: p.result }, p.n);
    });
    for (const h of [this.deliveryLatency, this.commitDuration, this.commitBatchSize, this.fanout]) {
      // A BucketHistogram offers what the registry reads of a metric (get, reset, name, type).
      this.registry.registerMetric(h as unknown as Metric);
    }
    if (options.dataFiles && options.dataFiles.length > 0) {
      const files = [...options.dataFiles];
      new Gauge({
        name: 'parley_relay_data_bytes',
        help: 'Size of the relay\u2019s database files (a missing file counts 0)',
        labelNames: ['file'],
        registers: reg,
        collect() {
          for (const f of files) this.set({ file: basename(f) }, fileSize(f));
        },
      });
    }
    if (options.processMetrics) collectDefaultMetrics({ register: this.registry });
  }

  /**
   * Attaches the gauges to the relay's live figures. Called once by the relay that owns these
   * metrics. @throws Error when called twice.
   */
  bind(sources: RelayMetricSources): void {
    if (this.bound) throw new Error('these metrics already belong to a relay');
    this.bound = true;
    const reg = [this.registry];
    new Gauge({
      name: 'parley_relay_info',
      help: 'Always 1; the labels say which relay this is',
      labelNames: ['version', 'domain'],
      registers: reg,
    }).set({ version: sources.version, domain: sources.domain }, 1);
    gauge(reg, 'parley_relay_connected_devices', 'Devices with an open WebSocket on this process', sources.connectedDevices);
    gauge(reg, 'parley_relay_provisioning_sockets', 'Open provisioning sockets (devices waiting to be linked)', sources.provisioningSockets);
    gauge(reg, 'parley_relay_unidentified_sockets', 'Open unidentified (sealed-sender) sockets', sources.unidentifiedSockets);
    gauge(reg, 'parley_relay_pending_commits', 'Sends waiting for their commit batch (backpressure: past the commit queue cap new sends are refused)', sources.pendingCommits);
    gauge(reg, 'parley_relay_presence_subscriptions', 'Accepted presence subscriptions on this process (connection \u00d7 account)', sources.presenceSubscriptions ?? (() => 0));
    const count = sources.queuedEnvelopes;
    if (count) {
      const now = this.options.now ?? (() => performance.now());
      const every = this.options.queueSampleMs ?? 1000;
      let last: { at: number; value: number } | undefined;
      new Gauge({
        name: 'parley_relay_queued_envelopes',
        help: `Envelopes stored in all device queues, read from the store at most every ${every} ms`,
        registers: reg,
        async collect() {
          const t = now();
          if (!last || t - last.at >= every) {
            try {
              last = { at: t, value: await count() };
            } catch {
              // The store is closing or failing: NaN (unknown), neither a stale figure nor a 0
              // that would read as an empty queue.
              last = undefined;
              this.set(Number.NaN);
              return;
            }
          }
          this.set(last.value);
        },
      });
    }
  }

  /** Envelopes newly committed (duplicates excluded). */
  envelopesCommitted(n: number): void {
    this.committed += n;
  }

  /** Envelopes written to a device socket. */
  envelopesDelivered(path: DeliveryPath, n: number): void {
    this.delivered[path] += n;
  }

  /** Envelopes deleted after an acknowledgement. */
  envelopesAcked(n: number): void {
    this.acked += n;
  }

  /** Envelopes deleted by the expiry sweep. */
  envelopesExpired(n: number): void {
    this.expired += n;
  }

  /** An authenticated device WebSocket was accepted. */
  connectionOpened(): void {
    this.opened++;
  }

  /** `n` PresenceUpdate frames were written to device sockets. */
  presenceUpdatesSent(n: number): void {
    this.presenceUpdates += n;
  }

  /** A Send frame was answered with `outcome`. */
  sendAnswered(outcome: SendOutcome): void {
    this.sends.set(outcome, (this.sends.get(outcome) ?? 0) + 1);
  }

  /** A SendMulti frame was answered with `outcome`. */
  multiSendAnswered(outcome: SendOutcome): void {
    this.multiSends.set(outcome, (this.multiSends.get(outcome) ?? 0) + 1);
  }

  /** An accepted SendMulti reached `devices` recipient devices. */
  multiFanout(devices: number): void {
    this.fanout.observe(devices);
  }

  /**
   * A rate limit (or a bounded work queue) refused a request: the hook every limiter calls.
   * `limiter` is a fixed name (e.g. `provisioning_socket`, `commit_queue`), never an address or
   * an id: each name is one time series. Names outside `[A-Za-z0-9_:./ -]{1,80}` count as `other`.
   */
  rateLimitHit(limiter: string): void {
    const name = LIMITER_NAME.test(limiter) ? limiter : 'other';
    this.limited.set(name, (this.limited.get(name) ?? 0) + 1);
  }

  /** A device failed to authenticate. */
  authFailure(transport: AuthTransport): void {
    this.authFailures[transport]++;
  }

  /** `n` wake-ups (or folded envelopes) of `provider` ended or went on as `result` (see {@link PushResult}). */
  pushResult(provider: PushProvider, result: PushResult, n = 1): void {
    const key = `${provider}/${result}`;
    const entry = this.pushes.get(key);
    if (entry) entry.n += n;
    else this.pushes.set(key, { provider, result, n });
  }

  /** Time from a send's arrival to its live delivery, milliseconds. */
  deliveryLatencyMs(ms: number): void {
    this.deliveryLatency.observe(ms / 1000);
  }

  /** One commit batch of `sends` sends took `ms` milliseconds. */
  commitBatch(sends: number, ms: number): void {
    this.commitBatchSize.observe(sends);
    this.commitDuration.observe(ms / 1000);
  }

  /** The Prometheus text exposition of every metric. */
  render(): Promise<string> {
    return this.registry.metrics();
  }

  /** The Content-Type of {@link render}'s output. */
  get contentType(): string {
    return this.registry.contentType;
  }
}

function counter<L extends string>(
  registers: Registry[],
  name: string,
  help: string,
  labelNames: L[],
  sync: (metric: Counter<L>) => void,
): void {
  new Counter<L>({
    name,
    help,
    labelNames,
    registers,
    collect() {
      // The tallies hold totals since start: replace, do not add.
      this.reset();
      sync(this);
    },
  });
}

function gauge(registers: Registry[], name: string, help: string, read: () => number): void {
  new Gauge({
    name,
    help,
    registers,
    collect() {
      this.set(read());
    },
  });
}

function fileSize(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}
