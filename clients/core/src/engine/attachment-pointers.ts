// SPDX-License-Identifier: AGPL-3.0-only
/**
 * Attachment pointers between the wire (`AttachmentPointer` inside a DataMessage) and the
 * engine. Everything in a received pointer is the sender's word: malformed pointers are
 * dropped, file names are reduced to a harmless base name, content types to a plain MIME type.
 */
import { basename } from 'node:path';
import type { MessageInitShape } from '@bufbuild/protobuf';
import type { AttachmentPointer, AttachmentPointerSchema } from '@parley/protocol';
import type { AttachmentRecord } from '../store/attachment-store.js';

/**
 * One file of a message, as the engine stores it: the store's record, so the two cannot drift
 * (the store keeps pointers exactly as the engine hands them over).
 */
export type EngineAttachment = AttachmentRecord;

/** An attachment before it has a position in a message. */
export type NewEngineAttachment = Omit<EngineAttachment, 'index'>;

/** Init shape of a wire pointer. */
export type AttachmentPointerInit = MessageInitShape<typeof AttachmentPointerSchema>;

/** Most files one message carries; pointers past it are dropped. */
export const MAX_FILES_PER_MESSAGE = 100;
/** Longest file name kept, in UTF-16 code units (most file systems allow 255 bytes). */
const MAX_FILE_NAME = 120;
const FALLBACK_NAME = 'attachment';
const GENERIC_TYPE = 'application/octet-stream';

/**
 * A file name safe to show and to create in a directory: the part after the last `/` or `\`,
 * without control or bidi-override characters, without leading dots (no hidden files, no `..`),
 * at most 120 characters (the extension kept), and `attachment` when nothing is left.
 */
export function sanitizeFileName(name: string): string {
  const last = name.split(/[/\\]/).pop() ?? '';
  // eslint-disable-next-line no-control-regex -- the point is to remove control characters
  let clean = last.replace(/[\u0000-\u001f\u007f-\u009f\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069:*?"<>|]/g, '').trim();
  clean = clean.replace(/^[.\s]+/, '');
  if (clean.length > MAX_FILE_NAME) {
    const dot = clean.lastIndexOf('.');
    const ext = dot > 0 && clean.length - dot <= 16 ? clean.slice(dot) : '';
    clean = clean.slice(0, MAX_FILE_NAME - ext.length) + ext;
  }
  return clean.length > 0 ? clean : FALLBACK_NAME;
}

/** A MIME type `type/subtype`, or `application/octet-stream` for anything else. */
export function sanitizeContentType(type: string): string {
  const t = type.trim().toLowerCase();
  return t.length <= 127 && /^[a-z0-9][a-z0-9!#$&^_.+-]*\/[a-z0-9][a-z0-9!#$&^_.+-]*$/.test(t) ? t : GENERIC_TYPE;
}

/** A guess from the extension, for the few types worth naming; the rest are octet streams. */
export function contentTypeOf(path: string): string {
  const ext = basename(path).toLowerCase().split('.').pop() ?? '';
  const types: Record<string, string> = {
    png: 'image/png',
    jpg: 'image/jpeg',
    jpeg: 'image/jpeg',
    gif: 'image/gif',
    webp: 'image/webp',
    pdf: 'application/pdf',
    txt: 'text/plain',
    md: 'text/markdown',
    json: 'application/json',
    zip: 'application/zip',
    mp3: 'audio/mpeg',
    mp4: 'video/mp4',
  };
  return types[ext] ?? GENERIC_TYPE;
}

/** The valid pointers of a received message, sanitized, numbered in order. */
export function attachmentsFromPointers(pointers: readonly AttachmentPointer[]): NewEngineAttachment[] {
  const out: NewEngineAttachment[] = [];
  for (const p of pointers.slice(0, MAX_FILES_PER_MESSAGE)) {
    const size = Number(p.size);
    if (!/^[0-9a-f]{32}$/.test(p.blobId) || p.key.length !== 64 || p.digest.length !== 32 || !Number.isSafeInteger(size) || size < 0 || size > 2 ** 40) continue;
    out.push({
      blobId: p.blobId,
      domain: p.domain.toLowerCase(),
      key: new Uint8Array(p.key),
      digest: new Uint8Array(p.digest),
      size,
      contentType: sanitizeContentType(p.contentType),
      fileName: sanitizeFileName(p.fileName),
    });
  }
  return out;
}

/** The wire pointer of a stored attachment (what a resend or a transcript carries). */
export function pointerOf(a: NewEngineAttachment): AttachmentPointerInit {
  return {
    blobId: a.blobId,
    key: a.key,
    digest: a.digest,
    size: BigInt(a.size),
    contentType: a.contentType,
    fileName: a.fileName,
    domain: a.domain,
  };
}
