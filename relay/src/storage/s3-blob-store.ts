// SPDX-License-Identifier: AGPL-3.0-only
/**
 * The cluster blob store: any S3-compatible object store (AWS S3, MinIO, Ceph…) through
 * `@aws-sdk/client-s3`. Blobs are objects `<prefix><id>` in one bucket. Clients upload and
 * download directly with pre-signed URLs, so attachment bytes never pass through a relay:
 * - an upload slot is a pre-signed PUT whose signature covers `Content-Length`, so the service
 *   refuses a body of any other size (the relay's cap holds without the relay seeing the bytes);
 * - a download is a pre-signed GET (Range works on it as on any object).
 *
 * `put` (used by tools and tests; clients use slots) streams exactly the declared size to a
 * temporary key, holding back the last chunk until the source has ended so the service never
 * receives a complete body of the wrong length, then copies it into place (services differ in
 * what they keep of an aborted upload; whatever it is stays under the temporary key, which
 * expiry removes). Expiry lists the prefix and deletes objects older than the cutoff; a bucket
 * lifecycle rule can do the same server-side (docs/operations.md).
 */
import {
  CopyObjectCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
} from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import type { Clock } from '../clock.js';
import {
  BLOB_ID_PATTERN,
  BlobStoreError,
  isBlobStoreError,
  parseBlobId,
  resolveRange,
  type BlobId,
  type BlobInfo,
  type BlobRead,
  type BlobStore,
  type ByteRange,
  type UploadSlot,
} from '../ports/blob-store.js';

/** Options of {@link openS3BlobStore}. */
export interface S3BlobStoreOptions {
  /** The bucket; it must exist. */
  readonly bucket: string;
  /** Region name; any for most S3-compatible services. Default us-east-1. */
  readonly region?: string;
  /** Service URL (MinIO, Ceph, a test server); default AWS for the region. */
  readonly endpoint?: string;
  /** Path-style URLs (`endpoint/bucket/key`), which most non-AWS services need. Default false. */
  readonly forcePathStyle?: boolean;
  /** Static credentials; default the SDK's credential chain (instance role, shared config). */
  readonly credentials?: { readonly accessKeyId: string; readonly secretAccessKey: string };
  /** Key prefix of every blob. Default `attachments/`. */
  readonly prefix?: string;
  /** Signs URLs (their validity counts from this clock's now). */
  readonly clock: Clock;
  /** Objects deleted in parallel during expiry. Default 16. */
  readonly deleteConcurrency?: number;
  /** Where the SDK's own warnings go (the relay's logger). Default nowhere. */
  readonly log?: S3SdkLogger;
}

/** The logger shape the AWS SDK writes to. */
export interface S3SdkLogger {
  debug(...content: unknown[]): void;
  info(...content: unknown[]): void;
  warn(...content: unknown[]): void;
  error(...content: unknown[]): void;
}

const SILENT_SDK_LOGGER: S3SdkLogger = Object.freeze({ debug() {}, info() {}, warn() {}, error() {} });

/** Sub-prefix of temporary upload keys (never a blob id, which is hex only). */
const TMP_DIR = 'tmp/';

/** Pre-signed URLs are valid at most this long (S3's limit is 7 days), seconds. */
const MAX_PRESIGN_SECONDS = 7 * 24 * 3600;

/** Opens the store (no request is made until it is used). */
export function openS3BlobStore(options: S3BlobStoreOptions): BlobStore {
  const { bucket, clock } = options;
  const prefix = options.prefix ?? 'attachments/';
  const concurrency = options.deleteConcurrency ?? 16;
  const client = new S3Client({
    region: options.region ?? 'us-east-1',
    ...(options.endpoint ? { endpoint: options.endpoint } : {}),
    forcePathStyle: options.forcePathStyle ?? false,
    ...(options.credentials ? { credentials: { ...options.credentials } } : {}),
    // Without this the SDK adds a CRC32 of the (empty) body to pre-signed PUT URLs, which the
    // service then checks against the real body and refuses, and it would send streamed bodies
    // with checksum trailers that not every S3-compatible service accepts.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    // The SDK prints some warnings to the console unless it has a logger of its own.
    logger: options.log ?? SILENT_SDK_LOGGER,
  });

  const keyOf = (id: BlobId): string => {
    if (!BLOB_ID_PATTERN.test(id)) throw new BlobStoreError('INVALID_ID');
    return `${prefix}${id}`;
  };

  const statusOf = (err: unknown): number | undefined => (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
  const unavailable = (err: unknown): BlobStoreError =>
    isBlobStoreError(err)
      ? err
      : new BlobStoreError('UNAVAILABLE', `the object store failed: ${err instanceof S3ServiceException ? err.name : ((err as Error).name ?? 'error')}`, { cause: err });

  async function head(id: BlobId): Promise<BlobInfo | undefined> {
    try {
      const h = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: keyOf(id) }));
      return { size: h.ContentLength ?? 0, storedAt: h.LastModified?.getTime() ?? 0 };
    } catch (err) {
      if (statusOf(err) === 404) return undefined;
      throw unavailable(err);
    }
  }

  async function remove(id: BlobId): Promise<boolean> {
    // DeleteObject answers alike whether the key existed or not.
    const existed = (await head(id)) !== undefined;
    try {
      await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: keyOf(id) }));
    } catch (err) {
      throw unavailable(err);
    }
    return existed;
  }

  /** Up to `limit` keys under `keyPrefix` last modified before `cutoffMs` (whose rest passes `accept`). */
  async function listKeys(keyPrefix: string, cutoffMs: number, limit: number, accept: (rest: string) => boolean = () => true): Promise<string[]> {
    const out: string[] = [];
    let token: string | undefined;
    do {
      let page;
      try {
        page = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: keyPrefix, ContinuationToken: token, MaxKeys: 1000 }));
      } catch (err) {
        throw unavailable(err);
      }
      for (const o of page.Contents ?? []) {
        if (!o.Key?.startsWith(keyPrefix) || !accept(o.Key.slice(keyPrefix.length))) continue;
        if ((o.LastModified?.getTime() ?? 0) < cutoffMs) {
          out.push(o.Key);
          if (out.length >= limit) return out;
        }
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    return out;
  }

  async function listExpired(cutoffMs: number, limit: number): Promise<BlobId[]> {
    const keys = await listKeys(prefix, cutoffMs, limit, (rest) => BLOB_ID_PATTERN.test(rest));
    return keys.map((k) => k.slice(prefix.length) as BlobId);
  }

  const expiresIn = (expiresAt: number): number => Math.min(MAX_PRESIGN_SECONDS, Math.max(1, Math.ceil((expiresAt - clock.now()) / 1000)));

  return {
    kind: 's3',

    async put(idText, source, { size }) {
      const id = parseBlobId(idText);
      if (!Number.isSafeInteger(size) || size < 0) throw new RangeError('size must be a whole number of bytes');
      const key = keyOf(id);
      if (await head(id)) throw new BlobStoreError('EXISTS');
      let refusal: BlobStoreError | undefined;
      let sourceError: unknown;
      async function* exactly(): AsyncGenerator<Uint8Array> {
        let seen = 0;
        let held: Uint8Array | undefined;
        try {
          for await (const chunk of source as AsyncIterable<Uint8Array>) {
            seen += chunk.length;
            if (seen > size) throw (refusal = new BlobStoreError('TOO_LARGE'));
            if (held) yield held;
            held = chunk;
          }
        } catch (err) {
          if (!refusal) sourceError = err;
          throw err;
        }
        if (seen < size) throw (refusal = new BlobStoreError('TRUNCATED'));
        if (held) yield held;
      }
      // The SDK pipes the body into the request and does not watch it for errors: a failing
      // body is turned into an aborted request here, so the service sees a cut-off upload.
      const abort = new AbortController();
      let body: Readable | Uint8Array = new Uint8Array(0);
      if (size > 0) {
        body = Readable.from(exactly(), { objectMode: false });
        body.once('error', (err) => abort.abort(err));
      } else {
        for await (const chunk of source as AsyncIterable<Uint8Array>) if (chunk.length > 0) throw new BlobStoreError('TOO_LARGE');
      }
      // Uploaded under a temporary key and copied into place: a service that keeps part of an
      // aborted body (some do) keeps it where no reader looks, and expiry removes it later.
      const tmpKey = `${prefix}${TMP_DIR}${id}.${randomBytes(6).toString('hex')}`;
      try {
        await client.send(
          new PutObjectCommand({ Bucket: bucket, Key: tmpKey, Body: body, ContentLength: size, ContentType: 'application/octet-stream' }),
          { abortSignal: abort.signal },
        );
      } catch (err) {
        await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: tmpKey })).catch(() => undefined);
        if (refusal) throw refusal;
        if (sourceError !== undefined) throw sourceError;
        throw unavailable(err);
      }
      try {
        if (await head(id)) throw new BlobStoreError('EXISTS');
        await client.send(
          new CopyObjectCommand({
            Bucket: bucket,
            Key: key,
            CopySource: `${bucket}/${tmpKey}`,
            // Honoured by AWS S3 and MinIO: never replace a blob stored meanwhile.
            IfNoneMatch: '*',
          }),
        );
      } catch (err) {
        if (statusOf(err) === 412) throw new BlobStoreError('EXISTS');
        throw unavailable(err);
      } finally {
        await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: tmpKey })).catch(() => undefined);
      }
    },

    async get(idText, range?: ByteRange): Promise<BlobRead> {
      const id = parseBlobId(idText);
      const info = await head(id);
      if (!info) throw new BlobStoreError('NOT_FOUND');
      const { start, end } = resolveRange(info.size, range);
      if (end < start) return { stream: Readable.from([]), size: info.size, start, end };
      try {
        const res = await client.send(new GetObjectCommand({ Bucket: bucket, Key: keyOf(id), Range: `bytes=${start}-${end}` }));
        return { stream: res.Body as Readable, size: info.size, start, end };
      } catch (err) {
        const status = statusOf(err);
        if (status === 404) throw new BlobStoreError('NOT_FOUND');
        if (status === 416) throw new BlobStoreError('RANGE_NOT_SATISFIABLE');
        throw unavailable(err);
      }
    },

    head: async (idText) => head(parseBlobId(idText)),
    delete: async (idText) => remove(parseBlobId(idText)),
    listExpired,

    async expire(cutoffMs, limit) {
      const keys = (await listExpired(cutoffMs, limit)).map(keyOf);
      const blobs = keys.length;
      // Temporary keys left by failed puts go too (they are never blobs, and never counted).
      if (keys.length < limit) keys.push(...(await listKeys(`${prefix}${TMP_DIR}`, cutoffMs, limit - keys.length)));
      for (let i = 0; i < keys.length; i += concurrency) {
        await Promise.all(
          keys.slice(i, i + concurrency).map(async (key) => {
            try {
              await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
            } catch (err) {
              throw unavailable(err);
            }
          }),
        );
      }
      return blobs;
    },

    async createUploadSlot(idText, options): Promise<UploadSlot> {
      const id = parseBlobId(idText);
      const url = await getSignedUrl(client, new PutObjectCommand({ Bucket: bucket, Key: keyOf(id), ContentLength: options.size }), {
        expiresIn: expiresIn(options.expiresAt),
        signingDate: new Date(clock.now()),
        // Signed, so the service refuses a body of any other length.
        signableHeaders: new Set(['content-length']),
      });
      return { id, uploadUrl: url, headers: {}, size: options.size, expiresAt: options.expiresAt };
    },

    async createDownloadUrl(idText, expiresAt) {
      const id = parseBlobId(idText);
      return getSignedUrl(client, new GetObjectCommand({ Bucket: bucket, Key: keyOf(id) }), {
        expiresIn: expiresIn(expiresAt),
        signingDate: new Date(clock.now()),
      });
    },

    async close() {
      client.destroy();
    },
  };
}
