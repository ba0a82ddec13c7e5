// SPDX-License-Identifier: AGPL-3.0-only
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decodeClientFrame, decodeFrame, encodeFrame, isParleyError, PresenceState, type ErrorCode, type Frame } from '../src/index.js';

/** Literal byte fixtures: what a relay must answer to each. */
const BAD_FRAMES: ReadonlyArray<{ name: string; bytes: Uint8Array; code: ErrorCode }> = [
  // field 1 (send), wire type 2, length 10, but only 2 bytes follow
  { name: 'truncated length-delimited field', bytes: Uint8Array.of(0x0a, 0x0a, 0x08, 0x01), code: 'BAD_FRAME' },
  // a varint that never ends
  { name: 'unterminated varint', bytes: Uint8Array.of(0x08, 0xff, 0xff, 0xff), code: 'BAD_FRAME' },
  // wire type 7 does not exist
  { name: 'invalid wire type', bytes: Uint8Array.of(0x0f, 0x00), code: 'BAD_FRAME' },
  // field 0 is invalid in protobuf
  { name: 'field number zero', bytes: Uint8Array.of(0x02, 0x00), code: 'BAD_FRAME' },
  { name: 'empty message', bytes: new Uint8Array(0), code: 'UNKNOWN_FRAME' },
  // field 15 (unknown kind), length 0
  { name: 'unknown frame kind', bytes: Uint8Array.of(0x7a, 0x00), code: 'UNKNOWN_FRAME' },
];

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return isParleyError(err) ? err.code : `untyped: ${String(err)}`;
  }
  return undefined;
}

describe('frame codec', () => {
  for (const { name, bytes, code } of BAD_FRAMES) {
    it(`refuses ${name} with ${code}`, () => {
      assert.equal(codeOf(() => decodeFrame(bytes)), code);
    });
  }

  it('round-trips every client and relay frame kind', () => {
    const frames: Frame['kind'][] = [];
    const inits = [
      { kind: { case: 'ping' as const, value: { nonce: 7 } } },
      { kind: { case: 'ack' as const, value: { upTo: 5n, seqs: [7n, 9n] } } },
      {
        kind: {
          case: 'send' as const,
          value: {
            requestId: 3,
            destination: new Uint8Array(16).fill(1),
            messageId: new Uint8Array(16).fill(2),
            timestamp: 1_700_000_000_000n,
            messages: [{ deviceId: 1, registrationId: 42, type: 1, content: Uint8Array.of(1, 2, 3) }],
          },
        },
      },
      { kind: { case: 'queueDrained' as const, value: { lastSeq: 12n } } },
      { kind: { case: 'error' as const, value: { requestId: 3, code: 'STALE_DEVICES', staleDevices: [2] } } },
    ];
    for (const init of inits) {
      const decoded = decodeFrame(encodeFrame(init));
      assert.equal(decoded.kind.case, init.kind.case);
      frames.push(decoded.kind);
    }
    const send = frames[2];
    assert.equal(send?.case, 'send');
    if (send?.case === 'send') {
      assert.deepEqual([...send.value.messages[0]!.content], [1, 2, 3]);
      assert.equal(send.value.timestamp, 1_700_000_000_000n);
    }
  });

  it('refuses a frame over the size limit before decoding it', () => {
    const big = encodeFrame({ kind: { case: 'ping', value: { nonce: 1 } } });
    assert.equal(codeOf(() => decodeFrame(big, big.length - 1)), 'FRAME_TOO_LARGE');
    assert.equal(codeOf(() => decodeFrame(big, big.length)), undefined);
  });

  it('refuses relay-only frame kinds from a client', () => {
    const bytes = encodeFrame({ kind: { case: 'deliver', value: { envelopes: [] } } });
    assert.equal(codeOf(() => decodeClientFrame(bytes)), 'UNKNOWN_FRAME');
    assert.equal(codeOf(() => decodeFrame(bytes)), undefined);
    for (const relayOnly of [
      encodeFrame({ kind: { case: 'presenceUpdate', value: { aci: new Uint8Array(16), state: PresenceState.ONLINE } } }),
      encodeFrame({ kind: { case: 'presenceSubscribeResult', value: { requestId: 1 } } }),
    ]) {
      assert.equal(codeOf(() => decodeClientFrame(relayOnly)), 'UNKNOWN_FRAME');
    }
  });

  it('takes presence frames from a client', () => {
    const subscribe = encodeFrame({
      kind: { case: 'presenceSubscribe', value: { requestId: 7, targets: [{ aci: new Uint8Array(16).fill(1), token: new Uint8Array(32).fill(2) }] } },
    });
    const decoded = decodeClientFrame(subscribe);
    assert.equal(decoded.kind.case, 'presenceSubscribe');
    if (decoded.kind.case === 'presenceSubscribe') {
      assert.equal(decoded.kind.value.requestId, 7);
      assert.deepEqual([...decoded.kind.value.targets[0]!.token], new Array(32).fill(2));
    }
    const set = decodeClientFrame(encodeFrame({ kind: { case: 'presenceSet', value: { state: PresenceState.AWAY } } }));
    assert.equal(set.kind.case === 'presenceSet' && set.kind.value.state, PresenceState.AWAY);
  });
});
