// SPDX-License-Identifier: AGPL-3.0-only
/**
 * Receipts, typing and settings through real `parley` processes against a real relay process:
 * `listen --json` prints the receipt and typing events as they arrive, `receipts` shows what
 * became of a message, and bad input ends with the documented error code and exit code.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { REPO_ROOT, startRelay, type RelayProcess } from '../support/relay-process.js';

const PARLEY = join(REPO_ROOT, 'clients', 'cli', 'bin', 'parley.js');

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `parley …args` to its end. */
function parley(args: readonly string[], cwd: string): Promise<Run> {
  const child = spawn(process.execPath, [PARLEY, ...args], { cwd, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, PARLEY_HOME: '' } });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  return new Promise((resolve) => child.once('exit', (code) => resolve({ code, stdout, stderr })));
}

/** A running `parley listen --json` and the JSON lines it printed so far. */
interface Listener {
  readonly child: ChildProcess;
  readonly lines: Array<Record<string, unknown>>;
  readonly stderr: () => string;
  readonly exited: Promise<number | null>;
}

function listen(profile: string, cwd: string): Listener {
  const child = spawn(process.execPath, [PARLEY, 'listen', '--json', '--profile', profile], { cwd, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, PARLEY_HOME: '' } });
  const lines: Array<Record<string, unknown>> = [];
  let partial = '';
  let err = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => {
    const parts = (partial + d).split('\n');
    partial = parts.pop()!;
    for (const p of parts) if (p.trim()) lines.push(JSON.parse(p) as Record<string, unknown>);
  });
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, lines, stderr: () => err, exited };
}

async function until(what: string, ok: () => boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

const jsonLines = (text: string) =>
  text
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as Record<string, unknown>);

describe('parley processes: receipts, typing and settings', () => {
  let relay: RelayProcess;
  let cwd: string;
  const ok = async (args: string[]): Promise<Run> => {
    const r = await parley(args, cwd);
    assert.equal(r.code, 0, `parley ${args.join(' ')}\n${r.stdout}\n${r.stderr}`);
    return r;
  };

  before(async () => {
    relay = await startRelay();
    cwd = mkdtempSync(join(tmpdir(), 'parley-cli-receipts-'));
    await ok(['register', 'alice', '--server', relay.url, '--profile', './alice']);
    await ok(['register', 'bob', '--server', relay.url, '--profile', './bob']);
  });
  after(async () => {
    await relay?.stop();
  });

  it('listen --json prints the peer’s presence, the delivery receipt, the read receipt and the typing as they arrive', async () => {
    // Bob writes first, so alice holds his presence token.
    await ok(['send', 'alice', 'hello alice', '--profile', './bob']);
    await ok(['receive', '--profile', './alice']);
    await ok(['read', 'bob', '--profile', './alice']);
    const sent = JSON.parse((await ok(['send', 'bob', 'lunch at noon?', '--json', '--profile', './alice'])).stdout) as { id: string };
    const alice = listen('./alice', cwd);
    try {
      await until('alice to connect', () => alice.stderr().includes('connected'));
      await until('bob’s presence', () => alice.lines.some((l) => l.event === 'presence'));
      const presence = alice.lines.find((l) => l.event === 'presence')!;
      assert.equal(presence.address, 'bob@localhost');
      assert.equal(presence.state, 'offline');
      await ok(['receive', '--profile', './bob']);
      await until('the delivery receipt', () => alice.lines.some((l) => l.event === 'receipt'));
      await ok(['read', 'alice', '--profile', './bob']);
      await until('the read receipt', () => alice.lines.filter((l) => l.event === 'receipt').length === 2);
      await ok(['typing', 'alice', '--profile', './bob']);
      await until('the typing event', () => alice.lines.some((l) => l.event === 'typing'));
      const events = alice.lines.filter((l) => l.event === 'receipt' || l.event === 'typing');
      assert.deepEqual(
        events.map((e) => [e.event, e.type ?? e.action, e.from, e.messageIds ?? null]),
        [
          ['receipt', 'delivery', 'bob@localhost', [sent.id]],
          ['receipt', 'read', 'bob@localhost', [sent.id]],
          ['typing', 'started', 'bob@localhost', null],
        ],
      );
      assert.equal(typeof events[0]!.at, 'number');
      assert.equal(events[2]!.conversation, 'bob@localhost');
    } finally {
      alice.child.kill('SIGTERM');
    }
    assert.equal(await alice.exited, 0);
    const receipts = jsonLines((await ok(['receipts', 'bob', '--json', '--profile', './alice'])).stdout);
    assert.deepEqual(
      receipts.map((r) => [r.messageId, r.recipient, r.status]),
      [[sent.id, 'bob@localhost', 'read']],
    );
    const history = jsonLines((await ok(['history', 'bob', '--json', '--profile', './alice'])).stdout);
    assert.equal(history.find((m) => m.id === sent.id)!.status, 'read');
    assert.equal(history.find((m) => m.text === 'hello alice')!.status, 'read', 'what alice read herself shows read too');
  });

  it('typing to a group: `typing \'#title\'` reaches a listening member, whose listen --json names the group', async () => {
    const created = JSON.parse((await ok(['group', 'create', 'crag', 'bob', '--json', '--profile', './alice'])).stdout) as { id: string; handle: string };
    // The first group message hands alice's group key to bob; a typing indicator hands none out.
    await ok(['send', '#crag', 'who climbs today?', '--profile', './alice']);
    await ok(['receive', '--profile', './bob']);
    const bob = listen('./bob', cwd);
    try {
      await until('bob to connect', () => bob.stderr().includes('connected'));
      const typed = JSON.parse((await ok(['typing', '#crag', '--json', '--profile', './alice'])).stdout) as unknown;
      assert.deepEqual(typed, { action: 'started', sent: true, devices: 1 });
      await until('the typing event', () => bob.lines.some((l) => l.event === 'typing'));
      const event = bob.lines.find((l) => l.event === 'typing')!;
      assert.deepEqual(
        [event.action, event.from, event.conversation, event.groupId],
        ['started', 'alice@localhost', created.handle, created.id],
      );
      const throttled = await ok(['typing', '#crag', '--profile', './alice']);
      assert.match(throttled.stdout, /not sent: a typing indicator went to this conversation less than 3 s ago/, 'the limit holds across processes');
      const stopped = await ok(['typing', '#crag', '--stop', '--profile', './alice']);
      assert.match(stopped.stdout, /^told #crag you stopped typing \(1 device online got it\)$/m);
      await until('the stop', () => bob.lines.filter((l) => l.event === 'typing').length === 2);
    } finally {
      bob.child.kill('SIGTERM');
    }
    assert.equal(await bob.exited, 0);
    const r = await parley(['typing', '#nosuchgroup', '--json', '--profile', './alice'], cwd);
    assert.equal(r.code, 3, r.stderr);
    assert.equal((JSON.parse(r.stderr.trim().split('\n').at(-1)!) as { error: { code: string } }).error.code, 'NOT_FOUND');
  });

  it('settings change, print and refuse bad input; bad input everywhere ends with its exit code', async () => {
    const changed = JSON.parse((await ok(['settings', 'read-receipts', 'off', 'presence', 'off', '--json', '--profile', './alice'])).stdout) as unknown;
    assert.deepEqual(changed, { readReceipts: false, typingIndicators: true, presence: false });
    assert.match((await ok(['settings', '--profile', './alice'])).stdout, /^read-receipts {2}off\ntyping {9}on\npresence {7}off\n$/);
    // With read receipts off the peer's read state is not shown.
    assert.equal(jsonLines((await ok(['receipts', 'bob', '--json', '--profile', './alice'])).stdout)[0]!.status, 'delivered');

    const cases: Array<[string[], number, string]> = [
      [['settings', 'colour', 'blue'], 2, 'USAGE'],
      [['settings', 'typing', 'maybe'], 2, 'USAGE'],
      [['presence', '--away', '--online'], 2, 'USAGE'],
      [['receipts', 'bob', '--message', 'nothex'], 2, 'USAGE'],
      [['presence'], 2, 'SETTING_OFF'],
      [['read', 'carol'], 3, 'NOT_FOUND'],
      [['receipts', 'bob', '--message', 'f'.repeat(32)], 3, 'NOT_FOUND'],
    ];
    for (const [args, exit, code] of cases) {
      const r = await parley([...args, '--json', '--profile', './alice'], cwd);
      assert.equal(r.code, exit, `parley ${args.join(' ')}: ${r.stderr}`);
      assert.equal((JSON.parse(r.stderr.trim().split('\n').at(-1)!) as { error: { code: string } }).error.code, code, args.join(' '));
      assert.equal(r.stdout, '');
    }
    await ok(['settings', 'read-receipts', 'on', 'presence', 'on', '--profile', './alice']);
  });
});
