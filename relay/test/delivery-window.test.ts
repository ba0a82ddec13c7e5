// SPDX-License-Identifier: AGPL-3.0-only
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isParleyError } from '@parley/protocol';
import { DeliveryWindow } from '../src/delivery-window.js';

function windowWith(...seqs: number[]): DeliveryWindow {
  const w = new DeliveryWindow();
  for (const s of seqs) w.delivered(s);
  return w;
}

describe('DeliveryWindow', () => {
  it('counts delivered envelopes until they are acked cumulatively', () => {
    const w = windowWith(1, 2, 3, 4);
    assert.equal(w.inFlight, 4);
    w.apply(2, []);
    assert.equal(w.inFlight, 2);
    w.apply(4, []);
    assert.equal(w.inFlight, 0);
  });

  it('applies selective acks and folds them in when the cumulative ack passes', () => {
    const w = windowWith(5, 6, 7, 9);
    w.apply(0, [7, 9]);
    assert.equal(w.inFlight, 2);
    w.apply(0, [7]); // twice is harmless
    assert.equal(w.inFlight, 2);
    w.apply(6, []);
    assert.equal(w.inFlight, 0);
    w.delivered(10);
    assert.equal(w.inFlight, 1);
  });

  it('pops selectively acked envelopes that reach the front', () => {
    const w = windowWith(1, 2, 3);
    w.apply(0, [1, 2]);
    assert.equal(w.inFlight, 1);
    w.apply(0, [3]);
    assert.equal(w.inFlight, 0);
  });

  it('refuses acks beyond what was delivered without changing anything', () => {
    const w = windowWith(1, 2);
    for (const [upTo, seqs] of [[3, []], [0, [3]], [0, [0]], [1, [2, 99]]] as Array<[number, number[]]>) {
      assert.throws(() => w.check(upTo, seqs), (e) => isParleyError(e, 'BAD_ACK'));
    }
    assert.equal(w.inFlight, 2);
  });

  it('ignores acks for sequence numbers that were skipped (expired) or acked before', () => {
    const w = windowWith(2, 5);
    w.check(0, [3]);
    w.apply(0, [3]);
    assert.equal(w.inFlight, 2);
  });

  it('stays exact over many envelopes with compaction', () => {
    const w = new DeliveryWindow();
    let acked = 0;
    for (let s = 1; s <= 10_000; s++) {
      w.delivered(s);
      if (s % 100 === 0) {
        w.apply(s - 10, [s - 5, s - 3]);
        acked = s - 10 + 2;
      }
    }
    assert.equal(w.inFlight, 10_000 - acked);
    w.apply(10_000, []);
    assert.equal(w.inFlight, 0);
  });
});
