// SPDX-License-Identifier: AGPL-3.0-only
/**
 * A fault-injecting wrapper around any envelope store, for the relay's fault tests (CONVENTIONS
 * 13): fail the Nth call of an operation (before it reaches the store, or after the store
 * committed — the answer is lost but the write is not), fail every call, delay calls, or hold
 * them until a test releases them. With no fault set it is a transparent pass-through, and it
 * passes the store contract suite as such.
 */
import {
  EnvelopeStoreError,
  type AckRequest,
  type EnqueueRequest,
  type EnqueueResult,
  type EnvelopeStore,
  type ExpireCounts,
  type QueueAddress,
  type StoredEnvelope,
} from '../ports/envelope-store.js';

/** The operations of the port. */
export type EnvelopeStoreOperation = 'enqueue' | 'read' | 'ack' | 'depth' | 'dropQueue' | 'expire' | 'close' | 'sharedBodyUsage';

/** How an injected failure happens. */
export interface FaultOptions {
  /**
   * `'before'` (default): the call rejects without reaching the wrapped store (nothing written).
   * `'after'`: the wrapped store completes the call (an enqueue commits), then the call rejects —
   * as when a process dies or a connection drops between the commit and the answer.
   */
  readonly when?: 'before' | 'after';
  /** The error to reject with. Default: an EnvelopeStoreError with code INJECTED_FAULT. */
  readonly error?: Error;
}

/** Options of a {@link FaultyEnvelopeStore}. */
export interface FaultyEnvelopeStoreOptions {
  /** Waits `ms` milliseconds, for `delay`. Default: a `setTimeout` promise (tests may pass a virtual one). */
  readonly sleep?: (ms: number) => Promise<void>;
}

interface PlannedFault {
  /** The call number (1-based, per operation, since construction) that fails. */
  readonly call: number;
  readonly options: FaultOptions;
}

interface OperationFaults {
  calls: number;
  planned: PlannedFault[];
  always: FaultOptions | undefined;
  delayMs: number;
  hold: Promise<void> | undefined;
}

const defaultSleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** See the module comment. */
export class FaultyEnvelopeStore implements EnvelopeStore {
  /** The wrapped store. */
  readonly inner: EnvelopeStore;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly ops = new Map<EnvelopeStoreOperation, OperationFaults>();
  private readonly releases = new Set<() => void>();

  /** Passed through when the wrapped store has it (the port makes it optional). */
  readonly sharedBodyUsage?: () => Promise<{ readonly bodies: number; readonly bytes: number }>;

  constructor(inner: EnvelopeStore, options: FaultyEnvelopeStoreOptions = {}) {
    this.inner = inner;
    this.sleep = options.sleep ?? defaultSleep;
    const usage = inner.sharedBodyUsage?.bind(inner);
    if (usage) this.sharedBodyUsage = () => this.run('sharedBodyUsage', usage);
  }

  /** How many calls of `op` were made so far, failed ones included. */
  calls(op: EnvelopeStoreOperation): number {
    return this.faults(op).calls;
  }

  /**
   * Makes the `n`th call of `op` counted from now (1 = the next call) fail.
   * Several planned failures add up.
   */
  failNth(op: EnvelopeStoreOperation, n = 1, options: FaultOptions = {}): void {
    if (!Number.isSafeInteger(n) || n < 1) throw new RangeError('n must be a positive integer');
    const f = this.faults(op);
    f.planned.push({ call: f.calls + n, options });
  }

  /** Makes every call of `op` fail until {@link heal}. */
  failAlways(op: EnvelopeStoreOperation, options: FaultOptions = {}): void {
    this.faults(op).always = options;
  }

  /** Delays every call of `op` by `ms` milliseconds before it reaches the store; 0 removes the delay. */
  delay(op: EnvelopeStoreOperation, ms: number): void {
    if (!Number.isFinite(ms) || ms < 0) throw new RangeError('ms must be a non-negative number');
    this.faults(op).delayMs = ms;
  }

  /**
   * Holds every call of `op` (from now until released) before it reaches the store. Returns the
   * release: held calls then proceed in the order they were made.
   */
  hold(op: EnvelopeStoreOperation): () => void {
    const f = this.faults(op);
    let release!: () => void;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    f.hold = gate;
    const done = (): void => {
      this.releases.delete(done);
      if (f.hold === gate) f.hold = undefined;
      release();
    };
    this.releases.add(done);
    return done;
  }

  /** Removes every planned failure, delay and hold; held calls proceed. */
  heal(): void {
    for (const f of this.ops.values()) {
      f.planned = [];
      f.always = undefined;
      f.delayMs = 0;
    }
    for (const release of [...this.releases]) release();
  }

  enqueue(requests: readonly EnqueueRequest[]): Promise<EnqueueResult[]> {
    return this.run('enqueue', () => this.inner.enqueue(requests));
  }

  read(queue: QueueAddress, afterSeq: number, limit: number, nowMs: number): Promise<StoredEnvelope[]> {
    return this.run('read', () => this.inner.read(queue, afterSeq, limit, nowMs));
  }

  ack(requests: readonly AckRequest[]): Promise<number> {
    return this.run('ack', () => this.inner.ack(requests));
  }

  depth(queue: QueueAddress): Promise<number> {
    return this.run('depth', () => this.inner.depth(queue));
  }

  dropQueue(queue: QueueAddress): Promise<void> {
    return this.run('dropQueue', () => this.inner.dropQueue(queue));
  }

  expire(nowMs: number, limit: number): Promise<ExpireCounts> {
    return this.run('expire', () => this.inner.expire(nowMs, limit));
  }

  close(): Promise<void> {
    return this.run('close', () => this.inner.close());
  }

  private faults(op: EnvelopeStoreOperation): OperationFaults {
    let f = this.ops.get(op);
    if (!f) {
      f = { calls: 0, planned: [], always: undefined, delayMs: 0, hold: undefined };
      this.ops.set(op, f);
    }
    return f;
  }

  private async run<R>(op: EnvelopeStoreOperation, call: () => Promise<R>): Promise<R> {
    const f = this.faults(op);
    const n = ++f.calls;
    // The fault is decided when the call is made, so holds and delays do not reorder the count.
    const i = f.planned.findIndex((p) => p.call === n);
    const fault = i >= 0 ? f.planned.splice(i, 1)[0]!.options : f.always;
    if (f.hold) await f.hold;
    if (f.delayMs > 0) await this.sleep(f.delayMs);
    if (fault && (fault.when ?? 'before') === 'before') throw injected(op, n, fault);
    const result = await call();
    if (fault) throw injected(op, n, fault);
    return result;
  }
}

function injected(op: EnvelopeStoreOperation, n: number, fault: FaultOptions): Error {
  return fault.error ?? new EnvelopeStoreError('INJECTED_FAULT', `injected fault: ${op} call ${n}${fault.when === 'after' ? ' (after it completed)' : ''}`);
}
