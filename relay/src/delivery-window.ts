// SPDX-License-Identifier: AGPL-3.0-only
/**
 * The envelopes delivered on one connection and not yet acknowledged, with cumulative and
 * selective acks. Sequence numbers enter in increasing order, so a cumulative ack only pops
 * from the front; selective acks are remembered until the front passes them.
 */
import { ParleyError } from '@parley/protocol';

/** See the module comment. */
export class DeliveryWindow {
  /** Highest sequence number delivered on this connection (0 before the first). */
  lastDelivered = 0;
  private seqs: number[] = [];
  private head = 0;
  private selective: Set<number> | undefined;

  /** Envelopes delivered and not acknowledged. */
  get inFlight(): number {
    return this.seqs.length - this.head - (this.selective?.size ?? 0);
  }

  /** Records delivered sequence numbers (increasing, above lastDelivered). */
  delivered(seq: number): void {
    this.seqs.push(seq);
    this.lastDelivered = seq;
  }

  /**
   * Checks an ack without changing anything.
   * @throws ParleyError BAD_ACK when it names a sequence number not delivered on this connection.
   */
  check(upTo: number, seqs: readonly number[]): void {
    if (upTo > this.lastDelivered) throw new ParleyError('BAD_ACK', 'ack is beyond what was delivered on this connection');
    for (const s of seqs) {
      if (s < 1 || s > this.lastDelivered) throw new ParleyError('BAD_ACK', 'ack names a sequence number not delivered on this connection');
    }
  }

  /** Applies a checked ack. */
  apply(upTo: number, seqs: readonly number[]): void {
    while (this.head < this.seqs.length && this.seqs[this.head]! <= upTo) {
      this.selective?.delete(this.seqs[this.head]!);
      this.head++;
    }
    for (const s of seqs) {
      if (s <= upTo || (this.head < this.seqs.length && s < this.seqs[this.head]!)) continue;
      if (this.contains(s)) (this.selective ??= new Set()).add(s);
    }
    // Pop selectively acked envelopes that reached the front, and compact now and then.
    while (this.head < this.seqs.length && this.selective?.has(this.seqs[this.head]!)) {
      this.selective.delete(this.seqs[this.head]!);
      this.head++;
    }
    if (this.head > 1024 && this.head * 2 > this.seqs.length) {
      this.seqs = this.seqs.slice(this.head);
      this.head = 0;
    }
  }

  private contains(seq: number): boolean {
    let lo = this.head;
    let hi = this.seqs.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const v = this.seqs[mid]!;
      if (v === seq) return true;
      if (v < seq) lo = mid + 1;
      else hi = mid - 1;
    }
    return false;
  }
}
