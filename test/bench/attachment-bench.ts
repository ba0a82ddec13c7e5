// SPDX-License-Identifier: AGPL-3.0-only
/**
 * Attachment benchmark (run by `npm run bench`, not by `npm test`), against a relay process with
 * the filesystem blob store:
 *
 * 1. Upload MiB/s through the client engine: `sendFile` of an N MiB file (default 100), which
 *    reads, pads, encrypts (AES-256-CBC + HMAC-SHA256 + SHA-256) and PUTs it through the relay
 *    into its store (temp file, fsync, link), then sends the message.
 * 2. Download MiB/s through the engine: `downloadAttachment` of that file: GET into a partial
 *    file, then decrypt and check into the destination.
 * 3. A plain copy of the same file (read stream into write stream) on the same disk, for scale.
 * 4. The relay's resident memory while C clients (default 100) upload M MiB each (default 4) at
 *    once, sampled from /proc every 20 ms; and their aggregate upload rate. The clients are
 *    plain HTTP uploads of random bytes into real slots (the relay cannot tell them from
 *    ciphertext), so the figure is the relay's, not this process's encryption.
 *
 * Prints the figures and ends with one JSON line `{"bench":"attachment",...}`.
 *
 *   node test/dist/bench/attachment-bench.js [--mib 100] [--clients 100] [--client-mib 4]
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { parseArgs } from 'node:util';
import { openParleyClient, type ParleyClientApi } from '@parley/client';
import type { AttachmentSlotResponse } from '@parley/protocol';
import { startRelay, type RelayProcess } from '../support/relay-process.js';
import { registerAccount, type TestDevice } from '../support/test-device.js';

const { values: args } = parseArgs({
  options: {
    mib: { type: 'string', default: '100' },
    clients: { type: 'string', default: '100' },
    'client-mib': { type: 'string', default: '4' },
  },
  // `npm run bench -- …` hands every benchmark the same flags; ignore those meant for others.
  strict: false,
});
const MIB = 1024 * 1024;
const FILE_MIB = Number(args.mib);
const CLIENTS = Number(args.clients);
const CLIENT_MIB = Number(args['client-mib']);

const rate = (bytes: number, ms: number): number => bytes / MIB / (ms / 1000);
const fmt = (n: number, digits = 1): string => n.toFixed(digits);

/** The resident set of a process, bytes (Linux /proc). */
function rssOf(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : 0;
}

/** `bytes` random-looking bytes as a stream of 64 KiB chunks, without holding them. */
function randomStream(bytes: number): Readable {
  const block = randomBytes(64 * 1024);
  let left = bytes;
  return new Readable({
    read() {
      if (left === 0) return void this.push(null);
      const n = Math.min(left, block.length);
      left -= n;
      this.push(block.subarray(0, n));
    },
  });
}

async function open(dir: string): Promise<ParleyClientApi> {
  return openParleyClient({ profileDir: dir });
}

async function main(): Promise<void> {
  const work = mkdtempSync(join(tmpdir(), 'parley-attach-bench-'));
  let relay: RelayProcess | undefined;
  const clients: ParleyClientApi[] = [];
  try {
    relay = await startRelay({
      args: ['--registrations-per-hour', '100000', '--max-attachment-bytes', String(Math.max(FILE_MIB, CLIENT_MIB) * MIB + MIB)],
    });
    const alice = await open(join(work, 'alice'));
    const bob = await open(join(work, 'bob'));
    clients.push(alice, bob);
    await alice.register(relay.url, 'alice');
    await bob.register(relay.url, 'bob');
    await bob.receive(); // settles bob's sessions so the timings below are the file's

    const size = FILE_MIB * MIB;
    const source = join(work, 'file.bin');
    await pipeline(randomStream(size), createWriteStream(source));
    const sourceHash = createHash('sha256').update(readFileSync(source)).digest('hex');

    // 1. Upload through the engine.
    let t = performance.now();
    const sent = await alice.sendFile('bob', source);
    const uploadMs = performance.now() - t;

    // 2. Download through the engine.
    await bob.receive();
    const out = join(work, 'downloaded.bin');
    t = performance.now();
    await bob.downloadAttachment(sent.id, { out });
    const downloadMs = performance.now() - t;
    const same = createHash('sha256').update(readFileSync(out)).digest('hex') === sourceHash;
    rmSync(out);

    // 3. A plain copy of the same file.
    t = performance.now();
    await pipeline(createReadStream(source), createWriteStream(join(work, 'copy.bin')));
    const copyMs = performance.now() - t;
    rmSync(join(work, 'copy.bin'));
    rmSync(source);

    // 4. Relay memory while many clients upload at once.
    const devices: TestDevice[] = [];
    for (let i = 0; i < CLIENTS; i += 20) {
      devices.push(...(await Promise.all(Array.from({ length: Math.min(20, CLIENTS - i) }, (_, j) => registerAccount(relay!.url, `up${i + j}`, 0)))));
    }
    const pid = relay.child.pid!;
    const idleRss = rssOf(pid);
    let peakRss = idleRss;
    const sampler = setInterval(() => (peakRss = Math.max(peakRss, rssOf(pid))), 20);
    const each = CLIENT_MIB * MIB;
    t = performance.now();
    await Promise.all(
      devices.map(async (d) => {
        const slot = await d.call<AttachmentSlotResponse>('POST', '/v1/attachments', { size: each });
        if (slot.status !== 200) throw new Error(`slot refused: ${slot.status} ${JSON.stringify(slot.body)}`);
        const res = await fetch(new URL(slot.body.uploadUrl, relay!.url), {
          method: 'PUT',
          headers: { ...slot.body.headers, 'content-type': 'application/octet-stream', 'content-length': String(each) },
          body: randomStream(each) as unknown as RequestInit['body'],
          duplex: 'half',
        } as RequestInit);
        if (res.status !== 201) throw new Error(`upload refused: ${res.status}`);
        await res.arrayBuffer();
      }),
    );
    const concurrentMs = performance.now() - t;
    clearInterval(sampler);
    peakRss = Math.max(peakRss, rssOf(pid));

    const figures = {
      bench: 'attachment',
      fileMiB: FILE_MIB,
      uploadMiBps: Number(fmt(rate(size, uploadMs))),
      downloadMiBps: Number(fmt(rate(size, downloadMs))),
      plainCopyMiBps: Number(fmt(rate(size, copyMs))),
      downloadIntact: same,
      concurrentClients: CLIENTS,
      concurrentMiBEach: CLIENT_MIB,
      concurrentUploadMiBps: Number(fmt(rate(CLIENTS * each, concurrentMs))),
      relayIdleRssMiB: Number(fmt(idleRss / MIB)),
      relayPeakRssMiB: Number(fmt(peakRss / MIB)),
    };
    console.log(`attachment bench: one ${FILE_MIB} MiB file through the engine, relay with the filesystem store`);
    console.log(`  upload (read, pad, encrypt, PUT, store, send)   ${fmt(figures.uploadMiBps)} MiB/s  (${fmt(uploadMs / 1000, 2)} s)`);
    console.log(`  download (GET, store, decrypt, check, write)    ${fmt(figures.downloadMiBps)} MiB/s  (${fmt(downloadMs / 1000, 2)} s)${same ? '' : '  BYTES DIFFER'}`);
    console.log(`  plain copy of the same file                      ${fmt(figures.plainCopyMiBps)} MiB/s  (${fmt(copyMs / 1000, 2)} s)`);
    console.log(`  ${CLIENTS} clients uploading ${CLIENT_MIB} MiB each at once: ${fmt(figures.concurrentUploadMiBps)} MiB/s together`);
    console.log(`  relay RSS: ${fmt(figures.relayIdleRssMiB)} MiB before, ${fmt(figures.relayPeakRssMiB)} MiB at the peak`);
    console.log(JSON.stringify(figures));
    if (!same) process.exitCode = 1;
  } finally {
    for (const c of clients) await c.close().catch(() => undefined);
    await relay?.stop();
    rmSync(work, { recursive: true, force: true });
  }
}

await main();
