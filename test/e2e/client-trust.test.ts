// SPDX-License-Identifier: AGPL-3.0-only
/**
 * Who the client engine still talks to: a device removed from its account is refused with a
 * typed error (and the others stop encrypting to it), and a peer's identity key that changes
 * under a lying relay holds the messages until the user accepts the new key.
 *
 * The key server has no way to say "same account, new identity key" (an account keeps its key
 * for life), so the change is staged by a TAMPERING PROXY standing in for a lying relay: when
 * bob links a new device, the proxy hands alice that device's bundle under an identity key it
 * made up, with prekeys validly signed by that key.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ClientError, type MessageView } from '@parley/client';
import { aciFromBytes, type BundleResponse } from '@parley/protocol';
import { fullHistory, linkNewDevice, openRecording, type RecordingClient } from '../support/client-harness.js';
import { makeUpIdentity } from '../support/client-lying-keys.js';
import { startRelay, type RelayProcess } from '../support/relay-process.js';
import { TamperingProxy } from '../support/tampering-proxy.js';

const ids = (ms: readonly MessageView[]) => ms.map((m) => m.id);

describe('client engine: a removed device', () => {
  let relay: RelayProcess;
  let alice1: RecordingClient;
  let alice2: RecordingClient;
  let bob: RecordingClient;

  before(async () => {
    relay = await startRelay();
    alice1 = await openRecording();
    bob = await openRecording();
    await alice1.client.register(relay.url, 'alice');
    await bob.client.register(relay.url, 'bob');
    alice2 = (await linkNewDevice(alice1, relay.url)).device;
    // Everyone has sessions with both of alice's devices.
    await bob.client.send('alice', 'hello both of you');
    await alice1.client.send('bob', 'hi from device 1');
    for (const c of [alice1, alice2, bob]) await c.client.receive();
  });
  after(async () => {
    for (const c of [alice1, alice2, bob]) await c?.client.close();
    await relay?.stop();
  });

  it('is refused with DEVICE_REMOVED, fast, and says so through a fatal event', async () => {
    await alice1.client.removeDevice(2);
    assert.deepEqual(
      (await alice1.client.devices()).map((d) => d.deviceId),
      [1],
    );
    const fatal: string[] = [];
    alice2.client.on('fatal', (code) => fatal.push(code));
    const started = Date.now();
    await assert.rejects(alice2.client.receive(), (err: unknown) => {
      assert.ok(err instanceof ClientError, `a ClientError, got ${String(err)}`);
      assert.ok(err.code === 'DEVICE_REMOVED' || (err.code as string) === 'UNAUTHORIZED', `code ${err.code}`);
      return true;
    });
    assert.ok(Date.now() - started < 5000, 'refused at once, not after a connect timeout');
    assert.equal(fatal.length, 1, 'one fatal event');
    await assert.rejects(alice2.client.receive(), (err: unknown) => ClientError.is(err, 'DEVICE_REMOVED'), 'and again on the next try');
    await assert.rejects(alice2.client.send('bob', 'from a removed device'), (err: unknown) => ClientError.is(err, 'DEVICE_REMOVED'));
  });

  it('is no longer written to by its account nor by peers', async () => {
    const fromBob = await bob.client.send('alice', 'only device 1 should get this');
    assert.equal(fromBob.status, 'sent', 'the relay’s device list corrected bob’s view (no MISMATCHED loop)');
    const fromAlice = await alice1.client.send('bob', 'no transcript for the removed device');
    assert.equal(fromAlice.status, 'sent');
    // alice1's send connected and may have taken bob's message already: look at the history.
    await alice1.client.receive();
    assert.deepEqual(ids(await bob.client.receive()), [fromAlice.id]);
    // The two were sent at once (same lamport clock): compare as sets.
    for (const c of [alice1, bob]) {
      assert.deepEqual(
        fullHistory(c.client, c === bob ? 'alice' : 'bob')
          .map((m) => m.text)
          .sort(),
        ['hello both of you', 'hi from device 1', 'no transcript for the removed device', 'only device 1 should get this'],
      );
    }
  });
});

describe('client engine: an identity key changed by a lying relay', () => {
  let relay: RelayProcess;
  let proxy: TamperingProxy;
  let alice: RecordingClient;
  let bob: RecordingClient;
  let bob2: RecordingClient | undefined;
  let bobAci: string;

  before(async () => {
    relay = await startRelay();
    proxy = await TamperingProxy.start(relay.url);
    // Alice's sends stay identified, so bob can name (and ask) the sender of what he cannot read.
    proxy.hideSealedSender = true;
    alice = await openRecording();
    bob = await openRecording();
    // Only alice goes through the lying relay; bob talks to the real one.
    await alice.client.register(proxy.url, 'alice');
    bobAci = (await bob.client.register(relay.url, 'bob')).aci;
    await alice.client.send('bob', 'hello bob');
    await bob.client.receive();
    await bob.client.send('alice', 'hello alice');
    await alice.client.receive();
  });
  after(async () => {
    for (const c of [alice, bob, bob2]) await c?.client.close();
    await proxy?.close();
    await relay?.stop();
  });

  it('holds the message, flags the change, and sends once the user accepts the new key', async () => {
    const before = await alice.client.verify('bob');
    assert.equal(before.identityChanged, false);

    const madeUp = makeUpIdentity();
    let rewritten = 0;
    proxy.restHook = (req, res) => {
      if (req.method !== 'GET' || !req.path.startsWith(`/v1/keys/${bobAci}/`) || res.status !== 200) return undefined;
      rewritten++;
      return { body: madeUp.rewrite(res.json as BundleResponse) };
    };
    // Bob really links a second device; alice's next send learns of it from the relay and
    // claims its bundle, which the lying relay rewrites.
    bob2 = (await linkNewDevice(bob, relay.url)).device;
    const sendsBefore = proxy.sentFrames().length;
    await assert.rejects(alice.client.send('bob', 'do you have a new device?'), (err: unknown) => ClientError.is(err, 'IDENTITY_CHANGED'));
    assert.ok(rewritten >= 1, 'the lying relay answered a bundle claim');

    const changed = await alice.client.verify('bob');
    assert.equal(changed.identityChanged, true, 'verify shows the change');
    assert.notEqual(changed.safetyNumber, before.safetyNumber);
    assert.equal(alice.client.conversations()[0]!.identityChanged, true, 'the conversation is flagged');
    const held = () => fullHistory(alice.client, 'bob').find((m) => m.text === 'do you have a new device?');
    assert.equal(held()?.status, 'pending');
    await alice.client.receive();
    assert.equal(held()?.status, 'pending', 'connecting again does not release it');
    const toBob = () =>
      proxy
        .sentFrames()
        .slice(sendsBefore)
        .filter((s) => aciFromBytes(s.destination) === bobAci);
    assert.ok(
      toBob().every((s) => s.messages.every((m) => m.deviceId !== 2)),
      'nothing was encrypted for the device behind the unaccepted key',
    );

    const accepted = await alice.client.acceptIdentity('bob');
    assert.equal(accepted.identityChanged, false);
    assert.equal(accepted.verified, true);
    assert.equal(accepted.safetyNumber, changed.safetyNumber);
    await alice.client.receive();
    assert.equal(held()?.status, 'sent', 'accepting released the held message');
    const last = toBob().at(-1)!;
    assert.deepEqual(
      last.messages.map((m) => m.deviceId).sort(),
      [1, 2],
      'the released message went to both of bob’s devices',
    );
    proxy.clearHooks();

    // What reached bob's first device was encrypted to the relay's key, so it cannot read it and
    // asks alice (under its real key) to send it again: alice sees the key change back.
    const bobGot = await bob.client.receive();
    assert.deepEqual(
      bobGot.map((m) => m.kind),
      ['decryption-error'],
      'bob cannot read what was encrypted to the relay’s key',
    );
    await alice.client.receive();
    assert.equal((await alice.client.verify('bob')).identityChanged, true, 'the real key speaking up flags the conversation again');
    assert.ok(
      fullHistory(alice.client, 'bob').some((m) => m.kind === 'identity-change'),
      'alice’s history records the change',
    );
  });
});
