// SPDX-License-Identifier: AGPL-3.0-only
/**
 * One command's use of the engine: resolve the profile and the passphrase, open the client,
 * run the command, close the client whatever happens. Also what commands share: the account
 * check, canonical addresses and the stop signal of long-running commands.
 */
import { stat } from 'node:fs/promises';
import { CliError } from './errors.js';
import type { AccountInfo, OpenClient, ParleyClientApi } from './engine-contract.js';
import type { Output } from './output.js';
import { type CliEnv, readPassphrase, resolveProfileDir } from './profile.js';

/** The facts error hints may use; commands fill them in as they learn them. */
export interface MutableErrorContext {
  command?: string;
  server?: string;
  address?: string;
  profileDir?: string;
}

/** An abort signal for a long-running command and how to stop listening for it. */
export interface StopHandle {
  readonly signal: AbortSignal;
  dispose(): void;
}

/** What every command of one run shares; built once by main. */
export interface CliRuntime {
  readonly out: Output;
  readonly env: CliEnv;
  readonly stdin: AsyncIterable<string | Uint8Array>;
  readonly openClient: OpenClient;
  readonly platform: NodeJS.Platform;
  readonly homeDir: string;
  readonly cwd: string;
  /** Milliseconds since the epoch (default export directory names). */
  readonly now: () => number;
  /** Fires when the user stops a long-running command (SIGINT/SIGTERM in the real binary). */
  readonly stopSignal: () => StopHandle;
  /** True when a profile directory exists at the path (default: a stat of the file system). */
  readonly profileExists: (dir: string) => Promise<boolean>;
  /** Filled in by commands, read by main to word the error hint. */
  readonly context: MutableErrorContext;
}

/** The options every command takes. */
export interface GlobalOptions {
  profile?: string;
  json?: boolean;
  passphraseFile?: string;
}

/** How a command uses its profile. */
export interface ProfileUse {
  /**
   * True for the commands that set a profile up (register, link): the engine creates a missing
   * profile directory. Every other command refuses a missing one with NO_ACCOUNT instead of
   * leaving an empty profile behind.
   */
  readonly creates: boolean;
}

async function isDirectory(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory();
  } catch (err) {
    if ((err as { code?: unknown }).code === 'ENOENT') return false;
    throw err;
  }
}

/** A command's view of the run with an open client. */
export interface Session {
  readonly rt: CliRuntime;
  readonly out: Output;
  readonly client: ParleyClientApi;
  readonly context: MutableErrorContext;
}

/** {@link CliRuntime.profileExists} on the real file system. */
export const profileDirExists = isDirectory;

/**
 * Opens the profile named by `options`, runs `fn`, and closes the client. When `fn` fails its
 * error wins over a failure to close.
 */
export async function withClient(
  rt: CliRuntime,
  options: GlobalOptions,
  use: ProfileUse,
  fn: (s: Session) => Promise<void>,
): Promise<void> {
  const profileDir = resolveProfileDir({ profile: options.profile, env: rt.env, platform: rt.platform, homeDir: rt.homeDir, cwd: rt.cwd });
  rt.context.profileDir = profileDir;
  if (!use.creates && !(await rt.profileExists(profileDir))) {
    throw new CliError('NO_ACCOUNT', `there is no profile at ${profileDir}`);
  }
  const passphrase = await readPassphrase({ passphraseFile: options.passphraseFile, env: rt.env, cwd: rt.cwd });
  const clock = testClock(rt.env);
  const client = await rt.openClient({ profileDir, ...(passphrase !== undefined ? { passphrase } : {}), ...(clock ? { clock } : {}) });
  try {
    const account = client.account();
    if (account) rt.context.server = account.server;
    await fn({ rt, out: rt.out, client, context: rt.context });
  } catch (err) {
    await client.close().catch(() => {});
    throw err;
  }
  await client.close();
}

/** The variable that moves the engine's clock, for tests only (see the README). */
export const TEST_CLOCK_VARIABLE = 'PARLEY_TEST_CLOCK_OFFSET_MS';

/**
 * A clock `PARLEY_TEST_CLOCK_OFFSET_MS` milliseconds off the system's, when that variable is
 * set: how end-to-end tests show a `parley` process the time after a disappearing message's
 * timer ran out, without waiting. Not for everyday use (the relay refuses timestamps more than
 * a day ahead).
 * @throws CliError USAGE when the variable is not a whole number.
 */
export function testClock(env: CliEnv): { now(): number } | undefined {
  const raw = env[TEST_CLOCK_VARIABLE];
  if (raw === undefined || raw === '') return undefined;
  if (!/^-?[0-9]{1,15}$/.test(raw.trim())) throw new CliError('USAGE', `${TEST_CLOCK_VARIABLE} must be a whole number of milliseconds`);
  const offset = Number(raw.trim());
  return { now: () => Date.now() + offset };
}

/** The profile's account. @throws CliError NO_ACCOUNT before register/link. */
export function requireAccount(s: Session): AccountInfo {
  const account = s.client.account();
  if (!account) throw new CliError('NO_ACCOUNT');
  return account;
}

/** @throws CliError ACCOUNT_EXISTS when the profile already has an account. */
export function requireNoAccount(s: Session): void {
  const account = s.client.account();
  if (account) throw new CliError('ACCOUNT_EXISTS', `this profile already belongs to ${account.address} (device ${account.deviceId})`);
}

/** A conversation as the user named it: a group `#…` as given, else {@link fullAddress}. */
export function conversationName(address: string, account: AccountInfo): string {
  return address.startsWith('#') ? address : fullAddress(address, account);
}

/** `address` with the account's domain when it has none (`bob` → `bob@example.org`). */
export function fullAddress(address: string, account: AccountInfo): string {
  if (address.includes('@')) return address;
  const at = account.address.lastIndexOf('@');
  return at < 0 ? address : `${address}${account.address.slice(at)}`;
}
