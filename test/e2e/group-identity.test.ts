// SPDX-License-Identifier: AGPL-3.0-only
/**
 * A group send and a member's changed identity key, as a 1:1 send: the send answers
 * IDENTITY_CHANGED naming the member, nothing of it leaves (for that member nor the others: the
 * sender decides first, as Signal asks before sending to a group), and accepting the new key
 * with `verify --accept` sends it to everyone, once.
 *
 * The key server cannot give an account a new identity key, so the change is staged as in
 * client-trust.test.ts by a TAMPERING PROXY standing in for a lying relay: when bob links a
 * second device, the proxy hands alice that device's bundle under an identity key it made up.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ClientError, type ParleyClientApi } from '@parley/client';
import type { BundleResponse } from '@parley/protocol';
import { fullHistory, linkNewDevice, openRecording, until, type RecordingClient } from '../support/client-harness.js';
import { makeUpIdentity } from '../support/client-lying-keys.js';
import { startRelay, type RelayProcess } from '../support/relay-process.js';
import { TamperingProxy } from '../support/tampering-proxy.js';

describe('a group send held by a member’s changed identity key', () => {
  let relay: RelayProcess;
  let proxy: TamperingProxy;
  let alice: RecordingClient;
  let bob: RecordingClient;
  let carol: RecordingClient;
  let bob2: RecordingClient | undefined;
  let bobAci = '';
  let group = '';

  const texts = (c: ParleyClientApi) => fullHistory(c, group).filter((m) => m.kind === 'text').map((m) => m.text);

  before(async () => {
    relay = await startRelay();
    proxy = await TamperingProxy.start(relay.url);
    alice = await openRecording();
    bob = await openRecording();
    carol = await openRecording();
    // Only alice goes through the lying relay (sealed sender stays on: group uploads need it).
    await alice.client.register(proxy.url, 'alice');
    bobAci = (await bob.client.register(relay.url, 'bob')).aci;
    await carol.client.register(relay.url, 'carol');
    group = `#${(await alice.client.createGroup('ropes', ['bob', 'carol'])).id}`;
    assert.equal((await alice.client.send(group, 'first')).status, 'sent');
    for (const c of [bob, carol]) await c.client.receive();
    for (const c of [bob, carol]) assert.deepEqual(texts(c.client), ['first']);
  });
  after(async () => {
    for (const c of [alice, bob, carol, bob2]) await c?.client.close();
    await proxy?.close();
    await relay?.stop();
  });

  it('answers IDENTITY_CHANGED naming the member, and sends nothing until it is accepted', async () => {
    const madeUp = makeUpIdentity();
    proxy.restHook = (req, res) => {
      if (req.method !== 'GET' || !req.path.startsWith(`/v1/keys/${bobAci}/`) || res.status !== 200) return undefined;
      return { body: madeUp.rewrite(res.json as BundleResponse) };
    };
    // Bob really links a second device; alice's upload is refused for bob's device set, and the
    // bundle she then claims comes under the made-up key.
    bob2 = (await linkNewDevice(bob, relay.url)).device;
    await assert.rejects(alice.client.send(group, 'second'), (err: unknown) => {
      assert.ok(ClientError.is(err, 'IDENTITY_CHANGED'), `IDENTITY_CHANGED, got ${String(err)}`);
      assert.match(err.message, /bob@localhost/);
      assert.match(err.message, /parley verify bob@localhost --accept/);
      return true;
    });
    const held = () => fullHistory(alice.client, group).find((m) => m.text === 'second');
    assert.equal(held()?.status, 'pending');
    assert.equal((await alice.client.verify('bob')).identityChanged, true, 'verify shows the change');
    // Connecting again does not release it, and nobody got it.
    await alice.client.receive();
    assert.equal(held()?.status, 'pending');
    await carol.client.receive();
    assert.deepEqual(texts(carol.client), ['first'], 'the other members wait too');
  });

  it('sends it once the user accepts the new key, once, to the members who waited', async () => {
    await alice.client.acceptIdentity('bob');
    await alice.client.receive();
    const held = () => fullHistory(alice.client, group).find((m) => m.text === 'second');
    await until('the held group message to go out', () => held()?.status !== 'pending', 20_000);
    assert.equal(held()?.status, 'sent');
    // Carol gets it once, after the first. (Bob cannot read it: alice accepted the key the lying
    // relay made up, so what she seals for bob is sealed to that key; with a real key change the
    // member reads it, as the 1:1 tests show.)
    await carol.client.receive();
    assert.deepEqual(texts(carol.client), ['first', 'second'], 'delivered once, after the first');
    // A later message goes straight out.
    const third = await alice.client.send(group, 'third');
    assert.equal(third.status, 'sent');
    await carol.client.receive();
    assert.deepEqual(texts(carol.client), ['first', 'second', 'third']);
  });
});
