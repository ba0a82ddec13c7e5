// SPDX-License-Identifier: AGPL-3.0-only
/**
 * The embedded envelope store: SQLite through better-sqlite3, in WAL mode, one transaction (one
 * fsync) per `enqueue` or `ack` batch. Schema and its reasons: `migrations/0001-envelope-queues.ts`,
 * and for the bodies shared by the envelopes of a multi-recipient send `migrations/0002-shared-bodies.ts`
 * (stored once, found again by digest, released by a trigger with their last envelope).
 *
 * Hot path of one device's envelope: one dedup lookup by primary key, one envelope insert, one
 * dedup insert; the queue's counter row (next_seq, depth) is read once into memory and written
 * once per batch for each queue the batch touched. Caching counters is safe only because one
 * store owns the file: `acquireFileLock` enforces that across processes and within one. If a
 * transaction fails, the whole counter cache is dropped and reloaded from the database, so
 * memory never keeps a number the database rolled back.
 *
 * better-sqlite3 is synchronous: a commit, its fsync included, runs on the caller's thread. The
 * async methods keep the port free to move the work to a worker or a network backend later.
 */
import Database, { type Statement } from 'better-sqlite3';
import { LIMITS, type Aci, type DeviceId, type Seq } from '@parley/protocol';
import { systemClock, type Clock } from '../clock.js';
import {
  EnvelopeStoreError,
  type AckRequest,
  type EnqueueRequest,
  type EnqueueResult,
  type EnqueuedSeq,
  type EnvelopeStore,
  type ExpireCounts,
  type QueueAddress,
  type StoredEnvelope,
} from '../ports/envelope-store.js';
import { ENVELOPE_STORE_MIGRATIONS } from './envelope-store-migrations.js';
import { acquireFileLock, type FileLock } from './sqlite-file-lock.js';
import { applyMigrations } from './sqlite-migrations.js';

/** Options of {@link openSqliteEnvelopeStore}. */
export interface SqliteEnvelopeStoreOptions {
  /**
   * The database file (created with its directory's permissions). Its owner lock is
   * `<path>.lock`; WAL mode adds `<path>-wal` and `<path>-shm`. `':memory:'` gives a throwaway
   * store with no file, no lock and no durability (tests).
   */
  readonly path: string;
  /**
   * Durability of a commit. `'full'` (default): the WAL is fsynced at every commit, so an
   * envelope whose `enqueue` resolved survives a power loss or a kernel crash. `'normal'`: fsync
   * only at checkpoints; a resolved envelope survives a crash of the relay process (the WAL is in
   * the OS page cache), but a power loss may drop the last commits — senders were already acked
   * for them. `'normal'` saves an fsync per batch, which matters on disks with slow flushes.
   */
  readonly synchronous?: 'full' | 'normal';
  /** Judges whether an old dedup entry is still alive during `enqueue`, and stamps migrations. Default: the system clock. */
  readonly clock?: Clock;
  /** SQLite page cache, KiB. Default 65,536 (64 MiB). */
  readonly cacheSizeKiB?: number;
  /**
   * WAL size, in pages (4 KiB each), that triggers a checkpoint (copying the WAL back into the
   * database file). Default 10,000 (about 40 MiB): hot pages — the dedup and queue indexes — are
   * rewritten many times between checkpoints but copied once, which measured about a third more
   * enqueues per second than SQLite's default of 1,000. The price is a larger WAL on disk and a
   * longer, rarer pause when a checkpoint runs.
   */
  readonly walAutocheckpointPages?: number;
  /**
   * Most queue counters kept in memory; past it the oldest are forgotten (and reloaded by
   * primary key when needed). Each costs roughly 200 bytes. Default 200,000.
   */
  readonly maxCachedQueues?: number;
}

/** A queue's counter row, cached. */
interface QueueState {
  readonly key: string;
  readonly queueId: number;
  nextSeq: number;
  depth: number;
}

interface QueueRow {
  queue_id: number;
  next_seq: number;
  depth: number;
}

interface DedupRow {
  content_hash: Buffer;
  seq: number;
  expires_at: number;
}

interface ExpiredRow {
  queue_id: number;
  message_id: Buffer;
  seq: number;
}

type EnvelopeRow = [
  seq: number,
  type: number,
  messageId: Buffer,
  sourceAci: string | null,
  sourceDevice: number | null,
  sourceDomain: string | null,
  timestamp: number,
  serverTimestamp: number,
  urgent: number,
  content: Buffer,
  bodyId: number | null,
];

/** A request after its lookups, before any write. */
type RequestPlan =
  | { readonly kind: 'refused'; readonly result: EnqueueResult }
  | { readonly kind: 'write'; readonly plans: DevicePlan[] };

/** One device of a request after the lookups, before any write. */
interface DevicePlan {
  readonly deviceId: DeviceId;
  readonly type: number;
  readonly content: Uint8Array;
  readonly contentHash: Uint8Array;
  queue: QueueState | undefined;
  /** The seq of a live dedup entry with the same hash: a duplicate. */
  duplicateOf: number | undefined;
  /** The seq of an expired dedup entry that the new one replaces. */
  staleSeq: number | undefined;
}

const MESSAGE_ID_HEX = /^[0-9a-f]{32}$/;
const CONTENT_HASH_BYTES = 16;
const SHARED_BODY_ID_BYTES = 32;

/**
 * Opens (creating and migrating if needed) the envelope store at `options.path` and takes
 * ownership of it.
 * @throws EnvelopeStoreError STORE_LOCKED when another store owns the file; SCHEMA_UNKNOWN when a
 *   newer relay wrote it.
 */
export function openSqliteEnvelopeStore(options: SqliteEnvelopeStoreOptions): SqliteEnvelopeStore {
  const synchronous = options.synchronous ?? 'full';
  if (synchronous !== 'full' && synchronous !== 'normal') {
    throw new EnvelopeStoreError('INVALID_REQUEST', 'synchronous must be full or normal');
  }
  const cacheSizeKiB = options.cacheSizeKiB ?? 65_536;
  const maxCachedQueues = options.maxCachedQueues ?? 200_000;
  const walAutocheckpointPages = options.walAutocheckpointPages ?? 10_000;
  if (!Number.isSafeInteger(cacheSizeKiB) || cacheSizeKiB < 64) throw new EnvelopeStoreError('INVALID_REQUEST', 'cacheSizeKiB must be an integer >= 64');
  if (!Number.isSafeInteger(maxCachedQueues) || maxCachedQueues < 1) throw new EnvelopeStoreError('INVALID_REQUEST', 'maxCachedQueues must be a positive integer');
  if (!Number.isSafeInteger(walAutocheckpointPages) || walAutocheckpointPages < 1) {
    throw new EnvelopeStoreError('INVALID_REQUEST', 'walAutocheckpointPages must be a positive integer');
  }
  const clock = options.clock ?? systemClock;
  const memory = options.path === ':memory:';
  const lock = memory ? undefined : acquireFileLock(options.path);
  let db: Database.Database | undefined;
  try {
    db = new Database(options.path);
    if (!memory) {
      const mode = db.pragma('journal_mode = WAL', { simple: true });
      if (mode !== 'wal') throw new Error(`SQLite refused WAL mode (got ${String(mode)})`);
    }
    db.pragma(`synchronous = ${synchronous === 'full' ? 'FULL' : 'NORMAL'}`);
    db.pragma(`cache_size = -${cacheSizeKiB}`);
    db.pragma(`wal_autocheckpoint = ${walAutocheckpointPages}`);
    // After a burst past the checkpoint size the WAL file is cut back to this instead of staying large.
    db.pragma(`journal_size_limit = ${Math.max(64 * 1024 * 1024, walAutocheckpointPages * 4096 * 2)}`);
    applyMigrations(db, ENVELOPE_STORE_MIGRATIONS, clock.now());
    return new SqliteEnvelopeStore(db, lock, clock, maxCachedQueues);
  } catch (err) {
    db?.close();
    lock?.release();
    throw err;
  }
}

/** The SQLite adapter of the envelope store port; build it with {@link openSqliteEnvelopeStore}. */
export class SqliteEnvelopeStore implements EnvelopeStore {
  private readonly db: Database.Database;
  private readonly lock: FileLock | undefined;
  private readonly clock: Clock;
  private readonly maxCachedQueues: number;
  private readonly byKey = new Map<string, QueueState>();
  private readonly byId = new Map<number, QueueState>();
  private closed = false;

  private readonly selectQueue: Statement<[string, number], QueueRow>;
  private readonly insertQueue: Statement<[string, number], QueueRow>;
  private readonly selectQueueById: Statement<[number], QueueRow & { aci: string; device_id: number }>;
  private readonly updateQueue: Statement<[number, number, number]>;
  private readonly selectDedup: Statement<[number, Buffer], DedupRow>;
  private readonly upsertDedup: Statement<[number, Buffer, Uint8Array, number, number]>;
  private readonly deleteDedup: Statement<[number, Buffer]>;
  private readonly deleteQueueDedup: Statement<[number]>;
  private readonly selectExpired: Statement<[number, number], ExpiredRow>;
  private readonly insertEnvelope: Statement<unknown[]>;
  private readonly selectEnvelopes: Statement<[number, number, number, number], EnvelopeRow>;
  private readonly deleteEnvelope: Statement<[number, number]>;
  private readonly deleteEnvelopesUpTo: Statement<[number, number]>;
  private readonly deleteQueueEnvelopes: Statement<[number]>;
  private readonly sumDepth: Statement<[]>;
  private readonly selectBodyId: Statement<[Uint8Array], { body_id: number }>;
  private readonly insertBody: Statement<[Uint8Array, Uint8Array], { body_id: number }>;
  private readonly selectBody: Statement<[number], { content: Buffer }>;
  private readonly bodyUsage: Statement<[], { bodies: number; bytes: number }>;

  private readonly enqueueTx: (requests: readonly EnqueueRequest[], nowMs: number) => EnqueueResult[];
  private readonly ackTx: (requests: readonly AckRequest[]) => number;
  private readonly expireTx: (nowMs: number, limit: number) => ExpireCounts;
  private readonly dropTx: (queue: QueueAddress) => void;

  /** Use {@link openSqliteEnvelopeStore}; the database must be migrated and owned (locked). */
  constructor(db: Database.Database, lock: FileLock | undefined, clock: Clock, maxCachedQueues: number) {
    this.db = db;
    this.lock = lock;
    this.clock = clock;
    this.maxCachedQueues = maxCachedQueues;

    this.selectQueue = db.prepare('SELECT queue_id, next_seq, depth FROM device_queue WHERE aci = ? AND device_id = ?');
    this.insertQueue = db.prepare(
      'INSERT INTO device_queue (aci, device_id, next_seq, depth) VALUES (?, ?, 1, 0) RETURNING queue_id, next_seq, depth',
    );
    this.selectQueueById = db.prepare('SELECT queue_id, aci, device_id, next_seq, depth FROM device_queue WHERE queue_id = ?');
    this.updateQueue = db.prepare('UPDATE device_queue SET next_seq = ?, depth = ? WHERE queue_id = ?');
    this.selectDedup = db.prepare('SELECT content_hash, seq, expires_at FROM message_dedup WHERE queue_id = ? AND message_id = ?');
    // The conflict branch runs only when an expired, not yet swept entry is reused.
    this.upsertDedup = db.prepare(
      `INSERT INTO message_dedup (queue_id, message_id, content_hash, seq, expires_at) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (queue_id, message_id) DO UPDATE SET content_hash = excluded.content_hash, seq = excluded.seq, expires_at = excluded.expires_at`,
    );
    this.deleteDedup = db.prepare('DELETE FROM message_dedup WHERE queue_id = ? AND message_id = ?');
    this.deleteQueueDedup = db.prepare('DELETE FROM message_dedup WHERE queue_id = ?');
    this.selectExpired = db.prepare(
      'SELECT queue_id, message_id, seq FROM message_dedup WHERE expires_at <= ? ORDER BY expires_at LIMIT ?',
    );
    this.insertEnvelope = db.prepare(
      `INSERT INTO envelope (queue_id, seq, type, message_id, source_aci, source_device, source_domain,
         timestamp, server_timestamp, urgent, expires_at, content, body_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    this.selectEnvelopes = db
      .prepare<[number, number, number, number], EnvelopeRow>(
        `SELECT seq, type, message_id, source_aci, source_device, source_domain, timestamp, server_timestamp, urgent, content, body_id
         FROM envelope WHERE queue_id = ? AND seq > ? AND expires_at > ? ORDER BY seq LIMIT ?`,
      )
      .raw(true);
    this.selectBodyId = db.prepare('SELECT body_id FROM shared_body WHERE digest = ?');
    this.insertBody = db.prepare('INSERT INTO shared_body (digest, content) VALUES (?, ?) RETURNING body_id');
    this.selectBody = db.prepare('SELECT content FROM shared_body WHERE body_id = ?');
    this.bodyUsage = db.prepare('SELECT count(*) AS bodies, COALESCE(SUM(length(content)), 0) AS bytes FROM shared_body');
    this.deleteEnvelope = db.prepare('DELETE FROM envelope WHERE queue_id = ? AND seq = ?');
    this.deleteEnvelopesUpTo = db.prepare('DELETE FROM envelope WHERE queue_id = ? AND seq <= ?');
    this.deleteQueueEnvelopes = db.prepare('DELETE FROM envelope WHERE queue_id = ?');
    this.sumDepth = db.prepare('SELECT COALESCE(SUM(depth), 0) FROM device_queue');

    this.enqueueTx = this.guarded(db.transaction((requests: readonly EnqueueRequest[], nowMs: number) => this.enqueueAll(requests, nowMs)));
    this.ackTx = this.guarded(db.transaction((requests: readonly AckRequest[]) => this.ackAll(requests)));
    this.expireTx = this.guarded(db.transaction((nowMs: number, limit: number) => this.expireSome(nowMs, limit)));
    this.dropTx = this.guarded(db.transaction((queue: QueueAddress) => this.drop(queue)));
  }

  async enqueue(requests: readonly EnqueueRequest[]): Promise<EnqueueResult[]> {
    this.assertOpen();
    for (const r of requests) validateEnqueue(r);
    validateGroups(requests);
    if (requests.length === 0) return [];
    return this.enqueueTx(requests, this.clock.now());
  }

  async read(queue: QueueAddress, afterSeq: number, limit: number, nowMs: number): Promise<StoredEnvelope[]> {
    this.assertOpen();
    if (!Number.isSafeInteger(afterSeq) || afterSeq < 0) throw invalid('afterSeq must be a non-negative integer');
    if (!Number.isSafeInteger(limit) || limit < 0) throw invalid('limit must be a non-negative integer');
    if (!Number.isFinite(nowMs)) throw invalid('nowMs must be a number');
    if (limit === 0) return [];
    const q = this.queueOf(queue.aci, queue.deviceId, false);
    if (!q) return [];
    const rows = this.selectEnvelopes.all(q.queueId, afterSeq, nowMs, limit);
    const out = new Array<StoredEnvelope>(rows.length);
    // A queue holds one envelope per multi-recipient send, so bodies rarely repeat within a read;
    // the map only spares a second lookup when they do.
    let bodies: Map<number, Buffer> | undefined;
    for (let i = 0; i < rows.length; i++) {
      const [seq, type, messageId, sourceAci, sourceDevice, sourceDomain, timestamp, serverTimestamp, urgent, header, bodyId] = rows[i]!;
      let content: Uint8Array = header;
      if (bodyId !== null) {
        bodies ??= new Map();
        let body = bodies.get(bodyId);
        if (!body) {
          body = this.selectBody.get(bodyId)?.content;
          // The trigger of migration 0002 deletes a body only with its last envelope.
          if (!body) throw new Error(`envelope ${seq} names shared body ${bodyId}, which is missing`);
          bodies.set(bodyId, body);
        }
        content = Buffer.concat([header, body]);
      }
      out[i] = {
        seq: seq as Seq,
        type,
        messageId,
        ...(sourceAci !== null
          ? { source: { aci: sourceAci as Aci, deviceId: sourceDevice as DeviceId, domain: sourceDomain ?? '' } }
          : {}),
        timestamp,
        serverTimestamp,
        urgent: urgent !== 0,
        content,
      };
    }
    return out;
  }

  async ack(requests: readonly AckRequest[]): Promise<number> {
    this.assertOpen();
    for (const r of requests) validateAck(r);
    if (requests.length === 0) return 0;
    return this.ackTx(requests);
  }

  async depth(queue: QueueAddress): Promise<number> {
    this.assertOpen();
    return this.queueOf(queue.aci, queue.deviceId, false)?.depth ?? 0;
  }

  async totalDepth(): Promise<number> {
    this.assertOpen();
    // One row per device queue ever used (not per envelope): a few milliseconds per 100,000 devices.
    return this.sumDepth.pluck().get() as number;
  }

  async sharedBodyUsage(): Promise<{ bodies: number; bytes: number }> {
    this.assertOpen();
    const row = this.bodyUsage.get()!;
    return { bodies: row.bodies, bytes: row.bytes };
  }

  async dropQueue(queue: QueueAddress): Promise<void> {
    this.assertOpen();
    this.dropTx(queue);
  }

  async expire(nowMs: number, limit: number): Promise<ExpireCounts> {
    this.assertOpen();
    if (!Number.isFinite(nowMs)) throw invalid('nowMs must be a number');
    if (!Number.isSafeInteger(limit) || limit < 0) throw invalid('limit must be a non-negative integer');
    if (limit === 0) return { envelopes: 0, dedup: 0 };
    return this.expireTx(nowMs, limit);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.byKey.clear();
    this.byId.clear();
    try {
      this.db.close();
    } finally {
      this.lock?.release();
    }
  }

  /** The database settings in force, read back from SQLite (for diagnostics and tests). */
  settings(): { journalMode: string; synchronous: 'full' | 'normal' | 'other' } {
    this.assertOpen();
    const journalMode = String(this.db.pragma('journal_mode', { simple: true }));
    const level = this.db.pragma('synchronous', { simple: true });
    return { journalMode, synchronous: level === 2 ? 'full' : level === 1 ? 'normal' : 'other' };
  }

  private assertOpen(): void {
    if (this.closed) throw new EnvelopeStoreError('STORE_CLOSED', 'the envelope store is closed');
  }

  /**
   * Wraps a transaction: on failure the counter cache is dropped (SQLite rolled back what the
   * cache may already hold); after success the cache is trimmed to its bound.
   */
  private guarded<A extends unknown[], R>(tx: (...args: A) => R): (...args: A) => R {
    return (...args: A): R => {
      let result: R;
      try {
        result = tx(...args);
      } catch (err) {
        this.byKey.clear();
        this.byId.clear();
        throw err;
      }
      this.trimCache();
      return result;
    };
  }

  private trimCache(): void {
    if (this.byKey.size <= this.maxCachedQueues) return;
    // Maps iterate in insertion order: the oldest loaded go first. Only between transactions,
    // when every cached counter equals its committed row.
    const target = Math.floor(this.maxCachedQueues * 0.9);
    for (const [key, q] of this.byKey) {
      if (this.byKey.size <= target) break;
      this.byKey.delete(key);
      this.byId.delete(q.queueId);
    }
  }

  private remember(key: string, row: QueueRow): QueueState {
    const q: QueueState = { key, queueId: row.queue_id, nextSeq: row.next_seq, depth: row.depth };
    this.byKey.set(key, q);
    this.byId.set(q.queueId, q);
    return q;
  }

  private queueOf(aci: Aci, deviceId: DeviceId, create: boolean): QueueState | undefined {
    const key = `${aci}.${deviceId}`;
    const cached = this.byKey.get(key);
    if (cached) return cached;
    const row = this.selectQueue.get(aci, deviceId) ?? (create ? this.insertQueue.get(aci, deviceId) : undefined);
    return row ? this.remember(key, row) : undefined;
  }

  private queueById(queueId: number): QueueState {
    const cached = this.byId.get(queueId);
    if (cached) return cached;
    const row = this.selectQueueById.get(queueId);
    if (!row) throw new Error(`queue ${queueId} has envelopes but no counter row`);
    return this.remember(`${row.aci}.${row.device_id}`, row);
  }

  private enqueueAll(requests: readonly EnqueueRequest[], nowMs: number): EnqueueResult[] {
    const touched = new Set<QueueState>();
    // Bodies written or found in this transaction, by digest (hex): one lookup per body, not per request.
    const bodies = new Map<string, number>();
    const results = new Array<EnqueueResult>(requests.length);
    for (let i = 0; i < requests.length; ) {
      const group = requests[i]!.group;
      let end = i + 1;
      if (group !== undefined) while (end < requests.length && requests[end]!.group === group) end++;
      // Every request of a group is looked up before any is written: one id-reused refuses all.
      const plans = requests.slice(i, end).map((r) => this.planOne(r, nowMs));
      const reused = plans.some((p) => p.kind === 'refused' && p.result.status === 'id-reused');
      for (let k = 0; k < plans.length; k++) {
        const p = plans[k]!;
        if (reused) {
          results[i + k] = p.kind === 'refused' && p.result.status === 'id-reused' ? p.result : { status: 'id-reused', deviceIds: [] };
        } else {
          results[i + k] = p.kind === 'refused' ? p.result : this.writeOne(requests[i + k]!, p.plans, touched, bodies);
        }
      }
      i = end;
    }
    for (const q of touched) this.updateQueue.run(q.nextSeq, q.depth, q.queueId);
    return results;
  }

  /** Looks a request up without writing: a refusal must leave no trace. */
  private planOne(req: EnqueueRequest, nowMs: number): RequestPlan {
    const messageId = Buffer.from(req.messageId, 'hex');
    const plans: DevicePlan[] = [];
    let reused: DeviceId[] | undefined;
    for (const env of req.envelopes) {
      const queue = this.queueOf(req.destination, env.deviceId, false);
      const plan: DevicePlan = {
        deviceId: env.deviceId,
        type: env.type,
        content: env.content,
        contentHash: env.contentHash,
        queue,
        duplicateOf: undefined,
        staleSeq: undefined,
      };
      const entry = queue ? this.selectDedup.get(queue.queueId, messageId) : undefined;
      if (entry) {
        if (entry.expires_at <= nowMs) plan.staleSeq = entry.seq;
        else if (entry.content_hash.equals(env.contentHash)) plan.duplicateOf = entry.seq;
        else (reused ??= []).push(env.deviceId);
      }
      plans.push(plan);
    }
    if (reused) return { kind: 'refused', result: { status: 'id-reused', deviceIds: reused } };

    let full: DeviceId[] | undefined;
    for (const p of plans) {
      if (p.duplicateOf === undefined && (p.queue?.depth ?? 0) >= req.maxQueueDepth) (full ??= []).push(p.deviceId);
    }
    if (full) return { kind: 'refused', result: { status: 'queue-full', deviceIds: full } };
    return { kind: 'write', plans };
  }

  private writeOne(req: EnqueueRequest, plans: readonly DevicePlan[], touched: Set<QueueState>, bodies: Map<string, number>): EnqueueResult {
    const messageId = Buffer.from(req.messageId, 'hex');
    const source = req.source;
    const urgent = req.urgent ? 1 : 0;
    const seqs = new Array<EnqueuedSeq>(plans.length);
    for (let i = 0; i < plans.length; i++) {
      const p = plans[i]!;
      if (p.duplicateOf !== undefined) {
        seqs[i] = { deviceId: p.deviceId, seq: p.duplicateOf as Seq, duplicate: true };
        continue;
      }
      const q = p.queue ?? this.queueOf(req.destination, p.deviceId, true)!;
      if (p.staleSeq !== undefined) {
        // The expired entry's envelope (if not acked) is expired too; it goes with its entry,
        // which keeps "every envelope has its dedup entry" true for the sweep.
        q.depth -= this.deleteEnvelope.run(q.queueId, p.staleSeq).changes;
      }
      // Looked up after the stale envelope is gone: deleting it may have released this very body.
      const bodyId = req.sharedBody ? this.bodyIdFor(req.sharedBody.id, req.sharedBody.bytes, bodies) : null;
      const seq = q.nextSeq;
      this.insertEnvelope.run(
        q.queueId,
        seq,
        p.type,
        messageId,
        source?.aci ?? null,
        source?.deviceId ?? null,
        source?.domain ?? null,
        req.timestamp,
        req.serverTimestamp,
        urgent,
        req.expiresAt,
        p.content,
        bodyId,
      );
      this.upsertDedup.run(q.queueId, messageId, p.contentHash, seq, req.expiresAt);
      q.nextSeq = seq + 1;
      q.depth++;
      touched.add(q);
      seqs[i] = { deviceId: p.deviceId, seq: seq as Seq, duplicate: false };
    }
    return { status: 'queued', seqs };
  }

  /**
   * The stored body with this digest, written now if there is none. Called right before an
   * envelope that names it is inserted: a body written here always gets its first reference in
   * the same transaction, and once an envelope of this transaction names it nothing later in the
   * transaction can release it (only expired dedup entries' envelopes are deleted at enqueue).
   */
  private bodyIdFor(digest: Uint8Array, bytes: Uint8Array, bodies: Map<string, number>): number {
    const key = Buffer.from(digest.buffer, digest.byteOffset, digest.byteLength).toString('hex');
    const known = bodies.get(key);
    if (known !== undefined) return known;
    const id = this.selectBodyId.get(digest)?.body_id ?? this.insertBody.get(digest, bytes)!.body_id;
    bodies.set(key, id);
    return id;
  }

  private ackAll(requests: readonly AckRequest[]): number {
    const touched = new Set<QueueState>();
    let total = 0;
    for (const r of requests) {
      const q = this.queueOf(r.queue.aci, r.queue.deviceId, false);
      if (!q) continue;
      let n = r.upTo > 0 ? this.deleteEnvelopesUpTo.run(q.queueId, r.upTo).changes : 0;
      for (const s of r.seqs) if (s > r.upTo) n += this.deleteEnvelope.run(q.queueId, s).changes;
      if (n === 0) continue;
      q.depth -= n;
      total += n;
      touched.add(q);
    }
    for (const q of touched) this.updateQueue.run(q.nextSeq, q.depth, q.queueId);
    return total;
  }

  private expireSome(nowMs: number, limit: number): ExpireCounts {
    const rows = this.selectExpired.all(nowMs, limit);
    const touched = new Set<QueueState>();
    let envelopes = 0;
    for (const row of rows) {
      // Every envelope has exactly one dedup entry with its seq and expiry: deleting through the
      // entry reaches every expired envelope, whether or not it was acknowledged.
      if (this.deleteEnvelope.run(row.queue_id, row.seq).changes > 0) {
        const q = this.queueById(row.queue_id);
        q.depth--;
        touched.add(q);
        envelopes++;
      }
      this.deleteDedup.run(row.queue_id, row.message_id);
    }
    for (const q of touched) this.updateQueue.run(q.nextSeq, q.depth, q.queueId);
    return { envelopes, dedup: rows.length };
  }

  private drop(queue: QueueAddress): void {
    const q = this.queueOf(queue.aci, queue.deviceId, false);
    if (!q) return;
    this.deleteQueueEnvelopes.run(q.queueId);
    this.deleteQueueDedup.run(q.queueId);
    q.depth = 0;
    this.updateQueue.run(q.nextSeq, q.depth, q.queueId);
  }
}

function invalid(why: string): EnvelopeStoreError {
  return new EnvelopeStoreError('INVALID_REQUEST', why);
}

function isTime(n: unknown): boolean {
  return typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;
}

function isDeviceId(n: unknown): boolean {
  return typeof n === 'number' && Number.isInteger(n) && n >= 1 && n <= LIMITS.maxDeviceId;
}

/** Checks the port's preconditions of one request (the relay validated the send already). */
function validateEnqueue(r: EnqueueRequest): void {
  if (typeof r.destination !== 'string' || r.destination.length === 0) throw invalid('destination must be an ACI');
  if (typeof r.messageId !== 'string' || !MESSAGE_ID_HEX.test(r.messageId)) throw invalid('messageId must be 32 lowercase hex characters');
  if (!isTime(r.timestamp) || !isTime(r.serverTimestamp) || !isTime(r.expiresAt)) {
    throw invalid('timestamp, serverTimestamp and expiresAt must be non-negative integer milliseconds');
  }
  if (!Number.isSafeInteger(r.maxQueueDepth) || r.maxQueueDepth < 0) throw invalid('maxQueueDepth must be a non-negative integer');
  if (r.source !== undefined) {
    const s = r.source;
    if (typeof s.aci !== 'string' || s.aci.length === 0 || !isDeviceId(s.deviceId) || typeof s.domain !== 'string') {
      throw invalid('source must hold an ACI, a device id and a domain');
    }
  }
  if (!Array.isArray(r.envelopes) || r.envelopes.length === 0) throw invalid('a request needs at least one envelope');
  if (r.sharedBody !== undefined) {
    const b = r.sharedBody;
    if (!(b.id instanceof Uint8Array) || b.id.length !== SHARED_BODY_ID_BYTES) throw invalid(`sharedBody.id must be ${SHARED_BODY_ID_BYTES} bytes`);
    if (!(b.bytes instanceof Uint8Array) || b.bytes.length === 0) throw invalid('sharedBody.bytes must be bytes, not empty');
  }
  if (r.group !== undefined && (!Number.isSafeInteger(r.group) || r.group < 1)) throw invalid('group must be a positive integer');
  const seen = new Set<number>();
  for (const e of r.envelopes) {
    if (!isDeviceId(e.deviceId)) throw invalid('device id out of range');
    if (seen.has(e.deviceId)) throw invalid('a device appears twice in one request');
    seen.add(e.deviceId);
    if (!Number.isSafeInteger(e.type) || e.type < 0) throw invalid('type must be a non-negative integer');
    if (!(e.content instanceof Uint8Array)) throw invalid('content must be bytes');
    if (!(e.contentHash instanceof Uint8Array) || e.contentHash.length !== CONTENT_HASH_BYTES) {
      throw invalid(`contentHash must be ${CONTENT_HASH_BYTES} bytes`);
    }
  }
}

/** A group's requests stand together and name distinct destinations; a group number is not reused apart. */
function validateGroups(requests: readonly EnqueueRequest[]): void {
  const closed = new Set<number>();
  for (let i = 0; i < requests.length; ) {
    const group = requests[i]!.group;
    if (group === undefined) {
      i++;
      continue;
    }
    if (closed.has(group)) throw invalid('the requests of a group must stand next to each other');
    const destinations = new Set<string>();
    for (; i < requests.length && requests[i]!.group === group; i++) {
      if (destinations.has(requests[i]!.destination)) throw invalid('a group names a destination twice');
      destinations.add(requests[i]!.destination);
    }
    closed.add(group);
  }
}

function validateAck(r: AckRequest): void {
  if (!isDeviceId(r.queue?.deviceId) || typeof r.queue.aci !== 'string') throw invalid('ack names no valid queue');
  if (!Number.isSafeInteger(r.upTo) || r.upTo < 0) throw invalid('upTo must be a non-negative integer');
  if (!Array.isArray(r.seqs)) throw invalid('seqs must be a list');
  for (const s of r.seqs) if (!Number.isSafeInteger(s) || s < 1) throw invalid('seqs must be positive integers');
}
