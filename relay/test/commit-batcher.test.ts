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
