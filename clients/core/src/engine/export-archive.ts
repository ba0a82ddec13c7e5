// SPDX-License-Identifier: AGPL-3.0-only
/**
 * An open archive of every conversation, for the user to keep or move elsewhere: one file per
 * conversation, JSON lines (one message per line, stable field names) or Markdown.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { MessageView } from './client-api.js';

/** A file name for a conversation address (safe on every file system). */
export function exportFileName(conversation: string, ext: string): string {
  return `${conversation.replace(/[^a-z0-9@._-]/gi, '_')}.${ext}`;
}

function markdownLine(m: MessageView): string {
  const when = new Date(m.sentAt).toISOString().replace('T', ' ').slice(0, 16);
  const who = m.direction === 'out' ? 'me' : m.sender;
  const text = m.kind === 'text' ? m.text.replace(/\n/g, '\n  ') : `_${m.text}_`;
  return `- **${when}** ${who}: ${text}`;
}

/** Writes the archive; resolves with the files written and the messages in them. */
export async function writeExport(
  messages: Iterable<MessageView>,
  options: { format: 'jsonl' | 'md'; outDir: string },
  onProgress: (done: number, total: number) => void,
): Promise<{ files: string[]; messages: number }> {
  const byConversation = new Map<string, MessageView[]>();
  let total = 0;
  for (const m of messages) {
    let list = byConversation.get(m.conversation);
    if (!list) byConversation.set(m.conversation, (list = []));
    list.push(m);
    total++;
  }
  mkdirSync(options.outDir, { recursive: true, mode: 0o700 });
  const files: string[] = [];
  let done = 0;
  for (const [conversation, list] of [...byConversation].sort(([a], [b]) => a.localeCompare(b))) {
    const path = join(options.outDir, exportFileName(conversation, options.format));
    const body =
      options.format === 'jsonl'
        ? list.map((m) => JSON.stringify(m)).join('\n') + '\n'
        : `# ${conversation}\n\n${list.map(markdownLine).join('\n')}\n`;
    // The archive holds plaintext: readable by its owner only.
    writeFileSync(path, body, { mode: 0o600 });
    files.push(path);
    done += list.length;
    onProgress(done, total);
  }
  return { files, messages: total };
}
