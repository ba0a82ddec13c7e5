// SPDX-License-Identifier: AGPL-3.0-only
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  CryptoError,
  type CryptoErrorCode,
  REVOKED_SERVER_CERTIFICATE_KEY_ID,
  createServerCertificate,
  generateIdentity,
  generateTrustRoot,
  issueSenderCertificate,
  publicKeyOf,
  randomBytes,
  readSenderCertificate,
  readServerCertificate,
  validateSenderCertificate,
} from '../src/index.js';

const ACI = '0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d';
const NOW = 1_800_000_000_000;
const DAY = 86_400_000;

function throwsCode(fn: () => unknown, code: CryptoErrorCode): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof CryptoError, `expected CryptoError ${code}, got ${String(e)}`);
    assert.equal(e.code, code);
    return true;
  });
}

function issuer(keyId = 7): { root: ReturnType<typeof generateTrustRoot>; server: ReturnType<typeof createServerCertificate> } {
  const root = generateTrustRoot();
  return { root, server: createServerCertificate(keyId, root.privateKey) };
}

function certificate(expiresAt = NOW + DAY): { cert: Uint8Array; root: Uint8Array; identityKey: Uint8Array } {
  const { root, server } = issuer();
  const identityKey = generateIdentity().identityKey;
  const cert = issueSenderCertificate({
    senderAci: ACI,
    senderDeviceId: 3,
    senderIdentityKey: identityKey,
    expiresAt,
    serverCertificate: server.certificate,
    serverPrivateKey: server.privateKey,
  });
  return { cert, root: root.publicKey, identityKey };
}

describe('trust roots and server certificates', () => {
  it('generates a 33-byte public and 32-byte private trust root that belong together', () => {
    const root = generateTrustRoot();
    assert.equal(root.publicKey.length, 33);
    assert.equal(root.publicKey[0], 0x05);
    assert.equal(root.privateKey.length, 32);
    assert.deepEqual(publicKeyOf(root.privateKey), root.publicKey);
    assert.notDeepEqual(generateTrustRoot().privateKey, root.privateKey);
  });

  it('certifies a fresh server key under the given key id', () => {
    const root = generateTrustRoot();
    const server = createServerCertificate(42, root.privateKey);
    assert.equal(server.privateKey.length, 32);
    const read = readServerCertificate(server.certificate);
    assert.equal(read.keyId, 42);
    assert.deepEqual(read.publicKey, publicKeyOf(server.privateKey));
  });

  it('refuses key ids outside u32, the revoked key id, and a malformed root key', () => {
    const root = generateTrustRoot();
    for (const id of [-1, 1.5, 2 ** 32, REVOKED_SERVER_CERTIFICATE_KEY_ID]) throwsCode(() => createServerCertificate(id, root.privateKey), 'INVALID_ARGUMENT');
    throwsCode(() => createServerCertificate(1, randomBytes(31)), 'INVALID_KEY');
    throwsCode(() => readServerCertificate(randomBytes(40)), 'INVALID_CERTIFICATE');
  });
});

describe('sender certificates', () => {
  it('issues a certificate whose fields read back and that validates against its root until it expires', () => {
    const { cert, root, identityKey } = certificate(NOW + DAY);
    assert.deepEqual(readSenderCertificate(cert), {
      senderAci: ACI,
      senderDeviceId: 3,
      senderIdentityKey: identityKey,
      expiresAt: NOW + DAY,
      serverKeyId: 7,
    });
    assert.equal(validateSenderCertificate(cert, [root], NOW), true);
    assert.equal(validateSenderCertificate(cert, [root], NOW + DAY), true, 'valid up to and including expiresAt');
    assert.equal(validateSenderCertificate(cert, [root], NOW + DAY + 1), false, 'expired one millisecond later');
  });

  it('validates against any one of several trust roots, and not against foreign roots', () => {
    const { cert, root } = certificate();
    const others = [generateTrustRoot().publicKey, generateTrustRoot().publicKey];
    assert.equal(validateSenderCertificate(cert, others, NOW), false);
    assert.equal(validateSenderCertificate(cert, [...others, root], NOW), true);
  });

  it('does not validate a certificate with a flipped byte or garbage, and read refuses garbage with a typed error', () => {
    const { cert, root } = certificate();
    for (let i = 0; i < cert.length; i += 7) {
      const bad = new Uint8Array(cert);
      bad[i] = bad[i]! ^ 0x40;
      assert.equal(validateSenderCertificate(bad, [root], NOW), false, `byte ${i}`);
    }
    for (const garbage of [new Uint8Array(0), randomBytes(1), randomBytes(200), cert.subarray(0, cert.length - 10)]) {
      assert.equal(validateSenderCertificate(garbage, [root], NOW), false);
      throwsCode(() => readSenderCertificate(garbage), 'INVALID_CERTIFICATE');
    }
    throwsCode(() => readSenderCertificate('x' as unknown as Uint8Array), 'INVALID_CERTIFICATE');
  });

  it('refuses bad trust roots and times as arguments', () => {
    const { cert } = certificate();
    throwsCode(() => validateSenderCertificate(cert, [], NOW), 'INVALID_ARGUMENT');
    throwsCode(() => validateSenderCertificate(cert, [randomBytes(33)], NOW), 'INVALID_KEY');
    throwsCode(() => validateSenderCertificate(cert, [generateTrustRoot().publicKey], Number.NaN), 'INVALID_ARGUMENT');
  });

  it('refuses to issue for a bad address, key, expiry or a server key its certificate does not name', () => {
    const { server } = issuer();
    const other = issuer().server;
    const good = {
      senderAci: ACI,
      senderDeviceId: 1,
      senderIdentityKey: generateIdentity().identityKey,
      expiresAt: NOW,
      serverCertificate: server.certificate,
      serverPrivateKey: server.privateKey,
    };
    assert.ok(issueSenderCertificate(good).length > 100);
    throwsCode(() => issueSenderCertificate({ ...good, senderAci: ACI.toUpperCase() }), 'INVALID_ARGUMENT');
    throwsCode(() => issueSenderCertificate({ ...good, senderDeviceId: 128 }), 'INVALID_ARGUMENT');
    throwsCode(() => issueSenderCertificate({ ...good, expiresAt: -1 }), 'INVALID_ARGUMENT');
    throwsCode(() => issueSenderCertificate({ ...good, senderIdentityKey: randomBytes(33) }), 'INVALID_KEY');
    throwsCode(() => issueSenderCertificate({ ...good, serverCertificate: randomBytes(50) }), 'INVALID_CERTIFICATE');
    throwsCode(() => issueSenderCertificate({ ...good, serverPrivateKey: other.privateKey }), 'INVALID_CERTIFICATE');
  });
});
