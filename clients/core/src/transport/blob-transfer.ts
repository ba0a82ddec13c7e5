// SPDX-License-Identifier: AGPL-3.0-only
/**
 * Moving encrypted attachment blobs over HTTP: a streamed PUT of exactly `size` bytes to an
 * upload slot (the relay's endpoint or a pre-signed object store URL), and a streamed GET from
 * an offset (Range) that follows the relay's redirect to an object store without sending the
 * device's credentials there. Relay refusals become ParleyErrors with their wire code; object
 * store refusals (XML bodies) are mapped by status; network failures are TransportErrors.
 */
import { Readable, Transform, type TransformCallback } from 'node:stream';
import { isErrorCode, ParleyError, type ErrorCode, type ErrorResponse } from '@parley/protocol';
import { connectFailure } from './connect-failure.js';
import { TransportError } from './transport-error.js';

/** Options of {@link uploadBlob}. */
export interface UploadBlobOptions {
  /** Absolute URL to PUT to. */
  readonly url: string;
  /** The slot's headers (an upload token), sent as they are. */
  readonly headers: Readonly<Record<string, string>>;
  /** Exact bytes `body` yields; sent as Content-Length. */
  readonly size: number;
  readonly body: Readable;
  /** Aborts the upload (a TransportError DISCONNECTED then). */
  readonly signal?: AbortSignal;
  /** The fetch to use. Default the global fetch. */
  readonly fetch?: typeof fetch;
}

/** Options of {@link openBlobDownload}. */
export interface BlobDownloadOptions {
  /** Absolute URL of the relay's GET route. */
  readonly url: string;
  /** The device's Authorization header, sent to the relay only. */
  readonly authorization: string;
  /** Bytes the caller has already; asked for with `Range: bytes=offset-` when above 0. */
  readonly offset: number;
  readonly signal?: AbortSignal;
  readonly fetch?: typeof fetch;
}

/** An open download. */
export type BlobDownload =
  /** `start` is where `body` begins (0 when the server sent the whole blob), `total` the blob's size. */
  | { readonly kind: 'bytes'; readonly start: number; readonly total: number; readonly body: Readable }
  /** The offset is at or past the end (HTTP 416): `total` is the blob's size when the server said it. */
  | { readonly kind: 'past-end'; readonly total: number | undefined };

/** Maps an error response to a ParleyError: the relay's own JSON code, else the status. */
async function refusal(res: Response): Promise<ParleyError> {
  const text = await res.text().catch(() => '');
  let parsed: Partial<ErrorResponse> = {};
  try {
    parsed = JSON.parse(text) as ErrorResponse;
  } catch {
    // An object store's XML, or a proxy's HTML.
  }
  if (typeof parsed.code === 'string' && isErrorCode(parsed.code)) {
    return new ParleyError(parsed.code, typeof parsed.message === 'string' ? parsed.message : parsed.code, parsed.retryAfterMs ? { retryAfterMs: parsed.retryAfterMs } : {});
  }
  const byStatus: Record<number, ErrorCode> = { 400: 'BAD_REQUEST', 401: 'UNAUTHORIZED', 403: 'UNAUTHORIZED', 404: 'NOT_FOUND', 413: 'FRAME_TOO_LARGE', 416: 'RANGE_NOT_SATISFIABLE', 429: 'RATE_LIMITED' };
  const code = byStatus[res.status] ?? (res.status >= 500 ? 'INTERNAL' : 'BAD_REQUEST');
  return new ParleyError(code, `the attachment storage answered ${res.status}`);
}

function networkFailure(err: unknown, url: string, signal: AbortSignal | undefined): TransportError {
  if (signal?.aborted || (err as Error).name === 'AbortError') return new TransportError('DISCONNECTED', 'the transfer was interrupted; run it again to resume');
  if ((err as Error).name === 'TimeoutError') return new TransportError('TIMEOUT', `no answer from ${new URL(url).origin} in time`);
  return connectFailure(err, new URL(url).origin);
}

/**
 * PUTs `body` to an upload slot. Resolves once the storage confirmed the upload.
 * @throws ParleyError for a refusal (FRAME_TOO_LARGE, UNAUTHORIZED for a used or expired slot…);
 *   TransportError when the connection failed or `signal` aborted; the body's own error.
 */
export async function uploadBlob(options: UploadBlobOptions): Promise<void> {
  const f = options.fetch ?? fetch;
  let bodyError: unknown;
  options.body.once('error', (err) => (bodyError = err));
  let res: Response;
  try {
    res = await f(options.url, {
      method: 'PUT',
      headers: { ...options.headers, 'content-type': 'application/octet-stream', 'content-length': String(options.size) },
      body: options.body as unknown as RequestInit['body'],
      // Node's fetch streams a request body only in half-duplex mode.
      duplex: 'half',
      redirect: 'error',
      ...(options.signal ? { signal: options.signal } : {}),
    } as RequestInit);
  } catch (err) {
    if (bodyError !== undefined) throw bodyError;
    throw networkFailure(err, options.url, options.signal);
  }
  if (!res.ok) throw await refusal(res);
  await res.arrayBuffer().catch(() => undefined);
}

/** `bytes START-END/TOTAL` → [start, total]. */
function contentRange(header: string | null): { start: number; total: number | undefined } | undefined {
  const m = /^bytes (\d+)-\d+\/(\d+|\*)$/.exec(header?.trim() ?? '');
  if (!m) return undefined;
  return { start: Number(m[1]), total: m[2] === '*' ? undefined : Number(m[2]) };
}

/**
 * GETs a blob from `offset` on. The relay answers with the bytes, or redirects to an object
 * store (followed once, without the Authorization header, which belongs to the relay alone).
 * @throws ParleyError for a refusal (NOT_FOUND, UNAUTHORIZED…); TransportError for the network.
 */
export async function openBlobDownload(options: BlobDownloadOptions): Promise<BlobDownload> {
  const f = options.fetch ?? fetch;
  const range: Record<string, string> = options.offset > 0 ? { range: `bytes=${options.offset}-` } : {};
  const get = async (url: string, headers: Record<string, string>): Promise<Response> => {
    try {
      return await f(url, { headers: { ...headers, ...range, 'accept-encoding': 'identity' }, redirect: 'manual', ...(options.signal ? { signal: options.signal } : {}) });
    } catch (err) {
      throw networkFailure(err, url, options.signal);
    }
  };
  let res = await get(options.url, { authorization: options.authorization });
  if (res.status >= 300 && res.status < 400) {
    await res.arrayBuffer().catch(() => undefined);
    const location = res.headers.get('location');
    let next: URL | undefined;
    try {
      next = location ? new URL(location, options.url) : undefined;
    } catch {
      next = undefined;
    }
    if (!next || (next.protocol !== 'https:' && next.protocol !== 'http:')) throw new ParleyError('BAD_REQUEST', 'the relay redirected the download somewhere this client does not follow');
    res = await get(next.href, {});
  }
  if (res.status === 416) {
    const total = /^bytes \*\/(\d+)$/.exec(res.headers.get('content-range')?.trim() ?? '');
    await res.arrayBuffer().catch(() => undefined);
    return { kind: 'past-end', total: total ? Number(total[1]) : undefined };
  }
  if (!res.ok || !res.body) throw await refusal(res);
  const body = Readable.fromWeb(res.body as import('node:stream/web').ReadableStream<Uint8Array>);
  if (res.status === 206) {
    const cr = contentRange(res.headers.get('content-range'));
    if (!cr || cr.total === undefined) {
      body.destroy();
      throw new ParleyError('BAD_REQUEST', 'the attachment storage sent a range without its size');
    }
    return { kind: 'bytes', start: cr.start, total: cr.total, body };
  }
  const length = Number(res.headers.get('content-length') ?? Number.NaN);
  if (!Number.isSafeInteger(length)) {
    body.destroy();
    throw new ParleyError('BAD_REQUEST', 'the attachment storage sent no length');
  }
  return { kind: 'bytes', start: 0, total: length, body };
}

/**
 * A pass-through stream that reports progress: `onProgress(done)` with the running byte count
 * (starting at `start`), at most every `stepBytes` and once at the end.
 */
export function progressCounter(start: number, onProgress: (done: number) => void, stepBytes = 256 * 1024): Transform {
  let done = start;
  let reported = start;
  return new Transform({
    transform(chunk: Buffer, _enc, cb: TransformCallback) {
      done += chunk.length;
      if (done - reported >= stepBytes) {
        reported = done;
        onProgress(done);
      }
      cb(null, chunk);
    },
    flush(cb: TransformCallback) {
      if (reported !== done) onProgress(done);
      cb();
    },
  });
}
