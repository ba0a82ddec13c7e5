// SPDX-License-Identifier: AGPL-3.0-only
/**
 * A test double of Apple's push service: an HTTP/2 server over TLS on loopback that checks what
 * APNs checks — method and path, the provider JWT (ES256, signed by the team's key, with its key
 * id and team id), topic, push type and priority, payload size — and answers as APNs does
 * (200 with `apns-id`, or a status with `{ "reason" }`). Tests script per token what it answers
 * (`Unregistered`, `BadDeviceToken`, an overloaded service…) and read every request it saw.
 */
import { generateKeyPairSync, randomBytes, randomUUID, verify, type KeyObject } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { createSecureServer, type Http2SecureServer, type IncomingHttpHeaders, type ServerHttp2Session, type ServerHttp2Stream } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { createTestCertificate } from './test-certificate.js';

/** A provider token signing key as Apple issues it (the .p8 file is this PKCS#8 PEM). */
export interface ApnsTestKey {
  /** PEM PKCS#8 EC P-256 private key, what a .p8 file holds. */
  readonly p8: string;
  readonly publicKey: KeyObject;
  /** 10 characters, as Apple's key ids. */
  readonly keyId: string;
  /** 10 characters, as Apple's team ids. */
  readonly teamId: string;
}

const TEN = () => randomBytes(10).toString('hex').toUpperCase().slice(0, 10);

/** Makes a fresh ES256 key with a random key id and team id. */
export function createApnsTestKey(): ApnsTestKey {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  return { p8: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, publicKey, keyId: TEN(), teamId: TEN() };
}

/** Answers the stand-in can be told to give for a token, as APNs gives them. */
export const FAKE_APNS_ANSWERS = {
  ok: { status: 200, reason: undefined },
  unregistered: { status: 410, reason: 'Unregistered' },
  'bad-token': { status: 400, reason: 'BadDeviceToken' },
  'not-for-topic': { status: 400, reason: 'DeviceTokenNotForTopic' },
  'too-many': { status: 429, reason: 'TooManyRequests' },
  unavailable: { status: 503, reason: 'ServiceUnavailable' },
  internal: { status: 500, reason: 'InternalServerError' },
  'topic-disallowed': { status: 400, reason: 'TopicDisallowed' },
} as const;

/** A scripted answer. */
export type FakeApnsAnswer = keyof typeof FAKE_APNS_ANSWERS;

/** One request as the stand-in saw it. */
export interface FakeApnsRequest {
  readonly method: string;
  readonly path: string;
  /** The device token from the path. */
  readonly token: string;
  readonly headers: Readonly<Record<string, string | undefined>>;
  /** The decoded provider JWT (undefined when there was none or it did not parse). */
  readonly jwt: { readonly header: Record<string, unknown>; readonly claims: Record<string, unknown> } | undefined;
  /** The exact request body. */
  readonly body: string;
  /** What the stand-in answered. */
  readonly status: number;
  readonly reason: string | undefined;
}

/** Options of {@link startFakeApns}. */
export interface FakeApnsOptions {
  readonly key: Pick<ApnsTestKey, 'publicKey' | 'keyId' | 'teamId'>;
  /** The bundle id the "app" has; requests for another topic are refused. */
  readonly topic: string;
  /** Wall clock for the JWT's age. Default Date.now. */
  readonly now?: () => number;
}

/** A running stand-in. */
export interface FakeApns {
  /** `localhost`: the certificate's name. */
  readonly host: string;
  readonly port: number;
  /** The PEM certificate to trust (the only CA a client needs for it). */
  readonly ca: string;
  /** Every request, in arrival order. */
  readonly requests: readonly FakeApnsRequest[];
  /** From now on answer `answer` for `token`, `times` times (default: until told otherwise). */
  answer(token: string, answer: FakeApnsAnswer, times?: number): void;
  /** Resolves once `count` requests arrived in total; rejects after `timeoutMs` (default 5,000). */
  waitForRequests(count: number, timeoutMs?: number): Promise<readonly FakeApnsRequest[]>;
  /** Resolves with the first request (seen or to come) that `match` accepts; rejects after `timeoutMs` (default 5,000). */
  waitForRequest(match: (r: FakeApnsRequest) => boolean, timeoutMs?: number): Promise<FakeApnsRequest>;
  stop(): Promise<void>;
}

const PATH = /^\/3\/device\/([^/?]*)$/;
const TOKEN = /^[0-9a-fA-F]{64,200}$/;

function decodeJson(part: string): Record<string, unknown> | undefined {
  try {
    const v: unknown = JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
    return typeof v === 'object' && v !== null ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** Starts the stand-in on 127.0.0.1 and a free port. */
export async function startFakeApns(options: FakeApnsOptions): Promise<FakeApns> {
  const now = options.now ?? Date.now;
  const tls = createTestCertificate();
  const requests: FakeApnsRequest[] = [];
  const scripted = new Map<string, { answer: FakeApnsAnswer; left: number }>();
  const events = new EventEmitter();
  const publicKey = options.key.publicKey;

  /** The JWT check: undefined when valid, else APNs' reason. */
  function checkJwt(authorization: string | undefined): { reason?: string; jwt?: FakeApnsRequest['jwt'] } {
    if (!authorization?.startsWith('bearer ')) return { reason: 'MissingProviderToken' };
    const parts = authorization.slice(7).split('.');
    if (parts.length !== 3) return { reason: 'InvalidProviderToken' };
    const header = decodeJson(parts[0]!);
    const claims = decodeJson(parts[1]!);
    if (!header || !claims) return { reason: 'InvalidProviderToken' };
    const jwt = { header, claims };
    const signature = Buffer.from(parts[2]!, 'base64url');
    const signed = verify('sha256', Buffer.from(`${parts[0]}.${parts[1]}`), { key: publicKey, dsaEncoding: 'ieee-p1363' }, signature);
    if (header.alg !== 'ES256' || header.kid !== options.key.keyId || claims.iss !== options.key.teamId || !signed) return { reason: 'InvalidProviderToken', jwt };
    const ageS = now() / 1000 - Number(claims.iat);
    if (!Number.isFinite(ageS) || ageS > 3600) return { reason: 'ExpiredProviderToken', jwt };
    if (ageS < -60) return { reason: 'InvalidProviderToken', jwt };
    return { jwt };
  }

  function judge(method: string, path: string, h: IncomingHttpHeaders, body: string, token: string): { status: number; reason?: string; jwt?: FakeApnsRequest['jwt'] } {
    if (method !== 'POST') return { status: 405, reason: 'MethodNotAllowed' };
    if (!PATH.test(path)) return { status: 404, reason: 'BadPath' };
    const auth = checkJwt(h.authorization);
    if (auth.reason) return { status: 403, reason: auth.reason, jwt: auth.jwt };
    const jwt = auth.jwt;
    if (!TOKEN.test(token)) return { status: 400, reason: 'BadDeviceToken', jwt };
    const topic = h['apns-topic'];
    if (topic === undefined) return { status: 400, reason: 'MissingTopic', jwt };
    if (topic !== options.topic) return { status: 400, reason: 'DeviceTokenNotForTopic', jwt };
    const pushType = h['apns-push-type'];
    if (pushType !== 'alert' && pushType !== 'background') return { status: 400, reason: 'InvalidPushType', jwt };
    const priority = h['apns-priority'] ?? '10';
    if (!['10', '5', '1'].includes(String(priority))) return { status: 400, reason: 'BadPriority', jwt };
    // APNs refuses priority 10 for a push that only wakes the app in the background.
    if (pushType === 'background' && priority === '10') return { status: 400, reason: 'BadPriority', jwt };
    const expiration = h['apns-expiration'];
    if (expiration !== undefined && !/^[0-9]+$/.test(String(expiration))) return { status: 400, reason: 'BadExpirationDate', jwt };
    const collapse = h['apns-collapse-id'];
    if (collapse !== undefined && Buffer.byteLength(String(collapse)) > 64) return { status: 400, reason: 'BadCollapseId', jwt };
    if (Buffer.byteLength(body) > 4096) return { status: 413, reason: 'PayloadTooLarge', jwt };
    let payload: unknown;
    try {
      payload = JSON.parse(body);
    } catch {
      return { status: 400, reason: 'PayloadEmpty', jwt };
    }
    if (typeof payload !== 'object' || payload === null || typeof (payload as { aps?: unknown }).aps !== 'object') return { status: 400, reason: 'PayloadEmpty', jwt };
    const script = scripted.get(token);
    if (script) {
      if (--script.left <= 0) scripted.delete(token);
      const a = FAKE_APNS_ANSWERS[script.answer];
      return a.reason === undefined ? { status: 200, jwt } : { status: a.status, reason: a.reason, jwt };
    }
    return { status: 200, jwt };
  }

  const server: Http2SecureServer = createSecureServer({ cert: tls.cert, key: tls.key });
  server.on('stream', (stream: ServerHttp2Stream, h: IncomingHttpHeaders) => {
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => {
      const method = String(h[':method']);
      const path = String(h[':path']);
      const body = Buffer.concat(chunks).toString('utf8');
      const token = PATH.exec(path)?.[1] ?? '';
      const verdict = judge(method, path, h, body, token);
      const pick = (name: string) => (h[name] === undefined ? undefined : String(h[name]));
      requests.push({
        method,
        path,
        token,
        headers: Object.fromEntries(
          ['authorization', 'apns-topic', 'apns-push-type', 'apns-priority', 'apns-expiration', 'apns-collapse-id', 'apns-id'].map((n) => [n, pick(n)]),
        ),
        jwt: verdict.jwt,
        body,
        status: verdict.status,
        reason: verdict.reason,
      });
      events.emit('request');
      if (verdict.status === 200) {
        stream.respond({ ':status': 200, 'apns-id': randomUUID() });
        stream.end();
      } else {
        stream.respond({ ':status': verdict.status, 'content-type': 'application/json', 'apns-id': randomUUID() });
        stream.end(JSON.stringify(verdict.status === 410 ? { reason: verdict.reason, timestamp: now() } : { reason: verdict.reason }));
      }
    });
    stream.on('error', () => stream.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  const sessions = new Set<ServerHttp2Session>();
  server.on('session', (s) => {
    sessions.add(s);
    s.on('close', () => sessions.delete(s));
  });

  /** Resolves with `find()`'s first defined answer, checked now and after every request. */
  function until<T>(find: () => T | undefined, timeoutMs: number, failure: () => string): Promise<T> {
    const now = find();
    if (now !== undefined) return Promise.resolve(now);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        events.off('request', check);
        reject(new Error(failure()));
      }, timeoutMs);
      function check() {
        const v = find();
        if (v === undefined) return;
        clearTimeout(timer);
        events.off('request', check);
        resolve(v);
      }
      events.on('request', check);
    });
  }

  return {
    host: 'localhost',
    port,
    ca: tls.cert,
    requests,
    answer(token, answer, times = Number.POSITIVE_INFINITY) {
      if (answer === 'ok') scripted.delete(token);
      else scripted.set(token, { answer, left: times });
    },
    async waitForRequests(count, timeoutMs = 5000) {
      await until(() => (requests.length >= count ? true : undefined), timeoutMs, () => `the APNs stand-in saw ${requests.length} requests, not ${count}, within ${timeoutMs} ms`);
      return requests;
    },
    waitForRequest(match, timeoutMs = 5000) {
      return until(() => requests.find(match), timeoutMs, () => `no matching request among the ${requests.length} the APNs stand-in saw within ${timeoutMs} ms`);
    },
    async stop() {
      for (const s of sessions) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
