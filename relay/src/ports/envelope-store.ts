// SPDX-License-Identifier: AGPL-3.0-only
/**
 * The envelope store port: per-device queues of opaque ciphertext envelopes with
 * server-assigned sequence numbers, message-id dedup for the retention window, and batched
 * commits. The embedded adapter is SQLite (`storage/sqlite-envelope-store.ts`); a cluster
 * adapter (Cassandra / ScyllaDB) passes the same contract suite
 * (`test/contract/envelope-store-contract.ts`).
 *
 * Invariants every adapter keeps:
 * - A queue's sequence numbers start at 1 and strictly increase; a number is never handed out
 *   twice for a queue, also after its envelopes were acknowledged, after `dropQueue`, and after
 *   a restart.
 * - An envelope is durable when the `enqueue` call that created it resolves.
 * - Every envelope has a dedup entry `(destination, deviceId, messageId) → (contentHash, seq)`
 *   that lives until the request's `expiresAt`, also after the envelope was acknowledged.
 * - `depth` counts the envelopes stored in a queue; envelopes past `expiresAt` count until
 *   `expire` removes them (they are never read).
 * - Time: `read` and `expire` are judged at the `nowMs` they are given; `enqueue` judges
 *   whether an old dedup entry is still alive by the adapter's injected clock.
 * - Hybrid fan-out (DESIGN §5): a body shared by many envelopes (`EnqueueRequest.sharedBody`) is
 *   stored once, however many envelopes and requests name it, and lives exactly as long as an
 *   envelope refers to it: it is never deleted while one does, and goes with the last one
 *   (acked, expired, dropped or replaced).
 */
import type { Aci, DeviceId, MessageId, Seq } from '@parley/protocol';

/** One device's queue. */
export interface QueueAddress {
  readonly aci: Aci;
  readonly deviceId: DeviceId;
}

/** The sender of an envelope as the relay authenticated it; absent for sealed sender. */
export interface EnvelopeSource {
  readonly aci: Aci;
  readonly deviceId: DeviceId;
  /** The sender's home domain (the relay's own domain for local senders). */
  readonly domain: string;
}

/** One device's envelope of a send, before it has a sequence number. */
export interface NewEnvelope {
  readonly deviceId: DeviceId;
  /** The protocol `EnvelopeType`; stored and returned as it is. */
  readonly type: number;
  /** The ciphertext; the store never reads it. */
  readonly content: Uint8Array;
  /** 16 bytes computed by the relay from `content`; a retry with another hash is ID_REUSED. */
  readonly contentHash: Uint8Array;
}

/** The part a multi-recipient send's envelopes share, stored once (hybrid fan-out). */
export interface SharedBody {
  /**
   * 32 bytes that name `bytes` (the relay uses their SHA-256): two requests with the same id
   * share one stored body, so the caller must never give one id to different bytes.
   */
  readonly id: Uint8Array;
  /** The shared bytes; not empty. The store never reads them. */
  readonly bytes: Uint8Array;
}

/**
 * A whole Send: one message id, N destination devices of one account; all-or-nothing.
 * Each device appears at most once; `envelopes` is not empty.
 */
export interface EnqueueRequest {
  readonly destination: Aci;
  /** 32-character lowercase hex of the 16 wire bytes. */
  readonly messageId: MessageId;
  /** Absent for sealed sender. */
  readonly source?: EnvelopeSource;
  /** Sender clock, milliseconds since the epoch. */
  readonly timestamp: number;
  /** Relay clock at intake, milliseconds since the epoch. */
  readonly serverTimestamp: number;
  readonly urgent: boolean;
  /** Milliseconds since the epoch; the envelopes and their dedup entries vanish at this time. */
  readonly expiresAt: number;
  /** Queue cap in envelopes: a device at or past it cannot take a new envelope (QUEUE_FULL). */
  readonly maxQueueDepth: number;
  readonly envelopes: readonly NewEnvelope[];
  /**
   * A body shared with other envelopes (one part of a multi-recipient send): each envelope of the
   * request stores only its `content` (a small per-recipient header) and a reference to the body,
   * and reads return `content ‖ sharedBody.bytes`. The dedup hash stays the caller's
   * `contentHash` (the relay hashes the header with the body's id).
   */
  readonly sharedBody?: SharedBody;
  /**
   * The requests of one multi-recipient send carry the same group number (a positive integer)
   * and stand next to each other in the batch, one per destination account. They are judged
   * together for ID_REUSED: when any of them would be refused `id-reused`, every one of them is
   * (each listing its own devices, possibly none) and nothing of the group is written.
   * QUEUE_FULL stays per request: the group's other requests are queued.
   */
  readonly group?: number;
}

/** The sequence number a device's envelope got (or had, for a duplicate). */
export interface EnqueuedSeq {
  readonly deviceId: DeviceId;
  readonly seq: Seq;
  /** True when this device already had this message id with the same content hash: not enqueued again. */
  readonly duplicate: boolean;
}

/**
 * The outcome of one request. `queued` lists every device of the request in request order.
 * `id-reused` (checked first) lists the devices whose live dedup entry has another content hash;
 * `queue-full` lists the devices that would get a new envelope but are at their cap. Neither of
 * the two refusals wrote anything.
 */
export type EnqueueResult =
  | { readonly status: 'queued'; readonly seqs: readonly EnqueuedSeq[] }
  | { readonly status: 'id-reused'; readonly deviceIds: readonly DeviceId[] }
  | { readonly status: 'queue-full'; readonly deviceIds: readonly DeviceId[] };

/** An envelope as delivered from a queue. */
export interface StoredEnvelope {
  readonly seq: Seq;
  readonly type: number;
  /** The 16 wire bytes of the message id. */
  readonly messageId: Uint8Array;
  readonly source?: EnvelopeSource;
  /** Sender clock, milliseconds since the epoch. */
  readonly timestamp: number;
  /** Relay clock at intake, milliseconds since the epoch. */
  readonly serverTimestamp: number;
  readonly urgent: boolean;
  readonly content: Uint8Array;
}

/** A device's acknowledgement: everything up to `upTo` (0 = nothing) plus the listed sequence numbers. */
export interface AckRequest {
  readonly queue: QueueAddress;
  /** Cumulative: every seq <= upTo is acknowledged; 0 acknowledges nothing cumulatively. */
  readonly upTo: number;
  /** Selective: these seqs are acknowledged too. */
  readonly seqs: readonly Seq[];
}

/** Counts of rows removed by one `expire` call. */
export interface ExpireCounts {
  readonly envelopes: number;
  readonly dedup: number;
}

/** See the module comment. */
export interface EnvelopeStore {
  /**
   * Commits a batch of sends in one durable write (one transaction, one fsync). Results come in
   * request order. Requests are judged one after the other, each seeing what the earlier ones
   * wrote (the same message id twice in one batch: the second is a duplicate or ID_REUSED), and
   * one request's refusal never changes another's outcome.
   * @throws EnvelopeStoreError INVALID_REQUEST when a request is malformed (a relay bug; nothing
   *   of the batch is written), STORE_CLOSED after `close`; any backend error rejects the whole
   *   batch with nothing written.
   */
  enqueue(requests: readonly EnqueueRequest[]): Promise<EnqueueResult[]>;
  /**
   * Envelopes of `queue` with seq > `afterSeq`, in seq order, at most `limit`, skipping those
   * whose `expiresAt` <= `nowMs`. An unknown queue is empty.
   */
  read(queue: QueueAddress, afterSeq: number, limit: number, nowMs: number): Promise<StoredEnvelope[]>;
  /**
   * Deletes acknowledged envelopes: in each request's queue only, those with seq <= `upTo` or
   * listed in `seqs`. Many queues per call, one transaction. Dedup entries stay. Returns how
   * many envelopes were deleted (unknown or already deleted seqs count nothing).
   */
  ack(requests: readonly AckRequest[]): Promise<number>;
  /** Envelopes stored in a queue (for metrics and QUEUE_FULL); 0 for an unknown queue. */
  depth(queue: QueueAddress): Promise<number>;
  /**
   * Envelopes stored in all queues (the queue-depth metric; counted like `depth`). Optional: an
   * adapter whose backend cannot count cheaply (a Cassandra table scan) leaves it out, and the
   * metric is then absent. It may cost a pass over the queue counters, so callers sample it.
   */
  totalDepth?(): Promise<number>;
  /**
   * The shared bodies stored and their total bytes (tests and diagnostics). Optional like
   * `totalDepth`: an adapter that cannot count cheaply leaves it out.
   */
  sharedBodyUsage?(): Promise<{ readonly bodies: number; readonly bytes: number }>;
  /** Drops a removed device's envelopes and dedup entries. Its sequence counter is kept (never reused). */
  dropQueue(queue: QueueAddress): Promise<void>;
  /**
   * Deletes envelopes and dedup entries whose `expiresAt` <= `nowMs`, at most `limit` of each per
   * call (call again while a count equals `limit`). Returns what it deleted.
   */
  expire(nowMs: number, limit: number): Promise<ExpireCounts>;
  /** Closes the store; later calls reject with STORE_CLOSED. Idempotent. */
  close(): Promise<void>;
}

/** Stable codes of {@link EnvelopeStoreError}. */
export type EnvelopeStoreErrorCode =
  /** A request broke the port's preconditions (a bug in the caller); nothing was written. */
  | 'INVALID_REQUEST'
  /** The store was closed. */
  | 'STORE_CLOSED'
  /** Another process (or another store in this process) owns the database. */
  | 'STORE_LOCKED'
  /** The database holds migrations this version does not know (a newer or diverged version wrote it); it is left untouched. */
  | 'SCHEMA_UNKNOWN'
  /** A fault injected by a test wrapper. */
  | 'INJECTED_FAULT';

/**
 * An error of an envelope store, with a stable code. These never cross the wire: the relay
 * answers them as INTERNAL. Messages carry no envelope content.
 */
export class EnvelopeStoreError extends Error {
  override readonly name = 'EnvelopeStoreError';
  /** The stable code. */
  readonly code: EnvelopeStoreErrorCode;

  constructor(code: EnvelopeStoreErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }

  /** Narrowing check by code. */
  is<C extends EnvelopeStoreErrorCode>(code: C): this is EnvelopeStoreError & { code: C } {
    return this.code === code;
  }
}

/** True when `err` is an {@link EnvelopeStoreError} (optionally of `code`). */
export function isEnvelopeStoreError(err: unknown, code?: EnvelopeStoreErrorCode): err is EnvelopeStoreError {
  return err instanceof EnvelopeStoreError && (code === undefined || err.code === code);
}
