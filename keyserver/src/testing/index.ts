// SPDX-License-Identifier: AGPL-3.0-only
/**
 * @parley/keyserver/testing — the KeyStore contract suite for storage adapters. Imports
 * node:test; for tests only.
 */
export { describeKeyStoreContract, type KeyStoreFactory } from './key-store-contract.js';
