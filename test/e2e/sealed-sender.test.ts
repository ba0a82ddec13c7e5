// SPDX-License-Identifier: AGPL-3.0-only
/**
 * Sealed sender and multi-recipient sends through a real `parley-relay` process with real
 * libsignal payloads: a sender that never opens its own device socket distributes its sender key
 * in sealed 1:1 messages over the unidentified socket, then uploads one group message for three
 * accounts with up to three devices each. Every device gets its part and opens it; a wrong device
 * set, a wrong combined key and a retry behave as the protocol says; the relay's database holds
 * the shared body once and nothing that names the sender, its logs neither; and an upload
 * acknowledged right before a SIGKILL is delivered after the restart.
 */
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { combineAccessKeys, joinMultiRecipientPart, parseMultiRecipientMessage } from '@parley/crypto';
import { aciFromBytes, aciToBytes, type Aci, type Envelope } from '@parley/protocol';
import { DeviceSocket } from '../support/device-socket.js';
import { startRelay, type RelayProcess } from '../support/relay-process.js';
import { registerAccessKey, sealedSendFrame, senderCertificateFor, sendMultiFrame, trustRootOf, unidentifiedUrl } from '../support/sealed-sender.js';
import { linkDevice, registerAccount, type TestDevice } from '../support/test-device.js';

interface Member {
  readonly devices: TestDevice[];
  readonly accessKey: Uint8Array;
}

const aciOf = (m: Member) => m.devices[0]!.aci;
const address = (d: TestDevice) => ({ aci: d.aci, deviceId: d.deviceId });

/** Bytes used by the pages of the relay's queue database (its WAL included, as a reader sees it). */
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

function sharedBodies(dataDir: string): number {
  const db = new Database(join(dataDir, 'relay.db'), { readonly: true });
  try {
    return db.prepare('SELECT count(*) FROM shared_body').pluck().get() as number;
  } finally {
    db.close();
  }
}

function storedEnvelopes(dataDir: string): number {
  const db = new Database(join(dataDir, 'relay.db'), { readonly: true });
  try {
    return db.prepare('SELECT count(*) FROM envelope').pluck().get() as number;
  } finally {
    db.close();
  }
}

describe('sealed sender and multi-recipient sends through a relay process', () => {
  let relay: RelayProcess;
  let alice: TestDevice;
  let members: Member[];
  let certificate: Uint8Array;
  let trustRoot: Uint8Array;
  let unidentified: DeviceSocket;
  let logMark = 0;
  let requestId = 0;
  const distributionId = randomUUID();
  const groupId = randomBytes(32);

  /** Opens a sealed part on `device` as a recipient does. */
  const open = (device: TestDevice, e: Envelope) =>
    device.cipher.sealedDecrypt(e.content, { trustRoots: [trustRoot], timestamp: Number(e.serverTimestamp), localAci: device.aci, localDeviceId: device.deviceId });

  /** Every device of every member, as the payload names them. */
  const everyDevice = (ms: readonly Member[]) => ms.flatMap((m) => m.devices.map(address));

  async function groupPayload(text: string, ms: readonly Member[] = members, recipients = everyDevice(ms)): Promise<Uint8Array> {
    return alice.cipher.groupEncryptMulti({ self: address(alice), distributionId, plaintext: new TextEncoder().encode(text), senderCertificate: certificate, recipients, groupId });
  }

  async function upload(payload: Uint8Array, key: Uint8Array, id: Uint8Array = randomBytes(16)) {
    const n = ++requestId;
    unidentified.send(sendMultiFrame(n, payload, { id, key }));
    return unidentified.multiAnswer(n);
  }

  before(async () => {
    relay = await startRelay({ args: ['--log-level', 'debug', '--registrations-per-hour', '10000'] });
    alice = await registerAccount(relay.url, 'sealedalice', 1);
    members = [];
    for (const [i, count] of [3, 2, 1].entries()) {
      const first = await registerAccount(relay.url, `sealedmember${i}`, 2);
      const devices = [first];
      for (let k = 1; k < count; k++) devices.push(await linkDevice(first, 2));
      members.push({ devices, accessKey: await registerAccessKey(first) });
    }
    certificate = await senderCertificateFor(alice);
    trustRoot = await trustRootOf(relay.url);
    unidentified = await DeviceSocket.connect(unidentifiedUrl(relay.wsUrl), {});

    // The sender key goes to every member device in sealed 1:1 messages (the first on each session
    // carries the PQXDH prekey part). From here on the sender only sends sealed: the relay's logs
    // must not name it.
    const skdm = await alice.cipher.createSenderKeyDistribution(address(alice), distributionId);
    const sessions = new Map<Member, Array<{ deviceId: number; registrationId: number }>>();
    for (const m of members) sessions.set(m, await alice.ensureSessions(aciOf(m)));
    logMark = relay.output().length;
    for (const m of members) {
      const messages = [];
      for (const d of sessions.get(m)!) messages.push({ ...d, content: await alice.cipher.sealedEncrypt({ aci: aciOf(m), deviceId: d.deviceId }, skdm, certificate) });
      const n = ++requestId;
      unidentified.send(sealedSendFrame(n, aciOf(m), messages, m.accessKey));
      const answer = await unidentified.answer(n);
      assert.ok(answer.result, JSON.stringify(answer.error));
    }
    for (const m of members) {
      for (const d of m.devices) {
        const s = await d.connect();
        const [e] = await s.waitForEnvelopes(1);
        assert.equal(e!.source.length, 0, 'a sealed 1:1 envelope has no source');
        const opened = await open(d, e!);
        assert.equal(opened.senderAci, alice.aci);
        await d.cipher.processSenderKeyDistribution({ aci: opened.senderAci, deviceId: opened.senderDeviceId }, opened.plaintext);
        s.ack(Number(e!.seq));
        await s.sync();
        await s.close();
      }
    }
  });

  after(async () => {
    await unidentified?.close();
    await relay?.stop();
  });

  it('delivers one upload to every device of 3 accounts, each its part byte for byte, and every device opens it', async () => {
    const payload = await groupPayload('hello, group');
    const parsed = parseMultiRecipientMessage(payload);
    const bodiesBefore = sharedBodies(relay.dataDir);
    const answer = await upload(payload, combineAccessKeys(members.map((m) => m.accessKey)));
    assert.ok(answer.result, JSON.stringify(answer.error));
    assert.deepEqual(
      answer.result.recipients.map((r) => [aciFromBytes(r.aci), r.devices.map((d) => d.deviceId)]).sort(),
      members.map((m) => [aciOf(m), m.devices.map((d) => d.deviceId)]).sort(),
    );
    assert.equal(sharedBodies(relay.dataDir), bodiesBefore + 1, 'the body is stored once');
    for (const m of members) {
      const part = parsed.recipients.find((r) => r.aci === aciOf(m))!;
      const expected = joinMultiRecipientPart(part.header, parsed.sharedBody);
      for (const d of m.devices) {
        const s = await d.connect();
        const [e] = await s.waitForEnvelopes(1);
        assert.deepEqual(Buffer.from(e!.content), Buffer.from(expected));
        assert.equal(e!.source.length, 0);
        const opened = await open(d, e!);
        assert.equal(opened.kind, 'senderkey');
        assert.equal(new TextDecoder().decode(opened.plaintext), 'hello, group');
        assert.equal(opened.senderAci, alice.aci);
        assert.deepEqual(Buffer.from(opened.groupId!), groupId);
        s.ack(Number(e!.seq));
        await s.sync();
        await s.close();
      }
    }
    assert.equal(sharedBodies(relay.dataDir), bodiesBefore, 'the body went with the last ack');
  });

  it('refuses an upload that misses one device with one error naming that recipient, and stores nothing', async () => {
    const big = members[0];
    const recipients = everyDevice(members).filter((a) => !(a.aci === aciOf(big!) && a.deviceId === big!.devices[2]!.deviceId));
    const envelopes = storedEnvelopes(relay.dataDir);
    const answer = await upload(await groupPayload('not for all', members, recipients), combineAccessKeys(members.map((m) => m.accessKey)));
    assert.equal(answer.error?.code, 'MISMATCHED_DEVICES');
    assert.deepEqual(
      answer.error.recipients.map((r) => [aciFromBytes(r.aci), r.missingDevices, r.extraDevices]),
      [[aciOf(big!), [big!.devices[2]!.deviceId], []]],
    );
    assert.equal(storedEnvelopes(relay.dataDir), envelopes);
  });

  it('answers a wrong combined access key with UNAUTHORIZED and stores nothing', async () => {
    const envelopes = storedEnvelopes(relay.dataDir);
    const bodies = sharedBodies(relay.dataDir);
    const payload = await groupPayload('wrong key');
    const answer = await upload(payload, combineAccessKeys(members.slice(0, 2).map((m) => m.accessKey)));
    assert.equal(answer.error?.code, 'UNAUTHORIZED');
    assert.equal(storedEnvelopes(relay.dataDir), envelopes);
    assert.equal(sharedBodies(relay.dataDir), bodies);
  });

  it('answers a repeated upload with the same sequence numbers and stores nothing twice', async () => {
    const payload = await groupPayload('once only');
    const key = combineAccessKeys(members.map((m) => m.accessKey));
    const id = randomBytes(16);
    const bodies = sharedBodies(relay.dataDir);
    const first = await upload(payload, key, id);
    const envelopes = storedEnvelopes(relay.dataDir);
    const second = await upload(payload, key, id);
    assert.equal(second.result?.duplicate, true);
    const seqs = (r: typeof first.result) => r!.recipients.map((x) => [aciFromBytes(x.aci), x.devices.map((d) => [d.deviceId, Number(d.seq)])]);
    assert.deepEqual(seqs(second.result), seqs(first.result));
    assert.equal(storedEnvelopes(relay.dataDir), envelopes);
    assert.equal(sharedBodies(relay.dataDir), bodies + 1);
    for (const m of members) {
      for (const d of m.devices) {
        const s = await d.connect();
        await s.drained();
        assert.equal(s.envelopes.length, 1, 'delivered once');
        assert.equal(new TextDecoder().decode((await open(d, s.envelopes[0]!)).plaintext), 'once only');
        s.ack(Number(s.envelopes[0]!.seq));
        await s.sync();
        await s.close();
      }
    }
  });

  it('stores a 100-account upload in at most twice the body plus a small entry per device', async () => {
    const many: Member[] = [];
    for (let i = 0; i < 100; i++) {
      const d = await registerAccount(relay.url, `sealedmany${i}`, 1);
      many.push({ devices: [d], accessKey: await registerAccessKey(d) });
    }
    for (const m of many) await alice.ensureSessions(aciOf(m));
    const payload = await alice.cipher.groupEncryptMulti({
      self: address(alice),
      distributionId,
      plaintext: randomBytes(16 * 1024),
      senderCertificate: certificate,
      recipients: everyDevice(many),
      groupId,
    });
    const body = parseMultiRecipientMessage(payload).sharedBody.length;
    const before = usedBytes(relay.dataDir);
    const answer = await upload(payload, combineAccessKeys(many.map((m) => m.accessKey)));
    assert.equal(answer.result?.recipients.length, 100);
    const grew = usedBytes(relay.dataDir) - before;
    const perDevice = (grew - body) / 100;
    // Copies for every device would take 100 × the body (1.6 MB); the entry per device is its
    // 50-byte header, its envelope and dedup rows and their index entries.
    assert.ok(grew <= 2 * body + 100 * 512, `stored ${grew} bytes for a ${body}-byte body: ${perDevice.toFixed(0)} per device`);
  });

  it('leaves nothing that names the sender in the relay\u2019s database or in its logs of the sends', async () => {
    const text = Buffer.from(alice.aci);
    const hex = Buffer.from(alice.aci.replace(/-/g, ''));
    const bytes = Buffer.from(aciToBytes(alice.aci as Aci));
    for (const file of ['relay.db', 'relay.db-wal']) {
      let content: Buffer;
      try {
        content = readFileSync(join(relay.dataDir, file));
      } catch {
        continue;
      }
      assert.equal(content.indexOf(text), -1, `${file} holds the sender's ACI`);
      assert.equal(content.indexOf(hex), -1, `${file} holds the sender's ACI in hex`);
      assert.equal(content.indexOf(bytes), -1, `${file} holds the sender's ACI bytes`);
    }
    const logs = relay.output().slice(logMark);
    assert.ok(logs.length > 0, 'the relay logged at debug level during the sends');
    assert.equal(logs.includes(alice.aci), false, 'the logs of the sends name the sender');
    assert.equal(logs.includes(alice.aci.replace(/-/g, '')), false);
  });

  it('delivers an upload acknowledged right before a SIGKILL after the restart', async () => {
    const payload = await groupPayload('survives a crash');
    const answer = await upload(payload, combineAccessKeys(members.map((m) => m.accessKey)));
    assert.ok(answer.result);
    await relay.kill();
    await unidentified.closed;
    relay = await startRelay({ dataDir: relay.dataDir });
    unidentified = await DeviceSocket.connect(unidentifiedUrl(relay.wsUrl), {});
    for (const m of members) {
      for (const d of m.devices) {
        const s = await DeviceSocket.connect(relay.wsUrl, d);
        const [e] = await s.waitForEnvelopes(1);
        assert.equal(new TextDecoder().decode((await open(d, e!)).plaintext), 'survives a crash');
        await s.close();
      }
    }
  });
});
