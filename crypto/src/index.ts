// SPDX-License-Identifier: AGPL-3.0-only
/** @parley/crypto — the one package that touches libsignal. */
export * from './key-verification.js';
