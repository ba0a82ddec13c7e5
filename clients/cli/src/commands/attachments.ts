// SPDX-License-Identifier: AGPL-3.0-only
/** File commands: `send <address> --file PATH [--caption TEXT]` and `download <messageId>`. */
import { resolve } from 'node:path';
import type { ProgressEvent } from '../engine-contract.js';
import { formatDownload, formatMessage } from '../format.js';
import { downloadJson, messageJson } from '../json-views.js';
import { type Session, conversationName, requireAccount } from '../session.js';

/** Progress lines of a transfer go out at most every this many percent (and at the end). */
export const PROGRESS_STEP_PERCENT = 5;

/**
 * Passes byte progress of uploads and downloads on in whole steps of PROGRESS_STEP_PERCENT,
 * so that a 100 MiB transfer prints about twenty lines, not four hundred; other progress as is.
 */
export function throttledProgress(s: Session): (p: ProgressEvent) => void {
  const last = new Map<string, number>();
  return (p) => {
    if (p.unit !== 'bytes') return s.out.progress(p);
    const step = p.total > 0 ? Math.floor((p.done / p.total) * (100 / PROGRESS_STEP_PERCENT)) : 0;
    const complete = p.done >= p.total;
    if (!complete && last.get(p.task) === step) return;
    if (complete && last.get(p.task) === -1) return;
    last.set(p.task, complete ? -1 : step);
    s.out.progress(p);
  };
}

/** `parley send <address> --file PATH [--caption TEXT]`. */
export async function sendFileCommand(s: Session, address: string, file: string, caption: string | undefined): Promise<void> {
  const account = requireAccount(s);
  s.context.address = conversationName(address, account);
  const path = resolve(s.rt.cwd, file);
  const off = s.client.on('progress', throttledProgress(s));
  const stop = s.rt.stopSignal();
  try {
    const m = await s.client.sendFile(address, path, { ...(caption !== undefined ? { caption } : {}), signal: stop.signal });
    s.out.data(messageJson(m), formatMessage(m));
    if (m.status === 'pending') {
      s.out.note('the file is uploaded; the message stays in the outbox and goes out with the next send, receive or listen');
    }
  } finally {
    off();
    stop.dispose();
  }
}

/** Options of `parley download`. */
export interface DownloadCommandOptions {
  /** Destination file or directory (relative to the working directory). */
  readonly out?: string;
  /** Which file of the message, 0-based. */
  readonly index?: number;
}

/** `parley download <messageId> [--out PATH] [--index N]`: resumes an interrupted download. */
export async function downloadCommand(s: Session, messageId: string, options: DownloadCommandOptions): Promise<void> {
  requireAccount(s);
  const off = s.client.on('progress', throttledProgress(s));
  const stop = s.rt.stopSignal();
  try {
    const d = await s.client.downloadAttachment(messageId, {
      out: resolve(s.rt.cwd, options.out ?? '.'),
      ...(options.index !== undefined ? { index: options.index } : {}),
      signal: stop.signal,
    });
    s.out.data(downloadJson(d), formatDownload(d));
  } finally {
    off();
    stop.dispose();
  }
}
