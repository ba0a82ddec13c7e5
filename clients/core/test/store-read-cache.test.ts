// SPDX-License-Identifier: AGPL-3.0-only
/**
 * The database's read cache: kept rows must never outlive a change that reaches their tables —
 * directly, through a trigger, through a cascading foreign key — nor a rollback. Each test reads
 * through the cache, changes the data some way, and checks the next read sees the change.
 */
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { randomBytes } from '@parley/crypto';
import { STORE_MIGRATIONS } from '../src/index.js';
import { ClientDatabase, type StoreMigration } from '../src/store/database.js';
import { DatabaseKey } from '../src/store/profile-key.js';
import { directWriteTargets, WriteReach } from '../src/store/write-reach.js';
import { tempProfileDir } from './store-fixtures.js';

const SCHEMA: StoreMigration = {
  version: 1,
  name: '0001-read-cache-test',
  sql: `
    CREATE TABLE parents (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
    CREATE TABLE children (id INTEGER PRIMARY KEY, parent_id INTEGER REFERENCES parents (id) ON DELETE CASCADE, name TEXT);
    CREATE TABLE orphans (id INTEGER PRIMARY KEY, parent_id INTEGER REFERENCES parents (id) ON DELETE SET NULL);
    CREATE TABLE audit (n INTEGER NOT NULL);
    INSERT INTO audit (n) VALUES (0);
    CREATE TRIGGER children_audit AFTER INSERT ON children BEGIN UPDATE audit SET n = n + 1; END;
  `,
};

/** A new database file's path in a fresh directory. */
function freshPath(name: string): string {
  const dir = tempProfileDir();
  mkdirSync(dir, { recursive: true });
  return join(dir, name);
}

function open(): ClientDatabase {
  return ClientDatabase.open(freshPath('cache.db'), new DatabaseKey(randomBytes(32), 'key-file'), { migrations: [SCHEMA] });
}

const childCount = (db: ClientDatabase, parent: number) =>
  db.getCached<{ n: number }>(['children'], 'SELECT count(*) AS n FROM children WHERE parent_id = ?', [parent])!.n;

describe('write reach', () => {
  it('names the targets of every kind of write, not the keywords around them', () => {
    assert.deepEqual(directWriteTargets('INSERT INTO a (x) VALUES (1) ON CONFLICT (x) DO UPDATE SET x = 2'), ['a']);
    assert.deepEqual(directWriteTargets('INSERT OR REPLACE INTO b VALUES (1)'), ['b']);
    assert.deepEqual(directWriteTargets('REPLACE INTO c VALUES (1)'), ['c']);
    assert.deepEqual(directWriteTargets('UPDATE OR IGNORE d SET y = 1'), ['d']);
    assert.deepEqual(directWriteTargets('DELETE FROM e WHERE id = ? RETURNING id'), ['e']);
    assert.deepEqual(directWriteTargets('CREATE TRIGGER t AFTER UPDATE OF body, kind ON f BEGIN DELETE FROM g; END'), ['g']);
    assert.deepEqual(directWriteTargets('SELECT * FROM h WHERE updated_at > 0'), []);
  });

  it('follows triggers and cascades transitively', () => {
    const reach = new WriteReach({
      triggers: [{ table: 'messages', sql: 'CREATE TRIGGER x AFTER INSERT ON messages BEGIN INSERT INTO messages_fts (rowid) VALUES (new.rowid); END' }],
      cascades: [
        { parent: 'conversations', child: 'messages' },
        { parent: 'messages', child: 'reactions' },
      ],
    });
    assert.deepEqual([...reach.of('DELETE FROM conversations WHERE id = ?')].sort(), ['conversations', 'messages', 'messages_fts', 'reactions']);
    assert.deepEqual([...reach.of('UPDATE reactions SET emoji = NULL')], ['reactions']);
    assert.deepEqual([...reach.of('SELECT 1 FROM conversations')], []);
  });

  it('is read from the real client schema: deleting a conversation reaches its messages, their search index and reactions', () => {
    const db = ClientDatabase.open(freshPath('client.db'), new DatabaseKey(randomBytes(32), 'key-file'), { migrations: STORE_MIGRATIONS });
    try {
      const id = 'c'.repeat(32);
      db.run('INSERT INTO contacts (aci, updated_at) VALUES (?, 0)', ['00000000-0000-4000-8000-000000000001']);
      db.run("INSERT INTO conversations (id, kind, peer_aci, created_at, last_activity_at) VALUES (?, 'direct', ?, 0, 0)", [id, '00000000-0000-4000-8000-000000000001']);
      db.run(
        "INSERT INTO messages (id, conversation_id, sender_aci, sender_device, direction, kind, body, sent_at, received_at, lamport, status) VALUES (?, ?, ?, 1, 'in', 'text', 'hello there', 0, 0, 1, 'delivered')",
        ['a'.repeat(32), id, '00000000-0000-4000-8000-000000000001'],
      );
      assert.equal(db.getCached<{ n: number }>(['messages'], 'SELECT count(*) AS n FROM messages')!.n, 1);
      assert.equal(db.getCached<{ n: number }>(['messages_fts'], 'SELECT count(*) AS n FROM messages_fts')!.n, 1, 'the trigger-fed index was read again');
      db.run('DELETE FROM conversations WHERE id = ?', [id]);
      assert.equal(db.getCached<{ n: number }>(['messages'], 'SELECT count(*) AS n FROM messages')!.n, 0, 'the cascade reached messages');
      assert.equal(db.getCached<{ n: number }>(['messages_fts'], 'SELECT count(*) AS n FROM messages_fts')!.n, 0, 'and through its trigger the index');
    } finally {
      db.close();
    }
  });
});

describe('read cache', () => {
  it('keeps a row until a write to its table changes a row', () => {
    const db = open();
    db.run("INSERT INTO parents (id, name) VALUES (1, 'one')");
    const read = () => db.getCached<{ name: string }>(['parents'], 'SELECT name FROM parents WHERE id = ?', [1])?.name;
    assert.equal(read(), 'one');
    assert.equal(db.run("UPDATE parents SET name = 'uno' WHERE id = 2").changes, 0);
    assert.equal(read(), 'one');
    db.run("UPDATE parents SET name = 'uno' WHERE id = 1");
    assert.equal(read(), 'uno', 'a changed row is read again');
    db.get('DELETE FROM parents WHERE id = ? RETURNING id', [1]);
    assert.equal(read(), undefined, 'a write through get (RETURNING) counts as well');
    db.close();
  });

  it('forgets rows of tables a cascading foreign key or a trigger changed', () => {
    const db = open();
    db.run("INSERT INTO parents (id, name) VALUES (1, 'one')");
    db.run('INSERT INTO orphans (id, parent_id) VALUES (1, 1)');
    assert.equal(childCount(db, 1), 0);
    const audit = () => db.getCached<{ n: number }>(['audit'], 'SELECT n FROM audit')!.n;
    assert.equal(audit(), 0);
    db.run("INSERT INTO children (parent_id, name) VALUES (1, 'a')");
    assert.equal(childCount(db, 1), 1);
    assert.equal(audit(), 1, 'the trigger changed audit');
    const orphanParent = () => db.getCached<{ parent_id: number | null }>(['orphans'], 'SELECT parent_id FROM orphans WHERE id = 1')!.parent_id;
    assert.equal(orphanParent(), 1);
    db.run('DELETE FROM parents WHERE id = 1');
    assert.equal(childCount(db, 1), 0, 'ON DELETE CASCADE reached children');
    assert.equal(orphanParent(), null, 'ON DELETE SET NULL reached orphans');
    db.close();
  });

  it('forgets what a rolled-back transaction read or wrote', () => {
    const db = open();
    db.run("INSERT INTO parents (id, name) VALUES (1, 'one')");
    assert.throws(() =>
      db.transaction(() => {
        db.run("INSERT INTO children (parent_id, name) VALUES (1, 'a')");
        assert.equal(childCount(db, 1), 1, 'the transaction sees its own write');
        throw new Error('roll back');
      }),
    );
    assert.equal(childCount(db, 1), 0, 'the rolled-back row is not served from memory');
    // A savepoint rolled back inside a transaction that commits.
    db.transaction(() => {
      assert.throws(() =>
        db.transaction(() => {
          db.run("INSERT INTO children (parent_id, name) VALUES (1, 'b')");
          assert.equal(childCount(db, 1), 1);
          throw new Error('inner');
        }),
      );
      assert.equal(childCount(db, 1), 0);
    });
    db.close();
  });

  it('serves frozen rows and frozen lists, each per statement and parameters', () => {
    const db = open();
    db.run("INSERT INTO parents (id, name) VALUES (1, 'one'), (2, 'two')");
    const one = db.getCached<{ name: string }>(['parents'], 'SELECT name FROM parents WHERE id = ?', [1])!;
    const two = db.getCached<{ name: string }>(['parents'], 'SELECT name FROM parents WHERE id = ?', [2])!;
    assert.equal(one.name, 'one');
    assert.equal(two.name, 'two');
    assert.ok(Object.isFrozen(one));
    const all = db.allCached<{ name: string }>(['parents'], 'SELECT name FROM parents ORDER BY id');
    assert.deepEqual(all.map((r) => r.name), ['one', 'two']);
    assert.ok(Object.isFrozen(all) && all.every((r) => Object.isFrozen(r)));
    db.run("INSERT INTO parents (id, name) VALUES (3, 'three')");
    assert.equal(db.allCached<{ name: string }>(['parents'], 'SELECT name FROM parents ORDER BY id').length, 3);
    db.exec("UPDATE parents SET name = 'x'");
    assert.equal(db.getCached<{ name: string }>(['parents'], 'SELECT name FROM parents WHERE id = ?', [1])!.name, 'x', 'a script forgets everything');
    db.close();
  });
});
