// SPDX-License-Identifier: AGPL-3.0-only
/**
 * The send pipeline: a durable outbox drained over the relay connection. A send is committed to
 * the outbox before anything goes on the wire. Its ciphertexts and envelope message id are
 * saved before the first attempt, so a retry after a dropped connection or a crash resends the
 * same bytes under the same id, and the relay's dedup delivers it once. Device-set refusals
 * repair the sessions and re-encrypt (the relay committed nothing of a refused send).
 *
 * Entries for contacts whose access key is known go sealed over the unidentified socket
 * (sealed-sender.ts decides, and what a refusal there means); the saved attempt records it, so
 * a retry goes the same way with the same bytes.
 */
import { aciToBytes, isParleyError, type Aci } from '@parley/protocol';
import { CryptoError, randomMessageId } from '@parley/crypto';
import { toHex } from '@parley/protocol';
import type { RelayConnection } from '../transport/relay-connection.js';
import { ClientError } from '../errors.js';
import { TransportError } from '../transport/transport-error.js';
import { decodeContent } from './content-codec.js';
import type { DeviceCiphertext, EngineStore, OutboxEntry } from './engine-store.js';
import { isAction } from './message-actions.js';
import type { SealedPlan, SealedSending } from './sealed-sender.js';
import type { Serial } from './serial.js';
import type { SessionManager } from './session-manager.js';

/** Backoff of outbox retries, ms: attempt n waits min(max, base * 2^n). */
const RETRY_BASE_MS = 1000;
const RETRY_MAX_MS = 5 * 60_000;
/** When a send to a peer with an unaccepted identity key is looked at again, ms. */
const UNTRUSTED_RETRY_MS = 24 * 3600_000;
/** Device-set repairs per send before it is marked failed (a peer changing devices in a loop). */
const MAX_REPAIRS = 5;
/** Sends cut off by a dropped connection that are retried on the next connection without backoff. */
const TRANSPORT_RETRIES_AT_ONCE = 3;
/** How much slower than the relay's refill refused sends are spread (see the RATE_LIMITED case). */
const RATE_LIMIT_SPREAD = 1.25;
/** Outbox entries one round takes. */
const OUTBOX_BATCH = 500;
/** Sends in flight at once on the socket (the relay answers each; its window is far larger). */
const IN_FLIGHT = 256;

function unique(ids: readonly number[]): number[] {
  return [...new Set(ids)];
}

/** What the pipeline needs. */
export interface SendPipelineDeps {
  readonly store: EngineStore;
  readonly sessions: SessionManager;
  readonly serial: Serial;
  readonly connection: () => RelayConnection | undefined;
  readonly now: () => number;
  /**
   * Called in the transaction that records the relay committed `entry` (its saved ciphertexts
   * name the devices it reached), before the entry is removed.
   */
  readonly onCommitted?: (entry: OutboxEntry) => void;
  /**
   * The Content as it goes to a destination (e.g. with the account's profile key for a contact
   * who is not blocked), applied just before encryption. Default: unchanged.
   */
  readonly prepareContent?: (destinationAci: string, content: Uint8Array) => Uint8Array;
  /** Sealed sending; without it every entry goes identified. */
  readonly sealed?: SealedSending;
  /** This account's ACI (a transcript to it is no action a peer could ask for again). */
  readonly selfAci?: string;
}

/** Whether `content` is an edit, reaction, delete or timer change (a DataMessage that is an action). */
function isActionContent(content: Uint8Array): boolean {
  const c = decodeContent(content);
  return c?.body.case === 'data' && isAction(c.body.value);
}

/** What a flush did. */
export interface FlushResult {
  readonly sent: number;
  readonly pending: number;
  readonly failed: number;
  /** Peers whose identity key changed: their sends wait until the user accepts the new key. */
  readonly untrusted: readonly string[];
}

/** See the module comment. */
export class SendPipeline {
  private readonly deps: SendPipelineDeps;
  private flushing: Promise<FlushResult> | undefined;
  /** The run that follows the one in progress; every call made during a run waits for it. */
  private next: Promise<FlushResult> | undefined;
  /** When the last send refused for a rate limit is due again, ms (see the RATE_LIMITED case). */
  private nextTokenAt = 0;

  constructor(deps: SendPipelineDeps) {
    this.deps = deps;
  }

  /**
   * Sends every entry due when it is called. A run in progress listed its entries before this
   * call and may miss one just queued, so a call during a run is answered by one more run after
   * it (shared by every call made meanwhile).
   */
  flush(): Promise<FlushResult> {
    if (!this.flushing) {
      this.flushing = this.run().finally(() => (this.flushing = undefined));
      return this.flushing;
    }
    this.next ??= this.flushing
      .catch(() => undefined)
      .then(() => {
        this.next = undefined;
        return this.flush();
      });
    return this.next;
  }

  /**
   * One run, in rounds: (1) every due entry that has no saved attempt is encrypted through one
   * staged overlay, and the new session state and all the attempts are committed in one
   * transaction; (2) every attempt goes out at once, pipelined on the socket; (3) the outcomes
   * are committed in one transaction. Refusals that need session repair (device-set changes)
   * are repaired and their entries go round again. Three commits per round instead of several
   * per message, and no waiting for one answer before the next send.
   */
  private async run(): Promise<FlushResult> {
    const { store } = this.deps;
    let sent = 0;
    let failed = 0;
    let pending = 0;
    const untrusted = new Set<string>();
    const repairs = new Map<number, number>();
    for (let round = 0; round <= MAX_REPAIRS; round++) {
      const due = store.outboxDue(this.deps.now(), OUTBOX_BATCH);
      if (due.length === 0) break;
      const conn = this.deps.connection();
      if (!conn?.connected) {
        pending += due.length;
        break;
      }
      // Outside the serial section: it may fetch a sender certificate.
      const plans = this.deps.sealed ? await this.deps.sealed.plan(due) : new Map<number, SealedPlan>();
      const ready = await this.deps.serial.run(() => this.encryptBatch(due, untrusted, plans));
      sent += ready.alone;
      pending += ready.deferred;
      const outcomes = await this.sendAll(conn, ready.entries);
      const fixes = new Map<string, { missing: number[]; extra: number[]; stale: number[]; entries: OutboxEntry[] }>();
      store.transaction(() => {
        for (const { entry, err } of outcomes) {
          if (!err || (entry.identifiedOnly && isParleyError(err, 'ID_REUSED'))) {
            // ID_REUSED after a sealed refusal: an earlier sealed attempt under this random id
            // was committed after all (its answer was lost), so the message is there.
            this.deps.onCommitted?.(entry);
            store.outboxDone(entry.id);
            if (entry.identifiedOnly) this.deps.sealed?.fallbackSettled(entry, repairs.has(entry.id));
            sent++;
          } else if (entry.accessKey && isParleyError(err, 'UNAUTHORIZED') && this.deps.sealed) {
            // Refused sealed (stale access key, or a device set the relay will not detail on
            // that socket): nothing was committed; the next round sends it identified.
            store.outboxClearAttempt(entry.id);
            this.deps.sealed.refused(entry);
          } else if (entry.accessKey && err instanceof ClientError && err.is('SEALED_SENDER_UNAVAILABLE') && this.deps.sealed) {
            // The unidentified socket could not be opened: nothing went out; identified next round.
            store.outboxClearAttempt(entry.id);
            this.deps.sealed.unsendable(entry);
          } else if (err instanceof TransportError) {
            // Maybe committed, maybe not: keep the bytes and the id. What failed is the
            // connection, so the next one retries at once (a backoff here left these behind a
            // receive() right after the relay came back); only an entry that keeps meeting a
            // broken connection (it may be what breaks it) waits with backoff.
            const wait = entry.attempts < TRANSPORT_RETRIES_AT_ONCE ? 0 : this.backoff(entry.attempts);
            store.outboxReschedule(entry.id, this.deps.now() + wait);
            pending++;
          } else if ((isParleyError(err, 'MISMATCHED_DEVICES') || isParleyError(err, 'STALE_DEVICES')) && (repairs.get(entry.id) ?? 0) < MAX_REPAIRS) {
            // The relay committed nothing: repair the sessions and encrypt again next round.
            repairs.set(entry.id, (repairs.get(entry.id) ?? 0) + 1);
            const fix = fixes.get(entry.destinationAci) ?? { missing: [], extra: [], stale: [], entries: [] };
            fix.entries.push(entry);
            fix.missing.push(...(err.details.missingDevices ?? []));
            fix.extra.push(...(err.details.extraDevices ?? []));
            fix.stale.push(...(err.details.staleDevices ?? []));
            fixes.set(entry.destinationAci, fix);
            store.outboxClearAttempt(entry.id);
          } else if (isParleyError(err, 'RATE_LIMITED') && err.details.retryAfterMs !== undefined) {
            // The bucket is this device's (or account's): the relay's wait is for one token, so
            // refused sends (of this round and earlier ones) are given one slot each at about
            // that pace — a quarter slower, so that timing jitter does not bring them back
            // before their token — instead of all coming back at once to be refused again (a
            // thousand-member key distribution past the burst was refused tens of thousands of
            // times).
            this.nextTokenAt = Math.max(this.deps.now(), this.nextTokenAt) + Math.ceil(err.details.retryAfterMs * RATE_LIMIT_SPREAD);
            store.outboxReschedule(entry.id, this.nextTokenAt);
            pending++;
          } else if (isParleyError(err, 'RATE_LIMITED') || isParleyError(err, 'QUEUE_FULL') || isParleyError(err, 'INTERNAL')) {
            store.outboxReschedule(entry.id, this.deps.now() + (isParleyError(err) ? (err.details.retryAfterMs ?? this.backoff(entry.attempts)) : 0));
            pending++;
          } else {
            // NOT_FOUND (the account is gone), BAD_REQUEST (a bug), repairs exhausted: give up on this one.
            this.deps.sealed?.forget(entry.id);
            store.outboxFail(entry.id);
            failed++;
          }
        }
      });
      for (const [aci, fix] of fixes) {
        try {
          await this.deps.serial.run(() => this.deps.sessions.repair(aci, { missing: unique(fix.missing), extra: unique(fix.extra), stale: unique(fix.stale) }));
        } catch (err) {
          // A new device under a changed identity key waits for the user; any other failure
          // (a bad bundle, a refused claim) waits with backoff. Either way these entries stop
          // going round now.
          const isUntrusted = err instanceof CryptoError && err.is('UNTRUSTED_IDENTITY');
          if (isUntrusted) untrusted.add(aci);
          store.transaction(() => {
            for (const entry of fix.entries) store.outboxReschedule(entry.id, this.deps.now() + (isUntrusted ? UNTRUSTED_RETRY_MS : this.backoff(entry.attempts)));
          });
          pending += fix.entries.length;
        }
      }
    }
    return { sent, pending, failed, untrusted: [...untrusted] };
  }

  /**
   * Encrypts every entry without a saved attempt through one staged overlay and commits the
   * session state with the attempts in one transaction. Entries that cannot be encrypted now
   * wait with backoff (one bad peer never blocks the rest).
   */
  private async encryptBatch(
    due: readonly OutboxEntry[],
    untrusted: Set<string>,
    plans: ReadonlyMap<number, SealedPlan>,
  ): Promise<{ entries: OutboxEntry[]; alone: number; deferred: number }> {
    const { store } = this.deps;
    const staged = store.stageProtocol();
    const sessions = this.deps.sessions.withStores(staged.stores);
    const entries: OutboxEntry[] = [];
    const saves: Array<{ entry: OutboxEntry; envelopeMessageId: Uint8Array; action?: Uint8Array }> = [];
    const alone: number[] = [];
    const later: Array<{ id: number; at: number }> = [];
    for (const entry of due) {
      if (entry.ciphertexts && entry.envelopeMessageId) {
        entries.push(entry);
        continue;
      }
      // Read again inside the serial section: a queued receipt (an entry without a message) may
      // have taken more ids since `due` was read. A message's content never changes.
      const content = entry.messageId === undefined ? store.outboxContent(entry.id) : entry.content;
      if (!content) continue;
      try {
        await sessions.ensureSessions(entry.destinationAci);
        const prepared = this.deps.prepareContent?.(entry.destinationAci, content) ?? content;
        const { ciphertexts, accessKey } = await encryptEntry(sessions, entry.destinationAci, prepared, plans.get(entry.id));
        if (ciphertexts.length === 0) {
          // One's own account with no other device: nobody to send a transcript to.
          alone.push(entry.id);
          continue;
        }
        const envelopeMessageId = randomMessageId();
        const ready: OutboxEntry = { ...entry, envelopeMessageId, ciphertexts, ...(accessKey ? { accessKey } : {}) };
        // An action to a peer (no stored message of its own) is kept for a resend request, as
        // it went into the outbox (the profile key is added again on the way out).
        const action = entry.messageId === undefined && entry.destinationAci !== this.deps.selfAci && isActionContent(content) ? content : undefined;
        saves.push({ entry: ready, envelopeMessageId, ...(action ? { action } : {}) });
        entries.push(ready);
      } catch (err) {
        if (err instanceof CryptoError && err.is('UNTRUSTED_IDENTITY')) {
          // Nothing is encrypted to a changed identity key until the user accepts it
          // (`verify --accept` wakes the peer's sends).
          untrusted.add(entry.destinationAci);
          later.push({ id: entry.id, at: this.deps.now() + UNTRUSTED_RETRY_MS });
        } else if (err instanceof TransportError || err instanceof CryptoError || isParleyError(err)) {
          // A bundle that fails its checks (a lying relay), a claim the relay refused, a
          // network failure: this entry waits with backoff.
          later.push({ id: entry.id, at: this.deps.now() + this.backoff(entry.attempts) });
        } else {
          staged.discard();
          throw err;
        }
      }
    }
    store.transaction(() => {
      staged.commit();
      for (const { entry, envelopeMessageId, action } of saves) {
        store.outboxSaveAttempt(entry.id, envelopeMessageId, entry.ciphertexts!, entry.accessKey);
        if (entry.messageId) store.recordSentEnvelope(toHex(envelopeMessageId), entry.messageId, entry.destinationAci, this.deps.now());
        else if (action) store.recordSentAction(toHex(envelopeMessageId), entry.destinationAci, action, this.deps.now());
      }
      for (const id of alone) store.outboxDone(id);
      for (const l of later) store.outboxReschedule(l.id, l.at);
    });
    return { entries, alone: alone.length, deferred: later.length };
  }

  /**
   * Sends every attempt at once (bounded), pipelined: identified ones on the device socket,
   * sealed ones (with the recipient's access key) on the unidentified socket.
   */
  private async sendAll(conn: RelayConnection, entries: readonly OutboxEntry[]): Promise<Array<{ entry: OutboxEntry; err?: unknown }>> {
    const out: Array<{ entry: OutboxEntry; err?: unknown }> = [];
    const sealed = this.deps.sealed;
    for (let i = 0; i < entries.length; i += IN_FLIGHT) {
      const slice = entries.slice(i, i + IN_FLIGHT);
      out.push(
        ...(await Promise.all(
          slice.map((entry) => {
            const send = {
              destination: aciToBytes(entry.destinationAci as Aci),
              messageId: entry.envelopeMessageId!,
              timestamp: BigInt(this.deps.now()),
              urgent: entry.urgent !== false,
              messages: entry.ciphertexts!.map((c) => ({ ...c })),
            };
            const accessKey = entry.accessKey;
            const sending =
              accessKey === undefined
                ? conn.send(send)
                : sealed
                  ? sealed.send({ ...send, accessKey })
                  : Promise.reject(new TransportError('DISCONNECTED', 'sealed sending is not available'));
            return sending.then(
              () => ({ entry }),
              (err: unknown) => ({ entry, err }),
            );
          }),
        )),
      );
    }
    return out;
  }

  private backoff(attempts: number): number {
    return Math.min(RETRY_MAX_MS, RETRY_BASE_MS * 2 ** Math.min(attempts, 20));
  }
}

/**
 * Encrypts one entry's content for every known device of `aci`: sealed under `plan` when there
 * is one (with the access key the attempt presents), else identified. A certificate that is not
 * this device's own (the account's identity key changed since it was issued) sends identified.
 */
async function encryptEntry(
  sessions: SessionManager,
  aci: string,
  content: Uint8Array,
  plan: SealedPlan | undefined,
): Promise<{ ciphertexts: DeviceCiphertext[]; accessKey?: Uint8Array }> {
  if (plan) {
    try {
      return { ciphertexts: await sessions.encryptSealedForAccount(aci, content, plan.certificate), accessKey: plan.accessKey };
    } catch (err) {
      if (!(err instanceof CryptoError && err.is('INVALID_CERTIFICATE'))) throw err;
    }
  }
  return { ciphertexts: await sessions.encryptForAccount(aci, content) };
}
