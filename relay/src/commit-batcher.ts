// SPDX-License-Identifier: AGPL-3.0-only
/**
 * Group commit: collects the items submitted while the event loop runs one turn and hands them
 * to `flush` as one batch, so a thousand concurrent sends cost one transaction and one fsync
 * instead of a thousand. One flush runs at a time; what arrives meanwhile forms the next batch.
 * The queue is bounded: past `maxPending` items a submit is refused at once.
 */
import { ParleyError } from '@parley/protocol';

/** Options of a CommitBatcher. */
export interface CommitBatcherOptions<I, R> {
  /** Commits a batch; resolves with one result per item, in order. */
  readonly flush: (items: readonly I[]) => Promise<R[]>;
  /** Most items in one flush. */
  readonly maxBatch: number;
  /** Most items waiting (not yet flushing); more are refused with RATE_LIMITED. */
  readonly maxPending: number;
}

interface Waiter<I, R> {
  item: I;
  resolve: (r: R) => void;
  reject: (e: unknown) => void;
}

/** See the module comment. */
export class CommitBatcher<I, R> {
  private readonly opts: CommitBatcherOptions<I, R>;
  private waiting: Waiter<I, R>[] = [];
  private flushing = false;
  private scheduled = false;
  private idleWaiters: Array<() => void> = [];

  constructor(opts: CommitBatcherOptions<I, R>) {
    this.opts = opts;
  }

  /** Items waiting for a flush. */
  get pending(): number {
    return this.waiting.length;
  }

  /** Queues `item` for the next batch; resolves with its result once its batch committed. */
  submit(item: I): Promise<R> {
    if (this.waiting.length >= this.opts.maxPending) {
      return Promise.reject(new ParleyError('RATE_LIMITED', 'the relay is busy; retry shortly', { retryAfterMs: 100 }));
    }
    return new Promise<R>((resolve, reject) => {
      this.waiting.push({ item, resolve, reject });
      this.schedule();
    });
  }

  /** Resolves when nothing is waiting or flushing (for graceful shutdown). */
  idle(): Promise<void> {
    if (!this.flushing && this.waiting.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private schedule(): void {
    if (this.scheduled || this.flushing) return;
    this.scheduled = true;
    // setImmediate runs after the I/O callbacks of this turn: every frame already read joins.
    setImmediate(() => {
      this.scheduled = false;
      void this.run();
    });
  }

  private async run(): Promise<void> {
    if (this.flushing) return;
    this.flushing = true;
    try {
      while (this.waiting.length > 0) {
        const batch = this.waiting.length <= this.opts.maxBatch ? this.waiting : this.waiting.slice(0, this.opts.maxBatch);
        this.waiting = batch === this.waiting ? [] : this.waiting.slice(batch.length);
        let results: R[];
        try {
          results = await this.opts.flush(batch.map((w) => w.item));
        } catch (err) {
          for (const w of batch) w.reject(err);
          continue;
        }
        for (let i = 0; i < batch.length; i++) batch[i]!.resolve(results[i]!);
      }
    } finally {
      this.flushing = false;
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const w of waiters) w();
    }
  }
}
