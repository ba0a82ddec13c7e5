// SPDX-License-Identifier: AGPL-3.0-only
/**
 * Delivery guarantees against a real relay process: nothing acknowledged is lost (also across
 * SIGKILL), nothing is delivered twice, unacknowledged envelopes come again, the window holds.
 * These tests use opaque bytes as ciphertext: the relay cannot tell the difference.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { aciToBytes, EnvelopeType, type Aci, type FrameInit } from '@parley/protocol';
import { startRelay, type RelayProcess } from '../support/relay-process.js';
import { registerAccount, type TestDevice } from '../support/test-device.js';
import { snapshotState } from '../support/state-snapshot.js';
import { DeviceSocket } from '../support/device-socket.js';

function sendFrame(requestId: number, to: TestDevice, messageId: Uint8Array, content: Uint8Array): FrameInit {
  return {
    kind: {
      case: 'send',
      value: {
        requestId,
        destination: aciToBytes(to.aci as Aci),
        messageId,
        timestamp: BigInt(Date.now()),
        messages: [{ deviceId: to.deviceId, registrationId: to.identity.registrationId, type: EnvelopeType.CIPHERTEXT, content }],
      },
    },
  };
}

async function sendOpaque(s: DeviceSocket, to: TestDevice, messageId = randomBytes(16), content: Uint8Array = randomBytes(64)) {
  const requestId = s.requestId();
  s.send(sendFrame(requestId, to, messageId, content));
  return s.answer(requestId);
}

describe('delivery guarantees', () => {
  let relay: RelayProcess;
  let sender: TestDevice;
  let n = 0;
  const fresh = async () => registerAccount(relay.url, `user${++n}`, 1);

  before(async () => {
    relay = await startRelay({ args: ['--window', '8'] });
    sender = await registerAccount(relay.url, 'sender', 1);
  });
  after(async () => {
    await relay.stop();
  });

  it('redelivers envelopes the recipient did not ack after it reconnects', async () => {
    const rcpt = await fresh();
    const s = await sender.connect();
    for (let i = 0; i < 3; i++) assert.ok((await sendOpaque(s, rcpt)).result);
    const first = await rcpt.connect();
    await first.waitForEnvelopes(3);
    first.ack(1); // only the first
    await first.sync();
    first.terminate(); // dropped without a close handshake
    await first.closed;
    const second = await rcpt.connect();
    await second.drained();
    // The ack of 1 may still be in the batch being committed; 2 and 3 must come again.
    const seqs = second.envelopes.map((e) => Number(e.seq));
    assert.ok(seqs.includes(2) && seqs.includes(3), `redelivered ${seqs}`);
    assert.deepEqual(seqs, [...seqs].sort((a, b) => a - b));
    await second.close();
    await s.close();
  });

  it('delivers once when the sender retries the same message id three times', async () => {
    const rcpt = await fresh();
    const s = await sender.connect();
    const id = randomBytes(16);
    const body = randomBytes(100);
    const answers = [];
    for (let i = 0; i < 3; i++) answers.push(await sendOpaque(s, rcpt, id, body));
    assert.equal(answers[0]!.result!.duplicate, false);
    assert.equal(answers[1]!.result!.duplicate, true);
    assert.equal(answers[2]!.result!.duplicate, true);
    const seq = answers[0]!.result!.devices[0]!.seq;
    for (const a of answers) assert.equal(a.result!.devices[0]!.seq, seq, 'a retry gets the original sequence number');
    const r = await rcpt.connect();
    await r.drained();
    assert.equal(r.envelopes.length, 1);
    // Still a duplicate after the envelope was delivered and acked.
    r.ack(Number(seq));
    await r.sync();
    await new Promise((res) => setTimeout(res, 100));
    const again = await sendOpaque(s, rcpt, id, body);
    assert.equal(again.result?.duplicate, true);
    await new Promise((res) => setTimeout(res, 200));
    assert.equal(r.envelopes.length, 1, 'no second delivery');
    await r.close();
    await s.close();
  });

  it('refuses the same message id with a different body (ID_REUSED) and queues nothing', async () => {
    const rcpt = await fresh();
    const s = await sender.connect();
    const id = randomBytes(16);
    assert.ok((await sendOpaque(s, rcpt, id, randomBytes(50))).result);
    const before = snapshotState(relay.dataDir);
    const reused = await sendOpaque(s, rcpt, id, randomBytes(50));
    assert.equal(reused.error?.code, 'ID_REUSED');
    assert.deepEqual(snapshotState(relay.dataDir), before);
    const r = await rcpt.connect();
    await r.drained();
    assert.equal(r.envelopes.length, 1);
    await r.close();
    await s.close();
  });

  it('stops at the window for a consumer that never acks, and delivers everything on reconnect', async () => {
    const rcpt = await fresh();
    const s = await sender.connect();
    for (let i = 0; i < 20; i++) assert.ok((await sendOpaque(s, rcpt)).result);
    const slow = await rcpt.connect();
    await slow.waitForEnvelopes(8);
    await new Promise((res) => setTimeout(res, 300));
    assert.equal(slow.envelopes.length, 8, 'no more than the window of 8 in flight');
    // Live envelopes wait behind the window too.
    assert.ok((await sendOpaque(s, rcpt)).result);
    await new Promise((res) => setTimeout(res, 200));
    assert.equal(slow.envelopes.length, 8);
    await slow.close();
    const next = await rcpt.connect();
    const got: number[] = [];
    while (got.length < 21) {
      await next.waitForEnvelopes(got.length + 1);
      const batch = next.envelopes.slice(got.length).map((e) => Number(e.seq));
      got.push(...batch);
      next.ack(got[got.length - 1]!);
    }
    assert.deepEqual(got, Array.from({ length: 21 }, (_, i) => i + 1));
    await next.close();
    await s.close();
  });

  it('closes the first connection of a device when a second one connects (CONNECTED_ELSEWHERE)', async () => {
    const rcpt = await fresh();
    const first = await rcpt.connect();
    const second = await rcpt.connect();
    const closed = await first.closed;
    assert.equal(closed.code, 4409);
    assert.equal(closed.reason, 'CONNECTED_ELSEWHERE');
    const s = await sender.connect();
    assert.ok((await sendOpaque(s, rcpt)).result);
    await second.waitForEnvelopes(1);
    await second.close();
    await s.close();
  });

  it('refuses an ack beyond what was delivered, or of another device\u2019s queue, and deletes nothing', async () => {
    const rcpt = await fresh();
    const other = await fresh();
    const s = await sender.connect();
    for (let i = 0; i < 3; i++) assert.ok((await sendOpaque(s, rcpt)).result);
    for (let i = 0; i < 5; i++) assert.ok((await sendOpaque(s, other)).result);
    const r = await rcpt.connect();
    await r.waitForEnvelopes(3);
    await r.drained();
    await new Promise((res) => setTimeout(res, 100));
    const before = snapshotState(relay.dataDir);
    const mark = r.frames.length;
    r.ack(5); // 4 and 5 exist only in the other device's queue
    const e1 = await r.connectionError(mark);
    assert.equal(e1.code, 'BAD_ACK');
    const mark2 = r.frames.length;
    r.ack(0, [2, 4]);
    assert.equal((await r.connectionError(mark2)).code, 'BAD_ACK');
    await r.sync();
    await new Promise((res) => setTimeout(res, 100));
    assert.deepEqual(snapshotState(relay.dataDir), before, 'nothing was deleted');
    // The connection stays up and a valid ack still works.
    r.ack(3);
    await r.sync();
    await r.close();
    const o = await other.connect();
    await o.waitForEnvelopes(5);
    await o.close();
    await s.close();
  });
});

describe('crash safety', () => {
  it('delivers every acknowledged send exactly once after the relay is SIGKILLed and restarted', async () => {
    // 200 sends to one recipient in one burst: past the per-destination limit, which is not what
    // is tested here.
    let relay = await startRelay({ args: ['--rate-limits', 'sendPerDestination=off'] });
    const first = relay;
    const sender = await registerAccount(relay.url, 'crashsender', 1);
    const rcpt = await registerAccount(relay.url, 'crashrcpt', 1);
    const s = await sender.connect();
    const N = 200;
    const acked = new Set<string>();
    try {
      // Pipeline the sends; every one that got a SendResult must survive.
      const ids = Array.from({ length: N }, () => randomBytes(16));
      const answers = await Promise.all(ids.map((id) => sendOpaque(s, rcpt, id)));
      answers.forEach((a, i) => a.result && acked.add(ids[i]!.toString('hex')));
      assert.equal(acked.size, N);
    } finally {
      await first.kill();
    }
    await s.closed;
    relay = await startRelay({ dataDir: relay.dataDir });
    try {
      const r = await DeviceSocket.connect(relay.wsUrl, rcpt);
      await r.waitForEnvelopes(N);
      await r.drained();
      const got = r.envelopes.map((e) => Buffer.from(e.messageId).toString('hex'));
      assert.equal(got.length, N, 'none twice');
      assert.deepEqual(new Set(got), acked, 'all delivered');
      const seqs = r.envelopes.map((e) => Number(e.seq));
      assert.deepEqual(seqs, Array.from({ length: N }, (_, i) => i + 1));
      await r.close();
    } finally {
      await relay.stop();
    }
  });
});
