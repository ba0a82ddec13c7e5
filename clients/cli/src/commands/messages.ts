// SPDX-License-Identifier: AGPL-3.0-only
/** Message commands: send, receive, listen, conversations, history, search. */
import { ParleyError, isErrorCode } from '@parley/protocol';
import { CliError } from '../errors.js';
import type { MessageView } from '../engine-contract.js';
import {
  formatActionEvent,
  formatConversation,
  formatGroupName,
  formatMessage,
  formatPresenceEvent,
  formatReceiptEvent,
  formatSearchHit,
  formatTypingEvent,
  formatVersions,
} from '../format.js';
import {
  actionEventJson,
  conversationJson,
  markReadJson,
  messageJson,
  presenceEventJson,
  receiptEventJson,
  searchHitJson,
  typingEventJson,
} from '../json-views.js';
import { type Session, conversationName, requireAccount } from '../session.js';

/** Largest text `send -` reads from stdin, bytes: an envelope's limit, with room to spare. */
export const MAX_STDIN_TEXT_BYTES = 256 * 1024;

/** Reads all of `stdin` as UTF-8, without its trailing newlines. */
export async function readStdinText(stdin: AsyncIterable<string | Uint8Array>, maxBytes = MAX_STDIN_TEXT_BYTES): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stdin) {
    const buf = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : Buffer.from(chunk);
    size += buf.length;
    if (size > maxBytes) throw new CliError('USAGE', `the text on stdin is longer than ${maxBytes} bytes`);
    chunks.push(buf);
  }
  return Buffer.concat(chunks).toString('utf8').replace(/[\r\n]+$/, '');
}

/** `parley send <address> <text>`; text `-` reads stdin. */
export async function sendCommand(s: Session, address: string, textArg: string): Promise<void> {
  const account = requireAccount(s);
  s.context.address = conversationName(address, account);
  const text = textArg === '-' ? await readStdinText(s.rt.stdin) : textArg;
  if (text.trim().length === 0) throw new CliError('USAGE', 'the text is empty');
  const m = await s.client.send(address, text);
  s.out.data(messageJson(m), formatMessage(m));
  if (m.status === 'pending') {
    s.out.note('not delivered yet: the message stays in the outbox and goes out with the next send, receive or listen');
  }
}

/** Prints each message once, whether it came as an event or in a result list. */
class MessagePrinter {
  readonly #seen = new Set<string>();
  readonly #s: Session;
  count = 0;

  constructor(s: Session) {
    this.#s = s;
  }

  print(m: MessageView): void {
    const key = `${m.conversation}/${m.id}`;
    if (this.#seen.has(key)) return;
    this.#seen.add(key);
    this.count += 1;
    // receive and listen mix conversations: a group's message says which group it is in.
    const where = m.conversation.startsWith('#') ? `${formatGroupName(m.conversation.slice(1), groupTitle(this.#s, m.conversation))} ` : '';
    this.#s.out.data(messageJson(m), `${where}${formatMessage(m)}`);
  }
}

/** `parley receive [--wait SECONDS]`: handles what is queued, printing each message as it arrives. */
export async function receiveCommand(s: Session, waitSeconds: number): Promise<void> {
  requireAccount(s);
  const printer = new MessagePrinter(s);
  const offMessage = s.client.on('message', (m) => printer.print(m));
  const offProgress = s.client.on('progress', (p) => s.out.progress(p));
  const offAction = s.client.on('action', (e) => s.out.data(actionEventJson(e), formatActionEvent(e)));
  try {
    const messages = await s.client.receive({ idleSeconds: waitSeconds });
    for (const m of messages) printer.print(m);
  } finally {
    offMessage();
    offProgress();
    offAction();
  }
  s.out.note(printer.count === 0 ? 'no new messages' : `${printer.count} new message${printer.count === 1 ? '' : 's'}`);
}

/** The title of group `handle` (`#<id>`) as this device holds it; undefined when it holds none. */
function groupTitle(s: Session, handle: string): string | undefined {
  try {
    return s.client.group(handle).title;
  } catch {
    // A group this device no longer knows is shown by its id alone.
    return undefined;
  }
}

/** `parley listen`: streams messages until SIGINT/SIGTERM (or the relay removes this device). */
export async function listenCommand(s: Session): Promise<void> {
  const account = requireAccount(s);
  const stop = s.rt.stopSignal();
  const own = new AbortController();
  const onStop = (): void => own.abort();
  if (stop.signal.aborted) own.abort();
  else stop.signal.addEventListener('abort', onStop, { once: true });
  let fatal: { code: string; message: string } | undefined;
  const printer = new MessagePrinter(s);
  const offs = [
    s.client.on('message', (m) => printer.print(m)),
    s.client.on('progress', (p) => s.out.progress(p)),
    s.client.on('action', (e) => s.out.data(actionEventJson(e), formatActionEvent(e))),
    s.client.on('connection', (state, detail) => {
      const human: Record<typeof state, string> = {
        connecting: `connecting to ${account.server}…`,
        connected: 'connected; waiting for messages (Ctrl-C stops)',
        // While stopping, the engine reports the closing socket too; nothing reconnects then.
        disconnected: `disconnected${detail ? ` (${detail})` : ''}${own.signal.aborted ? '' : '; reconnecting…'}`,
        stopped: 'stopped',
      };
      s.out.note(human[state], { connection: detail === undefined ? { state } : { state, detail } });
    }),
    s.client.on('fatal', (code, message) => {
      fatal = { code, message };
      own.abort();
    }),
    // Events are data too: `{"event":…}` lines between the messages.
    s.client.on('receipt', (e) => s.out.data(receiptEventJson(e), formatReceiptEvent(e))),
    s.client.on('typing', (e) => s.out.data(typingEventJson(e), formatTypingEvent(e, e.groupId === undefined ? undefined : groupTitle(s, e.conversation)))),
    s.client.on('presence', (p) => s.out.data(presenceEventJson(p), formatPresenceEvent(p))),
  ];
  try {
    if (!own.signal.aborted) await s.client.listen(own.signal);
  } finally {
    for (const off of offs) off();
    stop.signal.removeEventListener('abort', onStop);
    stop.dispose();
  }
  if (fatal) {
    throw isErrorCode(fatal.code)
      ? new ParleyError(fatal.code, fatal.message)
      : Object.assign(new Error(fatal.message), { code: fatal.code });
  }
}

/** `parley conversations`. */
export async function conversationsCommand(s: Session): Promise<void> {
  requireAccount(s);
  const conversations = s.client.conversations();
  for (const c of conversations) s.out.data(conversationJson(c), formatConversation(c));
  if (conversations.length === 0) s.out.note('no conversations yet');
}

/** Options of `parley history`. */
export interface HistoryOptions {
  /** Most messages to show; default: the engine's. */
  readonly limit?: number;
  /** Show the messages before this message id. */
  readonly before?: string;
  /** Show the versions (edit history) of this message instead. */
  readonly edits?: string;
  /** Then mark the conversation read (read receipts, read sync). */
  readonly markRead?: boolean;
}

/**
 * `parley history <address>`: the newest `limit` messages (before `before`), printed oldest
 * first so that they read like a chat; to page back, pass the first line's id as `--before`.
 */
export async function historyCommand(s: Session, address: string, options: HistoryOptions): Promise<void> {
  const account = requireAccount(s);
  s.context.address = conversationName(address, account);
  if (options.edits !== undefined) return editsOf(s, address, options.edits);
  const query: { limit?: number; before?: string } = {};
  if (options.limit !== undefined) query.limit = options.limit;
  if (options.before !== undefined) query.before = options.before;
  const newestFirst = s.client.history(address, query);
  for (const m of [...newestFirst].reverse()) s.out.data(messageJson(m), formatMessage(m));
  if (newestFirst.length === 0) s.out.note(`no messages with ${s.context.address}${options.before ? ' before that message' : ''}`);
  if (options.markRead && newestFirst.length > 0) {
    const r = await s.client.markRead(address);
    s.out.note(`marked ${r.messageIds.length} message${r.messageIds.length === 1 ? '' : 's'} read`, { read: markReadJson(r) });
  }
}

/** `parley history <address> --edits <id>`: the versions of one message, oldest first. */
function editsOf(s: Session, address: string, id: string): void {
  let before: string | undefined;
  for (;;) {
    const page = s.client.history(address, { limit: 1000, ...(before ? { before } : {}) });
    const m = page.find((x) => x.id === id);
    if (m) {
      const versions = m.edits && m.edits.length > 0 ? m.edits : [{ id: m.id, text: m.text, sentAt: m.sentAt }];
      const lines = formatVersions(m);
      versions.forEach((v, i) => s.out.data({ id: v.id, messageId: m.id, text: v.text, sentAt: v.sentAt }, lines[i]!));
      if (!m.edits || m.edits.length === 0) s.out.note('this message was never edited');
      return;
    }
    if (page.length < 1000) break;
    before = page[page.length - 1]!.id;
  }
  // The engine's NOT_FOUND (exit 3), without loading the engine's error class.
  throw Object.assign(new Error(`no message ${id} in the conversation with ${s.context.address}`), { name: 'ClientError', code: 'NOT_FOUND' });
}

/** `parley search <query>`: hits in the engine's order (best first). */
export async function searchCommand(s: Session, query: string, options: { limit?: number }): Promise<void> {
  requireAccount(s);
  if (query.trim().length === 0) throw new CliError('USAGE', 'the search query is empty');
  const hits = s.client.search(query, options.limit === undefined ? undefined : { limit: options.limit });
  for (const h of hits) s.out.data(searchHitJson(h), formatSearchHit(h));
  if (hits.length === 0) s.out.note('no matches');
}
