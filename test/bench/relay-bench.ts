// SPDX-License-Identifier: AGPL-3.0-only
/**
 * Relay benchmark (DESIGN §5; issue "the spine", item 8): C device pairs on loopback send
 * 256-byte ciphertext envelopes through one relay process, clients in a separate process.
 * Prints delivered envelopes/s at saturation, p50/p99 end-to-end latency at a paced 10,000
 * envelopes/s, relay RSS per idle authenticated connection, and the time to drain 10,000 queued
 * envelopes to a reconnecting device; ends with one JSON line of the figures.
 *
 * Usage: node test/dist/bench/relay-bench.js [--pairs 100,1000] [--seconds 5] [--sqlite-sync full|normal]
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { startRelay, type RelayProcess } from '../support/relay-process.js';
import { registerCheapMembers } from '../support/cheap-members.js';
import type { BenchDevice, LoadJob } from './load-client.js';

const LOAD_CLIENT = fileURLToPath(new URL('./load-client.js', import.meta.url));

function rssKiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)![1]);
}

async function registerMany(relay: RelayProcess, n: number, prefix: string): Promise<BenchDevice[]> {
  // One identity for every bench account: key generation is not what is measured.
  const { members } = await registerCheapMembers(relay.url, n, `${prefix}bench`, { accessKeys: false });
  return members.map((m) => ({ aci: m.aci, deviceId: m.deviceId, secret: Buffer.from(m.secret).toString('hex'), registrationId: m.registrationId }));
}

/** Runs the load client with `job`; `onLine` sees every stdout line before the result. */
async function runLoad(job: LoadJob, onFirstLine?: (line: string, finish: () => void) => void): Promise<Record<string, number>> {
  const child = spawn(process.execPath, [LOAD_CLIENT], { stdio: ['pipe', 'pipe', 'inherit'] });
  child.stdin.write(JSON.stringify(job) + '\n');
  let out = '';
  let firstSeen = false;
  child.stdout.setEncoding('utf8').on('data', (d: string) => {
    out += d;
    if (!firstSeen && onFirstLine && out.includes('\n')) {
      firstSeen = true;
      onFirstLine(out.split('\n')[0]!, () => child.stdin.end());
    }
  });
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  if (code !== 0) throw new Error(`load client exited with ${code}`);
  const lines = out.trim().split('\n');
  return JSON.parse(lines[lines.length - 1]!) as Record<string, number>;
}

async function measure(pairs: number, seconds: number, sync: string) {
  // Capacity is measured, not the per-account limits a public relay sets for people.
  const relay = await startRelay({
    args: ['--sqlite-sync', sync, '--log-level', 'error', '--registrations-per-hour', '1000000', '--rate-limit-sends-per-minute', '0', '--rate-limit-device-sends-per-minute', '0', '--rate-limits', 'sendPerDestination=off'],
  });
  try {
    process.stderr.write(`[C=${pairs}] registering ${pairs * 2} accounts…\n`);
    const senders = await registerMany(relay, pairs, 's');
    const receivers = await registerMany(relay, pairs, 'r');
    const jobPairs = senders.map((sender, i) => ({ sender, receiver: receivers[i]! }));

    // Idle memory: relay RSS with every device connected and silent, against before.
    await new Promise((r) => setTimeout(r, 1000));
    const before = rssKiB(relay.child.pid!);
    let idleKiB = NaN;
    await runLoad({ wsUrl: relay.wsUrl, pairs: jobPairs, mode: 'idle' }, (_line, finish) => {
      setTimeout(() => {
        idleKiB = (rssKiB(relay.child.pid!) - before) / (pairs * 2);
        finish();
      }, 2000);
    });
    process.stderr.write(`[C=${pairs}] idle: ${idleKiB.toFixed(1)} KiB per connection\n`);

    process.stderr.write(`[C=${pairs}] saturating for ${seconds} s…\n`);
    const sat = await runLoad({ wsUrl: relay.wsUrl, pairs: jobPairs, mode: 'saturate', durationMs: seconds * 1000, outstanding: pairs >= 1000 ? 8 : 64 });
    process.stderr.write(`[C=${pairs}] saturation: ${Math.round(sat.envelopes_per_s!)} envelopes/s\n`);

    process.stderr.write(`[C=${pairs}] paced at 10,000 envelopes/s for ${seconds} s…\n`);
    const paced = await runLoad({ wsUrl: relay.wsUrl, pairs: jobPairs, mode: 'paced', durationMs: seconds * 1000, ratePerS: 10_000 });
    process.stderr.write(`[C=${pairs}] latency at ${Math.round(paced.sent_per_s!)}/s: p50 ${paced.p50_ms!.toFixed(2)} ms, p99 ${paced.p99_ms!.toFixed(2)} ms\n`);

    process.stderr.write(`[C=${pairs}] queueing 10,000 envelopes for an offline device…\n`);
    await runLoad({ wsUrl: relay.wsUrl, pairs: jobPairs, mode: 'drain-fill', count: 10_000 });
    const drain = await runLoad({ wsUrl: relay.wsUrl, pairs: jobPairs, mode: 'drain-read', count: 10_000 });
    process.stderr.write(`[C=${pairs}] drained 10,000 in ${drain.drain_ms!.toFixed(0)} ms\n`);
    return {
      pairs,
      envelopes_per_s: Math.round(sat.envelopes_per_s!),
      p50_ms: Number(paced.p50_ms!.toFixed(2)),
      p99_ms: Number(paced.p99_ms!.toFixed(2)),
      idle_conn_kib: Number(idleKiB.toFixed(1)),
      drain_10k_ms: Math.round(drain.drain_ms!),
      refused: (sat.refused ?? 0) + (paced.refused ?? 0),
    };
  } finally {
    await relay.stop();
  }
}

async function main() {
  const { values } = parseArgs({
    options: { pairs: { type: 'string', default: '100,1000' }, seconds: { type: 'string', default: '5' }, 'sqlite-sync': { type: 'string', default: 'full' } },
  });
  const results = [];
  for (const c of values.pairs.split(',').map(Number)) results.push(await measure(c, Number(values.seconds), values['sqlite-sync']));
  console.log('\n| pairs | envelopes/s (saturation) | p50 ms @10k/s | p99 ms @10k/s | idle KiB/conn | drain 10k ms |');
  console.log('| --- | --- | --- | --- | --- | --- |');
  for (const r of results) console.log(`| ${r.pairs} | ${r.envelopes_per_s} | ${r.p50_ms} | ${r.p99_ms} | ${r.idle_conn_kib} | ${r.drain_10k_ms} |`);
  for (const r of results.slice(0, -1)) console.log(JSON.stringify({ bench: 'relay', ...r }));
  // The last line is the summary: the largest C.
  console.log(JSON.stringify({ bench: 'relay', ...results[results.length - 1]! }));
}

await main();
