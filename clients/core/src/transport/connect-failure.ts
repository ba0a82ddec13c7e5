// SPDX-License-Identifier: AGPL-3.0-only
/**
 * Turns a failed connection (fetch's "fetch failed", a `ws` error event) into a TransportError
 * whose message says what went wrong, above all when the relay's TLS certificate is not trusted:
 * "cannot reach the relay" would send a user looking for a stopped server.
 *
 * Clients trust the system's certificate authorities. A relay with a certificate from a private
 * CA is trusted by starting the client with `NODE_EXTRA_CA_CERTS=/path/to/ca.pem` (Node reads it
 * once at start, and it applies to fetch and WebSockets alike).
 */
import { TransportError } from './transport-error.js';

/** Node / OpenSSL codes of a certificate the client refused. */
const UNTRUSTED_CERTIFICATE = new Set([
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_REVOKED',
  'CERT_SIGNATURE_FAILURE',
  'INVALID_CA',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

/** Codes of a TLS handshake that failed before any certificate was judged (e.g. HTTPS to a plain HTTP port). */
const HANDSHAKE_FAILED = new Set(['EPROTO', 'ERR_SSL_WRONG_VERSION_NUMBER', 'ERR_SSL_PACKET_LENGTH_TOO_LONG']);

/** The first `code` along `err` and its `cause` chain. */
export function failureCode(err: unknown): string | undefined {
  let e: unknown = err;
  for (let depth = 0; depth < 5 && typeof e === 'object' && e !== null; depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && code.length > 0) return code;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}

/** Whether `code` means the relay's certificate was refused. */
export function isUntrustedCertificate(code: string | undefined): boolean {
  return code !== undefined && UNTRUSTED_CERTIFICATE.has(code);
}

/**
 * The TransportError (UNREACHABLE) for a connection to `url` that failed with `err`. The message
 * names the system code and, for certificate failures, what to do; it holds nothing secret.
 */
export function connectFailure(err: unknown, url: string): TransportError {
  const code = failureCode(err);
  if (isUntrustedCertificate(code)) {
    return new TransportError(
      'UNREACHABLE',
      `the relay at ${url} presented a TLS certificate this device does not trust (${code}); ` +
        'if the relay uses a private certificate authority, start the client with NODE_EXTRA_CA_CERTS=/path/to/ca.pem',
    );
  }
  if (code !== undefined && HANDSHAKE_FAILED.has(code)) {
    return new TransportError('UNREACHABLE', `the TLS handshake with the relay at ${url} failed (${code}): does it serve HTTPS on that port?`);
  }
  return new TransportError('UNREACHABLE', `cannot reach the relay at ${url}${code ? ` (${code})` : ''}`);
}
