// SPDX-License-Identifier: AGPL-3.0-only
/**
 * An unidentified (sealed-sender) WebSocket, `/v1/websocket/unidentified`: no credentials, no
 * queue, no identity. It takes only `Send` (with the destination's access key, every message
 * SEALED), `SendMulti` (with the combined access key) and `Ping`; any other frame is refused
 * with UNKNOWN_FRAME and the socket stays up. The connection knows its client address only for
 * per-address rate limits and never logs it: its logs name the connection by a number.
 */
import { decodeClientFrame, encodeFrame, ERROR_CODES, isParleyError, ParleyError, type FrameInit, type Send, type SendMulti } from '@parley/protocol';
import type { Logger } from 'pino';
import { MAX_UNANSWERED_SENDS, type FrameSocket } from './device-connection.js';
import type { SendingConnection, SendOrigin } from './envelope-intake.js';
import { errorFrame } from './error-frame.js';
import type { RelayMetrics } from './relay-metrics.js';

/** What every unidentified connection shares. */
export interface UnidentifiedContext {
  readonly log: Logger;
  readonly metrics: RelayMetrics;
  readonly maxFrameBytes: number;
  /** Handles a Send frame (the intake); answers through the connection. */
  readonly onSend: (conn: UnidentifiedConnection, send: Send) => void;
  /** Handles a SendMulti frame (the multi-recipient intake). */
  readonly onSendMulti: (conn: UnidentifiedConnection, send: SendMulti) => void;
  /** Called once when the connection is closed, whoever closed it. */
  readonly onClosed: (conn: UnidentifiedConnection) => void;
}

/** See the module comment. */
export class UnidentifiedConnection implements SendingConnection {
  /** For logs only: `u` and a number, nothing about the client. */
  readonly id: string;
  readonly origin: SendOrigin;
  /** Set by any frame or pong; cleared by the keepalive sweep. */
  alive = true;
  unansweredSends = 0;
  private readonly ctx: UnidentifiedContext;
  private readonly socket: FrameSocket;
  private closed = false;

  constructor(ctx: UnidentifiedContext, socket: FrameSocket, id: string, clientAddress: string) {
    this.ctx = ctx;
    this.socket = socket;
    this.id = id;
    this.origin = { kind: 'unidentified', clientAddress };
  }

  /** Whether the socket is gone. */
  get isClosed(): boolean {
    return this.closed;
  }

  /** Handles one WebSocket message. */
  onMessage(data: Uint8Array, isBinary: boolean): void {
    this.alive = true;
    if (this.closed) return;
    if (!isBinary) {
      this.sendError(0, new ParleyError('BAD_FRAME', 'frames are binary protobuf, not text'));
      return;
    }
    let frame;
    try {
      frame = decodeClientFrame(data, this.ctx.maxFrameBytes);
    } catch (err) {
      this.sendError(0, err);
      return;
    }
    switch (frame.kind.case) {
      case 'send':
        if (this.tooManyUnanswered(frame.kind.value.requestId)) return this.ctx.metrics.sendAnswered('RATE_LIMITED');
        this.ctx.onSend(this, frame.kind.value);
        return;
      case 'sendMulti':
        if (this.tooManyUnanswered(frame.kind.value.requestId)) return this.ctx.metrics.multiSendAnswered('RATE_LIMITED');
        this.ctx.onSendMulti(this, frame.kind.value);
        return;
      case 'ping':
        this.sendFrame({ kind: { case: 'pong', value: { nonce: frame.kind.value.nonce } } });
        return;
      default:
        this.sendError(0, new ParleyError('UNKNOWN_FRAME', 'the unidentified socket takes Send, SendMulti and Ping only'));
    }
  }

  /** Sends a frame. */
  sendFrame(frame: FrameInit): void {
    if (!this.closed) this.socket.send(encodeFrame(frame));
  }

  /** Sends an Error frame for `err` (a ParleyError; anything else is INTERNAL and logged with the connection number only). */
  sendError(requestId: number, err: unknown): void {
    let e: ParleyError;
    if (isParleyError(err)) {
      e = err;
    } else {
      this.ctx.log.error({ err, connection: this.id }, 'unexpected error on an unidentified connection');
      e = new ParleyError('INTERNAL', 'internal error');
    }
    this.sendFrame(errorFrame(requestId, e));
  }

  /** Closes the socket with a wire error code's close code. */
  closeWith(code: keyof typeof ERROR_CODES, reason: string = code): void {
    if (this.closed) return;
    const info = ERROR_CODES[code] as { close?: number };
    this.markClosed();
    this.socket.close(info.close ?? 1000, reason);
  }

  /** Drops a dead socket without a close handshake. */
  terminate(): void {
    if (this.closed) return;
    this.markClosed();
    this.socket.terminate();
  }

  /** Sends a WebSocket ping (keepalive). */
  ping(): void {
    if (!this.closed) this.socket.ping();
  }

  /** Called by the socket's close event. */
  onSocketClosed(): void {
    if (!this.closed) this.markClosed();
  }

  private markClosed(): void {
    this.closed = true;
    this.ctx.onClosed(this);
  }

  private tooManyUnanswered(requestId: number): boolean {
    if (this.unansweredSends < MAX_UNANSWERED_SENDS) return false;
    this.ctx.metrics.rateLimitHit('unanswered_sends');
    this.sendError(requestId, new ParleyError('RATE_LIMITED', 'too many unanswered sends', { retryAfterMs: 100 }));
    return true;
  }
}
