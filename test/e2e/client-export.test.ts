// SPDX-License-Identifier: AGPL-3.0-only
/**
 * The open archive (`exportArchive`) holds every message of every conversation, in both
 * formats: JSON lines that parse back into the history, and Markdown that shows each text.
 */
import assert from 'node:assert/strict';
import { readFileSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { MessageView } from '@parley/client';
import { fullHistory, newProfileDir, openRecording, type RecordingClient } from '../support/client-harness.js';
import { startRelay, type RelayProcess } from '../support/relay-process.js';

describe('client engine: export', () => {
  let relay: RelayProcess;
  let alice: RecordingClient;
  let bob: RecordingClient;
  let carol: RecordingClient;
  const peers = ['bob@localhost', 'carol@localhost'];

  before(async () => {
    relay = await startRelay();
    [alice, bob, carol] = [await openRecording(), await openRecording(), await openRecording()];
    await alice.client.register(relay.url, 'alice');
    await bob.client.register(relay.url, 'bob');
    await carol.client.register(relay.url, 'carol');
    for (let i = 0; i < 30; i++) await alice.client.send('bob', `to bob #${i}`);
    await alice.client.send('carol', 'hi carol, *not* markdown | pipes | and `ticks`');
    await bob.client.receive();
    await carol.client.receive();
    await bob.client.send('alice', 'a reply\nover two lines');
    await carol.client.send('alice', 'grüße aus 東京 🦊');
    await alice.client.receive();
  });
  after(async () => {
    for (const c of [alice, bob, carol]) await c?.client.close();
    await relay?.stop();
  });

  it('writes one JSON lines file per conversation holding its whole history, in order', async () => {
    const outDir = join(newProfileDir(), 'export-jsonl');
    const before = alice.progress.length;
    const result = await alice.client.exportArchive({ format: 'jsonl', outDir });
    assert.equal(result.messages, 33);
    assert.deepEqual(result.files.map((f) => basename(f)).sort(), ['bob@localhost.jsonl', 'carol@localhost.jsonl']);
    for (const peer of peers) {
      const file = result.files.find((f) => basename(f) === `${peer}.jsonl`)!;
      assert.equal(statSync(file).mode & 0o077, 0, 'the archive holds plaintext: owner only');
      const lines = readFileSync(file, 'utf8').split('\n').filter(Boolean);
      const parsed = lines.map((l) => JSON.parse(l) as MessageView);
      assert.deepEqual(parsed, fullHistory(alice.client, peer), `${peer}: every message, oldest first, as history shows it`);
    }
    const progress = alice.progress.slice(before).filter((p) => p.task === 'export');
    assert.deepEqual(progress.at(-1), { task: 'export', done: 33, total: 33, unit: 'messages' });
  });

  it('writes one Markdown file per conversation showing every text', async () => {
    const outDir = join(newProfileDir(), 'export-md');
    const result = await alice.client.exportArchive({ format: 'md', outDir });
    assert.equal(result.messages, 33);
    assert.deepEqual(result.files.map((f) => basename(f)).sort(), ['bob@localhost.md', 'carol@localhost.md']);
    for (const peer of peers) {
      const md = readFileSync(result.files.find((f) => basename(f) === `${peer}.md`)!, 'utf8');
      const history = fullHistory(alice.client, peer);
      assert.match(md, new RegExp(`^# ${peer}\\n`));
      const entries = md.split('\n').filter((l) => l.startsWith('- **'));
      assert.equal(entries.length, history.length, `${peer}: one entry per message`);
      let at = 0;
      for (const m of history) {
        // Each text appears (continuation lines indented), in history order.
        const shown = m.text.replace(/\n/g, '\n  ');
        const found = md.indexOf(shown, at);
        assert.ok(found >= 0, `${peer}: "${m.text}" is in the Markdown after the previous message`);
        at = found + shown.length;
      }
    }
  });
});
