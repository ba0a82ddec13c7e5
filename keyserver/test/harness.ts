// SPDX-License-Identifier: AGPL-3.0-only
/** A key server on a SQLite store inside a fastify instance, with a clock tests move. */
import { createHash } from 'node:crypto';
import Database from 'better-sqlite3';
import Fastify, { type FastifyInstance } from 'fastify';
import type { RegisterAccountResponse } from '@parley/protocol';
import { createKeyServer, openSqliteKeyStore, type Clock, type KeyServer, type KeyServerConfigInput, type SqliteKeyStore } from '../src/index.js';
import { authHeader, linkBody, registration, type TestIdentity } from './fixtures.js';

/** Start of test time, milliseconds since the epoch. */
export const T0 = 1_750_000_000_000;

/** A clock that moves only when told to. */
export class ManualClock implements Clock {
  constructor(public t = T0) {}
  now(): number {
    return this.t;
  }
  advance(ms: number): void {
    this.t += ms;
  }
}

/** An HTTP answer. */
export interface Answer<T = unknown> {
  readonly status: number;
  readonly body: T;
  readonly headers: Record<string, unknown>;
}

/** A registered or linked device. */
export interface TestDevice {
  readonly aci: string;
  readonly deviceId: number;
  readonly secret: Uint8Array;
  readonly identity: TestIdentity;
  readonly auth: string;
}

/** A running key server. */
export interface Harness {
  readonly app: FastifyInstance;
  readonly keyServer: KeyServer;
  readonly store: SqliteKeyStore;
  readonly clock: ManualClock;
  call<T = unknown>(method: string, url: string, body?: unknown, authorization?: string, remoteAddress?: string): Promise<Answer<T>>;
  register(username: string, options?: { oneTime?: number; registrationId?: number }): Promise<TestDevice>;
  link(existing: TestDevice, options?: { oneTime?: number; registrationId?: number }): Promise<TestDevice>;
  /** Every row of every table (file-backed stores only), to prove a request changed nothing. */
  snapshot(): Record<string, string>;
  close(): Promise<void>;
}

/** Digests of every table of the SQLite database at `path`. */
export function snapshotDatabase(path: string): Record<string, string> {
  const db = new Database(path, { readonly: true, fileMustExist: true });
  try {
    const out: Record<string, string> = {};
    const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all() as Array<{ name: string }>;
    for (const { name } of tables) {
      const rows = (db.prepare(`SELECT * FROM "${name}"`).raw().all() as unknown[][])
        .map((r) => JSON.stringify(r, (_k, v: unknown) => (Buffer.isBuffer(v) ? v.toString('hex') : v)))
        .sort();
      out[name] = `${rows.length}:${createHash('sha256').update(rows.join('\n')).digest('hex')}`;
    }
    return out;
  } finally {
    db.close();
  }
}

/** Builds a key server with `config` over a fresh store (`path`, default in memory). */
export async function startHarness(config: KeyServerConfigInput = {}, path = ':memory:'): Promise<Harness> {
  const clock = new ManualClock();
  const store = openSqliteKeyStore(path);
  const keyServer = createKeyServer({ store, clock, config });
  const app = Fastify({ logger: false });
  keyServer.registerRoutes(app);
  await app.ready();

  const call = async <T>(method: string, url: string, body?: unknown, authorization?: string, remoteAddress = '10.0.0.1'): Promise<Answer<T>> => {
    const headers: Record<string, string> = {};
    if (authorization) headers.authorization = authorization;
    // Objects are sent as JSON by inject; raw strings (malformed JSON) need the type named.
    if (typeof body === 'string') headers['content-type'] = 'application/json';
    const res = await app.inject({ method: method as 'GET', url, remoteAddress, headers, ...(body === undefined ? {} : { payload: body as string | object }) });
    return { status: res.statusCode, body: (res.body ? JSON.parse(res.body) : undefined) as T, headers: res.headers };
  };

  const register: Harness['register'] = async (username, options = {}) => {
    const r = registration(username, options);
    const res = await call<RegisterAccountResponse>('POST', '/v1/accounts', r.body);
    if (res.status !== 200) throw new Error(`registration failed: ${res.status} ${JSON.stringify(res.body)}`);
    return { aci: res.body.aci, deviceId: res.body.deviceId, secret: r.secret, identity: r.identity, auth: authHeader(res.body.aci, res.body.deviceId, r.secret) };
  };

  const link: Harness['link'] = async (existing, options = {}) => {
    const token = await call<{ token: string }>('POST', '/v1/devices/link-tokens', {}, existing.auth);
    if (token.status !== 200) throw new Error(`link token failed: ${token.status} ${JSON.stringify(token.body)}`);
    const l = linkBody(existing.identity, token.body.token, options);
    const res = await call<RegisterAccountResponse>('POST', '/v1/devices', l.body);
    if (res.status !== 200) throw new Error(`linking failed: ${res.status} ${JSON.stringify(res.body)}`);
    return { aci: res.body.aci, deviceId: res.body.deviceId, secret: l.secret, identity: existing.identity, auth: authHeader(res.body.aci, res.body.deviceId, l.secret) };
  };

  return {
    app,
    keyServer,
    store,
    clock,
    call,
    register,
    link,
    snapshot: () => snapshotDatabase(path),
    close: async () => {
      await app.close();
      await keyServer.close();
    },
  };
}
