// SPDX-License-Identifier: AGPL-3.0-only
/**
 * One-recipient sealed sends: the unidentified socket (access key, SEALED only, UNAUTHORIZED for
 * every failure before the key matched, rate limits per client address and per destination),
 * and sealed envelopes over the authenticated socket, stored without a source.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { join } from 'node:path';
import { aciToBytes, EnvelopeType, toBase64Url, type Aci, type Frame, type FrameInit } from '@parley/protocol';
import { FrameClient, startRelayHarness, type HarnessAccount, type RelayHarness } from './support/relay-harness.js';

type Kind = Frame['kind'];

function sendFrame(requestId: number, to: HarnessAccount, options: { key?: Uint8Array; type?: EnvelopeType; devices?: number[]; id?: Uint8Array; content?: Uint8Array; online?: boolean; destination?: Aci } = {}): FrameInit {
  const devices = options.devices ?? to.devices.map((d) => d.deviceId);
  return {
    kind: {
      case: 'send',
      value: {
        requestId,
        destination: aciToBytes(options.destination ?? to.aci),
        messageId: options.id ?? randomBytes(16),
        timestamp: BigInt(Date.now()),
        online: options.online ?? false,
        accessKey: options.key ?? new Uint8Array(0),
        messages: devices.map((deviceId) => ({
          deviceId,
          registrationId: to.devices.find((d) => d.deviceId === deviceId)?.registrationId ?? 1,
          type: options.type ?? EnvelopeType.SEALED,
          content: options.content ?? randomBytes(60),
        })),
      },
    },
  };
}

const code = (k: Kind) => (k.case === 'error' ? k.value.code : k.case);

async function setAccessKey(h: RelayHarness, account: HarnessAccount, key: Uint8Array): Promise<void> {
  const res = await h.call('PUT', '/v1/accounts/me/access-key', { accessKey: toBase64Url(key) }, account.devices[0]!.auth);
  assert.equal(res.status, 204);
}

describe('unidentified one-recipient sends', () => {
  let h: RelayHarness;
  before(async () => {
    h = await startRelayHarness({ config: { rateLimits: { accessKeyFailure: { capacity: 5, windowMs: 60_000 } } } });
  });
  after(() => h.close());

  it('delivers a sealed send the destination\u2019s access key opens, stored and delivered without a source', async () => {
    const bob = await h.register(2);
    const key = randomBytes(16);
    await setAccessKey(h, bob, key);
    const u = await FrameClient.open(h.unidentifiedUrl);
    const content = randomBytes(80);
    const answer = await u.request(sendFrame(1, bob, { key, content }), 1);
    assert.equal(answer.case, 'sendResult');
    assert.deepEqual(answer.case === 'sendResult' && answer.value.devices.map((d) => [d.deviceId, d.seq]), [[1, 1n], [2, 1n]]);
    for (const d of bob.devices) {
      const c = await FrameClient.open(h.wsUrl, d.auth);
      const [e] = await c.until(() => (c.envelopes().length > 0 ? c.envelopes() : undefined), 'delivery');
      assert.equal(e!.type, EnvelopeType.SEALED);
      assert.equal(e!.source.length, 0);
      assert.equal(e!.sourceDevice, 0);
      assert.equal(e!.sourceDomain, '');
      assert.deepEqual(Buffer.from(e!.content), content);
      await c.close();
    }
    const db = new Database(join(h.dir, 'relay.db'), { readonly: true });
    assert.equal(db.prepare('SELECT count(*) FROM envelope WHERE source_aci IS NOT NULL OR source_device IS NOT NULL OR source_domain IS NOT NULL').pluck().get(), 0);
    db.close();
    await u.close();
  });

  it('answers a wrong key, no key, an unknown account and an account without a key with the same UNAUTHORIZED, storing nothing', async () => {
    const bob = await h.register();
    const carol = await h.register();
    const key = randomBytes(16);
    await setAccessKey(h, bob, key);
    const u = await FrameClient.open(h.unidentifiedUrl);
    const ghost = { ...bob, aci: '0e0e0e0e-1111-4222-8333-444444444444' as Aci };
    const answers = [
      await u.request(sendFrame(1, bob, { key: randomBytes(16) }), 1),
      await u.request(sendFrame(2, bob), 2),
      await u.request(sendFrame(3, bob, { key: key.subarray(0, 15) }), 3),
      await u.request(sendFrame(4, ghost, { key }), 4),
      await u.request(sendFrame(5, carol, { key }), 5),
    ];
    for (const a of answers) {
      assert.equal(a.case, 'error');
      const e = a.case === 'error' ? a.value : undefined;
      assert.deepEqual([e?.code, e?.message, e?.missingDevices, e?.extraDevices, e?.staleDevices], ['UNAUTHORIZED', 'the access key does not open this destination', [], [], []]);
    }
    assert.equal(await h.store.depth({ aci: bob.aci, deviceId: 1 as never }), 0);
    assert.equal(await h.store.depth({ aci: carol.aci, deviceId: 1 as never }), 0);
    // The socket stays up.
    u.send({ kind: { case: 'ping', value: { nonce: 7 } } });
    await u.until(() => u.frames.find((f) => f.kind.case === 'pong'), 'pong');
    await u.close();
  });

  it('answers device-set errors once the key matched, as for an identified send', async () => {
    const bob = await h.register(2);
    const key = randomBytes(16);
    await setAccessKey(h, bob, key);
    const u = await FrameClient.open(h.unidentifiedUrl);
    const missing = await u.request(sendFrame(1, bob, { key, devices: [1] }), 1);
    assert.equal(code(missing), 'MISMATCHED_DEVICES');
    assert.deepEqual(missing.case === 'error' && missing.value.missingDevices, [2]);
    const stale = sendFrame(2, bob, { key });
    if (stale.kind?.case === 'send') stale.kind.value.messages![1]!.registrationId = (bob.devices[1]!.registrationId % 16000) + 1;
    const staleAnswer = await u.request(stale, 2);
    assert.equal(code(staleAnswer), 'STALE_DEVICES');
    assert.deepEqual(staleAnswer.case === 'error' && staleAnswer.value.staleDevices, [2]);
    await u.close();
  });

  it('takes only SEALED messages on the unidentified socket, and no access key on the authenticated one', async () => {
    const alice = await h.register();
    const bob = await h.register();
    const key = randomBytes(16);
    await setAccessKey(h, bob, key);
    const u = await FrameClient.open(h.unidentifiedUrl);
    assert.equal(code(await u.request(sendFrame(1, bob, { key, type: EnvelopeType.CIPHERTEXT }), 1)), 'BAD_REQUEST');
    const a = await FrameClient.open(h.wsUrl, alice.devices[0]!.auth);
    assert.equal(code(await a.request(sendFrame(2, bob, { key }), 2)), 'BAD_REQUEST');
    assert.equal(await h.store.depth({ aci: bob.aci, deviceId: 1 as never }), 0);
    await u.close();
    await a.close();
  });

  it('stores no source for a sealed envelope sent over the authenticated socket, and the source of any other', async () => {
    const alice = await h.register();
    const bob = await h.register(2);
    const a = await FrameClient.open(h.wsUrl, alice.devices[0]!.auth);
    assert.equal(code(await a.request(sendFrame(1, bob), 1)), 'sendResult');
    assert.equal(code(await a.request(sendFrame(2, bob, { type: EnvelopeType.CIPHERTEXT }), 2)), 'sendResult');
    const mixed = sendFrame(3, bob);
    if (mixed.kind?.case === 'send') mixed.kind.value.messages![1]!.type = EnvelopeType.CIPHERTEXT;
    assert.equal(code(await a.request(mixed, 3)), 'BAD_REQUEST');
    const b = await FrameClient.open(h.wsUrl, bob.devices[0]!.auth);
    const [sealed, identified] = await b.until(() => (b.envelopes().length >= 2 ? b.envelopes() : undefined), 'two envelopes');
    assert.equal(sealed!.source.length, 0);
    assert.deepEqual(identified!.source, aciToBytes(alice.aci));
    assert.equal(identified!.sourceDevice, 1);
    await a.close();
    await b.close();
  });

  it('answers a retry with the original sequence numbers, and an online-only send reaches connected devices only', async () => {
    const bob = await h.register(2);
    const key = randomBytes(16);
    await setAccessKey(h, bob, key);
    const u = await FrameClient.open(h.unidentifiedUrl);
    const id = randomBytes(16);
    const content = randomBytes(40);
    const first = await u.request(sendFrame(1, bob, { key, id, content }), 1);
    const again = await u.request(sendFrame(2, bob, { key, id, content }), 2);
    assert.equal(again.case === 'sendResult' && again.value.duplicate, true);
    assert.deepEqual(again.case === 'sendResult' && again.value.devices, first.case === 'sendResult' && first.value.devices);
    assert.equal(await h.store.depth({ aci: bob.aci, deviceId: 1 as never }), 1);

    const b1 = await FrameClient.open(h.wsUrl, bob.devices[0]!.auth);
    await b1.drained();
    const online = await u.request(sendFrame(3, bob, { key, online: true }), 3);
    assert.deepEqual(online.case === 'sendResult' && online.value.devices.map((d) => d.deviceId), [1]);
    const typing = await b1.until(() => b1.envelopes().find((e) => e.online), 'online envelope');
    assert.equal(typing.source.length, 0);
    await b1.close();
    await u.close();
  });

  it('refuses any frame but Send, SendMulti and Ping with UNKNOWN_FRAME and stays up', async () => {
    const u = await FrameClient.open(h.unidentifiedUrl);
    u.send({ kind: { case: 'ack', value: { upTo: 1n, seqs: [] } } });
    const err = await u.until(() => u.frames.find((f) => f.kind.case === 'error'), 'error');
    assert.equal(err.kind.case === 'error' && err.kind.value.code, 'UNKNOWN_FRAME');
    u.send({ kind: { case: 'ping', value: { nonce: 42 } } });
    const pong = await u.until(() => u.frames.find((f) => f.kind.case === 'pong'), 'pong');
    assert.equal(pong.kind.case === 'pong' && pong.kind.value.nonce, 42);
    await u.close();
  });

  it('limits wrong keys per destination: while limited even the right key is refused, unknown accounts alike', async () => {
    const bob = await h.register();
    const carol = await h.register();
    const key = randomBytes(16);
    await setAccessKey(h, bob, key);
    await setAccessKey(h, carol, key);
    const ghost = { ...bob, aci: '0e0e0e0e-5555-4666-8777-888888888888' as Aci };
    const u = await FrameClient.open(h.unidentifiedUrl);
    let id = 1;
    for (const target of [bob, ghost]) {
      for (let i = 0; i < 5; i++) assert.equal(code(await u.request(sendFrame(id, target, { key: randomBytes(16) }), id++)), 'UNAUTHORIZED');
      const limited = await u.request(sendFrame(id, target, { key }), id++);
      assert.equal(code(limited), 'RATE_LIMITED');
      assert.ok(limited.case === 'error' && limited.value.retryAfterMs > 0);
    }
    assert.equal(code(await u.request(sendFrame(id, carol, { key }), id)), 'sendResult', 'another destination is not limited');
    await u.close();
  });
});

describe('unidentified rate limits per client address', () => {
  let h: RelayHarness;
  before(async () => {
    h = await startRelayHarness({ config: { rateLimits: { unidentifiedSend: { capacity: 3, windowMs: 60_000 }, unidentifiedSocket: { capacity: 2, windowMs: 60_000 } } } });
  });
  after(() => h.close());

  it('refuses sends past the address\u2019s bucket with RATE_LIMITED before checking them', async () => {
    const bob = await h.register();
    const key = randomBytes(16);
    await setAccessKey(h, bob, key);
    const u = await FrameClient.open(h.unidentifiedUrl);
    for (let i = 1; i <= 3; i++) assert.equal(code(await u.request(sendFrame(i, bob, { key }), i)), 'sendResult');
    const limited = await u.request(sendFrame(4, bob, { key }), 4);
    assert.equal(code(limited), 'RATE_LIMITED');
    assert.ok(limited.case === 'error' && limited.value.retryAfterMs > 0);
    assert.equal(await h.store.depth({ aci: bob.aci, deviceId: 1 as never }), 3);
    await u.close();
  });

  it('refuses a third unidentified socket from one address within the window with 429', async () => {
    await (await FrameClient.open(h.unidentifiedUrl).catch(() => undefined))?.close();
    await assert.rejects(FrameClient.open(h.unidentifiedUrl), /429/);
  });
});
