// SPDX-License-Identifier: AGPL-3.0-only
/**
 * Helpers for end-to-end tests of the client engine: fresh profile directories, polling for a
 * condition, and a client that records what it emitted. Engines run in this process on real
 * SQLCipher profiles against a real relay process.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openParleyClient, type MessageActionEvent, type MessageView, type ParleyClientApi, type ProgressEvent } from '@parley/client';

/** A fresh, empty profile directory. */
export function newProfileDir(): string {
  return mkdtempSync(join(tmpdir(), 'parley-client-e2e-'));
}

/** Polls `ok` every 25 ms until it holds, or throws after `timeoutMs` (default 20,000). */
export async function until(what: string, ok: () => boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** An open engine with everything it emitted since it was opened. */
export interface RecordingClient {
  readonly client: ParleyClientApi;
  readonly profileDir: string;
  /** Every 'message' event, in emission order. */
  readonly messages: MessageView[];
  /** Every 'progress' event, in emission order. */
  readonly progress: ProgressEvent[];
  /** Every 'action' event (edits, deletes, reactions, timers, expiry, blocks), in emission order. */
  readonly actions: MessageActionEvent[];
}

/** A clock a test moves: the system's plus `offsetMs`. */
export class OffsetClock {
  offsetMs = 0;
  now(): number {
    return Date.now() + this.offsetMs;
  }
}

/**
 * Opens (or reopens) the profile at `profileDir` (a fresh one by default) and records its
 * events; `clock` replaces the engine's time source.
 */
export async function openRecording(profileDir = newProfileDir(), passphrase?: string, clock?: { now(): number }): Promise<RecordingClient> {
  const client = await openParleyClient({ profileDir, ...(passphrase !== undefined ? { passphrase } : {}), ...(clock ? { clock } : {}) });
  const messages: MessageView[] = [];
  const progress: ProgressEvent[] = [];
  const actions: MessageActionEvent[] = [];
  client.on('message', (m) => messages.push(m));
  client.on('progress', (p) => progress.push(p));
  client.on('action', (e) => actions.push(e));
  return { client, profileDir, messages, progress, actions };
}

/**
 * Every message of the conversation with `address`, oldest first, paging through `history`
 * (whose pages are newest first) so that long conversations are compared whole.
 */
export function fullHistory(client: ParleyClientApi, address: string): MessageView[] {
  const out: MessageView[] = [];
  let before: string | undefined;
  for (;;) {
    const page = client.history(address, { limit: 1000, ...(before ? { before } : {}) });
    out.push(...page);
    if (page.length < 1000) break;
    before = page[page.length - 1]!.id;
  }
  return out.reverse();
}

/**
 * Links a new profile to the account of `approver`, both sides running at once. `timeoutMs`
 * bounds the new device's wait (the engine's default is minutes).
 */
export async function linkNewDevice(
  approver: RecordingClient,
  server: string,
  options: { timeoutMs?: number; clock?: { now(): number } } = {},
): Promise<{ device: RecordingClient; deviceId: number }> {
  const device = await openRecording(undefined, undefined, options.clock);
  let approved: Promise<{ deviceId: number }> | undefined;
  const linked = device.client.link(server, (code) => {
    approved = approver.client.approveLink(code);
    // Awaited below; a rejection must not surface as unhandled while the link is still running.
    approved.catch(() => undefined);
  }, options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs });
  try {
    const account = await linked;
    if (!approved) throw new Error('link resolved without showing a link code');
    const { deviceId } = await approved;
    if (deviceId !== account.deviceId) throw new Error(`approver saw device ${deviceId}, the new device is ${account.deviceId}`);
    return { device, deviceId };
  } catch (err) {
    await device.client.close();
    throw err;
  }
}

/** Three people in one group: alice and bob with two devices each, carol with one. */
export interface GroupOfThree {
  readonly alice: RecordingClient;
  readonly alice2: RecordingClient;
  readonly bob: RecordingClient;
  readonly bob2: RecordingClient;
  readonly carol: RecordingClient;
  /** `#<group id>`. */
  readonly group: string;
  /** Every device, to close after the test. */
  readonly all: readonly RecordingClient[];
}

/**
 * Registers alice, bob and carol on the relay at `server`, links a second device to alice and to
 * bob, and has alice create group `title` with bob and carol; every other device has received
 * the group's creation when it resolves.
 */
export async function groupOfThree(server: string, title: string): Promise<GroupOfThree> {
  const [alice, bob, carol] = [await openRecording(), await openRecording(), await openRecording()];
  const all: RecordingClient[] = [alice, bob, carol];
  await alice.client.register(server, 'alice');
  await bob.client.register(server, 'bob');
  await carol.client.register(server, 'carol');
  const alice2 = (await linkNewDevice(alice, server)).device;
  const bob2 = (await linkNewDevice(bob, server)).device;
  all.push(alice2, bob2);
  const group = `#${(await alice.client.createGroup(title, ['bob', 'carol'])).id}`;
  for (const c of [bob, bob2, carol, alice2]) await c.client.receive();
  return { alice, alice2, bob, bob2, carol, group, all };
}

/** The crash-test child script (support/client-crash-child.ts, compiled next to this file). */
export const CRASH_CHILD = fileURLToPath(new URL('./client-crash-child.js', import.meta.url));

/** A running crash-test child. */
export interface CrashChild {
  readonly child: ChildProcess;
  /** Lines it printed on stdout so far. */
  readonly lines: string[];
  /** Its exit code or the signal that ended it. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** What it wrote on stderr so far. */
  stderr(): string;
}

/** Starts `client-crash-child.js` with `args` (mode, profile directory, …). */
export function spawnCrashChild(args: readonly string[]): CrashChild {
  const child = spawn(process.execPath, [CRASH_CHILD, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  let partial = '';
  let err = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => {
    const parts = (partial + d).split('\n');
    partial = parts.pop()!;
    lines.push(...parts);
  });
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  return { child, lines, exited, stderr: () => err };
}

/** Starts `client.listen()` and resolves once its connection is up, with the way to stop it. */
export async function startListening(client: ParleyClientApi): Promise<{ stop: () => Promise<void> }> {
  const stop = new AbortController();
  const connected = new Promise<void>((resolve) => {
    const off = client.on('connection', (state) => {
      if (state === 'connected') {
        off();
        resolve();
      }
    });
  });
  const running = client.listen(stop.signal);
  await Promise.race([connected, running]);
  return {
    stop: async () => {
      stop.abort();
      await running;
    },
  };
}
