// SPDX-License-Identifier: AGPL-3.0-only
/**
 * The contract every {@link PushSender} adapter passes (CONVENTIONS 1): the log adapter in
 * process, the APNs and FCM adapters against their loopback stand-ins (`fake-apns.ts`,
 * `fake-fcm.ts`). The suite talks to the adapter through the port and looks at what reached the
 * "provider" through a small view the test gives it, so one suite covers all three.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import type { PushSender, WakeUp } from '../ports/push-sender.js';

/** One wake-up as it reached the provider, normalized across providers. */
export interface ReceivedWakeUp {
  /** Whom the provider was asked to wake: the token, or for the log adapter the device label. */
  readonly target: string;
  readonly priority: 'high' | 'low';
  /** Everything the provider got that would reach the device: the exact body (APNs) or message minus its token (FCM). */
  readonly payload: string;
}

/** How a test makes the provider refuse a token. */
export type ContractFailure = 'dead' | 'retry' | 'permanent';

/** An adapter under test with its provider double. */
export interface PushContractSubject {
  readonly sender: PushSender;
  /** What the provider received so far, in arrival order. */
  received(): readonly ReceivedWakeUp[];
  /** A fresh token in the provider's format. */
  newToken(): string;
  /** Whether `received().target` is the token (real providers) or the device label (log). */
  readonly identifiesBy: 'token' | 'device';
  /** Makes the provider refuse `token` `times` times (default always); given when `canRefuse`. */
  readonly fail?: (token: string, failure: ContractFailure, times?: number) => void;
  /** Everything the adapter logged; given when the capabilities say it logs. */
  readonly logs?: () => string;
  /** Stops the provider double (the suite closes the sender itself). */
  stop(): Promise<void>;
}

/** Builds a fresh subject. */
export type PushSenderFactory = () => Promise<PushContractSubject>;

const ACI = 'a1a1a1a1-0000-4000-8000-00000000000a';

/** What an adapter can show the suite, known before it is built. */
export interface PushContractCapabilities {
  /** Its provider double can refuse tokens (`fail` is given). */
  readonly canRefuse: boolean;
  /** It logs, and `logs` returns what it wrote. */
  readonly logs: boolean;
}

/** Registers the push port contract suite for the adapter `make` builds. */
export function describePushSenderContract(name: string, capabilities: PushContractCapabilities, make: PushSenderFactory): void {
  const withSubject = (body: (s: PushContractSubject) => Promise<void>) => async () => {
    const s = await make();
    try {
      await body(s);
    } finally {
      await s.sender.close();
      await s.stop();
    }
  };
  const wakeUp = (s: PushContractSubject, deviceId = 1, urgent = true, token = s.newToken()): WakeUp => ({ token, urgent, device: `${ACI}.${deviceId}` });
  const targetOf = (s: PushContractSubject, w: WakeUp) => (s.identifiesBy === 'token' ? w.token : w.device);

  describe(`PushSender contract: ${name}`, () => {
    it('delivers a wake-up to the token it names and reports it delivered', withSubject(async (s) => {
      const w = wakeUp(s);
      assert.deepEqual(await s.sender.send(w), { kind: 'delivered' });
      const got = s.received();
      assert.equal(got.length, 1);
      assert.equal(got[0]!.target, targetOf(s, w));
    }));

    it('sends the same bytes for every device and message: no content, no sender, only a wake-up marker', withSubject(async (s) => {
      for (const urgent of [true, false]) {
        const a = wakeUp(s, 1, urgent);
        const b = wakeUp(s, 7, urgent);
        assert.equal((await s.sender.send(a)).kind, 'delivered');
        assert.equal((await s.sender.send(b)).kind, 'delivered');
        const [pa, pb] = s.received().slice(-2).map((r) => r.payload);
        assert.equal(pa, pb, 'two devices get identical payloads');
        for (const leak of [ACI, a.device, b.device, a.token, b.token]) assert.ok(!pa!.includes(leak), 'the payload names no account, device or token');
        assert.match(pa!, /wake/, 'the payload carries the wake-up marker');
        assert.ok(pa!.length < 200, `the payload is a small constant (${pa!.length} characters)`);
      }
    }));

    it('wakes urgent envelopes at high priority and the others at low priority', withSubject(async (s) => {
      await s.sender.send(wakeUp(s, 1, true));
      await s.sender.send(wakeUp(s, 1, false));
      assert.deepEqual(s.received().map((r) => r.priority), ['high', 'low']);
    }));

    it('answers each of many concurrent wake-ups', withSubject(async (s) => {
      const all = Array.from({ length: 20 }, (_, i) => wakeUp(s, i + 1));
      const outcomes = await Promise.all(all.map((w) => s.sender.send(w)));
      assert.ok(outcomes.every((o) => o.kind === 'delivered'));
      assert.deepEqual(new Set(s.received().map((r) => r.target)), new Set(all.map((w) => targetOf(s, w))));
    }));

    it('answers failed after close without reaching the provider, and closes twice', withSubject(async (s) => {
      await s.sender.close();
      await s.sender.close();
      assert.equal((await s.sender.send(wakeUp(s))).kind, 'failed');
      assert.equal(s.received().length, 0);
    }));

    if (capabilities.logs) {
      it('never writes the token into a log line', withSubject(async (s) => {
        const w = wakeUp(s);
        await s.sender.send(w);
        const text = s.logs!();
        assert.ok(text.length > 0, 'the adapter logged the wake-up');
        assert.ok(!text.includes(w.token), 'the token is not in the log');
      }));
    }

    if (!capabilities.canRefuse) {
      it('delivers every wake-up, urgent or not: there is no provider that could refuse one', withSubject(async (s) => {
        const outcomes = await Promise.all([true, false].map((urgent) => s.sender.send(wakeUp(s, 1, urgent))));
        assert.deepEqual(outcomes, [{ kind: 'delivered' }, { kind: 'delivered' }]);
      }));
      return;
    }

    it('reports a token the provider calls dead as dead-token', withSubject(async (s) => {
      const w = wakeUp(s);
      s.fail!(w.token, 'dead');
      const outcome = await s.sender.send(w);
      assert.equal(outcome.kind, 'dead-token');
      assert.ok(!JSON.stringify(outcome).includes(w.token), 'the outcome does not carry the token');
    }));

    it('reports an overloaded provider as retry, and delivers once it recovers', withSubject(async (s) => {
      const w = wakeUp(s);
      s.fail!(w.token, 'retry', 1);
      assert.equal((await s.sender.send(w)).kind, 'retry');
      assert.deepEqual(await s.sender.send(w), { kind: 'delivered' });
    }));

    it('reports a refusal that is not the token\u2019s fault as failed', withSubject(async (s) => {
      const w = wakeUp(s);
      s.fail!(w.token, 'permanent');
      const outcome = await s.sender.send(w);
      assert.equal(outcome.kind, 'failed');
      assert.ok(!JSON.stringify(outcome).includes(w.token));
    }));
  });
}

/** A random hex token of APNs' shape (32 bytes). */
export function randomApnsToken(): string {
  return randomBytes(32).toString('hex');
}
