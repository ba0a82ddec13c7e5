// SPDX-License-Identifier: AGPL-3.0-only
/**
 * Where a profile lives and what opens it: the profile directory (`--profile`, `PARLEY_HOME`,
 * the per-user data directory) and the database passphrase (`--passphrase-file`,
 * `PARLEY_PASSPHRASE`). The passphrase is returned to the caller and never printed.
 */
import { readFile } from 'node:fs/promises';
import { isAbsolute, join, resolve } from 'node:path';
import { CliError } from './errors.js';

/** The environment variables the CLI reads (a subset of `process.env`). */
export type CliEnv = Readonly<Record<string, string | undefined>>;

/** Where the profile directory is looked for. */
export interface ProfileLocation {
  /** `--profile DIR`, relative to `cwd`. Wins over everything else. */
  readonly profile?: string;
  readonly env: CliEnv;
  /** `process.platform` of the machine. */
  readonly platform: NodeJS.Platform;
  /** The user's home directory, used when `HOME` (or `USERPROFILE`) is unset. */
  readonly homeDir: string;
  /** The directory relative paths are resolved against. */
  readonly cwd: string;
}

const nonEmpty = (s: string | undefined): s is string => typeof s === 'string' && s.length > 0;

/**
 * The profile directory: `--profile` > `PARLEY_HOME` > the per-user data directory
 * (`$XDG_DATA_HOME/parley` or `~/.local/share/parley`; on macOS
 * `~/Library/Application Support/parley`; on Windows `%LOCALAPPDATA%\parley`).
 */
export function resolveProfileDir(loc: ProfileLocation): string {
  if (nonEmpty(loc.profile)) return resolve(loc.cwd, loc.profile);
  const { env } = loc;
  if (nonEmpty(env.PARLEY_HOME)) return resolve(loc.cwd, env.PARLEY_HOME);
  const home = (loc.platform === 'win32' ? env.USERPROFILE : env.HOME) || loc.homeDir;
  switch (loc.platform) {
    case 'darwin':
      return join(home, 'Library', 'Application Support', 'parley');
    case 'win32':
      return join(nonEmpty(env.LOCALAPPDATA) ? env.LOCALAPPDATA : join(home, 'AppData', 'Local'), 'parley');
    default:
      // The XDG spec says to ignore a relative XDG_DATA_HOME.
      return join(nonEmpty(env.XDG_DATA_HOME) && isAbsolute(env.XDG_DATA_HOME) ? env.XDG_DATA_HOME : join(home, '.local', 'share'), 'parley');
  }
}

/** Where the passphrase is looked for. */
export interface PassphraseSource {
  /** `--passphrase-file PATH`, relative to `cwd`. Wins over `PARLEY_PASSPHRASE`. */
  readonly passphraseFile?: string;
  readonly env: CliEnv;
  readonly cwd: string;
}

/**
 * The database passphrase, or undefined when none is given (the engine then uses the
 * profile's key file). A file's trailing newlines are trimmed (editors and `echo` add one);
 * an empty `PARLEY_PASSPHRASE` counts as unset.
 * @throws CliError PASSPHRASE_FILE when the file cannot be read, PASSPHRASE_EMPTY when it is empty.
 */
export async function readPassphrase(src: PassphraseSource): Promise<string | undefined> {
  if (nonEmpty(src.passphraseFile)) {
    const path = resolve(src.cwd, src.passphraseFile);
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      throw new CliError('PASSPHRASE_FILE', `cannot read the passphrase file ${path}${typeof code === 'string' ? ` (${code})` : ''}`);
    }
    const passphrase = text.replace(/[\r\n]+$/, '');
    if (passphrase.length === 0) throw new CliError('PASSPHRASE_EMPTY', `the passphrase file ${path} is empty`);
    return passphrase;
  }
  return nonEmpty(src.env.PARLEY_PASSPHRASE) ? src.env.PARLEY_PASSPHRASE : undefined;
}
