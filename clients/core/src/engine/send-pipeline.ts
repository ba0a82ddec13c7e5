// SPDX-License-Identifier: AGPL-3.0-only
/**
 * The send pipeline: a durable outbox drained over the relay connection. A send is committed to
 * the outbox before anything goes on the wire. Its ciphertexts and envelope message id are
 * saved before the first attempt, so a retry after a dropped connection or a crash resends the
 * same bytes under the same id, and the relay's dedup delivers it once. Device-set refusals
 * repair the sessions and re-encrypt (the relay committed nothing of a refused send).
 */
import { aciToBytes, isParleyError, type Aci } from '@parley/protocol';
import { CryptoError, randomMessageId } from '@parley/crypto';
import { toHex } from '@parley/protocol';
import type { RelayConnection } from '../transport/relay-connection.js';
import { TransportError } from '../transport/transport-error.js';
import type { EngineStore, OutboxEntry } from './engine-store.js';
import type { Serial } from './serial.js';
import type { SessionManager } from './session-manager.js';

/** Backoff of outbox retries, ms: attempt n waits min(max, base * 2^n). */
const RETRY_BASE_MS = 1000;
const RETRY_MAX_MS = 5 * 60_000;
/** When a send to a peer with an unaccepted identity key is looked at again, ms. */
const UNTRUSTED_RETRY_MS = 24 * 3600_000;
/** Device-set repairs per send before it is marked failed (a peer changing devices in a loop). */
const MAX_REPAIRS = 5;

/** What the pipeline needs. */
export interface SendPipelineDeps {
  readonly store: EngineStore;
  readonly sessions: SessionManager;
  readonly serial: Serial;
  readonly connection: () => RelayConnection | undefined;
  readonly now: () => number;
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

  private async run(): Promise<FlushResult> {
    let sent = 0;
    let failed = 0;
    let pending = 0;
    const untrusted = new Set<string>();
    const due = this.deps.store.outboxDue(this.deps.now(), 1000);
    for (const entry of due) {
      const outcome = await this.deps.serial.run(() => this.attempt(entry));
      if (outcome === 'sent') sent++;
      else if (outcome === 'failed') failed++;
      else pending++;
      if (outcome === 'untrusted') untrusted.add(entry.destinationAci);
      if (outcome === 'offline') {
        pending += due.length - sent - failed - pending;
        break;
      }
    }
    return { sent, pending, failed, untrusted: [...untrusted] };
  }

  private async attempt(entry: OutboxEntry): Promise<'sent' | 'pending' | 'failed' | 'offline' | 'untrusted'> {
    try {
      return await this.attemptOnce(entry);
    } catch (err) {
      if (err instanceof CryptoError && err.is('UNTRUSTED_IDENTITY')) {
        // Nothing is encrypted to a changed identity key until the user accepts it
        // (`verify --accept` reschedules the peer's sends).
        this.deps.store.outboxReschedule(entry.id, this.deps.now() + UNTRUSTED_RETRY_MS);
        return 'untrusted';
      }
      if (err instanceof TransportError || err instanceof CryptoError || isParleyError(err)) {
        // A bundle that fails its checks (a lying relay), a claim the relay refused, a network
        // failure: this entry waits with backoff, and the rest of the outbox goes on. One bad
        // peer must never block every other send.
        this.deps.store.outboxReschedule(entry.id, this.deps.now() + this.backoff(entry.attempts));
        return 'pending';
      }
      throw err;
    }
  }

  private async attemptOnce(entry: OutboxEntry): Promise<'sent' | 'pending' | 'failed' | 'offline'> {
    const { store, sessions } = this.deps;
    let current = entry;
    for (let repairs = 0; repairs <= MAX_REPAIRS; repairs++) {
      const conn = this.deps.connection();
      if (!conn?.connected) return 'offline';
      if (!current.ciphertexts || !current.envelopeMessageId) {
        await sessions.ensureSessions(current.destinationAci);
        const ciphertexts = await sessions.encryptForAccount(current.destinationAci, current.content);
        if (ciphertexts.length === 0) {
          // One's own account with no other device: nobody to send a transcript to.
          store.outboxDone(current.id);
          return 'sent';
        }
        const envelopeMessageId = randomMessageId();
        store.transaction(() => {
          store.outboxSaveAttempt(current.id, envelopeMessageId, ciphertexts);
          if (current.messageId) store.recordSentEnvelope(toHex(envelopeMessageId), current.messageId, current.destinationAci, this.deps.now());
        });
        current = { ...current, envelopeMessageId, ciphertexts };
      }
      try {
        await conn.send({
          destination: aciToBytes(current.destinationAci as Aci),
          messageId: current.envelopeMessageId!,
          timestamp: BigInt(this.deps.now()),
          urgent: true,
          messages: current.ciphertexts!.map((c) => ({ ...c })),
        });
        store.transaction(() => {
          store.outboxDone(current.id);
          if (current.messageId) store.setOutgoingStatus(current.messageId, 'sent');
        });
        return 'sent';
      } catch (err) {
        if (err instanceof TransportError) {
          // Maybe committed, maybe not: keep the bytes and the id, retry later.
          store.outboxReschedule(current.id, this.deps.now() + this.backoff(current.attempts));
          return 'pending';
        }
        if (isParleyError(err, 'MISMATCHED_DEVICES') || isParleyError(err, 'STALE_DEVICES')) {
          await sessions.repair(current.destinationAci, {
            missing: err.details.missingDevices,
            extra: err.details.extraDevices,
            stale: err.details.staleDevices,
          });
          store.outboxClearAttempt(current.id);
          current = { ...current, envelopeMessageId: undefined, ciphertexts: undefined };
          continue;
        }
        if (isParleyError(err, 'RATE_LIMITED') || isParleyError(err, 'QUEUE_FULL') || isParleyError(err, 'INTERNAL')) {
          const wait = err.details.retryAfterMs ?? this.backoff(current.attempts);
          store.outboxReschedule(current.id, this.deps.now() + wait);
          return 'pending';
        }
        // NOT_FOUND (the account is gone), BAD_REQUEST (a bug): give up on this one.
        store.transaction(() => {
          store.outboxFail(current.id);
          if (current.messageId) store.setOutgoingStatus(current.messageId, 'failed');
        });
        return 'failed';
      }
    }
    store.outboxFail(current.id);
    return 'failed';
  }

  private backoff(attempts: number): number {
    return Math.min(RETRY_MAX_MS, RETRY_BASE_MS * 2 ** Math.min(attempts, 20));
  }
}
