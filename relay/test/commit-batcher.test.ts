// SPDX-License-Identifier: AGPL-3.0-only
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isParleyError } from '@parley/protocol';
import { CommitBatcher } from '../src/commit-batcher.js';

describe('CommitBatcher', () => {
  it('commits everything submitted in one event-loop turn as one batch, results in order', async () => {
    const batches: number[][] = [];
    const b = new CommitBatcher<number, number>({
      flush: async (items) => {
        batches.push([...items]);
        return items.map((i) => i * 10);
      },
      maxBatch: 100,
      maxPending: 1000,
    });
    const results = await Promise.all([1, 2, 3, 4].map((i) => b.submit(i)));
    assert.deepEqual(results, [10, 20, 30, 40]);
    assert.deepEqual(batches, [[1, 2, 3, 4]]);
  });

  it('splits at maxBatch and forms the next batch from what arrived during a flush', async () => {
    const batches: number[][] = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const b = new CommitBatcher<number, number>({
      flush: async (items) => {
        batches.push([...items]);
        if (batches.length === 1) await gate;
        return [...items];
      },
      maxBatch: 2,
      maxPending: 1000,
    });
    const first = [1, 2, 3].map((i) => b.submit(i));
    await new Promise((r) => setImmediate(r));
    const late = [4, 5].map((i) => b.submit(i));
    release();
    assert.deepEqual(await Promise.all([...first, ...late]), [1, 2, 3, 4, 5]);
    assert.deepEqual(batches, [[1, 2], [3, 4], [5]]);
  });

  it('rejects every item of a failed batch and keeps working', async () => {
    let fail = true;
    const b = new CommitBatcher<number, number>({
      flush: async (items) => {
        if (fail) throw new Error('disk full');
        return [...items];
      },
      maxBatch: 10,
      maxPending: 10,
    });
    const r = await Promise.allSettled([b.submit(1), b.submit(2)]);
    assert.deepEqual(r.map((x) => x.status), ['rejected', 'rejected']);
    fail = false;
    assert.equal(await b.submit(3), 3);
  });

  it('refuses submissions past maxPending with RATE_LIMITED instead of growing', async () => {
    const b = new CommitBatcher<number, number>({ flush: async (items) => [...items], maxBatch: 10, maxPending: 3 });
    const ok = [1, 2, 3].map((i) => b.submit(i));
    await assert.rejects(b.submit(4), (e) => isParleyError(e, 'RATE_LIMITED'));
    assert.deepEqual(await Promise.all(ok), [1, 2, 3]);
    await b.idle();
    assert.equal(b.pending, 0);
  });
});

describe('CommitBatcher groups', () => {
  it('flushes the items of one submitAll together, next to each other, also past maxBatch', async () => {
    const batches: number[][] = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const b = new CommitBatcher<number, number>({
      flush: async (items) => {
        batches.push([...items]);
        if (batches.length === 1) await gate;
        return items.map((i) => -i);
      },
      maxBatch: 3,
      maxPending: 100,
    });
    const first = b.submit(1);
    await new Promise((r) => setImmediate(r));
    const a = b.submit(2);
    const group = b.submitAll([10, 11, 12, 13]);
    const c = b.submit(3);
    const d = b.submitAll([20, 21]);
    release();
    assert.deepEqual(await group, [-10, -11, -12, -13]);
    assert.deepEqual(await d, [-20, -21]);
    assert.deepEqual(await Promise.all([first, a, c]), [-1, -2, -3]);
    // [2] cannot take the group of 4 along; the group goes alone since it is over maxBatch.
    assert.deepEqual(batches, [[1], [2], [10, 11, 12, 13], [3, 20, 21]]);
    assert.equal(b.pending, 0);
  });

  it('refuses a whole group that would pass maxPending and keeps nothing of it', async () => {
    const b = new CommitBatcher<number, number>({ flush: async (items) => [...items], maxBatch: 10, maxPending: 4 });
    const ok = b.submitAll([1, 2, 3]);
    await assert.rejects(b.submitAll([4, 5]), (e) => isParleyError(e, 'RATE_LIMITED'));
    assert.equal(b.pending, 3);
    assert.deepEqual(await ok, [1, 2, 3]);
    assert.deepEqual(await b.submitAll([]), []);
  });

  it('rejects every item of a group whose batch failed', async () => {
    const b = new CommitBatcher<number, number>({
      flush: async () => {
        throw new Error('disk full');
      },
      maxBatch: 10,
      maxPending: 10,
    });
    await assert.rejects(b.submitAll([1, 2]), /disk full/);
  });
});
