// SPDX-License-Identifier: AGPL-3.0-only
/**
 * Attachments through a relay process configured for S3 (`--attachment-store s3`, the secret by
 * environment) against s3rver on loopback: clients upload to pre-signed URLs and download
 * through the relay's redirect, the bytes never touch the relay's data directory, and a relay
 * pointed at a missing bucket refuses to start.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { encryptedAttachmentSize } from '@parley/crypto';
import { openRecording, type RecordingClient } from '../support/client-harness.js';
import { RELAY_BIN, startRelay, type RelayProcess } from '../support/relay-process.js';
import { startS3Server, type S3Server } from '../support/s3-server.js';
import { filesUnder } from '../support/state-snapshot.js';

const SIZE = 1024 * 1024 + 123;


describe('attachments on an S3 store', () => {
  let s3: S3Server;
  let relay: RelayProcess;
  let alice: RecordingClient;
  let bob: RecordingClient;

  before(async () => {
    s3 = await startS3Server();
    relay = await startRelay({
      args: ['--attachment-store', 's3', '--s3-endpoint', s3.endpoint, '--s3-bucket', s3.bucket, '--s3-path-style', '--s3-access-key-id', 'S3RVER'],
      env: { PARLEY_S3_SECRET_ACCESS_KEY: 'S3RVER' },
    });
    alice = await openRecording();
    bob = await openRecording();
    await alice.client.register(relay.url, 'alice');
    await bob.client.register(relay.url, 'bob');
  });
  after(async () => {
    await alice?.client.close();
    await bob?.client.close();
    await relay?.stop();
    await s3?.stop();
  });

  it('sends a file through pre-signed URLs; the relay keeps none of it', async () => {
    const work = mkdtempSync(join(tmpdir(), 'parley-attach-s3-'));
    const plain = randomBytes(SIZE);
    writeFileSync(join(work, 'scan.pdf'), plain);
    const sent = await alice.client.sendFile('bob', join(work, 'scan.pdf'), { caption: 'signed copy' });
    assert.equal(sent.status, 'sent');
    await bob.client.receive();
    const got = bob.messages.find((m) => m.id === sent.id);
    assert.deepEqual(got?.attachments, [{ index: 0, fileName: 'scan.pdf', contentType: 'application/pdf', size: SIZE }]);
    const done = await bob.client.downloadAttachment(sent.id, { out: join(work, 'out.pdf') });
    assert.equal(createHash('sha256').update(readFileSync(done.path)).digest('hex'), createHash('sha256').update(plain).digest('hex'));

    // The blob is an object in the bucket, of the encrypted size; the relay's directory has none.
    const objects = filesUnder(s3.directory).filter((f) => f.endsWith('/object') || /[0-9a-f]{32}/.test(f));
    const sizes = objects.map((f) => readFileSync(f).length);
    assert.ok(sizes.includes(encryptedAttachmentSize(SIZE)), `objects: ${objects.join(', ')}`);
    assert.deepEqual(
      filesUnder(relay.dataDir).filter((f) => f.includes('attachments')),
      [],
    );
    for (const f of filesUnder(relay.dataDir)) assert.equal(readFileSync(f).indexOf(plain.subarray(1000, 1048)), -1, f);
    // The secret key is not in the relay's output either.
    assert.doesNotMatch(relay.output(), /S3RVER/);
  });

  it('a relay pointed at a bucket that does not exist refuses to start', async () => {
    // Not spawnSync: the S3 server runs in this process and must keep answering.
    const child = spawn(
      process.execPath,
      [RELAY_BIN, '--port', '0', '--data', mkdtempSync(join(tmpdir(), 'parley-relay-')), '--attachment-store', 's3', '--s3-endpoint', s3.endpoint, '--s3-bucket', 'no-such-bucket', '--s3-path-style'],
      { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, PARLEY_S3_ACCESS_KEY_ID: 'S3RVER', PARLEY_S3_SECRET_ACCESS_KEY: 'S3RVER' } },
    );
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    assert.equal(code, 2, stderr);
    assert.match(stderr, /cannot use S3 bucket no-such-bucket at http:\/\/127\.0\.0\.1:\d+/);
    assert.doesNotMatch(stderr, /S3RVER/);
  });
});
