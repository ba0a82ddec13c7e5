// SPDX-License-Identifier: AGPL-3.0-only
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { create, isParleyError, LIMITS, SendMultiSchema, validateSendMulti, type SendMulti } from '../src/index.js';

const NOW = 1_800_000_000_000;

function sendMulti(overrides: Partial<Record<keyof SendMulti, unknown>> = {}): SendMulti {
  return create(SendMultiSchema, {
    requestId: 7,
    messageId: new Uint8Array(16).fill(0xcd),
    timestamp: BigInt(NOW),
    payload: Uint8Array.of(0x22, 1, 2, 3),
    ...(overrides as object),
  });
}

function codeOf(s: SendMulti, maxPayloadBytes: number = LIMITS.maxMultiPayloadBytes): string | undefined {
  try {
    validateSendMulti(s, NOW, { maxPayloadBytes, maxClockSkewMs: LIMITS.maxClockSkewMs });
  } catch (err) {
    return isParleyError(err) ? err.code : 'untyped';
  }
  return undefined;
}

describe('validateSendMulti', () => {
  it('accepts a well-formed SendMulti with or without a 16-byte combined access key', () => {
    const v = validateSendMulti(sendMulti(), NOW);
    assert.equal(v.messageId, 'cd'.repeat(16));
    assert.equal(v.combinedAccessKey.length, 0);
    assert.equal(validateSendMulti(sendMulti({ combinedAccessKey: new Uint8Array(16) }), NOW).combinedAccessKey.length, 16);
  });

  const cases: Array<[string, Partial<Record<keyof SendMulti, unknown>>, string]> = [
    ['request id 0', { requestId: 0 }, 'BAD_REQUEST'],
    ['a 15-byte message id', { messageId: new Uint8Array(15) }, 'BAD_REQUEST'],
    ['timestamp 0', { timestamp: 0n }, 'BAD_REQUEST'],
    ['a timestamp past 2^53', { timestamp: 1n << 60n }, 'BAD_REQUEST'],
    ['a timestamp more than a day ahead', { timestamp: BigInt(NOW + LIMITS.maxClockSkewMs + 1) }, 'BAD_REQUEST'],
    ['an empty payload', { payload: new Uint8Array(0) }, 'BAD_REQUEST'],
    ['a 15-byte combined access key', { combinedAccessKey: new Uint8Array(15) }, 'BAD_REQUEST'],
    ['a 32-byte combined access key', { combinedAccessKey: new Uint8Array(32) }, 'BAD_REQUEST'],
  ];
  for (const [what, overrides, code] of cases) {
    it(`refuses ${what} with ${code}`, () => assert.equal(codeOf(sendMulti(overrides)), code));
  }

  it('refuses a payload one byte over the cap with FRAME_TOO_LARGE and takes one at the cap', () => {
    assert.equal(codeOf(sendMulti({ payload: new Uint8Array(100) }), 100), undefined);
    assert.equal(codeOf(sendMulti({ payload: new Uint8Array(101) }), 100), 'FRAME_TOO_LARGE');
  });
});
