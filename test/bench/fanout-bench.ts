// SPDX-License-Identifier: AGPL-3.0-only
/**
 * Relay fan-out benchmark (run by `npm run bench`, not by `npm test`): one group message to
 * 1,000 member accounts with one device each (the defaults), uploaded once as a sealed sender v2
 * payload over the unidentified socket of a real `parley-relay` process on loopback.
 *
 * Set up beforehand (not measured): the accounts and their access keys, the sender's sessions
 * with every member device (from the registered public keys) and its sender key. Then, per run,
 * the sender encrypts a new group message (`groupEncryptMulti`, CPU time measured) and uploads it;
 * the relay parses it, checks the combined access key and every device set, commits one
 * envelope per device with the body stored once, and answers SendMultiResult.
 *
 * Prints: the fan-out time from sending the frame to receiving SendMultiResult (median, best and
 * worst of the runs after the first, and the first apart: it creates the device queues and loads
 * the device lists; loopback and the frame's encoding included, so an upper bound of the relay's
 * own time), the relay's CPU time and commit time per upload, the bytes uploaded, and the bytes the relay's database grew by for one upload (its pages
 * in use, WAL included) against the body's size; ends with one JSON line `{"bench":"fanout",...}`.
 *
 *   node test/dist/bench/fanout-bench.js [--members 1000] [--runs 6] [--bytes 160]
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import Database from 'better-sqlite3';
import {
  combineAccessKeys,
  createMemoryStores,
  parseMultiRecipientMessage,
  randomBytes,
  SessionCipher,
} from '@parley/crypto';
import { DeviceSocket } from '../support/device-socket.js';
import { startRelay, type RelayProcess } from '../support/relay-process.js';
import { senderCertificateFor, sendMultiFrame, unidentifiedUrl } from '../support/sealed-sender.js';
import { registerCheapMembers } from '../support/cheap-members.js';
import { registerAccount } from '../support/test-device.js';

const { values: args } = parseArgs({
  options: {
    members: { type: 'string', default: '1000' },
    runs: { type: 'string', default: '6' },
    bytes: { type: 'string', default: '160' },
  },
  // `npm run bench -- …` hands every benchmark the same flags; ignore those meant for others.
  strict: false,
});
const MEMBERS = Number(args.members);
const RUNS = Number(args.runs);
const BYTES = Number(args.bytes);

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const fmt = (n: number, digits = 1): string => n.toFixed(digits);

/** CPU time the process has used so far (user + system), ms (Linux /proc; clock ticks of 10 ms). */
function cpuMsOf(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

/** The relay's total time in envelope commits so far (its commit histogram's sum), ms. */
async function commitMsOf(url: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const m = /^parley_relay_commit_duration_seconds_sum (\S+)$/m.exec(text);
  return m ? Number(m[1]) * 1000 : Number.NaN;
}

/** Pages of relay.db in use (WAL included, as a reader sees it), bytes. */
function usedBytes(dataDir: string): number {
  const db = new Database(join(dataDir, 'relay.db'), { readonly: true });
  try {
    const pages = db.pragma('page_count', { simple: true }) as number;
    const free = db.pragma('freelist_count', { simple: true }) as number;
    return (pages - free) * (db.pragma('page_size', { simple: true }) as number);
  } finally {
    db.close();
  }
}

async function main(): Promise<void> {
  let relay: RelayProcess | undefined;
  try {
    relay = await startRelay({ args: ['--registrations-per-hour', '1000000', '--max-multi-recipients', String(Math.max(1000, MEMBERS))] });
    const url = relay.url;

    // Every member shares one identity and one set of public keys: key generation is not measured.
    const t0 = performance.now();
    const cheap = await registerCheapMembers(url, MEMBERS, 'fanout');
    const members = cheap.members;
    const identity = { identityKey: cheap.identityKey };
    const spk = cheap.signedPreKey;
    const kyber = cheap.kyberPreKey;
    const sender = await registerAccount(url, 'fanoutsender', 1);
    const certificate = await senderCertificateFor(sender);
    // The sender's sessions, from the keys every member registered (what a bundle claim returns).
    const cipher = new SessionCipher(createMemoryStores(sender.identity), { localAddress: { aci: sender.aci, deviceId: 1 } });
    for (const m of members) {
      await cipher.processBundle(
        { aci: m.aci, deviceId: 1 },
        { registrationId: m.registrationId, deviceId: 1, identityKey: identity.identityKey, signedPreKey: spk, kyberPreKey: kyber },
      );
    }
    const self = { aci: sender.aci, deviceId: 1 };
    const distributionId = randomUUID();
    await cipher.createSenderKeyDistribution(self, distributionId);
    const recipients = members.map((m) => ({ aci: m.aci, deviceId: 1 }));
    const combined = combineAccessKeys(members.map((m) => m.accessKey));
    const setupS = (performance.now() - t0) / 1000;

    const socket = await DeviceSocket.connect(unidentifiedUrl(relay.wsUrl), {});
    const encryptMs: number[] = [];
    const encryptCpuMs: number[] = [];
    const fanoutMs: number[] = [];
    const relayCpuMs: number[] = [];
    const commitMs: number[] = [];
    const storedBytes: number[] = [];
    let payloadBytes = 0;
    let bodyBytes = 0;
    for (let run = 1; run <= RUNS; run++) {
      const cpu0 = process.cpuUsage();
      const e0 = performance.now();
      const payload = await cipher.groupEncryptMulti({ self, distributionId, plaintext: randomBytes(BYTES), senderCertificate: certificate, recipients, groupId: randomBytes(32) });
      encryptMs.push(performance.now() - e0);
      const cpu = process.cpuUsage(cpu0);
      encryptCpuMs.push((cpu.user + cpu.system) / 1000);
      payloadBytes = payload.length;
      bodyBytes = parseMultiRecipientMessage(payload).sharedBody.length;

      const before = usedBytes(relay.dataDir);
      const commit0 = await commitMsOf(url);
      const cpu0Relay = cpuMsOf(relay.child.pid!);
      const s0 = performance.now();
      socket.send(sendMultiFrame(run, payload, { key: combined }));
      const answer = await socket.multiAnswer(run, 60_000);
      fanoutMs.push(performance.now() - s0);
      relayCpuMs.push(cpuMsOf(relay.child.pid!) - cpu0Relay);
      commitMs.push((await commitMsOf(url)) - commit0);
      if (!answer.result || answer.result.recipients.length !== MEMBERS) {
        throw new Error(`upload ${run} refused: ${JSON.stringify(answer.error ?? answer.result?.fullRecipients.length)}`);
      }
      storedBytes.push(usedBytes(relay.dataDir) - before);
    }
    await socket.close();

    const stored = median(storedBytes);
    const perDevice = (stored - bodyBytes) / MEMBERS;
    const summary = {
      bench: 'fanout',
      members: MEMBERS,
      devicesPerMember: 1,
      runs: RUNS,
      plaintextBytes: BYTES,
      fanoutMsMedian: Number(fmt(median(fanoutMs.slice(1)))),
      firstFanoutMs: Number(fmt(fanoutMs[0]!)),
      fanoutMsMax: Number(fmt(Math.max(...fanoutMs.slice(1)))),
      fanoutMsMin: Number(fmt(Math.min(...fanoutMs.slice(1)))),
      relayCpuMsMedian: median(relayCpuMs.slice(1)),
      commitMsMedian: Number(fmt(median(commitMs.slice(1)))),
      uploadBytes: payloadBytes,
      bodyBytes,
      storedBytes: stored,
      storedPerDeviceBytes: Math.round(perDevice),
      storedWithinTarget: stored <= 2 * bodyBytes + MEMBERS * 512,
      senderEncryptMsMedian: Number(fmt(median(encryptMs))),
      senderEncryptCpuMsMedian: Number(fmt(median(encryptCpuMs))),
      setupSeconds: Number(fmt(setupS)),
    };
    console.log(`fan-out of one group message to ${MEMBERS} members × 1 device, ${RUNS} runs (setup ${fmt(setupS)} s)`);
    console.log(`  relay: frame sent → SendMultiResult  median ${fmt(summary.fanoutMsMedian)} ms, best ${fmt(summary.fanoutMsMin)} ms, worst ${fmt(summary.fanoutMsMax)} ms (target < 200 ms)`);
    console.log(`         the first upload to the group (queue rows created, device lists loaded) ${fmt(summary.firstFanoutMs)} ms`);
    console.log(`         of which the commit (one transaction, fsync) median ${fmt(summary.commitMsMedian)} ms; relay CPU per upload median ${summary.relayCpuMsMedian} ms`);
    console.log(`  upload: ${payloadBytes} bytes (shared body ${bodyBytes} bytes, ${fmt((payloadBytes - bodyBytes) / MEMBERS)} bytes per member)`);
    console.log(`  stored: ${stored} bytes for one upload = body + ${Math.round(perDevice)} bytes per device (target ≤ 2 × body + a small entry per device: ${summary.storedWithinTarget ? 'met' : 'NOT met'})`);
    console.log(`  sender: groupEncryptMulti median ${fmt(summary.senderEncryptMsMedian)} ms wall, ${fmt(summary.senderEncryptCpuMsMedian)} ms CPU`);
    console.log(JSON.stringify(summary));
  } finally {
    await relay?.stop();
  }
}

await main();
