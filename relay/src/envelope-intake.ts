// SPDX-License-Identifier: AGPL-3.0-only
/**
 * Envelope intake: a Send frame becomes committed envelopes, then the sender's SendResult, then
 * live delivery — in that order (persist, then acknowledge and publish). Refusals are typed
 * errors and write nothing.
 *
 * A Send comes from an authenticated device or from an unidentified (sealed-sender) socket. On
 * the unidentified socket it must carry the destination's access key and only SEALED messages;
 * on the authenticated socket it must carry no access key. Envelopes of a sealed send are
 * stored without a source, whichever socket they came over: only the sealed content names the
 * sender. Every message of a Send is SEALED or none is.
 */
import { createHash } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import {
  EnvelopeType,
  isParleyError,
  ParleyError,
  validateSend,
  type Aci,
  type DeviceId,
  type RegistrationId,
  type Send,
  type Seq,
  type FrameInit,
  type ValidatedSend,
} from '@parley/protocol';
import type { Clock } from './clock.js';
import type { RelayConfig } from './config.js';
import type { ConnectionRegistry } from './connection-registry.js';
import { queueKey } from './device-connection.js';
import type { EnqueueRequest, EnqueueResult, StoredEnvelope } from './ports/envelope-store.js';
import type { RelayMetrics, SendOutcome } from './relay-metrics.js';
import type { UnidentifiedAccess } from './unidentified-access.js';

/** A device as the directory knows it. */
export interface DirectoryDevice {
  readonly deviceId: DeviceId;
  readonly registrationId: RegistrationId;
}

/** The directory lookups intake needs (the key server's AccountDirectory satisfies it). */
export interface DeviceDirectory {
  getDevices(aci: Aci): Promise<ReadonlyArray<DirectoryDevice> | undefined>;
  /** The sealed-sender access keys of those accounts that have one. */
  getAccessKeys(acis: readonly Aci[]): Promise<Map<Aci, Uint8Array>>;
}

/** Who a send comes from: an authenticated device, or an unidentified socket (only its client address is known). */
export type SendOrigin =
  | { readonly kind: 'device'; readonly aci: Aci; readonly deviceId: DeviceId }
  | { readonly kind: 'unidentified'; readonly clientAddress: string };

/** A connection sends arrive on and are answered through (a device's or an unidentified one). */
export interface SendingConnection {
  readonly origin: SendOrigin;
  /** Sends accepted from this connection and not yet answered. */
  unansweredSends: number;
  sendFrame(frame: FrameInit): void;
  /** Answers `requestId` with an Error frame (anything but a ParleyError is INTERNAL and logged). */
  sendError(requestId: number, err: unknown): void;
}

/** What intake depends on. */
export interface IntakeDeps {
  readonly config: RelayConfig;
  readonly clock: Clock;
  readonly directory: DeviceDirectory;
  readonly registry: ConnectionRegistry;
  /** Commits one send through the group-commit batcher. */
  readonly commit: (request: EnqueueRequest) => Promise<EnqueueResult>;
  /** Counts sends, committed envelopes and live-delivery latency. */
  readonly metrics: RelayMetrics;
  /**
   * The sender's rate limits, checked before anything else (a refused send costs no validation
   * and commits nothing). Rejects with RATE_LIMITED. Default: no limit.
   */
  readonly admitSend?: (sender: { readonly aci: Aci; readonly deviceId: DeviceId }) => Promise<void>;
  /**
   * Checked for an identified send once its destination is known (see rate-limits.ts
   * `createDestinationAdmission`). Rejects with RATE_LIMITED. Default: no limit.
   */
  readonly admitDestination?: (sender: { readonly aci: Aci; readonly deviceId: DeviceId }, destination: Aci) => Promise<void>;
  /**
   * The limit of unidentified sends per client address, checked before anything else like
   * `admitSend`. Rejects with RATE_LIMITED. Default: no limit.
   */
  readonly admitUnidentified?: (clientAddress: string) => Promise<void>;
  /** Checks the access keys of unidentified sends. */
  readonly unidentified: UnidentifiedAccess;
}

/** What is wrong with the device set of one destination; every list empty when it is right. */
export interface DeviceSetProblems {
  readonly missing: number[];
  readonly extra: number[];
  readonly stale: number[];
}

/**
 * Checks the device set of a send against the directory.
 * @param exclude the sending device when it sends to its own account (it never gets a copy).
 * @throws ParleyError MISMATCHED_DEVICES or STALE_DEVICES.
 */
export function checkDeviceSet(send: ValidatedSend, devices: ReadonlyArray<DirectoryDevice>, exclude?: DeviceId): void {
  const { missing, extra, stale } = deviceSetProblems(send.messages, devices, exclude);
  if (missing.length > 0 || extra.length > 0) {
    throw new ParleyError('MISMATCHED_DEVICES', 'the send does not name exactly the destination\u2019s devices', {
      missingDevices: missing,
      extraDevices: extra,
    });
  }
  if (stale.length > 0) {
    throw new ParleyError('STALE_DEVICES', 'some devices were re-registered', { staleDevices: stale });
  }
}

/**
 * Compares the devices a send names (each once) with the directory's: devices it lacks
 * (`missing`, ascending), names without their existing (`extra`, in the send's order), and
 * names with another registration id (`stale`; only meaningful when the other two are empty).
 * @param exclude the sending device when it sends to its own account (it never gets a copy).
 */
export function deviceSetProblems(
  named: ReadonlyArray<{ readonly deviceId: number; readonly registrationId: number }>,
  devices: ReadonlyArray<DirectoryDevice>,
  exclude?: DeviceId,
): DeviceSetProblems {
  const expected = new Map<number, number>();
  for (const d of devices) if (d.deviceId !== exclude) expected.set(d.deviceId, d.registrationId);
  const names = new Set(named.map((m) => m.deviceId));
  const missing = [...expected.keys()].filter((id) => !names.has(id)).sort((a, b) => a - b);
  const extra = named.filter((m) => !expected.has(m.deviceId)).map((m) => m.deviceId);
  const stale = named.filter((m) => expected.has(m.deviceId) && expected.get(m.deviceId) !== m.registrationId).map((m) => m.deviceId);
  return { missing, extra, stale };
}

/** Hash of a ciphertext, compared when a message id comes again (ID_REUSED). */
export function contentHash(content: Uint8Array): Uint8Array {
  return createHash('sha256').update(content).digest().subarray(0, 16);
}

/** See the module comment. */
export class EnvelopeIntake {
  private readonly deps: IntakeDeps;

  constructor(deps: IntakeDeps) {
    this.deps = deps;
  }

  /** Handles one Send from `conn`; always answers it (SendResult or Error). */
  handle(conn: SendingConnection, send: Send): void {
    conn.unansweredSends++;
    const metrics = this.deps.metrics;
    this.process(conn, send)
      .then(
        (outcome) => metrics.sendAnswered(outcome),
        (err: unknown) => {
          metrics.sendAnswered(isParleyError(err) ? err.code : 'INTERNAL');
          conn.sendError(send.requestId, err);
        },
      )
      .finally(() => conn.unansweredSends--);
  }

  private async process(conn: SendingConnection, raw: Send): Promise<SendOutcome> {
    const { config, clock, directory } = this.deps;
    // Monotonic and sub-millisecond, for the live-delivery latency; `now` below is wall time.
    const arrived = performance.now();
    const origin = conn.origin;
    if (origin.kind === 'device') await this.deps.admitSend?.(origin);
    else await this.deps.admitUnidentified?.(origin.clientAddress);
    const now = clock.now();
    const send = validateSend(raw, now, {
      maxDevices: config.maxDevicesPerAccount,
      maxEnvelopeBytes: config.maxEnvelopeBytes,
      maxClockSkewMs: 24 * 3600 * 1000,
    });
    const sealed = send.messages[0]!.type === EnvelopeType.SEALED;
    if (send.messages.some((m) => (m.type === EnvelopeType.SEALED) !== sealed)) {
      throw new ParleyError('BAD_REQUEST', 'a send is sealed for every device or for none');
    }
    if (origin.kind === 'device' && raw.accessKey.length !== 0) {
      throw new ParleyError('BAD_REQUEST', 'access_key belongs on the unidentified socket only');
    }
    if (origin.kind === 'unidentified' && !sealed) throw new ParleyError('BAD_REQUEST', 'the unidentified socket takes SEALED messages only');
    if (send.destinationDomain !== '' && send.destinationDomain !== config.domain) {
      throw new ParleyError('NOT_FOUND', 'this relay does not federate yet: the destination domain is unknown');
    }
    if (origin.kind === 'device') await this.deps.admitDestination?.(origin, send.destination);
    let devices: ReadonlyArray<DirectoryDevice>;
    if (origin.kind === 'unidentified') {
      // After the key matched the sender provably knows the recipient's profile key, so the
      // device-set answers below (MISMATCHED_DEVICES, STALE_DEVICES) reveal nothing new to it.
      devices = await this.deps.unidentified.authorize(send.destination, raw.accessKey);
    } else {
      const found = await directory.getDevices(send.destination);
      if (!found) throw new ParleyError('NOT_FOUND', 'no such account');
      devices = found;
    }
    const self = origin.kind === 'device' && send.destination === origin.aci;
    checkDeviceSet(send, devices, self ? origin.deviceId : undefined);
    const source = sealed || origin.kind === 'unidentified' ? undefined : { aci: origin.aci, deviceId: origin.deviceId, domain: config.domain };

    if (send.online) {
      this.deliverOnline(conn, send, source, now);
      return 'ok';
    }
    const request: EnqueueRequest = {
      destination: send.destination,
      messageId: send.messageId,
      ...(source ? { source } : {}),
      timestamp: send.timestamp,
      serverTimestamp: now,
      urgent: send.urgent,
      expiresAt: now + config.retentionMs,
      maxQueueDepth: config.maxQueueDepth,
      envelopes: send.messages.map((m) => ({ deviceId: m.deviceId, type: m.type, content: m.content, contentHash: contentHash(m.content) })),
    };
    const result = await this.deps.commit(request);
    if (result.status === 'id-reused') {
      throw new ParleyError('ID_REUSED', 'this message id was used before with a different body');
    }
    if (result.status === 'queue-full') {
      throw new ParleyError('QUEUE_FULL', 'a destination device queue is full', { fullDevices: [...result.deviceIds] });
    }
    conn.sendFrame({
      kind: {
        case: 'sendResult',
        value: {
          requestId: send.requestId,
          duplicate: result.seqs.every((s) => s.duplicate),
          devices: result.seqs.map((s) => ({ deviceId: s.deviceId, seq: BigInt(s.seq) })),
        },
      },
    });
    let fresh = 0;
    let latencyMs = -1;
    for (const s of result.seqs) {
      if (s.duplicate) continue;
      fresh++;
      const target = this.deps.registry.get(queueKey(send.destination, s.deviceId));
      if (!target) continue;
      const m = request.envelopes.find((e) => e.deviceId === s.deviceId)!;
      if (target.offerLive([this.stored(request, send, m.type, m.content, s.seq)])) {
        if (latencyMs < 0) latencyMs = performance.now() - arrived;
        this.deps.metrics.deliveryLatencyMs(latencyMs);
      }
    }
    this.deps.metrics.envelopesCommitted(fresh);
    return fresh === 0 ? 'duplicate' : 'ok';
  }

  private deliverOnline(conn: SendingConnection, send: ValidatedSend, source: StoredEnvelope['source'], now: number): void {
    const delivered: Array<{ deviceId: number; seq: bigint }> = [];
    for (const m of send.messages) {
      const target = this.deps.registry.get(queueKey(send.destination, m.deviceId));
      if (!target) continue;
      target.deliverOnline({
        seq: 0 as Seq,
        type: m.type,
        messageId: send.messageIdBytes,
        ...(source ? { source } : {}),
        timestamp: send.timestamp,
        serverTimestamp: now,
        urgent: false,
        content: m.content,
      });
      delivered.push({ deviceId: m.deviceId, seq: 0n });
    }
    conn.sendFrame({ kind: { case: 'sendResult', value: { requestId: send.requestId, duplicate: false, devices: delivered } } });
  }

  private stored(request: EnqueueRequest, send: ValidatedSend, type: number, content: Uint8Array, seq: Seq): StoredEnvelope {
    return {
      seq,
      type,
      messageId: send.messageIdBytes,
      ...(request.source ? { source: request.source } : {}),
      timestamp: request.timestamp,
      serverTimestamp: request.serverTimestamp,
      urgent: request.urgent,
      content,
    };
  }
}
