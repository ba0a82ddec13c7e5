// SPDX-License-Identifier: AGPL-3.0-only
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startRelay, type RelayProcess } from '../support/relay-process.js';
import { linkDevice, registerAccount, type TestDevice } from '../support/test-device.js';
import type { DeviceSocket } from '../support/device-socket.js';

describe('two people, two devices each, over a real relay process', () => {
  let relay: RelayProcess;
  let alice1: TestDevice, alice2: TestDevice, bob1: TestDevice, bob2: TestDevice;

  before(async () => {
    relay = await startRelay();
    alice1 = await registerAccount(relay.url, 'alice');
    alice2 = await linkDevice(alice1);
    bob1 = await registerAccount(relay.url, 'bob');
    bob2 = await linkDevice(bob1);
  });
  after(async () => {
    await relay.stop();
  });

  it('delivers to every device of an offline recipient, in order, once it connects', async () => {
    const a = await alice1.connect();
    const texts = Array.from({ length: 20 }, (_, i) => `hello bob, message ${i}`);
    for (const t of texts) {
      const { result, error } = await alice1.sendText(a, bob1.aci, t);
      assert.equal(error, undefined, `send refused: ${error?.code}`);
      assert.deepEqual(result!.devices.map((d) => d.deviceId).sort(), [1, 2]);
    }
    for (const bob of [bob1, bob2]) {
      const s = await bob.connect();
      await s.waitForEnvelopes(texts.length);
      await s.drained();
      const seqs = s.envelopes.map((e) => Number(e.seq));
      assert.deepEqual(seqs, [...seqs].sort((x, y) => x - y), 'sequence numbers increase');
      assert.equal(new Set(seqs).size, seqs.length);
      const plain = [];
      for (const e of s.envelopes) plain.push(await bob.decrypt(e));
      assert.deepEqual(plain, texts);
      assert.equal(Buffer.from(s.envelopes[0]!.source).toString('hex').length, 32);
      s.ack(seqs[seqs.length - 1]!);
      await s.sync();
      await s.close();
    }
    await a.close();
  });

  it('answers in both directions with live delivery and copies to the sender\u2019s other device', async () => {
    const [a1, a2, b1, b2] = await Promise.all([alice1.connect(), alice2.connect(), bob1.connect(), bob2.connect()]);
    await Promise.all([a1, a2, b1, b2].map((s) => s.drained()));
    const base = (s: DeviceSocket) => s.envelopes.length;
    const [na1, na2] = [base(a1), base(a2)];
    const r1 = await bob2.sendText(b2, alice1.aci, 'hi alice, from bob\u2019s second device');
    assert.equal(r1.error, undefined);
    await a1.waitForEnvelopes(na1 + 1);
    await a2.waitForEnvelopes(na2 + 1);
    assert.equal(await alice1.decrypt(a1.envelopes[na1]!), 'hi alice, from bob\u2019s second device');
    assert.equal(await alice2.decrypt(a2.envelopes[na2]!), 'hi alice, from bob\u2019s second device');
    // A sync copy to one's own other device: the sending device is not part of the set.
    const nSelf = base(a2);
    const r2 = await alice1.sendText(a1, alice1.aci, 'transcript: sent to bob');
    assert.equal(r2.error, undefined);
    assert.deepEqual(r2.result!.devices.map((d) => d.deviceId), [2]);
    await a2.waitForEnvelopes(nSelf + 1);
    assert.equal(await alice2.decrypt(a2.envelopes[nSelf]!), 'transcript: sent to bob');
    for (const s of [a1, a2, b1, b2]) await s.close();
  });

  it('refuses a send that misses a device or names a stranger, and one with a stale registration id', async () => {
    const s = await alice1.connect();
    const messages = await alice1.encryptFor(bob1.aci, new TextEncoder().encode('x'));
    const send = (msgs: typeof messages) => {
      const requestId = s.requestId();
      s.send({ kind: { case: 'send', value: { requestId, destination: Buffer.from(bob1.aci.replace(/-/g, ''), 'hex'), messageId: crypto.getRandomValues(new Uint8Array(16)), timestamp: BigInt(Date.now()), messages: msgs } } });
      return s.answer(requestId);
    };
    const missing = await send(messages.filter((m) => m.deviceId === 1));
    assert.equal(missing.error?.code, 'MISMATCHED_DEVICES');
    assert.deepEqual(missing.error?.missingDevices, [2]);
    const extra = await send([...messages, { ...messages[0]!, deviceId: 9 }]);
    assert.equal(extra.error?.code, 'MISMATCHED_DEVICES');
    assert.deepEqual(extra.error?.extraDevices, [9]);
    const stale = await send(messages.map((m) => (m.deviceId === 2 ? { ...m, registrationId: (m.registrationId % 16000) + 1 } : m)));
    assert.equal(stale.error?.code, 'STALE_DEVICES');
    assert.deepEqual(stale.error?.staleDevices, [2]);
    await s.close();
  });
});
