// SPDX-License-Identifier: AGPL-3.0-only
/**
 * A device's authenticated WebSocket to its relay, kept open: reconnects with exponential
 * backoff and full jitter, detects dead connections with app-level pings, resumes the queue
 * after every reconnect (the relay redelivers what was not acked), processes envelopes strictly
 * in order and acks each batch only after the handler has committed it.
 */
import WebSocket from 'ws';
import {
  decodeFrame,
  encodeFrame,
  ERROR_CODES,
  isErrorCode,
  ParleyError,
  type Envelope,
  type Frame,
  type PresenceState,
  type PresenceSubscribeResult,
  type PresenceUpdate,
  type Send,
  type SendMulti,
  type SendMultiResult,
  type SendResult,
  aciFromBytes,
} from '@parley/protocol';
import type { MessageInitShape } from '@bufbuild/protobuf';
import type { SendMultiSchema, SendSchema } from '@parley/protocol';
import { connectFailure, failureCode, isUntrustedCertificate } from './connect-failure.js';
import { TransportError } from './transport-error.js';

/** A Send without its request id (the connection assigns it). */
export type OutgoingSend = Omit<MessageInitShape<typeof SendSchema>, 'requestId' | '$typeName'>;
/** A SendMulti without its request id (the connection assigns it). */
export type OutgoingSendMulti = Omit<MessageInitShape<typeof SendMultiSchema>, 'requestId' | '$typeName'>;

/** Connection states, for progress display. */
export type ConnectionState = 'connecting' | 'connected' | 'disconnected' | 'stopped';

/** Options of a RelayConnection. */
export interface RelayConnectionOptions {
  /** The WebSocket URL: the device socket, or the unidentified (sealed sender) socket. */
  readonly url: string;
  /**
   * The Authorization header (read at every connect). Absent for the unidentified socket, which
   * carries no credentials; a refused upgrade then does not mean the device was removed.
   */
  readonly authorization?: () => string;
  /**
   * Handles delivered envelopes in order; the batch is acked once this resolves. Absent on the
   * unidentified socket, which only sends (the relay delivers nothing there).
   */
  readonly onEnvelopes?: (envelopes: readonly Envelope[]) => Promise<void>;
  /** Called when the queue that was waiting at connect time has been handled. */
  readonly onDrained?: () => void;
  readonly onState?: (state: ConnectionState, detail?: string) => void;
  /** Called with each presence update of an account this connection subscribed to (DESIGN §8). */
  readonly onPresence?: (update: PresenceUpdate) => void;
  /**
   * Called with a PresenceSubscribeResult nobody asked for (request id 0): subscriptions the
   * relay ended because their account rotated its token or turned presence off.
   */
  readonly onPresenceEnded?: (refused: readonly Uint8Array[]) => void;
  /** Called when the relay refuses this device for good (removed, bad credentials); no more reconnects. */
  readonly onFatal?: (err: ParleyError) => void;
  /** First reconnect delay, ms. Default 500. */
  readonly initialBackoffMs?: number;
  /** Longest reconnect delay, ms. Default 30,000. */
  readonly maxBackoffMs?: number;
  /** App-level ping interval, ms. Default 25,000. */
  readonly pingIntervalMs?: number;
  /** How long to wait for a pong before the connection counts as dead, ms. Default 10,000. */
  readonly pongTimeoutMs?: number;
  /** Deadline for a send's answer, ms. Default 30,000. */
  readonly sendTimeoutMs?: number;
  /** Random source in [0, 1) for jitter. Default Math.random. */
  readonly random?: () => number;
}

interface Pending {
  resolve: (r: SendResult | SendMultiResult) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

/** See the module comment. */
export class RelayConnection {
  private readonly opts: RelayConnectionOptions;
  private ws: WebSocket | undefined;
  private stopped = true;
  private attempt = 0;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private pingTimer: NodeJS.Timeout | undefined;
  private pongDeadline: NodeJS.Timeout | undefined;
  private nextRequestId = 1;
  private readonly pending = new Map<number, Pending>();
  /** Presence subscriptions waiting for their PresenceSubscribeResult, by request id. */
  private readonly presencePending = new Map<number, { resolve: (r: PresenceSubscribeResult) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>();
  /** Envelope batches waiting for the handler, processed one at a time. */
  private work: Promise<void> = Promise.resolve();
  /** Delivered envelopes not yet taken by the handler, with the socket that brought each frame. */
  private inbox: Array<{ readonly ws: WebSocket | undefined; readonly envelopes: readonly Envelope[] }> = [];
  private drainSeen = false;
  private connectedWaiters: Array<{ resolve: () => void; reject: (e: Error) => void }> = [];
  /** Set when the relay refused this device for good; waiters and sends get it. */
  private fatalError: ParleyError | undefined;

  constructor(opts: RelayConnectionOptions) {
    this.opts = opts;
  }

  /** Whether a socket is open now. */
  get connected(): boolean {
    return this.ws?.readyState === WebSocket.OPEN;
  }

  /** Starts connecting (and reconnecting until stop). */
  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.connect();
  }

  /** Resolves once connected, or rejects with TIMEOUT after `timeoutMs`. */
  waitConnected(timeoutMs = 15_000): Promise<void> {
    if (this.connected) return Promise.resolve();
    if (this.fatalError) return Promise.reject(this.fatalError);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new TransportError('TIMEOUT', 'could not connect to the relay in time')), timeoutMs);
      this.connectedWaiters.push({
        resolve: () => {
          clearTimeout(t);
          resolve();
        },
        reject: (e) => {
          clearTimeout(t);
          reject(e);
        },
      });
    });
  }

  /** Stops reconnecting for good and tells everyone waiting. */
  private fail(err: ParleyError): void {
    if (this.fatalError) return;
    this.fatalError = err;
    this.stopped = true;
    for (const w of this.connectedWaiters.splice(0)) w.reject(err);
    this.opts.onFatal?.(err);
  }

  /** Stops: closes the socket, rejects unanswered sends, waits for the envelope handler. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.reconnectTimer);
    this.clearPing();
    const ws = this.ws;
    this.ws = undefined;
    if (ws && ws.readyState !== WebSocket.CLOSED) {
      const closed = new Promise<void>((resolve) => ws.once('close', () => resolve()));
      ws.close(1000, 'client stopping');
      // The relay gets a second to answer the close handshake; the timer is cleared once it did,
      // else it would keep a finished process (`parley receive`) alive for that second.
      let giveUp: NodeJS.Timeout | undefined;
      await Promise.race([closed, new Promise((r) => (giveUp = setTimeout(r, 1000)))]);
      clearTimeout(giveUp);
      ws.terminate();
    }
    this.failPending(new TransportError('DISCONNECTED', 'the connection was closed'));
    await this.work;
    this.opts.onState?.('stopped');
  }

  /**
   * Sends one Send frame and resolves with the relay's SendResult.
   * @throws ParleyError for a refusal (MISMATCHED_DEVICES …), TransportError when the connection
   * dropped first (the send may have been committed: retry with the same message id).
   */
  send(send: OutgoingSend): Promise<SendResult> {
    const ws = this.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return Promise.reject(new TransportError('DISCONNECTED', 'not connected to the relay'));
    const requestId = this.nextRequestId++;
    if (this.nextRequestId > 0xffffffff) this.nextRequestId = 1;
    return new Promise<SendResult>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(requestId);
        reject(new TransportError('TIMEOUT', 'the relay did not answer the send in time'));
      }, this.opts.sendTimeoutMs ?? 30_000);
      // A SendResult answers a Send's request id (the relay never mixes the two answers up).
      this.pending.set(requestId, { resolve: resolve as (r: SendResult | SendMultiResult) => void, reject, timer });
      ws.send(encodeFrame({ kind: { case: 'send', value: { ...(send as Send), requestId } } }));
    });
  }

  /**
   * Sends one SendMulti frame (a multi-recipient sealed upload) and resolves with the relay's
   * SendMultiResult. Refusals as for {@link send}; MISMATCHED_DEVICES / STALE_DEVICES name
   * every recipient whose device set was wrong in `details.recipients`.
   */
  sendMulti(send: OutgoingSendMulti): Promise<SendMultiResult> {
    const ws = this.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return Promise.reject(new TransportError('DISCONNECTED', 'not connected to the relay'));
    const requestId = this.nextRequestId++;
    if (this.nextRequestId > 0xffffffff) this.nextRequestId = 1;
    return new Promise<SendMultiResult>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(requestId);
        reject(new TransportError('TIMEOUT', 'the relay did not answer the send in time'));
      }, this.opts.sendTimeoutMs ?? 30_000);
      this.pending.set(requestId, { resolve: resolve as (r: SendResult | SendMultiResult) => void, reject, timer });
      ws.send(encodeFrame({ kind: { case: 'sendMulti', value: { ...(send as SendMulti), requestId } } }));
    });
  }

  /**
   * Replaces this connection's presence subscriptions with `targets` (an empty list ends them)
   * and resolves with the relay's answer, which names the refused targets. Accepted targets get a
   * presence update at once and on every change ({@link RelayConnectionOptions.onPresence}).
   * Subscriptions end with the socket: subscribe again after a reconnect.
   * @throws TransportError when not connected, or when no answer came within `timeoutMs`
   *   (default 10,000); ParleyError when the relay refused the frame.
   */
  subscribePresence(targets: ReadonlyArray<{ readonly aci: Uint8Array; readonly token: Uint8Array }>, timeoutMs = 10_000): Promise<PresenceSubscribeResult> {
    const ws = this.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return Promise.reject(new TransportError('DISCONNECTED', 'not connected to the relay'));
    const requestId = this.takeRequestId();
    return new Promise<PresenceSubscribeResult>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.presencePending.delete(requestId);
        reject(new TransportError('TIMEOUT', 'the relay did not answer the presence subscription in time'));
      }, timeoutMs);
      this.presencePending.set(requestId, { resolve, reject, timer });
      ws.send(encodeFrame({ kind: { case: 'presenceSubscribe', value: { requestId, targets: targets.map((t) => ({ aci: t.aci, token: t.token })) } } }));
    });
  }

  /** Tells the relay this device's presence (online or away); false when not connected (nothing sent). */
  setPresence(state: PresenceState): boolean {
    const ws = this.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return false;
    ws.send(encodeFrame({ kind: { case: 'presenceSet', value: { state } } }));
    return true;
  }

  private takeRequestId(): number {
    const requestId = this.nextRequestId++;
    if (this.nextRequestId > 0xffffffff) this.nextRequestId = 1;
    return requestId;
  }

  private connect(): void {
    if (this.stopped) return;
    this.opts.onState?.('connecting');
    this.drainSeen = false;
    let ws: WebSocket;
    try {
      const authorization = this.opts.authorization?.();
      ws = new WebSocket(this.opts.url, { headers: authorization === undefined ? {} : { authorization }, perMessageDeflate: false });
    } catch (err) {
      this.opts.onState?.('disconnected', (err as Error).message);
      this.scheduleReconnect();
      return;
    }
    this.ws = ws;
    let certificateFailure: TransportError | undefined;
    ws.binaryType = 'nodebuffer';
    ws.once('open', () => {
      this.attempt = 0;
      this.opts.onState?.('connected');
      for (const w of this.connectedWaiters.splice(0)) w.resolve();
      this.schedulePing();
    });
    ws.on('message', (data: Buffer) => this.onMessage(new Uint8Array(data.buffer, data.byteOffset, data.byteLength)));
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d: string) => (body += d));
      res.on('end', () => {
        let code = 'INTERNAL';
        try {
          code = (JSON.parse(body) as { code: string }).code;
        } catch {
          // not JSON
        }
        if (this.opts.authorization && (code === 'UNAUTHORIZED' || code === 'DEVICE_REMOVED')) {
          this.fail(new ParleyError('DEVICE_REMOVED', 'the relay refused this device: it was removed from its account or its credentials are wrong'));
        }
        if (!this.opts.authorization) {
          // A socket without credentials that the relay refuses (no such route on an older
          // relay, a rate limit): whoever waits learns it now, not at their deadline.
          const refused = new TransportError('UNREACHABLE', `the relay refused the socket ${this.opts.url} (HTTP ${res.statusCode ?? 0} ${code})`);
          for (const w of this.connectedWaiters.splice(0)) w.reject(refused);
        }
        ws.terminate();
      });
    });
    ws.on('error', (err) => {
      // 'close' follows; reconnect happens there. A refused certificate does not fix itself on
      // a retry, so whoever waits for the connection learns it now (reconnecting goes on).
      if (ws.readyState !== WebSocket.OPEN && isUntrustedCertificate(failureCode(err))) {
        certificateFailure = connectFailure(err, this.opts.url);
        for (const w of this.connectedWaiters.splice(0)) w.reject(certificateFailure);
      }
    });
    ws.once('close', (code, reason) => {
      if (this.ws === ws) this.ws = undefined;
      this.clearPing();
      this.failPending(new TransportError('DISCONNECTED', 'the connection dropped before the relay answered'));
      if (code === ERROR_CODES.DEVICE_REMOVED.close) this.fail(new ParleyError('DEVICE_REMOVED'));
      // Another process of this device took over; do not fight it.
      if (code === ERROR_CODES.CONNECTED_ELSEWHERE.close) this.fail(new ParleyError('CONNECTED_ELSEWHERE', 'this device connected from another process'));
      this.opts.onState?.('disconnected', reason.toString() || certificateFailure?.message || String(code));
      this.scheduleReconnect();
    });
  }

  private scheduleReconnect(): void {
    if (this.stopped) return;
    const initial = this.opts.initialBackoffMs ?? 500;
    const max = this.opts.maxBackoffMs ?? 30_000;
    const cap = Math.min(max, initial * 2 ** Math.min(this.attempt, 16));
    this.attempt++;
    // Full jitter: a fleet of clients that lost the same relay does not come back in lockstep.
    const delay = Math.floor((this.opts.random ?? Math.random)() * cap);
    this.reconnectTimer = setTimeout(() => this.connect(), delay);
    this.reconnectTimer.unref?.();
  }

  private schedulePing(): void {
    this.clearPing();
    this.pingTimer = setTimeout(() => {
      const ws = this.ws;
      if (!ws || ws.readyState !== WebSocket.OPEN) return;
      ws.send(encodeFrame({ kind: { case: 'ping', value: { nonce: 1 } } }));
      this.pongDeadline = setTimeout(() => ws.terminate(), this.opts.pongTimeoutMs ?? 10_000);
    }, this.opts.pingIntervalMs ?? 25_000);
    this.pingTimer.unref?.();
  }

  private clearPing(): void {
    clearTimeout(this.pingTimer);
    clearTimeout(this.pongDeadline);
  }

  private onMessage(bytes: Uint8Array): void {
    let frame: Frame;
    try {
      frame = decodeFrame(bytes);
    } catch {
      return; // a newer relay's frame kind: ignore
    }
    // Any frame proves the connection alive.
    this.schedulePing();
    switch (frame.kind.case) {
      case 'sendResult':
      case 'sendMultiResult': {
        const p = this.pending.get(frame.kind.value.requestId);
        if (!p) return;
        this.pending.delete(frame.kind.value.requestId);
        clearTimeout(p.timer);
        p.resolve(frame.kind.value);
        return;
      }
      case 'error': {
        const e = frame.kind.value;
        const err = new ParleyError(isErrorCode(e.code) ? e.code : 'INTERNAL', e.message, {
          missingDevices: e.missingDevices,
          extraDevices: e.extraDevices,
          staleDevices: e.staleDevices,
          fullDevices: e.fullDevices,
          retryAfterMs: e.retryAfterMs || undefined,
          ...(e.recipients.length > 0 ? { recipients: recipientDetails(e.recipients) } : {}),
        });
        const p = this.pending.get(e.requestId);
        if (p && e.requestId !== 0) {
          this.pending.delete(e.requestId);
          clearTimeout(p.timer);
          p.reject(err);
        }
        const q = this.presencePending.get(e.requestId);
        if (q && e.requestId !== 0) {
          this.presencePending.delete(e.requestId);
          clearTimeout(q.timer);
          q.reject(err);
        }
        return;
      }
      case 'presenceSubscribeResult': {
        if (frame.kind.value.requestId === 0) {
          this.opts.onPresenceEnded?.(frame.kind.value.refused);
          return;
        }
        const q = this.presencePending.get(frame.kind.value.requestId);
        if (!q) return;
        this.presencePending.delete(frame.kind.value.requestId);
        clearTimeout(q.timer);
        q.resolve(frame.kind.value);
        return;
      }
      case 'presenceUpdate':
        this.opts.onPresence?.(frame.kind.value);
        return;
      case 'deliver': {
        const handler = this.opts.onEnvelopes;
        // A socket that only sends has nobody to commit envelopes: leave them unacked.
        if (!handler) return;
        this.inbox.push({ ws: this.ws, envelopes: frame.kind.value.envelopes });
        this.work = this.work.then(() => this.handleInbox(handler));
        return;
      }
      case 'queueDrained': {
        if (this.drainSeen) return;
        this.drainSeen = true;
        this.work = this.work.then(() => this.opts.onDrained?.());
        return;
      }
      default:
        return;
    }
  }

  /**
   * Hands the handler every envelope delivered so far on one socket as one batch, and acks them
   * once it resolved. Frames that came while the previous batch was being committed are joined
   * (the relay sends each commit of the sender's live as a frame of its own): one transaction and
   * one fsync for all of them instead of one each. Later calls for frames taken here find the
   * inbox empty.
   */
  private async handleInbox(handler: (envelopes: readonly Envelope[]) => Promise<void>): Promise<void> {
    const first = this.inbox[0];
    if (!first) return;
    // Never join frames of two sockets: the older one's envelopes come again on the newer.
    let n = 1;
    while (n < this.inbox.length && this.inbox[n]!.ws === first.ws) n++;
    const taken = this.inbox.splice(0, n);
    const envelopes = taken.length === 1 ? first.envelopes : taken.flatMap((t) => t.envelopes);
    const ws = first.ws;
    try {
      await handler(envelopes);
    } catch {
      // Not committed, so not acked: drop the connection and let the relay redeliver.
      ws?.terminate();
      return;
    }
    let last = 0;
    for (const e of envelopes) if (e.seq > 0n) last = Number(e.seq);
    if (last > 0 && ws && ws === this.ws && ws.readyState === WebSocket.OPEN) {
      ws.send(encodeFrame({ kind: { case: 'ack', value: { upTo: BigInt(last), seqs: [] } } }));
    }
  }

  private failPending(err: Error): void {
    for (const [id, p] of this.pending) {
      clearTimeout(p.timer);
      p.reject(err);
      this.pending.delete(id);
    }
    for (const [id, q] of this.presencePending) {
      clearTimeout(q.timer);
      q.reject(err);
      this.presencePending.delete(id);
    }
  }
}

/** The per-recipient device-set details of a refused SendMulti; a recipient with a malformed ACI is left out. */
function recipientDetails(list: ReadonlyArray<{ aci: Uint8Array; missingDevices: number[]; extraDevices: number[]; staleDevices: number[] }>) {
  return list.flatMap((r) => {
    if (r.aci.length !== 16) return [];
    return [{ aci: aciFromBytes(r.aci), missingDevices: r.missingDevices, extraDevices: r.extraDevices, staleDevices: r.staleDevices }];
  });
}
