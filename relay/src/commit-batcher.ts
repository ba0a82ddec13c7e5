// SPDX-License-Identifier: AGPL-3.0-only
/**
 * Group commit: collects the items submitted while the event loop runs one turn and hands them
 * to `flush` as one batch, so a thousand concurrent sends cost one transaction and one fsync
 * instead of a thousand. One flush runs at a time; what arrives meanwhile forms the next batch.
 * Items submitted together with `submitAll` (the requests of one multi-recipient send) always
 * land in the same batch, next to each other, also when they are more than `maxBatch`.
 * The queue is bounded: past `maxPending` items a submit is refused at once.
 */
import { ParleyError } from '@parley/protocol';

/** Options of a CommitBatcher. */
export interface CommitBatcherOptions<I, R> {
  /** Commits a batch; resolves with one result per item, in order. */
  readonly flush: (items: readonly I[]) => Promise<R[]>;
  /** Most items in one flush (a group larger than this is flushed alone). */
  readonly maxBatch: number;
  /** Most items waiting (not yet flushing); more are refused with RATE_LIMITED. */
  readonly maxPending: number;
}

/** One submit: a single item (the common case, kept free of extra arrays and promises) or a group. */
type Waiter<I, R> =
  | { readonly single: true; readonly item: I; readonly size: 1; resolve: (r: R) => void; reject: (e: unknown) => void }
  | { readonly single: false; readonly items: readonly I[]; readonly size: number; resolve: (r: R[]) => void; reject: (e: unknown) => void };

function busy(): ParleyError {
  return new ParleyError('RATE_LIMITED', 'the relay is busy; retry shortly', { retryAfterMs: 100 });
}

/** See the module comment. */
export class CommitBatcher<I, R> {
  private readonly opts: CommitBatcherOptions<I, R>;
  private waiting: Waiter<I, R>[] = [];
  private waitingItems = 0;
  private flushing = false;
  private scheduled = false;
  private idleWaiters: Array<() => void> = [];

  constructor(opts: CommitBatcherOptions<I, R>) {
    this.opts = opts;
  }

  /** Items waiting for a flush. */
  get pending(): number {
    return this.waitingItems;
  }

  /** Queues `item` for the next batch; resolves with its result once its batch committed. */
  submit(item: I): Promise<R> {
    if (this.waitingItems + 1 > this.opts.maxPending) return Promise.reject(busy());
    return new Promise<R>((resolve, reject) => {
      this.waiting.push({ single: true, item, size: 1, resolve, reject });
      this.waitingItems++;
      this.schedule();
    });
  }

  /**
   * Queues `items` to be flushed together in one batch; resolves with their results, in order,
   * once that batch committed (or rejects them all).
   */
  submitAll(items: readonly I[]): Promise<R[]> {
    if (items.length === 0) return Promise.resolve([]);
    if (this.waitingItems + items.length > this.opts.maxPending) return Promise.reject(busy());
    return new Promise<R[]>((resolve, reject) => {
      this.waiting.push({ single: false, items, size: items.length, resolve, reject });
      this.waitingItems += items.length;
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

  /** Takes waiters from the front while their items fit in one batch (at least one waiter). */
  private takeBatch(): Waiter<I, R>[] {
    let n = 0;
    let size = 0;
    while (n < this.waiting.length && (n === 0 || size + this.waiting[n]!.size <= this.opts.maxBatch)) {
      size += this.waiting[n]!.size;
      n++;
    }
    const batch = n === this.waiting.length ? this.waiting : this.waiting.slice(0, n);
    this.waiting = batch === this.waiting ? [] : this.waiting.slice(n);
    this.waitingItems -= size;
    return batch;
  }

  private async run(): Promise<void> {
    if (this.flushing) return;
    this.flushing = true;
    try {
      while (this.waiting.length > 0) {
        const batch = this.takeBatch();
        const items: I[] = [];
        for (const w of batch) {
          if (w.single) items.push(w.item);
          else for (const item of w.items) items.push(item);
        }
        let results: R[];
        try {
          results = await this.opts.flush(items);
        } catch (err) {
          for (const w of batch) w.reject(err);
          continue;
        }
        let at = 0;
        for (const w of batch) {
          if (w.single) w.resolve(results[at]!);
          else w.resolve(results.slice(at, at + w.size));
          at += w.size;
        }
      }
    } finally {
      this.flushing = false;
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const w of waiters) w();
    }
  }
}
