// SPDX-License-Identifier: AGPL-3.0-only
/**
 * @parley/client — the client engine shared by the CLI and the desktop app.
 */
export * from './errors.js';
export * from './store/account-store.js';
export * from './store/attachment-store.js';
export * from './store/blocklist-store.js';
export * from './store/client-store.js';
export * from './store/database.js';
export * from './store/message-actions-store.js';
export * from './store/group-store.js';
export * from './store/message-search.js';
export * from './store/message-store.js';
export * from './store/migrations.js';
export * from './store/outbox.js';
export * from './store/profile-key.js';
export * from './store/protocol-store.js';
export * from './store/receipt-store.js';
export * from './store/seen-envelopes.js';
export * from './store/settings-store.js';
export * from './store/staged-protocol-stores.js';
export * from './store/store-types.js';
export * from './transport/index.js';
export * from './engine/client-api.js';
export * from './engine/parley-client-api.js';
export * from './engine/open-client.js';
export { ParleyClient, type ClientStorePorts, type ViewStore } from './engine/parley-client.js';
export { formatLinkCode, parseLinkCode, type LinkCode } from './engine/link-code.js';
export {
  attachmentsFromPointers,
  contentTypeOf,
  sanitizeContentType,
  sanitizeFileName,
  type EngineAttachment,
  type NewEngineAttachment,
} from './engine/attachment-pointers.js';
