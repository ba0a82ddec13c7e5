// SPDX-License-Identifier: AGPL-3.0-only
/**
 * Micro-benchmark of the SQLite envelope store alone: enqueue, read and ack rates for batches of
 * 1, 64 and 512 sends (one durable commit per batch), and an offline drain. Not a test: run
 *
 *   npx tsc -b relay && node relay/dist/test/bench-store.js [--sync full|normal] [--queues 1000]
 *     [--envelopes 100000] [--bytes 256] [--devices 1] [--prefill 0] [--dir /tmp]
 *
 * Each send goes to the next of `--queues` destination accounts (round robin) with `--devices`
 * devices; `--prefill` first writes that many dedup entries, to see the hot path on a large
 * table. Requests (and their content hashes) are built before the clock starts: that is the
 * relay's work, not the store's.
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { Aci, DeviceId, MessageId } from '@parley/protocol';
import type { AckRequest, EnqueueRequest, EnvelopeStore, QueueAddress } from '../src/ports/envelope-store.js';
import { openSqliteEnvelopeStore } from '../src/storage/sqlite-envelope-store.js';

const { values: args } = parseArgs({
  options: {
    sync: { type: 'string', default: 'full' },
    queues: { type: 'string', default: '1000' },
    envelopes: { type: 'string', default: '100000' },
    bytes: { type: 'string', default: '256' },
    devices: { type: 'string', default: '1' },
    prefill: { type: 'string', default: '0' },
    dir: { type: 'string', default: tmpdir() },
  },
});
const SYNC = args.sync === 'normal' ? 'normal' : 'full';
const QUEUES = Number(args.queues);
const TOTAL = Number(args.envelopes);
const BYTES = Number(args.bytes);
const DEVICES = Number(args.devices);
const PREFILL = Number(args.prefill);
const NOW = Date.now();
const RETENTION = 30 * 24 * 3_600_000;

const accounts: Aci[] = Array.from({ length: QUEUES }, () => randomUUID() as Aci);
const source = { aci: randomUUID() as Aci, deviceId: 1 as DeviceId, domain: 'bench.example' };
const bodies = Array.from({ length: 64 }, () => randomBytes(BYTES));

function makeSend(to: Aci, i: number): EnqueueRequest {
  const envelopes = [];
  for (let d = 1; d <= DEVICES; d++) {
    const content = bodies[(i + d) % bodies.length]!;
    envelopes.push({ deviceId: d as DeviceId, type: 1, content, contentHash: createHash('sha256').update(content).update(String(i)).digest().subarray(0, 16) });
  }
  return {
    destination: to,
    messageId: randomBytes(16).toString('hex') as MessageId,
    source,
    timestamp: NOW,
    serverTimestamp: NOW,
    urgent: true,
    expiresAt: NOW + RETENTION,
    maxQueueDepth: 1_000_000,
    envelopes,
  };
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? 0;
}

const fmt = (n: number): string => Math.round(n).toLocaleString('en-US');

async function withStore<T>(fn: (store: EnvelopeStore) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(args.dir, 'parley-bench-store-'));
  const store = openSqliteEnvelopeStore({ path: join(dir, 'relay.db'), synchronous: SYNC });
  try {
    if (PREFILL > 0) await prefill(store);
    return await fn(store);
  } finally {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  }
}

/** Writes PREFILL dedup entries (their envelopes acked), spread over other accounts. */
async function prefill(store: EnvelopeStore): Promise<void> {
  const others = Array.from({ length: Math.max(1, Math.min(QUEUES * 10, PREFILL / 10)) }, () => randomUUID() as Aci);
  for (let done = 0; done < PREFILL; done += 2048) {
    const batch = Array.from({ length: Math.min(2048, PREFILL - done) }, (_, i) => makeSend(others[(done + i) % others.length]!, i));
    const results = await store.enqueue(batch);
    const acks: AckRequest[] = [];
    results.forEach((r, i) => {
      if (r.status !== 'queued') return;
      for (const s of r.seqs) acks.push({ queue: { aci: batch[i]!.destination, deviceId: s.deviceId }, upTo: s.seq, seqs: [] });
    });
    await store.ack(acks);
  }
}

interface Figures {
  batch: number;
  enqueue: number;
  read: number;
  ack: number;
  cycle: number;
  p50: number;
  p99: number;
}

/** Sends in batches of `batch`; after each commit reads the new envelopes of every touched queue and acks them. */
async function runBatches(batch: number): Promise<Figures> {
  return withStore(async (store) => {
    const sends = Math.max(batch, Math.floor(TOTAL / DEVICES / batch) * batch);
    const batches: EnqueueRequest[][] = [];
    for (let i = 0; i < sends; i += batch) batches.push(Array.from({ length: batch }, (_, j) => makeSend(accounts[(i + j) % QUEUES]!, i + j)));
    const last = new Map<string, number>();
    let tEnq = 0;
    let tRead = 0;
    let tAck = 0;
    let envelopes = 0;
    let read = 0;
    const latencies: number[] = [];
    for (const requests of batches) {
      const t0 = performance.now();
      const results = await store.enqueue(requests);
      const t1 = performance.now();
      latencies.push(t1 - t0);
      tEnq += t1 - t0;
      const touched = new Map<string, QueueAddress>();
      results.forEach((r, i) => {
        if (r.status !== 'queued') throw new Error(`unexpected ${r.status}`);
        envelopes += r.seqs.length;
        for (const s of r.seqs) touched.set(`${requests[i]!.destination}.${s.deviceId}`, { aci: requests[i]!.destination, deviceId: s.deviceId });
      });
      const acks: AckRequest[] = [];
      const t2 = performance.now();
      for (const [key, queue] of touched) {
        const got = await store.read(queue, last.get(key) ?? 0, 256, NOW);
        read += got.length;
        const upTo = got[got.length - 1]!.seq;
        last.set(key, upTo);
        acks.push({ queue, upTo, seqs: [] });
      }
      const t3 = performance.now();
      await store.ack(acks);
      tAck += performance.now() - t3;
      tRead += t3 - t2;
    }
    if (read !== envelopes) throw new Error(`read ${read} of ${envelopes} envelopes`);
    latencies.sort((a, b) => a - b);
    return {
      batch,
      enqueue: envelopes / (tEnq / 1000),
      read: read / (tRead / 1000),
      ack: envelopes / (tAck / 1000),
      cycle: envelopes / ((tEnq + tRead + tAck) / 1000),
      p50: percentile(latencies, 0.5),
      p99: percentile(latencies, 0.99),
    };
  });
}

/** One device offline while 10,000 envelopes queue up; then it drains 256 at a time, acking as it goes. */
async function runDrain(): Promise<{ fill: number; drainMs: number }> {
  return withStore(async (store) => {
    const aci = randomUUID() as Aci;
    const queue = { aci, deviceId: 1 as DeviceId };
    const count = 10_000;
    const t0 = performance.now();
    for (let i = 0; i < count; i += 512) {
      await store.enqueue(Array.from({ length: Math.min(512, count - i) }, (_, j) => ({ ...makeSend(aci, i + j), envelopes: makeSend(aci, i + j).envelopes.slice(0, 1) })));
    }
    const fill = performance.now() - t0;
    const t1 = performance.now();
    let after = 0;
    let got = 0;
    for (;;) {
      const page = await store.read(queue, after, 256, NOW);
      if (page.length === 0) break;
      got += page.length;
      after = page[page.length - 1]!.seq;
      await store.ack([{ queue, upTo: after, seqs: [] }]);
    }
    if (got !== count) throw new Error(`drained ${got} of ${count}`);
    return { fill, drainMs: performance.now() - t1 };
  });
}

async function main(): Promise<void> {
  console.log(
    `SQLite envelope store, synchronous=${SYNC}, ${QUEUES} destination accounts x ${DEVICES} device(s), ${BYTES}-byte ciphertexts, ` +
      `~${fmt(TOTAL)} envelopes per run, ${fmt(PREFILL)} dedup entries prefilled, node ${process.version}`,
  );
  console.log('batch | enqueue env/s | read env/s | ack env/s | enqueue+read+ack env/s | commit p50 / p99 ms');
  for (const batch of [1, 64, 512]) {
    const f = await runBatches(batch);
    console.log(
      `${String(f.batch).padStart(5)} | ${fmt(f.enqueue).padStart(13)} | ${fmt(f.read).padStart(10)} | ${fmt(f.ack).padStart(9)} | ${fmt(f.cycle).padStart(22)} | ${f.p50.toFixed(2)} / ${f.p99.toFixed(2)}`,
    );
  }
  const d = await runDrain();
  console.log(`drain: 10,000 envelopes queued for one device in ${d.fill.toFixed(0)} ms, read + acked (256 a page) in ${d.drainMs.toFixed(0)} ms`);
}

await main();
