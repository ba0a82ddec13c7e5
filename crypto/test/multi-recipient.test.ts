// SPDX-License-Identifier: AGPL-3.0-only
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { before, describe, it } from 'node:test';
import SealedSenderMultiRecipientMessage from '@signalapp/libsignal-client/dist/SealedSenderMultiRecipientMessage.js';
import {
  CryptoError,
  type MultiRecipientMessage,
  createServerCertificate,
  generateTrustRoot,
  issueSenderCertificate,
  joinMultiRecipientPart,
  parseMultiRecipientMessage,
  randomBytes,
} from '../src/index.js';
import { type TestDevice, createTestDevice } from '../src/testing/index.js';
import { libsignalGroupPayload } from './support/libsignal-ssv2.js';

const invalidMessage = (e: unknown): boolean => CryptoError.is(e, 'INVALID_MESSAGE');

interface Fixture {
  sender: TestDevice;
  /** Three accounts with 1, 2 and 3 devices. */
  recipients: TestDevice[];
  excluded: string;
  payload: Uint8Array;
}

async function fixture(): Promise<Fixture> {
  const sender = await createTestDevice();
  const recipients: TestDevice[] = [];
  for (const devices of [1, 2, 3]) {
    const first = await createTestDevice();
    recipients.push(first);
    for (let d = 2; d <= devices; d++) {
      recipients.push(await createTestDevice({ aci: first.address.aci, deviceId: d, identityKeyPair: first.identity.identityKeyPair }));
    }
  }
  for (const r of recipients) await sender.cipher.processBundle(r.address, r.bundle());
  const root = generateTrustRoot();
  const server = createServerCertificate(1, root.privateKey);
  const certificate = issueSenderCertificate({
    senderAci: sender.address.aci,
    senderDeviceId: 1,
    senderIdentityKey: sender.identity.identityKey,
    expiresAt: Date.now() + 86_400_000,
    serverCertificate: server.certificate,
    serverPrivateKey: server.privateKey,
  });
  const excluded = randomUUID();
  const payload = await libsignalGroupPayload({
    sender,
    recipients,
    certificate,
    distributionId: randomUUID(),
    plaintext: new TextEncoder().encode('hello group'),
    excluded: [excluded],
  });
  return { sender, recipients, excluded, payload };
}

describe('parseMultiRecipientMessage', () => {
  let f: Fixture;
  let parsed: MultiRecipientMessage;
  before(async () => {
    f = await fixture();
    parsed = parseMultiRecipientMessage(f.payload);
  });

  it('lists every recipient account once with its devices and registration ids, and the excluded accounts', () => {
    const accounts = [...new Set(f.recipients.map((r) => r.address.aci))];
    assert.deepEqual(parsed.recipients.map((r) => r.aci).sort(), [...accounts].sort());
    for (const r of parsed.recipients) {
      const devices = f.recipients.filter((d) => d.address.aci === r.aci);
      assert.deepEqual(
        [...r.devices].sort((a, b) => a.deviceId - b.deviceId),
        devices.map((d) => ({ deviceId: d.address.deviceId, registrationId: d.identity.registrationId })),
      );
      assert.equal(r.header[0], 0x22);
    }
    assert.deepEqual(parsed.excludedAcis, [f.excluded]);
  });

  it('gives header ‖ sharedBody equal to libsignal messageForRecipient for every recipient', () => {
    const theirs = new SealedSenderMultiRecipientMessage(new Uint8Array(f.payload));
    const map = theirs.recipientsByServiceIdString();
    for (const r of parsed.recipients) {
      const expected = theirs.messageForRecipient(map[r.aci]!);
      assert.deepEqual(joinMultiRecipientPart(r.header, parsed.sharedBody), expected);
    }
  });

  it('keeps one shared body: headers are small and the body is not copied into them', () => {
    for (const r of parsed.recipients) assert.ok(r.header.length < 100, `header of ${r.header.length} bytes`);
    assert.ok(parsed.sharedBody.length > 0);
    // The shared body is its own copy, not a view that pins the caller's buffer.
    assert.equal(parsed.sharedBody.byteOffset, 0);
    assert.equal(parsed.sharedBody.buffer.byteLength, parsed.sharedBody.length);
  });

  it('parses bytes that sit inside a larger (pooled) buffer', () => {
    const pooled = Buffer.alloc(f.payload.length + 64);
    pooled.set(f.payload, 32);
    const again = parseMultiRecipientMessage(pooled.subarray(32, 32 + f.payload.length));
    assert.deepEqual(again.sharedBody, parsed.sharedBody);
    assert.deepEqual(
      again.recipients.map((r) => r.header),
      parsed.recipients.map((r) => r.header),
    );
  });

  it('refuses every truncation and garbage with INVALID_MESSAGE, never another error', () => {
    const cuts = new Set([0, 1, 2, 3, 10, 17, 18, 19, 40, 60, f.payload.length - parsed.sharedBody.length - 1]);
    for (let n = 0; n < f.payload.length - parsed.sharedBody.length; n += 5) cuts.add(n);
    for (const n of cuts) {
      assert.throws(() => parseMultiRecipientMessage(f.payload.subarray(0, n)), invalidMessage, `cut at ${n}`);
    }
    for (let i = 0; i < 50; i++) {
      const garbage = randomBytes(1 + (i * 37) % 700);
      try {
        parseMultiRecipientMessage(garbage);
      } catch (e) {
        assert.ok(invalidMessage(e), String(e));
      }
    }
    assert.throws(() => parseMultiRecipientMessage('x' as unknown as Uint8Array), (e) => CryptoError.is(e, 'INVALID_ARGUMENT'));
  });

  it('refuses a table that claims far more recipients or devices than the bytes hold', () => {
    // 0x23 version, then a varint recipient count of 2^28 - 1.
    assert.throws(() => parseMultiRecipientMessage(new Uint8Array([0x23, 0xff, 0xff, 0xff, 0x7f, 0x00])), invalidMessage);
    const big = new Uint8Array(f.payload);
    big[1] = 0x7f; // 127 recipients where there are 3
    assert.throws(() => parseMultiRecipientMessage(big), invalidMessage);
    const huge = new Uint8Array([0x23, 0xff, 0xff, 0xff, 0xff, 0x0f, ...randomBytes(64)]);
    assert.throws(() => parseMultiRecipientMessage(huge), invalidMessage);
  });

  it('refuses a PNI recipient', () => {
    // Each entry of the recipient table starts with a fixed-width service id: a kind byte
    // (0 = ACI, 1 = PNI) and the 16 UUID bytes.
    const uuid = Buffer.from(f.recipients[0]!.address.aci.replaceAll('-', ''), 'hex');
    const at = Buffer.from(f.payload).indexOf(uuid);
    assert.ok(at > 1);
    assert.equal(f.payload[at - 1], 0x00);
    const pni = new Uint8Array(f.payload);
    pni[at - 1] = 0x01;
    const theirs = new SealedSenderMultiRecipientMessage(new Uint8Array(pni));
    assert.ok(Object.keys(theirs.recipientsByServiceIdString()).some((id) => id.startsWith('PNI:')), 'the patched payload names a PNI');
    assert.throws(() => parseMultiRecipientMessage(pni), invalidMessage);
  });
});

describe('joinMultiRecipientPart', () => {
  it('concatenates header and shared body into a fresh array', () => {
    const out = joinMultiRecipientPart(new Uint8Array([1, 2]), new Uint8Array([3]));
    assert.deepEqual(out, new Uint8Array([1, 2, 3]));
    assert.throws(() => joinMultiRecipientPart(new Uint8Array(1), null as unknown as Uint8Array), (e) => CryptoError.is(e, 'INVALID_ARGUMENT'));
  });
});
