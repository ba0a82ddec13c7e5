// SPDX-License-Identifier: AGPL-3.0-only
/**
 * Log hygiene (DESIGN §13, CONVENTIONS 8): a relay logging at `trace` serves a full run —
 * registrations, a device linked through a provisioning socket with a link token, messages both
 * ways on the live path and from the queue, refused credentials, a removed device, real `parley`
 * CLI processes chatting and linking a laptop with history transfer, a graceful shutdown — and
 * then its complete output is searched for every plaintext, ciphertext, auth secret (base64url,
 * base64, hex, and as an Authorization header), link token, link code, push token (APNs and FCM,
 * with a wake-up through the log-only push adapter) and identity private key the run used. None may appear; every log line must be a JSON object.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import WebSocket from 'ws';
import { generateProvisioningKeyPair, openProvisioningMessage, sealProvisioningMessage } from '@parley/crypto';
import { aciToBytes, decodeFrame, formatBasicAuth, fromUtf8, toBase64Url, utf8, type Frame } from '@parley/protocol';
import { DeviceSocket, UpgradeRefused } from '../support/device-socket.js';
import { REPO_ROOT, startRelay, type RelayProcess } from '../support/relay-process.js';
import { http, linkDevice, registerAccount, type TestDevice } from '../support/test-device.js';

const PARLEY = join(REPO_ROOT, 'clients', 'cli', 'bin', 'parley.js');

/** Every textual form a byte string could take in a log line. */
function encodings(bytes: Uint8Array): string[] {
  const b = Buffer.from(bytes);
  return [toBase64Url(bytes), b.toString('base64'), b.toString('hex'), b.toString('hex').toUpperCase()];
}

/** The 32-byte private key inside a serialized libsignal IdentityKeyPair (protobuf: 1 = public, 2 = private). */
function identityPrivateKey(pair: Uint8Array): Uint8Array {
  assert.equal(pair.length, 2 + 33 + 2 + 32, 'a serialized IdentityKeyPair');
  assert.deepEqual([pair[0], pair[1], pair[35], pair[36]], [0x0a, 33, 0x12, 32]);
  return pair.subarray(37);
}

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function parley(args: string[], cwd: string, onStdout?: (text: string) => void): Promise<Run> {
  const child = spawn(process.execPath, [PARLEY, ...args], { cwd, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, PARLEY_HOME: '' } });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => {
    stdout += d;
    onStdout?.(stdout);
  });
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  return new Promise((resolve) => child.once('exit', (code) => resolve({ code, stdout, stderr })));
}

async function ok(run: Promise<Run>, what: string): Promise<Run> {
  const r = await run;
  assert.equal(r.code, 0, `${what}: ${r.stderr}`);
  return r;
}

describe('relay logs hold no content, keys, secrets or tokens', () => {
  let relay: RelayProcess;
  /** Strings that must not be in the log, with what each one is (for the failure message). */
  const forbidden = new Map<string, string>();
  const forbid = (what: string, ...values: string[]) => {
    for (const v of values) if (v.length >= 8) forbidden.set(v, what);
  };
  const forbidBytes = (what: string, bytes: Uint8Array) => forbid(what, ...encodings(bytes));
  const forbidDevice = (name: string, d: TestDevice) => {
    forbidBytes(`${name}'s auth secret`, d.secret);
    forbid(`${name}'s Authorization header`, d.authorization, d.authorization.slice('Basic '.length));
    forbidBytes(`${name}'s identity key pair`, d.identity.identityKeyPair);
    forbidBytes(`${name}'s identity private key`, identityPrivateKey(d.identity.identityKeyPair));
  };

  before(async () => {
    // A short push window, so the queued message below wakes bob (through the log adapter) before he is back.
    relay = await startRelay({ args: ['--log-level', 'trace', '--push-coalesce-ms', '50'] });
  });
  after(async () => {
    await relay.stop();
  });

  it('protocol-level devices: register, link through a provisioning socket, chat, fail auth, remove a device', async () => {
    const alice1 = await registerAccount(relay.url, 'alice');
    const bob = await registerAccount(relay.url, 'bob');
    forbidDevice('alice1', alice1);
    forbidDevice('bob', bob);

    // Every link token alice is given.
    const call = alice1.call.bind(alice1);
    alice1.call = async <T>(method: string, path: string, body?: unknown) => {
      const r = await call<T>(method, path, body);
      const token = (r.body as { token?: unknown } | undefined)?.token;
      if (typeof token === 'string') forbid('a link token', token);
      return r;
    };

    // A new device waits on a provisioning socket; alice seals it her identity and a link token.
    const ws = new WebSocket(relay.url.replace(/^http/, 'ws') + '/v1/provisioning');
    const frames: Frame[] = [];
    const address = await new Promise<string>((resolve, reject) => {
      ws.on('message', (d: Buffer) => {
        const f = decodeFrame(new Uint8Array(d));
        frames.push(f);
        if (f.kind.case === 'provisioningAddress') resolve(f.kind.value.address);
      });
      ws.once('error', reject);
    });
    forbid('a provisioning address', address);
    const linking = generateProvisioningKeyPair();
    forbidBytes('a provisioning private key', linking.privateKey);
    const token = await alice1.call<{ token: string }>('POST', '/v1/devices/link-tokens', {});
    assert.equal(token.status, 200);
    const payload = utf8(JSON.stringify({ identityKeyPair: toBase64Url(alice1.identity.identityKeyPair), token: token.body.token }));
    const sealed = sealProvisioningMessage(linking.publicKey, payload);
    forbidBytes('a sealed provisioning message', sealed);
    const closed = new Promise<void>((resolve) => ws.once('close', () => resolve()));
    assert.equal((await alice1.call('PUT', `/v1/provisioning/${address}`, { body: toBase64Url(sealed) })).status, 204);
    await closed;
    const got = frames.find((f) => f.kind.case === 'provisioningMessage');
    assert.ok(got?.kind.case === 'provisioningMessage');
    assert.equal(JSON.parse(fromUtf8(openProvisioningMessage(linking.privateKey, got.kind.value.body))).token, token.body.token);
    const alice2 = await linkDevice(alice1);
    forbidDevice('alice2', alice2);

    // Push tokens: bob's phone on APNs, alice's second device on FCM.
    const apnsToken = randomBytes(32).toString('hex');
    const fcmToken = `${toBase64Url(randomBytes(16))}:APA91b${toBase64Url(randomBytes(96))}`;
    forbid('an APNs push token', apnsToken, apnsToken.toUpperCase());
    forbid('an FCM push token', fcmToken, fcmToken.slice(0, 40), fcmToken.slice(-40));
    assert.equal((await bob.call('PUT', '/v1/devices/me/push', { provider: 'apns', token: apnsToken })).status, 204);
    assert.equal((await alice2.call('PUT', '/v1/devices/me/push', { provider: 'fcm', token: fcmToken })).status, 204);
    assert.equal((await bob.call('PUT', '/v1/devices/me/push', { provider: 'apns', token: 'zz' + apnsToken.slice(2) })).status, 400);

    // Live delivery both ways, a copy to alice's other device, and a queued drain.
    const [a1, a2, b] = await Promise.all([alice1.connect(), alice2.connect(), bob.connect()]);
    await Promise.all([a1, a2, b].map((s) => s.drained()));
    const texts = ['hygiene: the eagle lands at dawn \u{1F985}', 'hygiene: r\u00e9ponse secr\u00e8te de bob', 'hygiene: note to my other device'];
    for (const t of texts) forbid('a plaintext', t, toBase64Url(utf8(t)), Buffer.from(t).toString('base64'));
    const encryptAndSend = async (from: TestDevice, socket: DeviceSocket, to: TestDevice, text: string) => {
      const messages = await from.encryptFor(to.aci, utf8(text), to.aci === from.aci ? from.deviceId : undefined);
      for (const m of messages) forbidBytes('a ciphertext', m.content);
      const requestId = socket.requestId();
      socket.send({ kind: { case: 'send', value: { requestId, destination: aciToBytes(to.aci), messageId: randomBytes(16), timestamp: BigInt(Date.now()), messages } } });
      const r = await socket.answer(requestId);
      assert.equal(r.error, undefined, r.error?.code);
    };
    await encryptAndSend(alice1, a1, bob, texts[0]!);
    await b.waitForEnvelopes(1);
    assert.equal(await bob.decrypt(b.envelopes[0]!), texts[0]);
    await encryptAndSend(bob, b, alice1, texts[1]!);
    await a1.waitForEnvelopes(1);
    await a2.waitForEnvelopes(1);
    assert.equal(await alice1.decrypt(a1.envelopes[0]!), texts[1]);
    await encryptAndSend(alice1, a1, alice1, texts[2]!);
    await a2.waitForEnvelopes(2);
    for (const [s, n] of [[a1, 1], [a2, 2], [b, 1]] as const) s.ack(Number(s.envelopes[n - 1]!.seq));
    await b.close();
    const queued = 'hygiene: waiting in the queue for bob';
    forbid('a plaintext', queued);
    await encryptAndSend(alice1, a1, bob, queued);
    const deadline = Date.now() + 10_000;
    while (!relay.output().includes('"msg":"wake-up (log only')) {
      assert.ok(Date.now() < deadline, 'bob was woken (through the log adapter)');
      await new Promise((r) => setTimeout(r, 20));
    }
    const b2 = await bob.connect();
    await b2.waitForEnvelopes(1);
    assert.equal(await bob.decrypt(b2.envelopes[0]!), queued);
    b2.ack(Number(b2.envelopes[0]!.seq));

    // Refusals: a wrong secret on the socket and on REST, a text frame.
    const wrong = randomBytes(32);
    forbidBytes('a wrong secret', wrong);
    forbid('a wrong Authorization header', formatBasicAuth(alice1.aci, 1, wrong));
    await assert.rejects(DeviceSocket.connect(relay.wsUrl, { aci: alice1.aci, deviceId: 1, secret: wrong }), UpgradeRefused);
    assert.equal((await http(relay.url, 'GET', '/v1/accounts/me', undefined, formatBasicAuth(alice1.aci, 1, wrong))).status, 401);
    b2.sendRaw('hygiene: a text frame the relay refuses');
    forbid('a refused frame', 'hygiene: a text frame the relay refuses');

    assert.equal((await bob.call('DELETE', '/v1/devices/me/push')).status, 204);

    // alice removes her second device while it is connected.
    assert.equal((await alice1.call('DELETE', `/v1/devices/${alice2.deviceId}`)).status, 204);
    await a2.closed;
    for (const s of [a1, b2]) await s.close();
  });

  it('CLI processes: register, chat, link a laptop that receives the history', async () => {
    const cwd = mkdtempSync(join(tmpdir(), 'parley-hygiene-'));
    const texts = ['hygiene-cli: carol asks about the quarterly numbers', 'hygiene-cli: dave answers 42 \u2014 keep it quiet'];
    for (const t of texts) forbid('a CLI plaintext', t);
    await ok(parley(['register', 'carol', '--server', relay.url, '--profile', './carol'], cwd), 'register carol');
    await ok(parley(['register', 'dave', '--server', relay.url, '--profile', './dave'], cwd), 'register dave');
    await ok(parley(['send', 'dave', texts[0]!, '--profile', './carol'], cwd), 'carol sends');
    assert.match((await ok(parley(['receive', '--profile', './dave'], cwd), 'dave receives')).stdout, /quarterly numbers/);
    await ok(parley(['send', 'carol', texts[1]!, '--profile', './dave'], cwd), 'dave answers');
    await ok(parley(['receive', '--profile', './carol'], cwd), 'carol receives');

    let found: (code: string) => void = () => {};
    const linkCode = new Promise<string>((resolve) => (found = resolve));
    const laptop = parley(['link', '--server', relay.url, '--profile', './carol-laptop'], cwd, (out) => {
      const m = /parley-link:[A-Za-z0-9_-]+/.exec(out);
      if (m) found(m[0]);
    });
    const code = await Promise.race([linkCode, new Promise<string>((_, reject) => setTimeout(() => reject(new Error('no link code printed')), 15_000))]);
    forbid('a link code', code, code.slice('parley-link:'.length));
    await ok(parley(['link', 'approve', code, '--profile', './carol'], cwd), 'carol approves the laptop');
    await ok(laptop, 'the laptop links');
    const history = await ok(parley(['history', 'dave', '--profile', './carol-laptop', '--json'], cwd), 'the laptop shows the history');
    assert.match(history.stdout, /keep it quiet/);
  });

  it('after a graceful shutdown, no forbidden string is anywhere in the relay\u2019s output, and every log line is JSON', async () => {
    assert.equal(await relay.stop(), 0);
    const out = relay.output();
    const lines = out.split('\n').filter((l) => l.length > 0);
    const logLines = lines.filter((l) => !l.startsWith('parley-relay listening on '));
    assert.equal(lines.length - logLines.length, 1, 'one plain line: where the relay listens');
    const levels = new Set<number>();
    const messages = new Set<string>();
    for (const l of logLines) {
      const entry = JSON.parse(l) as { level?: unknown; msg?: unknown; service?: unknown };
      assert.equal(typeof entry.level, 'number', l);
      assert.equal(entry.service, 'parley-relay');
      levels.add(entry.level as number);
      if (typeof entry.msg === 'string') messages.add(entry.msg);
    }
    // The run really was logged in detail (otherwise the search below proves nothing).
    for (const m of [
      'account registered',
      'link token issued',
      'device linked',
      'device connected',
      'device disconnected',
      'provisioning message delivered',
      'upgrade refused',
      'device removed',
      'push providers',
      'push token registered',
      'wake-up (log only: this relay has no credentials for the provider)',
      'push token removed',
      'relay stopped',
    ]) {
      assert.ok(messages.has(m), `the log has "${m}"`);
    }
    assert.ok(levels.has(20), 'debug lines were written');
    assert.ok(forbidden.size >= 40, `${forbidden.size} forbidden strings collected`);
    const leaks = [...new Set([...forbidden].filter(([value]) => out.includes(value)).map(([, what]) => what))];
    assert.deepEqual(leaks, [], `the relay's output holds: ${leaks.join(', ')}`);
  });
});
