// SPDX-License-Identifier: AGPL-3.0-only
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { randomBytes } from '../src/index.js';
import { preKeyMessageIdentityKey } from '../src/prekey-message.js';
import { createTestDevice } from '../src/testing/index.js';

it('reads the sender identity key out of a prekey message, and answers undefined (never throws) for any truncation or garbage', async () => {
  const alice = await createTestDevice();
  const bob = await createTestDevice();
  await alice.cipher.processBundle(bob.address, bob.bundle());
  const m = await alice.cipher.encrypt(bob.address, new TextEncoder().encode('hi'));
  assert.equal(m.type, 'prekey');
  assert.deepEqual(preKeyMessageIdentityKey(m.body), alice.identity.identityKey);
  for (let n = 0; n < m.body.length; n++) {
    const key = preKeyMessageIdentityKey(m.body.subarray(0, n));
    // A truncation may still end after field 3; then it must give the right key.
    if (key !== undefined) assert.deepEqual(key, alice.identity.identityKey, `cut at ${n}`);
  }
  for (let i = 0; i < 200; i++) preKeyMessageIdentityKey(randomBytes(i));
  assert.equal(preKeyMessageIdentityKey(new Uint8Array([0x44, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f])), undefined);
});
