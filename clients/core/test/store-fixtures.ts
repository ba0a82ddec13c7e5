// SPDX-License-Identifier: AGPL-3.0-only
/** Shared helpers of the store tests: temporary profiles, a movable clock, ids. */
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';
import { generateIdentity, type LocalIdentity } from '@parley/crypto';
import type { Aci, DeviceId, MessageId } from '@parley/protocol';
import { type Account, type ClientStore, type ClientStoreOptions, openClientStore } from '../src/index.js';

/** Cheap scrypt cost so passphrase tests stay fast (production uses DEFAULT_SCRYPT_PARAMS). */
export const FAST_SCRYPT = Object.freeze({ N: 2 ** 14, r: 8, p: 1 });

const dirs: string[] = [];
const stores: ClientStore[] = [];
after(() => {
  for (const s of stores) s.close();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** A fresh profile directory path (not yet created), removed after the test file. */
export function tempProfileDir(): string {
  const parent = mkdtempSync(join(tmpdir(), 'parley-store-'));
  dirs.push(parent);
  return join(parent, 'profile');
}

/** Opens a store (closed after the test file if the test does not close it). */
export function openStore(options: Partial<ClientStoreOptions> & { profileDir?: string } = {}): ClientStore {
  const store = openClientStore({ scrypt: FAST_SCRYPT, ...options, profileDir: options.profileDir ?? tempProfileDir() });
  stores.push(store);
  return store;
}

/** A clock the test moves by hand. */
export class ManualClock {
  constructor(public t = 1_700_000_000_000) {}
  now(): number {
    return this.t;
  }
  advance(ms: number): void {
    this.t += ms;
  }
}

/** A random ACI. */
export const newAci = (): Aci => randomUUID() as Aci;
/** A random 16-byte message id as hex. */
export const newMessageId = (): MessageId => randomBytes(16).toString('hex') as MessageId;

/** An account for `identity` (default: a fresh one). */
export function testAccount(identity: LocalIdentity = generateIdentity(), aci: Aci = newAci()): Account {
  return {
    aci,
    deviceId: 1 as DeviceId,
    username: 'alice',
    domain: 'example.org',
    serverUrl: 'https://example.org',
    authSecret: new Uint8Array(randomBytes(32)),
    identityKeyPair: identity.identityKeyPair,
    identityKey: identity.identityKey,
    registrationId: identity.registrationId,
  };
}
