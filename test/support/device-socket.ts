// SPDX-License-Identifier: AGPL-3.0-only
/**
 * A device's WebSocket to a relay at the protocol level (frames, acks), for tests: it
 * collects what the relay sends and lets a test wait for it.
 */
import WebSocket from 'ws';
import {
  decodeFrame,
  encodeFrame,
  formatBasicAuth,
  type Envelope,
  type ErrorFrame,
  type Frame,
  type FrameInit,
  type SendMultiResult,
  type SendResult,
} from '@parley/protocol';

/** Device credentials as a test holds them. */
export interface TestCredentials {
  readonly aci: string;
  readonly deviceId: number;
  readonly secret: Uint8Array;
}

/** A refused upgrade. */
export class UpgradeRefused extends Error {
  constructor(
    readonly status: number,
    readonly body: string,
  ) {
    super(`upgrade refused with ${status}: ${body}`);
  }
}

/** See the module comment. */
export class DeviceSocket {
  /** Every frame received, in order. */
  readonly frames: Frame[] = [];
  /** Every envelope received, in order. */
  readonly envelopes: Envelope[] = [];
  /** Resolves when the socket closes. */
  readonly closed: Promise<{ code: number; reason: string }>;
  private waiters: Array<() => void> = [];
  private nextRequestId = 1;

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data: Buffer) => {
      const frame = decodeFrame(new Uint8Array(data));
      this.frames.push(frame);
      if (frame.kind.case === 'deliver') this.envelopes.push(...frame.kind.value.envelopes);
      this.wake();
    });
    this.closed = new Promise((resolve) =>
      ws.once('close', (code, reason) => {
        resolve({ code, reason: reason.toString() });
        this.wake();
      }),
    );
  }

  /** Opens an authenticated device socket; rejects with UpgradeRefused when the relay refuses. */
  static connect(wsUrl: string, creds: TestCredentials | { authorization?: string }): Promise<DeviceSocket> {
    const authorization = 'secret' in creds ? formatBasicAuth(creds.aci, creds.deviceId, creds.secret) : creds.authorization;
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(wsUrl, { headers: authorization ? { authorization } : {}, perMessageDeflate: false });
      ws.once('open', () => resolve(new DeviceSocket(ws)));
      ws.once('unexpected-response', (_req, res) => {
        let body = '';
        res.setEncoding('utf8').on('data', (d: string) => (body += d));
        res.on('end', () => reject(new UpgradeRefused(res.statusCode ?? 0, body)));
      });
      ws.once('error', reject);
    });
  }

  /** Sends a frame. */
  send(frame: FrameInit): void {
    this.ws.send(encodeFrame(frame));
  }

  /** Sends raw bytes (or text) as one WebSocket message. */
  sendRaw(data: Uint8Array | string): void {
    this.ws.send(data);
  }

  /** A fresh request id. */
  requestId(): number {
    return this.nextRequestId++;
  }

  /** Waits until `predicate` holds over what was received, or fails after `timeoutMs`. */
  async waitFor(predicate: () => boolean, timeoutMs = 10_000, what = 'condition'): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!predicate()) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(left, 200));
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** Waits for the answer (SendResult or Error) to request `requestId`. */
  async answer(requestId: number, timeoutMs = 10_000): Promise<{ result?: SendResult; error?: ErrorFrame }> {
    const find = () =>
      this.frames.find(
        (f) => (f.kind.case === 'sendResult' || f.kind.case === 'error') && f.kind.value.requestId === requestId,
      );
    await this.waitFor(() => find() !== undefined, timeoutMs, `answer to request ${requestId}`);
    const f = find()!;
    return f.kind.case === 'sendResult' ? { result: f.kind.value } : { error: f.kind.value as ErrorFrame };
  }

  /** Waits for the answer (SendMultiResult or Error) to SendMulti `requestId`. */
  async multiAnswer(requestId: number, timeoutMs = 10_000): Promise<{ result?: SendMultiResult; error?: ErrorFrame }> {
    const find = () =>
      this.frames.find((f) => (f.kind.case === 'sendMultiResult' || f.kind.case === 'error') && f.kind.value.requestId === requestId);
    await this.waitFor(() => find() !== undefined, timeoutMs, `answer to SendMulti ${requestId}`);
    const f = find()!;
    return f.kind.case === 'sendMultiResult' ? { result: f.kind.value } : { error: f.kind.value as ErrorFrame };
  }

  /** Waits for the next Error frame with request id 0 after index `from` of `frames`. */
  async connectionError(from: number, timeoutMs = 5000): Promise<ErrorFrame> {
    const find = () => this.frames.slice(from).find((f) => f.kind.case === 'error' && f.kind.value.requestId === 0);
    await this.waitFor(() => find() !== undefined, timeoutMs, 'an error frame');
    return find()!.kind.value as ErrorFrame;
  }

  /** Waits until at least `n` envelopes arrived. */
  async waitForEnvelopes(n: number, timeoutMs = 10_000): Promise<Envelope[]> {
    await this.waitFor(() => this.envelopes.length >= n, timeoutMs, `${n} envelopes (have ${this.envelopes.length})`);
    return this.envelopes;
  }

  /** Waits for QueueDrained. */
  async drained(timeoutMs = 10_000): Promise<void> {
    await this.waitFor(() => this.frames.some((f) => f.kind.case === 'queueDrained'), timeoutMs, 'queue drained');
  }

  /** Acknowledges everything up to `upTo` plus `seqs`. */
  ack(upTo: number, seqs: number[] = []): void {
    this.send({ kind: { case: 'ack', value: { upTo: BigInt(upTo), seqs: seqs.map(BigInt) } } });
  }

  /** Round-trips a ping: every frame sent before it has been processed when this resolves. */
  async sync(timeoutMs = 10_000): Promise<void> {
    const nonce = Math.floor(Math.random() * 0xffffffff);
    this.send({ kind: { case: 'ping', value: { nonce } } });
    await this.waitFor(
      () => this.frames.some((f) => f.kind.case === 'pong' && f.kind.value.nonce === nonce),
      timeoutMs,
      'pong',
    );
  }

  /** Closes the socket and waits for it to be closed. */
  async close(): Promise<void> {
    if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING) this.ws.close();
    await this.closed;
  }

  /** Drops the TCP connection without a close handshake. */
  terminate(): void {
    this.ws.terminate();
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }
}
