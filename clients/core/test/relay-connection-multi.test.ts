// SPDX-License-Identifier: AGPL-3.0-only
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { aciToBytes, decodeClientFrame, encodeFrame, isParleyError, type Aci } from '@parley/protocol';
import { WebSocketServer, type WebSocket } from 'ws';
import { RelayConnection } from '../src/transport/relay-connection.js';
import { TransportError } from '../src/transport/transport-error.js';

const BOB = '11111111-2222-4333-8444-555555555555' as Aci;

/** A relay stand-in that answers SendMulti frames as `answer` says. */
describe('RelayConnection.sendMulti', () => {
  let server: WebSocketServer;
  let url: string;
  let answer: (requestId: number, socket: WebSocket) => void = () => undefined;
  let received: Uint8Array[] = [];

  before(async () => {
    server = new WebSocketServer({ port: 0, host: '127.0.0.1' });
    await new Promise<void>((r) => server.once('listening', () => r()));
    url = `ws://127.0.0.1:${(server.address() as AddressInfo).port}/v1/websocket`;
    server.on('connection', (socket) => {
      socket.on('message', (data: Buffer) => {
        const frame = decodeClientFrame(new Uint8Array(data));
        if (frame.kind.case !== 'sendMulti') return;
        received.push(frame.kind.value.payload);
        answer(frame.kind.value.requestId, socket);
      });
    });
  });
  after(() => new Promise<void>((r) => server.close(() => r())));

  const connect = async (): Promise<RelayConnection> => {
    const c = new RelayConnection({ url, authorization: () => 'Basic x', onEnvelopes: async () => undefined, sendTimeoutMs: 2000 });
    c.start();
    await c.waitConnected(5000);
    return c;
  };

  it('resolves with the relay’s SendMultiResult for that request', async () => {
    received = [];
    answer = (requestId, socket) =>
      socket.send(
        encodeFrame({
          kind: { case: 'sendMultiResult', value: { requestId, duplicate: false, recipients: [{ aci: aciToBytes(BOB), devices: [{ deviceId: 1, seq: 7n }] }], fullRecipients: [] } },
        }),
      );
    const c = await connect();
    try {
      const r = await c.sendMulti({ messageId: new Uint8Array(16), timestamp: 1n, urgent: true, payload: new Uint8Array([1, 2, 3]) });
      assert.equal(r.recipients[0]!.devices[0]!.seq, 7n);
      assert.deepEqual(received, [new Uint8Array([1, 2, 3])]);
    } finally {
      await c.stop();
    }
  });

  it('turns a per-recipient device-set refusal into ParleyError details', async () => {
    answer = (requestId, socket) =>
      socket.send(
        encodeFrame({
          kind: {
            case: 'error',
            value: {
              requestId,
              code: 'MISMATCHED_DEVICES',
              message: 'x',
              recipients: [
                { aci: aciToBytes(BOB), missingDevices: [3], extraDevices: [2], staleDevices: [] },
                { aci: new Uint8Array(3), missingDevices: [1], extraDevices: [], staleDevices: [] },
              ],
            },
          },
        }),
      );
    const c = await connect();
    try {
      await assert.rejects(
        c.sendMulti({ messageId: new Uint8Array(16), timestamp: 1n, urgent: true, payload: new Uint8Array([1]) }),
        (e: unknown) => {
          assert.ok(isParleyError(e, 'MISMATCHED_DEVICES'));
          assert.deepEqual(e.details.recipients, [{ aci: BOB, missingDevices: [3], extraDevices: [2], staleDevices: [] }]);
          return true;
        },
      );
    } finally {
      await c.stop();
    }
  });

  it('fails with a TransportError when the connection drops before the answer', async () => {
    answer = (_id, socket) => socket.terminate();
    const c = await connect();
    try {
      await assert.rejects(c.sendMulti({ messageId: new Uint8Array(16), timestamp: 1n, urgent: true, payload: new Uint8Array([1]) }), (e) => e instanceof TransportError);
    } finally {
      await c.stop();
    }
  });
});
