// SPDX-License-Identifier: AGPL-3.0-only
/**
 * Sent transcripts and a device alone on its account: once the relay's device list showed the
 * sender alone, it queues no transcript per message (the pipeline would encrypt it for nobody);
 * as soon as it links a second device, transcripts are queued again and reach that device.
 * Watches the sender's outbox inserts (what was queued for its own account) through the
 * database class, with a real relay process.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ClientDatabase, type SqlParams } from '@parley/client';
import { linkNewDevice, openRecording, until, type RecordingClient } from '../support/client-harness.js';
import { startRelay, type RelayProcess } from '../support/relay-process.js';

describe('client engine: sent transcripts of a device alone on its account', () => {
  let relay: RelayProcess;
  let alice: RecordingClient;
  let bob: RecordingClient;
  const opened: RecordingClient[] = [];
  /** Destination ACIs of every outbox entry queued (in any profile of this process). */
  const queuedFor: string[] = [];
  const originalRun = ClientDatabase.prototype.run;

  before(async () => {
    ClientDatabase.prototype.run = function (this: ClientDatabase, sql: string, params?: SqlParams) {
      if (sql.startsWith('INSERT INTO outbox (') && Array.isArray(params)) queuedFor.push(String(params[1]));
      return originalRun.call(this, sql, params);
    };
    relay = await startRelay();
    alice = await openRecording();
    bob = await openRecording();
    opened.push(alice, bob);
    await alice.client.register(relay.url, 'alice');
    await bob.client.register(relay.url, 'bob');
  });
  after(async () => {
    ClientDatabase.prototype.run = originalRun;
    for (const c of opened) await c.client.close();
    await relay?.stop();
  });

  const transcriptsQueued = () => queuedFor.filter((aci) => aci === alice.client.account()!.aci).length;

  it('queues a transcript for the first message only, until a device is linked', async () => {
    // Before anything is known of its devices, the first send queues one: its encryption asks
    // the relay for the account's device list, which shows alice alone.
    await alice.client.send('bob', 'one');
    assert.equal(transcriptsQueued(), 1);
    for (const text of ['two', 'three', 'four']) await alice.client.send('bob', text);
    assert.equal(transcriptsQueued(), 1, 'no transcript is queued for nobody');
    await bob.client.receive();
    assert.deepEqual(
      bob.messages.map((m) => m.text),
      ['one', 'two', 'three', 'four'],
    );
  });

  it('queues them again once alice links a second device, which gets them', async () => {
    const linked = await linkNewDevice(alice, relay.url);
    opened.push(linked.device);
    const before = transcriptsQueued();
    await alice.client.send('bob', 'five, with two devices');
    assert.equal(transcriptsQueued(), before + 1, 'the transcript for the new device is queued');
    await linked.device.client.receive();
    await until('the new device to have the transcript', () => linked.device.messages.some((m) => m.text === 'five, with two devices' && m.direction === 'out'));
  });
});
