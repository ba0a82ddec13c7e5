// SPDX-License-Identifier: AGPL-3.0-only
/**
 * The relay's REST API (key server, devices, directory, provisioning), typed. Relay refusals
 * become ParleyErrors with their wire code (and retry-after); network failures TransportErrors.
 */
import {
  formatBasicAuth,
  isErrorCode,
  ParleyError,
  type AccessKeyRequest,
  type AccountInfoResponse,
  type AttachmentSlotRequest,
  type AttachmentSlotResponse,
  type BundleResponse,
  type DeviceListResponse,
  type ErrorResponse,
  type KeyCountsResponse,
  type KeyUploadJson,
  type LinkDeviceRequest,
  type LinkTokenResponse,
  type PresenceTokenRequest,
  type RegisterAccountRequest,
  type RegisterAccountResponse,
  type RelayInfoResponse,
  type SenderCertificateResponse,
  HTTP_ROUTES,
  toBase64Url,
} from '@parley/protocol';
import { connectFailure } from './connect-failure.js';
import { TransportError } from './transport-error.js';

/** Device credentials for authenticated calls. */
export interface ApiCredentials {
  readonly aci: string;
  readonly deviceId: number;
  readonly secret: Uint8Array;
}

/** Options of a RelayApi. */
export interface RelayApiOptions {
  /**
   * Base URL, e.g. http://127.0.0.1:7070 or https://chat.example.org. HTTPS certificates are
   * checked against the system CAs plus NODE_EXTRA_CA_CERTS (see connect-failure.ts).
   */
  readonly baseUrl: string;
  /** Per-request deadline, ms. Default 15,000. */
  readonly timeoutMs?: number;
  /** The fetch to use (tests may pass another). Default the global fetch. */
  readonly fetch?: typeof fetch;
}

/** See the module comment. */
export class RelayApi {
  readonly baseUrl: string;
  private readonly timeoutMs: number;
  private readonly fetchFn: typeof fetch;
  private credentials: ApiCredentials | undefined;

  constructor(opts: RelayApiOptions) {
    this.baseUrl = opts.baseUrl.replace(/\/+$/, '');
    this.timeoutMs = opts.timeoutMs ?? 15_000;
    this.fetchFn = opts.fetch ?? fetch;
  }

  /** Sets the credentials used by authenticated calls. */
  authenticate(credentials: ApiCredentials): void {
    this.credentials = credentials;
  }

  /** The WebSocket URL of the device socket. */
  get websocketUrl(): string {
    return this.baseUrl.replace(/^http/, 'ws') + '/v1/websocket';
  }

  /** The WebSocket URL of the unidentified socket: sealed-sender sends, no credentials. */
  get unidentifiedWebsocketUrl(): string {
    return this.baseUrl.replace(/^http/, 'ws') + HTTP_ROUTES.unidentifiedWebsocket;
  }

  /** The WebSocket URL of the provisioning socket. */
  get provisioningUrl(): string {
    return this.baseUrl.replace(/^http/, 'ws') + '/v1/provisioning';
  }

  /** The Authorization header of the current credentials. */
  get authorization(): string {
    const c = this.requireCredentials();
    return formatBasicAuth(c.aci, c.deviceId, c.secret);
  }

  /** The relay's domain and version (unauthenticated). */
  info(): Promise<RelayInfoResponse> {
    return this.request('GET', '/v1/info', undefined, false);
  }
  register(body: RegisterAccountRequest): Promise<RegisterAccountResponse> {
    return this.request('POST', '/v1/accounts', body, false);
  }
  whoami(): Promise<AccountInfoResponse> {
    return this.request('GET', '/v1/accounts/me');
  }
  linkToken(): Promise<LinkTokenResponse> {
    return this.request('POST', '/v1/devices/link-tokens', {});
  }
  linkDevice(body: LinkDeviceRequest): Promise<RegisterAccountResponse> {
    return this.request('POST', '/v1/devices', body, false);
  }
  devices(): Promise<DeviceListResponse> {
    return this.request('GET', '/v1/devices');
  }
  async removeDevice(deviceId: number): Promise<void> {
    await this.request('DELETE', `/v1/devices/${deviceId}`);
  }
  async uploadKeys(body: KeyUploadJson): Promise<void> {
    await this.request('PUT', '/v1/keys', body);
  }
  keyCounts(): Promise<KeyCountsResponse> {
    return this.request('GET', '/v1/keys/count');
  }
  /** Claims bundles of one device, or of all devices when `deviceId` is '*'. */
  claimBundles(aci: string, deviceId: number | '*' = '*'): Promise<BundleResponse> {
    return this.request('GET', `/v1/keys/${encodeURIComponent(aci)}/${deviceId}`);
  }
  lookup(username: string): Promise<AccountInfoResponse> {
    return this.request('GET', `/v1/directory/${encodeURIComponent(username)}`);
  }
  /** An upload slot for an encrypted attachment of exactly `size` bytes. */
  attachmentSlot(size: number): Promise<AttachmentSlotResponse> {
    const body: AttachmentSlotRequest = { size };
    return this.request('POST', '/v1/attachments', body);
  }
  /** A short-lived sender certificate for this device (sealed sender). */
  senderCertificate(): Promise<SenderCertificateResponse> {
    return this.request('GET', HTTP_ROUTES.senderCertificate);
  }
  /** Registers the account's 16-byte access key (derived from its profile key) for sealed sends to it. */
  async putAccessKey(accessKey: Uint8Array): Promise<void> {
    const body: AccessKeyRequest = { accessKey: toBase64Url(accessKey) };
    await this.request('PUT', HTTP_ROUTES.accessKey, body);
  }
  /** Registers the account's 32-byte presence token: its holders may watch the account's presence. */
  async putPresenceToken(token: Uint8Array): Promise<void> {
    const body: PresenceTokenRequest = { token: toBase64Url(token) };
    await this.request('PUT', HTTP_ROUTES.presenceToken, body);
  }
  /** Withdraws the account's presence token (presence off: nobody can watch it). */
  async deletePresenceToken(): Promise<void> {
    await this.request('DELETE', HTTP_ROUTES.presenceToken);
  }
  async sendProvisioning(address: string, body: string): Promise<void> {
    await this.request('PUT', `/v1/provisioning/${encodeURIComponent(address)}`, { body });
  }

  private requireCredentials(): ApiCredentials {
    if (!this.credentials) throw new ParleyError('UNAUTHORIZED', 'this profile has no account yet');
    return this.credentials;
  }

  private async request<T>(method: string, path: string, body?: unknown, auth = true): Promise<T> {
    const headers: Record<string, string> = {};
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (auth) headers.authorization = this.authorization;
    let res: Response;
    try {
      res = await this.fetchFn(this.baseUrl + path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (err) {
      if ((err as Error).name === 'TimeoutError') throw new TransportError('TIMEOUT', `no answer from ${this.baseUrl} in time`);
      throw connectFailure(err, this.baseUrl);
    }
    const text = await res.text();
    if (res.ok) return (text ? JSON.parse(text) : undefined) as T;
    let parsed: Partial<ErrorResponse> = {};
    try {
      parsed = JSON.parse(text) as ErrorResponse;
    } catch {
      // not a Parley relay answer
    }
    const code = typeof parsed.code === 'string' && isErrorCode(parsed.code) ? parsed.code : res.status >= 500 ? 'INTERNAL' : 'BAD_REQUEST';
    throw new ParleyError(code, parsed.message ?? `the relay answered ${res.status}`, parsed.retryAfterMs ? { retryAfterMs: parsed.retryAfterMs } : {});
  }
}
