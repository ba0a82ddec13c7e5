// SPDX-License-Identifier: AGPL-3.0-only
// edit, delete, react, reply, expire, block, unblock, blocked, history --edits, and the action
// events of listen and receive: human and --json output, usage errors, run with a FakeParleyClient.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseTimer } from '../src/arguments.js';
import { FakeParleyClient, T0, message } from './fake-parley-client.js';
import { run } from './harness.js';

process.env.TZ = 'UTC';

const ID = '0123456789abcdef0123456789abcdef';

describe('edit, delete, react, reply', () => {
  it('edit sends the new text and prints the message marked (edited); --json has the versions', async () => {
    const r = await run(['edit', 'bob', ID.toUpperCase(), 'see you at 9']);
    assert.equal(r.code, 0, r.stderr.text);
    assert.deepEqual(r.client.callsOf('editMessage')[0]?.args, ['bob', ID, 'see you at 9']);
    assert.equal(r.stdout.text, '[2026-11-22 10:31] alice@localhost: see you at 9 (edited)\n');
    const j = await run(['edit', 'bob', ID, 'see you at 9', '--json']);
    const [line] = j.stdout.json;
    assert.equal(line!.editedAt, T0 + 5000);
    assert.deepEqual(line!.edits, [
      { id: ID, text: 'hello', sentAt: T0 },
      { id: 'fedcba9876543210fedcba9876543210', text: 'see you at 9', sentAt: T0 + 5000 },
    ]);
  });

  it('edit - reads the new text from stdin; an empty text is a usage error', async () => {
    const r = await run(['edit', 'bob', ID, '-'], { stdin: 'from stdin\n' });
    assert.deepEqual(r.client.callsOf('editMessage')[0]?.args, ['bob', ID, 'from stdin']);
    const empty = await run(['edit', 'bob', ID, '  ']);
    assert.equal(empty.code, 2);
    assert.equal(empty.client.callsOf('editMessage').length, 0);
  });

  it('maps the engine’s refusals to exit 2 with a hint', async () => {
    for (const [code, hint] of [
      ['NOT_AUTHOR', /only your own messages/],
      ['TOO_LATE', /24 hours/],
      ['BLOCKED', /parley unblock bob@localhost/],
    ] as const) {
      const client = new FakeParleyClient();
      client.failures.set('editMessage', Object.assign(new Error('refused'), { name: 'ClientError', code }));
      const r = await run(['edit', 'bob', ID, 'x', '--json'], { client });
      assert.equal(r.code, 2, code);
      const [err] = r.stderr.json;
      assert.equal((err!.error as { code: string }).code, code);
      assert.match((err!.error as { hint: string }).hint, hint);
    }
  });

  it('delete prints the tombstone; --local says it was deleted here', async () => {
    const r = await run(['delete', 'bob', ID]);
    assert.equal(r.code, 0, r.stderr.text);
    assert.deepEqual(r.client.callsOf('deleteMessage')[0]?.args, ['bob', ID, { local: false }]);
    assert.equal(r.stdout.text, '[2026-11-22 10:31] alice@localhost: (This message was deleted)\n');
    const j = await run(['delete', 'bob', ID, '--json']);
    assert.equal(j.stdout.json[0]!.deleted, true);
    assert.equal(j.stdout.json[0]!.text, '');
    const local = await run(['delete', 'bob', ID, '--local']);
    assert.deepEqual(local.client.callsOf('deleteMessage')[0]?.args, ['bob', ID, { local: true }]);
    assert.equal(local.stdout.text, `deleted message ${ID} on this device\n`);
  });

  it('react sends the emoji, shows the reactions; --remove takes it back; one of the two is required', async () => {
    const r = await run(['react', 'bob', ID, '👍']);
    assert.equal(r.code, 0, r.stderr.text);
    assert.deepEqual(r.client.callsOf('react')[0]?.args, ['bob', ID, '👍', { remove: false }]);
    assert.equal(r.stdout.text, '[2026-11-22 10:31] alice@localhost: hello  [👍 alice@localhost]\n');
    const j = await run(['react', 'bob', ID, '👍', '--json']);
    assert.deepEqual(j.stdout.json[0]!.reactions, [{ emoji: '👍', reactor: 'alice@localhost', sentAt: T0 + 5000 }]);
    const rm = await run(['react', 'bob', ID, '--remove']);
    assert.deepEqual(rm.client.callsOf('react')[0]?.args, ['bob', ID, '', { remove: true }]);
    for (const argv of [['react', 'bob', ID], ['react', 'bob', ID, '👍', '--remove']]) {
      const bad = await run(argv);
      assert.equal(bad.code, 2, argv.join(' '));
      assert.equal(bad.opened.length, 0);
    }
  });

  it('reply sends the text with the quoted id and shows the quote', async () => {
    const r = await run(['reply', 'bob', ID, 'yes, 8 is fine']);
    assert.equal(r.code, 0, r.stderr.text);
    assert.deepEqual(r.client.callsOf('reply')[0]?.args, ['bob', ID, 'yes, 8 is fine']);
    assert.equal(r.stdout.text, '[2026-11-22 10:31] alice@localhost: (replying to bob@localhost: "hello") yes, 8 is fine\n');
    const j = await run(['reply', 'bob', ID, 'yes', '--json']);
    assert.deepEqual(j.stdout.json[0]!.quote, { id: ID, author: 'bob@localhost', text: 'hello', found: true });
  });

  it('a malformed message id is a usage error that opens no profile', async () => {
    for (const argv of [['edit', 'bob', 'nothex', 'x'], ['delete', 'bob', 'nothex'], ['react', 'bob', 'nothex', '👍'], ['reply', 'bob', 'nothex', 'x']]) {
      const cmd = argv[0]!;
      const r = await run(argv);
      assert.equal(r.code, 2, cmd);
      assert.equal(r.opened.length, 0);
      assert.match(r.stderr.text, /a message id is 32 hex characters/);
    }
  });
});

describe('expire', () => {
  it('parses 30s, 5m, 1h, 1d, 1w, bare seconds and off; refuses the rest', () => {
    assert.deepEqual(['30s', '5m', '1h', '1d', '1w', '4w', '90', 'off', 'OFF', '0'].map(parseTimer), [30, 300, 3600, 86_400, 604_800, 2_419_200, 90, 0, 0, 0]);
    for (const bad of ['5x', '-1s', '1.5h', '5w', 'soon', '', '1 h']) assert.throws(() => parseTimer(bad), bad);
  });

  it('sets the timer and prints the notice; without a time it shows the current timer', async () => {
    const r = await run(['expire', 'bob', '5m', '--json']);
    assert.equal(r.code, 0, r.stderr.text);
    assert.deepEqual(r.client.callsOf('setExpireTimer')[0]?.args, ['bob', 300]);
    assert.equal(r.stdout.json[0]!.timerUpdate, 300);
    const client = new FakeParleyClient();
    client.timerSeconds = 3600;
    const show = await run(['expire', 'bob'], { client });
    assert.equal(show.stdout.text, 'disappearing messages with bob@localhost: 1 hour\n');
    const showJson = await run(['expire', 'bob', '--json'], { client });
    assert.deepEqual(showJson.stdout.json, [{ conversation: 'bob@localhost', seconds: 3600 }]);
    const bad = await run(['expire', 'bob', '5 years']);
    assert.equal(bad.code, 2);
    assert.equal(bad.opened.length, 0);
  });

  it('shows when a message disappears', async () => {
    const client = new FakeParleyClient();
    client.historyList = [message({ expireTimer: 300, expiresAt: T0 + 300_000 })];
    const r = await run(['history', 'bob'], { client });
    assert.equal(r.stdout.text, '[2026-11-22 10:31] bob@localhost: hello (disappears 2026-11-22 10:36)\n');
    const j = await run(['history', 'bob', '--json'], { client });
    assert.equal(j.stdout.json[0]!.expiresAt, T0 + 300_000);
    assert.equal(j.stdout.json[0]!.expireTimer, 300);
  });
});

describe('history --edits', () => {
  it('prints every version of one message, oldest first', async () => {
    const client = new FakeParleyClient();
    client.historyList = [
      message({ id: ID, text: 'v2', editedAt: T0 + 60_000, edits: [{ id: ID, text: 'v1', sentAt: T0 }, { id: 'ab'.repeat(16), text: 'v2', sentAt: T0 + 60_000 }] }),
    ];
    const r = await run(['history', 'bob', '--edits', ID], { client });
    assert.equal(r.code, 0, r.stderr.text);
    assert.equal(r.stdout.text, '[2026-11-22 10:31] v1\n[2026-11-22 10:32] v2  (shown)\n');
    const j = await run(['history', 'bob', '--edits', ID, '--json'], { client });
    assert.deepEqual(j.stdout.json, [
      { id: ID, messageId: ID, text: 'v1', sentAt: T0 },
      { id: 'ab'.repeat(16), messageId: ID, text: 'v2', sentAt: T0 + 60_000 },
    ]);
    const missing = await run(['history', 'bob', '--edits', 'cd'.repeat(16)], { client });
    assert.equal(missing.code, 3);
  });
});

describe('block, unblock, blocked', () => {
  it('block, blocked and unblock: human and JSON', async () => {
    const client = new FakeParleyClient();
    const b = await run(['block', 'mallory', '--json'], { client });
    assert.equal(b.code, 0, b.stderr.text);
    assert.deepEqual(b.stdout.json, [{ address: 'mallory@localhost', aci: '11111111-2222-4333-8444-555555555555', blockedAt: T0, blocked: true }]);
    const list = await run(['blocked'], { client });
    assert.equal(list.stdout.text, 'mallory@localhost  blocked 2026-11-22 10:31\n');
    const u = await run(['unblock', 'mallory', '--json'], { client });
    assert.deepEqual(u.stdout.json, [{ address: 'mallory@localhost', blocked: false }]);
    assert.deepEqual(client.callsOf('unblock')[0]?.args, ['mallory']);
    const none = await run(['blocked'], { client: new FakeParleyClient() });
    assert.equal(none.stdout.text, '');
    assert.equal(none.stderr.text, 'nobody is blocked\n');
  });
});

describe('action events of listen and receive', () => {
  const events = [
    { type: 'edit', conversation: 'bob@localhost', messageId: ID, author: 'bob@localhost', text: 'new text', editedAt: T0 },
    { type: 'delete', conversation: 'bob@localhost', messageId: ID, author: 'bob@localhost', scope: 'everyone' },
    { type: 'reaction', conversation: 'bob@localhost', messageId: ID, author: 'alice@localhost', reactor: 'bob@localhost', emoji: '🎉', removed: false },
    { type: 'expire', conversation: 'bob@localhost', seconds: 3600, by: 'bob@localhost' },
    { type: 'expired', conversation: 'bob@localhost', messageIds: [ID] },
    { type: 'block', address: 'bob@localhost', aci: '11111111-2222-4333-8444-555555555555', blocked: true },
  ] as const;

  it('listen --json prints each as {"event":…} on stdout', async () => {
    const client = new FakeParleyClient();
    client.listenEvents = events.map((e) => ({ event: 'action' as const, e }));
    const stop = new AbortController();
    setTimeout(() => stop.abort(), 20);
    const r = await run(['listen', '--json'], { client, stopSignal: stop.signal });
    assert.equal(r.code, 0, r.stderr.text);
    assert.deepEqual(r.stdout.json, [
      { event: 'edit', conversation: 'bob@localhost', messageId: ID, author: 'bob@localhost', text: 'new text', editedAt: T0 },
      { event: 'delete', conversation: 'bob@localhost', messageId: ID, author: 'bob@localhost', scope: 'everyone' },
      { event: 'reaction', conversation: 'bob@localhost', messageId: ID, author: 'alice@localhost', reactor: 'bob@localhost', emoji: '🎉', removed: false },
      { event: 'expire', conversation: 'bob@localhost', seconds: 3600, by: 'bob@localhost' },
      { event: 'expired', conversation: 'bob@localhost', messageIds: [ID] },
      { event: 'block', address: 'bob@localhost', aci: '11111111-2222-4333-8444-555555555555', blocked: true },
    ]);
    assert.equal(client.listenerCount(), 0);
  });

  it('listen prints them as human lines', async () => {
    const client = new FakeParleyClient();
    client.listenEvents = events.map((e) => ({ event: 'action' as const, e }));
    const stop = new AbortController();
    setTimeout(() => stop.abort(), 20);
    const r = await run(['listen'], { client, stopSignal: stop.signal });
    assert.deepEqual(r.stdout.lines, [
      `* bob@localhost edited message ${ID}: new text`,
      `* bob@localhost deleted message ${ID}`,
      `* bob@localhost reacted 🎉 to message ${ID}`,
      '* bob@localhost set disappearing messages in bob@localhost to 1 hour',
      '* 1 message disappeared from bob@localhost',
      '* bob@localhost was blocked',
    ]);
  });
});

describe('the test clock variable', () => {
  it('PARLEY_TEST_CLOCK_OFFSET_MS hands the engine a clock that far off; a malformed value is a usage error', async () => {
    const r = await run(['whoami'], { env: { HOME: '/home/tester', PARLEY_TEST_CLOCK_OFFSET_MS: '3600000' } });
    assert.equal(r.code, 0);
    const clock = r.opened[0]!.clock!;
    assert.ok(Math.abs(clock.now() - Date.now() - 3_600_000) < 1000);
    const none = await run(['whoami']);
    assert.equal(none.opened[0]!.clock, undefined);
    const bad = await run(['whoami'], { env: { HOME: '/home/tester', PARLEY_TEST_CLOCK_OFFSET_MS: 'soon' } });
    assert.equal(bad.code, 2);
  });
});
