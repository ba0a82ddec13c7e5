// SPDX-License-Identifier: AGPL-3.0-only
// Receipts, typing and privacy settings: the parts that need no relay.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { randomBytes } from '@parley/crypto';
import { create, ReceiptMessage_Type, SettingsSyncSchema, TypingMessage_Action } from '@parley/protocol';
import type { TypingEvent } from '../src/engine/client-api.js';
import { decodeContent } from '../src/engine/content-codec.js';
import type { EngineMessage } from '../src/engine/engine-store.js';
import { PrivacyFeatures, type PrivacyHost, type PrivacyStore } from '../src/engine/privacy-features.js';
import {
  DEFAULT_PRIVACY,
  mergeSettingsSync,
  nextVersion,
  readPrivacy,
  settingsSyncContent,
  writePrivacy,
  type SettingsPort,
  type StoredPrivacy,
} from '../src/engine/privacy-settings.js';
import {
  deliveryReceiptsOwed,
  parseReadSync,
  parseReceipt,
  readSyncContent,
  RECEIPT_BATCH,
  receiptBatches,
  receiptContent,
} from '../src/engine/receipts.js';
import { TYPING_EXPIRY_MS, TYPING_THROTTLE_MS, TypingThrottle, TypingTracker, typingActionOf, typingContent, type TypingScheduler } from '../src/engine/typing.js';

const ALICE = '0f8e3c2a-6b1d-4e57-9a20-3c4d5e6f7a8b';
const BOB = '1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d';
const hex = (n: number) => n.toString(16).padStart(32, '0');

/** Timers the test fires by moving time. */
class FakeScheduler implements TypingScheduler {
  t = 1_000_000;
  private timers: Array<{ at: number; fn: () => void; id: number }> = [];
  private next = 1;
  now(): number {
    return this.t;
  }
  setTimer(fn: () => void, ms: number): unknown {
    const id = this.next++;
    this.timers.push({ at: this.t + ms, fn, id });
    return id;
  }
  clearTimer(handle: unknown): void {
    this.timers = this.timers.filter((x) => x.id !== handle);
  }
  advance(ms: number): void {
    this.t += ms;
    const due = this.timers.filter((x) => x.at <= this.t).sort((a, b) => a.at - b.at);
    this.timers = this.timers.filter((x) => x.at > this.t);
    for (const d of due) d.fn();
  }
  get pending(): number {
    return this.timers.length;
  }
}

describe('typing indicators', () => {
  it('lets one STARTED per conversation through every 3 s, and every STOPPED', () => {
    let now = 0;
    const throttle = new TypingThrottle(() => now);
    assert.equal(throttle.allow('bob@x', 'started'), true);
    now = TYPING_THROTTLE_MS - 1;
    assert.equal(throttle.allow('bob@x', 'started'), false, 'a second STARTED within 3 s is held back');
    assert.equal(throttle.allow('carol@x', 'started'), true, 'another conversation has its own budget');
    assert.equal(throttle.allow('bob@x', 'stopped'), true);
    now = TYPING_THROTTLE_MS;
    assert.equal(throttle.allow('bob@x', 'started'), true, 'after 3 s the next one goes');
    assert.equal(throttle.allow('bob@x', 'started'), false);
  });

  it('keeps the limit in the settings, so a new throttle (a new process) over the same store holds it', () => {
    let now = 1_000_000;
    const values = new Map<string, string>();
    const settings = { getSetting: (n: string) => values.get(n), setSetting: (n: string, v: string) => void values.set(n, v) };
    assert.equal(new TypingThrottle(() => now, settings).allow('#ab', 'started'), true);
    now += TYPING_THROTTLE_MS - 1;
    assert.equal(new TypingThrottle(() => now, settings).allow('#ab', 'started'), false, 'the next process is held back too');
    assert.equal(new TypingThrottle(() => now, settings).allow('bob@x', 'started'), true);
    now += 1;
    assert.equal(new TypingThrottle(() => now, settings).allow('#ab', 'started'), true);
    const kept = () => Object.keys(JSON.parse(values.get('typing.lastStarted')!) as object).sort();
    assert.deepEqual(kept(), ['#ab', 'bob@x']);
    now += TYPING_THROTTLE_MS;
    assert.equal(new TypingThrottle(() => now, settings).allow('carol@x', 'started'), true);
    assert.deepEqual(kept(), ['carol@x'], 'only the last interval is kept');
    now -= 60_000;
    assert.equal(new TypingThrottle(() => now, settings).allow('#ab', 'started'), true, 'a clock set back does not hold it back for a minute');
    values.set('typing.lastStarted', '{not json');
    assert.equal(new TypingThrottle(() => now, settings).allow('#ab', 'started'), true, 'a damaged entry counts as none');
    assert.equal(new TypingThrottle(() => now, settings).allow('#ab', 'started'), false);
  });

  it('announces STARTED, and a STOPPED marked expired after 15 s without another', () => {
    const clock = new FakeScheduler();
    const seen: TypingEvent[] = [];
    const tracker = new TypingTracker((e) => seen.push(e), clock);
    tracker.received({ from: 'bob@x', conversation: 'bob@x', action: 'started' });
    assert.deepEqual(seen.map((e) => [e.action, e.expired]), [['started', undefined]]);
    clock.advance(TYPING_EXPIRY_MS - 1);
    assert.equal(seen.length, 1, 'still typing just before the expiry');
    clock.advance(1);
    assert.deepEqual(seen.map((e) => [e.action, e.expired ?? false]), [
      ['started', false],
      ['stopped', true],
    ]);
    assert.equal(seen[1]!.at, clock.t);
    assert.equal(tracker.typingNow(), 0);
  });

  it('renews on every STARTED, ends at STOPPED, and ignores a STOPPED for nobody', () => {
    const clock = new FakeScheduler();
    const seen: TypingEvent[] = [];
    const tracker = new TypingTracker((e) => seen.push(e), clock);
    tracker.received({ from: 'bob@x', conversation: 'bob@x', action: 'started' });
    clock.advance(10_000);
    tracker.received({ from: 'bob@x', conversation: 'bob@x', action: 'started' });
    clock.advance(10_000);
    assert.equal(seen.filter((e) => e.action === 'stopped').length, 0, 'the second STARTED renewed it');
    tracker.received({ from: 'bob@x', conversation: 'bob@x', action: 'stopped' });
    assert.equal(clock.pending, 0, 'no expiry left behind');
    tracker.received({ from: 'bob@x', conversation: 'bob@x', action: 'stopped' });
    assert.deepEqual(seen.map((e) => [e.action, e.expired ?? false]), [
      ['started', false],
      ['started', false],
      ['stopped', false],
    ]);
    tracker.received({ from: 'carol@x', conversation: 'carol@x', action: 'started' });
    tracker.clear();
    clock.advance(TYPING_EXPIRY_MS);
    assert.equal(seen.length, 4, 'clear() announces no expiry');
  });

  it('encodes STARTED and STOPPED and reads them back; an unknown action is nothing', () => {
    for (const action of ['started', 'stopped'] as const) {
      const c = decodeContent(typingContent(action, 42));
      assert.equal(c?.body.case, 'typing');
      assert.equal(c?.body.case === 'typing' && typingActionOf(c.body.value.action), action);
    }
    assert.equal(typingActionOf(TypingMessage_Action.UNSPECIFIED), undefined);
    assert.equal(typingActionOf(7 as TypingMessage_Action), undefined);
  });
});

describe('receipts', () => {
  it('carries many ids in one receipt and reads them back once each', () => {
    const ids = [hex(1), hex(2), hex(3)];
    const c = decodeContent(receiptContent('delivered', [...ids, hex(2)], 99));
    assert.equal(c?.body.case, 'receipt');
    if (c?.body.case !== 'receipt') return;
    assert.equal(c.body.value.type, ReceiptMessage_Type.DELIVERY);
    assert.equal(c.body.value.timestamp, 99n);
    assert.deepEqual(parseReceipt(c.body.value), { kind: 'delivered', ids });
    const read = decodeContent(receiptContent('read', ids, 1));
    assert.equal(read?.body.case === 'receipt' && parseReceipt(read.body.value)?.kind, 'read');
  });

  it('drops malformed ids and refuses an unknown receipt type', () => {
    const c = decodeContent(receiptContent('read', [hex(1)], 1));
    assert.ok(c?.body.case === 'receipt');
    const r = c.body.value;
    r.messageIds.push(new Uint8Array(15), new Uint8Array(0), new Uint8Array(17));
    assert.deepEqual(parseReceipt(r)?.ids, [hex(1)]);
    r.type = ReceiptMessage_Type.UNSPECIFIED;
    assert.equal(parseReceipt(r), undefined);
  });

  it('owes one delivery receipt per author for the people’s texts of a batch, none for notices or own messages', () => {
    const m = (id: number, over: Partial<EngineMessage>): EngineMessage => ({
      id: hex(id),
      conversation: 'bob@x',
      senderAci: BOB,
      senderDevice: 1,
      direction: 'in',
      body: 'x',
      kind: 'text',
      sentAt: 1,
      receivedAt: 1,
      lamport: 1,
      status: 'received',
      ...over,
    });
    const owed = deliveryReceiptsOwed(
      [
        m(1, {}),
        m(2, { kind: 'identity-change' }),
        m(3, { senderAci: ALICE, direction: 'out' }),
        m(4, {}),
        m(5, { senderAci: '2b3c4d5e-6f7a-4b8c-9d0e-1f2a3b4c5d6e' }),
        m(6, { kind: 'decryption-error' }),
      ],
      ALICE,
    );
    assert.deepEqual([...owed], [
      [BOB, [hex(1), hex(4)]],
      ['2b3c4d5e-6f7a-4b8c-9d0e-1f2a3b4c5d6e', [hex(5)]],
    ]);
  });

  it('cuts long id lists into receipts of at most RECEIPT_BATCH', () => {
    const ids = Array.from({ length: RECEIPT_BATCH * 2 + 1 }, (_, i) => hex(i));
    assert.deepEqual(
      receiptBatches(ids).map((b) => b.length),
      [RECEIPT_BATCH, RECEIPT_BATCH, 1],
    );
    assert.deepEqual(receiptBatches([]), []);
  });

  it('round-trips a read sync and skips malformed entries', () => {
    const c = decodeContent(readSyncContent([{ author: BOB, id: hex(9) }]));
    assert.ok(c?.body.case === 'sync' && c.body.value.kind.case === 'read');
    const sync = c.body.value.kind.value;
    sync.messages.push({ ...sync.messages[0]!, author: new Uint8Array(3) }, { ...sync.messages[0]!, messageId: new Uint8Array(8) });
    assert.deepEqual(parseReadSync(sync), [{ author: BOB, id: hex(9) }]);
  });
});

describe('privacy settings', () => {
  const port = (): SettingsPort & { values: Map<string, string> } => {
    const values = new Map<string, string>();
    return { values, getSetting: (n) => values.get(n), setSetting: (n, v) => void values.set(n, v) };
  };

  it('reads the defaults (everything on, version 0, no token) when nothing or garbage is stored', () => {
    const p = port();
    assert.deepEqual(readPrivacy(p), DEFAULT_PRIVACY);
    p.setSetting('privacy.settings', '{not json');
    assert.deepEqual(readPrivacy(p), DEFAULT_PRIVACY);
  });

  it('stores the switches, version and token', () => {
    const p = port();
    const s: StoredPrivacy = { version: 7, readReceipts: false, typingIndicators: true, presence: false, presenceToken: randomBytes(32) };
    writePrivacy(p, s);
    assert.deepEqual(readPrivacy(p), s);
  });

  it('takes a synced value only when its version is newer, keeping the token it does not carry', () => {
    const token = randomBytes(32);
    const local: StoredPrivacy = { version: 10, readReceipts: true, typingIndicators: true, presence: true, presenceToken: token };
    const sync = (version: bigint, over: object = {}) =>
      create(SettingsSyncSchema, { version, readReceipts: false, typingIndicators: false, presence: true, ...over });
    assert.equal(mergeSettingsSync(local, sync(10n)), undefined, 'the same version changes nothing');
    assert.equal(mergeSettingsSync(local, sync(9n)), undefined, 'an older one neither');
    const merged = mergeSettingsSync(local, sync(11n))!;
    assert.deepEqual(merged, { version: 11, readReceipts: false, typingIndicators: false, presence: true, presenceToken: token });
    const rotated = randomBytes(32);
    assert.deepEqual(mergeSettingsSync(local, sync(12n, { presenceToken: rotated }))?.presenceToken, rotated);
    assert.equal(mergeSettingsSync(local, sync(2n ** 60n)), undefined, 'a version past what a number holds is refused');
  });

  it('versions a change above the one held and at least the clock', () => {
    assert.equal(nextVersion({ ...DEFAULT_PRIVACY, version: 5 }, 1000), 1000);
    assert.equal(nextVersion({ ...DEFAULT_PRIVACY, version: 5000 }, 1000), 5001);
  });

  it('syncs as a SettingsSync with the token', () => {
    const token = randomBytes(32);
    const c = decodeContent(settingsSyncContent({ version: 3, readReceipts: false, typingIndicators: true, presence: true, presenceToken: token }));
    assert.ok(c?.body.case === 'sync' && c.body.value.kind.case === 'settings');
    const s = c.body.value.kind.value;
    assert.deepEqual([s.version, s.readReceipts, s.typingIndicators, s.presence], [3n, false, true, true]);
    assert.deepEqual(new Uint8Array(s.presenceToken), token);
  });
});

describe('delivery receipts queued by the receive hook', () => {
  /** A PrivacyFeatures over an outbox in memory; only what stored() touches is real. */
  function setup() {
    const outbox: Array<{ id: number; destinationAci: string; content: Uint8Array; urgent?: boolean; encrypted: boolean }> = [];
    const store = {
      routeAddress: (aci: string) => (aci === BOB ? 'bob@x' : undefined),
      outboxAdd: (e: { destinationAci: string; content: Uint8Array; urgent?: boolean }) => {
        outbox.push({ id: outbox.length + 1, ...e, encrypted: false });
        return outbox.length;
      },
      unsentEntries: (aci: string, limit: number) =>
        outbox
          .filter((e) => e.destinationAci === aci && !e.encrypted)
          .reverse()
          .slice(0, limit),
      replaceUnsentContent: (id: number, content: Uint8Array) => {
        const e = outbox.find((x) => x.id === id && !x.encrypted);
        if (e) e.content = content;
        return e !== undefined;
      },
    } as unknown as PrivacyStore;
    const host = { self: () => ({ aci: ALICE }), now: () => 5 } as unknown as PrivacyHost;
    const features = new PrivacyFeatures({ store, host, api: {} as never, connection: () => undefined, online: {} as never });
    const ids = (i: number) => {
      const c = decodeContent(outbox[i]!.content);
      return c?.body.case === 'receipt' ? parseReceipt(c.body.value)?.ids : undefined;
    };
    return { features, outbox, ids };
  }
  const incoming = (id: number, sender = BOB): EngineMessage => ({
    id: hex(id),
    conversation: 'bob@x',
    senderAci: sender,
    senderDevice: 1,
    direction: 'in',
    body: 'x',
    kind: 'text',
    sentAt: 1,
    receivedAt: 1,
    lamport: id,
    status: 'received',
  });

  it('queues one receipt per batch, not urgent, and none for a sender without a verified address', () => {
    const { features, outbox, ids } = setup();
    assert.equal(features.stored([incoming(1), incoming(2), incoming(3, '2b3c4d5e-6f7a-4b8c-9d0e-1f2a3b4c5d6e')], 5), true);
    assert.equal(outbox.length, 1);
    assert.equal(outbox[0]!.urgent, false);
    assert.deepEqual(ids(0), [hex(1), hex(2)]);
    assert.equal(features.stored([incoming(4, '2b3c4d5e-6f7a-4b8c-9d0e-1f2a3b4c5d6e')], 5), false, 'nothing to queue');
  });

  it('adds the next batch to a receipt still waiting unencrypted, and queues a new one once it went out', () => {
    const { features, outbox, ids } = setup();
    features.stored([incoming(1)], 5);
    features.stored([incoming(2), incoming(3)], 5);
    assert.equal(outbox.length, 1, 'the waiting receipt took the new ids');
    assert.deepEqual(ids(0), [hex(1), hex(2), hex(3)]);
    outbox[0]!.encrypted = true;
    features.stored([incoming(4)], 5);
    assert.equal(outbox.length, 2);
    assert.deepEqual(ids(1), [hex(4)]);
  });

  it('starts a new receipt when the waiting one is full', () => {
    const { features, outbox, ids } = setup();
    features.stored(Array.from({ length: RECEIPT_BATCH - 1 }, (_, i) => incoming(i + 1)), 5);
    features.stored([incoming(100_001), incoming(100_002)], 5);
    assert.equal(outbox.length, 2);
    assert.equal(ids(0)!.length, RECEIPT_BATCH);
    assert.deepEqual(ids(1), [hex(100_002)]);
  });
});

describe('typing indicators in groups, received', () => {
  const GROUP = 'ab'.repeat(32);
  const CAROL = '2b3c4d5e-6f7a-4b8c-9d0e-1f2a3b4c5d6e';
  /** A PrivacyFeatures whose groups know one group with alice and bob; timers never fire. */
  function setup() {
    const events: TypingEvent[] = [];
    const store = { getSetting: () => undefined } as unknown as PrivacyStore;
    const host = { self: () => ({ aci: ALICE }), now: () => 5, emitTyping: (e: TypingEvent) => events.push(e) } as unknown as PrivacyHost;
    const scheduler: TypingScheduler = { now: () => 5, setTimer: () => 0, clearTimer: () => undefined };
    const features = new PrivacyFeatures({
      store,
      host,
      api: {} as never,
      connection: () => undefined,
      online: {} as never,
      scheduler,
      groups: {
        resolveRef: () => GROUP,
        sendOnline: async () => 0,
        isMember: (groupId, aci) => groupId === GROUP && (aci === ALICE || aci === BOB),
        memberAddress: (aci) => (aci === BOB ? 'bob@x' : undefined),
      },
    });
    const typing = (source: string, groupId: string) => {
      const content = decodeContent(typingContent('started', 1, Buffer.from(groupId, 'hex')))!;
      const outcome = features.content({ source, sourceDevice: 1, address: undefined, online: true, now: 5 }, content);
      outcome?.after?.();
      return outcome;
    };
    return { events, typing };
  }

  it('shows a member typing in the group under the name the group gives it', () => {
    const { events, typing } = setup();
    assert.equal(typing(BOB, GROUP)?.handled, true);
    assert.deepEqual(
      events.map((e) => [e.from, e.conversation, e.groupId, e.action]),
      [['bob@x', `#${GROUP}`, GROUP, 'started']],
    );
  });

  it('drops an indicator from someone who is not a member, or for a group it is not in', () => {
    const { events, typing } = setup();
    assert.equal(typing(CAROL, GROUP)?.handled, true, 'taken, so that it is never stored');
    assert.equal(typing(BOB, 'cd'.repeat(32))?.handled, true);
    assert.deepEqual(events, []);
  });
});
