// SPDX-License-Identifier: AGPL-3.0-only
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import type { Aci, DeviceId, MessageId } from '@parley/protocol';
import { isEnvelopeStoreError, type EnqueueRequest, type EnvelopeStore } from '../src/ports/envelope-store.js';
import { migration0001EnvelopeQueues } from '../src/storage/migrations/0001-envelope-queues.js';
import { openSqliteEnvelopeStore, type SqliteEnvelopeStoreOptions } from '../src/storage/sqlite-envelope-store.js';
import { applyMigrations } from '../src/storage/sqlite-migrations.js';
import { CONTRACT_T0, describeEnvelopeStoreContract } from './contract/envelope-store-contract.js';
import { ManualClock } from './contract/manual-clock.js';

let root: string;
let n = 0;
before(async () => {
  root = await mkdtemp(join(tmpdir(), 'parley-envelope-store-'));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

/** A fresh database path in its own new directory. */
async function freshPath(): Promise<string> {
  const dir = join(root, `store-${++n}`);
  await mkdir(dir);
  return join(dir, 'relay.db');
}

async function fixture(extra: Partial<SqliteEnvelopeStoreOptions> & { clock: ManualClock }) {
  const path = await freshPath();
  const opened: EnvelopeStore[] = [];
  const open = (): EnvelopeStore => {
    const s = openSqliteEnvelopeStore({ path, ...extra });
    opened.push(s);
    return s;
  };
  return {
    path,
    store: open(),
    reopen: async () => open(),
    cleanup: async () => {
      for (const s of opened) await s.close();
      await rm(join(path, '..'), { recursive: true, force: true });
    },
  };
}

describeEnvelopeStoreContract('sqlite (synchronous=full)', ({ clock }) => fixture({ clock }));
describeEnvelopeStoreContract('sqlite (synchronous=normal, 2 cached queues)', ({ clock }) =>
  fixture({ clock, synchronous: 'normal', maxCachedQueues: 2 }),
);

function send(to: Aci, deviceIds: number[], id = randomBytes(16).toString('hex') as MessageId): EnqueueRequest {
  return {
    destination: to,
    messageId: id,
    timestamp: CONTRACT_T0,
    serverTimestamp: CONTRACT_T0,
    urgent: true,
    expiresAt: CONTRACT_T0 + 3_600_000,
    maxQueueDepth: 100,
    envelopes: deviceIds.map((d) => {
      const content = randomBytes(64);
      return { deviceId: d as DeviceId, type: 1, content, contentHash: createHash('sha256').update(content).digest().subarray(0, 16) };
    }),
  };
}

describe('SqliteEnvelopeStore', () => {
  it('lets one store own a file: a second open fails with STORE_LOCKED until the first closes', async () => {
    const f = await fixture({ clock: new ManualClock(CONTRACT_T0) });
    try {
      assert.throws(() => openSqliteEnvelopeStore({ path: f.path }), (err: unknown) => isEnvelopeStoreError(err, 'STORE_LOCKED'));
      await f.store.close();
      const again = openSqliteEnvelopeStore({ path: f.path });
      await again.close();
    } finally {
      await f.cleanup();
    }
  });

  it('keeps committed envelopes and frees the lock when its process is killed with SIGKILL', async () => {
    const path = await freshPath();
    const storeModule = new URL('../src/storage/sqlite-envelope-store.js', import.meta.url).href;
    const aci = randomUUID();
    // The child commits, says so, and then is killed while it still holds the store open.
    const child = spawn(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `import { openSqliteEnvelopeStore } from ${JSON.stringify(storeModule)};
         const s = openSqliteEnvelopeStore({ path: ${JSON.stringify(path)} });
         const reqs = [];
         for (let i = 0; i < 50; i++) reqs.push({ destination: ${JSON.stringify(aci)}, messageId: i.toString(16).padStart(32, '0'),
           timestamp: 1, serverTimestamp: 1, urgent: true, expiresAt: 8.64e15, maxQueueDepth: 1000,
           envelopes: [{ deviceId: 1, type: 1, content: new Uint8Array([i]), contentHash: new Uint8Array(16).fill(i) }] });
         const r = await s.enqueue(reqs);
         process.stdout.write(JSON.stringify(r.map((x) => x.seqs[0].seq)) + '\\n');
         setInterval(() => {}, 1000);`,
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    const line = await new Promise<string>((resolve, reject) => {
      let out = '';
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes('\n')) resolve(out.trim());
      });
      child.on('exit', (code) => reject(new Error(`child exited early with ${code}`)));
    });
    assert.deepEqual(JSON.parse(line), Array.from({ length: 50 }, (_, i) => i + 1));
    // It still owns the file.
    assert.throws(() => openSqliteEnvelopeStore({ path }), (err: unknown) => isEnvelopeStoreError(err, 'STORE_LOCKED'));
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
    const store = openSqliteEnvelopeStore({ path });
    try {
      const queue = { aci: aci as Aci, deviceId: 1 as DeviceId };
      const got = await store.read(queue, 0, 100, 0);
      assert.deepEqual(
        got.map((e) => [e.seq, e.content[0]]),
        Array.from({ length: 50 }, (_, i) => [i + 1, i]),
      );
      assert.equal(await store.depth(queue), 50);
      const [r] = await store.enqueue([send(aci as Aci, [1])]);
      assert.deepEqual(r, { status: 'queued', seqs: [{ deviceId: 1, seq: 51, duplicate: false }] });
    } finally {
      await store.close();
    }
  });

  it('refuses a second envelope with the same (device, seq), and reloads counters after a failed batch', async () => {
    const f = await fixture({ clock: new ManualClock(CONTRACT_T0) });
    try {
      const alice = randomUUID() as Aci;
      const bob = randomUUID() as Aci;
      await f.store.enqueue([send(alice, [1])]);
      // Plant the envelope the counter will hand out next, as a forgetful counter would collide.
      const raw = new Database(f.path);
      raw
        .prepare(
          `INSERT INTO envelope (queue_id, seq, type, message_id, timestamp, server_timestamp, urgent, expires_at, content)
           SELECT queue_id, 2, 1, zeroblob(16), 0, 0, 0, 9e15, x'00' FROM device_queue WHERE aci = ?`,
        )
        .run(alice);
      raw.close();
      await assert.rejects(f.store.enqueue([send(bob, [1, 2]), send(alice, [1])]), /UNIQUE constraint failed/);
      // Nothing of the failed batch stayed, in the database or in memory.
      assert.equal(await f.store.depth({ aci: bob, deviceId: 1 as DeviceId }), 0);
      assert.equal(await f.store.depth({ aci: alice, deviceId: 1 as DeviceId }), 1);
      const [r] = await f.store.enqueue([send(bob, [2])]);
      assert.deepEqual(r, { status: 'queued', seqs: [{ deviceId: 2, seq: 1, duplicate: false }] });
    } finally {
      await f.cleanup();
    }
  });

  it('records its migrations and refuses a database that a newer relay migrated', async () => {
    const f = await fixture({ clock: new ManualClock(CONTRACT_T0) });
    try {
      await f.store.close();
      const raw = new Database(f.path);
      assert.deepEqual(raw.prepare('SELECT version, name, applied_at FROM schema_migration').all(), [
        { version: 1, name: '0001-envelope-queues', applied_at: CONTRACT_T0 },
        { version: 2, name: '0002-shared-bodies', applied_at: CONTRACT_T0 },
      ]);
      raw.prepare("INSERT INTO schema_migration (version, name, applied_at) VALUES (3, '0003-from-the-future', 0)").run();
      raw.close();
      assert.throws(() => openSqliteEnvelopeStore({ path: f.path }), (err: unknown) => isEnvelopeStoreError(err, 'SCHEMA_UNKNOWN'));
      // The refusal released the lock and changed nothing.
      const raw2 = new Database(f.path);
      assert.equal(raw2.prepare('SELECT count(*) FROM schema_migration').pluck().get(), 3);
      raw2.prepare('DELETE FROM schema_migration WHERE version = 3').run();
      raw2.close();
      const again = openSqliteEnvelopeStore({ path: f.path });
      await again.close();
    } finally {
      await f.cleanup();
    }
  });

  it('migrates a database of the first schema forward and keeps its envelopes', async () => {
    const path = await freshPath();
    const raw = new Database(path);
    applyMigrations(raw, [migration0001EnvelopeQueues], CONTRACT_T0);
    const aci = randomUUID();
    raw.prepare("INSERT INTO device_queue (aci, device_id, next_seq, depth) VALUES (?, 1, 2, 1)").run(aci);
    raw
      .prepare(
        `INSERT INTO envelope (queue_id, seq, type, message_id, timestamp, server_timestamp, urgent, expires_at, content)
         VALUES (1, 1, 1, ?, ?, ?, 1, ?, ?)`,
      )
      .run(randomBytes(16), CONTRACT_T0, CONTRACT_T0, CONTRACT_T0 + 3_600_000, Buffer.from('old'));
    raw.close();
    const store = openSqliteEnvelopeStore({ path, clock: new ManualClock(CONTRACT_T0) });
    try {
      const [e] = await store.read({ aci: aci as Aci, deviceId: 1 as DeviceId }, 0, 10, CONTRACT_T0);
      assert.equal(Buffer.from(e!.content).toString(), 'old');
      await store.ack([{ queue: { aci: aci as Aci, deviceId: 1 as DeviceId }, upTo: 1, seqs: [] }]);
      assert.deepEqual(await store.sharedBodyUsage(), { bodies: 0, bytes: 0 });
    } finally {
      await store.close();
    }
  });

  it('finds a shared body\u2019s remaining references through the partial index, not a table scan', async () => {
    const f = await fixture({ clock: new ManualClock(CONTRACT_T0) });
    try {
      const raw = new Database(f.path, { readonly: true });
      const plan = raw.prepare('EXPLAIN QUERY PLAN SELECT 1 FROM envelope WHERE body_id = ?').all(1) as Array<{ detail: string }>;
      raw.close();
      assert.match(plan.map((p) => p.detail).join('; '), /USING COVERING INDEX envelope_by_body/);
    } finally {
      await f.cleanup();
    }
  });

  it('stores a send to 100 accounts as one body plus a small entry per device', async () => {
    const f = await fixture({ clock: new ManualClock(CONTRACT_T0) });
    const used = () => {
      const raw = new Database(f.path, { readonly: true });
      try {
        const pages = raw.pragma('page_count', { simple: true }) as number;
        const free = raw.pragma('freelist_count', { simple: true }) as number;
        return (pages - free) * (raw.pragma('page_size', { simple: true }) as number);
      } finally {
        raw.close();
      }
    };
    try {
      await f.store.enqueue([send(randomUUID() as Aci, [1])]);
      const before = used();
      const body = randomBytes(64 * 1024);
      const digest = createHash('sha256').update(body).digest();
      const id = randomBytes(16).toString('hex') as MessageId;
      const requests: EnqueueRequest[] = Array.from({ length: 100 }, () => {
        const header = randomBytes(49);
        return {
          destination: randomUUID() as Aci,
          messageId: id,
          timestamp: CONTRACT_T0,
          serverTimestamp: CONTRACT_T0,
          urgent: true,
          expiresAt: CONTRACT_T0 + 3_600_000,
          maxQueueDepth: 100,
          envelopes: [{ deviceId: 1 as DeviceId, type: 3, content: header, contentHash: createHash('sha256').update(header).update(digest).digest().subarray(0, 16) }],
          sharedBody: { id: digest, bytes: body },
          group: 1,
        };
      });
      await f.store.enqueue(requests);
      const grew = used() - before;
      // One body, and per device its envelope row (49-byte header), dedup entry, index entries and
      // queue counter row: a few hundred bytes, where storing 100 copies would take 6.4 MB.
      assert.ok(grew <= 2 * body.length + 100 * 400, `grew by ${grew} bytes`);
    } finally {
      await f.cleanup();
    }
  });

  it('runs in WAL mode with the requested synchronous level', async () => {
    for (const synchronous of ['full', 'normal'] as const) {
      const f = await fixture({ clock: new ManualClock(CONTRACT_T0), synchronous });
      try {
        const store = f.store as ReturnType<typeof openSqliteEnvelopeStore>;
        assert.deepEqual(store.settings(), { journalMode: 'wal', synchronous });
        await store.enqueue([send(randomUUID() as Aci, [1])]);
        assert.ok(existsSync(`${f.path}-wal`));
        // Byte 18 of the header is 2 in WAL mode: the mode is in the file, not only the connection.
        assert.equal(readFileSync(f.path)[18], 2);
      } finally {
        await f.cleanup();
      }
    }
    assert.throws(
      () => openSqliteEnvelopeStore({ path: join(root, 'never.db'), synchronous: 'off' as never }),
      (err: unknown) => isEnvelopeStoreError(err, 'INVALID_REQUEST'),
    );
  });

  it('opens a throwaway in-memory store that follows the same rules', async () => {
    const store = openSqliteEnvelopeStore({ path: ':memory:', clock: new ManualClock(CONTRACT_T0) });
    const alice = randomUUID() as Aci;
    const [a, b] = await store.enqueue([send(alice, [1]), send(alice, [1])]);
    assert.equal(a?.status === 'queued' && a.seqs[0]?.seq, 1);
    assert.equal(b?.status === 'queued' && b.seqs[0]?.seq, 2);
    await store.close();
  });

  it('rejects bad read and expire arguments', async () => {
    const store = openSqliteEnvelopeStore({ path: ':memory:' });
    const queue = { aci: randomUUID() as Aci, deviceId: 1 as DeviceId };
    const invalid = (err: unknown) => isEnvelopeStoreError(err, 'INVALID_REQUEST');
    await assert.rejects(store.read(queue, -1, 1, 0), invalid);
    await assert.rejects(store.read(queue, 0, 1.5, 0), invalid);
    await assert.rejects(store.read(queue, 0, 1, Number.NaN), invalid);
    await assert.rejects(store.expire(0, -1), invalid);
    await store.close();
  });
});
