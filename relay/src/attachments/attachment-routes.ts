// SPDX-License-Identifier: AGPL-3.0-only
/**
 * The attachment routes (DESIGN §9), mounted with one call from the relay's composition:
 *
 * - `POST /v1/attachments { size }` (device auth, rate limited per device): an upload slot for
 *   exactly `size` bytes (at most the encrypted size of a `maxAttachmentBytes` file, else
 *   FRAME_TOO_LARGE): a pre-signed
 *   PUT URL of the object store, or this relay's own PUT endpoint with a single-use token.
 * - `PUT /v1/attachments/{id}` (upload token): streams the body into the blob store with the
 *   slot's size as a hard cap (FRAME_TOO_LARGE, nothing stored) — only for the filesystem store.
 * - `GET /v1/attachments/{id}` (device auth): the blob, with single byte ranges (206, 416) for
 *   resumable downloads; or, for the object store, a redirect to a short-lived pre-signed GET.
 *
 * Ids are checked (32 lowercase hex) before the store sees them. The relay never fetches a URL a
 * client gave it: clients send sizes and ids, never addresses (no SSRF); the only outbound
 * requests go to the operator's configured object store. Blobs expire `retentionMs` after they
 * were stored, by a sweep on the relay's expiry interval.
 */
import { Readable } from 'node:stream';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { enforceRateLimit, strictValidatorCompiler, type RateLimiterBackend } from '@parley/keyserver';
import { HTTP_ROUTES, ParleyError, type AttachmentSlotRequest, type AttachmentSlotResponse } from '@parley/protocol';
import type { Clock } from '../clock.js';
import { isBlobStoreError, newBlobId, parseBlobId, type BlobId, type BlobStore } from '../ports/blob-store.js';
import { maxBlobBytes } from './attachment-config.js';
import { UPLOAD_TOKEN_HEADER, type UploadTokens } from './upload-tokens.js';

/** How long an upload slot can be used to start an upload, ms. */
export const UPLOAD_SLOT_TTL_MS = 15 * 60_000;
/** How long a pre-signed download URL stays valid, ms (the redirect is followed at once). */
export const DOWNLOAD_URL_TTL_MS = 5 * 60_000;
/** Blobs one expiry call deletes at most; a sweep repeats calls until one comes back short. */
export const BLOB_EXPIRY_BATCH = 1000;

/** The blob store and the upload tokens of its slots, as the composition root opened them. */
export interface AttachmentStorage {
  readonly store: BlobStore;
  /** Redeems the tokens of slots on the relay's own endpoint (the filesystem store issues them). */
  readonly tokens: UploadTokens;
}

/** The settings the routes read (RelayConfig has them). */
export interface AttachmentSettings {
  /** Largest attachment (the file), bytes; blobs may be as large as its encrypted form. */
  readonly maxAttachmentBytes: number;
  /** Upload slots per device per hour. */
  readonly attachmentSlotsPerHour: number;
  /** Blobs are deleted this long after they were stored, ms. */
  readonly retentionMs: number;
  /** Interval of the expiry sweep, ms. */
  readonly expirySweepIntervalMs: number;
}

/** What the routes need. */
export interface AttachmentRoutesDeps {
  readonly storage: AttachmentStorage;
  readonly directory: { authenticate(authorization: string | undefined, clientKey: string): Promise<{ aci: string; deviceId: number }> };
  readonly clock: Clock;
  readonly log: Logger;
  readonly config: AttachmentSettings;
  /** Where the slot limiter keeps its buckets (shared by every node with Redis). */
  readonly limiters: RateLimiterBackend;
}

const HOUR = 3_600_000;

const slotBodySchema = {
  type: 'object',
  additionalProperties: false,
  required: ['size'],
  properties: { size: { type: 'integer', minimum: 1, maximum: Number.MAX_SAFE_INTEGER } },
} as const;

/** Blob store refusals as wire errors; the store's messages hold ids at most. */
function toWireError(err: unknown): unknown {
  if (!isBlobStoreError(err)) return err;
  switch (err.code) {
    case 'INVALID_ID':
      return new ParleyError('BAD_REQUEST', 'an attachment id is 32 lowercase hex characters');
    case 'NOT_FOUND':
      return new ParleyError('NOT_FOUND', 'no such attachment (never uploaded, or expired)');
    case 'TOO_LARGE':
      return new ParleyError('FRAME_TOO_LARGE', 'the upload is larger than its slot');
    case 'TRUNCATED':
      return new ParleyError('BAD_REQUEST', 'the upload ended before the size of its slot');
    case 'EXISTS':
      return new ParleyError('BAD_REQUEST', 'that attachment was uploaded already');
    case 'RANGE_NOT_SATISFIABLE':
      return new ParleyError('RANGE_NOT_SATISFIABLE', 'the range starts at or past the end of the attachment');
    default:
      return new ParleyError('INTERNAL', 'attachment storage is unavailable');
  }
}

/**
 * A single byte range of a `size`-byte blob from a Range header: undefined for none, or for one
 * this relay ignores (another unit, several ranges, malformed — answered with the whole blob,
 * as RFC 9110 allows); 'unsatisfiable' for one that starts at or past the end.
 */
export function parseRangeHeader(header: string | undefined, size: number): { start: number; end: number } | 'unsatisfiable' | undefined {
  if (header === undefined) return undefined;
  const m = /^bytes=(\d{0,15})-(\d{0,15})$/.exec(header.trim());
  if (!m || (m[1] === '' && m[2] === '')) return undefined;
  if (m[1] === '') {
    const suffix = Number(m[2]);
    if (suffix === 0 || size === 0) return 'unsatisfiable';
    return { start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(m[1]);
  if (m[2] !== '' && Number(m[2]) < start) return undefined;
  if (start >= size) return 'unsatisfiable';
  return { start, end: m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1) };
}

/** What {@link registerAttachmentRoutes} gives back. */
export interface AttachmentRoutes {
  /** Runs one expiry sweep now (tests; the interval runs it anyway). */
  sweep(): Promise<void>;
}

/** Registers the routes and the expiry sweep on `app`; both stop (and the store closes) with it. */
export function registerAttachmentRoutes(app: FastifyInstance, deps: AttachmentRoutesDeps): AttachmentRoutes {
  const { storage, directory, clock, log, config } = deps;
  const { store, tokens } = storage;
  const blobCap = maxBlobBytes(config.maxAttachmentBytes);
  const slotLimiter = deps.limiters.limiter('attachmentSlots', { capacity: config.attachmentSlotsPerHour, windowMs: HOUR });

  const authenticate = async (req: FastifyRequest) => directory.authenticate(req.headers.authorization, req.ip);

  void app.register(async (scope) => {
    scope.setValidatorCompiler(strictValidatorCompiler);
    // Upload bodies stay streams: they go into the store chunk by chunk, never into memory.
    scope.addContentTypeParser('application/octet-stream', (_req, payload, done) => done(null, payload));

    scope.post<{ Body: AttachmentSlotRequest }>(
      HTTP_ROUTES.attachments,
      {
        // Credentials first: an unauthenticated request learns nothing, not even about its body.
        preValidation: async (req) => {
          const who = await authenticate(req);
          await enforceRateLimit(slotLimiter, `${who.aci}.${who.deviceId}`);
          (req as FastifyRequest & { device?: string }).device = `${who.aci}.${who.deviceId}`;
        },
        schema: { body: slotBodySchema },
      },
      async (req): Promise<AttachmentSlotResponse> => {
        const { size } = req.body;
        if (size > blobCap) {
          throw new ParleyError('FRAME_TOO_LARGE', `attachments are at most ${config.maxAttachmentBytes} bytes on this relay`);
        }
        const id = newBlobId();
        const slot = await store.createUploadSlot(id, { size, expiresAt: clock.now() + UPLOAD_SLOT_TTL_MS }).catch((e: unknown) => {
          throw toWireError(e);
        });
        log.debug({ blob: id, size, device: (req as FastifyRequest & { device?: string }).device }, 'attachment upload slot issued');
        return { id: slot.id, uploadUrl: slot.uploadUrl, headers: { ...slot.headers }, size: slot.size, expiresAt: slot.expiresAt };
      },
    );

    scope.put<{ Params: { id: string } }>(HTTP_ROUTES.attachment, async (req, reply) => {
      let id: BlobId;
      try {
        id = parseBlobId(req.params.id);
      } catch (err) {
        throw toWireError(err);
      }
      const token = req.headers[UPLOAD_TOKEN_HEADER];
      const slot = tokens.redeem(id, typeof token === 'string' ? token : undefined);
      if (!slot) throw new ParleyError('UNAUTHORIZED', 'the upload token is missing, wrong, used or expired: ask for a new slot');
      const declared = req.headers['content-length'];
      if (declared !== undefined && Number(declared) > slot.size) {
        // Refused before a byte is read; the connection closes instead of draining the body.
        void reply.header('connection', 'close');
        throw new ParleyError('FRAME_TOO_LARGE', 'the upload is larger than its slot');
      }
      const body = req.body;
      if (body !== undefined && !(body instanceof Readable)) throw new ParleyError('BAD_REQUEST', 'send the bytes as application/octet-stream');
      try {
        await store.put(id, body ?? Readable.from([]), { size: slot.size });
      } catch (err) {
        if (isBlobStoreError(err, 'TOO_LARGE')) void reply.header('connection', 'close');
        if (!isBlobStoreError(err)) {
          // The client went away mid-upload: nothing was stored, and nobody is left to answer.
          log.debug({ blob: id }, 'attachment upload aborted');
          throw new ParleyError('BAD_REQUEST', 'the upload was interrupted');
        }
        throw toWireError(err);
      }
      log.debug({ blob: id, size: slot.size }, 'attachment stored');
      return reply.status(201).send({ id });
    });

    scope.get<{ Params: { id: string } }>(HTTP_ROUTES.attachment, { preValidation: async (req) => void (await authenticate(req)) }, async (req, reply) => {
      try {
        const id = parseBlobId(req.params.id);
        const info = await store.head(id);
        if (!info) throw new ParleyError('NOT_FOUND', 'no such attachment (never uploaded, or expired)');
        const direct = await store.createDownloadUrl(id, clock.now() + DOWNLOAD_URL_TTL_MS);
        if (direct) return await reply.status(302).header('location', direct).header('cache-control', 'no-store').send();
        const range = parseRangeHeader(req.headers.range, info.size);
        if (range === 'unsatisfiable') {
          void reply.header('content-range', `bytes */${info.size}`);
          throw new ParleyError('RANGE_NOT_SATISFIABLE', 'the range starts at or past the end of the attachment');
        }
        const read = await store.get(id, range);
        void reply
          .header('content-type', 'application/octet-stream')
          .header('accept-ranges', 'bytes')
          .header('cache-control', 'no-store')
          .header('content-length', String(read.end - read.start + 1));
        if (range) void reply.status(206).header('content-range', `bytes ${read.start}-${read.end}/${read.size}`);
        return await reply.send(read.stream);
      } catch (err) {
        throw toWireError(err);
      }
    });
  });

  // Each expire call is bounded; a sweep repeats it, yielding in between, until a call comes
  // back short. One sweep at a time.
  let sweeping = false;
  let closed = false;
  const sweepOnce = async (): Promise<void> => {
    if (sweeping || closed) return;
    sweeping = true;
    try {
      tokens.prune();
      let total = 0;
      for (;;) {
        const n = await store.expire(clock.now() - config.retentionMs, BLOB_EXPIRY_BATCH);
        total += n;
        if (n < BLOB_EXPIRY_BATCH || closed) break;
        await new Promise((r) => setImmediate(r));
      }
      if (total > 0) log.info({ blobs: total }, 'expired attachments deleted');
    } catch (err) {
      log.error({ err }, 'attachment expiry sweep failed');
    } finally {
      sweeping = false;
    }
  };
  const sweep = setInterval(() => void sweepOnce(), config.expirySweepIntervalMs);
  sweep.unref();
  app.addHook('onClose', async () => {
    closed = true;
    clearInterval(sweep);
    await store.close();
  });
  return { sweep: sweepOnce };
}
