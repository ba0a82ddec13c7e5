// SPDX-License-Identifier: AGPL-3.0-only
/**
 * The composition root of `parley`: takes the arguments, the environment and the streams,
 * wires the command tree to an engine opener, runs one command and returns its exit code.
 * It never calls process.exit, so tests run it in process.
 */
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { Command, CommanderError } from 'commander';
import { CliError, EXIT, type ExitCode, describeError } from './errors.js';
import type { OpenClient } from './engine-contract.js';
import { openEngineClient } from './open-engine.js';
import { Output, type TextSink } from './output.js';
import type { CliEnv } from './profile.js';
import { buildProgram } from './program.js';
import { type CliRuntime, type MutableErrorContext, type StopHandle, profileDirExists } from './session.js';

/** The streams `parley` uses. */
export interface CliIo {
  readonly stdout: TextSink;
  readonly stderr: TextSink;
  /** Read by `send <address> -` only. */
  readonly stdin: AsyncIterable<string | Uint8Array>;
}

/** What tests (and embedders) may replace. Every field is optional. */
export interface MainOptions {
  /** Opens a profile. Default: `openParleyClient` of @parley/client, imported on first use. */
  readonly openClient?: OpenClient;
  /** Stops `listen`. Default: SIGINT or SIGTERM of this process while `listen` runs. */
  readonly stopSignal?: AbortSignal;
  /** Default: `process.platform`. */
  readonly platform?: NodeJS.Platform;
  /** Used when `HOME` is not in `env`. Default: `os.homedir()`. */
  readonly homeDir?: string;
  /** Relative paths are resolved against it. Default: `process.cwd()`. */
  readonly cwd?: string;
  /** Milliseconds since the epoch. Default: `Date.now`. */
  readonly now?: () => number;
  /** Whether a profile directory exists. Default: a stat of the file system. */
  readonly profileExists?: (dir: string) => Promise<boolean>;
}

/**
 * `--json` decides the format of errors too, also of those commander raises before any action
 * runs, so it is read from the raw arguments (up to `--`).
 */
function wantsJson(argv: readonly string[]): boolean {
  for (const arg of argv) {
    if (arg === '--') return false;
    if (arg === '--json') return true;
  }
  return false;
}

/** The command path named by `argv`, for hints of usage errors raised before an action runs. */
function commandFromArgv(program: Command, argv: readonly string[]): string | undefined {
  let cmd = program;
  const names: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === '--') break;
    if (arg.startsWith('-')) {
      const opt = cmd.options.find((o) => o.long === arg || o.short === arg);
      if (opt && (opt.required || opt.optional)) i += 1;
      continue;
    }
    const sub = cmd.commands.find((c) => c.name() === arg || c.aliases().includes(arg));
    if (!sub) break;
    names.push(sub.name());
    cmd = sub;
  }
  return names.length > 0 ? names.join(' ') : undefined;
}

function readVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: unknown };
    return typeof pkg.version === 'string' ? pkg.version : '0.0.0';
  } catch {
    return '0.0.0';
  }
}

function processStopSignal(): StopHandle {
  const controller = new AbortController();
  const onSignal = (): void => controller.abort();
  // once: a second Ctrl-C falls through to Node's default and ends the process.
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  return {
    signal: controller.signal,
    dispose: () => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    },
  };
}

/**
 * Runs `parley` with `argv` (the arguments after the program name) and resolves with the exit
 * code; it writes only to `io`. Only this function's caller reads `process.env`.
 */
export async function main(argv: readonly string[], env: CliEnv, io: CliIo, options: MainOptions = {}): Promise<ExitCode> {
  const json = wantsJson(argv);
  const out = new Output(io.stdout, io.stderr, json);
  const context: MutableErrorContext = {};
  const stopSignal = options.stopSignal;
  const rt: CliRuntime = {
    out,
    env,
    stdin: io.stdin,
    openClient: options.openClient ?? openEngineClient,
    platform: options.platform ?? process.platform,
    homeDir: options.homeDir ?? homedir(),
    cwd: options.cwd ?? process.cwd(),
    now: options.now ?? Date.now,
    stopSignal: stopSignal ? () => ({ signal: stopSignal, dispose: () => {} }) : processStopSignal,
    profileExists: options.profileExists ?? profileDirExists,
    context,
  };
  const program = buildProgram(rt, readVersion(), (p) =>
    p.exitOverride().configureOutput({
      writeOut: (s) => io.stdout.write(s),
      // Help shown because of an error (no command given) would break the one-JSON-line rule.
      writeErr: (s) => (json ? undefined : io.stderr.write(s)),
      // Errors are reported below, in the CLI's own format.
      outputError: () => {},
      getOutHelpWidth: () => io.stdout.columns ?? 80,
      getErrHelpWidth: () => io.stderr.columns ?? 80,
      getOutHasColors: () => false,
      getErrHasColors: () => false,
    }),
  );
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return EXIT.OK;
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.exitCode === 0) return EXIT.OK;
      context.command ??= commandFromArgv(program, argv);
      if (err.code === 'commander.help') {
        // No command given: commander printed the help on stderr (human mode).
        if (json) out.error(describeError(new CliError('USAGE', 'no command given'), context));
        return EXIT.USAGE;
      }
      const message = err.message.replace(/^error:\s*/, '').replace(/\s*\n\s*/g, ' ');
      out.error(describeError(new CliError('USAGE', message), context));
      return EXIT.USAGE;
    }
    const report = describeError(err, context);
    out.error(report);
    return report.exitCode;
  }
}
