// SPDX-License-Identifier: AGPL-3.0-only
/** `parley export`: an open archive of every conversation. */
import { resolve } from 'node:path';
import type { ExportFormat } from '../engine-contract.js';
import { type Session, requireAccount } from '../session.js';

/** Options of `parley export`. */
export interface ExportOptions {
  /** Default `jsonl`. */
  readonly format?: ExportFormat;
  /** Default `parley-export-YYYY-MM-DD` in the working directory. */
  readonly out?: string;
}

const pad2 = (n: number): string => String(n).padStart(2, '0');

/** `parley-export-2026-11-22` for the local date of `ms`. */
export function defaultExportDirName(ms: number): string {
  const d = new Date(ms);
  return `parley-export-${d.getFullYear()}-${pad2(d.getMonth() + 1)}-${pad2(d.getDate())}`;
}

/** Writes the archive and prints the files written, one per line. */
export async function exportCommand(s: Session, options: ExportOptions): Promise<void> {
  requireAccount(s);
  const format = options.format ?? 'jsonl';
  const outDir = resolve(s.rt.cwd, options.out ?? defaultExportDirName(s.rt.now()));
  const off = s.client.on('progress', (p) => s.out.progress(p));
  let result: { files: string[]; messages: number };
  try {
    result = await s.client.exportArchive({ format, outDir });
  } finally {
    off();
  }
  s.out.data({ outDir, format, files: result.files, messages: result.messages }, result.files);
  s.out.note(`exported ${result.messages} message${result.messages === 1 ? '' : 's'} into ${outDir}`);
}
