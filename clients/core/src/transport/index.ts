// SPDX-License-Identifier: AGPL-3.0-only
export * from './connect-failure.js';
export * from './relay-api.js';
export * from './relay-connection.js';
export * from './transport-error.js';
export * from './blob-transfer.js';
export * from './unidentified-connection.js';
