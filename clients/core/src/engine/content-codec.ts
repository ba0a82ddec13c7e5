// SPDX-License-Identifier: AGPL-3.0-only
/**
 * Content (what rides inside the encryption) to bytes and back, padded so that ciphertext
 * lengths reveal message lengths only to the nearest 160 bytes.
 */
import { create, fromBinary, toBinary, type MessageInitShape } from '@bufbuild/protobuf';
import { ContentSchema, type Content } from '@parley/protocol';
import { randomBytes } from '@parley/crypto';

/** Ciphertexts grow in steps of this many bytes. */
export const PADDING_BLOCK_BYTES = 160;

/** Init shape of a Content message. */
export type ContentInit = MessageInitShape<typeof ContentSchema>;

/** The tag of Content's `padding` (field 15, length-delimited), its highest-numbered field. */
const PADDING_TAG = (15 << 3) | 2;

/** Encodes content with random padding up to the next PADDING_BLOCK_BYTES boundary. */
export function encodeContent(content: ContentInit): Uint8Array {
  const bare = toBinary(ContentSchema, create(ContentSchema, { ...content, padding: new Uint8Array(0) }));
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
  if (lengthBytes === 2) {
    out[at++] = (padLen & 0x7f) | 0x80;
    out[at++] = padLen >>> 7;
  } else {
    out[at++] = padLen;
  }
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
