// SPDX-License-Identifier: AGPL-3.0-only
/**
 * Files to a group through a real relay process: the file is encrypted and uploaded once, its
 * pointer rides inside the group message, and every member device (one member has two) downloads
 * the same bytes; the sender's other device gets the pointer with the transcript; the relay holds
 * one blob and no plaintext; a member removed before a later file gets nothing of it.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ClientError, type MessageView } from '@parley/client';
import { groupOfThree, until, type RecordingClient } from '../support/client-harness.js';
import { startRelay, type RelayProcess } from '../support/relay-process.js';
import { filesUnder } from '../support/state-snapshot.js';

const SIZE = 300 * 1024;
const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');


describe('files to a group', () => {
  let relay: RelayProcess;
  let alice: RecordingClient;
  let alice2: RecordingClient;
  let bob: RecordingClient;
  let bob2: RecordingClient;
  let carol: RecordingClient;
  let group = '';
  let work: string;
  const opened: RecordingClient[] = [];

  before(async () => {
    relay = await startRelay();
    const people = await groupOfThree(relay.url, 'topos');
    ({ alice, alice2, bob, bob2, carol, group } = people);
    opened.push(...people.all);
    work = mkdtempSync(join(tmpdir(), 'parley-group-files-'));
  });
  after(async () => {
    for (const c of opened) await c.client.close();
    await relay?.stop();
  });

  const fileMessage = (c: RecordingClient, caption: string): MessageView | undefined => c.client.history(group).find((m) => m.text === caption);

  it('uploads once and every member device downloads the same bytes', async () => {
    const plain = randomBytes(SIZE);
    const source = join(work, 'route-7c2e.jpg');
    writeFileSync(source, plain);
    const sent = await alice.client.sendFile(group, source, { caption: 'the new route 51aa' });
    assert.equal(sent.status, 'sent');
    assert.equal(sent.conversation, group);
    assert.equal(sent.attachments?.length, 1);

    for (const c of [bob, bob2, carol, alice2]) {
      await c.client.receive();
      const m = fileMessage(c, 'the new route 51aa');
      assert.ok(m, 'the group message with the file arrived');
      assert.deepEqual(m.attachments?.map((a) => [a.fileName, a.size]), [['route-7c2e.jpg', SIZE]]);
      const out = join(work, `from-${c.profileDir.slice(-6)}.jpg`);
      const got = await c.client.downloadAttachment(m.id, { out });
      assert.equal(got.size, SIZE);
      assert.equal(sha256(readFileSync(out)), sha256(plain), 'the same bytes');
    }
    assert.equal(fileMessage(alice2, 'the new route 51aa')?.direction, 'out', 'the other device of the sender has it as its own');

    const blobs = filesUnder(relay.dataDir).filter((f) => /attachments\/[0-9a-f]{2}\/[0-9a-f]{32}$/.test(f));
    assert.equal(blobs.length, 1, 'one encrypted blob for every member');
    const needle = plain.subarray(1000, 1048);
    for (const f of filesUnder(relay.dataDir)) {
      const bytes = readFileSync(f);
      assert.equal(bytes.indexOf(needle), -1, `${f} holds plaintext of the file`);
      assert.equal(bytes.indexOf(Buffer.from('route-7c2e.jpg')), -1, `${f} holds the file name`);
    }
  });

  it('gives a removed member nothing of a later file; a non-member cannot send one', async () => {
    await alice.client.removeGroupMembers(group, ['carol']);
    for (const c of [bob, carol]) await c.client.receive();
    const source = join(work, 'after-removal.bin');
    writeFileSync(source, randomBytes(4096));
    const sent = await alice.client.sendFile(group, source, { caption: 'not for carol 3d9f' });
    assert.equal(sent.status, 'sent');
    await bob.client.receive();
    assert.ok(fileMessage(bob, 'not for carol 3d9f'), 'bob has it');
    await carol.client.receive();
    assert.equal(fileMessage(carol, 'not for carol 3d9f'), undefined, 'carol has nothing of it');
    await assert.rejects(carol.client.sendFile(group, source), (e) => ClientError.is(e, 'NOT_GROUP_MEMBER'));
    await until('carol to know she is out', () => !carol.client.group(group).member);
  });
});
