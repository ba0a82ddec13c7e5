// SPDX-License-Identifier: AGPL-3.0-only
/**
 * The relay's composition: one fastify listener serving REST (the key server's routes, health)
 * and the device WebSocket, upgraded by `ws` in noServer mode on the same port.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { WebSocketServer, type WebSocket } from 'ws';
import { createRateLimiter, enforceRateLimit } from '@parley/keyserver';
import {
  ERROR_CODES,
  fromBase64Url,
  HTTP_ROUTES,
  isParleyError,
  LIMITS,
  ParleyError,
  type Aci,
  type DeviceId,
  type ProvisioningMessageRequest,
} from '@parley/protocol';
import type { Clock } from './clock.js';
import { CommitBatcher } from './commit-batcher.js';
import type { RelayConfig } from './config.js';
import { ConnectionRegistry } from './connection-registry.js';
import { DeviceConnection, queueKey, type ConnectionContext } from './device-connection.js';
import { EnvelopeIntake, type DeviceDirectory } from './envelope-intake.js';
import { ProvisioningHub } from './provisioning.js';
import type { AckRequest, EnqueueRequest, EnqueueResult, EnvelopeStore } from './ports/envelope-store.js';

/** The relay's version, reported on /v1/info. */
export const RELAY_VERSION = '0.1.0';

/** Rows one expiry call deletes at most (about 50 ms of blocking on SQLite). */
const EXPIRY_BATCH = 10_000;

/** The account directory as the relay uses it (the key server's AccountDirectory). */
export interface RelayDirectory extends DeviceDirectory {
  authenticate(authorization: string | undefined, clientKey: string): Promise<{ aci: Aci; deviceId: DeviceId }>;
  onDeviceChange(listener: (e: { kind: 'added' | 'removed'; aci: Aci; deviceId: DeviceId }) => void): () => void;
}

/** External parts the relay is composed of (CONVENTIONS 1, 5). */
export interface RelayPorts {
  readonly envelopes: EnvelopeStore;
  readonly directory: RelayDirectory;
  /** Mounts REST routes of other components (the key server) on the relay's listener. */
  readonly mountRoutes?: (app: FastifyInstance) => void;
  /** Maps errors thrown in routes to responses (the key server's handler); a default is used otherwise. */
  readonly errorHandler?: Parameters<FastifyInstance['setErrorHandler']>[0];
  readonly clock: Clock;
  readonly log: Logger;
}

/** A running (or ready to run) relay. */
export interface Relay {
  readonly app: FastifyInstance;
  /** Starts listening; resolves with the bound address. */
  listen(): Promise<{ host: string; port: number; url: string }>;
  /** Graceful shutdown: stop accepting, tell clients to reconnect, flush commits, close stores. */
  close(): Promise<void>;
  /** Figures for health and tests. */
  stats(): { connections: number; pendingCommits: number };
}

/** Builds a relay from its config and ports. Nothing listens until `listen()`. */
export function createRelay(config: RelayConfig, ports: RelayPorts): Relay {
  const { clock, log, envelopes, directory } = ports;
  const registry = new ConnectionRegistry();
  let shuttingDown = false;

  // fastify types its logger against its own pino major; the instance is a pino logger all the same.
  const app: FastifyInstance = Fastify({ loggerInstance: log.child({ component: 'http' }) as unknown as FastifyBaseLogger, bodyLimit: 512 * 1024, logController: new LogController({ disableRequestLogging: true }) });
  app.setErrorHandler(
    ports.errorHandler ??
      ((err, _req, reply) => {
        const e = isParleyError(err) ? err : new ParleyError('INTERNAL', 'internal error');
        void reply.status(e.status).send({ code: e.code, message: e.message });
      }),
  );
  app.setNotFoundHandler((_req, reply) => {
    void reply.status(404).send({ code: 'NOT_FOUND', message: 'no such route' });
  });
  app.get(HTTP_ROUTES.health, async () => ({ status: 'ok' }));
  app.get(HTTP_ROUTES.info, async () => ({ domain: config.domain, version: RELAY_VERSION }));
  app.get(HTTP_ROUTES.ready, async (_req, reply) => {
    if (shuttingDown) return reply.status(503).send({ status: 'shutting-down' });
    return { status: 'ready', connections: registry.size };
  });
  ports.mountRoutes?.(app);

  const provisioning = new ProvisioningHub({ clock, ttlMs: LIMITS.provisioningSocketTtlMs, maxSockets: 10_000 });
  // Unauthenticated: both the socket and the messages to it are rate limited per client address.
  const provisioningLimiter = createRateLimiter({ capacity: 20, windowMs: 60_000, clock });
  app.put<{ Params: { address: string }; Body: ProvisioningMessageRequest }>(
    HTTP_ROUTES.provisioningMessage,
    {
      schema: {
        params: { type: 'object', properties: { address: { type: 'string', minLength: 1, maxLength: 64 } }, required: ['address'] },
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['body'],
          properties: { body: { type: 'string', minLength: 1, maxLength: Math.ceil((LIMITS.maxProvisioningMessageBytes * 4) / 3) + 4 } },
        },
      },
    },
    async (req, reply) => {
      await directory.authenticate(req.headers.authorization, req.ip);
      const body = fromBase64Url(req.body.body);
      if (!body || body.length > LIMITS.maxProvisioningMessageBytes) throw new ParleyError('BAD_REQUEST', 'body must be base64url of at most 64 KiB');
      provisioning.deliver(req.params.address, body);
      return reply.status(204).send();
    },
  );

  const commits = new CommitBatcher<EnqueueRequest, EnqueueResult>({
    flush: (items) => envelopes.enqueue(items),
    maxBatch: config.commitBatchMax,
    maxPending: config.commitQueueMax,
  });
  const acks = new CommitBatcher<AckRequest, void>({
    flush: async (items) => {
      await envelopes.ack(items);
      return new Array<void>(items.length);
    },
    maxBatch: config.commitBatchMax,
    maxPending: config.commitQueueMax,
  });

  const intake = new EnvelopeIntake({ config, clock, directory, registry, commit: (r) => commits.submit(r) });
  const context: ConnectionContext = {
    store: envelopes,
    clock,
    log,
    windowEnvelopes: config.windowEnvelopes,
    maxFrameBytes: config.maxFrameBytes,
    submitAck: (a) => acks.submit(a),
    onSend: (conn, send) => intake.handle(conn, send),
    onClosed: (conn) => registry.detach(conn),
  };

  const unsubscribe = directory.onDeviceChange((e) => {
    if (e.kind !== 'removed') return;
    registry.get(queueKey(e.aci, e.deviceId))?.closeWith('DEVICE_REMOVED');
    envelopes.dropQueue({ aci: e.aci, deviceId: e.deviceId }).catch((err: unknown) => log.error({ err }, 'dropping a removed device queue failed'));
  });

  // perMessageDeflate off: ciphertext does not compress, and deflate state costs ~300 KiB a socket.
  const wss = new WebSocketServer({ noServer: true, maxPayload: config.maxFrameBytes, perMessageDeflate: false, clientTracking: false });

  function refuseUpgrade(socket: Duplex, err: unknown): void {
    const e = isParleyError(err) ? err : new ParleyError('INTERNAL', 'internal error');
    const body = JSON.stringify({ code: e.code, message: e.message, ...(e.details.retryAfterMs ? { retryAfterMs: e.details.retryAfterMs } : {}) });
    const reason = e.status === 401 ? 'Unauthorized' : e.status === 429 ? 'Too Many Requests' : e.status === 404 ? 'Not Found' : e.status === 503 ? 'Service Unavailable' : 'Error';
    socket.end(
      `HTTP/1.1 ${e.status} ${reason}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  }

  function onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', () => socket.destroy());
    const path = (req.url ?? '').split('?')[0];
    if (shuttingDown) return refuseUpgrade(socket, new ParleyError('SERVER_SHUTDOWN'));
    if (path === HTTP_ROUTES.provisioningSocket) {
      try {
        enforceRateLimit(provisioningLimiter, `socket:${req.socket.remoteAddress ?? 'unknown'}`);
        if (provisioning.full) throw new ParleyError('RATE_LIMITED', 'too many devices are being linked', { retryAfterMs: 10_000 });
      } catch (err) {
        return refuseUpgrade(socket, err);
      }
      wss.handleUpgrade(req, socket, head, (ws) => {
        // The linking device only listens; anything it sends is ignored.
        ws.on('error', () => ws.terminate());
        provisioning.open(ws);
      });
      return;
    }
    if (path !== HTTP_ROUTES.websocket) return refuseUpgrade(socket, new ParleyError('NOT_FOUND', 'no WebSocket at this path'));
    directory.authenticate(req.headers.authorization, req.socket.remoteAddress ?? 'unknown').then(
      (who) => {
        if (shuttingDown || socket.destroyed) return refuseUpgrade(socket, new ParleyError('SERVER_SHUTDOWN'));
        wss.handleUpgrade(req, socket, head, (ws) => accept(ws, who.aci, who.deviceId));
      },
      (err: unknown) => refuseUpgrade(socket, err),
    );
  }

  function accept(ws: WebSocket, aci: Aci, deviceId: DeviceId): void {
    const conn = new DeviceConnection(context, ws, aci, deviceId);
    ws.on('message', (data, isBinary) => conn.onMessage(data as Buffer, isBinary));
    ws.on('pong', () => {
      conn.alive = true;
    });
    ws.on('close', () => conn.onSocketClosed());
    ws.on('error', () => ws.terminate());
    registry.attach(conn);
    conn.start();
  }

  // One sweep for every socket instead of a timer each: a timer per socket costs memory.
  const keepalive = setInterval(() => {
    for (const conn of registry.all()) {
      if (!conn.alive) {
        conn.terminate();
        continue;
      }
      conn.alive = false;
      conn.ping();
    }
  }, config.keepaliveIntervalMs);
  keepalive.unref();

  // Each expire call is bounded (it blocks the event loop while it runs); a sweep repeats it,
  // yielding in between, until a call comes back short, so deletion keeps up with intake.
  let sweeping = false;
  const sweepOnce = async () => {
    if (sweeping || shuttingDown) return;
    sweeping = true;
    try {
      for (;;) {
        const n = await envelopes.expire(clock.now(), EXPIRY_BATCH);
        if ((n.envelopes < EXPIRY_BATCH && n.dedup < EXPIRY_BATCH) || shuttingDown) break;
        await new Promise((r) => setImmediate(r));
      }
    } catch (err) {
      log.error({ err }, 'expiry sweep failed');
    } finally {
      sweeping = false;
    }
  };
  const sweep = setInterval(() => void sweepOnce(), config.expirySweepIntervalMs);
  sweep.unref();

  app.server.on('upgrade', onUpgrade);

  return {
    app,
    async listen() {
      await app.listen({ host: config.host, port: config.port });
      const addr = app.server.address();
      const port = typeof addr === 'object' && addr ? addr.port : config.port;
      const host = config.host.includes(':') ? `[${config.host}]` : config.host;
      return { host: config.host, port, url: `http://${host}:${port}` };
    },
    async close() {
      if (shuttingDown) return;
      shuttingDown = true;
      clearInterval(keepalive);
      clearInterval(sweep);
      unsubscribe();
      for (const conn of [...registry.all()]) conn.closeWith('SERVER_SHUTDOWN', 'relay restarting; reconnect');
      provisioning.closeAll();
      const closing = app.close();
      const grace = new Promise<void>((resolve) => setTimeout(resolve, config.shutdownGraceMs).unref());
      await Promise.race([Promise.all([commits.idle(), acks.idle()]), grace]);
      await closing;
      await envelopes.close();
      log.info({ closeCode: ERROR_CODES.SERVER_SHUTDOWN.close }, 'relay stopped');
    },
    stats: () => ({ connections: registry.size, pendingCommits: commits.pending }),
  };
}
