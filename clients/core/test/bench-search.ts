// SPDX-License-Identifier: AGPL-3.0-only
/**
 * Micro-benchmark of local search: fills a fresh SQLCipher profile with messages (default
 * 100,000, in transactions of 1,000), then times 200 searches (half whole words, half prefixes)
 * through MessageStore.search with the default limit of 20. Prints the figures and one JSON line
 * `{"bench":"client-search",...}`. Not a test: run it by hand.
 *
 *   node clients/core/dist/test/bench-search.js [messages]
 */
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { Aci, DeviceId, MessageId } from '@parley/protocol';
import { type ConversationId, openClientStore } from '../src/index.js';

const MESSAGES = Number(process.argv[2] ?? 100_000);
const BATCH = 1_000;
const CONVERSATIONS = 50;
const QUERIES = 200;

// A seeded generator, so every run searches the same corpus with the same queries.
let seed = 0x9e3779b9;
function random(): number {
  seed ^= seed << 13;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  return (seed >>> 0) / 0x100000000;
}
const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
const hex = (bytes: number): string => Array.from({ length: bytes }, () => Math.floor(random() * 256).toString(16).padStart(2, '0')).join('');
const uuid = (): Aci => {
  const h = hex(16);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-8${h.slice(17, 20)}-${h.slice(20, 32)}` as Aci;
};

// 8,000 pronounceable words, used with a Zipf-like skew (a few very common, most rare).
const SYLLABLES = ['ka', 'lo', 'mi', 'ra', 'te', 'su', 'no', 'vi', 'ple', 'dor', 'an', 'qui', 'zen', 'bro', 'fa', 'gu', 'hel', 'is', 'jo', 'wex'];
const words = new Set<string>();
while (words.size < 8_000) words.add(Array.from({ length: 2 + Math.floor(random() * 3) }, () => pick(SYLLABLES)).join(''));
const vocabulary = [...words];
const zipfWord = (): string => vocabulary[Math.min(vocabulary.length - 1, Math.floor(vocabulary.length * random() ** 3))]!;
const sentence = (): string => Array.from({ length: 4 + Math.floor(random() * 16) }, zipfWord).join(' ');

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

const parent = mkdtempSync(join(tmpdir(), 'parley-bench-search-'));
const profileDir = join(parent, 'profile');
try {
  const store = openClientStore({ profileDir });
  const me = uuid();
  const conversations: { id: ConversationId; peer: Aci }[] = [];
  for (let i = 0; i < CONVERSATIONS; i++) {
    const peer = uuid();
    conversations.push({ id: store.messages.conversationWith({ aci: peer, address: `peer${i}@example.org` }).id, peer });
  }

  const insertStart = performance.now();
  for (let done = 0; done < MESSAGES; done += BATCH) {
    store.transaction(() => {
      for (let i = done; i < Math.min(MESSAGES, done + BATCH); i++) {
        const c = conversations[i % CONVERSATIONS]!;
        const out = random() < 0.4;
        store.messages.addMessage({
          conversationId: c.id,
          id: hex(16) as MessageId,
          senderAci: out ? me : c.peer,
          senderDevice: 1 as DeviceId,
          direction: out ? 'out' : 'in',
          body: sentence(),
          sentAt: 1_700_000_000_000 + i * 1000,
          lamport: i + 1,
        });
      }
    });
  }
  const insertMs = performance.now() - insertStart;

  const queries: { kind: 'word' | 'prefix'; q: string }[] = [];
  for (let i = 0; i < QUERIES / 2; i++) queries.push({ kind: 'word', q: zipfWord() });
  for (let i = 0; i < QUERIES / 2; i++) queries.push({ kind: 'prefix', q: `${zipfWord().slice(0, 3 + Math.floor(random() * 2))}*` });
  // Warm the page cache and statement cache with a few searches not counted.
  for (const { q } of queries.slice(0, 5)) store.messages.search(q);

  const times: Record<'word' | 'prefix' | 'all', number[]> = { word: [], prefix: [], all: [] };
  let hits = 0;
  for (const { kind, q } of queries) {
    const t = performance.now();
    hits += store.messages.search(q).length;
    const ms = performance.now() - t;
    times[kind].push(ms);
    times.all.push(ms);
  }
  for (const list of Object.values(times)) list.sort((a, b) => a - b);
  store.close();
  const dbBytes = statSync(join(profileDir, 'parley.db')).size;

  const fmt = (ms: number): string => ms.toFixed(2);
  console.log(`messages: ${MESSAGES} in ${(insertMs / 1000).toFixed(1)} s (${Math.round(MESSAGES / (insertMs / 1000))}/s, transactions of ${BATCH})`);
  console.log(`database: ${(dbBytes / 1024 / 1024).toFixed(1)} MiB`);
  for (const kind of ['word', 'prefix', 'all'] as const) {
    const t = times[kind];
    console.log(`search ${kind.padEnd(6)} n=${t.length} p50 ${fmt(percentile(t, 50))} ms  p99 ${fmt(percentile(t, 99))} ms  max ${fmt(t.at(-1)!)} ms`);
  }
  console.log(`average hits per query: ${(hits / QUERIES).toFixed(1)} (limit 20)`);
  console.log(
    JSON.stringify({
      bench: 'client-search',
      messages: MESSAGES,
      insertPerSecond: Math.round(MESSAGES / (insertMs / 1000)),
      dbMiB: Number((dbBytes / 1024 / 1024).toFixed(1)),
      queries: QUERIES,
      p50Ms: Number(fmt(percentile(times.all, 50))),
      p99Ms: Number(fmt(percentile(times.all, 99))),
      wordP50Ms: Number(fmt(percentile(times.word, 50))),
      wordP99Ms: Number(fmt(percentile(times.word, 99))),
      prefixP50Ms: Number(fmt(percentile(times.prefix, 50))),
      prefixP99Ms: Number(fmt(percentile(times.prefix, 99))),
      maxMs: Number(fmt(times.all.at(-1)!)),
    }),
  );
} finally {
  rmSync(parent, { recursive: true, force: true });
}
