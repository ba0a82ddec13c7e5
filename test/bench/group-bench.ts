// SPDX-License-Identifier: AGPL-3.0-only
/**
 * Group benchmark (run by `npm run bench`, not by `npm test`): the SENDER side of one message to a
 * group of M members with D devices each (default 1,000 × 1), in this process, through
 * @parley/crypto on in-memory stores (the relay's side, splitting the upload and fanning it out,
 * is the relay's fan-out benchmark).
 *
 * 1. `groupEncryptMulti`: one sender-key encryption sealed for every recipient device in one
 *    sealed sender v2 payload. CPU time (median of the runs) and the bytes uploaded.
 * 2. For scale, what the same message costs pairwise: one 1:1 encryption per device (CPU) and the
 *    sum of their ciphertexts (what a Send per member would upload).
 * 3. The one-time cost of a new sender key (the first message, or after a member left): the
 *    distribution message encrypted pairwise for every device.
 * 4. A recipient's cost: cutting its part out of the upload (what the relay does) and opening it.
 *
 * Prints the figures and ends with one JSON line `{"bench":"group",...}`.
 *
 *   node test/dist/bench/group-bench.js [--members 1000] [--devices 1] [--runs 5] [--bytes 160]
 */
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import {
  createServerCertificate,
  generateTrustRoot,
  issueSenderCertificate,
  joinMultiRecipientPart,
  parseMultiRecipientMessage,
  randomBytes,
} from '@parley/crypto';
import { createTestDevice, type TestDevice } from '@parley/crypto/testing'; // eslint-disable-line no-restricted-imports -- ./testing is @parley/crypto's declared test entry (CONVENTIONS 2)

const { values: args } = parseArgs({
  options: {
    members: { type: 'string', default: '1000' },
    devices: { type: 'string', default: '1' },
    runs: { type: 'string', default: '5' },
    bytes: { type: 'string', default: '160' },
  },
  // `npm run bench -- …` hands every benchmark the same flags; ignore those meant for others.
  strict: false,
});
const MEMBERS = Number(args.members);
const DEVICES = Number(args.devices);
const RUNS = Number(args.runs);
const BYTES = Number(args.bytes);

/** CPU milliseconds (user + system) that `fn` took in this process. */
async function cpuMs<T>(fn: () => Promise<T>): Promise<{ value: T; cpu: number; wall: number }> {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const value = await fn();
  const c = process.cpuUsage(c0);
  return { value, cpu: (c.user + c.system) / 1000, wall: performance.now() - t0 };
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const round = (n: number, digits = 1): number => Number(n.toFixed(digits));

async function main(): Promise<void> {
  const sender = await createTestDevice({ oneTimePreKeys: 1 });
  const recipients: TestDevice[] = [];
  for (let m = 0; m < MEMBERS; m++) {
    const first = await createTestDevice({ oneTimePreKeys: 1 });
    recipients.push(first);
    for (let d = 2; d <= DEVICES; d++) {
      recipients.push(await createTestDevice({ aci: first.address.aci, deviceId: d, identityKeyPair: first.identity.identityKeyPair, oneTimePreKeys: 1 }));
    }
  }
  const setup = await cpuMs(async () => {
    for (const r of recipients) await sender.cipher.processBundle(r.address, r.bundle());
  });

  const root = generateTrustRoot();
  const server = createServerCertificate(1, root.privateKey);
  const certificate = issueSenderCertificate({
    senderAci: sender.address.aci,
    senderDeviceId: sender.address.deviceId,
    senderIdentityKey: sender.identity.identityKey,
    expiresAt: Date.now() + 3_600_000,
    serverCertificate: server.certificate,
    serverPrivateKey: server.privateKey,
  });
  const distributionId = randomUUID();
  const groupId = randomBytes(32);
  const addresses = recipients.map((r) => r.address);

  // 3. A new sender key, handed to every device pairwise.
  const skdm = await sender.cipher.createSenderKeyDistribution(sender.address, distributionId);
  const distribution = await cpuMs(async () => {
    const out: Array<{ type: 'prekey' | 'ciphertext'; body: Uint8Array }> = [];
    for (const a of addresses) out.push(await sender.cipher.encrypt(a, skdm));
    return out;
  });
  // Every device takes the key and answers once, so the sessions are established both ways (a
  // pairwise message is then a plain ratchet message, not a session start).
  for (const [i, r] of recipients.entries()) {
    const m = distribution.value[i]!;
    const got = await r.cipher.decrypt(sender.address, m.type, m.body);
    await r.cipher.processSenderKeyDistribution(sender.address, got);
    const reply = await r.cipher.encrypt(sender.address, randomBytes(16));
    await sender.cipher.decrypt(r.address, reply.type, reply.body);
  }
  const newKeyBytes = distribution.value.reduce((n, m) => n + m.body.length, 0);

  // 1. One upload for everyone.
  const plaintext = randomBytes(BYTES);
  const multi: number[] = [];
  let payload: Uint8Array = new Uint8Array();
  for (let i = 0; i < RUNS; i++) {
    const r = await cpuMs(() => sender.cipher.groupEncryptMulti({ self: sender.address, distributionId, plaintext, senderCertificate: certificate, recipients: addresses, groupId }));
    multi.push(r.cpu);
    payload = r.value;
  }

  // 2. The same message pairwise.
  const pairwise = await cpuMs(async () => {
    let bytes = 0;
    for (const a of addresses) bytes += (await sender.cipher.encrypt(a, plaintext)).body.length;
    return bytes;
  });

  // 4. One recipient: its part of the upload, then opened.
  const target = recipients[0]!;
  const parsed = parseMultiRecipientMessage(payload);
  const opened = await cpuMs(async () => {
    const entry = parsed.recipients.find((r) => r.aci === target.address.aci)!;
    const part = joinMultiRecipientPart(entry.header, parsed.sharedBody);
    return target.cipher.sealedDecrypt(part, { trustRoots: [root.publicKey], timestamp: Date.now(), localAci: target.address.aci, localDeviceId: target.address.deviceId });
  });
  if (opened.value.kind !== 'senderkey' || opened.value.plaintext.length !== BYTES) throw new Error('the recipient did not open the group message');

  const devices = recipients.length;
  const multiCpu = median(multi);
  const summary = {
    bench: 'group',
    members: MEMBERS,
    devices,
    plaintextBytes: BYTES,
    multiCpuMs: round(multiCpu),
    multiCpuUsPerDevice: round((multiCpu * 1000) / devices),
    uploadBytes: payload.length,
    uploadBytesPerDevice: round(payload.length / devices),
    pairwiseCpuMs: round(pairwise.cpu),
    pairwiseBytes: pairwise.value,
    newKeyCpuMs: round(distribution.cpu),
    newKeyBytes,
    recipientOpenMs: round(opened.cpu, 2),
    sessionSetupMs: round(setup.wall),
  };
  console.log(`group message to ${MEMBERS} members × ${DEVICES} device(s) = ${devices} devices, ${BYTES}-byte plaintext`);
  console.log(`  one upload (groupEncryptMulti)   ${summary.multiCpuMs} ms CPU (${summary.multiCpuUsPerDevice} µs/device), ${payload.length} bytes (${summary.uploadBytesPerDevice} B/device)`);
  console.log(`  pairwise for comparison          ${summary.pairwiseCpuMs} ms CPU, ${pairwise.value} bytes`);
  console.log(`  new sender key, pairwise         ${summary.newKeyCpuMs} ms CPU, ${newKeyBytes} bytes (first message, and after a member leaves)`);
  console.log(`  a recipient opens its part       ${summary.recipientOpenMs} ms CPU`);
  console.log(`  (setup: ${devices} sessions in ${summary.sessionSetupMs} ms)`);
  console.log(JSON.stringify(summary));
}

await main();
