// SPDX-License-Identifier: AGPL-3.0-only
/**
 * What every relay WebSocket connection does alike, whoever is behind it: answer errors with an
 * Error frame, close with a wire code's close code, drop a dead socket, ping, and report its end
 * exactly once. The device socket and the unidentified (sealed-sender) socket build on it.
 */
import { ERROR_CODES, isParleyError, ParleyError, type FrameInit } from '@parley/protocol';
import type { Logger } from 'pino';
import { errorFrame } from './error-frame.js';

/** The part of a `ws` WebSocket a connection uses (a fake in unit tests). */
export interface FrameSocket {
  send(data: Uint8Array): void;
  close(code: number, reason: string): void;
  terminate(): void;
  ping(): void;
  /** Bytes queued on the socket and not yet sent (a `ws` WebSocket has it). */
  readonly bufferedAmount?: number;
  /**
   * The TCP socket under a `ws` WebSocket (a private field of ws, read for corking only): frames
   * sent to one device in one event-loop turn leave in one write instead of one each.
   */
  readonly _socket?: { cork(): void; uncork(): void } | null;
}

/** See the module comment. */
export abstract class SocketConnection {
  protected readonly socket: FrameSocket;
  protected closed = false;

  protected constructor(socket: FrameSocket) {
    this.socket = socket;
  }

  /** Whether the socket is gone. */
  get isClosed(): boolean {
    return this.closed;
  }

  /** Sends a frame (nothing once closed). */
  abstract sendFrame(frame: FrameInit): void;

  /** Where unexpected errors are logged, with the fields that name this connection (never secrets). */
  protected abstract logTarget(): { readonly log: Logger; readonly fields: object; readonly what: string };

  /** Tells the owner, once, that the connection ended. */
  protected abstract announceClosed(): void;

  /** Sends an Error frame for `err` (a ParleyError; anything else is INTERNAL and logged). */
  sendError(requestId: number, err: unknown): void {
    let e: ParleyError;
    if (isParleyError(err)) {
      e = err;
    } else {
      const { log, fields, what } = this.logTarget();
      log.error({ err, ...fields }, `unexpected error on ${what}`);
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
    this.announceClosed();
  }
}
