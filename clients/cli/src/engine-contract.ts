// SPDX-License-Identifier: AGPL-3.0-only
/**
 * The engine contract the CLI codes against, from @parley/client's entry. Type-only: importing
 * this file loads nothing at run time, so the engine is loaded only when a profile is opened.
 */
import type { OpenClientOptions, ParleyClientApi } from '@parley/client';

export type {
  AccountInfo,
  AttachmentView,
  BlockedView,
  MessageActionEvent,
  MessageVersionView,
  QuoteView,
  ReactionView,
  DownloadOptions,
  DownloadResult,
  SendFileOptions,
  ClientEvents,
  ContactView,
  ConversationView,
  DeviceView,
  ExportFormat,
  GroupMemberView,
  GroupView,
  MarkReadResult,
  MessageView,
  PresenceView,
  PrivacySettings,
  ReceiptEvent,
  ReceiptView,
  TypingEvent,
  TypingResult,
  OpenClientOptions,
  ParleyClientApi,
  ProgressEvent,
  SafetyNumberView,
  SealedSenderStatus,
  SearchHit,
} from '@parley/client';

/** Opens a profile; the engine's `openParleyClient` has this shape, and tests inject a fake. */
export type OpenClient = (options: OpenClientOptions) => Promise<ParleyClientApi>;
