// SPDX-License-Identifier: AGPL-3.0-only
/**
 * A relay serving HTTPS and WSS with a certificate from a private CA made here with openssl:
 * clients that trust the CA (NODE_EXTRA_CA_CERTS) register and chat through it; clients that do
 * not are refused with a typed error that says the certificate is not trusted; plain HTTP to
 * the TLS port fails; SIGHUP swaps the certificate without a restart.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { RelayApi, RelayConnection, TransportError } from '@parley/client';
import { REPO_ROOT, startRelay, type RelayProcess } from '../support/relay-process.js';

const PARLEY = join(REPO_ROOT, 'clients', 'cli', 'bin', 'parley.js');
const OPENSSL = spawnSync('openssl', ['version']).status === 0;
const NO_OPENSSL = OPENSSL ? false : 'openssl is not on PATH: the TLS tests need it to make a CA and a certificate';

interface Pki {
  dir: string;
  caFile: string;
  certFile: string;
  keyFile: string;
}

function openssl(dir: string, args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
}

/** A CA and a server certificate for 127.0.0.1 and localhost, signed by it (EC P-256, 2 days). */
function makePki(): Pki {
  const dir = mkdtempSync(join(tmpdir(), 'parley-tls-'));
  openssl(dir, [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=Parley Test CA',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
  ]);
  issueServerCert(dir, 'server');
  return { dir, caFile: join(dir, 'ca.pem'), certFile: join(dir, 'server.pem'), keyFile: join(dir, 'server.key') };
}

/** Issues `<name>.pem` / `<name>.key` for the relay, signed by the CA in `dir`. */
function issueServerCert(dir: string, name: string): void {
  writeFileSync(
    join(dir, 'server.ext'),
    'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n',
  );
  openssl(dir, ['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', '/CN=localhost']);
  openssl(dir, ['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${name}.pem`, '-days', '2', '-extfile', 'server.ext']);
}

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `parley` as a real process; `trustCa` sets NODE_EXTRA_CA_CERTS. */
function parley(args: string[], cwd: string, caFile: string | undefined): Promise<Run> {
  const env: NodeJS.ProcessEnv = { ...process.env, PARLEY_HOME: '' };
  delete env.NODE_EXTRA_CA_CERTS;
  if (caFile) env.NODE_EXTRA_CA_CERTS = caFile;
  const child = spawn(process.execPath, [PARLEY, ...args], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  return new Promise((resolve) => child.once('exit', (code) => resolve({ code, stdout, stderr })));
}

/** SHA-256 of the certificate the server presents, checked against `caFile`. */
function presentedFingerprint(port: number, caFile: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ host: '127.0.0.1', port, ca: readFileSync(caFile), servername: 'localhost' }, () => {
      const fp = socket.getPeerCertificate().fingerprint256;
      socket.end();
      resolve(fp);
    });
    socket.once('error', reject);
  });
}

function pemFingerprint(file: string): string {
  const der = Buffer.from(readFileSync(file, 'utf8').replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64');
  return createHash('sha256').update(der).digest('hex').toUpperCase().match(/../g)!.join(':');
}

describe('TLS: HTTPS and WSS on the relay\u2019s one listener', { skip: NO_OPENSSL }, () => {
  let pki: Pki;
  let relay: RelayProcess;
  before(async () => {
    pki = makePki();
    relay = await startRelay({ args: ['--tls-cert', pki.certFile, '--tls-key', pki.keyFile, '--log-level', 'info'] });
  });
  after(async () => {
    await relay?.stop();
  });

  it('announces an https URL and a wss socket URL', () => {
    assert.match(relay.url, /^https:\/\/127\.0\.0\.1:\d+$/);
    assert.match(relay.wsUrl, /^wss:\/\/127\.0\.0\.1:\d+\/v1\/websocket$/);
  });

  it('lets clients that trust the CA register and chat over https and wss', async () => {
    const cwd = mkdtempSync(join(tmpdir(), 'parley-tls-chat-'));
    for (const name of ['alice', 'bob']) {
      const r = await parley(['register', name, '--server', relay.url, '--profile', `./${name}`, '--json'], cwd, pki.caFile);
      assert.equal(r.code, 0, `register ${name}: ${r.stderr}`);
    }
    const sent = await parley(['send', 'bob@localhost', 'over TLS, hello bob', '--profile', './alice', '--json'], cwd, pki.caFile);
    assert.equal(sent.code, 0, sent.stderr);
    const got = await parley(['receive', '--profile', './bob', '--json'], cwd, pki.caFile);
    assert.equal(got.code, 0, got.stderr);
    const texts = got.stdout.trim().split('\n').filter(Boolean).map((l) => (JSON.parse(l) as { text: string }).text);
    assert.deepEqual(texts, ['over TLS, hello bob']);
  });

  it('refuses a client that does not trust the CA with UNREACHABLE and a certificate message (CLI, exit 5)', async () => {
    const cwd = mkdtempSync(join(tmpdir(), 'parley-tls-untrusted-'));
    const r = await parley(['register', 'carol', '--server', relay.url, '--profile', './carol', '--json'], cwd, undefined);
    assert.equal(r.code, 5, r.stderr);
    const err = (JSON.parse(r.stderr.trim().split('\n').at(-1)!) as { error: { code: string; message: string } }).error;
    assert.equal(err.code, 'UNREACHABLE');
    assert.match(err.message, /TLS certificate this device does not trust \((SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_GET_ISSUER_CERT_LOCALLY|UNABLE_TO_VERIFY_LEAF_SIGNATURE)\)/);
    assert.match(err.message, /NODE_EXTRA_CA_CERTS/);
  });

  it('refuses an untrusted relay in the transport: REST and the device socket fail fast with UNREACHABLE', async () => {
    // This test process does not trust the CA (no NODE_EXTRA_CA_CERTS).
    const api = new RelayApi({ baseUrl: relay.url, timeoutMs: 5000 });
    await assert.rejects(api.info(), (e: unknown) => e instanceof TransportError && e.code === 'UNREACHABLE' && /does not trust/.test(e.message));
    const conn = new RelayConnection({
      url: relay.wsUrl,
      authorization: () => 'Basic AAAA',
      onEnvelopes: async () => {},
      initialBackoffMs: 60_000,
    });
    conn.start();
    const started = Date.now();
    try {
      await assert.rejects(conn.waitConnected(10_000), (e: unknown) => e instanceof TransportError && e.code === 'UNREACHABLE' && /does not trust/.test(e.message));
      assert.ok(Date.now() - started < 5000, 'the waiter learns of the certificate at once, not at its deadline');
    } finally {
      await conn.stop();
    }
  });

  it('fails plain HTTP to the TLS port', async () => {
    const plain = relay.url.replace(/^https:/, 'http:');
    await assert.rejects(fetch(`${plain}/healthz`, { signal: AbortSignal.timeout(5000) }));
    const api = new RelayApi({ baseUrl: plain, timeoutMs: 5000 });
    await assert.rejects(api.info(), (e: unknown) => e instanceof TransportError && e.code === 'UNREACHABLE');
  });

  it('serves the certificate chain the CA signed, and a renewed one after SIGHUP', async () => {
    assert.equal(await presentedFingerprint(relay.port, pki.caFile), pemFingerprint(pki.certFile));
    issueServerCert(pki.dir, 'renewed');
    writeFileSync(pki.certFile, readFileSync(join(pki.dir, 'renewed.pem')));
    writeFileSync(pki.keyFile, readFileSync(join(pki.dir, 'renewed.key')));
    relay.child.kill('SIGHUP');
    const want = pemFingerprint(pki.certFile);
    const deadline = Date.now() + 5000;
    let fp = '';
    while (Date.now() < deadline && (fp = await presentedFingerprint(relay.port, pki.caFile)) !== want) await new Promise((r) => setTimeout(r, 50));
    assert.equal(fp, want);
    while (Date.now() < deadline && !/TLS certificate reloaded/.test(relay.output())) await new Promise((r) => setTimeout(r, 20));
    assert.match(relay.output(), /TLS certificate reloaded/);
  });
});

describe('listening safely', () => {
  function runRelay(args: string[]): { status: number | null; stderr: string } {
    const dataDir = mkdtempSync(join(tmpdir(), 'parley-relay-unsafe-'));
    const r = spawnSync(process.execPath, [join(REPO_ROOT, 'relay', 'bin', 'parley-relay.js'), '--port', '0', '--data', dataDir, ...args], {
      encoding: 'utf8',
      timeout: 15_000,
    });
    return { status: r.status, stderr: r.stderr };
  }

  it('refuses a public address without TLS, exit 2, saying how to fix it', () => {
    for (const host of ['0.0.0.0', '::', '192.0.2.10', 'chat.example.org']) {
      const r = runRelay(['--host', host]);
      assert.equal(r.status, 2, `${host}: ${r.stderr}`);
      assert.match(r.stderr, new RegExp(`refusing to listen on ${host.replace(/\./g, '\\.')} without TLS: give --tls-cert and --tls-key, or --behind-proxy`));
    }
  });

  it('refuses half a TLS pair and unreadable or unusable files, exit 2', { skip: NO_OPENSSL }, () => {
    const half = runRelay(['--tls-cert', '/nonexistent/cert.pem']);
    assert.equal(half.status, 2);
    assert.match(half.stderr, /--tls-cert and --tls-key go together/);
    const missing = runRelay(['--tls-cert', '/nonexistent/cert.pem', '--tls-key', '/nonexistent/key.pem']);
    assert.equal(missing.status, 2);
    assert.match(missing.stderr, /cannot read --tls-cert \/nonexistent\/cert\.pem: ENOENT/);
    const pki = makePki();
    const mismatched = runRelay(['--tls-cert', pki.certFile, '--tls-key', join(pki.dir, 'ca.key')]);
    assert.equal(mismatched.status, 2);
    assert.match(mismatched.stderr, /the TLS certificate and key cannot be used together/);
    assert.doesNotMatch(mismatched.stderr, /PRIVATE KEY/);
  });

  it('starts on a public address with --behind-proxy or PARLEY_BEHIND_PROXY=1', async () => {
    for (const how of [{ args: ['--host', '0.0.0.0', '--behind-proxy'] }, { args: ['--host', '0.0.0.0'], env: { PARLEY_BEHIND_PROXY: '1' } }]) {
      const proxied = await startRelay(how);
      try {
        assert.match(proxied.url, /^http:\/\/0\.0\.0\.0:\d+$/);
        const res = await fetch(`http://127.0.0.1:${proxied.port}/healthz`);
        assert.equal(res.status, 200);
      } finally {
        await proxied.stop();
      }
    }
  });
});
