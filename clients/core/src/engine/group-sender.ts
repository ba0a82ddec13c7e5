// SPDX-License-Identifier: AGPL-3.0-only
/**
 * Group messages out (DESIGN §5, §7): each queued group send becomes ONE multi-recipient upload
 * (`SendMulti`) of a sealed sender v2 payload, encrypted once with this device's sender key for
 * the group.
 *
 * Before the first upload under a sender key, every member device must hold that key: the
 * sender key distribution message goes pairwise (the ordinary outbox, 1:1 encrypted) to each
 * member account that has a device without it, and a device counts as holding it once the
 * relay committed that send to it (the relay delivers a device's queue in order, so the key
 * arrives before the message). Then the payload is encrypted for every member device and saved,
 * with the sender key state it advanced, in one transaction before the first upload: a retry
 * after a dropped connection or a crash uploads the same bytes under the same envelope id, and
 * the relay's dedup delivers it once. A refusal for device sets (a member added or removed a
 * device, or re-registered one) committed nothing: the sessions are repaired (bundles for new
 * devices, which then get the key too), the payload dropped and the send encrypted again under
 * the same envelope id.
 *
 * The upload goes over the unidentified socket with the recipients' combined access key when
 * every member account's access key is known (`sealedRoute`), so the relay does not learn who
 * sent it; otherwise, and after a refusal there, over the device's authenticated socket. The
 * payload is sealed either way.
 */
import { CryptoError, randomMessageId, type DeviceAddress, type ProtocolStores } from '@parley/crypto';
import { fromHex, isParleyError, type SendMultiResult } from '@parley/protocol';
import { ClientError } from '../errors.js';
import type { GroupOutboxEntry, GroupRecord, GroupStore } from '../store/group-store.js';
import type { OutgoingSendMulti } from '../transport/relay-connection.js';
import { TransportError } from '../transport/transport-error.js';
import { encodeContent } from './content-codec.js';
import type { EngineStore } from './engine-store.js';
import type { GroupSelf } from './groups.js';
import type { Serial } from './serial.js';
import type { SessionManager } from './session-manager.js';

/** Backoff of retries, ms: attempt n waits min(max, base * 2^n). */
const RETRY_BASE_MS = 1000;
const RETRY_MAX_MS = 5 * 60_000;
/** When a send held by an unaccepted identity change is looked at again, ms. */
const UNTRUSTED_RETRY_MS = 24 * 3600_000;
/** Device-set repairs per send in one run before it waits with backoff. */
const MAX_REPAIRS = 5;
/** Uploads cut off by a dropped connection retried on the next one without backoff. */
const TRANSPORT_RETRIES_AT_ONCE = 3;
/** Group sends one run takes. */
const BATCH = 100;
/** How long a group's uploads go identified after a sealed one was refused, ms (10 min). */
const SEALED_REFUSED_MS = 10 * 60_000;

/**
 * The sender-key operations groups need (SessionCipher's, from @parley/crypto), each through the
 * protocol stores it is given (the real ones or a staged overlay) as device `self`.
 */
export interface GroupCipherPort {
  /** This device's distribution message for `distributionId` (the key is made on first use). */
  createDistribution(stores: ProtocolStores, self: DeviceAddress, distributionId: string): Promise<Uint8Array>;
  /** Stores a member device's sender key from its distribution message; returns the distribution id. */
  processDistribution(stores: ProtocolStores, self: DeviceAddress, sender: DeviceAddress, message: Uint8Array): Promise<string>;
  /** One sealed sender v2 payload for every recipient device. */
  encryptMulti(
    stores: ProtocolStores,
    self: DeviceAddress,
    input: { distributionId: string; plaintext: Uint8Array; senderCertificate: Uint8Array; recipients: readonly DeviceAddress[]; groupId: Uint8Array },
  ): Promise<Uint8Array>;
  /** The recipient accounts (ACIs) a payload names; throws for a malformed one. */
  recipientsOf(payload: Uint8Array): string[];
}

/** The socket an upload goes over. */
export interface MultiSendSocket {
  readonly connected: boolean;
  sendMulti(send: OutgoingSendMulti): Promise<SendMultiResult>;
}

/** What the sender needs. */
export interface GroupSenderDeps {
  readonly store: EngineStore;
  readonly groups: GroupStore;
  readonly sessions: SessionManager;
  readonly serial: Serial;
  readonly self: GroupSelf;
  readonly now: () => number;
  readonly connection: () => MultiSendSocket | undefined;
  /** This device's current sender certificate (fetched and cached by the caller). */
  readonly certificate: () => Promise<Uint8Array>;
  readonly cipher: GroupCipherPort;
  /** Drains the pairwise outbox (sender keys go that way); resolves when that run is done. */
  readonly flushPairwise: () => Promise<unknown>;
  /**
   * The unidentified socket and the XOR of the recipient accounts' access keys, when every one
   * of them is known (sealed sending); undefined: the upload goes over the device socket.
   * Without it every upload goes over the device socket.
   */
  readonly sealedRoute?: (recipientAcis: readonly string[]) => { socket: MultiSendSocket; combinedAccessKey: Uint8Array } | undefined;
}

/** What a flush did. */
export interface GroupFlushResult {
  readonly sent: number;
  readonly pending: number;
  readonly failed: number;
  /** Members whose identity key changed: the group's sends wait until the user accepts it. */
  readonly untrusted: readonly string[];
}

type Outcome = 'sent' | 'pending' | 'failed' | 'again';

/** See the module comment. */
export class GroupSender {
  private readonly deps: GroupSenderDeps;
  private flushing: Promise<GroupFlushResult> | undefined;
  /** Until when (ms) a group's uploads go identified after the unidentified socket refused one. */
  private readonly sealedRefused = new Map<string, number>();
  private next: Promise<GroupFlushResult> | undefined;

  constructor(deps: GroupSenderDeps) {
    this.deps = deps;
  }

  /** Sends every group send due when called (a call during a run gets one more run after it). */
  flush(): Promise<GroupFlushResult> {
    if (!this.flushing) {
      this.flushing = this.run().finally(() => (this.flushing = undefined));
      return this.flushing;
    }
    this.next ??= this.flushing
      .catch(() => undefined)
      .then(() => {
        this.next = undefined;
        return this.flush();
      });
    return this.next;
  }

  private async run(): Promise<GroupFlushResult> {
    const { groups, now } = this.deps;
    let sent = 0;
    let pending = 0;
    let failed = 0;
    const untrusted = new Set<string>();
    const due = groups.outbox.due(now(), BATCH);
    for (const first of due) {
      let outcome: Outcome = 'again';
      for (let repairs = 0; outcome === 'again'; repairs++) {
        const entry = groups.outbox.get(first.id);
        if (!entry) {
          outcome = 'sent';
          break;
        }
        if (repairs > MAX_REPAIRS) {
          groups.outbox.reschedule(entry.id, now() + this.backoff(entry.attempts), 'REPAIRS');
          outcome = 'pending';
          break;
        }
        outcome = await this.attempt(entry, untrusted);
      }
      if (outcome === 'sent') sent++;
      else if (outcome === 'failed') failed++;
      else pending++;
    }
    return { sent, pending, failed, untrusted: [...untrusted] };
  }

  /** One attempt at one send: make sure a payload is saved, then upload it. */
  private async attempt(entry: GroupOutboxEntry, untrusted: Set<string>): Promise<Outcome> {
    const { groups } = this.deps;
    const group = groups.group(entry.groupId);
    if (!group?.isMember) {
      // Left or removed meanwhile: nobody would take it.
      groups.outbox.fail(entry.id);
      return 'failed';
    }
    const socket = this.deps.connection();
    if (!socket?.connected) return 'pending';
    // A payload under a key that was replaced (a member left since) is encrypted again, so the
    // one who left cannot read it. ID_REUSED then means the old one went through after all.
    if (entry.payload && entry.distributionId !== group.ownDistributionId) {
      groups.outbox.clearAttempt(entry.id);
      entry = groups.outbox.get(entry.id)!;
    }
    if (!entry.payload) {
      const prepared = await this.prepare(entry, group, untrusted);
      if (prepared !== 'ready') return prepared;
      entry = groups.outbox.get(entry.id)!;
    }
    const upload = { messageId: fromHex(entry.envelopeMessageId)!, timestamp: BigInt(entry.timestamp), urgent: entry.urgent, payload: entry.payload! };
    try {
      const result = (await this.sendSealed(entry.groupId, upload)) ?? (await socket.sendMulti(upload));
      if (result.fullRecipients.length > 0) {
        // Queued for everyone else; the same bytes again later reach the full queues (the
        // others answer as duplicates).
        groups.outbox.reschedule(entry.id, this.deps.now() + this.backoff(entry.attempts), 'QUEUE_FULL');
        return 'pending';
      }
      groups.outbox.complete(entry.id);
      return 'sent';
    } catch (err) {
      return this.refused(entry, err, untrusted);
    }
  }

  /**
   * Uploads over the unidentified socket when every recipient account's access key is known and
   * this group's sealed uploads were not refused lately; undefined when it should go over the
   * device socket (not possible, or refused: the relay answers every failure there alike and
   * commits nothing, so the same upload then goes identified and the relay's answer says why).
   */
  private async sendSealed(groupId: string, upload: OutgoingSendMulti): Promise<SendMultiResult | undefined> {
    const route = this.deps.sealedRoute;
    if (!route || (this.sealedRefused.get(groupId) ?? 0) > this.deps.now()) return undefined;
    let recipients: string[];
    try {
      recipients = this.deps.cipher.recipientsOf(upload.payload as Uint8Array);
    } catch {
      return undefined;
    }
    const way = route(recipients);
    if (!way) return undefined;
    try {
      return await way.socket.sendMulti({ ...upload, combinedAccessKey: way.combinedAccessKey });
    } catch {
      // Refused (UNAUTHORIZED for a stale key and a changed device set alike), rate limited, or
      // the socket would not open or dropped: the same bytes under the same id go identified now
      // (a copy the relay did commit is answered as a duplicate), and this group's uploads stay
      // identified for a while.
      this.sealedRefused.set(groupId, this.deps.now() + SEALED_REFUSED_MS);
      return undefined;
    }
  }

  /**
   * Encrypts `plaintext` once under this device's sender key `distributionId` for `devices`
   * (sealed with `certificate`), through a staged overlay of the protocol stores, and commits the
   * sender key state it advanced — with whatever `save` writes (the payload of an outbox entry) —
   * in one transaction before anything is uploaded.
   */
  private seal(
    groupId: string,
    distributionId: string,
    plaintext: Uint8Array,
    certificate: Uint8Array,
    devices: readonly DeviceAddress[],
    save?: (payload: Uint8Array) => void,
  ): Promise<Uint8Array> {
    const { serial, store, self } = this.deps;
    return serial.run(async () => {
      const staged = store.stageProtocol();
      let payload: Uint8Array;
      try {
        payload = await this.deps.cipher.encryptMulti(staged.stores, self, { distributionId, plaintext, senderCertificate: certificate, recipients: devices, groupId: fromHex(groupId)! });
      } catch (err) {
        staged.discard();
        throw err;
      }
      store.transaction(() => {
        staged.commit();
        save?.(payload);
      });
      return payload;
    });
  }

  private async refused(entry: GroupOutboxEntry, err: unknown, untrusted: Set<string>): Promise<Outcome> {
    const { groups, now } = this.deps;
    if (err instanceof TransportError) {
      const wait = entry.attempts < TRANSPORT_RETRIES_AT_ONCE ? 0 : this.backoff(entry.attempts);
      groups.outbox.reschedule(entry.id, now() + wait, err.code);
      return 'pending';
    }
    if (isParleyError(err, 'ID_REUSED')) {
      groups.outbox.complete(entry.id);
      return 'sent';
    }
    if (isParleyError(err, 'MISMATCHED_DEVICES') || isParleyError(err, 'STALE_DEVICES')) {
      // Nothing was queued: fix the device sets and encrypt again under the same envelope id.
      const fixes = err.details.recipients ?? [];
      try {
        await this.deps.serial.run(async () => {
          for (const fix of fixes) {
            await this.deps.sessions.repair(fix.aci, { missing: fix.missingDevices, extra: fix.extraDevices, stale: fix.staleDevices });
          }
        });
      } catch (repairErr) {
        // A new device under a changed identity key waits for the user (like a 1:1 send); any
        // other failure waits with backoff.
        if (repairErr instanceof CryptoError && repairErr.is('UNTRUSTED_IDENTITY')) return this.holdOn(entry, repairErr, untrusted);
        groups.outbox.reschedule(entry.id, now() + this.backoff(entry.attempts), err.code);
        return 'pending';
      }
      this.deps.store.transaction(() => {
        for (const fix of fixes) groups.dropHolders(fix.aci, [...fix.extraDevices, ...fix.staleDevices]);
        groups.outbox.clearAttempt(entry.id);
      });
      return 'again';
    }
    if (isParleyError(err, 'RATE_LIMITED') || isParleyError(err, 'QUEUE_FULL') || isParleyError(err, 'INTERNAL')) {
      groups.outbox.reschedule(entry.id, now() + (err.details.retryAfterMs ?? this.backoff(entry.attempts)), err.code);
      return 'pending';
    }
    groups.outbox.fail(entry.id);
    return 'failed';
  }

  /**
   * Brings every member device the sender key, then encrypts and saves the payload. 'ready'
   * when saved; otherwise the entry was rescheduled (or failed) and the outcome says so.
   */
  private async prepare(entry: GroupOutboxEntry, group: GroupRecord, untrusted: Set<string>): Promise<Outcome | 'ready'> {
    const { groups, sessions, serial, store, self, now } = this.deps;
    const members = groups.members(entry.groupId).filter((m) => m.aci !== self.aci);
    if (members.length === 0) {
      // A group of one: nobody to upload to (the transcript reaches this account's devices).
      groups.outbox.complete(entry.id);
      return 'sent';
    }
    const addressOf = new Map(members.map((m) => [m.aci, m.address]));
    try {
      await serial.run(async () => {
        for (const m of members) await sessions.ensureSessions(m.aci);
      });
    } catch (err) {
      return this.holdOn(entry, err, untrusted);
    }
    const distributionId = group.ownDistributionId ?? groups.rotateOwnDistribution(entry.groupId);
    const devices: DeviceAddress[] = [];
    for (const m of members) for (const deviceId of await sessions.knownDevices(m.aci)) devices.push({ aci: m.aci, deviceId });
    if (devices.length === 0) {
      groups.outbox.reschedule(entry.id, now() + this.backoff(entry.attempts), 'NO_DEVICES');
      return 'pending';
    }

    const lacking = (): string[] => {
      const held = new Set(groups.holders(entry.groupId, distributionId).map((h) => `${h.aci}.${h.deviceId}`));
      return [...new Set(devices.filter((d) => !held.has(`${d.aci}.${d.deviceId}`)).map((d) => d.aci))];
    };
    let missing = lacking();
    if (missing.length > 0) {
      const onTheirWay = new Set(groups.pendingKeySends(entry.groupId, distributionId));
      const toSend = missing.filter((aci) => !onTheirWay.has(aci));
      if (toSend.length > 0) {
        const skdm = await serial.run(() => this.deps.cipher.createDistribution(store.protocol, self, distributionId));
        const content = encodeContent({ body: { case: 'senderKeyDistribution', value: { groupId: fromHex(entry.groupId)!, message: skdm } } });
        store.transaction(() => {
          for (const aci of toSend) {
            const id = store.outboxAdd({ destinationAci: aci, destinationAddress: addressOf.get(aci)!, content, nowMs: now() });
            groups.recordKeySend(id, entry.groupId, distributionId, aci);
          }
        });
      }
      await this.deps.flushPairwise();
      missing = lacking();
      if (missing.length > 0) {
        groups.outbox.reschedule(entry.id, now() + this.backoff(entry.attempts), 'KEY_PENDING');
        return 'pending';
      }
    }

    let certificate: Uint8Array;
    try {
      certificate = await this.deps.certificate();
    } catch (err) {
      return this.holdOn(entry, err, untrusted);
    }
    try {
      await this.seal(entry.groupId, distributionId, entry.content, certificate, devices, (payload) =>
        groups.outbox.saveAttempt(entry.id, distributionId, payload),
      );
    } catch (err) {
      if (err instanceof CryptoError && err.is('NO_SESSION')) {
        // A session went stale between the check and the encryption: fetch it and go again.
        const byAci = new Map<string, number[]>();
        for (const name of err.addresses ?? []) {
          const [aci, device] = name.split('.');
          if (aci && device) byAci.set(aci, [...(byAci.get(aci) ?? []), Number(device)]);
        }
        try {
          await serial.run(async () => {
            for (const [aci, ids] of byAci) await sessions.ensureSessions(aci, ids);
          });
        } catch (e) {
          return this.holdOn(entry, e, untrusted);
        }
        return 'again';
      }
      return this.holdOn(entry, err, untrusted);
    }
    return 'ready';
  }

  /**
   * Sends `content` (a typing indicator) to group `groupId` online-only: one multi-recipient
   * upload under this device's current sender key with `online: true`, which the relay hands to
   * connected devices only and never queues. Best effort and never through the outbox: it goes
   * to the member accounts whose every known device holds the key already (no key is handed out
   * for a typing indicator), and a refusal is not repaired. Resolves with the number of devices
   * the relay handed it to.
   * @throws TransportError when not connected; ClientError NOT_GROUP_MEMBER.
   */
  async sendOnline(groupId: string, content: Uint8Array): Promise<number> {
    const { groups, sessions, self, now } = this.deps;
    const group = groups.group(groupId);
    if (!group?.isMember) throw new ClientError('NOT_GROUP_MEMBER', 'this account is not a member of the group');
    const socket = this.deps.connection();
    if (!socket?.connected) throw new TransportError('DISCONNECTED', 'not connected to the relay');
    const distributionId = group.ownDistributionId;
    if (distributionId === undefined) return 0;
    const held = new Set(groups.holders(groupId, distributionId).map((h) => `${h.aci}.${h.deviceId}`));
    const devices: DeviceAddress[] = [];
    for (const m of groups.members(groupId)) {
      if (m.aci === self.aci) continue;
      const ids = await sessions.knownDevices(m.aci);
      if (ids.length > 0 && ids.every((d) => held.has(`${m.aci}.${d}`))) for (const deviceId of ids) devices.push({ aci: m.aci, deviceId });
    }
    if (devices.length === 0) return 0;
    const payload = await this.seal(groupId, distributionId, content, await this.deps.certificate(), devices);
    const upload: OutgoingSendMulti = { messageId: randomMessageId(), timestamp: BigInt(now()), urgent: false, online: true, payload };
    let result: SendMultiResult;
    try {
      result = (await this.sendSealed(groupId, upload)) ?? (await socket.sendMulti(upload));
    } catch (err) {
      // A device set changed: the next group message repairs it; a typing indicator is not worth it.
      if (isParleyError(err, 'MISMATCHED_DEVICES') || isParleyError(err, 'STALE_DEVICES')) return 0;
      throw err;
    }
    return result.recipients.reduce((n, r) => n + r.devices.length, 0);
  }

  /** Reschedules an entry that cannot be encrypted now; a bug's error is thrown on. */
  private holdOn(entry: GroupOutboxEntry, err: unknown, untrusted: Set<string>): Outcome {
    const { groups, now } = this.deps;
    if (err instanceof CryptoError && err.is('UNTRUSTED_IDENTITY')) {
      for (const name of err.addresses ?? []) untrusted.add(name.split('.')[0]!);
      groups.outbox.reschedule(entry.id, now() + UNTRUSTED_RETRY_MS, err.code);
      return 'pending';
    }
    if (err instanceof TransportError || err instanceof CryptoError || isParleyError(err) || (err instanceof Error && 'code' in err)) {
      groups.outbox.reschedule(entry.id, now() + this.backoff(entry.attempts), String((err as { code?: unknown }).code ?? 'ERROR'));
      return 'pending';
    }
    throw err;
  }

  private backoff(attempts: number): number {
    return Math.min(RETRY_MAX_MS, RETRY_BASE_MS * 2 ** Math.min(attempts, 20));
  }
}
