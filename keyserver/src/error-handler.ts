// SPDX-License-Identifier: AGPL-3.0-only
/**
 * Maps anything a route throws to the wire error body `{ code, message, retryAfterMs? }` with the
 * code's HTTP status. Exported so the relay answers its own routes the same way.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { isParleyError, ParleyError, type ErrorResponse } from '@parley/protocol';

interface FrameworkError {
  code?: unknown;
  statusCode?: unknown;
  validation?: unknown;
  message?: unknown;
}

/**
 * The ParleyError a thrown value stands for: ParleyErrors as they are; fastify's schema
 * validation errors → BAD_REQUEST; oversize bodies → FRAME_TOO_LARGE; other client errors
 * fastify raises while reading the request (bad JSON, wrong content type) → BAD_REQUEST with a
 * fixed message; anything else → INTERNAL, whose message never carries the cause.
 */
export function toParleyError(error: unknown): ParleyError {
  if (isParleyError(error)) return error;
  const e = (typeof error === 'object' && error !== null ? error : {}) as FrameworkError;
  if (e.validation !== undefined) {
    // Ajv's messages name the field and the rule (from the schema), never the value.
    return new ParleyError('BAD_REQUEST', typeof e.message === 'string' ? e.message : 'the request does not match its schema');
  }
  if (e.code === 'FST_ERR_CTP_BODY_TOO_LARGE' || e.statusCode === 413) {
    return new ParleyError('FRAME_TOO_LARGE', 'the request body is over the size limit');
  }
  if (e.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE' || e.statusCode === 415) {
    return new ParleyError('BAD_REQUEST', 'the request body must be application/json');
  }
  if (typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) {
    return new ParleyError('BAD_REQUEST', 'the request is malformed');
  }
  return new ParleyError('INTERNAL', 'internal error');
}

/**
 * A fastify error handler: answers `{ code, message, retryAfterMs? }` with the code's status
 * (and `Retry-After` in whole seconds for RATE_LIMITED). INTERNAL errors are logged with their
 * cause on the request's logger; nothing of the cause reaches the client.
 */
export function keyServerErrorHandler(error: unknown, request: FastifyRequest, reply: FastifyReply): void {
  const e = toParleyError(error);
  if (e.code === 'INTERNAL') request.log.error({ err: error, method: request.method, route: request.routeOptions.url }, 'request failed');
  const body: ErrorResponse = { code: e.code, message: e.message };
  const retryAfterMs = e.details.retryAfterMs;
  if (retryAfterMs !== undefined) {
    body.retryAfterMs = retryAfterMs;
    void reply.header('retry-after', String(Math.max(1, Math.ceil(retryAfterMs / 1000))));
  }
  void reply.status(e.status).send(body);
}
