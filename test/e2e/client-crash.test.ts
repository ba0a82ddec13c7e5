// SPDX-License-Identifier: AGPL-3.0-only
/**
 * Client engines SIGKILLed at the worst moments, in child processes of their own
 * (support/client-crash-child.ts), then reopened: between committing a received message and
 * acking it, with sends in the outbox while the relay is down, and after the relay committed a
 * send whose answer never reached the client. Nothing is lost and nothing shows twice.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { aciFromBytes, toHex, type Send } from '@parley/protocol';
import type { MessageView } from '@parley/client';
import { fullHistory, newProfileDir, openRecording, spawnCrashChild, until, type RecordingClient } from '../support/client-harness.js';
import { startRelay, type RelayProcess } from '../support/relay-process.js';
import { TamperingProxy } from '../support/tampering-proxy.js';

const ids = (ms: readonly MessageView[]) => ms.map((m) => m.id);

/** Registers `username` on a fresh profile and closes it, so a child process can open it. */
async function registered(server: string, username: string): Promise<{ dir: string; aci: string }> {
  const c = await openRecording(newProfileDir());
  try {
    return { dir: c.profileDir, aci: (await c.client.register(server, username)).aci };
  } finally {
    await c.client.close();
  }
}

describe('client engine: SIGKILL between commit and ack', () => {
  let relay: RelayProcess;
  let proxy: TamperingProxy;
  let alice: RecordingClient;
  let bobDir: string;

  before(async () => {
    relay = await startRelay();
    // Bob reaches the relay through a faithful proxy, which records what was delivered to him.
    proxy = await TamperingProxy.start(relay.url);
    alice = await openRecording();
    await alice.client.register(relay.url, 'alice');
    bobDir = (await registered(proxy.url, 'bob')).dir;
  });
  after(async () => {
    await alice?.client.close();
    await proxy?.close();
    await relay?.stop();
  });

  /** Envelope ids delivered to bob on each WebSocket connection, by connection number. */
  const deliveredByConnection = (): Map<number, string[]> => {
    const out = new Map<number, string[]>();
    for (const f of proxy.frames) {
      if (f.direction !== 'to-client' || f.frame.kind.case !== 'deliver') continue;
      const list = out.get(f.connection) ?? [];
      list.push(...f.frame.kind.value.envelopes.map((e) => toHex(e.messageId)));
      out.set(f.connection, list);
    }
    return out;
  };

  it('keeps the message it committed, shows it once after restart, and gets the rest again', async () => {
    const sent: MessageView[] = [];
    for (const text of ['one (opens the session)', 'two', 'three']) sent.push(await alice.client.send('bob', text));
    assert.deepEqual(
      sent.map((m) => m.status),
      ['sent', 'sent', 'sent'],
    );

    const child = spawnCrashChild(['die-on-message', bobDir]);
    const end = await child.exited;
    assert.equal(end.signal, 'SIGKILL', `the child died by its own SIGKILL (stdout ${child.lines.join(' | ')}; stderr ${child.stderr()})`);
    assert.deepEqual(child.lines, [`message ${sent[0]!.id}`], 'it died in the handler of the first message');

    const bob = await openRecording(bobDir);
    try {
      // A delivered batch commits as one transaction, so the kill may find one message or the
      // whole batch committed; the one being handled always is.
      const before = ids(fullHistory(bob.client, 'alice'));
      assert.ok(before.includes(sent[0]!.id), 'the message in the handler was committed before the kill');
      const got = await bob.client.receive();
      // The batch was never acked, so the relay delivered it again: the engine must recognise
      // what it committed (its session already moved on) instead of showing it twice or as an
      // undecryptable message.
      assert.deepEqual(ids(got), ids(sent).filter((id) => !before.includes(id)), 'receive() hands over only what was not committed');
      const h = fullHistory(bob.client, 'alice');
      assert.deepEqual(ids(h), ids(sent));
      assert.ok(
        h.every((m) => m.kind === 'text'),
        `no decryption-error or system entry: ${h.map((m) => m.kind).join(',')}`,
      );
      assert.deepEqual(await bob.client.receive(), [], 'and nothing is redelivered after the ack');
      const [killed, restarted] = [...deliveredByConnection().values()];
      assert.ok(killed && killed.length >= 1, 'the killed client had been delivered the first envelope');
      assert.ok(
        killed.every((id) => restarted?.includes(id)),
        'everything delivered to the killed client was delivered again (it never acked)',
      );

      // The sessions survived the crash in both directions.
      const answer = await bob.client.send('alice', 'all three arrived');
      assert.equal(answer.status, 'sent');
      assert.deepEqual(ids(await alice.client.receive()), [answer.id]);
      const more = await alice.client.send('bob', 'good');
      assert.deepEqual(ids(await bob.client.receive()), [more.id]);
    } finally {
      await bob.client.close();
    }
  });
});

describe('client engine: SIGKILL with sends in the outbox', () => {
  let relay: RelayProcess;
  let proxy: TamperingProxy;
  let alice: { dir: string; aci: string };
  let bob: RecordingClient;

  before(async () => {
    relay = await startRelay();
    // Alice talks to the relay through a proxy (forwarding faithfully unless a test installs a
    // hook), so that a test can hold back the relay's answers or see what she sent.
    proxy = await TamperingProxy.start(relay.url);
    alice = await registered(proxy.url, 'alice');
    bob = await openRecording();
    await bob.client.register(relay.url, 'bob');
    // Alice learns bob and opens a session while everything is up.
    const a = await openRecording(alice.dir);
    try {
      await a.client.send('bob', 'hi bob');
    } finally {
      await a.client.close();
    }
    await bob.client.receive();
  });
  after(async () => {
    await bob?.client.close();
    await proxy?.close();
    await relay?.stop();
  });

  it('sends what was queued while the relay was down, once, after the sender restarts', async () => {
    const port = relay.port;
    await relay.stop();
    const texts = ['queued while the relay is down 1', 'queued while the relay is down 2', 'queued while the relay is down 3'];
    const child = spawnCrashChild(['die-after-queue', alice.dir, 'bob', ...texts]);
    const end = await child.exited;
    assert.equal(end.signal, 'SIGKILL', `stdout ${child.lines.join(' | ')}; stderr ${child.stderr()}`);
    const queued = child.lines.map((l) => l.split(' '));
    assert.equal(queued.length, 3);
    for (const q of queued) assert.deepEqual([q[0], q[2]], ['queued', 'pending']);
    const queuedIds = queued.map((q) => q[1]!);

    relay = await startRelay({ dataDir: relay.dataDir, port });
    const a = await openRecording(alice.dir);
    try {
      const pending = fullHistory(a.client, 'bob').filter((m) => queuedIds.includes(m.id));
      assert.deepEqual(
        pending.map((m) => [m.text, m.status]),
        texts.map((t) => [t, 'pending']),
        'the restarted sender still has them, pending',
      );
      await a.client.receive();
      assert.deepEqual(
        fullHistory(a.client, 'bob')
          .filter((m) => queuedIds.includes(m.id))
          .map((m) => m.status),
        ['sent', 'sent', 'sent'],
        'receive() flushed the outbox',
      );
    } finally {
      await a.client.close();
    }
    const got = await bob.client.receive();
    assert.deepEqual(ids(got), queuedIds, 'bob gets each queued message once, in order');
    assert.deepEqual(await bob.client.receive(), []);
  });

  it('resends a send the relay committed but never confirmed under the same id, and the peer sees it once', async () => {
    // The relay commits the send, but its answer is lost and the sender dies before it retries.
    // Alice's sends may go sealed, over the unidentified socket where the proxy sees no device;
    // only alice talks through this proxy, so those are hers too.
    const hers = (device: { aci: string } | undefined): boolean => device === undefined || device.aci === alice.aci;
    const sentByAlice = () => proxy.frames.filter((f) => f.direction === 'to-relay' && f.frame.kind.case === 'send' && hers(f.device)).map((f) => f.frame.kind.value as Send);
    let committed: string | undefined;
    proxy.relayFrameHook = (frame, ctx) => {
      if (!hers(ctx.device) || frame.kind.case !== 'sendResult') return undefined;
      committed = `request ${frame.kind.value.requestId}`;
      return [];
    };
    const sendsBefore = sentByAlice().length;
    const child = spawnCrashChild(['send', alice.dir, 'bob', 'committed but never confirmed']);
    try {
      await until('the relay to commit the send', () => committed !== undefined);
    } finally {
      child.child.kill('SIGKILL');
    }
    const end = await child.exited;
    assert.equal(end.signal, 'SIGKILL');
    assert.deepEqual(child.lines, [], 'send() had not returned');
    proxy.clearHooks();

    const a = await openRecording(alice.dir);
    let id: string;
    try {
      const [m] = fullHistory(a.client, 'bob').filter((x) => x.text === 'committed but never confirmed');
      assert.equal(m?.status, 'pending');
      id = m.id;
      await a.client.receive();
      assert.equal(a.client.history('bob', { limit: 1 })[0]?.status, 'sent');
    } finally {
      await a.client.close();
    }
    const sends = sentByAlice()
      .slice(sendsBefore)
      .filter((s) => aciFromBytes(s.destination) === aciFromBytes(proxy.sentFrames(alice.aci)[0]!.destination));
    assert.equal(sends.length, 2, 'sent once before the kill and once after');
    assert.equal(toHex(sends[1]!.messageId), toHex(sends[0]!.messageId), 'the retry carries the same envelope id');
    assert.deepEqual(
      sends[1]!.messages.map((m) => toHex(m.content)),
      sends[0]!.messages.map((m) => toHex(m.content)),
      'and the same ciphertext',
    );
    // Alice holds bob's profile key by now (his delivery receipt carried it): the attempt went
    // sealed, and the saved attempt sent it sealed again, with the same access key.
    assert.equal(sends[0]!.accessKey.length, 16, 'sealed');
    assert.equal(toHex(sends[1]!.accessKey), toHex(sends[0]!.accessKey));
    const got = await bob.client.receive();
    assert.deepEqual(ids(got), [id], 'bob gets it once');
    assert.deepEqual(await bob.client.receive(), []);
    assert.equal(fullHistory(bob.client, 'alice').filter((m) => m.id === id).length, 1);
  });
});

describe('client engine: the relay SIGKILLed in the middle of a burst', () => {
  it('delivers every message once after the relay comes back, in the sender’s order', async () => {
    let relay = await startRelay();
    const alice = await openRecording();
    const bob = await openRecording();
    try {
      await alice.client.register(relay.url, 'alice');
      await bob.client.register(relay.url, 'bob');
      await alice.client.send('bob', 'before the burst');
      const sends: Promise<MessageView>[] = [];
      let killed: Promise<void> | undefined;
      for (let i = 0; i < 200; i++) {
        sends.push(alice.client.send('bob', `burst ${i}`));
        // Some sends are answered, some are in flight (maybe committed), some not yet sent.
        if (i === 100) killed = relay.kill();
        if (i % 10 === 0) await new Promise((r) => setImmediate(r));
      }
      await killed;
      relay = await startRelay({ dataDir: relay.dataDir, port: relay.port });
      const settled = await Promise.all(sends);
      assert.ok(settled.every((m) => m.status === 'sent' || m.status === 'pending'));
      await alice.client.receive();
      const ha = fullHistory(alice.client, 'bob');
      assert.equal(ha.length, 201);
      assert.ok(
        ha.every((m) => m.status === 'sent'),
        'the outbox is empty after a receive()',
      );
      await bob.client.receive();
      const hb = fullHistory(bob.client, 'alice');
      assert.deepEqual(ids(hb), ids(ha), 'bob has every message once, in the same order');
      assert.ok(hb.every((m) => m.kind === 'text'));
    } finally {
      await alice.client.close();
      await bob.client.close();
      await relay.stop();
    }
  });
});
