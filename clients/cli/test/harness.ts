// SPDX-License-Identifier: AGPL-3.0-only
/** Runs `main` in process with captured streams and a FakeParleyClient. */
import { Readable } from 'node:stream';
import { main } from '../src/main.js';
import type { OpenClient, OpenClientOptions } from '../src/engine-contract.js';
import type { CliEnv } from '../src/profile.js';
import { FakeParleyClient, T0, fakeOpener } from './fake-parley-client.js';

/** A captured output stream. */
export class Capture {
  readonly chunks: string[] = [];
  readonly isTTY = false;
  write(chunk: string): boolean {
    this.chunks.push(chunk);
    return true;
  }
  get text(): string {
    return this.chunks.join('');
  }
  /** Non-empty lines. */
  get lines(): string[] {
    return this.text.split('\n').filter((l) => l.length > 0);
  }
  /** Every line parsed as JSON. */
  get json(): Record<string, unknown>[] {
    return this.lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  }
}

/** What a run produced. */
export interface RunResult {
  readonly code: number;
  readonly stdout: Capture;
  readonly stderr: Capture;
  readonly client: FakeParleyClient;
  readonly opened: OpenClientOptions[];
}

/** Options of {@link run}. */
export interface RunOptions {
  readonly client?: FakeParleyClient;
  readonly env?: CliEnv;
  readonly stdin?: string;
  readonly stopSignal?: AbortSignal;
  readonly cwd?: string;
  readonly platform?: NodeJS.Platform;
  readonly openClient?: OpenClient;
  readonly profileExists?: (dir: string) => Promise<boolean>;
}

/** The default environment of a run: a home directory, nothing else. */
export const TEST_ENV: CliEnv = { HOME: '/home/tester' };

/** Runs `parley ...argv`. */
export async function run(argv: string[], options: RunOptions = {}): Promise<RunResult> {
  const client = options.client ?? new FakeParleyClient();
  const opener = fakeOpener(client);
  const stdout = new Capture();
  const stderr = new Capture();
  const code = await main(
    argv,
    options.env ?? TEST_ENV,
    { stdout, stderr, stdin: Readable.from(options.stdin === undefined ? [] : [options.stdin]) },
    {
      openClient: options.openClient ?? opener.open,
      stopSignal: options.stopSignal ?? AbortSignal.abort(),
      platform: options.platform ?? 'linux',
      homeDir: '/home/fallback',
      cwd: options.cwd ?? '/work/dir',
      now: () => T0,
      profileExists: options.profileExists ?? (async () => true),
    },
  );
  return { code, stdout, stderr, client, opened: opener.opened };
}
