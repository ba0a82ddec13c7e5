// SPDX-License-Identifier: AGPL-3.0-only
/**
 * Full-text search over the `messages_fts` index (FTS5 with Signal's tokenizer: case and
 * diacritics folded, CJK split into characters). User input never reaches FTS5 as syntax: each
 * word is cut into tokens by the same tokenizer and sent as a quoted phrase, so `"`, `*`, `-`,
 * `NEAR(`, `AND` and `:` cannot make a syntax error or change the query's meaning.
 */
import type { Aci, MessageId } from '@parley/protocol';
import type { ClientDatabase } from './database.js';
import { type ConversationId, type MessageDirection, checkInteger } from './store-types.js';

/** Options of a search. */
export interface SearchOptions {
  /** Most results, 1..500; default 20. */
  readonly limit?: number;
  /** Only this conversation; default all. */
  readonly conversationId?: ConversationId;
  /** Text put around each matched word in the snippet; default `[` and `]`. */
  readonly highlight?: { readonly before: string; readonly after: string };
}

/** One match. */
export interface SearchResult {
  readonly conversationId: ConversationId;
  readonly messageId: MessageId;
  readonly senderAci: Aci;
  readonly direction: MessageDirection;
  /** A short excerpt of the text around the matches, with the matched words highlighted. */
  readonly snippet: string;
  /** The sender's timestamp, milliseconds since the epoch. */
  readonly sentAt: number;
  readonly receivedAt: number;
  readonly lamport: number;
}

/** Default number of results of a search. */
export const DEFAULT_SEARCH_LIMIT = 20;
/** Largest number of results of a search. */
export const MAX_SEARCH_LIMIT = 500;
/** Words of a query past this many are ignored (a bound on the work one query can ask for). */
export const MAX_SEARCH_TERMS = 16;
/** Tokens in the snippet around the matches. */
const SNIPPET_TOKENS = 12;

/**
 * The FTS5 MATCH expression for user input `query`, or undefined when it holds no searchable
 * word. Each whitespace-separated word becomes a quoted phrase of its tokens (all words must
 * match); a word ending in `*` becomes a prefix phrase.
 */
export function buildMatchExpression(query: string, tokenize: (text: string) => string[]): string | undefined {
  if (typeof query !== 'string') return undefined;
  const terms: string[] = [];
  for (const word of query.split(/\s+/u)) {
    if (terms.length >= MAX_SEARCH_TERMS) break;
    const prefix = word.endsWith('*');
    const tokens = tokenize(word.replace(/\*+$/u, '')).filter((t) => t.length > 0);
    if (tokens.length === 0) continue;
    terms.push(`"${tokens.join(' ').replace(/"/g, '""')}"${prefix ? '*' : ''}`);
  }
  return terms.length > 0 ? terms.join(' ') : undefined;
}

interface SearchRow {
  conversation_id: string;
  id: string;
  sender_aci: string;
  direction: MessageDirection;
  snippet: string;
  sent_at: number;
  received_at: number;
  lamport: number;
}

/**
 * Searches the text messages in `db`; see {@link buildMatchExpression} for the query language.
 * Messages expired by `nowMs` (ms since the epoch) or deleted are never found.
 */
export function searchMessages(db: ClientDatabase, query: string, options: SearchOptions, nowMs: number): SearchResult[] {
  const limit = checkInteger(options.limit ?? DEFAULT_SEARCH_LIMIT, 'limit', 1, MAX_SEARCH_LIMIT);
  const match = buildMatchExpression(query, (text) => db.tokenize(text));
  if (match === undefined) return [];
  const { before, after } = options.highlight ?? { before: '[', after: ']' };
  const params: (string | number)[] = [String(before), String(after), match, nowMs];
  let scope = '';
  if (options.conversationId !== undefined) {
    scope = 'AND m.conversation_id = ?';
    params.push(options.conversationId);
  }
  params.push(limit);
  // Newest first by row id (insertion order): FTS5 walks its index in rowid order, so the LIMIT
  // stops the scan early; ranking by relevance would have to score every match first.
  const rows = db.all<SearchRow>(
    `SELECT m.conversation_id, m.id, m.sender_aci, m.direction, m.sent_at, m.received_at, m.lamport,
       snippet(messages_fts, 0, ?, ?, '…', ${SNIPPET_TOKENS}) AS snippet
     FROM messages_fts JOIN messages m ON m.row_id = messages_fts.rowid
     WHERE messages_fts MATCH ? AND m.deleted IS NULL AND (m.expires_at IS NULL OR m.expires_at > ?) ${scope}
     ORDER BY messages_fts.rowid DESC LIMIT ?`,
    params,
  );
  return rows.map((r) => ({
    conversationId: r.conversation_id as ConversationId,
    messageId: r.id as MessageId,
    senderAci: r.sender_aci as Aci,
    direction: r.direction,
    snippet: r.snippet,
    sentAt: r.sent_at,
    receivedAt: r.received_at,
    lamport: r.lamport,
  }));
}
