// SPDX-License-Identifier: AGPL-3.0-only
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { CryptoError, createMemoryStores, type LocalIdentity } from '../src/index.js';
import { describeProtocolStoresContract } from '../src/testing/index.js';

describeProtocolStoresContract('memory', createMemoryStores);

it('createMemoryStores refuses a missing identity', () => {
  assert.throws(() => createMemoryStores(undefined as unknown as LocalIdentity), (err) => CryptoError.is(err, 'INVALID_ARGUMENT'));
});

it('memory stores are independent of each other', async () => {
  const identity = { identityKeyPair: new Uint8Array(69), identityKey: new Uint8Array(33), registrationId: 1 };
  const a = createMemoryStores(identity);
  const b = createMemoryStores(identity);
  await a.sessions.saveSession('x.1', new Uint8Array([1]));
  assert.equal(await b.sessions.getSession('x.1'), undefined);
});
