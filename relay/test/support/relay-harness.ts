// SPDX-License-Identifier: AGPL-3.0-only
/**
 * A relay composed in process on port 0 for the sealed-sender and multi-recipient tests: SQLite
 * stores in a temp directory (the envelope store behind the fault-injecting wrapper), a clock
 * tests move, an in-memory sender-certificate authority, accounts with several devices
 * registered and linked over REST, and frame clients for both WebSockets.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import WebSocket from 'ws';
import { generateIdentity, generateKyberPreKey, generateSignedPreKey, identityFromKeyPair, type LocalIdentity } from '@parley/crypto';
import { createKeyServer, keyServerErrorHandler, openSqliteKeyStore, type KeyServer, type KeyServerConfigInput } from '@parley/keyserver';
import { decodeFrame, encodeFrame, formatBasicAuth, toBase64Url, type Aci, type Envelope, type Frame, type FrameInit } from '@parley/protocol';
import { resolveRelayConfig, type RelayConfig } from '../../src/config.js';
import { createRelay, type Relay, type RelayPorts } from '../../src/relay-server.js';
import { createEphemeralSenderCertificateAuthority, type SenderCertificateAuthority } from '../../src/sealed-sender/certificate-authority.js';
import { FaultyEnvelopeStore } from '../../src/storage/faulty-envelope-store.js';
import { openSqliteEnvelopeStore } from '../../src/storage/sqlite-envelope-store.js';

/** One device of a test account. */
export interface HarnessDevice {
  readonly deviceId: number;
  readonly registrationId: number;
  readonly secret: Uint8Array;
  /** The `Authorization` header of this device. */
  readonly auth: string;
}

/** A registered account with its devices. */
export interface HarnessAccount {
  readonly aci: Aci;
  readonly identity: LocalIdentity;
  readonly devices: HarnessDevice[];
}

/** A running in-process relay. */
export interface RelayHarness {
  readonly relay: Relay;
  readonly url: string;
  readonly wsUrl: string;
  readonly unidentifiedUrl: string;
  readonly dir: string;
  readonly store: FaultyEnvelopeStore;
  readonly keyServer: KeyServer;
  readonly authority: SenderCertificateAuthority;
  /** The relay's clock: tests set `clock.t`. */
  readonly clock: { t: number; now(): number };
  /** Registers an account with `devices` devices (device 1 registers, the others are linked). */
  register(devices?: number): Promise<HarnessAccount>;
  /** Calls a REST route. */
  call<T = unknown>(method: string, path: string, body?: unknown, auth?: string): Promise<{ status: number; body: T }>;
  close(): Promise<void>;
}

/** Options of {@link startRelayHarness}. */
export interface RelayHarnessOptions {
  readonly config?: Partial<RelayConfig>;
  /** Default true: the relay issues sender certificates. */
  readonly certificates?: boolean;
  /** Extra ports. */
  readonly ports?: Partial<RelayPorts>;
  /** Key server settings (e.g. a higher registration limit). */
  readonly keyServer?: KeyServerConfigInput;
}

let usernames = 0;

/** Starts a relay in process. */
export async function startRelayHarness(options: RelayHarnessOptions = {}): Promise<RelayHarness> {
  const dir = mkdtempSync(join(tmpdir(), 'parley-relay-harness-'));
  const clock = {
    t: Date.now(),
    now() {
      return this.t;
    },
  };
  const keyServer = createKeyServer({ store: openSqliteKeyStore(join(dir, 'keys.db')), clock, ...(options.keyServer ? { config: options.keyServer } : {}) });
  const store = new FaultyEnvelopeStore(openSqliteEnvelopeStore({ path: join(dir, 'relay.db'), clock }));
  const authority = createEphemeralSenderCertificateAuthority(clock.now());
  const relay = createRelay(resolveRelayConfig({ port: 0, ...options.config }), {
    envelopes: store,
    directory: keyServer.directory,
    mountRoutes: (app) => keyServer.registerRoutes(app),
    errorHandler: keyServerErrorHandler,
    clock,
    log: pino({ level: 'silent' }),
    ...(options.certificates === false ? {} : { senderCertificates: authority }),
    ...options.ports,
  });
  const { url } = await relay.listen();
  const wsUrl = `${url.replace('http', 'ws')}/v1/websocket`;

  const call = async <T>(method: string, path: string, body?: unknown, auth?: string) => {
    const res = await fetch(url + path, {
      method,
      headers: { ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...(auth ? { authorization: auth } : {}) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: (text ? JSON.parse(text) : undefined) as T };
  };

  const keys = (identity: LocalIdentity) => {
    const now = Date.now();
    const s = (k: { keyId: number; publicKey: Uint8Array; signature: Uint8Array }) => ({ keyId: k.keyId, publicKey: toBase64Url(k.publicKey), signature: toBase64Url(k.signature) });
    return { signedPreKey: s(generateSignedPreKey(identity.identityKeyPair, 1, now).upload), lastResortKyberPreKey: s(generateKyberPreKey(identity.identityKeyPair, 1, now).upload) };
  };

  const register = async (devices = 1): Promise<HarnessAccount> => {
    const identity = generateIdentity();
    const secret = randomBytes(32);
    const res = await call<{ aci: Aci }>('POST', '/v1/accounts', {
      username: `h${process.pid}x${++usernames}`,
      identityKey: toBase64Url(identity.identityKey),
      registrationId: identity.registrationId,
      authSecret: toBase64Url(secret),
      ...keys(identity),
    });
    if (res.status !== 200) throw new Error(`registration failed: ${res.status} ${JSON.stringify(res.body)}`);
    const aci = res.body.aci;
    const first: HarnessDevice = { deviceId: 1, registrationId: identity.registrationId, secret, auth: formatBasicAuth(aci, 1, secret) };
    const account: HarnessAccount = { aci, identity, devices: [first] };
    for (let i = 1; i < devices; i++) {
      const token = await call<{ token: string }>('POST', '/v1/devices/link-tokens', {}, first.auth);
      const linked = identityFromKeyPair(identity.identityKeyPair);
      const linkSecret = randomBytes(32);
      const l = await call<{ deviceId: number }>('POST', '/v1/devices', {
        token: token.body.token,
        registrationId: linked.registrationId,
        authSecret: toBase64Url(linkSecret),
        ...keys(identity),
      });
      if (l.status !== 200) throw new Error(`linking failed: ${l.status} ${JSON.stringify(l.body)}`);
      account.devices.push({ deviceId: l.body.deviceId, registrationId: linked.registrationId, secret: linkSecret, auth: formatBasicAuth(aci, l.body.deviceId, linkSecret) });
    }
    return account;
  };

  return {
    relay,
    url,
    wsUrl,
    unidentifiedUrl: `${wsUrl}/unidentified`,
    dir,
    store,
    keyServer,
    authority,
    clock,
    register,
    call,
    close: () => relay.close(),
  };
}

/** A WebSocket that collects every frame it receives. */
export class FrameClient {
  readonly frames: Frame[] = [];
  private waiters: Array<() => void> = [];
  private constructor(readonly ws: WebSocket) {
    ws.on('message', (d: Buffer) => {
      this.frames.push(decodeFrame(new Uint8Array(d)));
      for (const w of this.waiters.splice(0)) w();
    });
  }

  /** Opens `url` (with an `Authorization` header when given). */
  static open(url: string, auth?: string): Promise<FrameClient> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, auth ? { headers: { authorization: auth } } : {});
      ws.once('open', () => resolve(new FrameClient(ws)));
      ws.once('error', reject);
    });
  }

  /** Waits (10 s at most by default) until `find` answers something. */
  async until<T>(find: () => T | undefined, what: string, timeoutMs = 10_000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const v = find();
      if (v !== undefined) return v;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}`);
      await new Promise<void>((r) => {
        const timer = setTimeout(r, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          r();
        });
      });
    }
  }

  /** Sends a frame. */
  send(frame: FrameInit): void {
    this.ws.send(encodeFrame(frame));
  }

  /** Sends a frame and waits for the answer naming `requestId` (a result or an Error). */
  async request(frame: FrameInit, requestId: number): Promise<Frame['kind']> {
    this.send(frame);
    return this.answer(requestId);
  }

  /** The answer naming `requestId`. */
  answer(requestId: number): Promise<Frame['kind']> {
    return this.until(() => {
      const f = this.frames.find(
        (x) => (x.kind.case === 'sendResult' || x.kind.case === 'sendMultiResult' || x.kind.case === 'error') && x.kind.value.requestId === requestId,
      );
      return f?.kind;
    }, `answer ${requestId}`);
  }

  /** Every envelope delivered so far. */
  envelopes(): Envelope[] {
    return this.frames.flatMap((f) => (f.kind.case === 'deliver' ? f.kind.value.envelopes : []));
  }

  /** Waits for QueueDrained. */
  async drained(): Promise<void> {
    await this.until(() => this.frames.find((f) => f.kind.case === 'queueDrained'), 'drain');
  }

  /** Closes the socket and waits for the close. */
  close(): Promise<void> {
    if (this.ws.readyState === WebSocket.CLOSED) return Promise.resolve();
    return new Promise((r) => {
      this.ws.once('close', () => r());
      this.ws.close();
    });
  }
}
