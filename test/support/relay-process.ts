// SPDX-License-Identifier: AGPL-3.0-only
/**
 * Starts `parley-relay` as a real child process on a free port, for end-to-end and fault tests:
 * the same binary an operator runs, talking over real sockets to real SQLite files.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root (this file runs from test/dist/support/). */
export const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
/** The relay binary. */
export const RELAY_BIN = join(REPO_ROOT, 'relay', 'bin', 'parley-relay.js');

/** Options for startRelay. */
export interface StartRelayOptions {
  /** Data directory; a fresh temp directory by default. */
  readonly dataDir?: string;
  /** Extra command-line flags. */
  readonly args?: readonly string[];
  /** Port; 0 (any free port) by default. */
  readonly port?: number;
  /** Extra environment variables (PARLEY_…) on top of this process's environment. */
  readonly env?: Readonly<Record<string, string>>;
}

/** A running relay process. */
export interface RelayProcess {
  /** `http://…`, or `https://…` when the relay serves TLS. */
  readonly url: string;
  /** `ws://…/v1/websocket`, or `wss://…`. */
  readonly wsUrl: string;
  readonly port: number;
  readonly dataDir: string;
  readonly child: ChildProcess;
  /** What the process wrote to stderr and stdout so far (logs). */
  output(): string;
  /** SIGTERM and wait for exit; resolves with the exit code. */
  stop(): Promise<number | null>;
  /** SIGKILL: no shutdown code runs. */
  kill(): Promise<void>;
}

/** Starts a relay and resolves once it listens. */
export async function startRelay(opts: StartRelayOptions = {}): Promise<RelayProcess> {
  const dataDir = opts.dataDir ?? mkdtempSync(join(tmpdir(), 'parley-relay-'));
  const child = spawn(
    process.execPath,
    [RELAY_BIN, '--port', String(opts.port ?? 0), '--data', dataDir, '--log-level', 'warn', ...(opts.args ?? [])],
    { stdio: ['ignore', 'pipe', 'pipe'], ...(opts.env ? { env: { ...process.env, ...opts.env } } : {}) },
  );
  let out = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (out += d));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`relay did not start within 15 s:\n${out}`)), 15_000);
    const onData = () => {
      const m = /listening on (https?:\/\/\S+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        child.stdout!.off('data', onData);
        resolve(m[1]!);
      }
    };
    child.stdout!.on('data', onData);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`relay exited with ${code} before listening:\n${out}`));
    });
  });
  const port = Number(new URL(url).port);
  return {
    url,
    wsUrl: url.replace(/^http/, 'ws') + '/v1/websocket',
    port,
    dataDir,
    child,
    output: () => out,
    async stop() {
      if (child.exitCode !== null) return child.exitCode;
      child.kill('SIGTERM');
      return exited;
    },
    async kill() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGKILL');
      await exited;
    },
  };
}
