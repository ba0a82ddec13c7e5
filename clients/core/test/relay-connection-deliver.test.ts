// SPDX-License-Identifier: AGPL-3.0-only
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { decodeClientFrame, encodeFrame, type Envelope } from '@parley/protocol';
import { WebSocketServer, type WebSocket } from 'ws';
import { RelayConnection } from '../src/transport/relay-connection.js';

/** A promise with its resolve and reject outside. */
function deferred<T = void>(): { promise: Promise<T>; resolve: (v: T) => void; reject: (e: unknown) => void } {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

const deliverFrame = (seq: number) =>
  encodeFrame({ kind: { case: 'deliver', value: { envelopes: [{ seq: BigInt(seq), messageId: new Uint8Array(16).fill(seq), content: new Uint8Array([seq]) }] } } });

/**
 * Resolves once the client has read every frame sent to it before: a WebSocket ping sent after
 * them is answered by the client's socket only after it processed what came before.
 */
function flushed(socket: WebSocket): Promise<void> {
  return new Promise((resolve) => {
    socket.once('pong', () => resolve());
    socket.ping();
  });
}

/** A relay stand-in that lets each test deliver frames and records the acks. */
describe('RelayConnection delivery batches', () => {
  let server: WebSocketServer;
  let url: string;
  let sockets: WebSocket[] = [];
  let acks: bigint[] = [];
  let connected = deferred<WebSocket>();

  before(async () => {
    server = new WebSocketServer({ port: 0, host: '127.0.0.1' });
    await new Promise<void>((r) => server.once('listening', () => r()));
    url = `ws://127.0.0.1:${(server.address() as AddressInfo).port}/v1/websocket`;
    server.on('connection', (socket) => {
      sockets.push(socket);
      socket.on('message', (data: Buffer) => {
        const frame = decodeClientFrame(new Uint8Array(data));
        if (frame.kind.case === 'ack') acks.push(frame.kind.value.upTo);
      });
      connected.resolve(socket);
    });
  });
  after(() => new Promise<void>((r) => server.close(() => r())));

  const setUp = () => {
    sockets = [];
    acks = [];
    connected = deferred<WebSocket>();
  };

  /** Until `n` acks arrived (with a deadline, since an ack that never comes must fail the test). */
  const acked = async (n: number): Promise<void> => {
    const deadline = Date.now() + 5000;
    while (acks.length < n) {
      if (Date.now() > deadline) throw new Error(`expected ${n} acks, got ${acks.length}`);
      await new Promise((r) => setTimeout(r, 5));
    }
  };

  it('joins the frames delivered while a batch is being committed into one batch, acked once after it', async () => {
    setUp();
    const batches: number[][] = [];
    const firstCalled = deferred();
    const releaseFirst = deferred();
    const c = new RelayConnection({
      url,
      authorization: () => 'Basic x',
      onEnvelopes: async (envelopes: readonly Envelope[]) => {
        batches.push(envelopes.map((e) => Number(e.seq)));
        if (batches.length === 1) {
          firstCalled.resolve();
          await releaseFirst.promise;
        }
      },
    });
    c.start();
    try {
      const socket = await connected.promise;
      socket.send(deliverFrame(1));
      await firstCalled.promise;
      // Three frames while the first batch is still being committed.
      socket.send(deliverFrame(2));
      socket.send(deliverFrame(3));
      socket.send(deliverFrame(4));
      await flushed(socket);
      assert.deepEqual(acks, [], 'nothing is acked before its batch committed');
      releaseFirst.resolve();
      await acked(2);
      assert.deepEqual(batches, [[1], [2, 3, 4]]);
      // The joined batch is acked once, up to its last envelope.
      await flushed(socket);
      assert.deepEqual(acks, [1n, 4n]);
    } finally {
      await c.stop();
    }
  });

  it('acks nothing of a joined batch whose handler failed, and drops the socket so the relay redelivers', async () => {
    setUp();
    const batches: number[][] = [];
    const firstCalled = deferred();
    const releaseFirst = deferred();
    const c = new RelayConnection({
      url,
      authorization: () => 'Basic x',
      initialBackoffMs: 60_000,
      onEnvelopes: async (envelopes: readonly Envelope[]) => {
        batches.push(envelopes.map((e) => Number(e.seq)));
        if (batches.length === 1) {
          firstCalled.resolve();
          await releaseFirst.promise;
          return;
        }
        throw new Error('the commit failed');
      },
    });
    c.start();
    try {
      const socket = await connected.promise;
      const closed = new Promise<void>((r) => socket.once('close', () => r()));
      socket.send(deliverFrame(1));
      await firstCalled.promise;
      socket.send(deliverFrame(2));
      socket.send(deliverFrame(3));
      await flushed(socket);
      releaseFirst.resolve();
      await closed;
      assert.deepEqual(batches, [[1], [2, 3]]);
      assert.deepEqual(acks, [1n]);
    } finally {
      await c.stop();
    }
  });
});
