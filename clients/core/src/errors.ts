// SPDX-License-Identifier: AGPL-3.0-only
/**
 * The one error registry of @parley/client. Codes are stable strings: callers branch on them,
 * never on messages. Messages are fixed texts or name files and ids; they never hold a key, a
 * passphrase, a secret or message text (CONVENTIONS 7, 8). Wire errors keep their
 * `ParleyError` from @parley/protocol; crypto failures keep their `CryptoError`.
 */

/** Every code a {@link ClientError} can carry, with what it means. Never rename or reuse one. */
export const CLIENT_ERROR_CODES = {
  INVALID_ARGUMENT: 'An argument is missing, of the wrong type or out of range.',
  NOT_FOUND: 'The named conversation, message or outbox entry does not exist in the local store.',
  WRONG_PASSPHRASE: 'The passphrase or key file does not open this profile’s database.',
  PASSPHRASE_REQUIRED: 'The profile is protected by a passphrase and none was given.',
  KEY_MODE_MISMATCH: 'A passphrase was given, but the profile is protected by a key file (db.key), not a passphrase.',
  KEY_FILE_PERMISSIONS: 'The key file is accessible to other users of the machine; restrict it with `chmod 600`.',
  KEY_FILE_INVALID: 'The key file or salt file is not in the expected format (truncated or replaced).',
  KEY_MISSING: 'The database exists but its key file (db.key) or salt file (db.salt) is gone; it cannot be opened.',
  PROFILE_IN_USE: 'Another process (or another open store in this one) holds the profile’s database.',
  DATABASE_TOO_NEW: 'The database was written by a newer version of Parley; this version refuses to open it.',
  SCHEMA_MISMATCH: 'The database records a migration this version does not know under that number.',
  NO_ACCOUNT: 'The profile has no account yet: register or link a device first.',
  ASYNC_TRANSACTION: 'A transaction body returned a promise; transactions are synchronous and it was rolled back.',
  STAGE_FINISHED: 'A staged protocol store was used after commit() or discard().',
  INVALID_LINK_CODE: 'The text is not a Parley link code (copy the whole line the new device shows).',
  IDENTITY_CHANGED: 'The peer’s identity key changed; nothing is sent to it until the user compares safety numbers and accepts the new key.',
  DEVICE_REMOVED: 'This device was removed from its account, or its credentials are no longer valid.',
  STAGE_CONFLICT: 'Protocol state a staged overlay read was changed underneath it; nothing was applied: decrypt again.',
  NOT_GROUP_MEMBER: 'This account is not a member of the group (it left or was removed), or a named account is not a member.',
  NOT_GROUP_ADMIN: 'Only an admin of the group may make this change.',
  GROUP_FULL: 'The group would have more than 1,000 members.',
  AMBIGUOUS_GROUP: 'More than one group matches the name or id prefix; give more of the id.',
  NOT_AUTHOR: 'Only the author of a message can edit it or delete it for everyone.',
  TOO_LATE: 'The message is older than the window for editing or deleting it for everyone (24 hours).',
  BLOCKED: 'The contact is blocked: nothing is sent to it until it is unblocked.',
  SETTING_OFF: 'The feature is turned off in this account’s privacy settings (`parley settings`).',
  TRUST_ROOT_CHANGED:
    'The relay announces a sealed-sender trust root other than the one this device pinned; it is refused, and messages go out identified.',
  SEALED_SENDER_UNAVAILABLE:
    'The relay offers no sealed sender (no trust root announced) or handed out a sender certificate that is not valid for this device.',
} as const;

/** A stable @parley/client error code. */
export type ClientErrorCode = keyof typeof CLIENT_ERROR_CODES;

/** Options of a {@link ClientError}. */
export interface ClientErrorOptions {
  /** The underlying failure, for debugging; never shown to a peer. */
  readonly cause?: unknown;
}

/** A failure of the client engine, narrowed with {@link ClientError.is}. */
export class ClientError extends Error {
  /** Stable code; see {@link CLIENT_ERROR_CODES}. */
  readonly code: ClientErrorCode;

  /** `message` must not contain keys, secrets, passphrases or message text. */
  constructor(code: ClientErrorCode, message: string = CLIENT_ERROR_CODES[code], options: ClientErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'ClientError';
    this.code = code;
  }

  /** True when this error has `code`. */
  is<C extends ClientErrorCode>(code: C): this is ClientError & { readonly code: C } {
    return this.code === code;
  }

  /** True when `err` is a ClientError with `code`. */
  static is<C extends ClientErrorCode>(err: unknown, code: C): err is ClientError & { readonly code: C } {
    return err instanceof ClientError && err.code === code;
  }
}
