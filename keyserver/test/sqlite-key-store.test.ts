// SPDX-License-Identifier: AGPL-3.0-only
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import type { Aci, DeviceId, RegistrationId } from '@parley/protocol';
import { applyMigrations, KEY_STORE_MIGRATIONS, MigrationError, openSqliteKeyStore } from '../src/index.js';
import { describeKeyStoreContract } from '../src/testing/index.js';

const dir = mkdtempSync(join(tmpdir(), 'parley-keys-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const freshPath = () => join(dir, `keys-${++n}.db`);

describeKeyStoreContract('SQLite in memory', () => openSqliteKeyStore(':memory:'));
describeKeyStoreContract('SQLite on a file', () => openSqliteKeyStore(freshPath()));

describe('SqliteKeyStore', () => {
  it('opens with WAL, synchronous=FULL and foreign keys on', async () => {
    const path = freshPath();
    const store = openSqliteKeyStore(path);
    await store.close();
    const db = new Database(path);
    try {
      assert.equal(db.pragma('journal_mode', { simple: true }), 'wal');
    } finally {
      db.close();
    }
    // synchronous and foreign_keys are per connection: check the store's own connection.
    const inner = openSqliteKeyStore(path) as unknown as { db: Database.Database; close(): Promise<void> };
    assert.equal(inner.db.pragma('synchronous', { simple: true }), 2);
    assert.equal(inner.db.pragma('foreign_keys', { simple: true }), 1);
    await inner.close();
  });

  it('records every migration once, in order, and reopening applies nothing again', async () => {
    const path = freshPath();
    await openSqliteKeyStore(path).close();
    await openSqliteKeyStore(path).close();
    const db = new Database(path, { readonly: true });
    try {
      const rows = db.prepare('SELECT name FROM schema_migrations ORDER BY rowid').all() as Array<{ name: string }>;
      assert.deepEqual(rows.map((r) => r.name), KEY_STORE_MIGRATIONS.map((m) => m.name));
      for (const m of KEY_STORE_MIGRATIONS) assert.match(m.name, /^[0-9]{4}-[a-z0-9-]+$/);
    } finally {
      db.close();
    }
  });

  it('keeps accounts and keys across a reopen', async () => {
    const path = freshPath();
    const aci = 'a1a1a1a1-0000-4000-8000-00000000000a' as Aci;
    const key = { keyId: 1, publicKey: new Uint8Array(33).fill(5), signature: new Uint8Array(64).fill(6) };
    const store = openSqliteKeyStore(path);
    await store.createAccount(
      {
        aci,
        username: 'alice',
        identityKey: new Uint8Array(33).fill(7),
        createdAt: 1,
        device: { registrationId: 9 as RegistrationId, secretHash: new Uint8Array(32).fill(8), createdAt: 1, keys: { signedPreKey: key, lastResortKyberPreKey: key, preKeys: [{ keyId: 4, publicKey: key.publicKey }] } },
      },
      10,
    );
    await store.close();
    const again = openSqliteKeyStore(path);
    try {
      assert.equal((await again.findAccountByUsername('alice'))?.aci, aci);
      assert.deepEqual(await again.countKeys(aci, 1 as DeviceId), { preKeys: 1, kyberPreKeys: 0 });
    } finally {
      await again.close();
    }
  });

  it('refuses a database written by a newer build (an unknown migration)', async () => {
    const path = freshPath();
    await openSqliteKeyStore(path).close();
    const db = new Database(path);
    db.prepare('INSERT INTO schema_migrations (name, applied_at) VALUES (?, ?)').run('9999-from-the-future', 1);
    db.close();
    assert.throws(() => openSqliteKeyStore(path), MigrationError);
  });

  it('applies pending migrations in order and each atomically with its record', () => {
    const db = new Database(':memory:');
    try {
      const first = { name: '0001-one', sql: 'CREATE TABLE one (x INTEGER) STRICT;' };
      const broken = { name: '0002-broken', sql: 'CREATE TABLE two (x INTEGER) STRICT; THIS IS NOT SQL;' };
      assert.deepEqual(applyMigrations(db, [first]), ['0001-one']);
      assert.throws(() => applyMigrations(db, [first, broken]));
      // The failed migration left neither its table nor its record.
      const tables = (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all() as Array<{ name: string }>).map((r) => r.name);
      assert.deepEqual(tables, ['one', 'schema_migrations']);
      assert.deepEqual(applyMigrations(db, [first, { name: '0002-fixed', sql: 'CREATE TABLE two (x INTEGER) STRICT;' }]), ['0002-fixed']);
      assert.throws(() => applyMigrations(db, [{ name: '0003-b', sql: '' }, { name: '0002-a', sql: '' }]), MigrationError);
      assert.throws(() => applyMigrations(db, [{ name: 'initial', sql: '' }]), MigrationError);
    } finally {
      db.close();
    }
  });

  it('refuses calls after close', async () => {
    const store = openSqliteKeyStore(':memory:');
    await store.close();
    await store.close();
    await assert.rejects(store.getAccount('a1a1a1a1-0000-4000-8000-00000000000a' as Aci), /closed/);
  });
});
