// SPDX-License-Identifier: AGPL-3.0-only
/**
 * What a chat leaves on disk: no plaintext in any file of either profile (database, WAL, shared
 * memory, key files), while the clients are open and after they closed; and a profile that
 * refuses a wrong passphrase with a typed error and opens with the right one.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ClientError, openParleyClient } from '@parley/client';
import { fullHistory, newProfileDir, openRecording, type RecordingClient } from '../support/client-harness.js';
import { startRelay, type RelayProcess } from '../support/relay-process.js';
import { filesUnder } from '../support/state-snapshot.js';

const PASSPHRASE = 'correct horse battery staple';
/** The test package, whose node_modules resolve @parley/client. */
const TEST_ROOT = fileURLToPath(new URL('../../', import.meta.url));


/** The needles found in any file under `dir`, as `file: needle`, in UTF-8 and UTF-16LE. */
function plaintextIn(dir: string, needles: readonly string[]): string[] {
  const found: string[] = [];
  for (const file of filesUnder(dir)) {
    const bytes = readFileSync(file);
    for (const n of needles) {
      if (bytes.includes(Buffer.from(n, 'utf8')) || bytes.includes(Buffer.from(n, 'utf16le'))) found.push(`${file}: ${n}`);
    }
  }
  return found;
}

describe('client engine: data at rest', () => {
  let relay: RelayProcess;
  let alice: RecordingClient;
  let bob: RecordingClient;
  const aliceDir = newProfileDir();
  const bobDir = newProfileDir();
  const secrets = [
    'xylophone quagmire 7781',
    'the vault code is 4417-2290',
    'zeppelin marmalade',
    'answer with unicode: grüße, 東京, 🦊',
  ];
  let needles: string[] = [];

  before(async () => {
    relay = await startRelay();
    alice = await openRecording(aliceDir, PASSPHRASE);
    bob = await openRecording(bobDir);
    const a = await alice.client.register(relay.url, 'alexandrina');
    const b = await bob.client.register(relay.url, 'bartholomew');
    await alice.client.send('bartholomew', secrets[0]!);
    await alice.client.send('bartholomew', secrets[1]!);
    await bob.client.receive();
    await bob.client.send('alexandrina', secrets[2]!);
    await bob.client.send('alexandrina', secrets[3]!);
    await alice.client.receive();
    // Message texts, and who talks to whom (usernames, addresses, ACIs), are private.
    needles = [...secrets, 'xylophone', 'marmalade', '4417-2290', '東京', 'alexandrina', 'bartholomew', a.aci, b.aci];
  });
  after(async () => {
    await alice?.client.close().catch(() => undefined);
    await bob?.client.close().catch(() => undefined);
    await relay?.stop();
  });

  it('writes no plaintext into any file of either profile while the clients are open', () => {
    assert.equal(fullHistory(alice.client, 'bartholomew').length, 4, 'the chat happened');
    for (const dir of [aliceDir, bobDir]) {
      const files = filesUnder(dir).map((f) => f.slice(dir.length + 1));
      assert.ok(
        files.some((f) => f.endsWith('-wal') && statSync(join(dir, f)).size > 0),
        `a non-empty WAL is among the files checked: ${files.join(', ')}`,
      );
      assert.deepEqual(plaintextIn(dir, needles), []);
    }
  });

  it('writes no plaintext after the clients closed either', async () => {
    await alice.client.close();
    await bob.client.close();
    for (const dir of [aliceDir, bobDir]) assert.deepEqual(plaintextIn(dir, needles), []);
    // The check itself finds plaintext where there is some (a guard against a vacuous pass).
    assert.deepEqual(plaintextIn(relay.dataDir, ['alexandrina']).length > 0, true, 'the relay stores usernames in the clear, and the check sees them');
  });

  it('refuses a wrong or missing passphrase with a typed error, and opens with the right one', async () => {
    await assert.rejects(openParleyClient({ profileDir: aliceDir, passphrase: 'correct horse battery stapler' }), (err: unknown) => {
      assert.ok(ClientError.is(err, 'WRONG_PASSPHRASE'), `got ${String(err)}`);
      assert.ok(!(err as Error).message.includes('stapler'), 'the message does not echo the passphrase');
      return true;
    });
    await assert.rejects(openParleyClient({ profileDir: aliceDir }), (err: unknown) => ClientError.is(err, 'PASSPHRASE_REQUIRED'));
    await assert.rejects(openParleyClient({ profileDir: bobDir, passphrase: PASSPHRASE }), (err: unknown) => ClientError.is(err, 'KEY_MODE_MISMATCH'));

    // A front end's stderr is its own: the refusal is an error object, not a library log line.
    const probe = spawnSync(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `import { openParleyClient } from '@parley/client';
         await openParleyClient({ profileDir: process.argv[1], passphrase: 'wrong' }).then(() => process.exit(2), (e) => console.log(e.code));`,
        aliceDir,
      ],
      { cwd: TEST_ROOT, encoding: 'utf8' },
    );
    assert.equal(probe.stdout.trim(), 'WRONG_PASSPHRASE', probe.stderr);
    assert.equal(probe.stderr, '', 'nothing on stderr');

    const reopened = await openParleyClient({ profileDir: aliceDir, passphrase: PASSPHRASE });
    try {
      assert.equal(reopened.account()?.address, 'alexandrina@localhost');
      assert.deepEqual(
        fullHistory(reopened, 'bartholomew').map((m) => m.text),
        secrets,
        'a failed attempt changed nothing',
      );
    } finally {
      await reopened.close();
    }
  });
});
