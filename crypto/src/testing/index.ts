// SPDX-License-Identifier: AGPL-3.0-only
/**
 * @parley/crypto/testing — the store contract suite for ProtocolStores implementations, and
 * ready-made test devices. Imports node:test; for tests only.
 */
export { type ProtocolStoresFactory, describeProtocolStoresContract } from './store-contract.js';
export { type TestBundleOptions, type TestDevice, type TestDeviceOptions, createTestDevice } from './test-device.js';
