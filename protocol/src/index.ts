// SPDX-License-Identifier: AGPL-3.0-only
/**
 * @parley/protocol — the wire: protobuf frames, the frame codec, limits, error codes, ids,
 * addresses, REST shapes and credentials. Plain TypeScript: runs in Node and in a renderer.
 */
export * from './address.js';
export * from './auth.js';
export * from './bytes.js';
export * from './codec.js';
export * from './errors.js';
export * from './http.js';
export * from './ids.js';
export * from './limits.js';
export * from './send.js';
export {
  AckSchema,
  DeliverSchema,
  DeviceMessageSchema,
  DeviceSeqSchema,
  EnvelopeSchema,
  EnvelopeType,
  ErrorSchema,
  FrameSchema,
  PingSchema,
  PongSchema,
  PresenceSetSchema,
  PresenceState,
  PresenceSubscribeResultSchema,
  PresenceSubscribeSchema,
  PresenceTargetSchema,
  PresenceUpdateSchema,
  ProvisioningAddressSchema,
  ProvisioningMessageSchema,
  QueueDrainedSchema,
  RecipientDevicesSchema,
  RecipientSeqsSchema,
  SendMultiResultSchema,
  SendMultiSchema,
  SendResultSchema,
  SendSchema,
} from './gen/parley/v1/wire_pb.js';
export type {
  Ack,
  Deliver,
  DeviceMessage,
  DeviceSeq,
  Envelope,
  Error as ErrorFrame,
  Frame,
  Ping,
  Pong,
  PresenceSet,
  PresenceSubscribe,
  PresenceSubscribeResult,
  PresenceTarget,
  PresenceUpdate,
  ProvisioningAddress,
  ProvisioningMessage,
  QueueDrained,
  RecipientDevices,
  RecipientSeqs,
  SendMulti,
  SendMultiResult,
  SendResult,
  Send,
} from './gen/parley/v1/wire_pb.js';
export { create, toBinary, fromBinary } from '@bufbuild/protobuf';
export {
  AttachmentPointerSchema,
  ContentSchema,
  DataMessageSchema,
  HistoryChunkSchema,
  ResendRequestSchema,
  SentTranscriptSchema,
  SyncMessageSchema,
} from './gen/parley/v1/content_pb.js';
export type { AttachmentPointer, Content, DataMessage, HistoryChunk, ResendRequest, SentTranscript, SyncMessage } from './gen/parley/v1/content_pb.js';
// Receipts, typing, read and settings syncs (content): DESIGN §6, §8.
export { ReceiptMessage_Type, TypingMessage_Action, ReceiptMessageSchema, TypingMessageSchema, ReadSyncSchema, SettingsSyncSchema } from './gen/parley/v1/content_pb.js';
export type { ReadMessage, ReadSync, ReceiptMessage, SettingsSync, TypingMessage } from './gen/parley/v1/content_pb.js';
