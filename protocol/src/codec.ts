// SPDX-License-Identifier: AGPL-3.0-only
/**
 * The frame codec: bytes <-> `Frame`, with no socket in sight (CONVENTIONS 4). Decoding checks
 * size first, then structure; every failure is a ParleyError with a stable code.
 */
import { create, fromBinary, toBinary, type MessageInitShape } from '@bufbuild/protobuf';
import { ParleyError } from './errors.js';
import { FrameSchema, type Frame } from './gen/parley/v1/wire_pb.js';
import { LIMITS } from './limits.js';

/** The frame kinds a client may send; the rest only travel relay -> client. */
export const CLIENT_FRAME_KINDS = ['send', 'ack', 'ping', 'sendMulti', 'presenceSubscribe', 'presenceSet'] as const;
/** The frame kinds a relay sends. */
export const RELAY_FRAME_KINDS = [
  'sendResult',
  'deliver',
  'queueDrained',
  'error',
  'pong',
  'provisioningAddress',
  'provisioningMessage',
  'sendMultiResult',
  'presenceSubscribeResult',
  'presenceUpdate',
] as const;

/** A frame kind (`Frame.kind.case`). */
export type FrameKind = NonNullable<Frame['kind']['case']>;

/** Init shape for building a frame, e.g. `{ kind: { case: 'ping', value: { nonce: 1 } } }`. */
export type FrameInit = MessageInitShape<typeof FrameSchema>;

/** Encodes one frame to the bytes of one binary WebSocket message. */
export function encodeFrame(frame: Frame | FrameInit): Uint8Array {
  const msg = '$typeName' in frame ? (frame as Frame) : create(FrameSchema, frame);
  return toBinary(FrameSchema, msg);
}

/**
 * Decodes the bytes of one WebSocket message.
 * @param maxBytes the largest message accepted; bytes. Default LIMITS.maxFrameBytes.
 * @throws ParleyError FRAME_TOO_LARGE, BAD_FRAME (undecodable) or UNKNOWN_FRAME (no known kind).
 */
export function decodeFrame(bytes: Uint8Array, maxBytes: number = LIMITS.maxFrameBytes): Frame {
  if (bytes.length > maxBytes) throw new ParleyError('FRAME_TOO_LARGE', `frame is over ${maxBytes} bytes`);
  let frame: Frame;
  try {
    frame = fromBinary(FrameSchema, bytes, { readUnknownFields: false });
  } catch {
    throw new ParleyError('BAD_FRAME', 'frame is not a decodable protobuf Frame');
  }
  if (frame.kind.case === undefined) throw new ParleyError('UNKNOWN_FRAME', 'frame holds no known kind');
  return frame;
}

/** Decodes a frame a client sent: like decodeFrame, and refuses kinds only a relay sends. */
export function decodeClientFrame(bytes: Uint8Array, maxBytes: number = LIMITS.maxFrameBytes): Frame {
  const frame = decodeFrame(bytes, maxBytes);
  if (!(CLIENT_FRAME_KINDS as readonly string[]).includes(frame.kind.case!)) {
    throw new ParleyError('UNKNOWN_FRAME', `a client may not send a ${frame.kind.case} frame`);
  }
  return frame;
}
