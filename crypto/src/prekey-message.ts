// SPDX-License-Identifier: AGPL-3.0-only
/**
 * @internal Reads the sender's identity key out of a serialized PreKeySignalMessage without
 * processing it. libsignal's TypeScript API has no accessor for it, and sealedDecrypt must
 * compare it with the sender certificate BEFORE the message may touch any store.
 *
 * Layout: one version byte, then a protobuf message whose field 3 (length-delimited) is the
 * 33-byte identity key. Only the wire types protobuf defines are skipped; anything else, or a
 * length past the end, means the message is malformed.
 */

const IDENTITY_KEY_FIELD = 3;

/** The identity key of a serialized prekey message, or undefined when it is malformed or has none. */
export function preKeyMessageIdentityKey(bytes: Uint8Array): Uint8Array | undefined {
  let pos = 1;
  const varint = (): number | undefined => {
    let value = 0;
    for (let shift = 0; shift < 64; shift += 7) {
      if (pos >= bytes.length) return undefined;
      const b = bytes[pos++]!;
      // Values beyond 2^53 never occur in this message's tags and lengths; treat them as malformed.
      if (shift > 49 && b > 0) return undefined;
      value += (b & 0x7f) * 2 ** shift;
      if ((b & 0x80) === 0) return value;
    }
    return undefined;
  };
  let found: Uint8Array | undefined;
  while (pos < bytes.length) {
    const tag = varint();
    if (tag === undefined) return undefined;
    const field = Math.floor(tag / 8);
    const wire = tag % 8;
    if (wire === 0) {
      if (varint() === undefined) return undefined;
    } else if (wire === 1 || wire === 5) {
      pos += wire === 1 ? 8 : 4;
      if (pos > bytes.length) return undefined;
    } else if (wire === 2) {
      const length = varint();
      if (length === undefined || pos + length > bytes.length) return undefined;
      if (field === IDENTITY_KEY_FIELD) found = bytes.subarray(pos, pos + length);
      pos += length;
    } else {
      return undefined;
    }
  }
  return found;
}
