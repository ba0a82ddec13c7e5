// SPDX-License-Identifier: AGPL-3.0-only
/**
 * The unidentified socket (`/v1/websocket/unidentified`, DESIGN §5): a second WebSocket to the
 * relay, without credentials, that only sends — sealed `Send`s that present the recipient's
 * access key, and `SendMulti`. It is a {@link RelayConnection} without authorization or envelope
 * handler (same reconnect with backoff and jitter, same pings), opened on first use, so a
 * client that never sends sealed never opens it.
 */
import type { SendMultiResult, SendResult } from '@parley/protocol';
import { RelayConnection, type OutgoingSend, type OutgoingSendMulti, type RelayConnectionOptions } from './relay-connection.js';

/** Options of an {@link UnidentifiedConnection}. */
export interface UnidentifiedConnectionOptions extends Omit<RelayConnectionOptions, 'authorization' | 'onEnvelopes' | 'onDrained' | 'onFatal'> {
  /** How long a send waits for the socket to open, ms. Default 10,000. */
  readonly connectTimeoutMs?: number;
}

/** See the module comment. */
export class UnidentifiedConnection {
  private readonly opts: UnidentifiedConnectionOptions;
  private connection: RelayConnection | undefined;

  constructor(opts: UnidentifiedConnectionOptions) {
    this.opts = opts;
  }

  /** Whether the socket is open now. */
  get connected(): boolean {
    return this.connection?.connected ?? false;
  }

  /**
   * The open socket, opening it first if needed.
   * @throws TransportError TIMEOUT when it does not open in time, UNREACHABLE when the relay
   *   refuses it (it keeps trying until stop()).
   */
  async open(): Promise<RelayConnection> {
    if (!this.connection) {
      const { connectTimeoutMs: _unused, ...rest } = this.opts;
      this.connection = new RelayConnection(rest);
      this.connection.start();
    }
    const connection = this.connection;
    await connection.waitConnected(this.opts.connectTimeoutMs ?? 10_000);
    return connection;
  }

  /**
   * Sends one frame (a sealed `Send` with `accessKey`) and resolves with the relay's answer.
   * @throws ParleyError for a refusal (UNAUTHORIZED for every failure of an unidentified send),
   *   TransportError when the socket is not open in time or dropped before the answer.
   */
  async send(send: OutgoingSend): Promise<SendResult> {
    return (await this.open()).send(send);
  }

  /**
   * Uploads one multi-recipient payload with the recipients' combined access key.
   * @throws as {@link send}.
   */
  async sendMulti(send: OutgoingSendMulti): Promise<SendMultiResult> {
    return (await this.open()).sendMulti(send);
  }

  /** Closes the socket, if it was opened; the next send opens a new one. */
  async stop(): Promise<void> {
    const c = this.connection;
    this.connection = undefined;
    if (c) await c.stop();
  }
}
