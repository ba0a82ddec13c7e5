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

/** Encodes content with random padding up to the next PADDING_BLOCK_BYTES boundary. */
export function encodeContent(content: ContentInit): Uint8Array {
  const bare = toBinary(ContentSchema, create(ContentSchema, { ...content, padding: new Uint8Array(0) }));
  // Field 15 (bytes) costs one tag byte plus a one- or two-byte length.
  const target = Math.ceil((bare.length + 3) / PADDING_BLOCK_BYTES) * PADDING_BLOCK_BYTES;
  let padLen = target - bare.length - 2;
  if (padLen > 127) padLen -= 1;
  return toBinary(ContentSchema, create(ContentSchema, { ...content, padding: randomBytes(Math.max(0, padLen)) }));
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
