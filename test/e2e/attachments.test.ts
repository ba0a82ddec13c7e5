// SPDX-License-Identifier: AGPL-3.0-only
/**
 * Files between two people through the client engine and a real relay process: alice sends a
 * 5 MiB file, bob receives the pointer, his download is interrupted halfway and resumes from
 * the partial file, and the bytes he gets are the bytes alice sent. The relay's data directory
 * holds no plaintext of the file (nor its name or caption), and a blob altered on the relay's
 * disk is refused whole.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CryptoError, encryptedAttachmentSize } from '@parley/crypto';
import { TransportError, type MessageView } from '@parley/client';
import { openRecording, until, type RecordingClient } from '../support/client-harness.js';
import { startRelay, type RelayProcess } from '../support/relay-process.js';
import { filesUnder } from '../support/state-snapshot.js';

const SIZE = 5 * 1024 * 1024;
const FILE_NAME = 'holiday-plans-7f3a.bin';
const CAPTION = 'the itinerary, caption 9b1c';


const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

describe('attachments end to end', () => {
  let relay: RelayProcess;
  let alice: RecordingClient;
  let bob: RecordingClient;
  let work: string;
  let plain: Buffer;
  let sourcePath: string;
  let received: MessageView;

  before(async () => {
    relay = await startRelay();
    alice = await openRecording();
    bob = await openRecording();
    await alice.client.register(relay.url, 'alice');
    await bob.client.register(relay.url, 'bob');
    work = mkdtempSync(join(tmpdir(), 'parley-attach-e2e-'));
    plain = randomBytes(SIZE);
    sourcePath = join(work, FILE_NAME);
    writeFileSync(sourcePath, plain);
  });
  after(async () => {
    await alice?.client.close();
    await bob?.client.close();
    await relay?.stop();
  });

  it('alice sends a 5 MiB file with a caption; bob receives its pointer', async () => {
    const sent = await alice.client.sendFile('bob', sourcePath, { caption: CAPTION });
    assert.equal(sent.status, 'sent');
    assert.equal(sent.text, CAPTION);
    assert.deepEqual(sent.attachments, [{ index: 0, fileName: FILE_NAME, contentType: 'application/octet-stream', size: SIZE, path: sourcePath }]);
    const uploads = alice.progress.filter((p) => p.task === 'upload');
    assert.ok(uploads.length > 5, 'upload progress was reported');
    assert.deepEqual(uploads.at(-1), { task: 'upload', done: encryptedAttachmentSize(SIZE), total: encryptedAttachmentSize(SIZE), unit: 'bytes' });

    await bob.client.receive();
    await until('bob to get the message', () => bob.messages.some((m) => m.id === sent.id));
    received = bob.messages.find((m) => m.id === sent.id)!;
    assert.equal(received.text, CAPTION);
    assert.equal(received.direction, 'in');
    assert.deepEqual(received.attachments, [{ index: 0, fileName: FILE_NAME, contentType: 'application/octet-stream', size: SIZE }]);
    // The pointer is stored with the message: history shows it too.
    assert.deepEqual(bob.client.history('alice').find((m) => m.id === sent.id)?.attachments, received.attachments);
  });

  it('an upload stopped halfway sends nothing', async () => {
    const stop = new AbortController();
    const off = alice.client.on('progress', (p) => {
      if (p.task === 'upload' && p.done > p.total / 2) stop.abort();
    });
    const before = alice.client.history('bob').length;
    await assert.rejects(alice.client.sendFile('bob', sourcePath, { signal: stop.signal }), (e) => e instanceof TransportError && e.code === 'DISCONNECTED');
    off();
    assert.equal(alice.client.history('bob').length, before);
    // The relay drops what it got of the cut-off upload.
    await until('the relay to drop the cut-off upload', () => readdirSync(join(relay.dataDir, 'attachments', 'tmp')).length === 0);
  });

  it('the relay stores one encrypted blob and no plaintext of the file, its name or caption', () => {
    const files = filesUnder(relay.dataDir);
    const blobs = files.filter((f) => /attachments\/[0-9a-f]{2}\/[0-9a-f]{32}$/.test(f));
    assert.equal(blobs.length, 1, files.join('\n'));
    assert.equal(statSync(blobs[0]!).size, encryptedAttachmentSize(SIZE));
    const needles = [0, 4096, 1024 * 1024 + 17, SIZE - 64].map((at) => plain.subarray(at, at + 48));
    for (const file of files) {
      const bytes = readFileSync(file);
      for (const needle of needles) assert.equal(bytes.indexOf(needle), -1, `${file} holds plaintext of the file`);
      assert.equal(bytes.indexOf(Buffer.from(FILE_NAME)), -1, `${file} holds the file name`);
      assert.equal(bytes.indexOf(Buffer.from(CAPTION)), -1, `${file} holds the caption`);
    }
  });

  it('bob’s download is cut off halfway, resumes from the partial file, and gives the same bytes', async () => {
    const out = join(work, 'received.bin');
    const halfway = new AbortController();
    const total = encryptedAttachmentSize(SIZE);
    const off = bob.client.on('progress', (p) => {
      if (p.task === 'download' && p.done > total / 2) halfway.abort();
    });
    await assert.rejects(bob.client.downloadAttachment(received.id, { out, signal: halfway.signal }), (e) => e instanceof TransportError && e.code === 'DISCONNECTED');
    off();
    assert.equal(existsSync(out), false, 'nothing is written before the whole file is checked');
    const partial = filesUnder(join(bob.profileDir, 'downloads'));
    assert.equal(partial.length, 1);
    const kept = statSync(partial[0]!).size;
    // Cut off when more than half had arrived; what reached the disk by then is kept.
    assert.ok(kept > total / 4 && kept < total, `partial download of ${kept} bytes`);

    const before = bob.progress.length;
    const done = await bob.client.downloadAttachment(received.id, { out });
    const resumed = bob.progress.slice(before).filter((p) => p.task === 'download');
    assert.ok(resumed[0]!.done > kept, `the second attempt starts at ${resumed[0]!.done}, after the ${kept} bytes kept`);
    assert.equal(done.path, out);
    assert.equal(done.size, SIZE);
    assert.equal(done.fileName, FILE_NAME);
    assert.equal(sha256(readFileSync(out)), sha256(plain));
    assert.deepEqual(filesUnder(join(bob.profileDir, 'downloads')), [], 'the partial file is gone');
    // The message now knows where the file is.
    assert.equal(bob.client.history('alice').find((m) => m.id === received.id)?.attachments?.[0]?.path, out);
    // A second download never replaces the file.
    await assert.rejects(bob.client.downloadAttachment(received.id, { out }), /exists already/);
    const again = await bob.client.downloadAttachment(received.id, { out: work });
    assert.equal(again.path, join(work, 'holiday-plans-7f3a (1).bin'));
  });

  it('a blob altered on the relay’s disk is refused whole, and nothing of it is kept', async () => {
    const blob = filesUnder(relay.dataDir).find((f) => /attachments\/[0-9a-f]{2}\/[0-9a-f]{32}$/.test(f))!;
    const bytes = readFileSync(blob);
    bytes[bytes.length >> 1]! ^= 0x40;
    writeFileSync(blob, bytes);
    const out = join(work, 'tampered.bin');
    await assert.rejects(bob.client.downloadAttachment(received.id, { out }), (e) => CryptoError.is(e, 'INVALID_ATTACHMENT'));
    assert.equal(existsSync(out), false);
    assert.deepEqual(
      readdirSync(work).filter((n) => n.startsWith('.')),
      [],
      'no temporary plaintext is left beside the destination',
    );
    assert.deepEqual(filesUnder(join(bob.profileDir, 'downloads')), [], 'the bad blob is not kept for a resume');
  });
});
