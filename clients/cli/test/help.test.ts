// SPDX-License-Identifier: AGPL-3.0-only
// --help of every command, usage errors (exit 2), and the real binary as a process.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { run } from './harness.js';

const COMMANDS = [
  'register',
  'whoami',
  'link',
  'link approve',
  'devices',
  'devices remove',
  'send',
  'download',
  'receive',
  'listen',
  'conversations',
  'history',
  'read',
  'receipts',
  'settings',
  'typing',
  'presence',
  'search',
  'verify',
  'contacts',
  'export',
  'group',
  'group create',
  'group add',
  'group remove',
  'group leave',
  'group admins',
  'group title',
  'group info',
  'group list',
  'edit',
  'delete',
  'react',
  'reply',
  'expire',
  'block',
  'unblock',
  'blocked',
];

describe('--help', () => {
  it('the top-level help lists every command, the environment and the exit codes', async () => {
    const r = await run(['--help']);
    assert.equal(r.code, 0);
    assert.equal(r.opened.length, 0);
    for (const name of COMMANDS.filter((c) => !c.includes(' '))) assert.match(r.stdout.text, new RegExp(`^  ${name} `, 'm'), name);
    assert.match(r.stdout.text, /^Exit codes:\n {2}0 {2}ok\n {2}1 {2}unexpected/m);
    assert.match(r.stdout.text, /^ {2}7 {2}profile or database/m);
    assert.match(r.stdout.text, /PARLEY_HOME/);
  });

  for (const command of COMMANDS) {
    it(`parley ${command} --help`, async () => {
      const r = await run([...command.split(' '), '--help']);
      assert.equal(r.code, 0);
      assert.equal(r.opened.length, 0, 'help opens no profile');
      assert.equal(r.stderr.text, '');
      const help = r.stdout.text;
      assert.ok(help.startsWith(`Usage: parley ${command} `), help.split('\n')[0]);
      for (const option of ['--profile <dir>', '--json', '--passphrase-file <path>']) assert.ok(help.includes(option), `${command}: ${option}`);
      assert.match(help, /\nExamples:\n {2}\$ parley /);
      assert.match(help, /\nExit codes:\n/);
    });
  }

  it('parley help <command> and the subcommand lists of link and devices', async () => {
    const r = await run(['help', 'send']);
    assert.equal(r.code, 0);
    assert.match(r.stdout.text, /^Usage: parley send \[options\] <address> \[text\]/);
    assert.match(r.stdout.text, /--file <path>/);
    assert.match(r.stdout.text, /--caption <text>/);
    assert.match((await run(['link', '--help'])).stdout.text, /^ {2}approve \[options\] <code>/m);
    assert.match((await run(['devices', '--help'])).stdout.text, /^ {2}remove \[options\] <id>/m);
  });

  it('--version prints the package version', async () => {
    const r = await run(['--version']);
    assert.equal(r.code, 0);
    assert.match(r.stdout.text, /^\d+\.\d+\.\d+\n$/);
  });
});

describe('usage errors exit 2 and open no profile', () => {
  const cases: Array<[string[], RegExp]> = [
    [['sned', 'bob', 'hi'], /unknown command 'sned'.*Did you mean send\?/],
    [['send', 'bob'], /send needs a text \(or - to read stdin\), or --file PATH/],
    [['send', 'bob', 'hello', '--file', 'a.pdf'], /with --file, give the text as --caption TEXT/],
    [['send', 'bob', '--caption', 'look'], /--caption goes with --file/],
    [['send', 'bob', '--file', ''], /--file needs a path/],
    [['download'], /missing required argument 'messageId'/],
    [['download', 'nothex'], /a message id is 32 hex characters/],
    [['download', '0123456789abcdef0123456789abcdef', '--index', '100'], /a file index is a whole number from 0/],
    [['download', '0123456789abcdef0123456789abcdef', '--index', '-1'], /a file index is a whole number from 0|argument missing|unknown option/],
    [['send', 'bob', 'hello', 'world'], /too many arguments/],
    [['whoami', '--frobnicate'], /unknown option '--frobnicate'/],
    [['register', 'alice'], /required option '--server <url>' not specified/],
    [['register', 'alice', '--server', 'localhost:8080'], /must start with http:\/\/ or https:\/\//],
    [['register', 'alice', '--server', 'not a url'], /not a URL/],
    [['register', 'alice', '--server', 'http://u:p@relay'], /must not hold credentials/],
    [['register', 'Al', '--server', 'http://localhost:8080'], /username must be 3-32 characters/],
    [['link', '--server'], /argument missing/],
    [['link', 'approve'], /missing required argument 'code'/],
    [['verify'], /missing required argument 'address'/],
    [['search', 'x', '--limit', '-3'], /whole number/],
    [['export', '--out'], /argument missing/],
    [['read'], /missing required argument 'address'/],
    [['read', 'not an address!'], /an address is user@domain/],
    [['receipts'], /missing required argument 'address'/],
    [['receipts', 'bob', '--message', 'xyz'], /a message id is 32 hex characters/],
    [['receipts', 'bob', '--limit', '0'], /whole number/],
    [['settings', 'foo', 'on'], /unknown setting "foo": the settings are read-receipts, typing, presence/],
    [['settings', 'typing'], /typing needs on or off/],
    [['settings', 'typing', 'maybe'], /typing is on or off, not "maybe"/],
    [['settings', 'read-receipts', 'off', 'presence'], /presence needs on or off/],
    [['typing'], /missing required argument 'address'/],
    [['typing', 'bob', '--start'], /unknown option '--start'/],
    [['presence', '--away', '--online'], /--away and --online exclude each other/],
    [['presence', 'bob'], /too many arguments/],
  ];
  for (const [argv, message] of cases) {
    it(`parley ${argv.join(' ')}`, async () => {
      const r = await run(argv);
      assert.equal(r.code, 2, r.stderr.text);
      assert.equal(r.opened.length, 0);
      assert.equal(r.stdout.text, '');
      const [first, second] = r.stderr.lines;
      assert.match(first ?? '', /^error: .* \(USAGE\)$/);
      assert.match(first ?? '', message);
      assert.match(second ?? '', /^hint: see `parley .*--help`$/);
      const j = await run(['--json', ...argv]);
      assert.equal(j.code, 2);
      assert.equal(j.stderr.lines.length, 1);
      const error = (j.stderr.json[0] as { error: { code: string; message: string } }).error;
      assert.equal(error.code, 'USAGE');
      assert.match(error.message, message);
    });
  }

  it('the hint names the command that was misused', async () => {
    const r = await run(['--profile', '/p', 'devices', 'remove', 'x']);
    assert.match(r.stderr.text, /hint: see `parley devices remove --help`/);
  });

  it('no command: the help on stderr, exit 2; with --json one JSON error line', async () => {
    const r = await run([]);
    assert.equal(r.code, 2);
    assert.equal(r.stdout.text, '');
    assert.match(r.stderr.text, /^Usage: parley /);
    const j = await run(['--json']);
    assert.equal(j.code, 2);
    assert.deepEqual(j.stderr.json, [{ error: { code: 'USAGE', message: 'no command given', hint: 'see `parley --help`' } }]);
  });
});

describe('the binary', () => {
  it('node bin/parley.js --help runs as a process, exits 0 and lists the commands', () => {
    const bin = fileURLToPath(new URL('../../bin/parley.js', import.meta.url));
    const r = spawnSync(process.execPath, [bin, '--help'], { encoding: 'utf8', env: { PATH: process.env.PATH ?? '', HOME: '/nonexistent' }, timeout: 30_000 });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^Usage: parley /);
    for (const name of ['register', 'whoami', 'link', 'devices', 'send', 'download', 'receive', 'listen', 'conversations', 'history', 'read', 'receipts', 'settings', 'typing', 'presence', 'search', 'verify', 'contacts', 'export']) {
      assert.match(r.stdout, new RegExp(`^  ${name} `, 'm'), name);
    }
  });

  it('exits with the usage code for a bad command', () => {
    const bin = fileURLToPath(new URL('../../bin/parley.js', import.meta.url));
    const r = spawnSync(process.execPath, [bin, 'nope', '--json'], { encoding: 'utf8', timeout: 30_000 });
    assert.equal(r.status, 2);
    assert.equal(JSON.parse(r.stderr).error.code, 'USAGE');
  });
});
