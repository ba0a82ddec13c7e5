// SPDX-License-Identifier: AGPL-3.0-only
/**
 * An unidentified (sealed-sender) WebSocket, `/v1/websocket/unidentified`: no credentials, no
 * queue, no identity. It takes only `Send` (with the destination's access key, every message
 * SEALED), `SendMulti` (with the combined access key) and `Ping`; any other frame is refused
 * with UNKNOWN_FRAME and the socket stays up. The connection knows its client address only for
 * per-address rate limits and never logs it: its logs name the connection by a number.
 */
import { decodeClientFrame, encodeFrame, ParleyError, type FrameInit, type Send, type SendMulti } from '@parley/protocol';
import type { Logger } from 'pino';
import { MAX_UNANSWERED_SENDS } from './device-connection.js';
import type { SendingConnection, SendOrigin } from './envelope-intake.js';
import type { RelayMetrics } from './relay-metrics.js';
import { SocketConnection, type FrameSocket } from './socket-connection.js';

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
export class UnidentifiedConnection extends SocketConnection implements SendingConnection {
  /** For logs only: `u` and a number, nothing about the client. */
  readonly id: string;
  readonly origin: SendOrigin;
  /** Set by any frame or pong; cleared by the keepalive sweep. */
  alive = true;
  unansweredSends = 0;
  private readonly ctx: UnidentifiedContext;

  constructor(ctx: UnidentifiedContext, socket: FrameSocket, id: string, clientAddress: string) {
    super(socket);
    this.ctx = ctx;
    this.id = id;
    this.origin = { kind: 'unidentified', clientAddress };
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
  override sendFrame(frame: FrameInit): void {
    if (!this.closed) this.socket.send(encodeFrame(frame));
  }

  protected logTarget(): { log: Logger; fields: object; what: string } {
    return { log: this.ctx.log, fields: { connection: this.id }, what: 'an unidentified connection' };
  }

  protected announceClosed(): void {
    this.ctx.onClosed(this);
  }

  private tooManyUnanswered(requestId: number): boolean {
    if (this.unansweredSends < MAX_UNANSWERED_SENDS) return false;
    this.ctx.metrics.rateLimitHit('unanswered_sends');
    this.sendError(requestId, new ParleyError('RATE_LIMITED', 'too many unanswered sends', { retryAfterMs: 100 }));
    return true;
  }
}
