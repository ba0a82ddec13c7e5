// SPDX-License-Identifier: AGPL-3.0-only
/**
 * History comes along when a device is linked: the approving device packs every conversation
 * into an archive (JSON lines), cuts it into chunks and queues them in its durable outbox to the
 * new device, through the relay, encrypted like any message. The new device stores each chunk as
 * it arrives (in the same transaction as its session state, before the ack) and imports the
 * archive once all chunks are there. Both sides survive restarts: the sender's outbox retries,
 * the receiver keeps what it has.
 */
import { randomBytes } from '@parley/crypto';
import { fromUtf8, toHex, utf8, type HistoryChunk } from '@parley/protocol';
import { encodeContent } from './content-codec.js';
import type { EngineMessage, EngineStore } from './engine-store.js';
import type { ActionsArchiveLine, ArchivedActions } from './message-actions-adapter.js';

/** Archive bytes per chunk: well under the relay's envelope limit after encryption and padding. */
export const HISTORY_CHUNK_BYTES = 48 * 1024;

/** One line of the archive. */
export type ArchiveLine =
  | {
      readonly type: 'contact';
      readonly aci: string;
      readonly address: string;
      /** The contact's profile key (base64url), so the new device can send to it sealed at once. */
      readonly profileKey?: string;
    }
  | ({ readonly type: 'message'; readonly actions?: ArchivedActions } & EngineMessage)
  /** A group's whole change log (each change as the store keeps it), before its messages. */
  | { readonly type: 'group'; readonly id: string; readonly changes: readonly string[] }
  | ActionsArchiveLine;

/** The line types an archive may hold; others (from a newer version) are skipped. */
const ARCHIVE_LINE_TYPES: ReadonlySet<string> = new Set(['contact', 'group', 'message', 'timer', 'blocked']);

/** The store operations history transfer needs. */
export interface HistoryStore {
  archiveLines(): Iterable<ArchiveLine>;
  saveHistoryChunk(transferId: string, index: number, total: number, data: Uint8Array, nowMs: number): void;
  /** Transfers whose every chunk has arrived. */
  completeHistoryTransfers(): string[];
  historyProgress(transferId: string): { received: number; total: number };
  /** The chunks of a transfer in order; deletes them. */
  takeHistoryChunks(transferId: string): Uint8Array[];
  importArchiveLine(line: ArchiveLine): void;
}

/** Splits the archive of `store` into chunk contents for `targetDevice`. */
export function buildHistoryChunks(store: HistoryStore, targetDevice: number): Uint8Array[] {
  const text = [...store.archiveLines()].map((l) => JSON.stringify(l)).join('\n');
  const bytes = utf8(text);
  const total = Math.max(1, Math.ceil(bytes.length / HISTORY_CHUNK_BYTES));
  const transferId = randomBytes(16);
  const chunks: Uint8Array[] = [];
  for (let i = 0; i < total; i++) {
    chunks.push(
      encodeContent({
        body: {
          case: 'history',
          value: { transferId, index: i, total, data: bytes.subarray(i * HISTORY_CHUNK_BYTES, (i + 1) * HISTORY_CHUNK_BYTES), targetDevice },
        },
      }),
    );
  }
  return chunks;
}

/** The receiving side. */
export class HistoryReceiver {
  private readonly store: HistoryStore & Pick<EngineStore, 'transaction'>;
  private readonly deviceId: number;
  private readonly onProgress: (done: number, total: number) => void;
  private readonly onImported: (messages: number) => void;
  private readonly importGroup: ((id: string, changes: readonly string[]) => void) | undefined;

  constructor(opts: {
    store: HistoryStore & Pick<EngineStore, 'transaction'>;
    deviceId: number;
    onProgress: (done: number, total: number) => void;
    onImported: (messages: number) => void;
    /** Replays a group's log from the archive (the groups module); without it group lines are skipped. */
    importGroup?: (id: string, changes: readonly string[]) => void;
  }) {
    this.store = opts.store;
    this.importGroup = opts.importGroup;
    this.deviceId = opts.deviceId;
    this.onProgress = opts.onProgress;
    this.onImported = opts.onImported;
  }

  /** Stores one chunk (called inside the receive transaction). Chunks for other devices are ignored. */
  acceptChunk(chunk: HistoryChunk, nowMs: number): void {
    if (chunk.targetDevice !== this.deviceId || chunk.transferId.length !== 16) return;
    if (chunk.total < 1 || chunk.total > 100_000 || chunk.index >= chunk.total) return;
    const id = toHex(chunk.transferId);
    this.store.saveHistoryChunk(id, chunk.index, chunk.total, chunk.data, nowMs);
    const p = this.store.historyProgress(id);
    this.onProgress(p.received, p.total);
  }

  /** Imports every transfer whose chunks are all here, each in one transaction. */
  async maybeComplete(): Promise<void> {
    for (const id of this.store.completeHistoryTransfers()) {
      let imported = 0;
      this.store.transaction(() => {
        const data = this.store.takeHistoryChunks(id);
        const total = data.reduce((n, d) => n + d.length, 0);
        const all = new Uint8Array(total);
        let o = 0;
        for (const d of data) {
          all.set(d, o);
          o += d.length;
        }
        for (const line of fromUtf8(all).split('\n')) {
          if (!line) continue;
          let parsed: ArchiveLine;
          try {
            parsed = JSON.parse(line) as ArchiveLine;
          } catch {
            continue; // a damaged line is skipped, not fatal
          }
          if (typeof parsed !== 'object' || parsed === null || !ARCHIVE_LINE_TYPES.has(parsed.type)) continue;
          if (parsed.type === 'group') {
            if (typeof parsed.id === 'string' && Array.isArray(parsed.changes)) this.importGroup?.(parsed.id, parsed.changes);
            continue;
          }
          this.store.importArchiveLine(parsed);
          if (parsed.type === 'message') imported++;
        }
      });
      this.onImported(imported);
    }
  }
}
