// SPDX-License-Identifier: AGPL-3.0-only
import assert from 'node:assert/strict';
import { chmodSync, existsSync, readFileSync, statSync, truncateSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { describe, it } from 'node:test';
import { randomBytes } from '@parley/crypto';
import type { Aci, DeviceId } from '@parley/protocol';
import { ClientError, DATABASE_FILE_NAME, KEY_FILE_NAME, SALT_FILE_NAME, STORE_MIGRATIONS, openClientStore, resolveDatabaseKey } from '../src/index.js';
import { FAST_SCRYPT, newAci, newMessageId, openStore, tempProfileDir } from './store-fixtures.js';

const isCode = (code: string) => (e: unknown) => e instanceof ClientError && e.code === code;

describe('database key file', () => {
  it('is created with mode 0600 (directory 0700) and reused on reopen', () => {
    const profileDir = tempProfileDir();
    const store = openStore({ profileDir });
    const keyPath = join(profileDir, KEY_FILE_NAME);
    assert.equal(statSync(keyPath).mode & 0o777, 0o600);
    assert.equal(statSync(profileDir).mode & 0o777, 0o700);
    assert.equal(statSync(join(profileDir, DATABASE_FILE_NAME)).mode & 0o077, 0, 'the database file is private too');
    const key = readFileSync(keyPath);
    assert.equal(key.length, 32);
    store.settings.set('probe', 'kept');
    store.close();
    const again = openStore({ profileDir });
    assert.deepEqual(readFileSync(keyPath), key, 'the key file is not replaced');
    assert.equal(again.settings.get('probe'), 'kept');
    assert.equal(existsSync(join(profileDir, SALT_FILE_NAME)), false);
  });

  it('is refused when group or others can read it, telling the user to chmod 600', () => {
    const profileDir = tempProfileDir();
    openStore({ profileDir }).close();
    const keyPath = join(profileDir, KEY_FILE_NAME);
    for (const mode of [0o644, 0o640, 0o604, 0o660]) {
      chmodSync(keyPath, mode);
      assert.throws(
        () => openClientStore({ profileDir }),
        (e) => isCode('KEY_FILE_PERMISSIONS')(e) && /chmod 600/.test((e as Error).message),
      );
    }
    chmodSync(keyPath, 0o600);
    openStore({ profileDir }).close();
  });

  it('is refused when truncated, and never silently recreated for an existing database', () => {
    const profileDir = tempProfileDir();
    openStore({ profileDir }).close();
    const keyPath = join(profileDir, KEY_FILE_NAME);
    const key = readFileSync(keyPath);
    truncateSync(keyPath, 31);
    assert.throws(() => openClientStore({ profileDir }), isCode('KEY_FILE_INVALID'));
    unlinkSync(keyPath);
    assert.throws(() => openClientStore({ profileDir }), isCode('KEY_MISSING'));
    assert.equal(existsSync(keyPath), false);
    writeFileSync(keyPath, key, { mode: 0o600 });
    openStore({ profileDir }).close();
  });

  it('that belongs to another database gives WRONG_PASSPHRASE', () => {
    const profileDir = tempProfileDir();
    openStore({ profileDir }).close();
    writeFileSync(join(profileDir, KEY_FILE_NAME), randomBytes(32), { mode: 0o600 });
    assert.throws(() => openClientStore({ profileDir }), isCode('WRONG_PASSPHRASE'));
  });

  it('never prints the key', () => {
    const key = resolveDatabaseKey({ profileDir: tempProfileDir() });
    const hex = key.keyPragma().match(/x'([0-9a-f]{64})'/)![1]!;
    for (const text of [String(key), JSON.stringify({ key }), inspect(key), inspect({ key })]) assert.ok(!text.includes(hex), text);
  });
});

describe('passphrase', () => {
  it('opens with the right passphrase and refuses a wrong one with WRONG_PASSPHRASE', () => {
    const profileDir = tempProfileDir();
    const store = openStore({ profileDir, passphrase: 'correct horse battery staple' });
    store.settings.set('probe', 'kept');
    store.close();
    assert.equal(existsSync(join(profileDir, KEY_FILE_NAME)), false, 'no key file for a passphrase profile');
    const salt = JSON.parse(readFileSync(join(profileDir, SALT_FILE_NAME), 'utf8'));
    assert.equal(salt.kdf, 'scrypt');
    assert.equal(salt.N, FAST_SCRYPT.N);
    assert.throws(() => openClientStore({ profileDir, passphrase: 'correct horse battery stapler' }), isCode('WRONG_PASSPHRASE'));
    // The same passphrase in another Unicode normalization opens it.
    const again = openStore({ profileDir, passphrase: 'correct horse battery staple'.normalize('NFD') });
    assert.equal(again.settings.get('probe'), 'kept');
  });

  it('is required by a passphrase profile and refused by a key-file profile', () => {
    const withPassphrase = tempProfileDir();
    openStore({ profileDir: withPassphrase, passphrase: 'sesame' }).close();
    assert.throws(() => openClientStore({ profileDir: withPassphrase }), isCode('PASSPHRASE_REQUIRED'));
    assert.equal(existsSync(join(withPassphrase, KEY_FILE_NAME)), false);

    const withKeyFile = tempProfileDir();
    openStore({ profileDir: withKeyFile }).close();
    assert.throws(() => openClientStore({ profileDir: withKeyFile, passphrase: 'sesame' }), isCode('KEY_MODE_MISMATCH'));
  });

  it('refuses an empty passphrase and a damaged salt file', () => {
    assert.throws(() => openClientStore({ profileDir: tempProfileDir(), passphrase: '' }), isCode('INVALID_ARGUMENT'));
    const profileDir = tempProfileDir();
    openStore({ profileDir, passphrase: 'sesame' }).close();
    writeFileSync(join(profileDir, SALT_FILE_NAME), '{"version":1,"kdf":"scrypt","N":3,"r":8,"p":1,"salt":"AAAAAAAAAAAAAAAAAAAAAA"}');
    assert.throws(() => openClientStore({ profileDir, passphrase: 'sesame' }), isCode('KEY_FILE_INVALID'));
  });
});

describe('database file', () => {
  it('contains no plaintext, neither in the database nor in the WAL', () => {
    const profileDir = tempProfileDir();
    const store = openStore({ profileDir });
    const marker = 'xylophonequokka';
    const aci = newAci();
    const conversation = store.messages.conversationWith({ aci, address: 'zanzibarian@example.org' });
    store.transaction(() => {
      for (let i = 0; i < 200; i++) {
        store.messages.addMessage({
          conversationId: conversation.id,
          id: newMessageId(),
          senderAci: aci,
          senderDevice: 1 as DeviceId,
          direction: 'in',
          body: `${marker} number ${i} with a distinctive sentence`,
          sentAt: i,
          lamport: i,
        });
      }
    });
    store.outbox.enqueue({
      destinationAci: aci,
      destinationAddress: 'zanzibarian@example.org',
      content: new TextEncoder().encode(`outbox ${marker}`),
      timestamp: 1,
    });
    store.settings.set('note', `setting ${marker}`);
    assert.equal(store.messages.search(marker).length, 20, 'the text is there and searchable');

    const needles = [marker, 'zanzibarian', 'distinctive sentence', 'SQLite format 3'].map((s) => Buffer.from(s));
    const files = [DATABASE_FILE_NAME, `${DATABASE_FILE_NAME}-wal`].map((f) => join(profileDir, f));
    const check = (when: string): void => {
      for (const file of files.filter((f) => existsSync(f))) {
        const bytes = readFileSync(file);
        assert.ok(bytes.length > 0);
        for (const needle of needles) assert.equal(bytes.indexOf(needle), -1, `${when}: ${file} contains "${needle}"`);
      }
    };
    assert.ok(existsSync(files[1]!), 'the WAL exists while the store is open');
    check('while open');
    store.close();
    check('after close');
    assert.ok(readFileSync(files[0]!).length > 100_000);
  });

  it('can be opened by one store at a time (PROFILE_IN_USE)', () => {
    const profileDir = tempProfileDir();
    const store = openStore({ profileDir });
    assert.throws(() => openClientStore({ profileDir }), isCode('PROFILE_IN_USE'));
    store.settings.set('still', 'works');
    store.close();
    openStore({ profileDir }).close();
  });

  it('applies migrations once: reopening is idempotent', () => {
    const profileDir = tempProfileDir();
    const store = openStore({ profileDir });
    assert.equal(store.database.schemaVersion, STORE_MIGRATIONS.length);
    const first = store.database.all('SELECT version, name, applied_at FROM schema_migrations');
    assert.deepEqual(
      first.map((r) => r.name),
      STORE_MIGRATIONS.map((m) => m.name),
    );
    store.close();
    for (let i = 0; i < 2; i++) {
      const again = openStore({ profileDir });
      assert.deepEqual(again.database.all('SELECT version, name, applied_at FROM schema_migrations'), first);
      again.close();
    }
  });

  it('refuses a database newer than this code (DATABASE_TOO_NEW) and a diverged one (SCHEMA_MISMATCH)', () => {
    const profileDir = tempProfileDir();
    const store = openStore({ profileDir });
    const next = STORE_MIGRATIONS.length + 1;
    store.database.run('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, 0)', [next, `${String(next).padStart(4, '0')}-from-the-future`]);
    store.close();
    assert.throws(() => openClientStore({ profileDir }), isCode('DATABASE_TOO_NEW'));

    const other = tempProfileDir();
    const s2 = openStore({ profileDir: other });
    s2.database.run("UPDATE schema_migrations SET name = '0001-something-else' WHERE version = 1");
    s2.close();
    assert.throws(() => openClientStore({ profileDir: other }), isCode('SCHEMA_MISMATCH'));
  });

  it('rolls back a transaction whose body throws, or returns a promise', () => {
    const store = openStore();
    assert.throws(
      () =>
        store.transaction(() => {
          store.settings.set('a', '1');
          throw new Error('boom');
        }),
      /boom/,
    );
    assert.equal(store.settings.get('a'), undefined);
    assert.throws(
      () =>
        store.transaction(async () => {
          store.settings.set('b', '1');
        }),
      isCode('ASYNC_TRANSACTION'),
    );
    assert.equal(store.settings.get('b'), undefined);
    // Nested: an inner failure caught by the outer body rolls back the inner part only.
    store.transaction(() => {
      store.settings.set('outer', '1');
      try {
        store.transaction(() => {
          store.settings.set('inner', '1');
          throw new Error('inner');
        });
      } catch {
        // expected
      }
    });
    assert.equal(store.settings.get('outer'), '1');
    assert.equal(store.settings.get('inner'), undefined);
  });

  it('prunes seen envelopes older than 30 days when opened', () => {
    const profileDir = tempProfileDir();
    let now = 1_700_000_000_000;
    const clock = { now: () => now };
    const store = openStore({ profileDir, clock });
    const source = { aci: newAci() as Aci, deviceId: 2 as DeviceId };
    const [old, recent] = [newMessageId(), newMessageId()];
    assert.equal(store.seenEnvelopes.markSeen(source, old), true);
    now += 20 * 86_400_000;
    assert.equal(store.seenEnvelopes.markSeen(source, recent), true);
    assert.equal(store.seenEnvelopes.markSeen(source, recent), false, 'a redelivery is recognized');
    store.close();
    now += 11 * 86_400_000;
    const again = openStore({ profileDir, clock });
    assert.equal(again.seenEnvelopes.has(source, old), false);
    assert.equal(again.seenEnvelopes.has(source, recent), true);
    assert.equal(again.seenEnvelopes.prune(now + 30 * 86_400_000), 1);
  });
});
