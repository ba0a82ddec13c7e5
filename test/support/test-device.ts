// SPDX-License-Identifier: AGPL-3.0-only
/**
 * A small test client built on @parley/crypto and @parley/protocol (the full client engine is
 * clients/core): registers accounts, links devices, uploads keys, claims bundles, encrypts per
 * device with real libsignal sessions and decrypts what arrives.
 */
import {
  createMemoryStores,
  generateIdentity,
  generateKyberPreKey,
  generateKyberPreKeys,
  generatePreKeys,
  generateSignedPreKey,
  identityFromKeyPair,
  randomBytes,
  SessionCipher,
  type LocalIdentity,
  type ProtocolStores,
} from '@parley/crypto';
import {
  aciToBytes,
  EnvelopeType,
  formatBasicAuth,
  fromBase64Url,
  toBase64Url,
  type Aci,
  type BundleResponse,
  type DeviceKeysJson,
  type Envelope,
  type RegisterAccountResponse,
} from '@parley/protocol';
import { DeviceSocket, type TestCredentials } from './device-socket.js';

/** An HTTP answer. */
export interface HttpAnswer<T = unknown> {
  readonly status: number;
  readonly body: T;
}

/** Calls the relay's REST API. */
export async function http<T = unknown>(
  baseUrl: string,
  method: string,
  path: string,
  body?: unknown,
  authorization?: string,
): Promise<HttpAnswer<T>> {
  const res = await fetch(baseUrl + path, {
    method,
    headers: {
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
      ...(authorization ? { authorization } : {}),
    },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    // not JSON; keep the text
  }
  return { status: res.status, body: parsed as T };
}

/** Fresh keys for a device: records go into its stores, the upload form is returned. */
async function makeDeviceKeys(identity: LocalIdentity, stores: ProtocolStores, oneTime: number): Promise<DeviceKeysJson> {
  const now = Date.now();
  const spk = generateSignedPreKey(identity.identityKeyPair, 1, now);
  const lastResort = generateKyberPreKey(identity.identityKeyPair, 1, now);
  const pre = generatePreKeys(1, oneTime);
  const kyber = generateKyberPreKeys(identity.identityKeyPair, 2, oneTime, now);
  await stores.signedPreKeys.saveSignedPreKey(spk.keyId, spk.record);
  await stores.kyberPreKeys.saveKyberPreKey(lastResort.keyId, lastResort.record, true);
  for (const k of pre) await stores.preKeys.savePreKey(k.keyId, k.record);
  for (const k of kyber) await stores.kyberPreKeys.saveKyberPreKey(k.keyId, k.record, false);
  const signed = (k: { keyId: number; publicKey: Uint8Array; signature: Uint8Array }) => ({
    keyId: k.keyId,
    publicKey: toBase64Url(k.publicKey),
    signature: toBase64Url(k.signature),
  });
  return {
    signedPreKey: signed(spk.upload),
    lastResortKyberPreKey: signed(lastResort.upload),
    preKeys: pre.map((k) => ({ keyId: k.keyId, publicKey: toBase64Url(k.upload.publicKey) })),
    kyberPreKeys: kyber.map((k) => signed(k.upload)),
  };
}

/** One device of a test account. */
export class TestDevice implements TestCredentials {
  readonly cipher: SessionCipher;
  private readonly bundles = new Map<string, Promise<BundleResponse>>();
  constructor(
    readonly relayUrl: string,
    readonly aci: Aci,
    readonly username: string,
    readonly deviceId: number,
    readonly secret: Uint8Array,
    readonly identity: LocalIdentity,
    readonly stores: ProtocolStores,
  ) {
    this.cipher = new SessionCipher(stores, { localAddress: { aci, deviceId } });
  }

  /** The Authorization header value. */
  get authorization(): string {
    return formatBasicAuth(this.aci, this.deviceId, this.secret);
  }

  /** The WebSocket URL of the relay. */
  get wsUrl(): string {
    return this.relayUrl.replace(/^http/, 'ws') + '/v1/websocket';
  }

  /** Opens this device's socket. */
  connect(): Promise<DeviceSocket> {
    return DeviceSocket.connect(this.wsUrl, this);
  }

  /** An authenticated REST call. */
  call<T = unknown>(method: string, path: string, body?: unknown): Promise<HttpAnswer<T>> {
    return http<T>(this.relayUrl, method, path, body, this.authorization);
  }

  /**
   * Encrypts `plaintext` for every device of `to` (claiming bundles where there is no session)
   * and returns the device messages of a Send; `exclude` leaves out a device (one's own).
   */
  async encryptFor(to: Aci, plaintext: Uint8Array, exclude?: number) {
    const bundle = await this.claim(to);
    const b = (s: string) => fromBase64Url(s)!;
    const out = [];
    for (const d of bundle.devices) {
      if (d.deviceId === exclude) continue;
      const address = { aci: to, deviceId: d.deviceId };
      if (!(await this.cipher.hasSession(address))) {
        await this.cipher.processBundle(address, {
          registrationId: d.registrationId,
          deviceId: d.deviceId,
          identityKey: b(bundle.identityKey),
          signedPreKey: { keyId: d.signedPreKey.keyId, publicKey: b(d.signedPreKey.publicKey), signature: b(d.signedPreKey.signature) },
          kyberPreKey: { keyId: d.kyberPreKey.keyId, publicKey: b(d.kyberPreKey.publicKey), signature: b(d.kyberPreKey.signature) },
          ...(d.preKey ? { preKey: { keyId: d.preKey.keyId, publicKey: b(d.preKey.publicKey) } } : {}),
        });
      }
      const enc = await this.cipher.encrypt(address, plaintext);
      out.push({
        deviceId: d.deviceId,
        registrationId: enc.registrationId,
        type: enc.type === 'prekey' ? EnvelopeType.PREKEY : EnvelopeType.CIPHERTEXT,
        content: enc.body,
      });
    }
    return out;
  }

  /**
   * Makes sure there is a session with every device of `to` (claiming bundles where there is
   * none) without encrypting anything; `exclude` leaves out a device (one's own). Resolves with
   * each device and the registration id its session has.
   */
  async ensureSessions(to: Aci, exclude?: number): Promise<Array<{ deviceId: number; registrationId: number }>> {
    const bundle = await this.claim(to);
    const b = (s: string) => fromBase64Url(s)!;
    const out = [];
    for (const d of bundle.devices) {
      if (d.deviceId === exclude) continue;
      const address = { aci: to, deviceId: d.deviceId };
      if (!(await this.cipher.hasSession(address))) {
        await this.cipher.processBundle(address, {
          registrationId: d.registrationId,
          deviceId: d.deviceId,
          identityKey: b(bundle.identityKey),
          signedPreKey: { keyId: d.signedPreKey.keyId, publicKey: b(d.signedPreKey.publicKey), signature: b(d.signedPreKey.signature) },
          kyberPreKey: { keyId: d.kyberPreKey.keyId, publicKey: b(d.kyberPreKey.publicKey), signature: b(d.kyberPreKey.signature) },
          ...(d.preKey ? { preKey: { keyId: d.preKey.keyId, publicKey: b(d.preKey.publicKey) } } : {}),
        });
      }
      out.push({ deviceId: d.deviceId, registrationId: (await this.cipher.remoteRegistrationId(address))! });
    }
    return out;
  }

  /** The bundles of every device of `to`: one claim per peer account (cached as a promise, so concurrent sends share it). */
  private claim(to: Aci): Promise<BundleResponse> {
    let claim = this.bundles.get(to);
    if (!claim) {
      claim = this.call<BundleResponse>('GET', `/v1/keys/${to}/*`).then((r) => {
        if (r.status !== 200) throw new Error(`bundle claim failed: ${r.status} ${JSON.stringify(r.body)}`);
        return r.body;
      });
      this.bundles.set(to, claim);
      claim.catch(() => this.bundles.delete(to));
    }
    return claim;
  }

  /** Forgets the cached device list of `aci` (after MISMATCHED_DEVICES). */
  forgetDevices(aci: Aci): void {
    this.bundles.delete(aci);
  }

  /** Builds, encrypts and sends one message to `to` over `socket`; resolves with the relay's answer. */
  async sendText(socket: DeviceSocket, to: Aci, text: string, messageId: Uint8Array = randomBytes(16)) {
    const messages = await this.encryptFor(to, new TextEncoder().encode(text), to === this.aci ? this.deviceId : undefined);
    const requestId = socket.requestId();
    socket.send({
      kind: {
        case: 'send',
        value: { requestId, destination: aciToBytes(to), messageId, timestamp: BigInt(Date.now()), messages },
      },
    });
    return socket.answer(requestId);
  }

  /** Decrypts an envelope sent to this device. */
  async decrypt(envelope: Envelope): Promise<string> {
    const from = { aci: aciFromWire(envelope.source), deviceId: envelope.sourceDevice };
    const type = envelope.type === EnvelopeType.PREKEY ? 'prekey' : 'ciphertext';
    return new TextDecoder().decode(await this.cipher.decrypt(from, type, envelope.content));
  }
}

function aciFromWire(bytes: Uint8Array): Aci {
  const h = Buffer.from(bytes).toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}` as Aci;
}

/** Registers a new account; resolves with its device 1. */
export async function registerAccount(relayUrl: string, username: string, oneTimeKeys = 5): Promise<TestDevice> {
  const identity = generateIdentity();
  const stores = createMemoryStores(identity);
  const secret = randomBytes(32);
  const keys = await makeDeviceKeys(identity, stores, oneTimeKeys);
  const res = await http<RegisterAccountResponse>(relayUrl, 'POST', '/v1/accounts', {
    username,
    identityKey: toBase64Url(identity.identityKey),
    registrationId: identity.registrationId,
    authSecret: toBase64Url(secret),
    ...keys,
  });
  if (res.status !== 200 && res.status !== 201) throw new Error(`registration failed: ${res.status} ${JSON.stringify(res.body)}`);
  return new TestDevice(relayUrl, res.body.aci as Aci, username, res.body.deviceId, secret, identity, stores);
}

/** Links a new device to `existing`'s account (same identity key pair, own registration id and keys). */
export async function linkDevice(existing: TestDevice, oneTimeKeys = 5): Promise<TestDevice> {
  const token = await existing.call<{ token: string }>('POST', '/v1/devices/link-tokens', {});
  if (token.status !== 200 && token.status !== 201) throw new Error(`link token failed: ${token.status} ${JSON.stringify(token.body)}`);
  const identity = identityFromKeyPair(existing.identity.identityKeyPair);
  const stores = createMemoryStores(identity);
  const secret = randomBytes(32);
  const keys = await makeDeviceKeys(identity, stores, oneTimeKeys);
  const res = await http<RegisterAccountResponse>(existing.relayUrl, 'POST', '/v1/devices', {
    token: token.body.token,
    registrationId: identity.registrationId,
    authSecret: toBase64Url(secret),
    ...keys,
  });
  if (res.status !== 200 && res.status !== 201) throw new Error(`linking failed: ${res.status} ${JSON.stringify(res.body)}`);
  return new TestDevice(existing.relayUrl, existing.aci, existing.username, res.body.deviceId, secret, identity, stores);
}
