// SPDX-License-Identifier: AGPL-3.0-only
/**
 * Bad input, as one table against a real relay process: every case gets a typed error with a
 * stable code, the close code or HTTP status docs/protocol.md gives, and leaves the server's
 * persistent state exactly as it was (every row of every table, every file). Where the protocol
 * keeps the connection, the test proves it is still usable.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import {
  aciToBytes,
  encodeFrame,
  EnvelopeType,
  formatBasicAuth,
  toBase64,
  toBase64Url,
  utf8,
  type Aci,
  type FrameInit,
} from '@parley/protocol';
import { generateIdentity, generateKyberPreKey, generatePreKeys, generateSignedPreKey } from '@parley/crypto';
import { DeviceSocket, UpgradeRefused } from '../support/device-socket.js';
import { startRelay, type RelayProcess } from '../support/relay-process.js';
import { snapshotState } from '../support/state-snapshot.js';
import { http, registerAccount, type TestDevice } from '../support/test-device.js';

const MAX_FRAME = 64 * 1024;
const MAX_ENVELOPE = 16 * 1024;

describe('bad input changes nothing and gets a typed error', () => {
  let relay: RelayProcess;
  let alice: TestDevice;
  let bob: TestDevice;
  let socket: DeviceSocket;

  before(async () => {
    relay = await startRelay({ args: ['--max-frame-bytes', String(MAX_FRAME), '--max-envelope-bytes', String(MAX_ENVELOPE)] });
    alice = await registerAccount(relay.url, 'alice', 2);
    bob = await registerAccount(relay.url, 'bob', 2);
    socket = await alice.connect();
    await socket.drained();
  });
  after(async () => {
    await socket.close();
    await relay.stop();
  });

  const validSend = (over: Record<string, unknown> = {}, msgOver: Record<string, unknown> = {}): FrameInit => ({
    kind: {
      case: 'send',
      value: {
        requestId: 77,
        destination: aciToBytes(bob.aci as Aci),
        messageId: randomBytes(16),
        timestamp: BigInt(Date.now()),
        messages: [{ deviceId: 1, registrationId: bob.identity.registrationId, type: EnvelopeType.CIPHERTEXT, content: randomBytes(32), ...msgOver }],
        ...over,
      },
    },
  });

  /** Frames on the authenticated socket: [name, bytes or text, expected code]. */
  const frameCases: Array<[string, () => Uint8Array | string, string]> = [
    ['garbage bytes', () => Uint8Array.of(0x0a, 0x0a, 0x08, 0x01, 0xff), 'BAD_FRAME'],
    ['truncated protobuf', () => encodeFrame(validSend()).subarray(0, 20), 'BAD_FRAME'],
    ['a text message', () => 'hello relay', 'BAD_FRAME'],
    ['an unknown frame type', () => Uint8Array.of(0x7a, 0x02, 0x08, 0x01), 'UNKNOWN_FRAME'],
    ['an empty frame', () => new Uint8Array(0), 'UNKNOWN_FRAME'],
    ['a relay-only frame', () => encodeFrame({ kind: { case: 'deliver', value: { envelopes: [] } } }), 'UNKNOWN_FRAME'],
    ['an ack of a huge sequence number', () => encodeFrame({ kind: { case: 'ack', value: { upTo: 2n ** 60n, seqs: [] } } }), 'BAD_ACK'],
  ];
  for (const [name, make, code] of frameCases) {
    it(`frame: ${name} → ${code}, connection kept`, async () => {
      const before = snapshotState(relay.dataDir);
      const mark = socket.frames.length;
      socket.sendRaw(make());
      assert.equal((await socket.connectionError(mark)).code, code);
      await socket.sync();
      assert.deepEqual(snapshotState(relay.dataDir), before);
    });
  }

  /** Send frames with one bad field: [name, frame, expected code]. */
  const sendCases: Array<[string, () => FrameInit, string]> = [
    ['request id 0', () => validSend({ requestId: 0 }), 'BAD_REQUEST'],
    ['a 15-byte destination', () => validSend({ destination: randomBytes(15) }), 'BAD_REQUEST'],
    ['an unknown destination account', () => validSend({ destination: randomBytes(16) }), 'NOT_FOUND'],
    ['a 17-byte message id', () => validSend({ messageId: randomBytes(17) }), 'BAD_REQUEST'],
    ['timestamp 0', () => validSend({ timestamp: 0n }), 'BAD_REQUEST'],
    ['a timestamp a year ahead', () => validSend({ timestamp: BigInt(Date.now() + 365 * 86_400_000) }), 'BAD_REQUEST'],
    ['an empty device list', () => validSend({ messages: [] }), 'BAD_REQUEST'],
    [
      'a duplicate device',
      () => {
        const m = { deviceId: 1, registrationId: bob.identity.registrationId, type: EnvelopeType.CIPHERTEXT, content: randomBytes(8) };
        return validSend({ messages: [m, m] });
      },
      'BAD_REQUEST',
    ],
    ['device id 0', () => validSend({}, { deviceId: 0 }), 'BAD_REQUEST'],
    ['device id 200', () => validSend({}, { deviceId: 200 }), 'BAD_REQUEST'],
    ['registration id 0', () => validSend({}, { registrationId: 0 }), 'BAD_REQUEST'],
    ['an unspecified envelope type', () => validSend({}, { type: 0 }), 'BAD_REQUEST'],
    ['an empty ciphertext', () => validSend({}, { content: new Uint8Array(0) }), 'BAD_REQUEST'],
    ['a ciphertext over the envelope limit', () => validSend({}, { content: randomBytes(MAX_ENVELOPE + 1) }), 'FRAME_TOO_LARGE'],
    ['a device that does not exist', () => validSend({}, { deviceId: 5 }), 'MISMATCHED_DEVICES'],
    ['a stale registration id', () => validSend({}, { registrationId: (bob.identity.registrationId % 16000) + 1 }), 'STALE_DEVICES'],
  ];
  for (const [name, make, code] of sendCases) {
    it(`send: ${name} → ${code}, connection kept`, async () => {
      const before = snapshotState(relay.dataDir);
      socket.frames.length = 0; // earlier cases' errors also carry request id 0
      const frame = make();
      socket.send(frame);
      const requestId = (frame.kind as { value: { requestId: number } }).value.requestId;
      const { error } = await socket.answer(requestId);
      assert.equal(error?.code, code);
      await socket.sync();
      assert.deepEqual(snapshotState(relay.dataDir), before);
    });
  }

  it(`frame: a message over ${MAX_FRAME} bytes → close 1009, nothing stored`, async () => {
    const s = await alice.connect(); // takes the queue over from `socket`
    const before = snapshotState(relay.dataDir);
    s.sendRaw(new Uint8Array(MAX_FRAME + 1));
    const closed = await s.closed;
    assert.equal(closed.code, 1009);
    assert.deepEqual(snapshotState(relay.dataDir), before);
    socket = await alice.connect();
    await socket.drained();
  });

  /** Upgrades: [name, authorization header, status, code]. */
  const wrongSecretAuth = () => formatBasicAuth(alice.aci, 1, randomBytes(32));
  const upgradeCases: Array<[string, () => string | undefined, number, string]> = [
    ['no credentials', () => undefined, 401, 'UNAUTHORIZED'],
    ['a malformed credential', () => 'Basic ' + toBase64(utf8('not-a-credential')), 401, 'UNAUTHORIZED'],
    ['a wrong secret', wrongSecretAuth, 401, 'UNAUTHORIZED'],
    ['an unknown account', () => formatBasicAuth('00000000-0000-4000-8000-000000000000', 1, randomBytes(32)), 401, 'UNAUTHORIZED'],
    ['an unknown device', () => formatBasicAuth(alice.aci, 9, alice.secret), 401, 'UNAUTHORIZED'],
  ];
  const refusedBodies: string[] = [];
  for (const [name, auth, status, code] of upgradeCases) {
    it(`upgrade: ${name} → ${status} ${code}`, async () => {
      const before = snapshotState(relay.dataDir);
      const header = auth();
      const err = await DeviceSocket.connect(relay.wsUrl, header ? { authorization: header } : {}).then(
        () => assert.fail('upgrade accepted'),
        (e: unknown) => e,
      );
      assert.ok(err instanceof UpgradeRefused, String(err));
      assert.equal(err.status, status);
      assert.equal(JSON.parse(err.body).code, code);
      refusedBodies.push(err.body);
      assert.deepEqual(snapshotState(relay.dataDir), before);
    });
  }
  it('upgrade: a wrong secret is indistinguishable from a malformed credential or an unknown account', () => {
    assert.equal(refusedBodies.length, upgradeCases.length);
    assert.equal(new Set(refusedBodies).size, 1, `bodies differ: ${refusedBodies.join(' | ')}`);
  });

  /** REST: [name, method, path, body, authenticated, status, code]. */
  const keys = () => {
    const id = generateIdentity();
    const spk = generateSignedPreKey(id.identityKeyPair, 1, Date.now()).upload;
    const kyber = generateKyberPreKey(id.identityKeyPair, 1, Date.now()).upload;
    const j = (k: { keyId: number; publicKey: Uint8Array; signature: Uint8Array }) => ({ keyId: k.keyId, publicKey: toBase64Url(k.publicKey), signature: toBase64Url(k.signature) });
    return { id, spk: j(spk), kyber: j(kyber) };
  };
  const registration = (over: Record<string, unknown> = {}) => {
    const k = keys();
    return {
      username: 'carol',
      identityKey: toBase64Url(k.id.identityKey),
      registrationId: 1234,
      authSecret: toBase64Url(randomBytes(32)),
      signedPreKey: k.spk,
      lastResortKyberPreKey: k.kyber,
      ...over,
    };
  };
  const flip = (b64: string) => {
    const bytes = Buffer.from(b64, 'base64url');
    bytes[5]! ^= 1;
    return bytes.toString('base64url');
  };
  const restCases: Array<[string, string, () => string, () => unknown, boolean, number, string]> = [
    ['register: malformed JSON', 'POST', () => '/v1/accounts', () => '{"username": ', false, 400, 'BAD_REQUEST'],
    ['register: a bad username', 'POST', () => '/v1/accounts', () => registration({ username: '9 bad name' }), false, 400, 'BAD_REQUEST'],
    ['register: a taken username', 'POST', () => '/v1/accounts', () => registration({ username: 'alice' }), false, 409, 'USERNAME_TAKEN'],
    ['register: an unknown field', 'POST', () => '/v1/accounts', () => registration({ admin: true }), false, 400, 'BAD_REQUEST'],
    ['register: a short auth secret', 'POST', () => '/v1/accounts', () => registration({ authSecret: toBase64Url(randomBytes(16)) }), false, 400, 'BAD_REQUEST'],
    ['register: registration id 0', 'POST', () => '/v1/accounts', () => registration({ registrationId: 0 }), false, 400, 'BAD_REQUEST'],
    [
      'register: an invalid signed prekey signature',
      'POST',
      () => '/v1/accounts',
      () => {
        const r = registration();
        return { ...r, signedPreKey: { ...r.signedPreKey, signature: flip(r.signedPreKey.signature) } };
      },
      false,
      422,
      'INVALID_SIGNATURE',
    ],
    [
      'register: an invalid Kyber prekey signature',
      'POST',
      () => '/v1/accounts',
      () => {
        const r = registration();
        return { ...r, lastResortKyberPreKey: { ...r.lastResortKyberPreKey, signature: flip(r.lastResortKyberPreKey.signature) } };
      },
      false,
      422,
      'INVALID_SIGNATURE',
    ],
    ['register: an identity key that is no key', 'POST', () => '/v1/accounts', () => registration({ identityKey: toBase64Url(randomBytes(33)) }), false, 422, 'INVALID_KEY'],
    ['register: a body over the limit', 'POST', () => '/v1/accounts', () => registration({ username: 'x'.repeat(600 * 1024) }), false, 413, 'FRAME_TOO_LARGE'],
    [
      'keys: more one-time prekeys than a batch allows',
      'PUT',
      () => '/v1/keys',
      () => ({ preKeys: generatePreKeys(1000, 101).map((k) => ({ keyId: k.keyId, publicKey: toBase64Url(k.upload.publicKey) })) }),
      true,
      413,
      'TOO_MANY_KEYS',
    ],
    [
      'keys: duplicate key ids in one batch',
      'PUT',
      () => '/v1/keys',
      () => {
        const [k] = generatePreKeys(500, 1).map((x) => ({ keyId: x.keyId, publicKey: toBase64Url(x.upload.publicKey) }));
        return { preKeys: [k, k] };
      },
      true,
      400,
      'BAD_REQUEST',
    ],
    ['keys: a signed prekey signed by another identity', 'PUT', () => '/v1/keys', () => ({ signedPreKey: keys().spk }), true, 422, 'INVALID_SIGNATURE'],
    ['claim: device id 0', 'GET', () => `/v1/keys/${bob.aci}/0`, () => undefined, true, 400, 'BAD_REQUEST'],
    ['claim: device id 500', 'GET', () => `/v1/keys/${bob.aci}/500`, () => undefined, true, 400, 'BAD_REQUEST'],
    ['claim: an account id that is no UUID', 'GET', () => '/v1/keys/not-a-uuid/1', () => undefined, true, 400, 'BAD_REQUEST'],
    ['claim: an unknown account', 'GET', () => '/v1/keys/00000000-0000-4000-8000-000000000001/*', () => undefined, true, 404, 'NOT_FOUND'],
    ['claim: without credentials', 'GET', () => `/v1/keys/${bob.aci}/1`, () => undefined, false, 401, 'UNAUTHORIZED'],
    ['directory: an unknown username', 'GET', () => '/v1/directory/nobody', () => undefined, true, 404, 'NOT_FOUND'],
    ['route: a path that does not exist', 'GET', () => '/v1/nothing-here', () => undefined, true, 404, 'NOT_FOUND'],
    ['devices: remove a device that does not exist', 'DELETE', () => '/v1/devices/7', () => undefined, true, 404, 'NOT_FOUND'],
    ['link: an unknown token', 'POST', () => '/v1/devices', () => ({ ...registration(), username: undefined, identityKey: undefined, token: toBase64Url(randomBytes(32)) }), false, 403, 'INVALID_LINK_TOKEN'],
  ];
  for (const [name, method, path, body, authed, status, code] of restCases) {
    it(`rest: ${name} → ${status} ${code}`, async () => {
      const before = snapshotState(relay.dataDir);
      const res = await http<{ code: string }>(relay.url, method, path(), body(), authed ? alice.authorization : undefined);
      assert.equal(res.status, status, JSON.stringify(res.body));
      assert.equal(res.body.code, code);
      assert.deepEqual(snapshotState(relay.dataDir), before);
    });
  }
});
