// SPDX-License-Identifier: AGPL-3.0-only
/**
 * Sending and fetching files (DESIGN §9), streamed end to end so that no file is ever held in
 * memory:
 *
 * - upload: the file is read, encrypted and PUT in one pipeline into a slot the relay hands
 *   out for exactly the blob's size (known in advance from the file's size). A dropped
 *   connection is retried with a new slot, re-encrypting with the same key and IV (so the same
 *   bytes and digest) — the relay's slots upload once.
 * - download: the encrypted blob goes into a partial file first; an interrupted download
 *   resumes from that file's length with a Range request. Once complete it is decrypted into a
 *   temporary file beside the destination, checked (MAC, digest, size) and only then moved into
 *   place; a blob that fails the checks is deleted, nothing of its plaintext kept.
 */
import { randomBytes as nodeRandomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { link, mkdir, stat, truncate, unlink } from 'node:fs/promises';
import { basename, dirname, extname, join, resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { pipeline as pipelineCallback } from 'node:stream';
import { createAttachmentDecryptor, createAttachmentEncryptor, CryptoError, encryptedAttachmentSize, generateAttachmentKey, randomBytes } from '@parley/crypto';
import { ParleyError } from '@parley/protocol';
import { ClientError } from '../errors.js';
import { openBlobDownload, progressCounter, uploadBlob } from '../transport/blob-transfer.js';
import type { RelayApi } from '../transport/relay-api.js';
import { TransportError } from '../transport/transport-error.js';
import { contentTypeOf, sanitizeContentType, sanitizeFileName, type EngineAttachment, type NewEngineAttachment } from './attachment-pointers.js';

/** Attempts of one upload (each with a new slot) before a network failure is final. */
const UPLOAD_ATTEMPTS = 3;

/** Options of {@link uploadFile}. */
export interface UploadFileOptions {
  readonly api: RelayApi;
  /** The file to send. */
  readonly path: string;
  /** The sender's relay domain (where the blob lives). */
  readonly domain: string;
  /** MIME type; default a guess from the extension. */
  readonly contentType?: string;
  /** Called with bytes of the encrypted blob sent so far and its size. */
  readonly onProgress?: (done: number, total: number) => void;
  readonly signal?: AbortSignal;
  readonly fetch?: typeof fetch;
}

/**
 * Encrypts and uploads a file; resolves with its pointer (not yet part of any message).
 * @throws ClientError INVALID_ARGUMENT (not a regular file, or it changed while being read);
 *   ParleyError (FRAME_TOO_LARGE over the relay's cap, RATE_LIMITED…); TransportError.
 */
export async function uploadFile(options: UploadFileOptions): Promise<NewEngineAttachment> {
  const path = resolve(options.path);
  let size: number;
  try {
    const st = await stat(path);
    if (!st.isFile()) throw new ClientError('INVALID_ARGUMENT', `${options.path} is not a regular file`);
    size = st.size;
  } catch (err) {
    if (err instanceof ClientError) throw err;
    throw new ClientError('INVALID_ARGUMENT', `cannot read ${options.path} (${(err as NodeJS.ErrnoException).code ?? 'error'})`, { cause: err });
  }
  const key = generateAttachmentKey();
  const iv = randomBytes(16);
  const encryptedSize = encryptedAttachmentSize(size);
  let lastError: unknown;
  for (let attempt = 0; attempt < UPLOAD_ATTEMPTS; attempt++) {
    const slot = await options.api.attachmentSlot(encryptedSize);
    if (slot.size !== encryptedSize || !/^[0-9a-f]{32}$/.test(slot.id)) throw new ParleyError('BAD_REQUEST', 'the relay answered with an unusable upload slot');
    const encryptor = createAttachmentEncryptor({ plaintextSize: size, key, iv });
    const counter = progressCounter(0, (done) => options.onProgress?.(done, encryptedSize));
    let readError: unknown;
    // The last stream of the chain is the request body; errors anywhere fail the request.
    const body = pipelineCallback(createReadStream(path), encryptor, counter, (err) => {
      if (err) readError = err;
    });
    try {
      await uploadBlob({
        url: new URL(slot.uploadUrl, options.api.baseUrl + '/').href,
        headers: slot.headers,
        size: encryptedSize,
        body,
        ...(options.signal ? { signal: options.signal } : {}),
        ...(options.fetch ? { fetch: options.fetch } : {}),
      });
    } catch (err) {
      body.destroy();
      if (options.signal?.aborted) throw new TransportError('DISCONNECTED', 'the upload was interrupted; nothing was sent');
      if (readError instanceof CryptoError || err instanceof CryptoError) {
        throw new ClientError('INVALID_ARGUMENT', `${options.path} changed while it was being sent`, { cause: readError ?? err });
      }
      const fsError = [readError, err].find((e) => (e as NodeJS.ErrnoException | undefined)?.syscall !== undefined) as NodeJS.ErrnoException | undefined;
      if (fsError) throw new ClientError('INVALID_ARGUMENT', `cannot read ${options.path} (${fsError.code ?? 'error'})`, { cause: fsError });
      if (err instanceof TransportError) {
        // The slot may be spent (the relay's upload once); the next attempt asks for a new one.
        lastError = err;
        continue;
      }
      throw err;
    }
    options.onProgress?.(encryptedSize, encryptedSize);
    const result = encryptor.result();
    return {
      blobId: slot.id,
      domain: options.domain,
      key,
      digest: result.digest,
      size,
      contentType: sanitizeContentType(options.contentType ?? contentTypeOf(path)),
      fileName: sanitizeFileName(basename(path)),
      localPath: path,
    };
  }
  throw lastError;
}

/** Options of {@link downloadFile}. */
export interface DownloadFileOptions {
  readonly api: RelayApi;
  readonly attachment: EngineAttachment;
  /** Where the encrypted partial download is kept between attempts. */
  readonly partialPath: string;
  /** The file to create; an existing one is never replaced. */
  readonly outPath: string;
  /** Called with bytes of the encrypted blob fetched so far (including an earlier attempt's) and its size. */
  readonly onProgress?: (done: number, total: number) => void;
  /** Stops the download; the partial file stays for the next attempt. */
  readonly signal?: AbortSignal;
  readonly fetch?: typeof fetch;
}

async function sizeOf(path: string): Promise<number> {
  try {
    return (await stat(path)).size;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 0;
    throw err;
  }
}

/** The refusal for a blob that is not what the pointer says; its partial file goes. */
async function corrupt(partialPath: string): Promise<CryptoError> {
  await unlink(partialPath).catch(() => undefined);
  return new CryptoError('INVALID_ATTACHMENT');
}

/**
 * Fetches (or resumes fetching) an attachment's blob, decrypts and checks it, and writes the
 * file to `outPath`. Resolves with the path and size.
 * @throws CryptoError INVALID_ATTACHMENT when the blob does not match the pointer (nothing is
 *   kept); ClientError INVALID_ARGUMENT when `outPath` exists; ParleyError NOT_FOUND for an
 *   expired blob; TransportError for the network (the partial download stays for a retry).
 */
export async function downloadFile(options: DownloadFileOptions): Promise<{ path: string; size: number }> {
  const { attachment: a, partialPath } = options;
  const outPath = resolve(options.outPath);
  if (await exists(outPath)) throw new ClientError('INVALID_ARGUMENT', `${options.outPath} exists already; choose another --out`);
  const total = encryptedAttachmentSize(a.size);
  await mkdir(dirname(partialPath), { recursive: true, mode: 0o700 });
  let offset = await sizeOf(partialPath);
  if (offset > total) {
    await truncate(partialPath, 0);
    offset = 0;
  }
  for (let round = 0; offset < total && round < 2; round++) {
    const url = `${options.api.baseUrl}/v1/attachments/${a.blobId}`;
    const got = await openBlobDownload({
      url,
      authorization: options.api.authorization,
      offset,
      ...(options.signal ? { signal: options.signal } : {}),
      ...(options.fetch ? { fetch: options.fetch } : {}),
    });
    if (got.kind === 'past-end') {
      // The blob is shorter than the part we hold: not the blob the pointer names.
      throw await corrupt(partialPath);
    }
    if (got.total !== total) {
      got.body.destroy();
      throw await corrupt(partialPath);
    }
    if (got.start !== offset && got.start !== 0) {
      got.body.destroy();
      throw new ParleyError('BAD_REQUEST', 'the attachment storage sent another range than asked');
    }
    // A server that ignored the range sends everything: start over.
    const append = got.start === offset && offset > 0;
    const counter = progressCounter(got.start, (done) => options.onProgress?.(done, total));
    try {
      await pipeline(got.body, counter, createWriteStream(partialPath, { flags: append ? 'a' : 'w', mode: 0o600 }), ...(options.signal ? [{ signal: options.signal }] : []));
    } catch (err) {
      if (options.signal?.aborted) throw new TransportError('DISCONNECTED', 'the download was interrupted; run it again to resume');
      if (err instanceof TransportError || err instanceof ParleyError) throw err;
      if ((err as NodeJS.ErrnoException).syscall !== undefined && (err as NodeJS.ErrnoException).syscall !== 'read') throw err;
      throw new TransportError('DISCONNECTED', 'the download was cut off; run it again to resume');
    }
    offset = await sizeOf(partialPath);
    if (offset > total) throw await corrupt(partialPath);
  }
  if (offset !== total) throw new TransportError('DISCONNECTED', 'the download was cut off; run it again to resume');
  options.onProgress?.(total, total);

  // Decrypt beside the destination, keep it only once every check passed.
  await mkdir(dirname(outPath), { recursive: true });
  const tmp = join(dirname(outPath), `.${basename(outPath)}.${nodeRandomBytes(6).toString('hex')}.part`);
  try {
    await pipeline(
      createReadStream(partialPath),
      createAttachmentDecryptor({ key: a.key, digest: a.digest, plaintextSize: a.size }),
      createWriteStream(tmp, { flags: 'wx', mode: 0o600 }),
    );
    try {
      // link refuses to replace a file that appeared meanwhile (rename would not).
      await link(tmp, outPath);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw new ClientError('INVALID_ARGUMENT', `${options.outPath} exists already; choose another --out`);
      throw err;
    }
  } catch (err) {
    if (err instanceof CryptoError) throw await corrupt(partialPath);
    throw err;
  } finally {
    await unlink(tmp).catch(() => undefined);
  }
  await unlink(partialPath).catch(() => undefined);
  return { path: outPath, size: a.size };
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}

/**
 * A destination for `fileName` in `dir` that does not exist yet: `name.ext`, else
 * `name (1).ext`, `name (2).ext`… (checked now; downloadFile refuses a file that appears later).
 */
export async function freePathIn(dir: string, fileName: string): Promise<string> {
  const ext = extname(fileName);
  const stem = ext ? fileName.slice(0, -ext.length) : fileName;
  for (let n = 0; n < 1000; n++) {
    const candidate = join(dir, n === 0 ? fileName : `${stem} (${n})${ext}`);
    if (!(await exists(candidate))) return candidate;
  }
  throw new ClientError('INVALID_ARGUMENT', `too many files named like ${fileName} in ${dir}; choose --out`);
}
