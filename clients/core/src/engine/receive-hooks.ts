// SPDX-License-Identifier: AGPL-3.0-only
/**
 * How features that ride on received content (receipts, typing, read and settings syncs,
 * presence tokens) plug into the receive pipeline without the pipeline knowing them: for each
 * decrypted content they may take it over, add store writes to the batch's transaction and
 * announce something once it committed; after a batch's writes they may queue sends (delivery
 * receipts) in the same transaction.
 */
import type { Content } from '@parley/protocol';
import type { EngineMessage } from './engine-store.js';

/** Where a decrypted content came from. */
export interface ReceivedFrom {
  /** The sender's ACI and device. */
  readonly source: string;
  readonly sourceDevice: number;
  /** The sender's address when known (verified against the directory), else undefined. */
  readonly address: string | undefined;
  /** Sent online-only (typing): nothing of it may be stored or queued. */
  readonly online: boolean;
  /** This device's clock when it was handled, ms since the epoch. */
  readonly now: number;
}

/** What a hook does with one content. */
export interface ContentOutcome {
  /** True: the hook took the content over; the pipeline does nothing else with it. */
  readonly handled: boolean;
  /** Store writes, run in the batch's transaction after the pipeline's own for this content. */
  readonly effect?: () => void;
  /** Run once the batch committed (events). */
  readonly after?: () => void;
}

/** See the module comment. */
export interface ReceiveHooks {
  /** Looks at one decrypted content; undefined when the hooks have nothing to do with it. */
  content(from: ReceivedFrom, content: Content): ContentOutcome | undefined;
  /**
   * Runs in a batch's transaction after its writes, with the messages it stored; may queue sends
   * (delivery receipts). Returns true when it queued something (the pipeline then asks for a flush).
   */
  stored(messages: readonly EngineMessage[], now: number): boolean;
}
