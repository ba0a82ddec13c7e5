// SPDX-License-Identifier: AGPL-3.0-only
/**
 * Sealed sending (DESIGN §5): which outbox entries go sealed, and what a refusal means.
 *
 * An entry goes sealed when it is for another account whose profile key this device holds (so
 * it knows the access key), the entry was never refused sealed, and a sender certificate can be
 * had. Its device messages are then `SEALED` (sealed sender v1 around the session's message,
 * first messages included) and it travels over the unidentified socket with the recipient's
 * access key, so the relay learns the recipient and nothing of the sender. The first contact
 * (no profile key yet), transcripts to one's own devices and anything the relay refused sealed
 * go identified over the device socket.
 *
 * The relay answers every failed unidentified send alike (UNAUTHORIZED): a stale access key
 * (the contact rotated its profile key, e.g. after blocking us), an unknown account, a changed
 * device set. The entry then goes identified, once, under the same envelope id (the relay
 * committed nothing). If that identified send needed no device repair, the access key was what
 * failed and the contact's key is dropped: later sends go identified until the contact sends a
 * new key. If it needed a repair, the device set was the cause and the key is kept.
 *
 * When the unidentified socket cannot be opened at all (a relay without it, or one refusing
 * it), nothing was sent: the entry goes identified and sealed sending pauses for
 * {@link SEALED_PAUSE_MS}, so messages are not held up behind a socket that is not there. A
 * relay whose certificate or trust root is refused pauses it as long. (A
 * relay can always make a client send identified by refusing its sealed sends; that is why the
 * status shows it.)
 */
import type { SendResult } from '@parley/protocol';
import { ClientError } from '../errors.js';
import type { OutgoingSend } from '../transport/relay-connection.js';
import type { UnidentifiedConnection } from '../transport/unidentified-connection.js';
import { TransportError } from '../transport/transport-error.js';
import type { SenderCertificateCache } from './certificate-cache.js';
import type { OutboxEntry } from './engine-store.js';
import type { SealedSenderStore } from './sealed-sender-store.js';

/** How long sealed sending pauses after the unidentified socket could not be opened, ms (10 min). */
export const SEALED_PAUSE_MS = 10 * 60_000;

/** How one entry goes sealed. */
export interface SealedPlan {
  /** The recipient's access key, 16 bytes. */
  readonly accessKey: Uint8Array;
  /** This device's sender certificate. */
  readonly certificate: Uint8Array;
}

/** What {@link SealedSending} needs. */
export interface SealedSendingDeps {
  readonly store: Pick<SealedSenderStore, 'contactKey' | 'dropContactKeyIfStale' | 'outboxSetIdentifiedOnly'>;
  readonly certificates: SenderCertificateCache;
  /** The unidentified socket of the current session, if the engine has one open or can open one. */
  readonly connection: () => UnidentifiedConnection | undefined;
  readonly selfAci: string;
  readonly now: () => number;
}

/** See the module comment. */
export class SealedSending {
  private readonly deps: SealedSendingDeps;
  /** Entries refused sealed in this process, with the key they presented, until their identified send settles. */
  private readonly suspects = new Map<number, { readonly aci: string; readonly accessKey: Uint8Array }>();
  /** Why sealed sending is off now (certificate or socket), if it is. */
  private lastProblem: ClientError | undefined;
  /** Sealed sending pauses until then (the unidentified socket could not be opened). */
  private pausedUntil = 0;

  constructor(deps: SealedSendingDeps) {
    this.deps = deps;
  }

  /**
   * Decides, for every entry without a saved attempt, whether it goes sealed (see the module
   * comment). Asks for a certificate only when some entry could go sealed; without one,
   * everything goes identified.
   */
  async plan(entries: readonly OutboxEntry[]): Promise<Map<number, SealedPlan>> {
    const keys = new Map<number, Uint8Array>();
    for (const e of entries) {
      if (e.ciphertexts || e.identifiedOnly || e.destinationAci === this.deps.selfAci) continue;
      const key = this.deps.store.contactKey(e.destinationAci);
      if (key) keys.set(e.id, key.accessKey);
    }
    const plans = new Map<number, SealedPlan>();
    if (keys.size === 0 || this.deps.now() < this.pausedUntil) return plans;
    let certificate: Uint8Array;
    try {
      certificate = await this.deps.certificates.get();
    } catch (err) {
      // No certificate (the relay offers none, its root changed, it cannot be reached): this
      // run goes identified. A relay that answered wrongly is not asked again for a while.
      if (err instanceof ClientError) {
        this.lastProblem = err;
        this.pausedUntil = this.deps.now() + SEALED_PAUSE_MS;
      }
      return plans;
    }
    this.lastProblem = undefined;
    for (const [id, accessKey] of keys) plans.set(id, { accessKey, certificate });
    return plans;
  }

  /** Why sealed sending is off now, if it is (SEALED_SENDER_UNAVAILABLE, TRUST_ROOT_CHANGED). */
  problem(): ClientError | undefined {
    return this.lastProblem;
  }

  /**
   * Sends a saved sealed attempt over the unidentified socket.
   * @throws ParleyError UNAUTHORIZED for any refusal; ClientError SEALED_SENDER_UNAVAILABLE when
   *   the socket could not be opened (nothing was sent; see the module comment); TransportError
   *   when it dropped before the answer (the send may have been committed).
   */
  async send(send: OutgoingSend & { readonly accessKey: Uint8Array }): Promise<SendResult> {
    const connection = this.deps.connection();
    if (!connection) throw new TransportError('DISCONNECTED', 'the unidentified socket is closed');
    let socket;
    try {
      socket = await connection.open();
    } catch (err) {
      if (!(err instanceof TransportError)) throw err;
      this.pausedUntil = this.deps.now() + SEALED_PAUSE_MS;
      this.lastProblem = new ClientError('SEALED_SENDER_UNAVAILABLE', `the relay's unidentified socket cannot be opened (${err.message}); sending identified for now`, { cause: err });
      throw this.lastProblem;
    }
    return socket.send(send);
  }

  /** `entry`'s sealed attempt could not be sent (no unidentified socket): it goes identified. */
  unsendable(entry: OutboxEntry): void {
    this.deps.store.outboxSetIdentifiedOnly(entry.id);
  }

  /**
   * The relay refused `entry`'s sealed attempt: it goes identified from now on. Call it in the
   * transaction that clears the attempt.
   */
  refused(entry: OutboxEntry): void {
    this.deps.store.outboxSetIdentifiedOnly(entry.id);
    if (entry.accessKey) this.suspects.set(entry.id, { aci: entry.destinationAci, accessKey: entry.accessKey });
  }

  /**
   * `entry` went out identified after a sealed refusal; `repaired` says whether its device set
   * had to be repaired on the way. Without a repair the access key was stale: dropped. Call it
   * in the transaction that completes the entry.
   */
  fallbackSettled(entry: OutboxEntry, repaired: boolean): void {
    const suspect = this.suspects.get(entry.id);
    if (!suspect) return;
    this.suspects.delete(entry.id);
    if (!repaired) this.deps.store.dropContactKeyIfStale(suspect.aci, suspect.accessKey);
  }

  /** Forgets what is known of `entryId` (it was given up). */
  forget(entryId: number): void {
    this.suspects.delete(entryId);
  }
}
