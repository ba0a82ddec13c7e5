// SPDX-License-Identifier: AGPL-3.0-only
/** Conversions between the store's values and SQLite's. */

/**
 * A private copy of `bytes` for binding as a BLOB: the caller may change its buffer afterwards,
 * and SQLite takes only buffers over a plain ArrayBuffer.
 */
export function blob(bytes: Uint8Array): Uint8Array<ArrayBuffer> {
  return new Uint8Array(bytes);
}

/** A plain Uint8Array copy of a BLOB read back (the driver returns Node Buffers). */
export function copyBytes(bytes: Uint8Array): Uint8Array {
  return new Uint8Array(bytes);
}

/** {@link copyBytes}, or undefined for NULL. */
export function bytesOrUndefined(bytes: Uint8Array | null | undefined): Uint8Array | undefined {
  return bytes ? new Uint8Array(bytes) : undefined;
}
