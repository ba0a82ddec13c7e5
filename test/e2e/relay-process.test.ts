// SPDX-License-Identifier: AGPL-3.0-only
/**
 * The relay as an operator runs it: its binary, flags, health, keepalive, device limit and
 * removal, online-only envelopes, concurrent prekey claims, graceful shutdown, and a data
 * directory that never holds a plaintext.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import WebSocket from 'ws';
import { aciToBytes, EnvelopeType, formatBasicAuth, type Aci, type BundleResponse } from '@parley/protocol';
import { RELAY_BIN, startRelay, type RelayProcess } from '../support/relay-process.js';
import { readAllFiles } from '../support/state-snapshot.js';
import { http, linkDevice, registerAccount } from '../support/test-device.js';
import { DeviceSocket, UpgradeRefused } from '../support/device-socket.js';

describe('the parley-relay binary', () => {
  it('prints its options with --help and refuses an unknown flag with a hint', () => {
    const help = spawnSync(process.execPath, [RELAY_BIN, '--help'], { encoding: 'utf8' });
    assert.equal(help.status, 0);
    for (const flag of ['--host', '--port', '--data', '--domain', 'PARLEY_DATA']) assert.ok(help.stdout.includes(flag), flag);
    const bad = spawnSync(process.execPath, [RELAY_BIN, '--no-such-flag'], { encoding: 'utf8' });
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /--help/);
    const badPort = spawnSync(process.execPath, [RELAY_BIN, '--port', '99999'], { encoding: 'utf8' });
    assert.equal(badPort.status, 2);
    assert.match(badPort.stderr, /port/);
  });
});

describe('a running relay', () => {
  let relay: RelayProcess;
  before(async () => {
    relay = await startRelay({ args: ['--max-devices', '3', '--keepalive-ms', '200'] });
  });
  after(async () => {
    await relay.stop();
  });

  it('answers /healthz, /readyz and /v1/info', async () => {
    assert.deepEqual((await http(relay.url, 'GET', '/healthz')).body, { status: 'ok' });
    const info = (await http<{ senderCertificateTrustRoot: string }>(relay.url, 'GET', '/v1/info')).body;
    const trustRoot = JSON.parse(readFileSync(join(relay.dataDir, 'sealed-sender', 'trust-root.json'), 'utf8')) as { publicKey: string };
    assert.deepEqual(info, { domain: 'localhost', version: '0.1.0', senderCertificateTrustRoot: trustRoot.publicKey });
    assert.equal((await http(relay.url, 'GET', '/readyz')).status, 200);
  });

  it('drops a connection that stops answering pings', async () => {
    const dev = await registerAccount(relay.url, 'silent', 1);
    const ws = new WebSocket(relay.wsUrl, { headers: { authorization: dev.authorization }, autoPong: false });
    await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
    const t0 = Date.now();
    const code = await new Promise<number>((resolve) => ws.once('close', (c) => resolve(c)));
    assert.equal(code, 1006, 'terminated without a close handshake');
    assert.ok(Date.now() - t0 < 2000, 'within a few keepalive intervals');
  });

  it('keeps a connection that answers pings', async () => {
    const dev = await registerAccount(relay.url, 'chatty', 1);
    const s = await dev.connect();
    await new Promise((r) => setTimeout(r, 1000));
    await s.sync();
    await s.close();
  });

  it('enforces the operator\u2019s device limit, and a removed device can no longer connect', async () => {
    const d1 = await registerAccount(relay.url, 'many', 1);
    const d2 = await linkDevice(d1, 1);
    const d3 = await linkDevice(d1, 1);
    await assert.rejects(linkDevice(d1, 1), /409.*DEVICE_LIMIT/);
    const s3 = await d3.connect();
    const del = await d1.call('DELETE', `/v1/devices/${d3.deviceId}`);
    assert.equal(del.status, 204);
    const closed = await s3.closed;
    assert.equal(closed.code, 4403);
    await assert.rejects(d3.connect(), (e: unknown) => e instanceof UpgradeRefused && e.status === 401);
    const list = await d2.call<{ devices: Array<{ deviceId: number }> }>('GET', '/v1/devices');
    assert.deepEqual(list.body.devices.map((d) => d.deviceId), [1, 2]);
    // Sends to the account now need exactly devices 1 and 2.
    const sender = await registerAccount(relay.url, 'tomany', 1);
    const s = await sender.connect();
    const r = await sender.sendText(s, d1.aci, 'after removal');
    assert.equal(r.error, undefined);
    assert.deepEqual(r.result!.devices.map((d) => d.deviceId).sort(), [1, 2]);
    await s.close();
  });

  it('delivers online-only envelopes to connected devices and never queues them', async () => {
    const sender = await registerAccount(relay.url, 'typist', 1);
    const rcpt = await registerAccount(relay.url, 'watcher', 1);
    const s = await sender.connect();
    const typing = () => {
      const requestId = s.requestId();
      s.send({
        kind: {
          case: 'send',
          value: {
            requestId,
            destination: aciToBytes(rcpt.aci as Aci),
            messageId: randomBytes(16),
            timestamp: BigInt(Date.now()),
            online: true,
            messages: [{ deviceId: 1, registrationId: rcpt.identity.registrationId, type: EnvelopeType.CIPHERTEXT, content: randomBytes(20) }],
          },
        },
      });
      return s.answer(requestId);
    };
    const offline = await typing();
    assert.deepEqual(offline.result?.devices, [], 'nobody was connected');
    const r = await rcpt.connect();
    await r.drained();
    assert.equal(r.envelopes.length, 0, 'nothing was queued while offline');
    const online = await typing();
    assert.equal(online.result?.devices.length, 1);
    await r.waitForEnvelopes(1);
    assert.equal(r.envelopes[0]!.online, true);
    assert.equal(Number(r.envelopes[0]!.seq), 0);
    await r.close();
    await s.close();
  });

  it('never hands out one one-time prekey twice under 50 concurrent claims', async () => {
    const target = await registerAccount(relay.url, 'popular', 40);
    const claimers = await Promise.all(Array.from({ length: 5 }, (_, i) => registerAccount(relay.url, `claimer${i}`, 1)));
    const answers = await Promise.all(
      Array.from({ length: 50 }, (_, i) => claimers[i % 5]!.call<BundleResponse>('GET', `/v1/keys/${target.aci}/1`)),
    );
    // 50 claims stay far below the per-requester and per-target limits: every one is answered.
    assert.deepEqual(answers.map((a) => a.status), new Array(50).fill(200));
    const ec: number[] = [];
    const kyber: number[] = [];
    for (const a of answers) {
      const d = a.body.devices[0]!;
      if (d.preKey) ec.push(d.preKey.keyId);
      kyber.push(d.kyberPreKey.keyId);
    }
    // Exactly the 40 one-time keys of each kind are handed out, each once; the last 10 claims
    // get no EC key and the last-resort Kyber key (id 1).
    assert.equal(ec.length, 40, 'every one-time EC prekey is handed out, none lost');
    assert.equal(new Set(ec).size, ec.length, 'an EC one-time prekey was handed out twice');
    const oneTimeKyber = kyber.filter((id) => id !== 1);
    assert.equal(oneTimeKyber.length, 40, 'every one-time Kyber prekey is handed out, none lost');
    assert.equal(new Set(oneTimeKyber).size, oneTimeKyber.length, 'a Kyber one-time prekey was handed out twice');
    assert.equal(kyber.filter((id) => id === 1).length, 10, 'the last-resort key once the one-time keys are gone');
  });
});

describe('queue cap', () => {
  it('refuses sends to a full queue with QUEUE_FULL, queues nothing of them, and accepts again once acked', async () => {
    const relay = await startRelay({ args: ['--max-queue', '3'] });
    try {
      const alice = await registerAccount(relay.url, 'alice', 1);
      const bob = await registerAccount(relay.url, 'bob', 1);
      const s = await alice.connect();
      for (let i = 0; i < 3; i++) assert.equal((await alice.sendText(s, bob.aci, `m${i}`)).error, undefined);
      const full = await alice.sendText(s, bob.aci, 'one too many');
      assert.equal(full.error?.code, 'QUEUE_FULL');
      assert.deepEqual(full.error?.fullDevices, [1]);
      const b = await bob.connect();
      await b.waitForEnvelopes(3);
      await b.drained();
      assert.equal(b.envelopes.length, 3);
      b.ack(3);
      await b.sync();
      // The ack is committed in the next batch; the queue has room again after it.
      let again = await alice.sendText(s, bob.aci, 'room again');
      for (let i = 0; i < 20 && again.error?.code === 'QUEUE_FULL'; i++) {
        await new Promise((r) => setTimeout(r, 50));
        again = await alice.sendText(s, bob.aci, 'room again');
      }
      assert.equal(again.error, undefined);
      await b.waitForEnvelopes(4);
      await b.close();
      await s.close();
    } finally {
      await relay.stop();
    }
  });
});

describe('storage holds ciphertext only', () => {
  it('has no plaintext of any sent message anywhere in the data directory', async () => {
    const relay = await startRelay();
    try {
      const alice = await registerAccount(relay.url, 'alice', 2);
      const bob = await registerAccount(relay.url, 'bob', 2);
      const s = await alice.connect();
      const secrets = Array.from({ length: 30 }, (_, i) => `the eagle lands at dawn ${i} ${randomBytes(6).toString('hex')}`);
      for (const t of secrets) assert.equal((await alice.sendText(s, bob.aci, t)).error, undefined);
      await s.close();
      // Half delivered and acked, half still queued: both states are searched.
      const b = await bob.connect();
      await b.waitForEnvelopes(secrets.length);
      b.ack(15);
      await b.sync();
      await b.close();
      await relay.stop();
      const files = readAllFiles(relay.dataDir);
      assert.ok(files.length > 0);
      for (const { path, bytes } of files) {
        for (const t of secrets) {
          assert.equal(bytes.indexOf(Buffer.from(t)), -1, `${path} holds a plaintext`);
          assert.equal(bytes.indexOf(Buffer.from(t.split(' ').slice(-1)[0]!)), -1, `${path} holds part of a plaintext`);
        }
      }
    } finally {
      await relay.stop();
    }
  });
});

describe('graceful shutdown', () => {
  it('tells connected devices to reconnect (1012), loses nothing acknowledged, and exits 0', async () => {
    const relay = await startRelay();
    const alice = await registerAccount(relay.url, 'alice', 1);
    const bob = await registerAccount(relay.url, 'bob', 1);
    const s = await alice.connect();
    const answers = await Promise.all(Array.from({ length: 50 }, (_, i) => alice.sendText(s, bob.aci, `m${i}`)));
    assert.ok(answers.every((a) => a.result));
    const b = await DeviceSocket.connect(relay.wsUrl, { authorization: formatBasicAuth(bob.aci, 1, bob.secret) });
    await b.drained();
    const closing = b.closed;
    assert.equal(await relay.stop(), 0);
    assert.equal((await closing).code, 1012);
    const again = await startRelay({ dataDir: relay.dataDir });
    try {
      const b2 = await DeviceSocket.connect(again.wsUrl, bob);
      await b2.waitForEnvelopes(50);
      await b2.close();
    } finally {
      await again.stop();
    }
  });
});
