// SPDX-License-Identifier: AGPL-3.0-only
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CryptoError, compareScannedSafetyNumber, generateIdentity, randomBytes, safetyNumber } from '../src/index.js';

const ALICE = 'a0a0a0a0-1111-4222-8333-444444444444';
const BOB = 'b0b0b0b0-5555-4666-8777-888888888888';

describe('safety numbers', () => {
  const alice = generateIdentity();
  const bob = generateIdentity();
  const fromAlice = safetyNumber({ aci: ALICE, identityKey: alice.identityKey }, { aci: BOB, identityKey: bob.identityKey });
  const fromBob = safetyNumber({ aci: BOB, identityKey: bob.identityKey }, { aci: ALICE, identityKey: alice.identityKey });

  it('shows 60 digits, the same on both sides', () => {
    assert.match(fromAlice.displayString, /^[0-9]{60}$/);
    assert.equal(fromAlice.displayString, fromBob.displayString);
  });

  it('is deterministic', () => {
    const again = safetyNumber({ aci: ALICE, identityKey: alice.identityKey }, { aci: BOB, identityKey: bob.identityKey });
    assert.equal(again.displayString, fromAlice.displayString);
    assert.deepEqual(again.scannable, fromAlice.scannable);
  });

  it('matches when each side scans the other’s code', () => {
    assert.ok(fromAlice.scannable.length > 0);
    assert.ok(compareScannedSafetyNumber(fromAlice.scannable, fromBob.scannable));
    assert.ok(compareScannedSafetyNumber(fromBob.scannable, fromAlice.scannable));
  });

  it('changes when either identity key changes, and the old code no longer matches', () => {
    const bob2 = generateIdentity();
    const changed = safetyNumber({ aci: ALICE, identityKey: alice.identityKey }, { aci: BOB, identityKey: bob2.identityKey });
    const changedAtBob = safetyNumber({ aci: BOB, identityKey: bob2.identityKey }, { aci: ALICE, identityKey: alice.identityKey });
    assert.notEqual(changed.displayString, fromAlice.displayString);
    assert.equal(changed.displayString, changedAtBob.displayString);
    assert.equal(compareScannedSafetyNumber(fromAlice.scannable, changedAtBob.scannable), false);
    const alice2 = generateIdentity();
    assert.notEqual(
      safetyNumber({ aci: ALICE, identityKey: alice2.identityKey }, { aci: BOB, identityKey: bob.identityKey }).displayString,
      fromAlice.displayString,
    );
  });

  it('depends on the ACIs, not only on the keys', () => {
    const other = safetyNumber(
      { aci: 'c0c0c0c0-1111-4222-8333-444444444444', identityKey: alice.identityKey },
      { aci: BOB, identityKey: bob.identityKey },
    );
    assert.notEqual(other.displayString, fromAlice.displayString);
  });

  it('does not match garbage or our own code', () => {
    assert.equal(compareScannedSafetyNumber(fromAlice.scannable, randomBytes(40)), false);
    assert.equal(compareScannedSafetyNumber(fromAlice.scannable, new Uint8Array(0)), false);
    assert.equal(compareScannedSafetyNumber(fromAlice.scannable, fromAlice.scannable), false);
  });

  it('refuses a bad ACI or identity key', () => {
    assert.throws(
      () => safetyNumber({ aci: 'nope', identityKey: alice.identityKey }, { aci: BOB, identityKey: bob.identityKey }),
      (e) => CryptoError.is(e, 'INVALID_ARGUMENT'),
    );
    assert.throws(
      () => safetyNumber({ aci: ALICE, identityKey: alice.identityKey }, { aci: BOB, identityKey: randomBytes(33) }),
      (e) => CryptoError.is(e, 'INVALID_KEY'),
    );
  });
});
