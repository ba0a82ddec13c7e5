// SPDX-License-Identifier: AGPL-3.0-only
/**
 * The contract every EnvelopeStore adapter passes (CONVENTIONS 1): sequence numbers, dedup,
 * queue caps, batch isolation, reads, acks, expiry, dropped queues and durability across a
 * reopen. Adapters run it from their own test file with a factory that gives a fresh, empty store.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { afterEach, beforeEach, describe, it } from 'node:test';
import type { Aci, DeviceId, MessageId, Seq } from '@parley/protocol';
import {
  isEnvelopeStoreError,
  type EnqueueRequest,
  type EnqueueResult,
  type EnvelopeSource,
  type EnvelopeStore,
  type QueueAddress,
} from '../../src/ports/envelope-store.js';
import { ManualClock } from './manual-clock.js';

/** What the suite hands a factory: the adapter must judge time in `enqueue` by this clock. */
export interface EnvelopeStoreContractContext {
  readonly clock: ManualClock;
}

/** A fresh, empty store made by an adapter's factory. */
export interface EnvelopeStoreFixture {
  readonly store: EnvelopeStore;
  /**
   * Opens a new store on the same data after the suite closed the previous one (restart). Adapters
   * whose data does not outlive a store (in-memory) leave it out, and the durability tests say so.
   */
  readonly reopen?: () => Promise<EnvelopeStore>;
  /** Closes every store the fixture opened and deletes its data. */
  readonly cleanup: () => Promise<void>;
}

/** The suite's start time: 2027-01-15T08:00:00Z. */
export const CONTRACT_T0 = 1_800_000_000_000;
const HOUR = 3_600_000;
const RETENTION = 30 * 24 * HOUR;

/** One send as the tests describe it. */
interface SendSpec {
  readonly to: Aci;
  readonly id: MessageId;
  readonly devices: readonly number[];
  /** Overrides the body of every device (a changed body for ID_REUSED). */
  readonly body?: string;
  readonly expiresAt?: number;
  readonly maxQueueDepth?: number;
  /** null: sealed sender. */
  readonly source?: EnvelopeSource | null;
  readonly urgent?: boolean;
  readonly type?: number;
  readonly timestamp?: number;
}

const SENDER: EnvelopeSource = { aci: '6f1c2d3e-4a5b-4c6d-8e7f-0a1b2c3d4e5f' as Aci, deviceId: 2 as DeviceId, domain: 'alpha.example' };

function newAci(): Aci {
  return randomUUID() as Aci;
}

function newId(): MessageId {
  return randomBytes(16).toString('hex') as MessageId;
}

function bodyOf(spec: SendSpec, deviceId: number): Uint8Array {
  return new TextEncoder().encode(spec.body ?? `ciphertext of ${spec.id} for device ${deviceId}`);
}

function hash16(content: Uint8Array): Uint8Array {
  return createHash('sha256').update(content).digest().subarray(0, 16);
}

function request(spec: SendSpec, now: number): EnqueueRequest {
  return {
    destination: spec.to,
    messageId: spec.id,
    ...(spec.source === null ? {} : { source: spec.source ?? SENDER }),
    timestamp: spec.timestamp ?? now - 5,
    serverTimestamp: now,
    urgent: spec.urgent ?? true,
    expiresAt: spec.expiresAt ?? now + RETENTION,
    maxQueueDepth: spec.maxQueueDepth ?? 1000,
    envelopes: spec.devices.map((d) => {
      const content = bodyOf(spec, d);
      return { deviceId: d as DeviceId, type: spec.type ?? 1, content, contentHash: hash16(content) };
    }),
  };
}

/** One multi-recipient send as the tests describe it: per recipient its devices; one shared body. */
interface MultiSpec {
  readonly recipients: ReadonlyArray<{ readonly to: Aci; readonly devices: readonly number[] }>;
  readonly id: MessageId;
  readonly body: Uint8Array;
  /** Default 1. */
  readonly group?: number;
  readonly expiresAt?: number;
  readonly maxQueueDepth?: number;
  /** Overrides every recipient's header (a changed part for ID_REUSED). */
  readonly header?: string;
}

function sha256(bytes: Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha256').update(bytes).digest());
}

function headerOf(spec: MultiSpec, to: Aci): Uint8Array {
  return new TextEncoder().encode(spec.header ?? `header of ${spec.id} for ${to}`);
}

/** The requests of one multi-recipient send, as the relay builds them: one per account, one group, one body. */
function multiRequests(spec: MultiSpec, now: number): EnqueueRequest[] {
  const digest = sha256(spec.body);
  return spec.recipients.map((r) => {
    const header = headerOf(spec, r.to);
    const hash = hash16(Buffer.concat([header, digest]));
    return {
      destination: r.to,
      messageId: spec.id,
      timestamp: now - 5,
      serverTimestamp: now,
      urgent: true,
      expiresAt: spec.expiresAt ?? now + RETENTION,
      maxQueueDepth: spec.maxQueueDepth ?? 1000,
      envelopes: r.devices.map((d) => ({ deviceId: d as DeviceId, type: 3, content: header, contentHash: hash })),
      sharedBody: { id: digest, bytes: spec.body },
      group: spec.group ?? 1,
    };
  });
}

function q(aci: Aci, deviceId: number): QueueAddress {
  return { aci, deviceId: deviceId as DeviceId };
}

/** The [deviceId, seq, duplicate] triples of a queued result; fails on a refusal. */
function seqs(result: EnqueueResult | undefined): Array<[number, number, boolean]> {
  assert.ok(result, 'no result');
  assert.equal(result.status, 'queued', `expected queued, got ${JSON.stringify(result)}`);
  return result.seqs.map((s) => [s.deviceId, s.seq, s.duplicate]);
}

/**
 * Declares the contract tests for one adapter.
 * @param name shown in the test report, e.g. `'sqlite'`.
 * @param makeStore gives a fresh, empty store whose `enqueue` judges time by `ctx.clock`.
 */
export function describeEnvelopeStoreContract(
  name: string,
  makeStore: (ctx: EnvelopeStoreContractContext) => Promise<EnvelopeStoreFixture>,
): void {
  describe(`EnvelopeStore contract: ${name}`, () => {
    let clock: ManualClock;
    let fixture: EnvelopeStoreFixture;
    let store: EnvelopeStore;

    beforeEach(async () => {
      clock = new ManualClock(CONTRACT_T0);
      fixture = await makeStore({ clock });
      store = fixture.store;
    });
    afterEach(async () => {
      await fixture.cleanup();
    });

    const enqueue = async (...specs: SendSpec[]): Promise<EnqueueResult[]> => {
      const results = await store.enqueue(specs.map((s) => request(s, clock.now())));
      assert.equal(results.length, specs.length, 'one result per request');
      return results;
    };
    const enqueueOne = async (spec: SendSpec): Promise<EnqueueResult> => (await enqueue(spec))[0]!;
    const readAll = (queue: QueueAddress, afterSeq = 0) => store.read(queue, afterSeq, 10_000, clock.now());
    const readSeqs = async (queue: QueueAddress, afterSeq = 0) => (await readAll(queue, afterSeq)).map((e) => e.seq as number);

    async function restart(): Promise<boolean> {
      if (!fixture.reopen) return false;
      await store.close();
      store = await fixture.reopen();
      return true;
    }

    describe('sequence numbers', () => {
      it('starts every device queue at 1 and counts each queue on its own', async () => {
        const alice = newAci();
        const bob = newAci();
        assert.deepEqual(seqs(await enqueueOne({ to: alice, id: newId(), devices: [1, 2] })), [
          [1, 1, false],
          [2, 1, false],
        ]);
        assert.deepEqual(seqs(await enqueueOne({ to: alice, id: newId(), devices: [1] })), [[1, 2, false]]);
        assert.deepEqual(seqs(await enqueueOne({ to: bob, id: newId(), devices: [1] })), [[1, 1, false]]);
        assert.deepEqual(seqs(await enqueueOne({ to: alice, id: newId(), devices: [2, 1] })), [
          [2, 2, false],
          [1, 3, false],
        ]);
      });

      it('hands out strictly increasing seqs in request order within a batch and across batches', async () => {
        const alice = newAci();
        const batch = await enqueue(...Array.from({ length: 5 }, () => ({ to: alice, id: newId(), devices: [3] })));
        assert.deepEqual(batch.map((r) => seqs(r)[0]![1]), [1, 2, 3, 4, 5]);
        const next = await enqueue({ to: alice, id: newId(), devices: [3] }, { to: alice, id: newId(), devices: [3] });
        assert.deepEqual(next.map((r) => seqs(r)[0]![1]), [6, 7]);
        assert.deepEqual(await readSeqs(q(alice, 3)), [1, 2, 3, 4, 5, 6, 7]);
      });

      it('never reuses a seq after every envelope was acked and deleted', async () => {
        const alice = newAci();
        await enqueue({ to: alice, id: newId(), devices: [1] }, { to: alice, id: newId(), devices: [1] });
        assert.equal(await store.ack([{ queue: q(alice, 1), upTo: 2, seqs: [] }]), 2);
        assert.equal(await store.depth(q(alice, 1)), 0);
        assert.deepEqual(seqs(await enqueueOne({ to: alice, id: newId(), devices: [1] })), [[1, 3, false]]);
      });

      it('never reuses a seq after the queue was dropped', async () => {
        const alice = newAci();
        await enqueue({ to: alice, id: newId(), devices: [4] }, { to: alice, id: newId(), devices: [4] });
        await store.dropQueue(q(alice, 4));
        assert.deepEqual(seqs(await enqueueOne({ to: alice, id: newId(), devices: [4] })), [[4, 3, false]]);
        assert.deepEqual(await readSeqs(q(alice, 4)), [3]);
      });

      it('keeps counters, envelopes, depth and dedup across a close and reopen', async (t) => {
        const alice = newAci();
        const kept = newId();
        await enqueue({ to: alice, id: kept, devices: [1, 2] }, { to: alice, id: newId(), devices: [1] });
        await store.ack([{ queue: q(alice, 1), upTo: 2, seqs: [] }]);
        if (!(await restart())) {
          t.skip(`${name} has no reopen: durability across a restart is not tested here`);
          return;
        }
        assert.equal(await store.depth(q(alice, 1)), 0);
        assert.equal(await store.depth(q(alice, 2)), 1);
        const [e] = await readAll(q(alice, 2));
        assert.equal(e?.seq, 1);
        assert.deepEqual(Buffer.from(e!.content).toString(), `ciphertext of ${kept} for device 2`);
        // The dedup entry outlived both the ack and the restart.
        assert.deepEqual(seqs(await enqueueOne({ to: alice, id: kept, devices: [1, 2] })), [
          [1, 1, true],
          [2, 1, true],
        ]);
        assert.deepEqual(seqs(await enqueueOne({ to: alice, id: newId(), devices: [1, 2] })), [
          [1, 3, false],
          [2, 2, false],
        ]);
      });

      it('never reuses a seq after a restart once every envelope was acked', async (t) => {
        const alice = newAci();
        await enqueue(...Array.from({ length: 4 }, () => ({ to: alice, id: newId(), devices: [7] })));
        await store.ack([{ queue: q(alice, 7), upTo: 4, seqs: [] }]);
        await store.dropQueue(q(alice, 7));
        if (!(await restart())) {
          t.skip(`${name} has no reopen`);
          return;
        }
        assert.deepEqual(seqs(await enqueueOne({ to: alice, id: newId(), devices: [7] })), [[7, 5, false]]);
      });
    });

    describe('dedup', () => {
      it('answers a retry with the original seqs and does not enqueue it again', async () => {
        const alice = newAci();
        const id = newId();
        await enqueueOne({ to: alice, id, devices: [1, 2] });
        await enqueueOne({ to: alice, id: newId(), devices: [1] });
        assert.deepEqual(seqs(await enqueueOne({ to: alice, id, devices: [1, 2] })), [
          [1, 1, true],
          [2, 1, true],
        ]);
        assert.equal(await store.depth(q(alice, 1)), 2);
        assert.equal(await store.depth(q(alice, 2)), 1);
        assert.deepEqual(await readSeqs(q(alice, 1)), [1, 2]);
        // The retry consumed no seq.
        assert.deepEqual(seqs(await enqueueOne({ to: alice, id: newId(), devices: [2] })), [[2, 2, false]]);
      });

      it('still answers a retry as a duplicate after the envelope was acked and deleted', async () => {
        const alice = newAci();
        const id = newId();
        await enqueueOne({ to: alice, id, devices: [1] });
        assert.equal(await store.ack([{ queue: q(alice, 1), upTo: 1, seqs: [] }]), 1);
        assert.deepEqual(seqs(await enqueueOne({ to: alice, id, devices: [1] })), [[1, 1, true]]);
        assert.equal(await store.depth(q(alice, 1)), 0);
        assert.deepEqual(await readSeqs(q(alice, 1)), []);
      });

      it('refuses the same message id with another body as id-reused, writing nothing of the request', async () => {
        const alice = newAci();
        const id = newId();
        await enqueueOne({ to: alice, id, devices: [1] });
        // Device 3 is new, but the request is all-or-nothing.
        const r = await enqueueOne({ to: alice, id, devices: [1, 3], body: 'another body' });
        assert.deepEqual(r, { status: 'id-reused', deviceIds: [1] });
        assert.equal(await store.depth(q(alice, 3)), 0);
        assert.deepEqual(await readSeqs(q(alice, 1)), [1]);
        assert.deepEqual(seqs(await enqueueOne({ to: alice, id: newId(), devices: [3] })), [[3, 1, false]]);
        // And the original body still dedups.
        assert.deepEqual(seqs(await enqueueOne({ to: alice, id, devices: [1] })), [[1, 1, true]]);
      });

      it('lists every device whose entry has another body', async () => {
        const alice = newAci();
        const id = newId();
        await enqueueOne({ to: alice, id, devices: [1, 2, 5], body: 'one' });
        const r = await enqueueOne({ to: alice, id, devices: [1, 2, 5], body: 'two' });
        assert.equal(r.status, 'id-reused');
        assert.deepEqual([...(r.status === 'id-reused' ? r.deviceIds : [])].sort(), [1, 2, 5]);
      });

      it('enqueues a device added between retries while the others are duplicates', async () => {
        const alice = newAci();
        const id = newId();
        await enqueueOne({ to: alice, id: newId(), devices: [4] });
        await enqueueOne({ to: alice, id, devices: [1] });
        assert.deepEqual(seqs(await enqueueOne({ to: alice, id, devices: [1, 4] })), [
          [1, 1, true],
          [4, 2, false],
        ]);
        assert.deepEqual(await readSeqs(q(alice, 4)), [1, 2]);
      });

      it('keys dedup by destination account and device', async () => {
        const alice = newAci();
        const bob = newAci();
        const id = newId();
        await enqueueOne({ to: alice, id, devices: [1], body: 'same' });
        assert.deepEqual(seqs(await enqueueOne({ to: bob, id, devices: [1], body: 'other' })), [[1, 1, false]]);
        assert.deepEqual(seqs(await enqueueOne({ to: alice, id, devices: [2], body: 'other' })), [[2, 1, false]]);
      });

      it('sees earlier requests of the same batch: a repeat is a duplicate, a changed body id-reused', async () => {
        const alice = newAci();
        const id = newId();
        const [first, again, changed] = await enqueue(
          { to: alice, id, devices: [1] },
          { to: alice, id, devices: [1] },
          { to: alice, id, devices: [1], body: 'changed' },
        );
        assert.deepEqual(seqs(first), [[1, 1, false]]);
        assert.deepEqual(seqs(again), [[1, 1, true]]);
        assert.deepEqual(changed, { status: 'id-reused', deviceIds: [1] });
        assert.deepEqual(await readSeqs(q(alice, 1)), [1]);
      });

      it('forgets a message id at its expiresAt: the id is free again, with a new seq', async () => {
        const alice = newAci();
        const id = newId();
        const expiresAt = clock.now() + HOUR;
        await enqueueOne({ to: alice, id, devices: [1], expiresAt });
        clock.set(expiresAt - 1);
        assert.deepEqual(seqs(await enqueueOne({ to: alice, id, devices: [1], expiresAt })), [[1, 1, true]]);
        clock.set(expiresAt);
        // Not swept yet: the entry is dead all the same, whatever the body.
        assert.deepEqual(seqs(await enqueueOne({ to: alice, id, devices: [1], body: 'new life' })), [[1, 2, false]]);
        const live = await readAll(q(alice, 1));
        assert.deepEqual(live.map((e) => [e.seq, Buffer.from(e.content).toString()]), [[2, 'new life']]);
        // The new entry dedups from now on, and the expired envelope no longer counts.
        assert.deepEqual(seqs(await enqueueOne({ to: alice, id, devices: [1], body: 'new life' })), [[1, 2, true]]);
        assert.equal(await store.depth(q(alice, 1)), 1);
      });

      it('drops the dedup entries of a dropped queue', async () => {
        const alice = newAci();
        const id = newId();
        await enqueueOne({ to: alice, id, devices: [1, 2] });
        await store.dropQueue(q(alice, 1));
        assert.deepEqual(seqs(await enqueueOne({ to: alice, id, devices: [1, 2] })), [
          [1, 2, false],
          [2, 1, true],
        ]);
      });
    });

    describe('queue cap', () => {
      it('refuses a request as queue-full when a device is at its cap, writing nothing of it', async () => {
        const alice = newAci();
        await enqueue({ to: alice, id: newId(), devices: [1] }, { to: alice, id: newId(), devices: [1] });
        const r = await enqueueOne({ to: alice, id: newId(), devices: [1, 2], maxQueueDepth: 2 });
        assert.deepEqual(r, { status: 'queue-full', deviceIds: [1] });
        assert.equal(await store.depth(q(alice, 1)), 2);
        assert.equal(await store.depth(q(alice, 2)), 0);
        assert.deepEqual(seqs(await enqueueOne({ to: alice, id: newId(), devices: [2] })), [[2, 1, false]]);
      });

      it('lists every full device', async () => {
        const alice = newAci();
        await enqueueOne({ to: alice, id: newId(), devices: [1, 2, 3] });
        await enqueueOne({ to: alice, id: newId(), devices: [1, 3] });
        const r = await enqueueOne({ to: alice, id: newId(), devices: [1, 2, 3], maxQueueDepth: 2 });
        assert.equal(r.status, 'queue-full');
        assert.deepEqual([...(r.status === 'queue-full' ? r.deviceIds : [])].sort(), [1, 3]);
      });

      it('allows depth up to the cap exactly', async () => {
        const alice = newAci();
        const results = await enqueue(...Array.from({ length: 4 }, () => ({ to: alice, id: newId(), devices: [1], maxQueueDepth: 3 })));
        assert.deepEqual(results.map((r) => r.status), ['queued', 'queued', 'queued', 'queue-full']);
        assert.equal(await store.depth(q(alice, 1)), 3);
      });

      it('refuses everything with a cap of 0', async () => {
        const alice = newAci();
        assert.deepEqual(await enqueueOne({ to: alice, id: newId(), devices: [1], maxQueueDepth: 0 }), { status: 'queue-full', deviceIds: [1] });
      });

      it('answers a duplicate to a full queue, since it adds nothing', async () => {
        const alice = newAci();
        const id = newId();
        await enqueueOne({ to: alice, id, devices: [1] });
        assert.deepEqual(seqs(await enqueueOne({ to: alice, id, devices: [1], maxQueueDepth: 1 })), [[1, 1, true]]);
      });

      it('makes room again when envelopes are acked', async () => {
        const alice = newAci();
        await enqueueOne({ to: alice, id: newId(), devices: [1] });
        assert.equal((await enqueueOne({ to: alice, id: newId(), devices: [1], maxQueueDepth: 1 })).status, 'queue-full');
        await store.ack([{ queue: q(alice, 1), upTo: 1, seqs: [] }]);
        assert.deepEqual(seqs(await enqueueOne({ to: alice, id: newId(), devices: [1], maxQueueDepth: 1 })), [[1, 2, false]]);
      });

      it('reports id-reused before queue-full', async () => {
        const alice = newAci();
        const id = newId();
        await enqueueOne({ to: alice, id, devices: [1] });
        await enqueueOne({ to: alice, id: newId(), devices: [2] });
        assert.deepEqual(await enqueueOne({ to: alice, id, devices: [1, 2], body: 'x', maxQueueDepth: 1 }), {
          status: 'id-reused',
          deviceIds: [1],
        });
      });
    });

    describe('batches', () => {
      it('answers in request order and keeps one refusal from touching the others', async () => {
        const alice = newAci();
        const bob = newAci();
        const old = newId();
        await enqueueOne({ to: alice, id: old, devices: [1] });
        await enqueueOne({ to: bob, id: newId(), devices: [1] });
        const results = await enqueue(
          { to: alice, id: newId(), devices: [1] },
          { to: alice, id: old, devices: [1], body: 'reused' },
          { to: bob, id: newId(), devices: [1], maxQueueDepth: 1 },
          { to: bob, id: newId(), devices: [2] },
          { to: alice, id: newId(), devices: [1] },
        );
        assert.deepEqual(seqs(results[0]), [[1, 2, false]]);
        assert.deepEqual(results[1], { status: 'id-reused', deviceIds: [1] });
        assert.deepEqual(results[2], { status: 'queue-full', deviceIds: [1] });
        assert.deepEqual(seqs(results[3]), [[2, 1, false]]);
        assert.deepEqual(seqs(results[4]), [[1, 3, false]]);
        assert.deepEqual(await readSeqs(q(alice, 1)), [1, 2, 3]);
        assert.deepEqual(await readSeqs(q(bob, 1)), [1]);
      });

      it('answers an empty batch with no results', async () => {
        assert.deepEqual(await store.enqueue([]), []);
      });

      it('rejects a malformed request and writes nothing of its batch', async () => {
        const alice = newAci();
        const good = request({ to: alice, id: newId(), devices: [1] }, clock.now());
        const twice = request({ to: alice, id: newId(), devices: [2, 2] }, clock.now());
        const badHash = { ...good, messageId: newId(), envelopes: [{ ...good.envelopes[0]!, contentHash: new Uint8Array(15) }] };
        const badId = { ...good, messageId: 'not-hex' as MessageId };
        const none = { ...good, messageId: newId(), envelopes: [] };
        for (const bad of [twice, badHash, badId, none]) {
          await assert.rejects(store.enqueue([good, bad]), (err: unknown) => isEnvelopeStoreError(err, 'INVALID_REQUEST'));
        }
        assert.equal(await store.depth(q(alice, 1)), 0);
        assert.deepEqual(seqs((await store.enqueue([good]))[0]), [[1, 1, false]]);
      });
    });

    describe('read', () => {
      it('returns every field as it was enqueued', async () => {
        const alice = newAci();
        const id = newId();
        const content = randomBytes(3000);
        const req: EnqueueRequest = {
          destination: alice,
          messageId: id,
          source: SENDER,
          timestamp: CONTRACT_T0 - 1234,
          serverTimestamp: CONTRACT_T0 - 7,
          urgent: false,
          expiresAt: CONTRACT_T0 + HOUR,
          maxQueueDepth: 10,
          envelopes: [{ deviceId: 1 as DeviceId, type: 3, content, contentHash: hash16(content) }],
        };
        await store.enqueue([req]);
        const [e, ...rest] = await readAll(q(alice, 1));
        assert.equal(rest.length, 0);
        assert.equal(e!.seq, 1);
        assert.equal(e!.type, 3);
        assert.deepEqual(Buffer.from(e!.messageId), Buffer.from(id, 'hex'));
        assert.deepEqual(e!.source, SENDER);
        assert.equal(e!.timestamp, CONTRACT_T0 - 1234);
        assert.equal(e!.serverTimestamp, CONTRACT_T0 - 7);
        assert.equal(e!.urgent, false);
        assert.deepEqual(Buffer.from(e!.content), content);
      });

      it('returns no source for a sealed-sender envelope', async () => {
        const alice = newAci();
        await enqueueOne({ to: alice, id: newId(), devices: [1], source: null, urgent: true, type: 3 });
        const [e] = await readAll(q(alice, 1));
        assert.equal(e!.source, undefined);
        assert.equal(e!.urgent, true);
      });

      it('reads after a seq, in order, at most limit', async () => {
        const alice = newAci();
        await enqueue(...Array.from({ length: 6 }, () => ({ to: alice, id: newId(), devices: [1] })));
        assert.deepEqual((await store.read(q(alice, 1), 0, 4, clock.now())).map((e) => e.seq), [1, 2, 3, 4]);
        assert.deepEqual((await store.read(q(alice, 1), 4, 4, clock.now())).map((e) => e.seq), [5, 6]);
        assert.deepEqual(await store.read(q(alice, 1), 6, 4, clock.now()), []);
        assert.deepEqual(await store.read(q(alice, 1), 0, 0, clock.now()), []);
        await store.ack([{ queue: q(alice, 1), upTo: 0, seqs: [2, 3] as Seq[] }]);
        assert.deepEqual((await store.read(q(alice, 1), 1, 2, clock.now())).map((e) => e.seq), [4, 5]);
      });

      it('reads only the named queue', async () => {
        const alice = newAci();
        const bob = newAci();
        await enqueueOne({ to: alice, id: newId(), devices: [1, 2] });
        await enqueueOne({ to: bob, id: newId(), devices: [1] });
        assert.equal((await readAll(q(alice, 1))).length, 1);
        assert.equal((await readAll(q(bob, 1))).length, 1);
        assert.deepEqual(await readAll(q(bob, 2)), []);
        assert.deepEqual(await readAll(q(newAci(), 1)), []);
      });

      it('never returns an envelope at or past its expiresAt, also before expire ran', async () => {
        const alice = newAci();
        const now = clock.now();
        await enqueue(
          { to: alice, id: newId(), devices: [1], expiresAt: now + 3 * HOUR },
          { to: alice, id: newId(), devices: [1], expiresAt: now + HOUR },
          { to: alice, id: newId(), devices: [1], expiresAt: now + 2 * HOUR },
        );
        assert.deepEqual((await store.read(q(alice, 1), 0, 10, now + HOUR - 1)).map((e) => e.seq), [1, 2, 3]);
        assert.deepEqual((await store.read(q(alice, 1), 0, 10, now + HOUR)).map((e) => e.seq), [1, 3]);
        assert.deepEqual((await store.read(q(alice, 1), 0, 1, now + 2 * HOUR)).map((e) => e.seq), [1]);
        assert.deepEqual((await store.read(q(alice, 1), 1, 10, now + 2 * HOUR)).map((e) => e.seq), []);
        assert.deepEqual(await store.read(q(alice, 1), 0, 10, now + 3 * HOUR), []);
      });
    });

    describe('ack', () => {
      it('deletes everything up to upTo and nothing after it', async () => {
        const alice = newAci();
        await enqueue(...Array.from({ length: 5 }, () => ({ to: alice, id: newId(), devices: [1] })));
        assert.equal(await store.ack([{ queue: q(alice, 1), upTo: 3, seqs: [] }]), 3);
        assert.deepEqual(await readSeqs(q(alice, 1)), [4, 5]);
        assert.equal(await store.depth(q(alice, 1)), 2);
        assert.equal(await store.ack([{ queue: q(alice, 1), upTo: 3, seqs: [] }]), 0);
      });

      it('deletes listed seqs, counting each deleted envelope once', async () => {
        const alice = newAci();
        await enqueue(...Array.from({ length: 6 }, () => ({ to: alice, id: newId(), devices: [1] })));
        // 2 is covered by upTo, 5 is listed twice, 9 does not exist.
        assert.equal(await store.ack([{ queue: q(alice, 1), upTo: 2, seqs: [2, 5, 5, 9] as Seq[] }]), 3);
        assert.deepEqual(await readSeqs(q(alice, 1)), [3, 4, 6]);
        assert.equal(await store.depth(q(alice, 1)), 3);
      });

      it('deletes only in the named queue', async () => {
        const alice = newAci();
        const bob = newAci();
        await enqueueOne({ to: alice, id: newId(), devices: [1, 2] });
        await enqueueOne({ to: bob, id: newId(), devices: [1] });
        assert.equal(await store.ack([{ queue: q(alice, 1), upTo: 1, seqs: [1] as Seq[] }]), 1);
        assert.deepEqual(await readSeqs(q(alice, 2)), [1]);
        assert.deepEqual(await readSeqs(q(bob, 1)), [1]);
      });

      it('acks many queues in one call and ignores unknown queues', async () => {
        const alice = newAci();
        const bob = newAci();
        await enqueue({ to: alice, id: newId(), devices: [1, 2] }, { to: bob, id: newId(), devices: [1] }, { to: bob, id: newId(), devices: [1] });
        const n = await store.ack([
          { queue: q(alice, 1), upTo: 1, seqs: [] },
          { queue: q(bob, 1), upTo: 0, seqs: [2] as Seq[] },
          { queue: q(newAci(), 1), upTo: 10, seqs: [1] as Seq[] },
          { queue: q(alice, 2), upTo: 0, seqs: [] },
        ]);
        assert.equal(n, 2);
        assert.deepEqual(await readSeqs(q(alice, 2)), [1]);
        assert.deepEqual(await readSeqs(q(bob, 1)), [1]);
        assert.equal(await store.ack([]), 0);
      });

      it('rejects a malformed ack without deleting anything', async () => {
        const alice = newAci();
        await enqueueOne({ to: alice, id: newId(), devices: [1] });
        for (const bad of [{ upTo: -1, seqs: [] }, { upTo: 1.5, seqs: [] }, { upTo: 0, seqs: [0] }]) {
          await assert.rejects(
            store.ack([{ queue: q(alice, 1), upTo: 1, seqs: [] }, { queue: q(alice, 1), ...bad } as never]),
            (err: unknown) => isEnvelopeStoreError(err, 'INVALID_REQUEST'),
          );
        }
        assert.equal(await store.depth(q(alice, 1)), 1);
      });

      it('keeps depth equal to what can be read through enqueues, duplicates, acks and drops', async () => {
        const alice = newAci();
        const ids = Array.from({ length: 20 }, () => newId());
        await enqueue(...ids.map((id) => ({ to: alice, id, devices: [1, 2] })));
        await enqueue(...ids.slice(0, 5).map((id) => ({ to: alice, id, devices: [1, 2] })));
        await store.ack([
          { queue: q(alice, 1), upTo: 4, seqs: [6, 8, 30] as Seq[] },
          { queue: q(alice, 2), upTo: 0, seqs: [1, 20] as Seq[] },
        ]);
        await store.ack([{ queue: q(alice, 1), upTo: 6, seqs: [7] as Seq[] }]);
        for (const d of [1, 2]) assert.equal(await store.depth(q(alice, d)), (await readAll(q(alice, d))).length);
        assert.equal(await store.depth(q(alice, 1)), 12);
        assert.equal(await store.depth(q(alice, 2)), 18);
        assert.equal(await store.depth(q(newAci(), 1)), 0);
      });
    });

    describe('expiry', () => {
      it('deletes expired envelopes and dedup entries, keeps the rest, and keeps depth exact', async () => {
        const alice = newAci();
        const now = clock.now();
        const acked = newId();
        await enqueue(
          { to: alice, id: acked, devices: [1], expiresAt: now + HOUR },
          { to: alice, id: newId(), devices: [1, 2], expiresAt: now + HOUR },
          { to: alice, id: newId(), devices: [1], expiresAt: now + 2 * HOUR },
        );
        await store.ack([{ queue: q(alice, 1), upTo: 1, seqs: [] }]);
        assert.deepEqual(await store.expire(now + HOUR - 1, 100), { envelopes: 0, dedup: 0 });
        // The acked envelope's dedup entry goes too: 3 entries, 2 envelopes.
        assert.deepEqual(await store.expire(now + HOUR, 100), { envelopes: 2, dedup: 3 });
        assert.equal(await store.depth(q(alice, 1)), 1);
        assert.equal(await store.depth(q(alice, 2)), 0);
        assert.deepEqual((await store.read(q(alice, 1), 0, 10, now)).map((e) => e.seq), [3]);
        // The message id is free again after expiry, and seqs still never go back.
        clock.set(now + HOUR);
        assert.deepEqual(seqs(await enqueueOne({ to: alice, id: acked, devices: [1], body: 'fresh' })), [[1, 4, false]]);
      });

      it('deletes at most limit rows of each kind per call', async () => {
        const alice = newAci();
        const now = clock.now();
        await enqueue(...Array.from({ length: 7 }, () => ({ to: alice, id: newId(), devices: [1], expiresAt: now + 10 })));
        const later = now + 10;
        assert.deepEqual(await store.expire(later, 3), { envelopes: 3, dedup: 3 });
        assert.deepEqual(await store.expire(later, 3), { envelopes: 3, dedup: 3 });
        assert.deepEqual(await store.expire(later, 3), { envelopes: 1, dedup: 1 });
        assert.deepEqual(await store.expire(later, 3), { envelopes: 0, dedup: 0 });
        assert.equal(await store.depth(q(alice, 1)), 0);
        assert.deepEqual(await store.expire(later, 0), { envelopes: 0, dedup: 0 });
      });
    });

    describe('shared bodies (multi-recipient sends)', () => {
      const multi = (spec: MultiSpec) => store.enqueue(multiRequests(spec, clock.now()));
      const usage = async () => (store.sharedBodyUsage ? store.sharedBodyUsage() : undefined);
      const joined = (header: Uint8Array, body: Uint8Array) => new Uint8Array(Buffer.concat([header, body]));

      it('returns header \u2016 body to every device of every recipient and stores the body once', async () => {
        const [alice, bob, carol] = [newAci(), newAci(), newAci()];
        const body = new Uint8Array(randomBytes(3000));
        const spec: MultiSpec = { recipients: [{ to: alice, devices: [1, 2] }, { to: bob, devices: [1] }, { to: carol, devices: [3] }], id: newId(), body };
        const results = await multi(spec);
        assert.deepEqual(results.map(seqs), [[[1, 1, false], [2, 1, false]], [[1, 1, false]], [[3, 1, false]]]);
        for (const [to, device] of [[alice, 1], [alice, 2], [bob, 1], [carol, 3]] as const) {
          const [e] = await readAll(q(to, device));
          assert.ok(e, `${to}.${device} has its envelope`);
          assert.deepEqual(new Uint8Array(e.content), joined(headerOf(spec, to), body));
          assert.equal(e.type, 3);
          assert.equal(e.source, undefined);
        }
        const u = await usage();
        if (u) assert.deepEqual(u, { bodies: 1, bytes: body.length });
      });

      it('keeps a body while any envelope refers to it and deletes it with the last ack', async () => {
        const [alice, bob] = [newAci(), newAci()];
        const body = new Uint8Array(randomBytes(500));
        const spec: MultiSpec = { recipients: [{ to: alice, devices: [1, 2] }, { to: bob, devices: [1] }], id: newId(), body };
        await multi(spec);
        await store.ack([{ queue: q(alice, 1), upTo: 1, seqs: [] }, { queue: q(alice, 2), upTo: 1, seqs: [] }]);
        const [left] = await readAll(q(bob, 1));
        assert.deepEqual(new Uint8Array(left!.content), joined(headerOf(spec, bob), body), 'acks of other devices leave the body');
        assert.deepEqual(await usage() ?? { bodies: 1, bytes: body.length }, { bodies: 1, bytes: body.length });
        await store.ack([{ queue: q(bob, 1), upTo: 0, seqs: [1 as Seq] }]);
        assert.deepEqual(await usage() ?? { bodies: 0, bytes: 0 }, { bodies: 0, bytes: 0 });
      });

      it('deletes a body when its last envelope expires or its last queue is dropped', async () => {
        const [alice, bob] = [newAci(), newAci()];
        const now = clock.now();
        const first = new Uint8Array(randomBytes(100));
        const second = new Uint8Array(randomBytes(200));
        await multi({ recipients: [{ to: alice, devices: [1] }, { to: bob, devices: [1] }], id: newId(), body: first, expiresAt: now + HOUR });
        await multi({ recipients: [{ to: alice, devices: [1] }], id: newId(), body: second, group: 2 });
        assert.deepEqual(await usage() ?? { bodies: 2, bytes: 300 }, { bodies: 2, bytes: 300 });
        assert.deepEqual(await store.expire(now + HOUR, 100), { envelopes: 2, dedup: 2 });
        assert.deepEqual(await usage() ?? { bodies: 1, bytes: 200 }, { bodies: 1, bytes: 200 });
        assert.deepEqual(new Uint8Array((await readAll(q(alice, 1)))[0]!.content).subarray(-200), second);
        await store.dropQueue(q(alice, 1));
        assert.deepEqual(await usage() ?? { bodies: 0, bytes: 0 }, { bodies: 0, bytes: 0 });
      });

      it('answers a retry of the whole send as duplicates and stores nothing twice', async () => {
        const [alice, bob] = [newAci(), newAci()];
        const body = new Uint8Array(randomBytes(800));
        const spec: MultiSpec = { recipients: [{ to: alice, devices: [1] }, { to: bob, devices: [1, 2] }], id: newId(), body };
        const first = (await multi(spec)).map(seqs);
        const again = (await multi({ ...spec, group: 7 })).map(seqs);
        assert.deepEqual(again, first.map((r) => r.map(([d, seq]) => [d, seq, true])));
        assert.equal(await store.depth(q(bob, 2)), 1);
        assert.deepEqual(await usage() ?? { bodies: 1, bytes: 800 }, { bodies: 1, bytes: 800 });
        await store.ack([{ queue: q(alice, 1), upTo: 1, seqs: [] }, { queue: q(bob, 1), upTo: 1, seqs: [] }, { queue: q(bob, 2), upTo: 1, seqs: [] }]);
        assert.deepEqual(await usage() ?? { bodies: 0, bytes: 0 }, { bodies: 0, bytes: 0 }, 'the retry left no body behind');
      });

      it('refuses the whole group as id-reused when one recipient had the id with another part, writing nothing', async () => {
        const [alice, bob, carol] = [newAci(), newAci(), newAci()];
        const id = newId();
        await enqueueOne({ to: bob, id, devices: [1] });
        const results = await multi({ recipients: [{ to: alice, devices: [1] }, { to: bob, devices: [1] }, { to: carol, devices: [1, 2] }], id, body: new Uint8Array(randomBytes(64)) });
        assert.deepEqual(results, [
          { status: 'id-reused', deviceIds: [] },
          { status: 'id-reused', deviceIds: [1] },
          { status: 'id-reused', deviceIds: [] },
        ]);
        for (const queue of [q(alice, 1), q(carol, 1), q(carol, 2)]) assert.equal(await store.depth(queue), 0);
        assert.equal(await store.depth(q(bob, 1)), 1);
        assert.deepEqual(await usage() ?? { bodies: 0, bytes: 0 }, { bodies: 0, bytes: 0 });
        // The same message id with another body is id-reused too: the hash covers the body.
        const body = new Uint8Array(randomBytes(64));
        const spec: MultiSpec = { recipients: [{ to: alice, devices: [1] }, { to: carol, devices: [1] }], id: newId(), body, group: 2 };
        await multi(spec);
        const changed = await multi({ ...spec, body: new Uint8Array(randomBytes(64)), group: 3 });
        assert.deepEqual(changed.map((r) => r.status), ['id-reused', 'id-reused']);
      });

      it('refuses a full recipient as queue-full and queues the group\u2019s other recipients', async () => {
        const [alice, bob] = [newAci(), newAci()];
        await enqueue({ to: bob, id: newId(), devices: [2] }, { to: bob, id: newId(), devices: [2] });
        const body = new Uint8Array(randomBytes(64));
        const results = await multi({ recipients: [{ to: alice, devices: [1] }, { to: bob, devices: [1, 2] }], id: newId(), body, maxQueueDepth: 2 });
        assert.deepEqual(seqs(results[0]), [[1, 1, false]]);
        assert.deepEqual(results[1], { status: 'queue-full', deviceIds: [2] });
        assert.equal(await store.depth(q(bob, 1)), 0);
        assert.deepEqual(await usage() ?? { bodies: 1, bytes: 64 }, { bodies: 1, bytes: 64 });
      });

      it('judges a group apart from the requests around it in the batch', async () => {
        const [alice, bob] = [newAci(), newAci()];
        const id = newId();
        const now = clock.now();
        const results = await store.enqueue([
          request({ to: alice, id: newId(), devices: [1] }, now),
          ...multiRequests({ recipients: [{ to: alice, devices: [1] }, { to: bob, devices: [1] }], id, body: new Uint8Array(randomBytes(10)), group: 4 }, now),
          ...multiRequests({ recipients: [{ to: bob, devices: [1] }], id, body: new Uint8Array(randomBytes(10)), group: 5 }, now),
          request({ to: bob, id: newId(), devices: [1] }, now),
        ]);
        assert.deepEqual(results.map((r) => r.status), ['queued', 'queued', 'queued', 'id-reused', 'queued']);
        assert.deepEqual(await readSeqs(q(bob, 1)), [1, 2]);
      });

      it('keeps the body when an expired entry of the same send is replaced by a new envelope naming it', async () => {
        const alice = newAci();
        const now = clock.now();
        const body = new Uint8Array(randomBytes(300));
        const spec: MultiSpec = { recipients: [{ to: alice, devices: [1] }], id: newId(), body, expiresAt: now + HOUR };
        await multi(spec);
        clock.set(now + HOUR);
        // Not swept yet: enqueue deletes the expired envelope, which named the same body.
        assert.deepEqual(seqs((await multi({ ...spec, expiresAt: now + 3 * HOUR, group: 2 }))[0]), [[1, 2, false]]);
        const [e] = await store.read(q(alice, 1), 0, 10, clock.now());
        assert.deepEqual(new Uint8Array(e!.content), joined(headerOf(spec, alice), body));
        assert.deepEqual(await usage() ?? { bodies: 1, bytes: 300 }, { bodies: 1, bytes: 300 });
      });

      it('keeps shared bodies across a close and reopen', async (t) => {
        const [alice, bob] = [newAci(), newAci()];
        const body = new Uint8Array(randomBytes(1000));
        const spec: MultiSpec = { recipients: [{ to: alice, devices: [1] }, { to: bob, devices: [1] }], id: newId(), body };
        await multi(spec);
        if (!(await restart())) return t.skip('this adapter\u2019s data does not outlive a store');
        assert.deepEqual(new Uint8Array((await readAll(q(bob, 1)))[0]!.content), joined(headerOf(spec, bob), body));
        assert.deepEqual(seqs((await multi({ ...spec, group: 9 }))[0]), [[1, 1, true]]);
      });

      it('rejects malformed shared bodies and groups and writes nothing of the batch', async () => {
        const [alice, bob] = [newAci(), newAci()];
        const now = clock.now();
        const good = multiRequests({ recipients: [{ to: alice, devices: [1] }, { to: bob, devices: [1] }], id: newId(), body: new Uint8Array(randomBytes(10)) }, now);
        const other = request({ to: alice, id: newId(), devices: [2] }, now);
        const bad: EnqueueRequest[][] = [
          [{ ...good[0]!, sharedBody: { id: new Uint8Array(16), bytes: new Uint8Array(4) } }],
          [{ ...good[0]!, sharedBody: { id: new Uint8Array(32), bytes: new Uint8Array(0) } }],
          [{ ...good[0]!, group: 0 }],
          [{ ...good[0]!, group: 1.5 }],
          [good[0]!, other, good[1]!],
          [good[0]!, { ...good[1]!, destination: alice }],
        ];
        for (const batch of bad) {
          await assert.rejects(store.enqueue([other, ...batch]), (err: unknown) => isEnvelopeStoreError(err, 'INVALID_REQUEST'));
        }
        for (const queue of [q(alice, 1), q(alice, 2), q(bob, 1)]) assert.equal(await store.depth(queue), 0);
      });
    });

    describe('dropQueue', () => {
      it('drops one device queue and leaves every other alone', async () => {
        const alice = newAci();
        const bob = newAci();
        await enqueue({ to: alice, id: newId(), devices: [1, 2] }, { to: alice, id: newId(), devices: [1] }, { to: bob, id: newId(), devices: [1] });
        await store.dropQueue(q(alice, 1));
        assert.equal(await store.depth(q(alice, 1)), 0);
        assert.deepEqual(await readSeqs(q(alice, 1)), []);
        assert.deepEqual(await readSeqs(q(alice, 2)), [1]);
        assert.deepEqual(await readSeqs(q(bob, 1)), [1]);
        await store.dropQueue(q(newAci(), 9));
        await store.dropQueue(q(alice, 1));
      });
    });

    describe('close', () => {
      it('refuses calls after close with STORE_CLOSED, and closing twice is fine', async () => {
        await store.close();
        await store.close();
        const closed = (err: unknown) => isEnvelopeStoreError(err, 'STORE_CLOSED');
        await assert.rejects(store.enqueue([request({ to: newAci(), id: newId(), devices: [1] }, clock.now())]), closed);
        await assert.rejects(store.read(q(newAci(), 1), 0, 1, clock.now()), closed);
        await assert.rejects(store.ack([]), closed);
        await assert.rejects(store.depth(q(newAci(), 1)), closed);
        await assert.rejects(store.dropQueue(q(newAci(), 1)), closed);
        await assert.rejects(store.expire(clock.now(), 1), closed);
      });
    });
  });
}
