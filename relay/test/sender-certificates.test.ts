// SPDX-License-Identifier: AGPL-3.0-only
/**
 * Sealed-sender certificates: the key files in the data directory (created once, 0600, loaded
 * after, checked end to end), rotation of the server certificate under the same trust root, and
 * GET /v1/certificate/sender with the trust root on /v1/info.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { generateTrustRoot, readSenderCertificate, validateSenderCertificate } from '@parley/crypto';
import { fromBase64Url, toBase64Url, type RelayInfoResponse, type SenderCertificateResponse } from '@parley/protocol';
import {
  loadSenderCertificateAuthority,
  SealedSenderKeyError,
  SEALED_SENDER_DIR,
  SERVER_CERTIFICATE_FILE,
  TRUST_ROOT_FILE,
} from '../src/sealed-sender/certificate-authority.js';
import { startRelayHarness, type RelayHarness } from './support/relay-harness.js';

const NOW = 1_800_000_000_000;
const dirs: string[] = [];
const freshDir = () => {
  const d = mkdtempSync(join(tmpdir(), 'parley-sscert-'));
  dirs.push(d);
  return d;
};
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const refused = (pattern: RegExp) => (err: unknown) => err instanceof SealedSenderKeyError && pattern.test(err.message);

describe('sealed-sender key files', () => {
  it('creates a trust root and a server certificate on the first start, owner-only, and loads the same keys after', () => {
    const data = freshDir();
    const first = loadSenderCertificateAuthority(data, NOW);
    const dir = join(data, SEALED_SENDER_DIR);
    assert.deepEqual(first.created, [join(dir, TRUST_ROOT_FILE), join(dir, SERVER_CERTIFICATE_FILE)]);
    assert.equal(statSync(dir).mode & 0o777, 0o700);
    for (const f of [TRUST_ROOT_FILE, SERVER_CERTIFICATE_FILE]) assert.equal(statSync(join(dir, f)).mode & 0o777, 0o600, f);
    assert.equal(first.authority.trustRoot.length, 33);
    assert.equal(first.authority.serverKeyId, NOW / 1000);
    const again = loadSenderCertificateAuthority(data, NOW + 1000);
    assert.deepEqual(again.created, []);
    assert.deepEqual(again.authority, first.authority);
  });

  it('rotates the server certificate under the same trust root when its file is removed', () => {
    const data = freshDir();
    const first = loadSenderCertificateAuthority(data, NOW).authority;
    rmSync(join(data, SEALED_SENDER_DIR, SERVER_CERTIFICATE_FILE));
    const rotated = loadSenderCertificateAuthority(data, NOW + 3_600_000);
    assert.deepEqual(rotated.created, [join(data, SEALED_SENDER_DIR, SERVER_CERTIFICATE_FILE)]);
    assert.deepEqual(rotated.authority.trustRoot, first.trustRoot);
    assert.equal(rotated.authority.serverKeyId, NOW / 1000 + 3600);
    assert.notDeepEqual(rotated.authority.serverPrivateKey, first.serverPrivateKey);
  });

  it('runs with the trust root\u2019s private key kept offline, and then cannot make a new server certificate', () => {
    const data = freshDir();
    const first = loadSenderCertificateAuthority(data, NOW).authority;
    const rootPath = join(data, SEALED_SENDER_DIR, TRUST_ROOT_FILE);
    writeFileSync(rootPath, JSON.stringify({ publicKey: toBase64Url(first.trustRoot) }), { mode: 0o600 });
    assert.deepEqual(loadSenderCertificateAuthority(data, NOW).authority, first);
    rmSync(join(data, SEALED_SENDER_DIR, SERVER_CERTIFICATE_FILE));
    assert.throws(() => loadSenderCertificateAuthority(data, NOW), refused(/holds no private key/));
  });

  it('refuses files that do not belong together or are damaged, naming the file and never a key', () => {
    const data = freshDir();
    const first = loadSenderCertificateAuthority(data, NOW).authority;
    const rootPath = join(data, SEALED_SENDER_DIR, TRUST_ROOT_FILE);
    const serverPath = join(data, SEALED_SENDER_DIR, SERVER_CERTIFICATE_FILE);
    const original = readFileSync(rootPath, 'utf8');

    const other = generateTrustRoot();
    writeFileSync(rootPath, JSON.stringify({ publicKey: toBase64Url(other.publicKey), privateKey: toBase64Url(other.privateKey) }));
    assert.throws(() => loadSenderCertificateAuthority(data, NOW), refused(/not signed by the trust root/));

    writeFileSync(rootPath, JSON.stringify({ publicKey: toBase64Url(first.trustRoot), privateKey: toBase64Url(other.privateKey) }));
    assert.throws(() => loadSenderCertificateAuthority(data, NOW), refused(/does not belong to the public key/));

    writeFileSync(rootPath, '{ not json');
    assert.throws(() => loadSenderCertificateAuthority(data, NOW), (err: unknown) => refused(/not a JSON object/)(err) && !(err as Error).message.includes('not json'));

    writeFileSync(rootPath, original);
    const server = JSON.parse(readFileSync(serverPath, 'utf8')) as Record<string, unknown>;
    writeFileSync(serverPath, JSON.stringify({ ...server, privateKey: toBase64Url(other.privateKey) }));
    assert.throws(() => loadSenderCertificateAuthority(data, NOW), (err: unknown) => refused(/does not belong to the certificate/)(err) && !(err as Error).message.includes(toBase64Url(other.privateKey)));

    rmSync(rootPath);
    assert.throws(() => loadSenderCertificateAuthority(data, NOW), refused(/restore the trust root/));
  });
});

describe('GET /v1/certificate/sender', () => {
  let h: RelayHarness;
  before(async () => {
    h = await startRelayHarness({ config: { senderCertificateTtlMs: 3_600_000 } });
  });
  after(() => h.close());

  it('publishes the trust root on /v1/info', async () => {
    const info = await h.call<RelayInfoResponse>('GET', '/v1/info');
    assert.equal(info.status, 200);
    assert.deepEqual(fromBase64Url(info.body.senderCertificateTrustRoot!), h.authority.trustRoot);
  });

  it('issues a certificate for the authenticated device with its account\u2019s identity key, valid for the configured lifetime', async () => {
    const alice = await h.register(2);
    const res = await h.call<SenderCertificateResponse>('GET', '/v1/certificate/sender', undefined, alice.devices[1]!.auth);
    assert.equal(res.status, 200);
    assert.equal(res.body.expiresAt, h.clock.t + 3_600_000);
    const certificate = fromBase64Url(res.body.certificate)!;
    const info = readSenderCertificate(certificate);
    assert.equal(info.senderAci, alice.aci);
    assert.equal(info.senderDeviceId, 2);
    assert.deepEqual(info.senderIdentityKey, alice.identity.identityKey);
    assert.equal(info.expiresAt, res.body.expiresAt);
    assert.equal(info.serverKeyId, h.authority.serverKeyId);
    assert.equal(validateSenderCertificate(certificate, [h.authority.trustRoot], h.clock.t), true);
    assert.equal(validateSenderCertificate(certificate, [h.authority.trustRoot], res.body.expiresAt + 1), false);
    assert.equal(validateSenderCertificate(certificate, [generateTrustRoot().publicKey], h.clock.t), false);
  });

  it('refuses a request without valid device credentials', async () => {
    const alice = await h.register();
    assert.equal((await h.call('GET', '/v1/certificate/sender')).status, 401);
    const wrong = alice.devices[0]!.auth.slice(0, -6) + 'AAAAA=';
    assert.equal((await h.call('GET', '/v1/certificate/sender', undefined, wrong)).status, 401);
  });

  it('limits certificates per device (20 per 10 minutes by default) with RATE_LIMITED and a retry time', async () => {
    const alice = await h.register(2);
    for (let i = 0; i < 20; i++) assert.equal((await h.call('GET', '/v1/certificate/sender', undefined, alice.devices[0]!.auth)).status, 200);
    const limited = await h.call<{ code: string; retryAfterMs: number }>('GET', '/v1/certificate/sender', undefined, alice.devices[0]!.auth);
    assert.equal(limited.status, 429);
    assert.equal(limited.body.code, 'RATE_LIMITED');
    assert.ok(limited.body.retryAfterMs > 0);
    assert.equal((await h.call('GET', '/v1/certificate/sender', undefined, alice.devices[1]!.auth)).status, 200, 'another device has its own bucket');
  });
});

describe('a relay without sealed-sender keys', () => {
  it('answers NOT_FOUND for certificates and names no trust root', async () => {
    const h = await startRelayHarness({ certificates: false });
    try {
      const alice = await h.register();
      assert.equal((await h.call('GET', '/v1/certificate/sender', undefined, alice.devices[0]!.auth)).status, 404);
      assert.equal((await h.call<RelayInfoResponse>('GET', '/v1/info')).body.senderCertificateTrustRoot, undefined);
    } finally {
      await h.close();
    }
  });
});
