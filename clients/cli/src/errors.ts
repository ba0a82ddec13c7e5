// SPDX-License-Identifier: AGPL-3.0-only
/**
 * Turns any failure into what the CLI shows: a stable exit code, the error's code, its (safe)
 * message and a hint that says what to do. Table-driven: one table per origin (the CLI itself,
 * the engine's ClientError, the relay's ParleyError, CryptoError, TransportError, Node's system
 * errors). The origin comes from the error's `name`, so that the same code in two registries
 * (NOT_FOUND from the store or from the relay) can mean different things; errors of unknown
 * class fall back to the first table that knows their code.
 */

/** The process exit codes of `parley`. Stable: scripts branch on them. */
export const EXIT = {
  OK: 0,
  /** A bug or an error without a code. */
  INTERNAL: 1,
  /** Bad flags or arguments (commander's errors too). */
  USAGE: 2,
  /** The named thing does not exist, or the profile has no account. */
  NOT_FOUND: 3,
  /** The relay refused the request (a ParleyError). */
  REFUSED: 4,
  /** The relay could not be reached or the connection failed (a TransportError). */
  NETWORK: 5,
  /** A crypto or identity failure (a CryptoError such as UNTRUSTED_IDENTITY). */
  CRYPTO: 6,
  /** The profile or its database cannot be opened or used. */
  PROFILE: 7,
} as const;

/** One of the values of {@link EXIT}. */
export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** The exit code table as shown in `--help` and the README. */
export const EXIT_CODES_HELP = `Exit codes:
  0  ok
  1  unexpected or internal error (a bug)
  2  usage: bad flags or arguments
  3  not found, or the profile has no account
  4  refused by the relay
  5  network: the relay cannot be reached or the connection failed
  6  crypto or identity (e.g. a contact's safety number changed)
  7  profile or database (wrong passphrase, profile in use, key file permissions)`;

/** Codes of errors the CLI raises itself, with what they mean. */
export const CLI_ERROR_CODES = {
  USAGE: 'A flag or argument is missing or malformed.',
  ACCOUNT_EXISTS: 'The profile already belongs to an account.',
  NO_ACCOUNT: 'The profile has no account yet: register or link a device first.',
  PASSPHRASE_FILE: 'The passphrase file cannot be read.',
  PASSPHRASE_EMPTY: 'The passphrase file is empty.',
  ENGINE_UNAVAILABLE: 'The client engine (@parley/client) or one of its native modules cannot be loaded.',
} as const;

/** A code of {@link CLI_ERROR_CODES}. */
export type CliErrorCode = keyof typeof CLI_ERROR_CODES;

/** An error raised by the CLI itself (bad arguments, unreadable passphrase file, …). */
export class CliError extends Error {
  /** Stable code; see {@link CLI_ERROR_CODES}. */
  readonly code: CliErrorCode;

  /** `message` must not contain a passphrase, key or message text. */
  constructor(code: CliErrorCode, message: string = CLI_ERROR_CODES[code]) {
    super(message);
    this.name = 'CliError';
    this.code = code;
  }
}

/** What the hints may mention: facts of the command that failed, never secrets. */
export interface ErrorContext {
  /** The command's name, e.g. `send` or `link approve`. */
  readonly command?: string;
  /** The relay's base URL the command talks to. */
  readonly server?: string;
  /** The peer address the command names, canonical `user@domain`. */
  readonly address?: string;
  /** The profile directory. */
  readonly profileDir?: string;
}

/** What the CLI reports for a failure. */
export interface ErrorReport {
  readonly exitCode: ExitCode;
  readonly code: string;
  readonly message: string;
  readonly hint: string;
}

/** How one code is reported. */
export interface ErrorRule {
  readonly exit: ExitCode;
  readonly hint: string | ((ctx: ErrorContext, err: CodedError) => string);
}

/** Anything with a string `code`: the uniform view of every typed error. */
export interface CodedError {
  readonly code: string;
  readonly message: string;
  readonly name?: string;
}

/** The error classes whose codes the tables cover. */
export type ErrorOrigin = 'cli' | 'client' | 'wire' | 'crypto' | 'transport' | 'system';

const BUG = 'this is a bug in parley: please report it with the command you ran (no message text or keys needed)';
const helpFor = (ctx: ErrorContext): string => `see \`parley ${ctx.command ? `${ctx.command} ` : ''}--help\``;
const IDENTITY_HINT = (ctx: ErrorContext): string =>
  ctx.address?.startsWith('#')
    ? "a member's safety number changed (the message above names whose): compare it with `parley verify <address>` and accept with `parley verify <address> --accept`; the group message waits until then"
    : ctx.address
    ? `${ctx.address}'s safety number changed: compare it with \`parley verify ${ctx.address}\` and accept with \`parley verify ${ctx.address} --accept\``
    : "a contact's safety number changed: `parley contacts` shows whose; compare it with `parley verify <address>` and accept with `parley verify <address> --accept`";
const DEVICE_REMOVED_HINT =
  'this device was removed from its account: link it again with `parley link --server URL` into a new --profile';
const NO_ACCOUNT_HINT = 'this profile has no account: run parley register <username> --server URL or parley link --server URL';
const profile = (ctx: ErrorContext): string => ctx.profileDir ?? 'the profile directory';
const relay = (ctx: ErrorContext): string => ctx.server ?? 'its address';
const peer = (ctx: ErrorContext): string => ctx.address ?? 'the recipient';

/** Errors of the CLI itself. */
export const CLI_RULES: Readonly<Record<CliErrorCode, ErrorRule>> = {
  USAGE: { exit: EXIT.USAGE, hint: helpFor },
  ACCOUNT_EXISTS: {
    exit: EXIT.USAGE,
    hint: (ctx) => `${profile(ctx)} already holds an account: use another --profile for another account or device`,
  },
  NO_ACCOUNT: { exit: EXIT.NOT_FOUND, hint: NO_ACCOUNT_HINT },
  PASSPHRASE_FILE: { exit: EXIT.USAGE, hint: 'check the path given to --passphrase-file and that you may read it' },
  PASSPHRASE_EMPTY: { exit: EXIT.USAGE, hint: 'write the passphrase into the file given to --passphrase-file' },
  ENGINE_UNAVAILABLE: {
    exit: EXIT.INTERNAL,
    hint: 'the engine or its native modules (SQLCipher, libsignal) did not load: run npm install, then npm run build',
  },
};

/** ClientError codes of @parley/client (CLIENT_ERROR_CODES); a test keeps the two in step. */
export const CLIENT_RULES: Readonly<Record<string, ErrorRule>> = {
  INVALID_ARGUMENT: { exit: EXIT.USAGE, hint: helpFor },
  NOT_FOUND: {
    exit: EXIT.NOT_FOUND,
    hint: 'nothing by that name in this profile: `parley conversations` lists conversations, `parley history <address>` shows message ids',
  },
  INVALID_LINK_CODE: {
    exit: EXIT.USAGE,
    hint: 'copy the whole link code the new device shows, starting with parley-link:',
  },
  WRONG_PASSPHRASE: {
    exit: EXIT.PROFILE,
    hint: 'the passphrase does not open this profile; check --passphrase-file or PARLEY_PASSPHRASE',
  },
  PASSPHRASE_REQUIRED: {
    exit: EXIT.PROFILE,
    hint: 'this profile is protected by a passphrase: pass --passphrase-file PATH or set PARLEY_PASSPHRASE',
  },
  KEY_MODE_MISMATCH: {
    exit: EXIT.PROFILE,
    hint: 'this profile is opened by its key file (db.key), not a passphrase: run without --passphrase-file and PARLEY_PASSPHRASE',
  },
  KEY_FILE_PERMISSIONS: {
    exit: EXIT.PROFILE,
    hint: (ctx) => `other users of this machine can read the key file: run chmod 600 ${profile(ctx)}/db.key`,
  },
  KEY_FILE_INVALID: {
    exit: EXIT.PROFILE,
    hint: (ctx) => `the key or salt file in ${profile(ctx)} was truncated or replaced: restore it from a backup; without it the database cannot be opened`,
  },
  KEY_MISSING: {
    exit: EXIT.PROFILE,
    hint: (ctx) => `the key file (db.key) or salt file (db.salt) of ${profile(ctx)} is gone: restore it from a backup, or start over with a new --profile and link this device again`,
  },
  PROFILE_IN_USE: {
    exit: EXIT.PROFILE,
    hint: (ctx) => `another parley process (a running \`parley listen\`?) has ${profile(ctx)} open: stop it, or use another --profile`,
  },
  DATABASE_TOO_NEW: { exit: EXIT.PROFILE, hint: 'a newer version of Parley wrote this profile: update parley' },
  SCHEMA_MISMATCH: {
    exit: EXIT.PROFILE,
    hint: 'the profile database records a migration this version does not know: use the Parley version that wrote it',
  },
  NO_ACCOUNT: { exit: EXIT.NOT_FOUND, hint: NO_ACCOUNT_HINT },
  // The engine's own check of a peer's identity key: the same situation as UNTRUSTED_IDENTITY.
  IDENTITY_CHANGED: { exit: EXIT.CRYPTO, hint: IDENTITY_HINT },
  // The relay refused this device for good; reported like the wire code.
  DEVICE_REMOVED: { exit: EXIT.REFUSED, hint: DEVICE_REMOVED_HINT },
  ASYNC_TRANSACTION: { exit: EXIT.INTERNAL, hint: BUG },
  STAGE_FINISHED: { exit: EXIT.INTERNAL, hint: BUG },
  STAGE_CONFLICT: { exit: EXIT.INTERNAL, hint: 'two operations changed the same session at once: run the command again' },
  NOT_GROUP_MEMBER: {
    exit: EXIT.NOT_FOUND,
    hint: '`parley group info <group>` shows the members; a group you left or were removed from keeps its history but takes no messages or changes from you',
  },
  NOT_GROUP_ADMIN: { exit: EXIT.USAGE, hint: 'only admins change a group: `parley group info <group>` lists them; ask one of them' },
  GROUP_FULL: { exit: EXIT.USAGE, hint: 'a group has at most 1,000 members: remove some first, or start another group' },
  AMBIGUOUS_GROUP: { exit: EXIT.USAGE, hint: 'name the group by more of its id: `parley group list` shows the ids' },
  NOT_AUTHOR: {
    exit: EXIT.USAGE,
    hint: 'only your own messages can be edited or deleted for everyone; `parley delete <address> <id> --local` removes any message from this device',
  },
  TOO_LATE: {
    exit: EXIT.USAGE,
    hint: 'messages can be edited or deleted for everyone for 24 hours after they were sent; `parley delete <address> <id> --local` still removes it from this device',
  },
  BLOCKED: {
    exit: EXIT.USAGE,
    hint: (ctx) => `you blocked ${ctx.address ?? 'that contact'}: \`parley unblock ${ctx.address ?? '<address>'}\` to write to them again`,
  },
  SETTING_OFF: { exit: EXIT.USAGE, hint: '`parley settings` shows the privacy settings; turn the feature on with e.g. `parley settings presence on`' },
  TRUST_ROOT_CHANGED: {
    exit: EXIT.CRYPTO,
    hint: (ctx) =>
      `the relay at ${relay(ctx)} announces another sealed-sender trust root than the one pinned at registration: ask its operator whether the key was replaced on purpose; until then messages go out identified`,
  },
  SEALED_SENDER_UNAVAILABLE: {
    exit: EXIT.REFUSED,
    hint: (ctx) => `the relay at ${relay(ctx)} does not offer sealed sender (or its certificates do not check out); messages go out identified`,
  },
};

const retryAfter = (err: CodedError): number | undefined => {
  const e = err as { details?: { retryAfterMs?: unknown }; retryAfterMs?: unknown };
  const ms = e.details?.retryAfterMs ?? e.retryAfterMs;
  return typeof ms === 'number' && Number.isFinite(ms) && ms >= 0 ? ms : undefined;
};

/** Wire codes of @parley/protocol (ERROR_CODES): the relay refused. A test keeps them in step. */
export const WIRE_RULES: Readonly<Record<string, ErrorRule>> = {
  BAD_REQUEST: {
    exit: EXIT.REFUSED,
    hint: 'the relay refused the request as malformed: check the arguments, and that parley and the relay are of the same version',
  },
  BAD_FRAME: { exit: EXIT.REFUSED, hint: 'parley and the relay do not speak the same protocol version: update both' },
  UNKNOWN_FRAME: { exit: EXIT.REFUSED, hint: 'parley and the relay do not speak the same protocol version: update both' },
  FRAME_TOO_LARGE: { exit: EXIT.REFUSED, hint: 'the message is larger than the relay accepts: send a shorter text' },
  UNAUTHORIZED: {
    exit: EXIT.REFUSED,
    hint: 'the relay does not accept this device: if it was removed from its account, link it again with `parley link --server URL` into a new --profile',
  },
  NOT_FOUND: {
    exit: EXIT.NOT_FOUND,
    hint: (ctx) => (ctx.address ? `there is no account ${ctx.address}: check the spelling of the address` : 'the relay knows no such account or device: check the address'),
  },
  USERNAME_TAKEN: {
    exit: EXIT.REFUSED,
    hint: 'that username is taken on this relay: choose another with parley register <username> --server URL',
  },
  INVALID_SIGNATURE: { exit: EXIT.REFUSED, hint: `the relay refused this device's keys; ${BUG}` },
  INVALID_KEY: { exit: EXIT.REFUSED, hint: `the relay refused this device's keys; ${BUG}` },
  TOO_MANY_KEYS: { exit: EXIT.REFUSED, hint: `the relay refused a prekey upload; ${BUG}` },
  DEVICE_LIMIT: {
    exit: EXIT.REFUSED,
    hint: 'the account has as many devices as its relay allows: remove one with `parley devices remove <id>` on a linked device',
  },
  INVALID_LINK_TOKEN: {
    exit: EXIT.REFUSED,
    hint: 'the approval expired or was already used: run `parley link --server URL` again on the new device and approve its new code',
  },
  MISMATCHED_DEVICES: { exit: EXIT.REFUSED, hint: (ctx) => `${peer(ctx)}'s devices changed while sending: run the command again` },
  STALE_DEVICES: { exit: EXIT.REFUSED, hint: (ctx) => `${peer(ctx)}'s devices changed while sending: run the command again` },
  ID_REUSED: { exit: EXIT.REFUSED, hint: BUG },
  BAD_ACK: { exit: EXIT.REFUSED, hint: BUG },
  QUEUE_FULL: {
    exit: EXIT.REFUSED,
    hint: (ctx) => `${peer(ctx)} has too many undelivered messages on the relay (offline for long?): try again later`,
  },
  RANGE_NOT_SATISFIABLE: { exit: EXIT.REFUSED, hint: 'the partial download does not fit the attachment: run download again (it starts over)' },
  RATE_LIMITED: {
    exit: EXIT.REFUSED,
    hint: (_ctx, err) => {
      const ms = retryAfter(err);
      return ms === undefined
        ? 'the relay is rate limiting this device: wait a little and try again'
        : `the relay is rate limiting this device: try again in ${Math.max(1, Math.ceil(ms / 1000))} s`;
    },
  },
  CONNECTED_ELSEWHERE: {
    exit: EXIT.REFUSED,
    hint: 'another process connected as this device (a `parley listen` or an app with the same profile): stop it first',
  },
  DEVICE_REMOVED: { exit: EXIT.REFUSED, hint: DEVICE_REMOVED_HINT },
  SERVER_SHUTDOWN: { exit: EXIT.REFUSED, hint: 'the relay is restarting: try again in a moment' },
  INTERNAL: { exit: EXIT.REFUSED, hint: 'the relay failed internally: try again later, and tell its operator if it persists' },
};

/** CryptoError codes of @parley/crypto (CRYPTO_ERROR_CODES). A test keeps them in step. */
export const CRYPTO_RULES: Readonly<Record<string, ErrorRule>> = {
  UNTRUSTED_IDENTITY: { exit: EXIT.CRYPTO, hint: IDENTITY_HINT },
  DUPLICATE_MESSAGE: { exit: EXIT.CRYPTO, hint: 'the message was already processed: nothing to do' },
  INVALID_MESSAGE: {
    exit: EXIT.CRYPTO,
    hint: 'a message could not be decrypted (damaged, or sent to an old session): ask the sender to send it again',
  },
  NO_SESSION: { exit: EXIT.CRYPTO, hint: 'there is no session with that device yet: run the command again' },
  INVALID_KEY: {
    exit: EXIT.CRYPTO,
    hint: "a key from the relay or a peer is malformed: if it persists, the peer's device may need to be linked again",
  },
  INVALID_SIGNATURE: {
    exit: EXIT.CRYPTO,
    hint: "a peer's prekey signature does not verify: do not trust that device until you compared safety numbers (`parley verify <address>`)",
  },
  UNKNOWN_PREKEY: {
    exit: EXIT.CRYPTO,
    hint: 'a message used a prekey this device no longer has: ask the sender to send it again',
  },
  INVALID_CERTIFICATE: {
    exit: EXIT.CRYPTO,
    hint: "a sealed message carried a sender certificate this device does not accept (expired, from an untrusted relay, or not the sender's key): it was dropped; check the device clock and the relay's trust root",
  },
  NO_SENDER_KEY: {
    exit: EXIT.CRYPTO,
    hint: "a group message came before the sender's group key (or the sender rotated it without this device): ask the sender to send it again",
  },
  INVALID_ATTACHMENT: {
    exit: EXIT.CRYPTO,
    hint: 'the downloaded file does not match what the sender sent (damaged or tampered with on the way); nothing was kept: run download again, or ask the sender to send it again',
  },
  INVALID_ARGUMENT: { exit: EXIT.INTERNAL, hint: BUG },
  INTERNAL: { exit: EXIT.INTERNAL, hint: BUG },
};

/** TransportError codes of @parley/client: the network path failed. */
export const TRANSPORT_RULES: Readonly<Record<string, ErrorRule>> = {
  UNREACHABLE: {
    exit: EXIT.NETWORK,
    hint: (ctx) => `cannot reach the relay at ${relay(ctx)} — is it running (npm start)? Check --server and the network`,
  },
  DISCONNECTED: {
    exit: EXIT.NETWORK,
    hint: (ctx) => `the connection to the relay at ${relay(ctx)} dropped before it answered: check the network and run the command again`,
  },
  TIMEOUT: {
    exit: EXIT.NETWORK,
    hint: (ctx) => `the relay at ${relay(ctx)} did not answer in time: check that it is running and reachable, then try again`,
  },
};

/** Node system errors (fs), which reach the CLI from opening a profile or writing an export. */
export const SYSTEM_RULES: Readonly<Record<string, ErrorRule>> = {
  EACCES: { exit: EXIT.PROFILE, hint: 'permission denied: check that you own the profile (or export) directory' },
  EPERM: { exit: EXIT.PROFILE, hint: 'operation not permitted: check that you own the profile (or export) directory' },
  EROFS: { exit: EXIT.PROFILE, hint: 'the file system is read-only: choose another --profile (or --out) directory' },
  ENOSPC: { exit: EXIT.PROFILE, hint: 'the disk is full: free some space and try again' },
  ENOENT: { exit: EXIT.NOT_FOUND, hint: 'a file or directory does not exist: check the paths you gave' },
  ENOTDIR: { exit: EXIT.PROFILE, hint: 'a path that must be a directory is a file: check --profile and --out' },
  EISDIR: { exit: EXIT.PROFILE, hint: 'a path that must be a file is a directory: check the paths you gave' },
  EEXIST: { exit: EXIT.PROFILE, hint: 'a file is in the way: choose another --out directory' },
};

const TABLES: Readonly<Record<ErrorOrigin, Readonly<Record<string, ErrorRule>>>> = {
  cli: CLI_RULES,
  client: CLIENT_RULES,
  wire: WIRE_RULES,
  crypto: CRYPTO_RULES,
  transport: TRANSPORT_RULES,
  system: SYSTEM_RULES,
};

/** What a known class with a code this version does not list exits with. */
const DEFAULT_EXIT: Readonly<Record<ErrorOrigin, ExitCode>> = {
  cli: EXIT.USAGE,
  client: EXIT.INTERNAL,
  wire: EXIT.REFUSED,
  crypto: EXIT.CRYPTO,
  transport: EXIT.NETWORK,
  system: EXIT.INTERNAL,
};

const ORIGIN_BY_NAME: Readonly<Record<string, ErrorOrigin>> = {
  CliError: 'cli',
  ClientError: 'client',
  ParleyError: 'wire',
  CryptoError: 'crypto',
  TransportError: 'transport',
};

/** Which table an error's code belongs to, or undefined for an error of unknown origin. */
export function errorOrigin(err: CodedError): ErrorOrigin | undefined {
  const byName = err.name === undefined ? undefined : ORIGIN_BY_NAME[err.name];
  if (byName) return byName;
  if (typeof (err as { syscall?: unknown }).syscall === 'string') return 'system';
  for (const origin of ['cli', 'client', 'transport', 'wire', 'crypto', 'system'] as const) {
    if (Object.hasOwn(TABLES[origin], err.code)) return origin;
  }
  return undefined;
}

/** The rule for `code` of `origin`, or undefined when the table lacks it. */
export function ruleFor(origin: ErrorOrigin, code: string): ErrorRule | undefined {
  const table = TABLES[origin];
  return Object.hasOwn(table, code) ? table[code] : undefined;
}

function isCoded(err: unknown): err is CodedError {
  return (
    typeof err === 'object' &&
    err !== null &&
    typeof (err as { code?: unknown }).code === 'string' &&
    (err as { code: string }).code.length > 0
  );
}

/** Strips characters that could steer a terminal out of a text we did not write. */
function printable(text: string): string {
  // eslint-disable-next-line no-control-regex -- the point is to remove control characters
  return text.replace(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g, '').trim();
}

/**
 * The report for any thrown value. Messages of typed errors are safe to show by contract
 * (they hold no key, secret or message text); errors without a code are bugs, exit 1.
 */
export function describeError(err: unknown, ctx: ErrorContext = {}): ErrorReport {
  if (!isCoded(err)) {
    const message = err instanceof Error ? err.message : String(err);
    return { exitCode: EXIT.INTERNAL, code: 'INTERNAL', message: printable(message) || 'unexpected error', hint: BUG };
  }
  const message = printable(typeof err.message === 'string' ? err.message : '') || err.code;
  const origin = errorOrigin(err);
  const rule = origin === undefined ? undefined : ruleFor(origin, err.code);
  if (rule === undefined) {
    return {
      exitCode: origin === undefined ? EXIT.INTERNAL : DEFAULT_EXIT[origin],
      code: err.code,
      message,
      hint: origin === 'wire' ? 'the relay refused the request' : BUG,
    };
  }
  const hint = typeof rule.hint === 'string' ? rule.hint : rule.hint(ctx, err);
  return { exitCode: rule.exit, code: err.code, message, hint };
}
