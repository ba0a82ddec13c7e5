// SPDX-License-Identifier: AGPL-3.0-only
/**
 * SendMulti through a relay in process: fan-out to every recipient device with the body stored
 * once, device-set refusals that list every wrong recipient, the combined access key on the
 * unidentified socket, dedup, per-recipient QUEUE_FULL, bounds, online-only sends, one commit per
 * upload, and the body's release with the last ack.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { combineAccessKeys, joinMultiRecipientPart, parseMultiRecipientMessage } from '@parley/crypto';
import { aciFromBytes, EnvelopeType, toBase64Url, type Aci, type DeviceId, type Frame, type FrameInit, type SendMultiResult } from '@parley/protocol';
import { FrameClient, startRelayHarness, type HarnessAccount, type RelayHarness } from './support/relay-harness.js';
import { syntheticMultiPayload, type SyntheticRecipient } from './support/ssv2-payload.js';

type Kind = Frame['kind'];
const code = (k: Kind) => (k.case === 'error' ? k.value.code : k.case);

/** Every device of each account, as the payload names them. */
function recipientsOf(accounts: readonly HarnessAccount[], except?: { aci: Aci; deviceId: number }): SyntheticRecipient[] {
  return accounts.map((a) => ({
    aci: a.aci,
    devices: a.devices.filter((d) => !(except && a.aci === except.aci && d.deviceId === except.deviceId)).map((d) => ({ deviceId: d.deviceId, registrationId: d.registrationId })),
  }));
}

function multiFrame(requestId: number, payload: Uint8Array, options: { id?: Uint8Array; key?: Uint8Array; online?: boolean } = {}): FrameInit {
  return {
    kind: {
      case: 'sendMulti',
      value: {
        requestId,
        messageId: options.id ?? randomBytes(16),
        timestamp: BigInt(Date.now()),
        online: options.online ?? false,
        payload,
        combinedAccessKey: options.key ?? new Uint8Array(0),
      },
    },
  };
}

function result(k: Kind): SendMultiResult {
  assert.equal(k.case, 'sendMultiResult', `expected SendMultiResult, got ${k.case === 'error' ? `${k.value.code}: ${k.value.message}` : k.case}`);
  return k.value as SendMultiResult;
}

/** [aci, [[device, seq]…]] per recipient of a result. */
function seqsOf(r: SendMultiResult): Array<[string, Array<[number, number]>]> {
  return r.recipients.map((x) => [aciFromBytes(x.aci), x.devices.map((d) => [d.deviceId, Number(d.seq)])]);
}

async function setAccessKey(h: RelayHarness, account: HarnessAccount, key: Uint8Array): Promise<void> {
  assert.equal((await h.call('PUT', '/v1/accounts/me/access-key', { accessKey: toBase64Url(key) }, account.devices[0]!.auth)).status, 204);
}

const depth = (h: RelayHarness, a: HarnessAccount, deviceId = 1) => h.store.depth({ aci: a.aci, deviceId: deviceId as DeviceId });

describe('SendMulti', () => {
  let h: RelayHarness;
  before(async () => {
    h = await startRelayHarness({ config: { maxMultiRecipients: 4, maxEnvelopeBytes: 4096 } });
  });
  after(() => h.close());

  it('delivers header \u2016 body to every device of every recipient, live and from the queue, with the body stored once', async () => {
    const alice = await h.register();
    const accounts = [await h.register(3), await h.register(1), await h.register(2)];
    const payload = syntheticMultiPayload(recipientsOf(accounts), randomBytes(1500));
    const parsed = parseMultiRecipientMessage(payload);
    const expected = new Map(parsed.recipients.map((r) => [r.aci, joinMultiRecipientPart(r.header, parsed.sharedBody)]));
    // Two devices are online before the send (the live path), the rest connect after it (the queue).
    const isEarly = (acc: HarnessAccount, deviceId: number) => (acc === accounts[0] && deviceId === 2) || (acc === accounts[2] && deviceId === 1);
    const clients: Array<{ acc: HarnessAccount; c: FrameClient }> = [];
    for (const acc of accounts) for (const d of acc.devices) if (isEarly(acc, d.deviceId)) clients.push({ acc, c: await FrameClient.open(h.wsUrl, d.auth) });
    for (const { c } of clients) await c.drained();
    const usageBefore = await h.store.sharedBodyUsage!();
    const a = await FrameClient.open(h.wsUrl, alice.devices[0]!.auth);
    const r = result(await a.request(multiFrame(1, payload), 1));
    assert.equal(r.duplicate, false);
    assert.deepEqual(r.fullRecipients, []);
    assert.deepEqual(seqsOf(r), accounts.map((acc) => [acc.aci, acc.devices.map((d) => [d.deviceId, 1])]));
    const usage = await h.store.sharedBodyUsage!();
    assert.deepEqual(usage, { bodies: usageBefore.bodies + 1, bytes: usageBefore.bytes + parsed.sharedBody.length });

    for (const acc of accounts) for (const d of acc.devices) if (!isEarly(acc, d.deviceId)) clients.push({ acc, c: await FrameClient.open(h.wsUrl, d.auth) });
    assert.equal(clients.length, 6);
    for (const { acc, c } of clients) {
      const [e] = await c.until(() => (c.envelopes().length > 0 ? c.envelopes() : undefined), 'the envelope');
      assert.equal(e!.type, EnvelopeType.SEALED);
      assert.equal(e!.source.length, 0);
      assert.equal(Number(e!.seq), 1);
      // Each device gets exactly its own account's part.
      assert.deepEqual(Buffer.from(e!.content), Buffer.from(expected.get(acc.aci)!));
    }
    for (const { c } of clients) await c.close();
    await a.close();
  });

  it('commits one upload in one store call and releases the body with the last ack', async () => {
    const alice = await h.register();
    const accounts = [await h.register(2), await h.register(1)];
    const a = await FrameClient.open(h.wsUrl, alice.devices[0]!.auth);
    const before = h.store.calls('enqueue');
    const usage0 = await h.store.sharedBodyUsage!();
    result(await a.request(multiFrame(1, syntheticMultiPayload(recipientsOf(accounts))), 1));
    assert.equal(h.store.calls('enqueue'), before + 1);
    assert.equal((await h.store.sharedBodyUsage!()).bodies, usage0.bodies + 1);
    for (const acc of accounts) {
      for (const d of acc.devices) {
        const c = await FrameClient.open(h.wsUrl, d.auth);
        await c.drained();
        c.send({ kind: { case: 'ack', value: { upTo: 1n, seqs: [] } } });
        await c.close();
      }
    }
    // Acks are committed in batches after the socket closed: poll the store with a deadline.
    const deadline = Date.now() + 5000;
    while ((await h.store.sharedBodyUsage!()).bodies !== usage0.bodies && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(await h.store.sharedBodyUsage!(), usage0);
    await a.close();
  });

  it('answers a retry with the same seqs and stores nothing twice; another body under the id is ID_REUSED', async () => {
    const alice = await h.register();
    const accounts = [await h.register(2), await h.register(1)];
    const a = await FrameClient.open(h.wsUrl, alice.devices[0]!.auth);
    const payload = syntheticMultiPayload(recipientsOf(accounts));
    const id = randomBytes(16);
    const first = result(await a.request(multiFrame(1, payload, { id }), 1));
    const usage = await h.store.sharedBodyUsage!();
    const again = result(await a.request(multiFrame(2, payload, { id }), 2));
    assert.equal(again.duplicate, true);
    assert.deepEqual(seqsOf(again), seqsOf(first));
    assert.deepEqual(await h.store.sharedBodyUsage!(), usage);
    assert.equal(await depth(h, accounts[0]!, 2), 1);
    const other = await a.request(multiFrame(3, syntheticMultiPayload(recipientsOf(accounts)), { id }), 3);
    assert.equal(code(other), 'ID_REUSED');
    assert.deepEqual(await h.store.sharedBodyUsage!(), usage);
    assert.equal(await depth(h, accounts[1]!), 1);
    await a.close();
  });

  it('lists every recipient with a wrong device set in one refusal and stores nothing', async () => {
    const alice = await h.register();
    const [ok, lacking, extra, stale] = [await h.register(2), await h.register(2), await h.register(1), await h.register(2)];
    const a = await FrameClient.open(h.wsUrl, alice.devices[0]!.auth);
    const recipients = recipientsOf([ok, lacking, extra, stale]);
    recipients[1] = { ...recipients[1]!, devices: recipients[1]!.devices.slice(0, 1) };
    recipients[2] = { ...recipients[2]!, devices: [...recipients[2]!.devices, { deviceId: 5, registrationId: 77 }] };
    recipients[3] = { ...recipients[3]!, devices: recipients[3]!.devices.map((d, i) => (i === 1 ? { ...d, registrationId: (d.registrationId % 16000) + 1 } : d)) };
    const mismatched = await a.request(multiFrame(1, syntheticMultiPayload(recipients)), 1);
    assert.equal(code(mismatched), 'MISMATCHED_DEVICES');
    const listed = mismatched.case === 'error' ? mismatched.value.recipients.map((r) => [aciFromBytes(r.aci), r.missingDevices, r.extraDevices, r.staleDevices]) : [];
    assert.deepEqual(listed, [
      [lacking.aci, [2], [], []],
      [extra.aci, [], [5], []],
    ]);
    const staleOnly = await a.request(multiFrame(2, syntheticMultiPayload([recipients[0]!, recipients[3]!])), 2);
    assert.equal(code(staleOnly), 'STALE_DEVICES');
    assert.deepEqual(staleOnly.case === 'error' && staleOnly.value.recipients.map((r) => [aciFromBytes(r.aci), r.staleDevices]), [[stale.aci, [2]]]);
    for (const acc of [ok, lacking, extra, stale]) assert.equal(await depth(h, acc), 0);
    await a.close();
  });

  it('on the authenticated socket: no combined key, local accounts only, and one\u2019s own account without the sending device', async () => {
    const alice = await h.register(2);
    const bob = await h.register();
    const a = await FrameClient.open(h.wsUrl, alice.devices[0]!.auth);
    assert.equal(code(await a.request(multiFrame(1, syntheticMultiPayload(recipientsOf([bob])), { key: randomBytes(16) }), 1)), 'BAD_REQUEST');
    const ghost: SyntheticRecipient = { aci: '0e0e0e0e-9999-4aaa-8bbb-cccccccccccc', devices: [{ deviceId: 1, registrationId: 5 }] };
    assert.equal(code(await a.request(multiFrame(2, syntheticMultiPayload([...recipientsOf([bob]), ghost])), 2)), 'NOT_FOUND');
    const withSelf = await a.request(multiFrame(3, syntheticMultiPayload(recipientsOf([bob, alice]))), 3);
    assert.equal(code(withSelf), 'MISMATCHED_DEVICES');
    assert.deepEqual(withSelf.case === 'error' && withSelf.value.recipients.map((r) => [aciFromBytes(r.aci), r.extraDevices]), [[alice.aci, [1]]]);
    const r = result(await a.request(multiFrame(4, syntheticMultiPayload(recipientsOf([bob, alice], { aci: alice.aci, deviceId: 1 }))), 4));
    assert.deepEqual(seqsOf(r), [[bob.aci, [[1, 1]]], [alice.aci, [[2, 1]]]]);
    assert.equal(await depth(h, alice, 1), 0);
    await a.close();
  });

  it('refuses malformed and oversized uploads and stores nothing', async () => {
    const alice = await h.register();
    const accounts = [await h.register(), await h.register(), await h.register(), await h.register(), await h.register()];
    const a = await FrameClient.open(h.wsUrl, alice.devices[0]!.auth);
    const good = syntheticMultiPayload(recipientsOf(accounts.slice(0, 2)));
    const cases: Array<[string, Uint8Array, string]> = [
      ['garbage', randomBytes(300), 'BAD_REQUEST'],
      ['a truncated payload', good.subarray(0, 40), 'BAD_REQUEST'],
      ['five recipients where four are allowed', syntheticMultiPayload(recipientsOf(accounts)), 'BAD_REQUEST'],
      ['a device named twice', syntheticMultiPayload([{ aci: accounts[0]!.aci, devices: [{ deviceId: 1, registrationId: 3 }, { deviceId: 1, registrationId: 3 }] }]), 'BAD_REQUEST'],
      ['a part over the envelope cap', syntheticMultiPayload(recipientsOf(accounts.slice(0, 1)), randomBytes(4096)), 'FRAME_TOO_LARGE'],
    ];
    let id = 1;
    for (const [what, payload, expected] of cases) assert.equal(code(await a.request(multiFrame(id, payload), id++)), expected, what);
    for (const acc of accounts) assert.equal(await depth(h, acc), 0);
    await a.close();
  });

  it('delivers an online-only upload to connected devices only and stores nothing', async () => {
    const alice = await h.register();
    const [bob, carol] = [await h.register(2), await h.register()];
    const b1 = await FrameClient.open(h.wsUrl, bob.devices[0]!.auth);
    await b1.drained();
    const a = await FrameClient.open(h.wsUrl, alice.devices[0]!.auth);
    const usage = await h.store.sharedBodyUsage!();
    const r = result(await a.request(multiFrame(1, syntheticMultiPayload(recipientsOf([bob, carol])), { online: true }), 1));
    assert.deepEqual(seqsOf(r), [[bob.aci, [[1, 0]]]]);
    const e = await b1.until(() => b1.envelopes().find((x) => x.online), 'online envelope');
    assert.equal(e.type, EnvelopeType.SEALED);
    assert.equal(Number(e.seq), 0);
    assert.deepEqual(await h.store.sharedBodyUsage!(), usage);
    assert.equal(await depth(h, bob, 2), 0);
    assert.equal(await depth(h, carol), 0);
    await b1.close();
    await a.close();
  });

  it('answers INTERNAL when the commit fails, stores nothing, and a retry goes through', async () => {
    const alice = await h.register();
    const accounts = [await h.register(), await h.register()];
    const a = await FrameClient.open(h.wsUrl, alice.devices[0]!.auth);
    const payload = syntheticMultiPayload(recipientsOf(accounts));
    const id = randomBytes(16);
    h.store.failNth('enqueue', 1);
    assert.equal(code(await a.request(multiFrame(1, payload, { id }), 1)), 'INTERNAL');
    for (const acc of accounts) assert.equal(await depth(h, acc), 0);
    const retry = result(await a.request(multiFrame(2, payload, { id }), 2));
    assert.equal(retry.duplicate, false);
    for (const acc of accounts) assert.equal(await depth(h, acc), 1);
    await a.close();
  });

  it('counts answered uploads by outcome and their fan-out', async () => {
    const text = await h.relay.metrics.render();
    assert.match(text, /parley_relay_multi_sends_total\{outcome="ok"\} [1-9]/);
    assert.match(text, /parley_relay_multi_sends_total\{outcome="MISMATCHED_DEVICES"\} [1-9]/);
    assert.match(text, /parley_relay_multi_send_fanout_count [1-9]/);
  });
});

describe('SendMulti on the unidentified socket', () => {
  let h: RelayHarness;
  before(async () => {
    h = await startRelayHarness();
  });
  after(() => h.close());

  it('is authorized by the XOR of every recipient\u2019s access key; any other key, a recipient without one or an unknown recipient is UNAUTHORIZED and stores nothing', async () => {
    const accounts = [await h.register(2), await h.register(), await h.register()];
    const keys = accounts.map(() => randomBytes(16));
    for (let i = 0; i < accounts.length; i++) await setAccessKey(h, accounts[i]!, keys[i]!);
    const keyless = await h.register();
    const u = await FrameClient.open(h.unidentifiedUrl);
    const payload = syntheticMultiPayload(recipientsOf(accounts));
    const combined = combineAccessKeys(keys);
    const ghost: SyntheticRecipient = { aci: '0e0e0e0e-dddd-4eee-8fff-000000000000', devices: [{ deviceId: 1, registrationId: 5 }] };
    const refused: Array<[string, Uint8Array, Uint8Array]> = [
      ['a wrong key', payload, randomBytes(16)],
      ['the key of all but one recipient', payload, combineAccessKeys(keys.slice(0, 2))],
      ['no key', payload, new Uint8Array(0)],
      ['a recipient without a key', syntheticMultiPayload(recipientsOf([...accounts, keyless])), combined],
      ['an unknown recipient', syntheticMultiPayload([...recipientsOf(accounts), ghost]), combined],
    ];
    let id = 1;
    for (const [what, p, key] of refused) {
      const answer = await u.request(multiFrame(id, p, { key }), id++);
      assert.equal(code(answer), 'UNAUTHORIZED', what);
      assert.equal(answer.case === 'error' && answer.value.message, 'the access key does not open this destination', what);
    }
    for (const acc of [...accounts, keyless]) assert.equal(await depth(h, acc), 0);
    assert.deepEqual(await h.store.sharedBodyUsage!(), { bodies: 0, bytes: 0 });

    const r = result(await u.request(multiFrame(id, payload, { key: combined }), id++));
    assert.deepEqual(seqsOf(r), accounts.map((acc) => [acc.aci, acc.devices.map((d) => [d.deviceId, 1])]));
    const c = await FrameClient.open(h.wsUrl, accounts[0]!.devices[1]!.auth);
    const [e] = await c.until(() => (c.envelopes().length > 0 ? c.envelopes() : undefined), 'envelope');
    assert.equal(e!.source.length, 0);
    await c.close();

    // Once the key matched, a wrong device set is answered as on the authenticated socket.
    const lacking = recipientsOf(accounts);
    lacking[0] = { ...lacking[0]!, devices: lacking[0]!.devices.slice(1) };
    const mismatch = await u.request(multiFrame(id, syntheticMultiPayload(lacking), { key: combined }), id);
    assert.equal(code(mismatch), 'MISMATCHED_DEVICES');
    await u.close();
  });
});

describe('SendMulti with full queues', () => {
  it('queues the recipients with room and lists the full ones', async () => {
    const h = await startRelayHarness({ config: { maxQueueDepth: 1 } });
    try {
      const alice = await h.register();
      const [bob, carol] = [await h.register(), await h.register(2)];
      const a = await FrameClient.open(h.wsUrl, alice.devices[0]!.auth);
      result(await a.request(multiFrame(1, syntheticMultiPayload([recipientsOf([carol])[0]!])), 1));
      const r = result(await a.request(multiFrame(2, syntheticMultiPayload(recipientsOf([bob, carol]))), 2));
      assert.deepEqual(seqsOf(r), [[bob.aci, [[1, 1]]]]);
      assert.deepEqual(r.fullRecipients.map((x) => aciFromBytes(x)), [carol.aci]);
      assert.equal(await depth(h, carol, 2), 1);
      assert.equal(await depth(h, bob), 1);
      await a.close();
    } finally {
      await h.close();
    }
  });
});
