// SPDX-License-Identifier: AGPL-3.0-only
/**
 * Multi-recipient intake (DESIGN §5, §7): one SendMulti frame carries one sealed-sender v2 upload
 * for many accounts. The relay parses it, checks every recipient's device set (collecting every
 * wrong recipient into one refusal), then commits one envelope per recipient device in ONE group
 * commit, storing the shared body once and each device's small per-account header next to a
 * reference to it (hybrid fan-out). The answer (SendMultiResult) goes out after the commit,
 * then live delivery to connected recipients, who see an ordinary SEALED envelope
 * (`header ‖ body`). Online-only sends are delivered to connected devices and stored nowhere.
 *
 * On the authenticated socket the combined access key must be empty and unknown recipients are
 * NOT_FOUND; on the unidentified socket the key must be the XOR of every recipient's access key,
 * and every failure before it is verified (an unknown recipient included) is UNAUTHORIZED.
 */
import { createHash } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { CryptoError, joinMultiRecipientPart, parseMultiRecipientMessage, type MultiRecipientMessage } from '@parley/crypto';
import {
  aciToBytes,
  EnvelopeType,
  isParleyError,
  LIMITS,
  parseAci,
  ParleyError,
  validateSendMulti,
  type Aci,
  type DeviceId,
  type RecipientDeviceDetails,
  type SendMulti,
  type Seq,
} from '@parley/protocol';
import type { Clock } from './clock.js';
import type { RelayConfig } from './config.js';
import type { ConnectionRegistry } from './connection-registry.js';
import { queueKey } from './device-connection.js';
import { contentHash, deviceSetProblems, type DeviceDirectory, type DirectoryDevice, type SendingConnection } from './envelope-intake.js';
import type { EnqueueRequest, EnqueueResult, StoredEnvelope } from './ports/envelope-store.js';
import type { RelayMetrics, SendOutcome } from './relay-metrics.js';
import type { UnidentifiedAccess } from './unidentified-access.js';

/** What multi-recipient intake depends on. */
export interface MultiIntakeDeps {
  readonly config: RelayConfig;
  readonly clock: Clock;
  readonly directory: DeviceDirectory;
  readonly registry: ConnectionRegistry;
  /** Commits the requests of one send in one group commit (one transaction). */
  readonly commitGroup: (requests: readonly EnqueueRequest[]) => Promise<EnqueueResult[]>;
  readonly metrics: RelayMetrics;
  /** As for Send: the sending device's and account's buckets. Default: no limit. */
  readonly admitSend?: (sender: { readonly aci: Aci; readonly deviceId: DeviceId }) => Promise<void>;
  /** As for Send: unidentified sends per client address. Default: no limit. */
  readonly admitUnidentified?: (clientAddress: string) => Promise<void>;
  readonly unidentified: UnidentifiedAccess;
}

/** One recipient after parsing. */
interface Recipient {
  readonly aci: Aci;
  readonly devices: ReadonlyArray<{ readonly deviceId: number; readonly registrationId: number }>;
  readonly header: Uint8Array;
}

/** See the module comment. */
export class MultiIntake {
  private readonly deps: MultiIntakeDeps;
  /** Numbers the store's groups; only needs to differ between the sends of one batch. */
  private groups = 0;

  constructor(deps: MultiIntakeDeps) {
    this.deps = deps;
  }

  /** Handles one SendMulti from `conn`; always answers it (SendMultiResult or Error). */
  handle(conn: SendingConnection, frame: SendMulti): void {
    conn.unansweredSends++;
    const metrics = this.deps.metrics;
    this.process(conn, frame)
      .then(
        (outcome) => metrics.multiSendAnswered(outcome),
        (err: unknown) => {
          metrics.multiSendAnswered(isParleyError(err) ? err.code : 'INTERNAL');
          conn.sendError(frame.requestId, err);
        },
      )
      .finally(() => conn.unansweredSends--);
  }

  private async process(conn: SendingConnection, raw: SendMulti): Promise<SendOutcome> {
    const { config, clock } = this.deps;
    const arrived = performance.now();
    const origin = conn.origin;
    if (origin.kind === 'device') await this.deps.admitSend?.(origin);
    else await this.deps.admitUnidentified?.(origin.clientAddress);
    const now = clock.now();
    const send = validateSendMulti(raw, now, { maxPayloadBytes: config.maxMultiPayloadBytes, maxClockSkewMs: LIMITS.maxClockSkewMs });
    if (origin.kind === 'device' && send.combinedAccessKey.length !== 0) {
      throw new ParleyError('BAD_REQUEST', 'combined_access_key belongs on the unidentified socket only');
    }
    const { recipients, sharedBody } = this.parse(send.payload);

    const devices = origin.kind === 'unidentified' ? await this.deps.unidentified.authorizeMany(recipients.map((r) => r.aci), send.combinedAccessKey) : await this.knownDevices(recipients);
    this.checkDeviceSets(recipients, devices, origin.kind === 'device' ? origin : undefined);

    const fanout = recipients.reduce((n, r) => n + r.devices.length, 0);
    if (send.online) {
      this.deliverOnline(conn, send.requestId, send.messageIdBytes, send.timestamp, now, recipients, sharedBody);
      this.deps.metrics.multiFanout(fanout);
      return 'ok';
    }

    const digest = createHash('sha256').update(sharedBody).digest();
    const body = { id: new Uint8Array(digest), bytes: sharedBody };
    const group = (this.groups = (this.groups % Number.MAX_SAFE_INTEGER) + 1);
    const requests: EnqueueRequest[] = recipients.map((r) => {
      // The dedup hash covers the header and, through its digest, the shared body: a retry of the
      // same upload is a duplicate, another body under the same message id is ID_REUSED.
      const hash = contentHash(Buffer.concat([r.header, digest]));
      return {
        destination: r.aci,
        messageId: send.messageId,
        timestamp: send.timestamp,
        serverTimestamp: now,
        urgent: send.urgent,
        expiresAt: now + config.retentionMs,
        maxQueueDepth: config.maxQueueDepth,
        envelopes: r.devices.map((d) => ({ deviceId: d.deviceId as DeviceId, type: EnvelopeType.SEALED, content: r.header, contentHash: hash })),
        sharedBody: body,
        group,
      };
    });
    const results = await this.deps.commitGroup(requests);
    if (results.some((r) => r.status === 'id-reused')) {
      throw new ParleyError('ID_REUSED', 'this message id was used before with a different body');
    }
    const queued: Array<{ recipient: Recipient; seqs: ReadonlyArray<{ deviceId: DeviceId; seq: Seq; duplicate: boolean }> }> = [];
    const full: Uint8Array[] = [];
    results.forEach((result, i) => {
      const recipient = recipients[i]!;
      if (result.status === 'queued') queued.push({ recipient, seqs: result.seqs });
      else full.push(aciToBytes(recipient.aci));
    });
    conn.sendFrame({
      kind: {
        case: 'sendMultiResult',
        value: {
          requestId: send.requestId,
          duplicate: full.length === 0 && queued.every((q) => q.seqs.every((s) => s.duplicate)),
          recipients: queued.map((q) => ({ aci: aciToBytes(q.recipient.aci), devices: q.seqs.map((s) => ({ deviceId: s.deviceId, seq: BigInt(s.seq) })) })),
          fullRecipients: full,
        },
      },
    });

    let fresh = 0;
    let latencyMs = -1;
    for (const q of queued) {
      let content: Uint8Array | undefined;
      for (const s of q.seqs) {
        if (s.duplicate) continue;
        fresh++;
        const target = this.deps.registry.get(queueKey(q.recipient.aci, s.deviceId));
        if (!target) continue;
        // One joined copy per recipient account, and only when one of its devices is online.
        content ??= joinMultiRecipientPart(q.recipient.header, sharedBody);
        const envelope: StoredEnvelope = {
          seq: s.seq,
          type: EnvelopeType.SEALED,
          messageId: send.messageIdBytes,
          timestamp: send.timestamp,
          serverTimestamp: now,
          urgent: send.urgent,
          content,
        };
        if (target.offerLive([envelope])) {
          if (latencyMs < 0) latencyMs = performance.now() - arrived;
          this.deps.metrics.deliveryLatencyMs(latencyMs);
        }
      }
    }
    this.deps.metrics.envelopesCommitted(fresh);
    this.deps.metrics.multiFanout(fanout);
    return fresh === 0 && full.length === 0 ? 'duplicate' : 'ok';
  }

  /**
   * Parses and bounds the payload.
   * @throws ParleyError BAD_REQUEST (malformed, no or too many recipients, a device named twice)
   *   or FRAME_TOO_LARGE (one device's part over the envelope cap).
   */
  private parse(payload: Uint8Array): { recipients: Recipient[]; sharedBody: Uint8Array } {
    const { config } = this.deps;
    let parsed: MultiRecipientMessage;
    try {
      parsed = parseMultiRecipientMessage(payload);
    } catch (err) {
      if (err instanceof CryptoError) throw new ParleyError('BAD_REQUEST', 'the payload is not a well-formed sealed sender v2 multi-recipient message');
      throw err;
    }
    if (parsed.recipients.length === 0) throw new ParleyError('BAD_REQUEST', 'the payload names no recipient');
    if (parsed.recipients.length > config.maxMultiRecipients) {
      throw new ParleyError('BAD_REQUEST', `a multi-recipient send may name at most ${config.maxMultiRecipients} accounts`);
    }
    const recipients = parsed.recipients.map((r): Recipient => {
      if (r.devices.length > config.maxDevicesPerAccount) {
        throw new ParleyError('BAD_REQUEST', `a recipient may have at most ${config.maxDevicesPerAccount} devices`);
      }
      if (new Set(r.devices.map((d) => d.deviceId)).size !== r.devices.length) throw new ParleyError('BAD_REQUEST', 'a recipient names a device twice');
      if (r.header.length + parsed.sharedBody.length > config.maxEnvelopeBytes) {
        throw new ParleyError('FRAME_TOO_LARGE', `one device's part is over ${config.maxEnvelopeBytes} bytes`);
      }
      return { aci: parseAci(r.aci), devices: r.devices, header: r.header };
    });
    return { recipients, sharedBody: parsed.sharedBody };
  }

  /** The devices of every recipient on the authenticated socket; NOT_FOUND when one is not an account here. */
  private async knownDevices(recipients: readonly Recipient[]): Promise<Array<ReadonlyArray<DirectoryDevice>>> {
    const found = await Promise.all(recipients.map((r) => this.deps.directory.getDevices(r.aci)));
    if (found.some((d) => d === undefined)) throw new ParleyError('NOT_FOUND', 'a recipient is not an account on this relay');
    return found as Array<ReadonlyArray<DirectoryDevice>>;
  }

  /**
   * Checks every recipient's device set like a Send's, and refuses once for all of them:
   * MISMATCHED_DEVICES listing every recipient with missing or extra devices, else STALE_DEVICES
   * listing every recipient with re-registered ones.
   * @param sender the sending device on the authenticated socket: its own account may be a
   *   recipient, without the sending device.
   */
  private checkDeviceSets(recipients: readonly Recipient[], devices: ReadonlyArray<ReadonlyArray<DirectoryDevice>>, sender?: { aci: Aci; deviceId: DeviceId }): void {
    const mismatched: RecipientDeviceDetails[] = [];
    const stale: RecipientDeviceDetails[] = [];
    recipients.forEach((r, i) => {
      const p = deviceSetProblems(r.devices, devices[i]!, sender?.aci === r.aci ? sender.deviceId : undefined);
      if (p.missing.length > 0 || p.extra.length > 0) mismatched.push({ aci: r.aci, missingDevices: p.missing, extraDevices: p.extra, staleDevices: [] });
      else if (p.stale.length > 0) stale.push({ aci: r.aci, missingDevices: [], extraDevices: [], staleDevices: p.stale });
    });
    if (mismatched.length > 0) {
      throw new ParleyError('MISMATCHED_DEVICES', 'the upload does not name exactly the recipients\u2019 devices', { recipients: mismatched });
    }
    if (stale.length > 0) throw new ParleyError('STALE_DEVICES', 'some recipients\u2019 devices were re-registered', { recipients: stale });
  }

  private deliverOnline(
    conn: SendingConnection,
    requestId: number,
    messageId: Uint8Array,
    timestamp: number,
    now: number,
    recipients: readonly Recipient[],
    sharedBody: Uint8Array,
  ): void {
    const reached: Array<{ aci: Uint8Array; devices: Array<{ deviceId: number; seq: bigint }> }> = [];
    for (const r of recipients) {
      let content: Uint8Array | undefined;
      const devices: Array<{ deviceId: number; seq: bigint }> = [];
      for (const d of r.devices) {
        const target = this.deps.registry.get(queueKey(r.aci, d.deviceId as DeviceId));
        if (!target) continue;
        content ??= joinMultiRecipientPart(r.header, sharedBody);
        target.deliverOnline({ seq: 0 as Seq, type: EnvelopeType.SEALED, messageId, timestamp, serverTimestamp: now, urgent: false, content });
        devices.push({ deviceId: d.deviceId, seq: 0n });
      }
      if (devices.length > 0) reached.push({ aci: aciToBytes(r.aci), devices });
    }
    conn.sendFrame({ kind: { case: 'sendMultiResult', value: { requestId, duplicate: false, recipients: reached, fullRecipients: [] } } });
  }
}
