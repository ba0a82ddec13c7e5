// SPDX-License-Identifier: AGPL-3.0-only
/**
 * A test double of Firebase Cloud Messaging: one plain-HTTP server on loopback that plays both
 * Google's OAuth token endpoint (`POST /token`: a JWT bearer grant signed by the service
 * account's RSA key, checked against its public key, its issuer, audience and scope) and the
 * FCM HTTP v1 API (`POST /v1/projects/<project>/messages:send` with a bearer token the token
 * endpoint issued). It answers as FCM does (`{ name }`, or `{ error: { code, status, details:
 * [FcmError { errorCode }] } }`); tests script per token what it answers and read every message.
 */
import { generateKeyPairSync, randomBytes, verify, type KeyObject } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** A service account made for a test: the file's JSON text and its public key. */
export interface FcmTestAccount {
  readonly projectId: string;
  readonly clientEmail: string;
  readonly publicKey: KeyObject;
  /** The service account file's content; `token_uri` points at `tokenUri`. Holds the private key. */
  json(tokenUri: string): string;
}

/** Makes a fresh RSA service account. */
export function createFcmTestAccount(projectId = `parley-test-${randomBytes(3).toString('hex')}`): FcmTestAccount {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const clientEmail = `relay@${projectId}.iam.gserviceaccount.com`;
  const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
  return {
    projectId,
    clientEmail,
    publicKey,
    json: (tokenUri) =>
      JSON.stringify({ type: 'service_account', project_id: projectId, private_key_id: randomBytes(20).toString('hex'), private_key: pem, client_email: clientEmail, token_uri: tokenUri }),
  };
}

/** Answers the stand-in can be told to give for a token, as FCM gives them. */
export const FAKE_FCM_ANSWERS = {
  ok: { status: 200, errorCode: undefined, grpc: undefined },
  unregistered: { status: 404, errorCode: 'UNREGISTERED', grpc: 'NOT_FOUND' },
  'invalid-argument': { status: 400, errorCode: 'INVALID_ARGUMENT', grpc: 'INVALID_ARGUMENT' },
  quota: { status: 429, errorCode: 'QUOTA_EXCEEDED', grpc: 'RESOURCE_EXHAUSTED' },
  internal: { status: 500, errorCode: 'INTERNAL', grpc: 'INTERNAL' },
  'sender-mismatch': { status: 403, errorCode: 'SENDER_ID_MISMATCH', grpc: 'PERMISSION_DENIED' },
} as const;

/** A scripted answer. */
export type FakeFcmAnswer = keyof typeof FAKE_FCM_ANSWERS;

/** One FCM send as the stand-in saw it. */
export interface FakeFcmMessage {
  readonly path: string;
  readonly host: string | undefined;
  readonly authorization: string | undefined;
  /** The device token (`message.token`). */
  readonly token: string;
  /** The `message` object as sent. */
  readonly message: Record<string, unknown>;
  /** The exact request body. */
  readonly body: string;
  readonly status: number;
}

/** One token request as the stand-in saw it. */
export interface FakeFcmTokenGrant {
  readonly header: Record<string, unknown>;
  readonly claims: Record<string, unknown>;
  readonly status: number;
}

/** Options of {@link startFakeFcm}. */
export interface FakeFcmOptions {
  readonly account: Pick<FcmTestAccount, 'projectId' | 'clientEmail' | 'publicKey'>;
  /** Wall clock for the assertion's times. Default Date.now. */
  readonly now?: () => number;
}

/** A running stand-in. */
export interface FakeFcm {
  /** `http://127.0.0.1:PORT`: the FCM API origin. */
  readonly origin: string;
  /** `http://127.0.0.1:PORT/token`: the token endpoint (put it in the service account's token_uri). */
  readonly tokenUri: string;
  readonly messages: readonly FakeFcmMessage[];
  readonly grants: readonly FakeFcmTokenGrant[];
  /** Access tokens issued so far. */
  readonly accessTokens: ReadonlySet<string>;
  /** From now on answer `answer` for `token`, `times` times (default: until told otherwise). */
  answer(token: string, answer: FakeFcmAnswer, times?: number): void;
  /** Resolves once `count` messages arrived in total; rejects after `timeoutMs` (default 5,000). */
  waitForMessages(count: number, timeoutMs?: number): Promise<readonly FakeFcmMessage[]>;
  /** Resolves with the first message (seen or to come) that `match` accepts; rejects after `timeoutMs` (default 5,000). */
  waitForMessage(match: (m: FakeFcmMessage) => boolean, timeoutMs?: number): Promise<FakeFcmMessage>;
  stop(): Promise<void>;
}

const SEND_PATH = /^\/v1\/projects\/([^/]+)\/messages:send$/;

function decodeJson(part: string): Record<string, unknown> | undefined {
  try {
    const v: unknown = JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
    return typeof v === 'object' && v !== null ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json; charset=UTF-8' });
  res.end(JSON.stringify(body));
}

function fcmError(res: ServerResponse, status: number, grpc: string, message: string, errorCode?: string): void {
  json(res, status, {
    error: {
      code: status,
      message,
      status: grpc,
      ...(errorCode ? { details: [{ '@type': 'type.googleapis.com/google.firebase.fcm.v1.FcmError', errorCode }] } : {}),
    },
  });
}

/** Starts the stand-in on 127.0.0.1 and a free port. */
export async function startFakeFcm(options: FakeFcmOptions): Promise<FakeFcm> {
  const now = options.now ?? Date.now;
  const publicKey = options.account.publicKey;
  const messages: FakeFcmMessage[] = [];
  const grants: FakeFcmTokenGrant[] = [];
  const accessTokens = new Set<string>();
  const scripted = new Map<string, { answer: FakeFcmAnswer; left: number }>();
  const events = new EventEmitter();
  let tokenUri = '';

  function grant(body: string, res: ServerResponse): void {
    const form = new URLSearchParams(body);
    const assertion = form.get('assertion') ?? '';
    const parts = assertion.split('.');
    const header = decodeJson(parts[0] ?? '') ?? {};
    const claims = decodeJson(parts[1] ?? '') ?? {};
    const iat = Number(claims.iat);
    const exp = Number(claims.exp);
    const t = now() / 1000;
    const valid =
      form.get('grant_type') === 'urn:ietf:params:oauth:grant-type:jwt-bearer' &&
      parts.length === 3 &&
      header.alg === 'RS256' &&
      verify('RSA-SHA256', Buffer.from(`${parts[0]}.${parts[1]}`), publicKey, Buffer.from(parts[2]!, 'base64url')) &&
      claims.iss === options.account.clientEmail &&
      claims.aud === tokenUri &&
      typeof claims.scope === 'string' &&
      claims.scope.split(' ').includes('https://www.googleapis.com/auth/firebase.messaging') &&
      Math.abs(iat - t) < 300 &&
      exp > t &&
      exp - iat <= 3600;
    grants.push({ header, claims, status: valid ? 200 : 400 });
    if (!valid) return json(res, 400, { error: 'invalid_grant', error_description: 'Invalid JWT Signature.' });
    const accessToken = `ya29.${randomBytes(24).toString('base64url')}`;
    accessTokens.add(accessToken);
    json(res, 200, { access_token: accessToken, expires_in: 3599, token_type: 'Bearer' });
  }

  function send(req: IncomingMessage, body: string, res: ServerResponse): void {
    const path = req.url ?? '';
    const project = SEND_PATH.exec(path)?.[1];
    const authorization = req.headers.authorization;
    let message: Record<string, unknown> = {};
    let token = '';
    const record = (status: number) => {
      messages.push({ path, host: req.headers.host, authorization, token, message, body, status });
      events.emit('message');
    };
    if (req.method !== 'POST' || project === undefined) {
      record(404);
      return fcmError(res, 404, 'NOT_FOUND', 'no such method');
    }
    try {
      const parsed = JSON.parse(body) as { message?: unknown };
      if (typeof parsed.message === 'object' && parsed.message !== null) message = parsed.message as Record<string, unknown>;
    } catch {
      // checked below
    }
    token = typeof message.token === 'string' ? message.token : '';
    if (!authorization?.startsWith('Bearer ') || !accessTokens.has(authorization.slice(7))) {
      record(401);
      return fcmError(res, 401, 'UNAUTHENTICATED', 'Request had invalid authentication credentials.');
    }
    if (project !== options.account.projectId) {
      record(403);
      return fcmError(res, 403, 'PERMISSION_DENIED', 'Permission denied on the project.');
    }
    const data = message.data;
    const dataOk = typeof data === 'object' && data !== null && Object.values(data).every((v) => typeof v === 'string');
    const android = (message.android ?? {}) as Record<string, unknown>;
    const priorityOk = android.priority === undefined || ['high', 'normal', 'HIGH', 'NORMAL'].includes(String(android.priority));
    if (token === '' || !dataOk || !priorityOk || Buffer.byteLength(body) > 4096) {
      record(400);
      return fcmError(res, 400, 'INVALID_ARGUMENT', 'Request contains an invalid argument.', 'INVALID_ARGUMENT');
    }
    const script = scripted.get(token);
    if (script) {
      if (--script.left <= 0) scripted.delete(token);
      const a = FAKE_FCM_ANSWERS[script.answer];
      if (a.errorCode !== undefined) {
        record(a.status);
        return fcmError(res, a.status, a.grpc, 'scripted failure', a.errorCode);
      }
    }
    record(200);
    json(res, 200, { name: `projects/${project}/messages/${messages.length}` });
  }

  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      if (req.method === 'POST' && req.url === '/token') grant(body, res);
      else send(req, body, res);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  tokenUri = `${origin}/token`;

  /** Resolves with `find()`'s first defined answer, checked now and after every message. */
  function until<T>(find: () => T | undefined, timeoutMs: number, failure: () => string): Promise<T> {
    const now = find();
    if (now !== undefined) return Promise.resolve(now);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        events.off('message', check);
        reject(new Error(failure()));
      }, timeoutMs);
      function check() {
        const v = find();
        if (v === undefined) return;
        clearTimeout(timer);
        events.off('message', check);
        resolve(v);
      }
      events.on('message', check);
    });
  }

  return {
    origin,
    tokenUri,
    messages,
    grants,
    accessTokens,
    answer(token, answer, times = Number.POSITIVE_INFINITY) {
      if (answer === 'ok') scripted.delete(token);
      else scripted.set(token, { answer, left: times });
    },
    async waitForMessages(count, timeoutMs = 5000) {
      await until(() => (messages.length >= count ? true : undefined), timeoutMs, () => `the FCM stand-in saw ${messages.length} messages, not ${count}, within ${timeoutMs} ms`);
      return messages;
    },
    waitForMessage(match, timeoutMs = 5000) {
      return until(() => messages.find(match), timeoutMs, () => `no matching message among the ${messages.length} the FCM stand-in saw within ${timeoutMs} ms`);
    },
    async stop() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
