// SPDX-License-Identifier: AGPL-3.0-only
/**
 * A 1,000-member group from nothing to its first message (run by `npm run bench`, not by
 * `npm test`): the client engine (a real SQLCipher profile) and one relay process with the relay's
 * default send, claim and lookup limits — only registrations are lifted, to make the members.
 *
 * 1. `createGroup` with 999 others: a directory lookup and a session (bundle claim) for every
 *    member, and a group update to each, pairwise.
 * 2. The first message: this device's sender key to every member, pairwise, then one sealed
 *    multi-recipient upload. The clock runs until the message is `sent` (the relay committed it
 *    for every member device).
 *
 * Wall and CPU time of each, and how many sends the relay refused for its rate limits on the way
 * (they are retried at the time the relay names). Members are cheap accounts that never connect
 * (test/support/cheap-members.ts). Ends with one JSON line `{"bench":"group-start",…}`.
 *
 *   node test/dist/bench/group-start-bench.js [--members 1000]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { openParleyClient } from '@parley/client';
import { registerCheapMembers } from '../support/cheap-members.js';
import { startRelay } from '../support/relay-process.js';

const { values: args } = parseArgs({
  options: { members: { type: 'string', default: '1000' } },
  // `npm run bench -- …` hands every benchmark the same flags; ignore those meant for others.
  strict: false,
});
/** Members including the sender. */
const MEMBERS = Number(args.members);

const log = (line: string) => process.stderr.write(`${line}\n`);

/** Wall and CPU time of `fn`, ms. */
async function timed<T>(fn: () => Promise<T>): Promise<{ value: T; wallMs: number; cpuMs: number }> {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const value = await fn();
  const c = process.cpuUsage(c0);
  return { value, wallMs: Math.round(performance.now() - t0), cpuMs: Math.round((c.user + c.system) / 1000) };
}

/** The relay's count of RATE_LIMITED answers so far, over every limiter. */
async function rateLimited(url: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  let n = 0;
  for (const m of text.matchAll(/^parley_relay_rate_limited_total\{[^}]*\} (\S+)$/gm)) n += Number(m[1]);
  return n;
}

async function main(): Promise<void> {
  const relay = await startRelay({ args: ['--log-level', 'error', '--registrations-per-hour', '1000000'] });
  const dir = mkdtempSync(join(tmpdir(), 'parley-group-start-'));
  const alice = await openParleyClient({ profileDir: join(dir, 'alice') });
  try {
    log(`[group-start] registering ${MEMBERS - 1} members…`);
    const { members } = await registerCheapMembers(relay.url, MEMBERS - 1, 'member');
    await alice.register(relay.url, 'alice');

    log(`[group-start] creating a group of ${MEMBERS} (lookups, sessions, an update to each)…`);
    const limitedBefore = await rateLimited(relay.url);
    const created = await timed(() => alice.createGroup('everyone', members.map((m) => m.username)));
    const group = `#${created.value.id}`;
    if (created.value.members.length !== MEMBERS) throw new Error(`the group has ${created.value.members.length} members`);

    log('[group-start] the first message (sender key to every member, then one upload)…');
    const limitedBetween = await rateLimited(relay.url);
    const first = await timed(async () => {
      let m = await alice.send(group, 'hello, everyone');
      // Sends the relay refused for a rate limit wait for the time it named; receive() retries them.
      for (let i = 0; m.status !== 'sent' && i < 600; i++) {
        await new Promise((r) => setTimeout(r, 100));
        await alice.receive();
        m = alice.history(group, { limit: 1 })[0]!;
      }
      if (m.status !== 'sent') throw new Error(`the first message is still ${m.status}`);
      return m;
    });
    const limitedAfter = await rateLimited(relay.url);

    log(`[group-start] createGroup: ${created.wallMs} ms (${created.cpuMs} ms CPU); first message sent after ${first.wallMs} ms (${first.cpuMs} ms CPU)`);
    console.log('');
    console.log('| figure | value |');
    console.log('| --- | --- |');
    console.log(`| \`createGroup\` with ${MEMBERS - 1} others (lookups, sessions, updates), s | ${(created.wallMs / 1000).toFixed(1)} (CPU ${(created.cpuMs / 1000).toFixed(1)}) |`);
    console.log(`| first message to ${MEMBERS} members, sender key included, until sent, s | ${(first.wallMs / 1000).toFixed(1)} (CPU ${(first.cpuMs / 1000).toFixed(1)}) |`);
    console.log(`| sends refused by the relay's rate limits on the way | ${limitedAfter - limitedBefore} |`);
    console.log(
      JSON.stringify({
        bench: 'group-start',
        members: MEMBERS,
        createMs: created.wallMs,
        createCpuMs: created.cpuMs,
        firstMessageMs: first.wallMs,
        firstMessageCpuMs: first.cpuMs,
        rateLimitedCreate: limitedBetween - limitedBefore,
        rateLimitedFirstMessage: limitedAfter - limitedBetween,
      }),
    );
  } finally {
    await alice.close();
    await relay.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
