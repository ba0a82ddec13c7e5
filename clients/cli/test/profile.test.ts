// SPDX-License-Identifier: AGPL-3.0-only
// Which profile directory and which passphrase a command opens.
import assert from 'node:assert/strict';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { resolveProfileDir } from '../src/profile.js';
import { profileDirExists } from '../src/session.js';
import { FakeParleyClient } from './fake-parley-client.js';
import { run } from './harness.js';

describe('profile directory', () => {
  const base = { env: {}, platform: 'linux' as const, homeDir: '/home/os', cwd: '/cwd' };

  it('--profile wins over PARLEY_HOME and XDG_DATA_HOME, relative to the working directory', () => {
    const env = { HOME: '/home/u', PARLEY_HOME: '/ph', XDG_DATA_HOME: '/xdg' };
    assert.equal(resolveProfileDir({ ...base, env, profile: 'profiles/a' }), '/cwd/profiles/a');
    assert.equal(resolveProfileDir({ ...base, env, profile: '/abs' }), '/abs');
  });

  it('PARLEY_HOME wins over the data directory', () => {
    assert.equal(resolveProfileDir({ ...base, env: { HOME: '/home/u', PARLEY_HOME: 'rel', XDG_DATA_HOME: '/xdg' } }), '/cwd/rel');
  });

  it('then $XDG_DATA_HOME/parley, then ~/.local/share/parley', () => {
    assert.equal(resolveProfileDir({ ...base, env: { HOME: '/home/u', XDG_DATA_HOME: '/xdg' } }), '/xdg/parley');
    assert.equal(resolveProfileDir({ ...base, env: { HOME: '/home/u' } }), '/home/u/.local/share/parley');
    assert.equal(resolveProfileDir({ ...base, env: { HOME: '/home/u', XDG_DATA_HOME: 'relative' } }), '/home/u/.local/share/parley', 'a relative XDG_DATA_HOME is ignored');
    assert.equal(resolveProfileDir({ ...base, env: { PARLEY_HOME: '' } }), '/home/os/.local/share/parley', 'no HOME: the OS home; empty values count as unset');
  });

  it('on macOS ~/Library/Application Support/parley, on Windows %LOCALAPPDATA%\\parley', () => {
    assert.equal(
      resolveProfileDir({ ...base, platform: 'darwin', env: { HOME: '/Users/u', XDG_DATA_HOME: '/xdg' } }),
      '/Users/u/Library/Application Support/parley',
    );
    assert.equal(resolveProfileDir({ ...base, platform: 'win32', env: { LOCALAPPDATA: '/appdata' } }), '/appdata/parley');
  });

  it('main opens the directory in that order', async () => {
    const env = { HOME: '/home/u', PARLEY_HOME: '/ph', XDG_DATA_HOME: '/xdg' };
    assert.equal((await run(['whoami', '--profile', 'p'], { env })).opened[0]?.profileDir, '/work/dir/p');
    assert.equal((await run(['--profile', '/top', 'whoami'], { env })).opened[0]?.profileDir, '/top', 'before the command too');
    assert.equal((await run(['whoami'], { env })).opened[0]?.profileDir, '/ph');
    assert.equal((await run(['whoami'], { env: { HOME: '/home/u', XDG_DATA_HOME: '/xdg' } })).opened[0]?.profileDir, '/xdg/parley');
    assert.equal((await run(['whoami'], { env: { HOME: '/home/u' } })).opened[0]?.profileDir, '/home/u/.local/share/parley');
    assert.equal(
      (await run(['link', 'approve', 'parley-link:x', '--profile', '/nested'], { env })).opened[0]?.profileDir,
      '/nested',
      'a subcommand of a subcommand takes it too',
    );
  });
});

describe('a missing profile directory', () => {
  const missing = async (): Promise<boolean> => false;

  it('is not created by commands that only read it: NO_ACCOUNT, exit 3, nothing opened', async () => {
    for (const argv of [['whoami'], ['receive'], ['send', 'bob', 'hi'], ['link', 'approve', 'parley-link:x'], ['export']]) {
      const r = await run([...argv, '--profile', '/nowhere'], { profileExists: missing });
      assert.equal(r.code, 3, argv.join(' '));
      assert.equal(r.opened.length, 0);
      assert.match(r.stderr.text, /^error: there is no profile at \/nowhere \(NO_ACCOUNT\)\nhint: this profile has no account: run parley register/);
    }
  });

  it('is created by register and link (the engine makes it)', async () => {
    const client = new FakeParleyClient();
    client.accountInfo = undefined;
    const reg = await run(['register', 'carol', '--server', 'http://localhost:8080', '--profile', '/new'], { client, profileExists: missing });
    assert.equal(reg.code, 0, reg.stderr.text);
    const fresh = new FakeParleyClient();
    fresh.accountInfo = undefined;
    const link = await run(['link', '--server', 'http://localhost:8080', '--profile', '/new2'], { client: fresh, profileExists: missing });
    assert.equal(link.code, 0, link.stderr.text);
    assert.deepEqual([...reg.opened, ...link.opened].map((o) => o.profileDir), ['/new', '/new2']);
  });

  it('profileDirExists is true for a directory only', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'parley-cli-exists-'));
    try {
      assert.equal(await profileDirExists(dir), true);
      assert.equal(await profileDirExists(join(dir, 'missing')), false);
      await writeFile(join(dir, 'file'), 'x');
      assert.equal(await profileDirExists(join(dir, 'file')), false);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('passphrase', () => {
  let dir = '';
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'parley-cli-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('none given: the engine gets no passphrase (it uses the key file)', async () => {
    const r = await run(['whoami']);
    assert.deepEqual(r.opened, [{ profileDir: '/home/tester/.local/share/parley' }]);
  });

  it('PARLEY_PASSPHRASE is used as it is', async () => {
    const r = await run(['whoami', '--profile', '/p'], { env: { HOME: '/h', PARLEY_PASSPHRASE: ' spaced pass ' } });
    assert.deepEqual(r.opened, [{ profileDir: '/p', passphrase: ' spaced pass ' }]);
  });

  it('--passphrase-file wins over PARLEY_PASSPHRASE, its trailing newline trimmed', async () => {
    const file = join(dir, 'pass');
    await writeFile(file, 'from the file\n', { mode: 0o600 });
    const r = await run(['whoami', '--profile', '/p', '--passphrase-file', file], { env: { HOME: '/h', PARLEY_PASSPHRASE: 'from env' } });
    assert.equal(r.code, 0);
    assert.deepEqual(r.opened, [{ profileDir: '/p', passphrase: 'from the file' }]);
    await writeFile(file, 'crlf line\r\n');
    assert.equal((await run(['whoami', '--passphrase-file', file])).opened[0]?.passphrase, 'crlf line');
    await writeFile(file, 'inner\nnewline');
    assert.equal((await run(['whoami', '--passphrase-file', file])).opened[0]?.passphrase, 'inner\nnewline');
  });

  it('a relative --passphrase-file is read from the working directory', async () => {
    await writeFile(join(dir, 'rel'), 'relative\n');
    const r = await run(['whoami', '--passphrase-file', 'rel'], { cwd: dir });
    assert.equal(r.opened[0]?.passphrase, 'relative');
  });

  it('an unreadable or empty file is a usage error that shows no content', async () => {
    const missing = await run(['whoami', '--passphrase-file', join(dir, 'nope')], { env: { HOME: '/h', PARLEY_PASSPHRASE: 'env' } });
    assert.equal(missing.code, 2);
    assert.equal(missing.opened.length, 0, 'no fallback to the environment');
    assert.match(missing.stderr.text, /cannot read the passphrase file .*nope \(ENOENT\) \(PASSPHRASE_FILE\)/);
    const empty = join(dir, 'empty');
    await writeFile(empty, '\n');
    const r = await run(['whoami', '--passphrase-file', empty, '--json']);
    assert.equal(r.code, 2);
    assert.equal((r.stderr.json[0] as { error: { code: string } }).error.code, 'PASSPHRASE_EMPTY');
    if (process.getuid?.() !== 0) {
      const locked = join(dir, 'locked');
      await writeFile(locked, 'secret-in-file\n');
      await chmod(locked, 0o000);
      const denied = await run(['whoami', '--passphrase-file', locked]);
      assert.equal(denied.code, 2);
      assert.ok(!denied.stderr.text.includes('secret-in-file'));
    }
  });
});
