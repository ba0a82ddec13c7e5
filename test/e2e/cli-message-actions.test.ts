// SPDX-License-Identifier: AGPL-3.0-only
/**
 * The `parley` commands for edits, deletes, reactions, replies, disappearing messages and
 * blocking, as real processes against a real relay process: what `listen --json` prints while
 * they happen, what `history --json` and `search` show afterwards, the exit codes of refusals,
 * and a disappearing message gone for good once a process saw the time after its timer
 * (PARLEY_TEST_CLOCK_OFFSET_MS moves the clock of one process).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { until } from '../support/client-harness.js';
import { REPO_ROOT, startRelay, type RelayProcess } from '../support/relay-process.js';

const PARLEY = join(REPO_ROOT, 'clients', 'cli', 'bin', 'parley.js');

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

type Json = Record<string, unknown>;

function start(args: readonly string[], env: Record<string, string> = {}): { done: Promise<Run>; out: () => string; stop: () => void } {
  const child = spawn(process.execPath, [PARLEY, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, PARLEY_HOME: '', ...env } });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  return {
    done: new Promise((resolve) => child.once('exit', (code) => resolve({ code, stdout, stderr }))),
    out: () => stdout,
    stop: () => void child.kill('SIGTERM'),
  };
}

const lines = (text: string): Json[] =>
  text
    .split('\n')
    .filter((l) => l.length > 0)
    .map((l) => JSON.parse(l) as Json);

describe('parley edit, delete, react, reply, expire and block as processes', () => {
  let relay: RelayProcess;
  const dir = mkdtempSync(join(tmpdir(), 'parley-cli-actions-'));
  const alice = join(dir, 'alice');
  const bob = join(dir, 'bob');

  /** Runs `parley ARGS --profile P --json` and answers its JSON lines; fails on a non-zero exit. */
  async function parley(profile: string, args: readonly string[], env: Record<string, string> = {}): Promise<Json[]> {
    const r = await start([...args, '--profile', profile, '--json'], env).done;
    assert.equal(r.code, 0, `parley ${args.join(' ')}: ${r.stderr}`);
    return lines(r.stdout);
  }

  before(async () => {
    relay = await startRelay();
    await parley(alice, ['register', 'alice', '--server', relay.url]);
    await parley(bob, ['register', 'bob', '--server', relay.url]);
  });
  after(async () => {
    await relay?.stop();
  });

  it('listen --json prints the edit, reaction, delete and timer change as they arrive; history shows the result', async () => {
    const [sent] = await parley(alice, ['send', 'bob', 'lunch at noon?']);
    const id = sent!.id as string;
    await parley(bob, ['receive']);

    const listening = start(['listen', '--profile', bob, '--json']);
    try {
      const [edited] = await parley(alice, ['edit', 'bob', id, 'dinner at eight?']);
      assert.equal(edited!.text, 'dinner at eight?');
      await parley(alice, ['react', 'bob', id, '🍝']);
      const [reply] = await parley(alice, ['reply', 'bob', id, 'or pizza']);
      assert.deepEqual(reply!.quote, { id, author: 'alice@localhost', text: 'dinner at eight?', found: true });
      const [other] = await parley(alice, ['send', 'bob', 'a message to take back']);
      const [tomb] = await parley(alice, ['delete', 'bob', other!.id as string]);
      assert.equal(tomb!.deleted, true);
      await parley(alice, ['expire', 'bob', '1h']);
      await until(
        'bob’s listener to print every event',
        () => {
          const events = lines(listening.out()).map((l) => l.event).filter((e) => e !== undefined);
          return ['edit', 'reaction', 'delete', 'expire'].every((e) => events.includes(e));
        },
        30_000,
      );
    } finally {
      listening.stop();
    }
    const printed = lines((await listening.done).stdout);
    assert.deepEqual(
      printed.find((l) => l.event === 'edit'),
      { event: 'edit', conversation: 'alice@localhost', messageId: id, author: 'alice@localhost', text: 'dinner at eight?', editedAt: printed.find((l) => l.event === 'edit')!.editedAt },
    );
    assert.deepEqual(printed.find((l) => l.event === 'reaction'), {
      event: 'reaction',
      conversation: 'alice@localhost',
      messageId: id,
      author: 'alice@localhost',
      reactor: 'alice@localhost',
      emoji: '🍝',
      removed: false,
    });
    assert.ok(printed.some((l) => l.event === 'delete' && l.scope === 'everyone'));
    assert.ok(printed.some((l) => l.event === 'expire' && l.seconds === 3600 && l.by === 'alice@localhost'));
    assert.ok(printed.some((l) => l.kind === 'system' && l.timerUpdate === 3600), 'the timer notice is printed as a message too');

    const history = await parley(bob, ['history', 'alice']);
    const m = history.find((l) => l.id === id)!;
    assert.equal(m.text, 'dinner at eight?');
    assert.deepEqual((m.edits as Json[]).map((e) => e.text), ['lunch at noon?', 'dinner at eight?']);
    assert.deepEqual((m.reactions as Json[]).map((r) => [r.emoji, r.reactor]), [['🍝', 'alice@localhost']]);
    assert.ok(history.some((l) => l.deleted === true && l.text === ''));
    const versions = await parley(bob, ['history', 'alice', '--edits', id]);
    assert.deepEqual(versions.map((v) => v.text), ['lunch at noon?', 'dinner at eight?']);
    assert.deepEqual(await parley(bob, ['search', 'lunch']), [], 'the old text is not found');
    assert.equal((await parley(bob, ['search', 'dinner'])).length, 1);
    assert.deepEqual(await parley(bob, ['expire', 'alice']), [{ conversation: 'alice@localhost', seconds: 3600 }]);
  });

  it('refuses what is not allowed with exit 2 and a typed error', async () => {
    // With a timer on, a message is gone a day later anyway (NOT_FOUND): this is about the window.
    await parley(alice, ['expire', 'bob', 'off']);
    const [theirs] = await parley(bob, ['send', 'alice', 'bob wrote this']);
    await parley(alice, ['receive']);
    for (const [args, code] of [
      [['edit', 'bob', theirs!.id as string, 'mine now'], 'NOT_AUTHOR'],
      [['delete', 'bob', theirs!.id as string], 'NOT_AUTHOR'],
      [['react', 'bob', theirs!.id as string, 'xyz'], 'INVALID_ARGUMENT'],
    ] as const) {
      const r = await start([...args, '--profile', alice, '--json']).done;
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.equal((lines(r.stderr)[0]!.error as Json).code, code);
    }
    const [mine] = await parley(alice, ['send', 'bob', 'sent a day ago, as far as this process knows']);
    const late = await start(['edit', 'bob', mine!.id as string, 'too late', '--profile', alice, '--json'], { PARLEY_TEST_CLOCK_OFFSET_MS: String(24 * 3600_000 + 60_000) }).done;
    assert.equal(late.code, 2);
    assert.equal((lines(late.stderr)[0]!.error as Json).code, 'TOO_LATE');
  });

  it('a disappearing message is gone from history and search once a process sees the time after its timer, for good', async () => {
    await parley(alice, ['expire', 'bob', '1h']);
    const [gone] = await parley(alice, ['send', 'bob', 'the xylophone code is 4417']);
    assert.equal(gone!.expireTimer, 3600);
    await parley(bob, ['receive']);
    assert.equal((await parley(bob, ['search', 'xylophone'])).length, 1);
    const later = { PARLEY_TEST_CLOCK_OFFSET_MS: String(3600_000 + 60_000) };
    assert.deepEqual(await parley(bob, ['search', 'xylophone'], later), []);
    assert.ok(!(await parley(bob, ['history', 'alice'], later)).some((l) => l.id === gone!.id));
    // That process deleted it: with the clock back it does not come back.
    assert.ok(!(await parley(bob, ['history', 'alice'])).some((l) => l.id === gone!.id));
    assert.deepEqual(await parley(bob, ['search', 'xylophone']), []);
    assert.equal((await parley(alice, ['search', 'xylophone'])).length, 1, 'the sender’s process has not seen that time yet');
    assert.deepEqual(await parley(alice, ['search', 'xylophone'], later), []);
    await parley(alice, ['expire', 'bob', 'off']);
    await parley(bob, ['receive']);
  });

  it('block drops the contact’s messages and refuses sends; blocked lists it; unblock lets messages through', async () => {
    const [b] = await parley(alice, ['block', 'bob']);
    assert.equal(b!.blocked, true);
    assert.deepEqual((await parley(alice, ['blocked'])).map((l) => l.address), ['bob@localhost']);
    await parley(bob, ['send', 'alice', 'are you ignoring me']);
    assert.deepEqual(await parley(alice, ['receive']), []);
    const refused = await start(['send', 'bob', 'hi', '--profile', alice, '--json']).done;
    assert.equal(refused.code, 2);
    assert.equal((lines(refused.stderr)[0]!.error as Json).code, 'BLOCKED');
    await parley(alice, ['unblock', 'bob']);
    assert.deepEqual(await parley(alice, ['blocked']), []);
    await parley(bob, ['send', 'alice', 'now?']);
    assert.deepEqual((await parley(alice, ['receive'])).map((l) => l.text), ['now?']);
  });
});
