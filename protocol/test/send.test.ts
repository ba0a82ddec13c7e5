// SPDX-License-Identifier: AGPL-3.0-only
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { create, EnvelopeType, isParleyError, LIMITS, SendSchema, validateSend, type Send } from '../src/index.js';

const NOW = 1_800_000_000_000;

function send(overrides: Partial<Record<keyof Send, unknown>> = {}): Send {
  return create(SendSchema, {
    requestId: 1,
    destination: new Uint8Array(16).fill(0xab),
    messageId: new Uint8Array(16).fill(0xcd),
    timestamp: BigInt(NOW),
    messages: [
      { deviceId: 2, registrationId: 9, type: EnvelopeType.CIPHERTEXT, content: Uint8Array.of(1) },
      { deviceId: 1, registrationId: 8, type: EnvelopeType.PREKEY, content: Uint8Array.of(2) },
    ],
    ...(overrides as object),
  });
}

function codeOf(s: Send): string | undefined {
  try {
    validateSend(s, NOW);
  } catch (err) {
    return isParleyError(err) ? err.code : 'untyped';
  }
  return undefined;
}

describe('validateSend', () => {
  it('accepts a well-formed send and sorts devices', () => {
    const v = validateSend(send(), NOW);
    assert.equal(v.destination, 'abababab-abab-abab-abab-abababababab');
    assert.equal(v.messageId, 'cd'.repeat(16));
    assert.deepEqual(v.messages.map((m) => m.deviceId), [1, 2]);
    assert.equal(v.timestamp, NOW);
  });

  const cases: Array<[string, Partial<Record<keyof Send, unknown>>, string]> = [
    ['zero request id', { requestId: 0 }, 'BAD_REQUEST'],
    ['short destination', { destination: new Uint8Array(15) }, 'BAD_REQUEST'],
    ['long message id', { messageId: new Uint8Array(17) }, 'BAD_REQUEST'],
    ['zero timestamp', { timestamp: 0n }, 'BAD_REQUEST'],
    ['timestamp past the safe integer range', { timestamp: 2n ** 63n }, 'BAD_REQUEST'],
    ['timestamp a week ahead', { timestamp: BigInt(NOW + 7 * 24 * 3600 * 1000) }, 'BAD_REQUEST'],
    ['empty device list', { messages: [] }, 'BAD_REQUEST'],
    ['duplicate device', { messages: [{ deviceId: 1, registrationId: 1, type: 1, content: Uint8Array.of(1) }, { deviceId: 1, registrationId: 1, type: 1, content: Uint8Array.of(1) }] }, 'BAD_REQUEST'],
    ['device id 0', { messages: [{ deviceId: 0, registrationId: 1, type: 1, content: Uint8Array.of(1) }] }, 'BAD_REQUEST'],
    ['device id 128', { messages: [{ deviceId: 128, registrationId: 1, type: 1, content: Uint8Array.of(1) }] }, 'BAD_REQUEST'],
    ['registration id 0', { messages: [{ deviceId: 1, registrationId: 0, type: 1, content: Uint8Array.of(1) }] }, 'BAD_REQUEST'],
    ['registration id over 14 bits', { messages: [{ deviceId: 1, registrationId: 0x4000, type: 1, content: Uint8Array.of(1) }] }, 'BAD_REQUEST'],
    ['unspecified type', { messages: [{ deviceId: 1, registrationId: 1, type: 0, content: Uint8Array.of(1) }] }, 'BAD_REQUEST'],
    ['empty content', { messages: [{ deviceId: 1, registrationId: 1, type: 1, content: new Uint8Array(0) }] }, 'BAD_REQUEST'],
    ['oversize content', { messages: [{ deviceId: 1, registrationId: 1, type: 1, content: new Uint8Array(LIMITS.maxEnvelopeBytes + 1) }] }, 'FRAME_TOO_LARGE'],
    ['bad domain', { destinationDomain: 'no spaces allowed' }, 'BAD_REQUEST'],
  ];
  for (const [name, overrides, code] of cases) {
    it(`refuses ${name} with ${code}`, () => assert.equal(codeOf(send(overrides)), code));
  }

  it('accepts exactly the maximum number of devices and refuses one more', () => {
    const many = (n: number) =>
      Array.from({ length: n }, (_, i) => ({ deviceId: i + 1, registrationId: 1, type: 1, content: Uint8Array.of(1) }));
    assert.equal(codeOf(send({ messages: many(LIMITS.maxDevicesPerSend) })), undefined);
    assert.equal(codeOf(send({ messages: many(LIMITS.maxDevicesPerSend + 1) })), 'BAD_REQUEST');
  });
});
