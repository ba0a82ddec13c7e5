// SPDX-License-Identifier: AGPL-3.0-only
// The error mapper: every registry code has a hint, and each class of error reaches the user as
// its exit code and a hint that says what to do.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CLIENT_ERROR_CODES, ClientError, TransportError } from '@parley/client';
import { ERROR_CODES, ParleyError } from '@parley/protocol';
import {
  CLIENT_RULES,
  CLI_ERROR_CODES,
  CLI_RULES,
  CRYPTO_RULES,
  EXIT,
  SYSTEM_RULES,
  TRANSPORT_RULES,
  WIRE_RULES,
  describeError,
  ruleFor,
} from '../src/errors.js';
import { FakeParleyClient } from './fake-parley-client.js';
import { run } from './harness.js';

type Registry = Record<string, unknown>;

/** CRYPTO_ERROR_CODES and CryptoError of @parley/crypto: the engine's dependency, not the CLI's. */
async function cryptoRegistry(): Promise<{ codes: Registry; CryptoError: new (code: string, message?: string, o?: { address?: string }) => Error }> {
  const name: string = '@parley/crypto';
  const mod = (await import(name)) as { CRYPTO_ERROR_CODES: Registry; CryptoError: new (code: string, message?: string) => Error };
  return { codes: mod.CRYPTO_ERROR_CODES, CryptoError: mod.CryptoError };
}

const hintOf = (rule: { hint: unknown } | undefined): string => {
  assert.ok(rule, 'a rule exists');
  const h = typeof rule.hint === 'function' ? (rule.hint as (c: object, e: object) => string)({}, { code: 'X', message: '' }) : rule.hint;
  assert.equal(typeof h, 'string');
  return h as string;
};

describe('every registry code has a hint', () => {
  it('every ClientError code of CLIENT_ERROR_CODES', async () => {
    assert.ok(Object.keys(CLIENT_ERROR_CODES).length >= 10);
    for (const code of Object.keys(CLIENT_ERROR_CODES)) {
      assert.ok(Object.hasOwn(CLIENT_RULES, code), `CLIENT_RULES lacks ${code}`);
      assert.ok(hintOf(CLIENT_RULES[code]).length > 10, code);
    }
  });

  it('every wire code of ERROR_CODES', () => {
    for (const code of Object.keys(ERROR_CODES)) {
      assert.ok(Object.hasOwn(WIRE_RULES, code), `WIRE_RULES lacks ${code}`);
      assert.ok(hintOf(WIRE_RULES[code]).length > 10, code);
    }
  });

  it('every CryptoError code of CRYPTO_ERROR_CODES', async () => {
    const { codes } = await cryptoRegistry();
    for (const code of Object.keys(codes)) {
      assert.ok(Object.hasOwn(CRYPTO_RULES, code), `CRYPTO_RULES lacks ${code}`);
      assert.ok(hintOf(CRYPTO_RULES[code]).length > 10, code);
    }
  });

  it('every CLI code, transport code and system code', () => {
    for (const code of Object.keys(CLI_ERROR_CODES)) assert.ok(hintOf(CLI_RULES[code as keyof typeof CLI_RULES]).length > 10, code);
    for (const code of ['UNREACHABLE', 'DISCONNECTED', 'TIMEOUT']) assert.equal(TRANSPORT_RULES[code]?.exit, EXIT.NETWORK);
    for (const rule of Object.values(SYSTEM_RULES)) hintOf(rule);
  });

  it('the tables hold no code that no registry knows (no stale entries)', async () => {
    const client = Object.keys(CLIENT_ERROR_CODES);
    const crypto = Object.keys((await cryptoRegistry()).codes);
    for (const code of Object.keys(CLIENT_RULES)) assert.ok(client.includes(code), `stale client rule ${code}`);
    for (const code of Object.keys(WIRE_RULES)) assert.ok(Object.hasOwn(ERROR_CODES, code), `stale wire rule ${code}`);
    for (const code of Object.keys(CRYPTO_RULES)) assert.ok(crypto.includes(code), `stale crypto rule ${code}`);
  });
});

describe('describeError', () => {
  it('tells apart the same code from different classes by the error’s name', () => {
    assert.equal(describeError(new ParleyError('INVALID_SIGNATURE')).exitCode, EXIT.REFUSED);
    const crypto = Object.assign(new Error('bad signature'), { name: 'CryptoError', code: 'INVALID_SIGNATURE' });
    assert.equal(describeError(crypto).exitCode, EXIT.CRYPTO);
    assert.equal(describeError(new ParleyError('NOT_FOUND')).exitCode, EXIT.NOT_FOUND);
  });

  it('errors without a code are internal (exit 1), with a bug hint', () => {
    const r = describeError(new TypeError('x is undefined'));
    assert.deepEqual([r.exitCode, r.code, r.message], [EXIT.INTERNAL, 'INTERNAL', 'x is undefined']);
    assert.match(r.hint, /bug/);
    assert.equal(describeError('a string').message, 'a string');
    assert.equal(describeError(Object.assign(new Error('m'), { code: 42 })).exitCode, EXIT.INTERNAL);
  });

  it('an unknown code of a known class takes that class’s exit code', () => {
    assert.equal(describeError(Object.assign(new Error('new'), { name: 'ParleyError', code: 'SOMETHING_NEW' })).exitCode, EXIT.REFUSED);
    assert.equal(describeError(new TransportError('TIMEOUT', 't')).exitCode, EXIT.NETWORK);
    assert.equal(describeError(Object.assign(new Error('?'), { code: 'NO_SUCH_CODE' })).exitCode, EXIT.INTERNAL);
  });

  it('node system errors by errno code', () => {
    const eacces = Object.assign(new Error("EACCES: permission denied, mkdir '/p'"), { code: 'EACCES', syscall: 'mkdir' });
    assert.equal(describeError(eacces).exitCode, EXIT.PROFILE);
    assert.equal(ruleFor('system', 'ENOSPC')?.exit, EXIT.PROFILE);
  });

  it('removes control characters from messages', () => {
    assert.equal(describeError(new ParleyError('BAD_REQUEST', 'bad\u001b[31m thing\u0007')).message, 'bad[31m thing');
  });

  it('RATE_LIMITED says when to retry', () => {
    const r = describeError(new ParleyError('RATE_LIMITED', 'slow down', { retryAfterMs: 29_001 }));
    assert.equal(r.hint, 'the relay is rate limiting this device: try again in 30 s');
    assert.match(describeError(new ParleyError('RATE_LIMITED')).hint, /wait a little/);
  });
});

describe('each class of error reaches the user as its exit code and hint', () => {
  const cases: Array<{
    name: string;
    argv: string[];
    method: string;
    error: () => Promise<unknown> | unknown;
    exit: number;
    code: string;
    hint: RegExp;
  }> = [
    {
      name: 'ClientError WRONG_PASSPHRASE',
      argv: ['whoami'],
      method: 'open',
      error: () => new ClientError('WRONG_PASSPHRASE'),
      exit: 7,
      code: 'WRONG_PASSPHRASE',
      hint: /^the passphrase does not open this profile; check --passphrase-file or PARLEY_PASSPHRASE$/,
    },
    {
      name: 'ClientError PROFILE_IN_USE',
      argv: ['receive', '--profile', '/p/alice'],
      method: 'open',
      error: () => new ClientError('PROFILE_IN_USE'),
      exit: 7,
      code: 'PROFILE_IN_USE',
      hint: /has \/p\/alice open: stop it, or use another --profile/,
    },
    {
      name: 'ClientError KEY_FILE_PERMISSIONS',
      argv: ['whoami', '--profile', '/p/alice'],
      method: 'open',
      error: () => new ClientError('KEY_FILE_PERMISSIONS'),
      exit: 7,
      code: 'KEY_FILE_PERMISSIONS',
      hint: /chmod 600 \/p\/alice\/db\.key/,
    },
    {
      name: 'ClientError NOT_FOUND',
      argv: ['history', 'zed@localhost'],
      method: 'history',
      error: () => new ClientError('NOT_FOUND'),
      exit: 3,
      code: 'NOT_FOUND',
      hint: /parley conversations/,
    },
    {
      name: 'ClientError NO_ACCOUNT from the engine',
      argv: ['devices'],
      method: 'devices',
      error: () => new ClientError('NO_ACCOUNT'),
      exit: 3,
      code: 'NO_ACCOUNT',
      hint: /run parley register <username> --server URL or parley link --server URL/,
    },
    {
      name: 'ParleyError USERNAME_TAKEN',
      argv: ['register', 'alice', '--server', 'http://localhost:8080', '--profile', '/p/new'],
      method: 'register',
      error: () => new ParleyError('USERNAME_TAKEN'),
      exit: 4,
      code: 'USERNAME_TAKEN',
      hint: /that username is taken on this relay: choose another/,
    },
    {
      name: 'ParleyError NOT_FOUND for an address',
      argv: ['send', 'zed', 'hi'],
      method: 'send',
      error: () => new ParleyError('NOT_FOUND'),
      exit: 3,
      code: 'NOT_FOUND',
      hint: /^there is no account zed@localhost: check the spelling of the address$/,
    },
    {
      name: 'ParleyError RATE_LIMITED',
      argv: ['send', 'bob@localhost', 'hi'],
      method: 'send',
      error: () => new ParleyError('RATE_LIMITED', 'too many requests', { retryAfterMs: 5000 }),
      exit: 4,
      code: 'RATE_LIMITED',
      hint: /try again in 5 s/,
    },
    {
      name: 'ParleyError DEVICE_LIMIT',
      argv: ['link', 'approve', 'parley-link:x'],
      method: 'approveLink',
      error: () => new ParleyError('DEVICE_LIMIT'),
      exit: 4,
      code: 'DEVICE_LIMIT',
      hint: /parley devices remove <id>/,
    },
    {
      name: 'TransportError UNREACHABLE (server from --server)',
      argv: ['register', 'alice', '--server', 'http://relay.test:9000', '--profile', '/p/new'],
      method: 'register',
      error: () => new TransportError('UNREACHABLE', 'connect ECONNREFUSED 127.0.0.1:9000'),
      exit: 5,
      code: 'UNREACHABLE',
      hint: /^cannot reach the relay at http:\/\/relay\.test:9000 — is it running \(npm start\)\?/,
    },
    {
      name: 'TransportError TIMEOUT (server from the account)',
      argv: ['receive'],
      method: 'receive',
      error: () => new TransportError('TIMEOUT', 'no answer within 10000 ms'),
      exit: 5,
      code: 'TIMEOUT',
      hint: /relay at http:\/\/localhost:8080 did not answer in time/,
    },
    {
      name: 'CryptoError UNTRUSTED_IDENTITY',
      argv: ['send', 'bob', 'hi'],
      method: 'send',
      error: async () => new (await cryptoRegistry()).CryptoError('UNTRUSTED_IDENTITY'),
      exit: 6,
      code: 'UNTRUSTED_IDENTITY',
      hint: /^bob@localhost's safety number changed: compare it with `parley verify bob@localhost` and accept with `parley verify bob@localhost --accept`$/,
    },
    {
      name: 'ClientError IDENTITY_CHANGED',
      argv: ['send', 'bob@localhost', 'hi'],
      method: 'send',
      error: () => new ClientError('IDENTITY_CHANGED'),
      exit: 6,
      code: 'IDENTITY_CHANGED',
      hint: /^bob@localhost's safety number changed: compare it with `parley verify bob@localhost`/,
    },
    {
      name: 'ClientError IDENTITY_CHANGED for a group send',
      argv: ['send', '#climbing', 'hi'],
      method: 'send',
      error: () => new ClientError('IDENTITY_CHANGED', "bob@localhost's safety number changed: compare it …"),
      exit: 6,
      code: 'IDENTITY_CHANGED',
      hint: /^a member's safety number changed \(the message above names whose\): compare it with `parley verify <address>`/,
    },
    {
      name: 'CryptoError UNTRUSTED_IDENTITY while receiving (no address known)',
      argv: ['receive'],
      method: 'receive',
      error: async () => new (await cryptoRegistry()).CryptoError('UNTRUSTED_IDENTITY'),
      exit: 6,
      code: 'UNTRUSTED_IDENTITY',
      hint: /^a contact's safety number changed: `parley contacts` shows whose/,
    },
    {
      name: 'an error without a code',
      argv: ['contacts'],
      method: 'contacts',
      error: () => new RangeError('index out of range'),
      exit: 1,
      code: 'INTERNAL',
      hint: /bug/,
    },
    {
      name: 'a Node system error from the export directory',
      argv: ['export', '--out', '/readonly'],
      method: 'exportArchive',
      error: () => Object.assign(new Error("EACCES: permission denied, mkdir '/readonly'"), { code: 'EACCES', errno: -13, syscall: 'mkdir' }),
      exit: 7,
      code: 'EACCES',
      hint: /permission denied/,
    },
  ];

  for (const c of cases) {
    it(`${c.name} → exit ${c.exit}`, async () => {
      const client = new FakeParleyClient();
      if (c.method === 'register') client.accountInfo = undefined;
      const error = await c.error();
      const openClient = c.method === 'open' ? async () => Promise.reject(error) : undefined;
      if (c.method !== 'open') client.failures.set(c.method, error);
      const r = await run(c.argv, openClient ? { client, openClient } : { client });
      assert.equal(r.code, c.exit, r.stderr.text);
      assert.equal(r.stdout.text, '');
      const [first, second, ...rest] = r.stderr.lines;
      assert.equal(rest.length, 0, r.stderr.text);
      assert.match(first ?? '', new RegExp(`^error: .+ \\(${c.code}\\)$`));
      assert.match(second ?? '', /^hint: /);
      assert.match((second ?? '').slice('hint: '.length), c.hint);

      const j = await run([...c.argv, '--json'], openClient ? { client, openClient } : { client });
      assert.equal(j.code, c.exit);
      assert.equal(j.stdout.text, '');
      assert.equal(j.stderr.lines.length, 1, 'one JSON line');
      const parsed = j.stderr.json[0] as { error: { code: string; message: string; hint: string } };
      assert.deepEqual(Object.keys(parsed), ['error']);
      assert.deepEqual(Object.keys(parsed.error), ['code', 'message', 'hint']);
      assert.equal(parsed.error.code, c.code);
      assert.match(parsed.error.hint, c.hint);
    });
  }

  it('never prints the passphrase, also when it is wrong', async () => {
    const secret = 'correct horse battery staple';
    const openClient = async (): Promise<never> => Promise.reject(new ClientError('WRONG_PASSPHRASE'));
    for (const json of [false, true]) {
      const r = await run(['whoami', ...(json ? ['--json'] : [])], { env: { HOME: '/h', PARLEY_PASSPHRASE: secret }, openClient });
      assert.equal(r.code, 7);
      assert.ok(!r.stderr.text.includes(secret) && !r.stdout.text.includes(secret));
    }
  });

  it('a failure to close after success is reported; after a failure the first error wins', async () => {
    const client = new FakeParleyClient();
    client.close = async () => Promise.reject(new TransportError('DISCONNECTED', 'closed early'));
    const ok = await run(['contacts'], { client });
    assert.equal(ok.code, 5);
    client.failures.set('contacts', new ParleyError('UNAUTHORIZED'));
    const failed = await run(['contacts'], { client });
    assert.equal(failed.code, 4);
    assert.match(failed.stderr.text, /UNAUTHORIZED/);
  });

  it('the default opener loads the engine lazily and reports a missing one as ENGINE_UNAVAILABLE (exit 1)', async () => {
    const { engineOpener } = await import('../src/open-engine.js');
    const unavailable = (err: unknown): boolean => {
      const r = describeError(err);
      return r.code === 'ENGINE_UNAVAILABLE' && r.exitCode === EXIT.INTERNAL;
    };
    await assert.rejects(engineOpener(async () => ({}))({ profileDir: '/p' }), unavailable);
    await assert.rejects(engineOpener(async () => Promise.reject(new Error('Cannot find module')))({ profileDir: '/p' }), unavailable);
    const client = new FakeParleyClient();
    let loads = 0;
    const seen: unknown[] = [];
    const open = engineOpener(async () => {
      loads += 1;
      return { openParleyClient: async (o: unknown) => (seen.push(o), client) };
    });
    assert.equal(loads, 0, 'nothing is loaded before a profile is opened');
    assert.equal(await open({ profileDir: '/p', passphrase: 'pw' }), client);
    assert.deepEqual(seen, [{ profileDir: '/p', passphrase: 'pw' }]);
  });
});
