// SPDX-License-Identifier: AGPL-3.0-only
import assert from 'node:assert/strict';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { Aci, DeviceId, MessageId } from '@parley/protocol';
import { isEnvelopeStoreError, type EnqueueRequest } from '../src/ports/envelope-store.js';
import { FaultyEnvelopeStore } from '../src/storage/faulty-envelope-store.js';
import { openSqliteEnvelopeStore } from '../src/storage/sqlite-envelope-store.js';
import { CONTRACT_T0, describeEnvelopeStoreContract } from './contract/envelope-store-contract.js';
import { ManualClock } from './contract/manual-clock.js';

// With no fault set, the wrapper must be invisible.
describeEnvelopeStoreContract('faulty wrapper without faults (over sqlite)', async ({ clock }) => {
  const dir = await mkdtemp(join(tmpdir(), 'parley-faulty-store-'));
  const path = join(dir, 'relay.db');
  const opened: FaultyEnvelopeStore[] = [];
  const open = () => {
    const s = new FaultyEnvelopeStore(openSqliteEnvelopeStore({ path, clock }));
    opened.push(s);
    return s;
  };
  return {
    store: open(),
    reopen: async () => open(),
    cleanup: async () => {
      for (const s of opened) await s.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
});

const injected = (err: unknown) => isEnvelopeStoreError(err, 'INJECTED_FAULT');

function send(to: Aci, id = randomBytes(16).toString('hex') as MessageId): EnqueueRequest {
  const content = randomBytes(32);
  return {
    destination: to,
    messageId: id,
    timestamp: CONTRACT_T0,
    serverTimestamp: CONTRACT_T0,
    urgent: false,
    expiresAt: CONTRACT_T0 + 3_600_000,
    maxQueueDepth: 100,
    envelopes: [{ deviceId: 1 as DeviceId, type: 1, content, contentHash: createHash('sha256').update(content).digest().subarray(0, 16) }],
  };
}

function setup() {
  const store = new FaultyEnvelopeStore(openSqliteEnvelopeStore({ path: ':memory:', clock: new ManualClock(CONTRACT_T0) }));
  const aci = randomUUID() as Aci;
  return { store, aci, queue: { aci, deviceId: 1 as DeviceId } };
}

describe('FaultyEnvelopeStore', () => {
  it('fails the Nth enqueue before it reaches the store, and only that one', async () => {
    const { store, aci, queue } = setup();
    store.failNth('enqueue', 2);
    await store.enqueue([send(aci)]);
    await assert.rejects(store.enqueue([send(aci)]), injected);
    const [r] = await store.enqueue([send(aci)]);
    assert.equal(r?.status === 'queued' && r.seqs[0]?.seq, 2);
    assert.equal(await store.depth(queue), 2);
    assert.equal(store.calls('enqueue'), 3);
    await store.close();
  });

  it('can fail after the store committed: the answer is lost, the retry is a duplicate', async () => {
    const { store, aci, queue } = setup();
    const req = send(aci);
    store.failNth('enqueue', 1, { when: 'after' });
    await assert.rejects(store.enqueue([req]), injected);
    assert.equal(await store.depth(queue), 1);
    assert.deepEqual(await store.enqueue([req]), [{ status: 'queued', seqs: [{ deviceId: 1, seq: 1, duplicate: true }] }]);
    await store.close();
  });

  it('fails acks with a given error, and every call until healed', async () => {
    const { store, aci, queue } = setup();
    await store.enqueue([send(aci), send(aci)]);
    const boom = new Error('disk on fire');
    store.failAlways('ack', { error: boom });
    await assert.rejects(store.ack([{ queue, upTo: 1, seqs: [] }]), (err) => err === boom);
    await assert.rejects(store.ack([{ queue, upTo: 2, seqs: [] }]), (err) => err === boom);
    assert.equal(await store.depth(queue), 2);
    store.heal();
    assert.equal(await store.ack([{ queue, upTo: 2, seqs: [] }]), 2);
    await store.close();
  });

  it('delays calls through the given sleep', async () => {
    const slept: number[] = [];
    const store = new FaultyEnvelopeStore(openSqliteEnvelopeStore({ path: ':memory:' }), {
      sleep: async (ms) => {
        slept.push(ms);
      },
    });
    store.delay('read', 250);
    await store.read({ aci: randomUUID() as Aci, deviceId: 1 as DeviceId }, 0, 1, 0);
    await store.depth({ aci: randomUUID() as Aci, deviceId: 1 as DeviceId });
    assert.deepEqual(slept, [250]);
    assert.throws(() => store.delay('read', -1), RangeError);
    await store.close();
  });

  it('delays with real time by default', async () => {
    const { store, queue } = setup();
    store.delay('depth', 40);
    const t0 = performance.now();
    await store.depth(queue);
    assert.ok(performance.now() - t0 >= 35);
    await store.close();
  });

  it('holds calls until released, then lets them through in order', async () => {
    const { store, aci, queue } = setup();
    const release = store.hold('enqueue');
    const order: number[] = [];
    const a = store.enqueue([send(aci)]).then((r) => order.push(r[0]!.status === 'queued' ? r[0]!.seqs[0]!.seq : -1));
    const b = store.enqueue([send(aci)]).then((r) => order.push(r[0]!.status === 'queued' ? r[0]!.seqs[0]!.seq : -1));
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(await store.depth(queue), 0, 'held calls have not reached the store');
    release();
    await Promise.all([a, b]);
    assert.deepEqual(order, [1, 2]);
    await store.close();
  });

  it('releases held calls on heal', async () => {
    const { store, aci } = setup();
    store.hold('enqueue');
    const pending = store.enqueue([send(aci)]);
    store.heal();
    assert.equal((await pending)[0]?.status, 'queued');
    await store.close();
  });

  it('refuses a non-positive N', () => {
    const { store } = setup();
    assert.throws(() => store.failNth('enqueue', 0), RangeError);
    void store.close();
  });
});
