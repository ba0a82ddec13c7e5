// SPDX-License-Identifier: AGPL-3.0-only
/**
 * The error codes that cross the wire, one registry for the whole protocol. Each code has the
 * HTTP status it is answered with on REST, and — where it ends a WebSocket — the close code.
 * docs/protocol.md documents every entry; a test keeps the two in step.
 */

/** What a code means on the wire. */
export interface ErrorCodeInfo {
  /** HTTP status on REST endpoints (and on a refused WebSocket upgrade). */
  readonly status: number;
  /** WebSocket close code when the error ends the connection; undefined when it does not. */
  readonly close?: number;
  /** One line for docs and developers. */
  readonly summary: string;
}

/** Every wire error code. Codes are stable: never rename or reuse one. */
export const ERROR_CODES = {
  BAD_REQUEST: { status: 400, summary: 'The request or frame is malformed: undecodable bytes, a missing or out-of-range field.' },
  BAD_FRAME: { status: 400, summary: 'A WebSocket message is not a decodable binary Frame (text message, garbage or truncated protobuf).' },
  UNKNOWN_FRAME: { status: 400, summary: 'The Frame holds no kind this relay knows, or a kind that only the relay sends.' },
  FRAME_TOO_LARGE: { status: 413, close: 1009, summary: 'A WebSocket message or HTTP body is over the size limit; a WebSocket is closed with 1009.' },
  UNAUTHORIZED: { status: 401, close: 4401, summary: 'Missing, malformed or wrong credentials, or an unknown account or device. Deliberately one code for all, so it reveals nothing.' },
  NOT_FOUND: { status: 404, summary: 'The named account, device or username does not exist.' },
  USERNAME_TAKEN: { status: 409, summary: 'The username is already registered on this relay.' },
  INVALID_SIGNATURE: { status: 422, summary: 'A signed prekey or Kyber prekey signature does not verify against the account identity key.' },
  INVALID_KEY: { status: 422, summary: 'A public key is not a well-formed key of its kind.' },
  TOO_MANY_KEYS: { status: 413, summary: 'An upload holds more one-time prekeys than a batch allows, or would exceed the stored cap.' },
  DEVICE_LIMIT: { status: 409, summary: 'The account already has the operator-set maximum number of devices.' },
  INVALID_LINK_TOKEN: { status: 403, summary: 'A device linking token is unknown, used or expired.' },
  MISMATCHED_DEVICES: { status: 409, summary: 'The send did not name exactly the destination account\u2019s devices; `missing_devices` and `extra_devices` say how to fix it.' },
  STALE_DEVICES: { status: 410, summary: 'Some named devices have a different registration id (they were re-registered); `stale_devices` lists them.' },
  ID_REUSED: { status: 409, summary: 'The message id was already used for this device with a different body. A retry must resend the same bytes.' },
  BAD_ACK: { status: 400, summary: 'An ack names a sequence number that was not delivered on this connection. Nothing was deleted.' },
  QUEUE_FULL: { status: 507, summary: 'A destination device\u2019s queue is at its cap; nothing of the send was queued. Retry later.' },
  RANGE_NOT_SATISFIABLE: { status: 416, summary: 'A download\u2019s byte range starts at or past the end of the attachment; `Content-Range: bytes */SIZE` gives its size.' },
  RATE_LIMITED: { status: 429, summary: 'Too many requests; `retry_after_ms` (or the Retry-After header) says when to retry.' },
  CONNECTED_ELSEWHERE: { status: 409, close: 4409, summary: 'Another connection of the same device took over the queue; this one is closed.' },
  DEVICE_REMOVED: { status: 401, close: 4403, summary: 'The device was removed from its account while connected; it can no longer connect.' },
  SERVER_SHUTDOWN: { status: 503, close: 1012, summary: 'The relay is shutting down or restarting; reconnect (to another relay if there is one).' },
  INTERNAL: { status: 500, close: 1011, summary: 'A bug or an unavailable backend on the relay. The request had no effect unless answered otherwise.' },
} as const satisfies Record<string, ErrorCodeInfo>;

/** A stable wire error code. */
export type ErrorCode = keyof typeof ERROR_CODES;

/** True when `code` is a known wire error code. */
export function isErrorCode(code: string): code is ErrorCode {
  return Object.hasOwn(ERROR_CODES, code);
}

/** One recipient of a SendMulti whose device set was wrong (the `RecipientDevices` frame part). */
export interface RecipientDeviceDetails {
  /** The recipient's ACI in text form. */
  readonly aci: string;
  readonly missingDevices: readonly number[];
  readonly extraDevices: readonly number[];
  readonly staleDevices: readonly number[];
}

/** Structured details some codes carry (see the `Error` frame). */
export interface ErrorDetails {
  missingDevices?: readonly number[];
  extraDevices?: readonly number[];
  staleDevices?: readonly number[];
  fullDevices?: readonly number[];
  retryAfterMs?: number;
  /** SendMulti with MISMATCHED_DEVICES or STALE_DEVICES: every recipient whose device set was wrong. */
  recipients?: readonly RecipientDeviceDetails[];
}

/**
 * An error with a stable wire code. Messages never hold user content, keys or secrets, so an
 * error can be logged and sent as it is.
 */
export class ParleyError extends Error {
  override readonly name = 'ParleyError';
  /** The stable code. */
  readonly code: ErrorCode;
  /** Details for codes that carry them. */
  readonly details: ErrorDetails;

  constructor(code: ErrorCode, message: string = ERROR_CODES[code].summary, details: ErrorDetails = {}) {
    super(message);
    this.code = code;
    this.details = details;
  }

  /** Narrowing check, as libsignal's `LibSignalError.is`. */
  is<C extends ErrorCode>(code: C): this is ParleyError & { code: C } {
    return this.code === code;
  }

  /** HTTP status for this error. */
  get status(): number {
    return ERROR_CODES[this.code].status;
  }
}

/** True when `err` is a ParleyError, optionally with the given code. */
export function isParleyError(err: unknown, code?: ErrorCode): err is ParleyError {
  return err instanceof ParleyError && (code === undefined || err.code === code);
}
