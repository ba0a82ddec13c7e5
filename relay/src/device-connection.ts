// SPDX-License-Identifier: AGPL-3.0-only
/**
 * One authenticated device's WebSocket: decodes its frames, and delivers its queue — first the
 * backlog in sequence order (the drain), then live envelopes — never more than the window of
 * unacknowledged envelopes at once, never a gap, never out of order.
 *
 * Delivery reads the store; a live envelope that arrives exactly at the cursor while nothing is
 * outstanding in the store is sent straight from memory (the fast path), anything else marks the
 * connection dirty and the pump reads the store again. The store is the truth; memory is a hint.
 */
import {
  decodeClientFrame,
  encodeFrame,
  LIMITS,
  ParleyError,
  aciToBytes,
  type Aci,
  type DeviceId,
  type FrameInit,
  type PresenceSet,
  type PresenceSubscribe,
  type Send,
  type SendMulti,
  type Seq,
} from '@parley/protocol';
import type { Logger } from 'pino';
import type { AckRequest, EnvelopeStore, QueueAddress, StoredEnvelope } from './ports/envelope-store.js';
import type { Clock } from './clock.js';
import { DeliveryWindow } from './delivery-window.js';
import type { DeliveryPath, RelayMetrics } from './relay-metrics.js';
import type { SendingConnection, SendOrigin } from './envelope-intake.js';
import { SocketConnection, type FrameSocket } from './socket-connection.js';

export type { FrameSocket } from './socket-connection.js';

/** What every connection shares. */
export interface ConnectionContext {
  readonly store: EnvelopeStore;
  readonly clock: Clock;
  readonly log: Logger;
  readonly metrics: RelayMetrics;
  readonly windowEnvelopes: number;
  readonly maxFrameBytes: number;
  /** Queues an ack for the next batched delete. */
  readonly submitAck: (ack: AckRequest) => Promise<void>;
  /** Handles a Send frame (the intake); answers through the connection. */
  readonly onSend: (conn: DeviceConnection, send: Send) => void;
  /** Handles a PresenceSubscribe frame (the presence hub); answers through the connection. */
  readonly onPresenceSubscribe: (conn: DeviceConnection, frame: PresenceSubscribe) => void;
  /** Handles a PresenceSet frame (the presence hub). */
  readonly onPresenceSet: (conn: DeviceConnection, frame: PresenceSet) => void;
  /** Handles a SendMulti frame (the multi-recipient intake); answers through the connection. */
  readonly onSendMulti: (conn: DeviceConnection, send: SendMulti) => void;
  /** Called once when the connection is closed, whoever closed it. */
  readonly onClosed: (conn: DeviceConnection) => void;
}

/** Most unanswered sends one connection may have in flight. */
export const MAX_UNANSWERED_SENDS = 4096;

/** The queue key of a device: `<aci>.<deviceId>`. */
export function queueKey(aci: Aci, deviceId: DeviceId): string {
  return `${aci}.${deviceId}`;
}

/** See the module comment. */
export class DeviceConnection extends SocketConnection implements SendingConnection {
  readonly queue: QueueAddress;
  /** Sends on this connection come from its device. */
  readonly origin: SendOrigin;
  readonly key: string;
  /** Set by any frame or pong; cleared by the keepalive sweep. */
  alive = true;
  /** Sends accepted from this connection and not yet answered. */
  unansweredSends = 0;
  private readonly ctx: ConnectionContext;
  private readonly window = new DeliveryWindow();
  private pumping = false;
  /** True when every committed envelope up to now has been delivered or is in the window. */
  private caughtUp = false;
  /** Set when envelopes were committed while the pump was reading. */
  private dirty = false;
  private drainAnnounced = false;
  private corked = false;

  constructor(ctx: ConnectionContext, socket: FrameSocket, aci: Aci, deviceId: DeviceId) {
    super(socket);
    this.ctx = ctx;
    this.queue = { aci, deviceId };
    this.origin = { kind: 'device', aci, deviceId };
    this.key = queueKey(aci, deviceId);
  }

  /** Bytes written to the socket and not yet sent: a slow reader's backlog. */
  get bufferedAmount(): number {
    return this.socket.bufferedAmount ?? 0;
  }

  /** Envelopes delivered on this connection and not acknowledged (they stay queued). */
  get unacknowledged(): number {
    return this.window.inFlight;
  }

  /** Starts the drain. */
  start(): void {
    void this.pump();
  }

  /** Handles one WebSocket message from the device. */
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
      case 'ack':
        this.onAck(frame.kind.value.upTo, frame.kind.value.seqs);
        return;
      case 'ping':
        this.sendFrame({ kind: { case: 'pong', value: { nonce: frame.kind.value.nonce } } });
        return;
      case 'presenceSubscribe':
        this.ctx.onPresenceSubscribe(this, frame.kind.value);
        return;
      case 'presenceSet':
        this.ctx.onPresenceSet(this, frame.kind.value);
        return;
      default:
        this.sendError(0, new ParleyError('UNKNOWN_FRAME'));
    }
  }

  /** Refuses a send past the cap of unanswered sends (RATE_LIMITED); true when it did. */
  private tooManyUnanswered(requestId: number): boolean {
    if (this.unansweredSends < MAX_UNANSWERED_SENDS) return false;
    this.ctx.metrics.rateLimitHit('unanswered_sends');
    this.sendError(requestId, new ParleyError('RATE_LIMITED', 'too many unanswered sends', { retryAfterMs: 100 }));
    return true;
  }

  /**
   * Offers envelopes just committed to this device's queue, in sequence order. Returns true when
   * they went out at once (the live path), false when the pump will read them from the store.
   */
  offerLive(envelopes: readonly StoredEnvelope[]): boolean {
    if (this.closed || envelopes.length === 0) return false;
    if (
      this.caughtUp &&
      !this.pumping &&
      envelopes[0]!.seq === this.window.lastDelivered + 1 &&
      this.window.inFlight + envelopes.length <= this.ctx.windowEnvelopes
    ) {
      this.deliver(envelopes, 'live');
      return true;
    }
    this.caughtUp = false;
    this.dirty = true;
    void this.pump();
    return false;
  }

  /** Sends an online-only envelope (typing); not queued, not acknowledged, outside the window. */
  deliverOnline(envelope: StoredEnvelope): void {
    if (this.closed) return;
    this.ctx.metrics.envelopesDelivered('online', 1);
    this.sendFrame({ kind: { case: 'deliver', value: { envelopes: [toWire(envelope, true)] } } });
  }

  /** Sends a frame. */
  override sendFrame(frame: FrameInit): void {
    if (this.closed) return;
    const tcp = this.socket._socket;
    if (!this.corked && tcp) {
      // A commit batch answers many sends of one device at once; one syscall carries them all.
      tcp.cork();
      this.corked = true;
      process.nextTick(() => {
        this.corked = false;
        tcp.uncork();
      });
    }
    this.socket.send(encodeFrame(frame));
  }

  protected logTarget(): { log: Logger; fields: object; what: string } {
    return { log: this.ctx.log, fields: { device: this.key }, what: 'a device connection' };
  }

  protected announceClosed(): void {
    this.ctx.onClosed(this);
  }

  private onAck(upToBig: bigint, seqsBig: bigint[]): void {
    try {
      if (seqsBig.length > LIMITS.maxAckSeqs) throw new ParleyError('BAD_ACK', `an ack may list at most ${LIMITS.maxAckSeqs} sequence numbers`);
      const max = BigInt(Number.MAX_SAFE_INTEGER);
      if (upToBig > max || seqsBig.some((s) => s > max)) throw new ParleyError('BAD_ACK', 'ack is beyond what was delivered on this connection');
      const upTo = Number(upToBig);
      const seqs = seqsBig.map(Number);
      this.window.check(upTo, seqs);
      this.window.apply(upTo, seqs);
      this.ctx.submitAck({ queue: this.queue, upTo, seqs: seqs as Seq[] }).catch((err: unknown) => {
        // The envelopes stay queued and come again on the next connection: at-least-once.
        this.ctx.log.warn({ err, device: this.key }, 'ack commit failed');
      });
    } catch (err) {
      this.sendError(0, err);
      return;
    }
    if (!this.caughtUp) void this.pump();
  }

  private deliver(envelopes: readonly StoredEnvelope[], path: DeliveryPath): void {
    for (const e of envelopes) this.window.delivered(e.seq);
    this.ctx.metrics.envelopesDelivered(path, envelopes.length);
    this.sendFrame({ kind: { case: 'deliver', value: { envelopes: envelopes.map((e) => toWire(e, false)) } } });
  }

  private async pump(): Promise<void> {
    if (this.pumping || this.closed) return;
    this.pumping = true;
    try {
      while (!this.closed && !this.caughtUp) {
        const room = this.ctx.windowEnvelopes - this.window.inFlight;
        if (room <= 0) return; // an ack calls pump again
        const limit = Math.min(room, LIMITS.maxEnvelopesPerDeliver);
        this.dirty = false;
        const batch = await this.ctx.store.read(this.queue, this.window.lastDelivered, limit, this.ctx.clock.now());
        if (this.closed) return;
        if (batch.length > 0) this.deliver(batch, 'queue');
        if (batch.length < limit && !this.dirty) {
          this.caughtUp = true;
          if (!this.drainAnnounced) {
            this.drainAnnounced = true;
            this.sendFrame({ kind: { case: 'queueDrained', value: { lastSeq: BigInt(this.window.lastDelivered) } } });
          }
        }
      }
    } catch (err) {
      this.ctx.log.error({ err, device: this.key }, 'reading the queue failed');
      this.closeWith('INTERNAL', 'queue read failed');
    } finally {
      this.pumping = false;
    }
  }
}

function toWire(e: StoredEnvelope, online: boolean) {
  return {
    seq: BigInt(e.seq),
    type: e.type,
    source: e.source ? aciToBytes(e.source.aci) : new Uint8Array(0),
    sourceDevice: e.source?.deviceId ?? 0,
    sourceDomain: e.source?.domain ?? '',
    messageId: e.messageId,
    timestamp: BigInt(e.timestamp),
    serverTimestamp: BigInt(e.serverTimestamp),
    urgent: e.urgent,
    online,
    content: e.content,
  };
}
