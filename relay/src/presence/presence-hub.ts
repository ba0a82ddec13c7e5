// SPDX-License-Identifier: AGPL-3.0-only
/**
 * Presence on one relay process (DESIGN §8): keeps each connected device's entry in the
 * PresenceStore alive, answers `PresenceSet` and `PresenceSubscribe` frames, and sends
 * `PresenceUpdate` frames to subscribers whenever a watched account's presence changes.
 *
 * - A device is `online` from the moment it connects until it says `away` (or back); its entry
 *   is refreshed on the keepalive cadence with a lifetime of `ttlMs`; its clean end removes it
 *   with last seen = now.
 * - A subscription replaces the connection's whole set. Every target's token is checked against
 *   the account's stored hash (constant time, in the directory); a wrong token, an unknown
 *   account, presence turned off and an account at its subscriber cap are refused alike.
 * - Each watched account is watched once per process, however many connections subscribe to
 *   it; its last known presence is cached, re-read when the store announces a change, and
 *   re-read for every watched account on each keepalive tick, which catches entries whose
 *   lifetime ran out (nobody announces those) and announcements pub/sub lost.
 * - Subscribers get an update only when what they would see changes (state, or last-seen time
 *   while offline), never per heartbeat. A connection whose socket is backed up gets no more
 *   frames for a while: its pending updates are coalesced to the latest per account (so they
 *   are bounded by its subscription cap) and sent once the socket drains.
 * - A token rotation or presence turned off ends every subscription to the account on every
 *   node: each subscriber gets a last `PresenceUpdate` OFFLINE with last_seen 0 (nothing known
 *   any more) and a `PresenceSubscribeResult` with request_id 0 refusing the account.
 */
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { enforceRateLimit, type RateLimiter } from '@parley/keyserver';
import {
  aciFromBytes,
  aciToBytes,
  isParleyError,
  LIMITS,
  ParleyError,
  PresenceState,
  type Aci,
  type DeviceId,
  type FrameInit,
  type PresenceSet,
  type PresenceSubscribe,
} from '@parley/protocol';
import { samePresence, type AccountPresence, type DevicePresenceState, type PresenceEvent, type PresenceStore } from '../ports/presence-store.js';

/** A device connection as the hub sees it (a DeviceConnection satisfies it). */
export interface PresencePeer {
  readonly queue: { readonly aci: Aci; readonly deviceId: DeviceId };
  /** Bytes queued on the socket and not yet sent. */
  readonly bufferedAmount: number;
  sendFrame(frame: FrameInit): void;
  sendError(requestId: number, err: unknown): void;
}

/** What the hub counts (RelayMetrics implements it). */
export interface PresenceMetrics {
  /** `n` PresenceUpdate frames were written to sockets. */
  presenceUpdatesSent(n: number): void;
  /** A limiter refused a request (`presence_subscribe`, `presence_set`, `presence_subscribe_queue`). */
  rateLimitHit(limiter: string): void;
}

/** Options of {@link PresenceHub}. */
export interface PresenceHubOptions {
  readonly store: PresenceStore;
  /** Whether `token` is the account's current presence token (constant time; false for unknown accounts and presence off). */
  readonly verifyToken: (aci: Aci, token: Uint8Array) => Promise<boolean>;
  readonly log: Logger;
  readonly metrics: PresenceMetrics;
  /** Lifetime of a device's entry without a heartbeat, ms. */
  readonly ttlMs: number;
  /** Most targets one connection may subscribe to. */
  readonly maxTargets: number;
  /** Most connections of this process subscribed to one account; past it targets are refused. */
  readonly maxSubscribersPerAccount: number;
  /** PresenceSubscribe frames per device; undefined = unlimited. */
  readonly subscribeLimiter?: RateLimiter;
  /** PresenceSet frames per device; undefined = unlimited. */
  readonly setLimiter?: RateLimiter;
  /** Socket bytes past which updates wait (coalesced). Default {@link PRESENCE_HIGH_WATER_BYTES}. */
  readonly highWaterBytes?: number;
  /** How often waiting updates are retried while some wait, ms. Default 100. */
  readonly flushIntervalMs?: number;
}

/** Default of {@link PresenceHubOptions.highWaterBytes}: a connection with more than 1 MiB unsent is slow. */
export const PRESENCE_HIGH_WATER_BYTES = 1024 * 1024;

/** Subscribe frames one connection may have waiting; past it they are refused (RATE_LIMITED). */
const MAX_QUEUED_SUBSCRIBES = 4;
/** Watched accounts re-read per store call on a tick. */
const SWEEP_CHUNK = 256;

interface Target {
  /** What this connection was last sent for the account; undefined: nothing yet. */
  sent: AccountPresence | undefined;
  /** The token it was accepted with, checked again after announcements may have been lost. */
  readonly token: Uint8Array;
}

interface PeerState {
  readonly peer: PresencePeer;
  readonly connection: string;
  state: DevicePresenceState;
  readonly targets: Map<Aci, Target>;
  /** Updates waiting for the socket to drain; one per account, the latest. */
  readonly pending: Map<Aci, AccountPresence>;
  /** Subscribe frames in progress or waiting (they run one at a time). */
  queued: number;
  chain: Promise<void>;
}

interface Watch {
  readonly subscribers: Set<PeerState>;
  /** Subscribe frames in progress that need this watch. */
  holds: number;
  /** Resolves once the store announces this account to us. */
  ready: Promise<void>;
  last: AccountPresence | undefined;
  reading: boolean;
  dirty: boolean;
  /** Bumped by each revocation: a subscription checked before it must not start after it. */
  generation: number;
}

const WIRE_STATE = { online: PresenceState.ONLINE, away: PresenceState.AWAY, offline: PresenceState.OFFLINE } as const;

/** See the module comment. */
export class PresenceHub {
  private readonly o: PresenceHubOptions;
  private readonly peers = new Map<PresencePeer, PeerState>();
  private readonly watches = new Map<Aci, Watch>();
  private readonly waiting = new Set<PeerState>();
  private readonly nodeId = randomBytes(6).toString('hex');
  private readonly unlisten: () => void;
  private connections = 0;
  private subscriptionCount = 0;
  private flushTimer: NodeJS.Timeout | undefined;
  private healthy = true;
  private closed = false;
  private ticking = false;

  constructor(options: PresenceHubOptions) {
    this.o = options;
    this.unlisten = options.store.onEvent((e) => this.onStoreEvent(e));
  }

  /** Accepted subscriptions (connection × account) on this process. */
  get subscriptions(): number {
    return this.subscriptionCount;
  }

  /** Accounts watched by this process (for tests). */
  get watchedAccounts(): number {
    return this.watches.size;
  }

  /** A device connected: it is online from now on. Call before an older connection of the device is closed. */
  connected(peer: PresencePeer): void {
    if (this.closed || this.peers.has(peer)) return;
    const ps: PeerState = {
      peer,
      connection: `${this.nodeId}.${++this.connections}`,
      state: 'online',
      targets: new Map(),
      pending: new Map(),
      queued: 0,
      chain: Promise.resolve(),
    };
    this.peers.set(peer, ps);
    this.write(() => this.o.store.set(this.entry(ps), this.o.ttlMs));
  }

  /** The device's connection ended: its subscriptions end, and its entry goes (last seen = now). */
  disconnected(peer: PresencePeer): void {
    const ps = this.peers.get(peer);
    if (!ps) return;
    this.peers.delete(peer);
    this.waiting.delete(ps);
    ps.pending.clear();
    for (const aci of [...ps.targets.keys()]) this.unsubscribe(ps, aci);
    if (this.closed) return;
    this.write(() => this.o.store.remove({ aci: peer.queue.aci, deviceId: peer.queue.deviceId, connection: ps.connection }));
  }

  /** Handles a PresenceSet frame. */
  onSet(peer: PresencePeer, frame: PresenceSet): void {
    const ps = this.peers.get(peer);
    if (!ps) return;
    const state = frame.state === PresenceState.ONLINE ? 'online' : frame.state === PresenceState.AWAY ? 'away' : undefined;
    if (!state) {
      peer.sendError(0, new ParleyError('BAD_REQUEST', 'a device sets its presence to ONLINE or AWAY'));
      return;
    }
    this.limited(this.o.setLimiter, peer, 'presence_set').then(
      () => {
        if (this.peers.get(peer) !== ps || ps.state === state) return;
        ps.state = state;
        this.write(() => this.o.store.set(this.entry(ps), this.o.ttlMs));
      },
      (err: unknown) => peer.sendError(0, err),
    );
  }

  /** Handles a PresenceSubscribe frame: answers PresenceSubscribeResult (or an Error) and starts updates. */
  onSubscribe(peer: PresencePeer, frame: PresenceSubscribe): void {
    const ps = this.peers.get(peer);
    if (!ps) return;
    let targets: Array<{ aci: Aci; token: Uint8Array }>;
    try {
      targets = this.parseTargets(frame);
    } catch (err) {
      peer.sendError(frame.requestId, err);
      return;
    }
    if (ps.queued >= MAX_QUEUED_SUBSCRIBES) {
      this.o.metrics.rateLimitHit('presence_subscribe_queue');
      peer.sendError(frame.requestId, new ParleyError('RATE_LIMITED', 'too many presence subscriptions waiting', { retryAfterMs: 100 }));
      return;
    }
    ps.queued++;
    ps.chain = ps.chain
      .then(() => this.subscribe(ps, frame.requestId, targets))
      .catch((err: unknown) => {
        if (this.peers.get(peer) === ps) peer.sendError(frame.requestId, err);
      })
      .finally(() => {
        ps.queued--;
      });
  }

  /**
   * The keepalive tick: heartbeats for every connected device, then a re-read of every watched
   * account (entries whose lifetime ran out, announcements that were lost).
   */
  async tick(): Promise<void> {
    // A slow store must not stack ticks up: the next one comes a keepalive interval later.
    if (this.closed || this.ticking) return;
    this.ticking = true;
    try {
      const entries = [...this.peers.values()].map((ps) => this.entry(ps));
      if (entries.length > 0) await this.attempt(() => this.o.store.refresh(entries, this.o.ttlMs));
      await this.rereadAll();
    } finally {
      this.ticking = false;
    }
  }

  /**
   * Ends every subscription to `aci`, here at once and on every other node through the store
   * (the account's presence token changed). A node that misses the announcement checks the
   * tokens of its subscriptions again when it resyncs.
   */
  revoke(aci: Aci): void {
    this.cut(aci);
    this.write(() => this.o.store.revoke(aci));
  }

  /** Stops: no more writes or updates. The store is closed by its owner. */
  close(): void {
    this.closed = true;
    this.unlisten();
    clearInterval(this.flushTimer);
    this.flushTimer = undefined;
  }

  private entry(ps: PeerState) {
    return { aci: ps.peer.queue.aci, deviceId: ps.peer.queue.deviceId, connection: ps.connection, state: ps.state };
  }

  /**
   * Checks the frame's shape; nothing changes when it is refused.
   * @throws ParleyError BAD_REQUEST.
   */
  private parseTargets(frame: PresenceSubscribe): Array<{ aci: Aci; token: Uint8Array }> {
    if (frame.targets.length > this.o.maxTargets) {
      throw new ParleyError('BAD_REQUEST', `a presence subscription may name at most ${this.o.maxTargets} accounts`);
    }
    const seen = new Set<Aci>();
    return frame.targets.map((t) => {
      const aci = aciFromBytes(t.aci);
      if (t.token.length !== LIMITS.presenceTokenBytes) throw new ParleyError('BAD_REQUEST', `a presence token is ${LIMITS.presenceTokenBytes} bytes`);
      if (seen.has(aci)) throw new ParleyError('BAD_REQUEST', 'an account is named twice in one presence subscription');
      seen.add(aci);
      return { aci, token: t.token };
    });
  }

  private async limited(limiter: RateLimiter | undefined, peer: PresencePeer, name: string): Promise<void> {
    if (!limiter) return;
    try {
      await enforceRateLimit(limiter, `${peer.queue.aci}.${peer.queue.deviceId}`);
    } catch (err) {
      if (isParleyError(err) && err.code === 'RATE_LIMITED') this.o.metrics.rateLimitHit(name);
      throw err;
    }
  }

  private async subscribe(ps: PeerState, requestId: number, targets: ReadonlyArray<{ aci: Aci; token: Uint8Array }>): Promise<void> {
    const { peer } = ps;
    await this.limited(this.o.subscribeLimiter, peer, 'presence_subscribe');
    if (this.peers.get(peer) !== ps) return;
    // Watch before checking tokens: a rotation announced from here on is seen (generation), and
    // one committed before is seen by the token check.
    const held = targets.map((t) => this.hold(t.aci));
    try {
      try {
        await Promise.all(held.map((w) => w.ready));
      } catch (err) {
        this.report(false, err);
        throw new ParleyError('INTERNAL', 'presence is unavailable right now');
      }
      const generations = held.map((w) => w.generation);
      const valid = await Promise.all(targets.map((t) => this.o.verifyToken(t.aci, t.token)));
      if (this.peers.get(peer) !== ps) return;
      const accepted = new Set<Aci>();
      const refused: Uint8Array[] = [];
      targets.forEach((t, i) => {
        const w = held[i]!;
        const ok = valid[i] && w.generation === generations[i] && (w.subscribers.has(ps) || w.subscribers.size < this.o.maxSubscribersPerAccount);
        if (ok) accepted.add(t.aci);
        else refused.push(aciToBytes(t.aci));
      });
      for (const aci of [...ps.targets.keys()]) if (!accepted.has(aci)) this.unsubscribe(ps, aci);
      for (const t of targets) {
        if (!accepted.has(t.aci)) continue;
        const w = this.watches.get(t.aci)!;
        if (!w.subscribers.has(ps)) {
          w.subscribers.add(ps);
          this.subscriptionCount++;
        }
        ps.targets.set(t.aci, { sent: undefined, token: t.token });
        ps.pending.delete(t.aci);
      }
      peer.sendFrame({ kind: { case: 'presenceSubscribeResult', value: { requestId, refused } } });
      // Counts only: which accounts a device watches is nobody's business, tokens even less.
      this.o.log.debug({ aci: peer.queue.aci, deviceId: peer.queue.deviceId, accepted: accepted.size, refused: refused.length }, 'presence subscription');
      for (const aci of accepted) {
        const w = this.watches.get(aci)!;
        if (w.last && !w.reading) this.deliver(ps, aci, w.last);
        else void this.refresh(aci);
      }
    } finally {
      for (const t of targets) this.release(t.aci);
    }
  }

  private hold(aci: Aci): Watch {
    let w = this.watches.get(aci);
    if (!w) {
      w = { subscribers: new Set(), holds: 0, ready: Promise.resolve(), last: undefined, reading: false, dirty: false, generation: 0 };
      const fresh = w;
      fresh.ready = this.o.store.watch([aci]).catch((err: unknown) => {
        // A later subscriber must not inherit a watch that never started.
        if (this.watches.get(aci) === fresh) this.watches.delete(aci);
        throw err;
      });
      this.watches.set(aci, w);
    }
    w.holds++;
    return w;
  }

  private release(aci: Aci): void {
    const w = this.watches.get(aci);
    if (!w) return;
    w.holds = Math.max(0, w.holds - 1);
    this.dropIfIdle(aci, w);
  }

  private dropIfIdle(aci: Aci, w: Watch): void {
    if (w.holds > 0 || w.subscribers.size > 0 || this.watches.get(aci) !== w) return;
    this.watches.delete(aci);
    this.o.store.unwatch([aci]).catch((err: unknown) => this.report(false, err));
  }

  private unsubscribe(ps: PeerState, aci: Aci): void {
    ps.targets.delete(aci);
    ps.pending.delete(aci);
    const w = this.watches.get(aci);
    if (!w || !w.subscribers.delete(ps)) return;
    this.subscriptionCount--;
    this.dropIfIdle(aci, w);
  }

  private onStoreEvent(e: PresenceEvent): void {
    if (this.closed) return;
    if (e.kind === 'changed') void this.refresh(e.aci);
    else if (e.kind === 'revoked') this.cut(e.aci);
    else void this.resync();
  }

  /** Announcements may have been lost: revocations (check every token again), then changes. */
  private async resync(): Promise<void> {
    await this.reverify();
    await this.rereadAll();
  }

  private async reverify(): Promise<void> {
    const checks: Array<{ ps: PeerState; aci: Aci; token: Uint8Array }> = [];
    for (const ps of this.peers.values()) for (const [aci, t] of ps.targets) checks.push({ ps, aci, token: t.token });
    for (let i = 0; i < checks.length && !this.closed; i += SWEEP_CHUNK) {
      const chunk = checks.slice(i, i + SWEEP_CHUNK);
      const valid = await Promise.all(chunk.map((c) => this.o.verifyToken(c.aci, c.token).catch(() => true)));
      chunk.forEach((c, n) => {
        if (!valid[n] && c.ps.targets.get(c.aci)?.token === c.token) this.cutOne(c.ps, c.aci);
      });
    }
  }

  /** A revocation: every subscriber of `aci` here loses it (see the module comment). */
  private cut(aci: Aci): void {
    const w = this.watches.get(aci);
    if (!w) return;
    w.generation++;
    for (const ps of [...w.subscribers]) this.cutOne(ps, aci);
  }

  private cutOne(ps: PeerState, aci: Aci): void {
    const bytes = aciToBytes(aci);
    this.unsubscribe(ps, aci);
    ps.peer.sendFrame({ kind: { case: 'presenceUpdate', value: { aci: bytes, state: PresenceState.OFFLINE, lastSeen: 0n } } });
    ps.peer.sendFrame({ kind: { case: 'presenceSubscribeResult', value: { requestId: 0, refused: [bytes] } } });
    this.o.metrics.presenceUpdatesSent(1);
  }

  /** Reads the account again and tells its subscribers what changed for them. */
  private async refresh(aci: Aci): Promise<void> {
    const w = this.watches.get(aci);
    if (!w) return;
    if (w.reading) {
      w.dirty = true;
      return;
    }
    w.reading = true;
    try {
      do {
        w.dirty = false;
        const [p] = await this.o.store.read([aci]);
        this.report(true);
        if (this.watches.get(aci) !== w || !p) return;
        w.last = p;
        for (const ps of w.subscribers) this.deliver(ps, aci, p);
      } while (w.dirty);
    } catch (err) {
      this.report(false, err);
    } finally {
      w.reading = false;
    }
  }

  private async rereadAll(): Promise<void> {
    const acis = [...this.watches.keys()];
    for (let i = 0; i < acis.length && !this.closed; i += SWEEP_CHUNK) {
      await Promise.all(acis.slice(i, i + SWEEP_CHUNK).map((aci) => this.refresh(aci)));
    }
  }

  private deliver(ps: PeerState, aci: Aci, p: AccountPresence): void {
    const target = ps.targets.get(aci);
    if (!target) return;
    if (samePresence(target.sent, p)) {
      ps.pending.delete(aci);
      return;
    }
    const highWater = this.o.highWaterBytes ?? PRESENCE_HIGH_WATER_BYTES;
    if (ps.pending.size > 0 || ps.peer.bufferedAmount > highWater) {
      ps.pending.set(aci, p);
      this.waiting.add(ps);
      this.armFlush();
      return;
    }
    this.send(ps, aci, target, p);
  }

  private send(ps: PeerState, aci: Aci, target: Target, p: AccountPresence): void {
    target.sent = p;
    ps.peer.sendFrame({ kind: { case: 'presenceUpdate', value: { aci: aciToBytes(aci), state: WIRE_STATE[p.state], lastSeen: BigInt(p.lastSeen) } } });
    this.o.metrics.presenceUpdatesSent(1);
  }

  private armFlush(): void {
    if (this.flushTimer || this.closed) return;
    this.flushTimer = setInterval(() => this.flush(), this.o.flushIntervalMs ?? 100);
    this.flushTimer.unref();
  }

  private flush(): void {
    const highWater = this.o.highWaterBytes ?? PRESENCE_HIGH_WATER_BYTES;
    for (const ps of [...this.waiting]) {
      while (ps.pending.size > 0 && ps.peer.bufferedAmount <= highWater) {
        const [aci, p] = ps.pending.entries().next().value as [Aci, AccountPresence];
        ps.pending.delete(aci);
        const target = ps.targets.get(aci);
        if (target && !samePresence(target.sent, p)) this.send(ps, aci, target, p);
      }
      if (ps.pending.size === 0) this.waiting.delete(ps);
    }
    if (this.waiting.size === 0) {
      clearInterval(this.flushTimer);
      this.flushTimer = undefined;
    }
  }

  /** Runs a store write in the background; a failure is reported, never thrown at a connection. */
  private write(op: () => Promise<void>): void {
    void this.attempt(op);
  }

  private async attempt(op: () => Promise<void>): Promise<void> {
    try {
      await op();
      this.report(true);
    } catch (err) {
      this.report(false, err);
    }
  }

  /** Logs each transition of the store's health once; on recovery every watched account is read again. */
  private report(ok: boolean, err?: unknown): void {
    if (ok === this.healthy) return;
    this.healthy = ok;
    if (ok) {
      this.o.log.info('presence store answers again');
      void this.resync();
    } else {
      this.o.log.warn({ reason: err instanceof Error ? err.message : 'error' }, 'presence store does not answer: presence may be stale until it does');
    }
  }
}
