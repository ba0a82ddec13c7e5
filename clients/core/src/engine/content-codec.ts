// SPDX-License-Identifier: AGPL-3.0-only
/**
 * Content (what rides inside the encryption) to bytes and back, padded so that ciphertext
 * lengths reveal message lengths only to the nearest 160 bytes.
 */
import { create, fromBinary, toBinary, type MessageInitShape } from '@bufbuild/protobuf';
import { BinaryReader, WireType } from '@bufbuild/protobuf/wire';
import { ContentSchema, type Content } from '@parley/protocol';
import { randomBytes } from '@parley/crypto';

/** Ciphertexts grow in steps of this many bytes. */
export const PADDING_BLOCK_BYTES = 160;

/** Init shape of a Content message. */
export type ContentInit = MessageInitShape<typeof ContentSchema>;

/** Content's `profile_key` and `padding` fields (both bytes); padding is its highest-numbered field. */
const PROFILE_KEY_FIELD = 13;
const PADDING_FIELD = 15;
const PADDING_TAG = (PADDING_FIELD << 3) | WireType.LengthDelimited;

/** Encodes content with random padding up to the next PADDING_BLOCK_BYTES boundary. */
export function encodeContent(content: ContentInit): Uint8Array {
  return padded(toBinary(ContentSchema, create(ContentSchema, { ...content, padding: new Uint8Array(0) })));
}

/**
 * Encoded content with its `profile_key` set to `key` (absent or empty: none) and padded anew;
 * the very bytes given when they carry exactly that key already. Works on the top-level fields
 * without decoding the message (the send path sets the key on every message). Undefined when the
 * bytes are not a well-formed protobuf message.
 */
export function withProfileKey(content: Uint8Array, key: Uint8Array | undefined): Uint8Array | undefined {
  const kept: Uint8Array[] = [];
  let current: Uint8Array | undefined;
  let keptBytes = 0;
  try {
    const reader = new BinaryReader(content);
    while (reader.pos < reader.len) {
      const start = reader.pos;
      const [field, wireType] = reader.tag();
      if (field === PROFILE_KEY_FIELD && wireType === WireType.LengthDelimited) {
        current = reader.bytes();
        continue;
      }
      reader.skip(wireType, field);
      if (field === PADDING_FIELD) continue;
      kept.push(content.subarray(start, reader.pos));
      keptBytes += reader.pos - start;
    }
  } catch {
    return undefined;
  }
  const want = key && key.length > 0 ? key : undefined;
  if (want ? current !== undefined && bytesEqual(current, want) : current === undefined || current.length === 0) return content;
  // The other fields as they were, then the key (field 13), then fresh padding (field 15).
  const keyField = want ? 2 + (want.length > 127 ? 1 : 0) + want.length : 0;
  const bare = new Uint8Array(keptBytes + keyField);
  let at = 0;
  for (const part of kept) {
    bare.set(part, at);
    at += part.length;
  }
  if (want) {
    bare[at++] = (PROFILE_KEY_FIELD << 3) | WireType.LengthDelimited;
    at = writeLength(bare, at, want.length);
    bare.set(want, at);
  }
  return padded(bare);
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Writes a length of at most 16,383 as a one- or two-byte varint at `at`; returns the position after it. */
function writeLength(out: Uint8Array, at: number, length: number): number {
  if (length > 127) {
    out[at++] = (length & 0x7f) | 0x80;
    out[at++] = length >>> 7;
  } else {
    out[at++] = length;
  }
  return at;
}

/** `bare` (an encoded Content without padding) with a random padding field up to the next block. */
function padded(bare: Uint8Array): Uint8Array {
  // Field 15 (bytes) costs one tag byte plus a one- or two-byte length.
  const target = Math.ceil((bare.length + 3) / PADDING_BLOCK_BYTES) * PADDING_BLOCK_BYTES;
  let padLen = target - bare.length - 2;
  if (padLen > 127) padLen -= 1;
  // The padding field written after the others, as the encoder would put it (it is the last
  // field), without encoding the whole message a second time.
  // (One length falls a byte short of the block: 129 bytes to fill cannot be a tag, a one-byte
  // length and 127 bytes, nor a tag, a two-byte length and 126.)
  const lengthBytes = padLen > 127 ? 2 : 1;
  const out = new Uint8Array(bare.length + 1 + lengthBytes + padLen);
  out.set(bare);
  let at = bare.length;
  out[at++] = PADDING_TAG;
  at = writeLength(out, at, padLen);
  out.set(randomBytes(padLen), at);
  return out;
}

/** Decodes content; undefined when the bytes are not a Content message. */
export function decodeContent(bytes: Uint8Array): Content | undefined {
  try {
    const c = fromBinary(ContentSchema, bytes);
    return c.body.case === undefined ? undefined : c;
  } catch {
    return undefined;
  }
}
