// SPDX-License-Identifier: AGPL-3.0-only
/**
 * Blocking. A blocked contact's envelopes are still decrypted (the session must stay in step,
 * or the first message after an unblock would fail), then dropped: acked, not stored, not shown
 * — messages, actions, receipts and typing alike. Nothing is sent to a blocked contact (BLOCKED).
 *
 * The block list is account-wide: every change sends the whole set to one's other devices
 * (`SyncMessage.blocked`) under a version `max(current version + 1, clock in ms)`; a device
 * keeps the set with the highest (version, writing device id), so two devices that change it at
 * once end up with the same set (the last writer's), whatever order the syncs arrive in.
 *
 * Listeners registered with {@link BlockList.onChanged} hear every change (local or synced)
 * after it is committed; sealed sender hooks in there to rotate the profile key.
 */
import { aciFromBytes, aciToBytes, type Aci, type SyncMessage } from '@parley/protocol';
import type { BlockedView, MessageActionEvent } from './client-api.js';
import { encodeContent } from './content-codec.js';

type BlockedSyncMessage = Extract<SyncMessage['kind'], { case: 'blocked' }>['value'];

/** A change of the block list. */
export type BlockChange = Extract<MessageActionEvent, { type: 'block' }>;

/** The store operations blocking needs. */
export interface BlocklistPort {
  isBlocked(aci: string): boolean;
  blockedList(): Array<{ readonly aci: string; readonly address?: string; readonly blockedAt: number }>;
  blocklistVersion(): { readonly version: number; readonly deviceId: number };
  /** Replaces the set when (version, deviceId) is above the stored one; undefined when it is not. */
  replaceBlocklist(
    contacts: ReadonlyArray<{ readonly aci: string; readonly address?: string }>,
    version: { readonly version: number; readonly deviceId: number },
    nowMs: number,
  ): { added: string[]; removed: string[] } | undefined;
  /** `user@domain` of an account, or the ACI when none is known. */
  addressOf(aci: string): string;
}

/** Longest block list a sync may carry (a bound on what a device accepts). */
export const MAX_BLOCKED = 10_000;

/** See the module comment. */
export class BlockList {
  private readonly store: BlocklistPort;
  private readonly self: { readonly aci: string; readonly deviceId: number };
  private readonly listeners = new Set<(changes: readonly BlockChange[]) => void>();

  constructor(deps: { store: BlocklistPort; self: { readonly aci: string; readonly deviceId: number } }) {
    this.store = deps.store;
    this.self = deps.self;
  }

  /** Whether `aci` is blocked (one's own account never is). */
  isBlocked(aci: string): boolean {
    return aci !== this.self.aci && this.store.isBlocked(aci);
  }

  /** The blocked contacts. */
  list(): BlockedView[] {
    return this.store.blockedList().map((c) => ({ aci: c.aci, address: c.address ?? c.aci, blockedAt: c.blockedAt }));
  }

  /**
   * Blocks or unblocks `aci` here (call inside a transaction). Returns the changes and the
   * sync content for one's other devices, or undefined when nothing changed.
   */
  set(aci: string, address: string, blocked: boolean, now: number): { changes: BlockChange[]; sync: Uint8Array } | undefined {
    if (aci === this.self.aci) return undefined;
    if (this.store.isBlocked(aci) === blocked) return undefined;
    const current = this.store.blockedList().filter((c) => c.aci !== aci);
    const next = blocked ? [...current, { aci, address }] : current;
    const version = { version: Math.max(this.store.blocklistVersion().version + 1, now), deviceId: this.self.deviceId };
    const result = this.store.replaceBlocklist(next, version, now);
    if (!result) return undefined;
    const sync: BlockedSyncMessage = {
      $typeName: 'parley.v1.BlockedSync',
      acis: next.map((c) => aciToBytes(c.aci as Aci)),
      addresses: next.map((c) => c.address ?? ''),
      version: BigInt(version.version),
    };
    return { changes: this.changes(result), sync: encodeContent({ body: { case: 'sync', value: { kind: { case: 'blocked', value: sync } } } }) };
  }

  /** Applies a block list synced from one's own device `sourceDevice` (inside the receive transaction). */
  applySync(sync: BlockedSyncMessage, sourceDevice: number, now: number): BlockChange[] {
    if (sync.acis.length > MAX_BLOCKED || sync.version < 1n || sync.version > BigInt(Number.MAX_SAFE_INTEGER)) return [];
    const contacts: Array<{ aci: string; address?: string }> = [];
    for (const [i, bytes] of sync.acis.entries()) {
      if (bytes.length !== 16) return [];
      const aci = aciFromBytes(bytes);
      if (aci === this.self.aci) continue;
      const address = sync.addresses[i];
      contacts.push({ aci, ...(address ? { address } : {}) });
    }
    let result;
    try {
      result = this.store.replaceBlocklist(contacts, { version: Number(sync.version), deviceId: sourceDevice }, now);
    } catch {
      return []; // a malformed address: the whole set is refused, as any malformed sync
    }
    return result ? this.changes(result) : [];
  }

  /** Calls `listener` after every committed change of the block list; returns how to stop. */
  onChanged(listener: (changes: readonly BlockChange[]) => void): () => void {
    this.listeners.add(listener);
    return () => void this.listeners.delete(listener);
  }

  /** Tells the listeners about committed changes. */
  announce(changes: readonly BlockChange[]): void {
    if (changes.length === 0) return;
    for (const l of this.listeners) l(changes);
  }

  private changes(result: { added: string[]; removed: string[] }): BlockChange[] {
    return [
      ...result.added.map((aci) => ({ type: 'block' as const, aci, address: this.store.addressOf(aci), blocked: true })),
      ...result.removed.map((aci) => ({ type: 'block' as const, aci, address: this.store.addressOf(aci), blocked: false })),
    ];
  }
}
