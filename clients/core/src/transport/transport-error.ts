// SPDX-License-Identifier: AGPL-3.0-only
/** Failures of the network path itself (as opposed to a relay's typed refusal, a ParleyError). */
export type TransportErrorCode =
  /** The relay could not be reached (connection refused, DNS, TLS). */
  | 'UNREACHABLE'
  /** The connection dropped before the request was answered; it may or may not have been processed. */
  | 'DISCONNECTED'
  /** No answer within the deadline. */
  | 'TIMEOUT';

/** See TransportErrorCode. Every transport error is retryable; retries must reuse message ids. */
export class TransportError extends Error {
  override readonly name = 'TransportError';
  readonly code: TransportErrorCode;
  constructor(code: TransportErrorCode, message: string) {
    super(message);
    this.code = code;
  }
}
