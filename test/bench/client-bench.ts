// SPDX-License-Identifier: AGPL-3.0-only
/**
 * Client benchmark (run by `npm run bench`, not by `npm test`):
 *
 * 1. Messages/s end to end between two client profiles through one relay process: alice sends N
 *    messages (default 2,000) while bob listens; the clock runs until bob has committed all of
 *    them (encrypt, outbox, relay commit, deliver, decrypt, commit, ack). Alice runs in this
 *    process, bob in one of his own (client-bench-peer.ts), the relay in a third, as two people's
 *    clients and a relay do. Also the CPU time both clients spend per message.
 * 2. Bare libsignal encrypt+decrypt pairs/s in this same process: @parley/crypto's SessionCipher
 *    over in-memory stores, the same plaintext size as the engine's padded Content, and the same
 *    pattern (one direction, no replies): plain, and sealed as the engine sends every message
 *    after the first exchange (the receiver remembering checked certificates, as the engine's
 *    does). The ratio of 1 to 2 says what the engine costs on top of the cryptography (target:
 *    at least 50% of the sealed pairs, the same libsignal work); the CPU ratio (a sealed pair's
 *    CPU time over a message's, both clients together) says it without the second core.
 * 3. Search latency p50/p99 through the engine's `search()` over a history of 100,000 messages
 *    (inserted with the store's batched API directly, 1,000 per transaction).
 * 4. Start-up time of `parley receive --profile DIR` as a real process with that history, against
 *    a relay with an empty queue (and, for comparison, with an empty history). When the CLI is
 *    missing or broken, a child process running openParleyClient + receive() is timed instead.
 *
 * Prints the figures and ends with one JSON line `{"bench":"client",...}`.
 *
 *   node test/dist/bench/client-bench.js [--messages 2000] [--history 100000] [--searches 200] [--startups 5]
 */
import { fork, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import {
  createMemoryStores,
  generateIdentity,
  generateKyberPreKey,
  generatePreKeys,
  generateSignedPreKey,
  SessionCipher,
  createServerCertificate,
  generateTrustRoot,
  issueSenderCertificate,
  SenderCertificateMemo,
} from '@parley/crypto';
import { openClientStore, openParleyClient, type ConversationId, type ParleyClientApi } from '@parley/client';
import { ContentSchema, create, toBinary, type Aci, type DeviceId, type MessageId } from '@parley/protocol';
import { REPO_ROOT, startRelay, type RelayProcess } from '../support/relay-process.js';

const CLI_BIN = join(REPO_ROOT, 'clients', 'cli', 'bin', 'parley.js');
/** Characters of every benchmark message's text (a typical chat line). */
const TEXT_CHARS = 100;
/** The engine pads Content to multiples of this many bytes (content-codec.ts). */
const PADDING_BLOCK_BYTES = 160;

const { values: args } = parseArgs({
  options: {
    messages: { type: 'string', default: '2000' },
    burst: { type: 'string', default: '100' },
    history: { type: 'string', default: '100000' },
    searches: { type: 'string', default: '200' },
    startups: { type: 'string', default: '5' },
  },
  // `npm run bench -- …` hands every benchmark the same flags; ignore those meant for others.
  strict: false,
});
const N = Number(args.messages);
/** Sends issued at once (see sendAll). */
const SEND_BURST = Number(args.burst);
const HISTORY = Number(args.history);
const SEARCHES = Number(args.searches);
const STARTUPS = Number(args.startups);

const log = (line: string) => process.stderr.write(`${line}\n`);
const profileDir = (parent: string, name: string) => join(parent, name);

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}
const median = (xs: readonly number[]) => percentile([...xs].sort((a, b) => a - b), 50);
const round = (x: number, digits = 2) => Number(x.toFixed(digits));

/** A seeded generator, so every run has the same texts, history and queries. */
function seeded(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 0x100000000;
  };
}

/** `chars` characters of lower-case words. */
function textOf(random: () => number, chars: number): string {
  let t = '';
  while (t.length < chars) t += (t ? ' ' : '') + Math.floor(random() * 36 ** 5).toString(36);
  return t.slice(0, chars);
}

/** Bytes of the engine's padded Content for a data message with `text` (see content-codec.ts). */
function paddedContentBytes(text: string): number {
  const bare = toBinary(
    ContentSchema,
    create(ContentSchema, {
      body: {
        case: 'data',
        value: { messageId: new Uint8Array(16), lamport: 1_000n, timestamp: BigInt(Date.now()), text, senderAddress: 'alice@localhost' },
      },
    }),
  ).length;
  return Math.ceil((bare + 3) / PADDING_BLOCK_BYTES) * PADDING_BLOCK_BYTES;
}

async function until(what: string, ok: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

// --- 1. end to end ------------------------------------------------------------------------------

interface EndToEnd {
  messagesPerSecond: number;
  sendMs: number;
  totalMs: number;
  latencyP50Ms: number;
  latencyP99Ms: number;
  /** Sends/s with the recipient offline (encrypt, outbox, relay commit). */
  sendOnlyPerSecond: number;
  /** Messages/s of the recipient draining its queue (decrypt, commit, ack). */
  drainPerSecond: number;
  /** CPU time of both client processes per message end to end, µs: steadier than a rate on a shared machine. */
  cpuUsPerMessage: number;
}

/** CPU time (user + system) this process used since `since`, µs. */
function cpuSince(since: NodeJS.CpuUsage): number {
  const d = process.cpuUsage(since);
  return d.user + d.system;
}

/** Wall-clock milliseconds with sub-millisecond precision, comparable across processes. */
const epochNow = () => performance.timeOrigin + performance.now();

/** The receiving client in its own process (client-bench-peer.ts), driven over IPC. */
class Peer {
  readonly #child: ChildProcess;
  readonly #waiting = new Map<string, (m: PeerReply) => void>();

  constructor(onArrivals: (got: ReadonlyArray<[string, number]>) => void) {
    this.#child = fork(fileURLToPath(new URL('./client-bench-peer.js', import.meta.url)), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    this.#child.on('message', (m: PeerReply) => {
      if (m.got) onArrivals(m.got);
      else if (m.done) this.#waiting.get(m.done)?.(m);
    });
  }

  /** Sends command `what` and resolves with its answer (rejects on the peer's error). */
  async ask(what: string, args: Record<string, unknown> = {}): Promise<PeerReply> {
    const reply = await new Promise<PeerReply>((resolve) => {
      this.#waiting.set(what, resolve);
      this.#child.send({ do: what, ...args });
    });
    this.#waiting.delete(what);
    if (reply.error) throw new Error(`the receiving client's ${what} failed: ${reply.error}`);
    return reply;
  }

  /** Sends command `what` without waiting for an answer. */
  tell(what: string): void {
    this.#child.send({ do: what });
  }

  async cpuUs(): Promise<number> {
    return (await this.ask('cpu')).cpu!;
  }

  async close(): Promise<void> {
    if (this.#child.exitCode !== null || !this.#child.connected) return;
    const exited = new Promise((r) => this.#child.once('exit', r));
    await this.ask('close').catch(() => undefined);
    await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
    this.#child.kill();
  }
}

interface PeerReply {
  readonly done?: string;
  readonly got?: ReadonlyArray<[string, number]>;
  readonly cpu?: number;
  readonly ms?: number;
  readonly count?: number;
  readonly error?: string;
}

/**
 * Alice (in this process) sends to Bob (in a process of his own, as two people's clients are):
 * both connected, then the halves apart. CPU time is both processes' together.
 */
async function endToEnd(relay: RelayProcess, parent: string): Promise<EndToEnd> {
  const alice = await openParleyClient({ profileDir: profileDir(parent, 'alice') });
  const sentAt = new Map<string, number>();
  const latencies: number[] = [];
  let got = 0;
  const bob = new Peer((arrivals) => {
    for (const [text, at] of arrivals) {
      const t = sentAt.get(text);
      if (t === undefined) continue;
      latencies.push(at - t);
      got++;
    }
  });
  const stopAlice = new AbortController();
  let aliceListening: Promise<void> | undefined;
  try {
    await alice.register(relay.url, 'alice');
    await bob.ask('register', { relayUrl: relay.url, username: 'bob', profileDir: profileDir(parent, 'bob') });
    const random = seeded(7);
    const batch = () => Array.from({ length: N }, () => textOf(random, TEXT_CHARS));
    // Sends are issued in bursts of SEND_BURST, as a script or a busy conversation does; the
    // engine encrypts a burst through one commit and pipelines it on the socket.
    const sendAll = async (texts: readonly string[]) => {
      for (let i = 0; i < texts.length; i += SEND_BURST) {
        const slice = texts.slice(i, i + SEND_BURST);
        for (const text of slice) sentAt.set(text, epochNow());
        const ms = await Promise.all(slice.map((text) => alice.send('bob', text)));
        for (const m of ms) if (m.status !== 'sent') throw new Error(`a send ended ${m.status}`);
      }
    };
    // Both keep their connection open, as a running app does.
    aliceListening = alice.listen(stopAlice.signal);
    bob.tell('listen');
    // Warm up: the session (first prekey message, bundle claim), the directory lookups, and the
    // exchange of profile keys after which every message goes sealed.
    sentAt.set('warm-up', epochNow());
    await alice.send('bob', 'warm-up');
    await until('the warm-up message', () => got === 1, 30_000);
    got = 0;
    latencies.length = 0;

    log(`[client] alice sends ${N} messages of ${TEXT_CHARS} characters to bob (another process), who listens…`);
    const t0 = performance.now();
    const cpu0 = process.cpuUsage();
    const bobCpu0 = await bob.cpuUs();
    await sendAll(batch());
    const sendMs = performance.now() - t0;
    await until('bob to have every message', () => got === N, 120_000);
    const totalMs = performance.now() - t0;
    const cpuUs = cpuSince(cpu0) + ((await bob.cpuUs()) - bobCpu0);
    const live = [...latencies].sort((a, b) => a - b);

    // The two halves apart: bob offline while alice sends, then bob drains his queue.
    await bob.ask('stop');
    log(`[client] the halves apart: alice sends ${N} more while bob is offline, then bob drains them…`);
    const t1 = performance.now();
    await sendAll(batch());
    const sendOnlyMs = performance.now() - t1;
    const drain = await bob.ask('drain');
    if (drain.count !== N) throw new Error(`bob drained ${drain.count} of ${N} messages`);
    return {
      messagesPerSecond: Math.round(N / (totalMs / 1000)),
      sendMs: Math.round(sendMs),
      totalMs: Math.round(totalMs),
      latencyP50Ms: round(percentile(live, 50)),
      latencyP99Ms: round(percentile(live, 99)),
      sendOnlyPerSecond: Math.round(N / (sendOnlyMs / 1000)),
      drainPerSecond: Math.round(N / (drain.ms! / 1000)),
      cpuUsPerMessage: Math.round(cpuUs / N),
    };
  } finally {
    stopAlice.abort();
    await aliceListening;
    await alice.close();
    await bob.close();
  }
}

// --- 2. bare libsignal --------------------------------------------------------------------------

/**
 * Encrypt+decrypt pairs/s over one session in this process: plain (what an identified message
 * costs) and sealed (sealed sender v1 around it, as the engine sends to contacts once their
 * profile key is known: a certificate check and an extra ECDH layer per message).
 */
async function bareLibsignal(plaintextBytes: number): Promise<{ pairs: number; sealedPairs: number; sealedCpuUsPerPair: number }> {
  const alice = generateIdentity();
  const bob = generateIdentity();
  const aliceStores = createMemoryStores(alice);
  const bobStores = createMemoryStores(bob);
  const aliceAddress = { aci: '3b5a1c3e-8c9d-4a57-9a43-1f0e6a7b2c11', deviceId: 1 };
  const bobAddress = { aci: '9f2e7d41-6b3c-4e8a-8d15-2a4c6e8f0b22', deviceId: 1 };
  const now = Date.now();
  const spk = generateSignedPreKey(bob.identityKeyPair, 1, now);
  const kyber = generateKyberPreKey(bob.identityKeyPair, 1, now);
  const [pre] = generatePreKeys(1, 1);
  await bobStores.signedPreKeys.saveSignedPreKey(spk.keyId, spk.record);
  await bobStores.kyberPreKeys.saveKyberPreKey(kyber.keyId, kyber.record, true);
  await bobStores.preKeys.savePreKey(pre!.keyId, pre!.record);
  const aliceCipher = new SessionCipher(aliceStores, { localAddress: aliceAddress });
  // The receiver remembers certificates it has checked, as the engine's does (sealed-receive.ts):
  // the baseline is libsignal doing the same work the engine asks of it, no more.
  const bobCipher = new SessionCipher(bobStores, { localAddress: bobAddress, certificateMemo: new SenderCertificateMemo() });
  await aliceCipher.processBundle(bobAddress, {
    registrationId: bob.registrationId,
    deviceId: 1,
    identityKey: bob.identityKey,
    signedPreKey: spk.upload,
    kyberPreKey: kyber.upload,
    preKey: pre!.upload,
  });
  const plaintext = crypto.getRandomValues(new Uint8Array(plaintextBytes));
  const pair = async () => {
    const enc = await aliceCipher.encrypt(bobAddress, plaintext);
    await bobCipher.decrypt(aliceAddress, enc.type, enc.body);
  };
  const root = generateTrustRoot();
  const server = createServerCertificate(1, root.privateKey);
  const certificate = issueSenderCertificate({
    senderAci: aliceAddress.aci,
    senderDeviceId: 1,
    senderIdentityKey: alice.identityKey,
    expiresAt: now + 3600_000,
    serverCertificate: server.certificate,
    serverPrivateKey: server.privateKey,
  });
  const sealedPair = async () => {
    const sealed = await aliceCipher.sealedEncrypt(bobAddress, plaintext, certificate);
    await bobCipher.sealedDecrypt(sealed, { trustRoots: [root.publicKey], timestamp: Date.now(), localAci: bobAddress.aci, localDeviceId: 1 });
  };
  let cpuUs = 0;
  const rate = async (fn: () => Promise<void>): Promise<number> => {
    for (let i = 0; i < 50; i++) await fn(); // warm-up
    const t0 = performance.now();
    const cpu0 = process.cpuUsage();
    for (let i = 0; i < N; i++) await fn();
    cpuUs = cpuSince(cpu0);
    return Math.round(N / ((performance.now() - t0) / 1000));
  };
  const pairs = await rate(pair);
  const sealedPairs = await rate(sealedPair);
  return { pairs, sealedPairs, sealedCpuUsPerPair: Math.round(cpuUs / N) };
}

// --- 3. search over a large history -------------------------------------------------------------

const SYLLABLES = ['ka', 'lo', 'mi', 'ra', 'te', 'su', 'no', 'vi', 'pre', 'dal', 'on', 'qua', 'zet', 'bri', 'fo', 'gu', 'hen', 'is', 'ju', 'wak'];

interface HistoryFill {
  insertPerSecond: number;
  /** Search queries drawn from the history's vocabulary: half words, half prefixes. */
  queries: string[];
}

/** Adds HISTORY messages over 50 conversations to the (closed) profile at `dir`. */
function fillHistory(dir: string, me: string): HistoryFill {
  const random = seeded(11);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;
  const hex = (n: number) => Array.from({ length: n }, () => Math.floor(random() * 256).toString(16).padStart(2, '0')).join('');
  const aci = (): Aci => {
    const h = hex(16);
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-8${h.slice(17, 20)}-${h.slice(20, 32)}` as Aci;
  };
  const vocabulary = new Set<string>();
  while (vocabulary.size < 8_000) vocabulary.add(Array.from({ length: 2 + Math.floor(random() * 3) }, () => pick(SYLLABLES)).join(''));
  const words = [...vocabulary];
  // Zipf-like: a few words are everywhere, most are rare.
  const word = () => words[Math.min(words.length - 1, Math.floor(words.length * random() ** 3))]!;
  const store = openClientStore({ profileDir: dir });
  try {
    const peers = Array.from({ length: 50 }, (_, i) => {
      const peer = aci();
      return { peer, id: store.messages.conversationWith({ aci: peer, address: `friend${i}@localhost` }).id as ConversationId };
    });
    const t0 = performance.now();
    for (let done = 0; done < HISTORY; done += 1_000) {
      store.transaction(() => {
        for (let i = done; i < Math.min(HISTORY, done + 1_000); i++) {
          const c = peers[i % peers.length]!;
          const out = random() < 0.4;
          store.messages.addMessage({
            conversationId: c.id,
            id: hex(16) as MessageId,
            senderAci: (out ? me : c.peer) as Aci,
            senderDevice: 1 as DeviceId,
            direction: out ? 'out' : 'in',
            body: Array.from({ length: 4 + Math.floor(random() * 16) }, word).join(' '),
            sentAt: 1_700_000_000_000 + i * 1_000,
            lamport: i + 1,
          });
        }
      });
    }
    const ms = performance.now() - t0;
    return { insertPerSecond: Math.round(HISTORY / (ms / 1000)), queries: Array.from({ length: SEARCHES }, (_, i) => (i % 2 === 0 ? word() : `${word().slice(0, 3 + (i % 3))}*`)) };
  } finally {
    store.close();
  }
}

async function searchLatency(client: ParleyClientApi, queries: readonly string[]): Promise<{ p50: number; p99: number; max: number; hits: number }> {
  for (const q of queries.slice(0, 5)) client.search(q); // warm the page and statement caches
  const times: number[] = [];
  let hits = 0;
  for (const q of queries) {
    const t = performance.now();
    hits += client.search(q).length;
    times.push(performance.now() - t);
  }
  times.sort((a, b) => a - b);
  return { p50: round(percentile(times, 50)), p99: round(percentile(times, 99)), max: round(times.at(-1)!), hits };
}

// --- 4. start-up of `parley receive` ------------------------------------------------------------

function cliWorks(): boolean {
  if (!existsSync(CLI_BIN)) return false;
  const r = spawnSync(process.execPath, [CLI_BIN, '--version'], { encoding: 'utf8', timeout: 30_000 });
  return r.status === 0 && /\d+\.\d+/.test(r.stdout);
}

/** The engine-only fallback: a child process that opens the profile and receives. */
const FALLBACK = `
const { openParleyClient } = await import('@parley/client');
const c = await openParleyClient({ profileDir: process.argv[1] });
try { await c.receive(); } finally { await c.close(); }
`;

/** Wall time of one start-to-exit run, ms. */
function timeReceive(dir: string, useCli: boolean): Promise<number> {
  const argv = useCli ? [CLI_BIN, 'receive', '--profile', dir] : ['--input-type=module', '-e', FALLBACK, dir];
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(process.execPath, argv, { stdio: ['ignore', 'ignore', 'pipe'], cwd: REPO_ROOT });
    let err = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    child.once('exit', (code) => {
      const ms = performance.now() - t0;
      if (code === 0) resolve(ms);
      else reject(new Error(`receive exited with ${code}: ${err.trim()}`));
    });
  });
}

async function startup(dir: string, useCli: boolean): Promise<number[]> {
  await timeReceive(dir, useCli); // page cache, compiled code
  const out: number[] = [];
  for (let i = 0; i < STARTUPS; i++) out.push(await timeReceive(dir, useCli));
  return out;
}

// --- main ---------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const parent = mkdtempSync(join(tmpdir(), 'parley-client-bench-'));
  // Capacity is measured, not the per-account send limits a public relay sets for people.
  // Capacity, not per-sender limits: sends after the first exchange go sealed, so the client
  // address's unidentified-send bucket is lifted too.
  const relay = await startRelay({
    args: ['--log-level', 'error', '--rate-limit-sends-per-minute', '0', '--rate-limit-device-sends-per-minute', '0', '--rate-limits', 'unidentifiedSend=100000000/1m,sendPerDestination=off'],
  });
  try {
    const text = textOf(seeded(7), TEXT_CHARS);
    const plaintextBytes = paddedContentBytes(text);

    const e2e = await endToEnd(relay, parent);
    log(`[client] end to end: ${N} messages in ${e2e.totalMs} ms = ${e2e.messagesPerSecond} messages/s (sends done after ${e2e.sendMs} ms; latency p50 ${e2e.latencyP50Ms} ms, p99 ${e2e.latencyP99Ms} ms)`);
    log(`[client] apart: sending alone ${e2e.sendOnlyPerSecond} messages/s; draining alone ${e2e.drainPerSecond} messages/s`);

    log(`[client] bare libsignal: ${N} encrypt+decrypt pairs of ${plaintextBytes} bytes…`);
    const bare = await bareLibsignal(plaintextBytes);
    const pairsPerSecond = bare.pairs;
    const ratio = e2e.messagesPerSecond / pairsPerSecond;
    const sealedRatio = e2e.messagesPerSecond / bare.sealedPairs;
    const cpuRatio = bare.sealedCpuUsPerPair / e2e.cpuUsPerMessage;
    log(`[client] bare libsignal: ${pairsPerSecond} pairs/s, sealed ${bare.sealedPairs} pairs/s; the engine end to end (sealed after the first exchange) reaches ${(ratio * 100).toFixed(1)}% / ${(sealedRatio * 100).toFixed(1)}% of them (target ≥ 50%)`);
    log(`[client] CPU: ${e2e.cpuUsPerMessage} µs per message end to end (both clients) vs ${bare.sealedCpuUsPerPair} µs per bare sealed pair = ${(cpuRatio * 100).toFixed(1)}%`);

    // A profile with an account on the relay, so that `parley receive` can start against it.
    const historyDir = profileDir(parent, 'carol');
    const emptyDir = profileDir(parent, 'dave');
    const carol = await openParleyClient({ profileDir: historyDir });
    const me = (await carol.register(relay.url, 'carol')).aci;
    await carol.close();
    const dave = await openParleyClient({ profileDir: emptyDir });
    await dave.register(relay.url, 'dave');
    await dave.close();

    log(`[client] inserting ${HISTORY} messages into a profile (transactions of 1,000)…`);
    const fill = fillHistory(historyDir, me);
    const dbMiB = statSync(join(historyDir, 'parley.db')).size / 1024 / 1024;
    log(`[client] history: ${fill.insertPerSecond} messages/s inserted; database ${dbMiB.toFixed(1)} MiB`);

    const client = await openParleyClient({ profileDir: historyDir });
    let search;
    try {
      search = await searchLatency(client, fill.queries);
    } finally {
      await client.close();
    }
    log(`[client] search over ${HISTORY} messages, ${SEARCHES} queries (half words, half prefixes), limit 20: p50 ${search.p50} ms, p99 ${search.p99} ms, max ${search.max} ms; ${(search.hits / SEARCHES).toFixed(1)} hits per query`);

    const useCli = cliWorks();
    const how = useCli ? '`parley receive --profile DIR` (real process)' : 'a child process running openParleyClient + receive() (the CLI is missing or broken)';
    log(`[client] start-up of ${how}, empty queue, ${STARTUPS} runs each…`);
    const withHistory = await startup(historyDir, useCli);
    const empty = await startup(emptyDir, useCli);
    log(`[client] start-up: ${Math.round(median(withHistory))} ms median with ${HISTORY} messages (runs: ${withHistory.map((x) => Math.round(x)).join(', ')}); ${Math.round(median(empty))} ms with an empty history`);

    console.log('');
    console.log('| figure | value |');
    console.log('| --- | --- |');
    console.log(`| end to end, messages/s (${N} messages, ${TEXT_CHARS} characters) | ${e2e.messagesPerSecond} |`);
    console.log(`| end to end latency p50 / p99, ms | ${e2e.latencyP50Ms} / ${e2e.latencyP99Ms} |`);
    console.log(`| sending alone (recipient offline) / draining alone, messages/s | ${e2e.sendOnlyPerSecond} / ${e2e.drainPerSecond} |`);
    console.log(`| bare libsignal encrypt+decrypt pairs/s (${plaintextBytes} bytes) | ${pairsPerSecond} |`);
    console.log(`| bare libsignal sealed encrypt+decrypt pairs/s | ${bare.sealedPairs} |`);
    console.log(`| engine / bare libsignal, plain / sealed | ${(ratio * 100).toFixed(1)}% / ${(sealedRatio * 100).toFixed(1)}% |`);
    console.log(`| CPU per message end to end (both clients) / per bare sealed pair, µs | ${e2e.cpuUsPerMessage} / ${bare.sealedCpuUsPerPair} (${(cpuRatio * 100).toFixed(1)}%) |`);
    console.log(`| search p50 / p99 over ${HISTORY} messages, ms | ${search.p50} / ${search.p99} |`);
    console.log(`| \`parley receive\` start-up, ${HISTORY} messages / empty, ms | ${Math.round(median(withHistory))} / ${Math.round(median(empty))} |`);
    console.log(
      JSON.stringify({
        bench: 'client',
        messages: N,
        messagesPerSecond: e2e.messagesPerSecond,
        e2eLatencyP50Ms: e2e.latencyP50Ms,
        e2eLatencyP99Ms: e2e.latencyP99Ms,
        sendOnlyPerSecond: e2e.sendOnlyPerSecond,
        drainPerSecond: e2e.drainPerSecond,
        libsignalPairsPerSecond: pairsPerSecond,
        libsignalSealedPairsPerSecond: bare.sealedPairs,
        plaintextBytes,
        ratio: round(ratio, 3),
        sealedRatio: round(sealedRatio, 3),
        cpuUsPerMessage: e2e.cpuUsPerMessage,
        libsignalSealedCpuUsPerPair: bare.sealedCpuUsPerPair,
        cpuRatio: round(cpuRatio, 3),
        historyMessages: HISTORY,
        historyInsertPerSecond: fill.insertPerSecond,
        dbMiB: round(dbMiB, 1),
        searchP50Ms: search.p50,
        searchP99Ms: search.p99,
        searchMaxMs: search.max,
        startup: useCli ? 'cli' : 'engine',
        startupMs: Math.round(median(withHistory)),
        startupEmptyMs: Math.round(median(empty)),
      }),
    );
  } finally {
    await relay.stop();
    rmSync(parent, { recursive: true, force: true });
  }
}

await main();
