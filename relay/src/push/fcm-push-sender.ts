// SPDX-License-Identifier: AGPL-3.0-only
/**
 * The FCM adapter of the push port, on `firebase-admin`'s messaging (HTTP v1 API,
 * `POST /v1/projects/<project>/messages:send`). Each wake-up is a data-only message whose data
 * is one constant marker ({@link FCM_WAKE_DATA}): no notification block, so Android hands it to
 * the app, which fetches its queue over its own connection. Urgent wake-ups go at `high`
 * priority (delivered at once, also in Doze), others at `normal`; all share one collapse key.
 *
 * Authentication: a service account. The OAuth access token is fetched by
 * {@link ServiceAccountCredential} (a `firebase-admin` Credential) from the `token_uri` the
 * service account file names, with a JWT signed by its key: firebase-admin's built-in
 * credential ignores `token_uri` and prints deprecation warnings on stderr.
 */
import { createSign, randomUUID } from 'node:crypto';
import { Agent as HttpsAgent, type AgentOptions } from 'node:https';
import { connect as netConnect, type Socket } from 'node:net';
import { deleteApp, initializeApp, type App, type Credential, type GoogleOAuthAccessToken } from 'firebase-admin/app';
import { getMessaging, type Message } from 'firebase-admin/messaging';
import type { Clock } from '../clock.js';
import type { PushOutcome, PushSender, WakeUp } from '../ports/push-sender.js';

/** The data of every wake-up. */
export const FCM_WAKE_DATA: Readonly<Record<string, string>> = Object.freeze({ parley: 'wake' });

/** The Android collapse key of every wake-up. */
export const FCM_COLLAPSE_KEY = 'parley-wake';

/** Google's token endpoint, for service account files that do not name one. */
export const GOOGLE_TOKEN_URI = 'https://oauth2.googleapis.com/token';

/** The OAuth scope FCM sends need. */
export const FCM_SCOPE = 'https://www.googleapis.com/auth/firebase.messaging';

/** The parts of a Google service account file the adapter uses. */
export interface ServiceAccount {
  readonly projectId: string;
  readonly clientEmail: string;
  /** PEM RSA private key. Secret. */
  readonly privateKey: string;
  /** Where access tokens come from. */
  readonly tokenUri: string;
}

/**
 * Parses the text of a service account JSON file.
 * @throws Error naming the missing or malformed field (never a value).
 */
export function parseServiceAccount(text: string): ServiceAccount {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new Error('the service account file is not JSON');
  }
  if (typeof json !== 'object' || json === null) throw new Error('the service account file is not a JSON object');
  const o = json as Record<string, unknown>;
  const field = (name: string): string => {
    const v = o[name];
    if (typeof v !== 'string' || v.length === 0) throw new Error(`the service account file has no ${name}`);
    return v;
  };
  if (o.type !== undefined && o.type !== 'service_account') throw new Error('the file is not a service account (type is not service_account)');
  const tokenUri = o.token_uri === undefined ? GOOGLE_TOKEN_URI : field('token_uri');
  if (!/^https?:\/\//.test(tokenUri)) throw new Error('the service account file\u2019s token_uri is not an http(s) URL');
  return { projectId: field('project_id'), clientEmail: field('client_email'), privateKey: field('private_key'), tokenUri };
}

/** Options of {@link ServiceAccountCredential}. */
export interface ServiceAccountCredentialOptions {
  readonly account: ServiceAccount;
  readonly clock: Clock;
  /** Longest wait for the token endpoint, ms. Default 10,000. */
  readonly timeoutMs?: number;
}

const base64Url = (data: string | Buffer) => Buffer.from(data).toString('base64url');

/**
 * OAuth 2.0 access tokens for a service account (RFC 7523 JWT bearer grant): a JWT signed with
 * the account's RSA key is exchanged at `token_uri`. firebase-admin caches the token and asks
 * again five minutes before it expires.
 */
export class ServiceAccountCredential implements Credential {
  private readonly options: ServiceAccountCredentialOptions;
  /**
   * Why the last token request failed: `refused` when the endpoint turned the account down
   * (4xx: a wrong key or a deleted account, which retrying does not fix), `unavailable`
   * otherwise; undefined after a success. firebase-admin wraps both into one error code.
   */
  lastFailure: 'refused' | 'unavailable' | undefined;

  constructor(options: ServiceAccountCredentialOptions) {
    this.options = options;
  }

  /** @throws Error with the endpoint's status (never the key or the assertion). */
  async getAccessToken(): Promise<GoogleOAuthAccessToken> {
    const { account, clock } = this.options;
    const iat = Math.floor(clock.now() / 1000);
    const header = base64Url(JSON.stringify({ alg: 'RS256', typ: 'JWT' }));
    const claims = base64Url(JSON.stringify({ iss: account.clientEmail, scope: FCM_SCOPE, aud: account.tokenUri, iat, exp: iat + 3600 }));
    const signature = createSign('RSA-SHA256').update(`${header}.${claims}`).sign(account.privateKey);
    this.lastFailure = 'unavailable';
    const res = await fetch(account.tokenUri, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer', assertion: `${header}.${claims}.${base64Url(signature)}` }),
      signal: AbortSignal.timeout(this.options.timeoutMs ?? 10_000),
    });
    if (!res.ok) {
      if (res.status >= 400 && res.status < 500 && res.status !== 408 && res.status !== 429) this.lastFailure = 'refused';
      throw new Error(`the token endpoint answered ${res.status}`);
    }
    const body = (await res.json()) as { access_token?: unknown; expires_in?: unknown };
    if (typeof body.access_token !== 'string' || typeof body.expires_in !== 'number') throw new Error('the token endpoint answered without a token');
    this.lastFailure = undefined;
    return { access_token: body.access_token, expires_in: body.expires_in };
  }
}

/**
 * An HTTPS agent that opens every connection as plain TCP to one loopback origin instead: how
 * tests point firebase-admin, whose FCM host is fixed, at a stand-in.
 */
class LoopbackAgent extends HttpsAgent {
  private readonly target: URL;

  constructor(target: URL, options: AgentOptions) {
    super(options);
    this.target = target;
  }

  override createConnection(): Socket {
    return netConnect({ host: this.target.hostname.replace(/^\[|\]$/g, ''), port: Number(this.target.port) || 80 });
  }
}

/** Options of {@link createFcmPushSender}. */
export interface FcmPushSenderOptions {
  readonly account: ServiceAccount;
  /** The Firebase project; default the service account's. */
  readonly projectId?: string;
  /** How long FCM keeps a wake-up for a device it cannot reach, ms. Default 1 day. */
  readonly ttlMs?: number;
  /**
   * For tests: send the FCM API requests over plain HTTP to this `http://127.0.0.1:PORT` origin
   * (a stand-in) instead of `https://fcm.googleapis.com`. Tokens still come from `token_uri`.
   */
  readonly fcmOrigin?: string;
  readonly clock: Clock;
}

/** firebase-admin's messaging error codes that mean the token is dead (Firebase's own guidance). */
const DEAD_TOKEN_CODES = new Set(['messaging/registration-token-not-registered', 'messaging/invalid-registration-token', 'messaging/invalid-argument']);
/** Codes worth another attempt later: FCM overloaded or down, the network, the token endpoint. */
const RETRY_CODES = new Set([
  'messaging/server-unavailable',
  'messaging/internal-error',
  'messaging/message-rate-exceeded',
  'messaging/device-message-rate-exceeded',
  'messaging/unknown-error',
  'app/network-error',
  'app/network-timeout',
  'app/invalid-credential',
]);

/** Maps an error `firebase-admin` threw to an outcome. */
export function classifyFcmError(err: unknown): PushOutcome {
  const code = typeof (err as { code?: unknown })?.code === 'string' ? (err as { code: string }).code : 'unknown';
  if (DEAD_TOKEN_CODES.has(code)) return { kind: 'dead-token', reason: code };
  if (RETRY_CODES.has(code) || code === 'unknown') return { kind: 'retry', reason: code };
  return { kind: 'failed', reason: code };
}

/** Checks a test origin. @throws Error unless it is `http://` on a loopback address. */
function loopbackOrigin(text: string): URL {
  const url = new URL(text);
  if (url.protocol !== 'http:' || !['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname)) {
    throw new Error('fcmOrigin must be an http:// origin on loopback (it exists for test stand-ins)');
  }
  return url;
}

/** Builds the FCM adapter. */
export function createFcmPushSender(options: FcmPushSenderOptions): PushSender {
  const projectId = options.projectId ?? options.account.projectId;
  const agent = options.fcmOrigin === undefined ? new HttpsAgent({ keepAlive: true }) : new LoopbackAgent(loopbackOrigin(options.fcmOrigin), { keepAlive: true });
  // A name of its own: firebase-admin keeps apps in a process-wide registry.
  const credential = new ServiceAccountCredential({ account: options.account, clock: options.clock });
  const app: App = initializeApp(
    { credential, projectId, httpAgent: agent },
    `parley-push-${randomUUID()}`,
  );
  const messaging = getMessaging(app);
  const ttlMs = options.ttlMs ?? 86_400_000;
  let closed = false;
  return {
    name: 'fcm',
    async send(wakeUp: WakeUp): Promise<PushOutcome> {
      if (closed) return { kind: 'failed', reason: 'closed' };
      const message: Message = {
        token: wakeUp.token,
        data: { ...FCM_WAKE_DATA },
        android: { priority: wakeUp.urgent ? 'high' : 'normal', ttl: ttlMs, collapseKey: FCM_COLLAPSE_KEY },
      };
      try {
        await messaging.send(message);
        return { kind: 'delivered' };
      } catch (err) {
        const outcome = classifyFcmError(err);
        if (outcome.kind === 'retry' && outcome.reason === 'app/invalid-credential' && credential.lastFailure === 'refused') {
          return { kind: 'failed', reason: 'the token endpoint refused the service account' };
        }
        return outcome;
      }
    },
    async close() {
      if (closed) return;
      closed = true;
      await deleteApp(app);
      agent.destroy();
    },
  };
}
