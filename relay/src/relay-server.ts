// SPDX-License-Identifier: AGPL-3.0-only
/**
 * The relay's composition: one fastify listener serving REST (the key server's routes, health)
 * and the device WebSocket, upgraded by `ws` in noServer mode on the same port.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import { performance } from 'node:perf_hooks';
import type { Duplex } from 'node:stream';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { WebSocketServer, type WebSocket } from 'ws';
import { createInProcessRateLimiterBackend, enforceRateLimit, type RateLimiterBackend } from '@parley/keyserver';
import {
  ERROR_CODES,
  fromBase64Url,
  HTTP_ROUTES,
  isParleyError,
  LIMITS,
  ParleyError,
  type Aci,
  type DeviceId,
  toBase64Url,
  type ProvisioningMessageRequest,
  type RelayInfoResponse,
} from '@parley/protocol';
import { registerAttachmentRoutes, type AttachmentStorage } from './attachments/attachment-routes.js';
import type { Clock } from './clock.js';
import { CommitBatcher } from './commit-batcher.js';
import { presenceTtlMs, type RelayConfig } from './config.js';
import { ConnectionRegistry } from './connection-registry.js';
import { DeviceConnection, queueKey, type ConnectionContext } from './device-connection.js';
import { EnvelopeIntake, type DeviceDirectory } from './envelope-intake.js';
import { ProvisioningHub } from './provisioning.js';
import { MultiIntake } from './multi-intake.js';
import { createDestinationAdmission, createSendAdmission, createUnidentifiedAdmission, relayRateLimits } from './rate-limits.js';
import type { AckRequest, EnqueueRequest, EnqueueResult, EnvelopeStore } from './ports/envelope-store.js';
import type { PresenceStore } from './ports/presence-store.js';
import { InProcessPresenceStore } from './presence/in-process-presence-store.js';
import { PresenceHub } from './presence/presence-hub.js';
import { RelayMetrics } from './relay-metrics.js';
import type { PushProviderName, PushSender } from './ports/push-sender.js';
import { WakeUpScheduler, type PushTokenStore } from './push/wake-up-scheduler.js';
import { systemTimers, type Timers } from './timers.js';
import type { SenderCertificateAuthority } from './sealed-sender/certificate-authority.js';
import { registerSenderCertificateRoute } from './sealed-sender/sender-certificate-route.js';
import { UnidentifiedAccess } from './unidentified-access.js';
import { UnidentifiedConnection, type UnidentifiedContext } from './unidentified-connection.js';
import { trackUnusedConnections } from './unused-connections.js';

/** The relay's version, reported on /v1/info. */
export const RELAY_VERSION = '0.1.0';

/** Rows one expiry call deletes at most (about 50 ms of blocking on SQLite). */
const EXPIRY_BATCH = 10_000;

/** Where Prometheus scrapes the relay. */
export const METRICS_ROUTE = '/metrics';

/** A certificate chain and its private key, PEM. */
export interface TlsCredentials {
  readonly cert: string | Buffer;
  readonly key: string | Buffer;
}

/** The account directory as the relay uses it (the key server's AccountDirectory). */
export interface RelayDirectory extends DeviceDirectory {
  authenticate(authorization: string | undefined, clientKey: string): Promise<{ aci: Aci; deviceId: DeviceId }>;
  /** The account's identity key (for its sender certificates); undefined for an unknown account. */
  getIdentityKey(aci: Aci): Promise<Uint8Array | undefined>;
  onDeviceChange(listener: (e: { kind: 'added' | 'removed'; aci: Aci; deviceId: DeviceId }) => void): () => void;
  /** Whether `token` is the account's presence token (constant time; false for unknown accounts and presence off). */
  presenceTokenMatches(aci: Aci, token: Uint8Array): Promise<boolean>;
  /** Tells `listener` when an account's presence token changed (rotated, on or off). */
  onPresenceTokenChange(listener: (e: { aci: Aci }) => void): () => void;
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
  /**
   * Where device presence lives (Redis for a cluster). The relay closes it. Default: in
   * process, on `clock`.
   */
  readonly presence?: PresenceStore;
  /** The relay's metrics; a fresh RelayMetrics (without process metrics) by default. */
  readonly metrics?: RelayMetrics;
  /** Serve HTTPS and WSS with these; plain HTTP and WS without. */
  readonly tls?: TlsCredentials;
  /**
   * Where the rate limit buckets live (Redis for a cluster); the caller closes it. Default: in
   * process, on `clock`.
   */
  readonly rateLimiters?: RateLimiterBackend;
  /** The attachment blob store; without it the relay has no attachment routes. The relay closes it. */
  readonly attachments?: AttachmentStorage;
  /** Wake-ups for offline devices; without it the relay sends none. */
  readonly push?: RelayPushPorts;
  /**
   * The sealed-sender keys (trust root and server certificate); without them the relay issues no
   * sender certificates (GET /v1/certificate/sender is NOT_FOUND) and /v1/info names no trust root.
   */
  readonly senderCertificates?: SenderCertificateAuthority;
}

/** What push wake-ups need (DESIGN §10). */
export interface RelayPushPorts {
  /** One sender per provider; the relay closes them. */
  readonly senders: Readonly<Record<PushProviderName, PushSender>>;
  /** Where device tokens live (the key store); dead tokens are removed through it. */
  readonly tokens: PushTokenStore;
  /** For the coalescing window and retry backoff. Default Node's timers. */
  readonly timers?: Timers;
}

/** A running (or ready to run) relay. */
export interface Relay {
  readonly app: FastifyInstance;
  /** The relay's metrics (its `rateLimitHit` is the hook other limiters call). */
  readonly metrics: RelayMetrics;
  /** Starts listening; resolves with the bound address (`https://…` when serving TLS). */
  listen(): Promise<{ host: string; port: number; url: string }>;
  /** Graceful shutdown: stop accepting, tell clients to reconnect, flush commits, close stores. */
  close(): Promise<void>;
  /** Figures for health and tests. */
  stats(): { connections: number; pendingCommits: number };
  /** The wake-up scheduler's state (undefined without push ports): devices pending, and a wait for sends in flight. */
  readonly wakeUps: { readonly pending: number; settled(): Promise<void> } | undefined;
  /**
   * Replaces the TLS certificate and key for new connections (certificate renewal without a
   * restart). @throws Error when the relay does not serve TLS or the pair is unusable.
   */
  reloadTls(credentials: TlsCredentials): void;
}

/** Builds a relay from its config and ports. Nothing listens until `listen()`. */
export function createRelay(config: RelayConfig, ports: RelayPorts): Relay {
  const { clock, log, envelopes, directory } = ports;
  const metrics = ports.metrics ?? new RelayMetrics();
  const registry = new ConnectionRegistry();
  let shuttingDown = false;

  // fastify types its logger against its own pino major; the instance is a pino logger all the same.
  // With `https`, fastify's server is an https.Server; the instance type differs only in that generic.
  const app = Fastify({
    loggerInstance: log.child({ component: 'http' }) as unknown as FastifyBaseLogger,
    bodyLimit: 512 * 1024,
    logController: new LogController({ disableRequestLogging: true }),
    // Behind a proxy, the client's address is the one the proxy saw (the last X-Forwarded-For
    // hop); per-address rate limits would otherwise see only the proxy.
    trustProxy: config.behindProxy ? (_address: string, hop: number) => hop === 0 : false,
    ...(ports.tls ? { https: { cert: ports.tls.cert, key: ports.tls.key } } : {}),
  }) as unknown as FastifyInstance;
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
  const info: RelayInfoResponse = {
    domain: config.domain,
    version: RELAY_VERSION,
    ...(ports.senderCertificates ? { senderCertificateTrustRoot: toBase64Url(ports.senderCertificates.trustRoot) } : {}),
  };
  app.get(HTTP_ROUTES.info, async () => info);
  app.get(HTTP_ROUTES.ready, async (_req, reply) => {
    if (shuttingDown) return reply.status(503).send({ status: 'shutting-down' });
    return { status: 'ready', connections: registry.size };
  });
  // Compared as SHA-256 digests: equal lengths for timingSafeEqual, and no early exit on length.
  const metricsTokenDigest = config.metricsToken === undefined ? undefined : sha256(config.metricsToken);
  app.get(METRICS_ROUTE, async (req, reply) => {
    if (metricsTokenDigest) {
      const header = req.headers.authorization ?? '';
      const given = header.startsWith('Bearer ') ? header.slice(7) : '';
      if (!timingSafeEqual(sha256(given), metricsTokenDigest)) {
        return reply.status(401).header('www-authenticate', 'Bearer').send({ code: 'UNAUTHORIZED', message: 'metrics need the bearer token' });
      }
    }
    const text = await metrics.render();
    return reply.header('content-type', metrics.contentType).header('cache-control', 'no-store').send(text);
  });
  app.addHook('onResponse', (req, reply, done) => {
    // REST refusals: 401s are failed device authentications (and wrong metrics tokens), 429s
    // refusals by a limiter of the route (the key server's limiters report through here).
    if (reply.statusCode === 401) metrics.authFailure('http');
    else if (reply.statusCode === 429) metrics.rateLimitHit(`http ${req.method} ${req.routeOptions.url ?? 'unmatched'}`);
    done();
  });
  ports.mountRoutes?.(app);

  const provisioning = new ProvisioningHub({ clock, ttlMs: LIMITS.provisioningSocketTtlMs, maxSockets: 10_000 });
  // Unauthenticated: both the socket and the messages to it are rate limited per client address.
  const limits = relayRateLimits(config);
  const rateLimiters = ports.rateLimiters ?? createInProcessRateLimiterBackend({ clock });
  const provisioningLimiter = rateLimiters.limiter('provisioning', limits.provisioning);
  if (ports.senderCertificates) {
    registerSenderCertificateRoute(app, {
      authority: ports.senderCertificates,
      directory,
      clock,
      ttlMs: config.senderCertificateTtlMs,
      limiter: rateLimiters.limiter('senderCertificate', limits.senderCertificate),
    });
  }
  if (ports.attachments) registerAttachmentRoutes(app, { storage: ports.attachments, directory, clock, log, config, limiters: rateLimiters });
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
      log.debug({ bytes: body.length }, 'provisioning message delivered');
      return reply.status(204).send();
    },
  );

  const wakeUps = ports.push
    ? new WakeUpScheduler({
        senders: ports.push.senders,
        tokens: ports.push.tokens,
        metrics,
        log,
        timers: ports.push.timers ?? systemTimers,
        isConnected: (device) => registry.get(device) !== undefined,
        coalesceMs: config.pushCoalesceMs,
        maxPending: config.pushMaxPending,
        maxAttempts: config.pushRetries + 1,
        retryBaseMs: config.pushRetryBaseMs,
        retryMaxMs: config.pushRetryMaxMs,
      })
    : undefined;

  const commits = new CommitBatcher<EnqueueRequest, EnqueueResult>({
    flush: async (items) => {
      const started = performance.now();
      const results = await envelopes.enqueue(items);
      metrics.commitBatch(items.length, performance.now() - started);
      if (wakeUps) scheduleWakeUps(wakeUps, items, results);
      return results;
    },
    maxBatch: config.commitBatchMax,
    maxPending: config.commitQueueMax,
  });
  const acks = new CommitBatcher<AckRequest, void>({
    flush: async (items) => {
      metrics.envelopesAcked(await envelopes.ack(items));
      return new Array<void>(items.length);
    },
    maxBatch: config.commitBatchMax,
    maxPending: config.commitQueueMax,
  });

  const commitRefused = (err: unknown): never => {
    if (isParleyError(err) && err.code === 'RATE_LIMITED') metrics.rateLimitHit('commit_queue');
    throw err;
  };
  const admitSend = createSendAdmission(rateLimiters, limits, metrics);
  const admitDestination = createDestinationAdmission(rateLimiters, limits, metrics);
  const admitUnidentified = createUnidentifiedAdmission(rateLimiters, limits, metrics);
  const unidentifiedAccess = new UnidentifiedAccess(directory, rateLimiters.limiter('accessKeyFailure', limits.accessKeyFailure), metrics);
  const intake = new EnvelopeIntake({
    config,
    clock,
    directory,
    registry,
    metrics,
    admitSend,
    admitDestination,
    admitUnidentified,
    unidentified: unidentifiedAccess,
    commit: (r) => commits.submit(r).catch(commitRefused),
  });
  const multiIntake = new MultiIntake({
    config,
    clock,
    directory,
    registry,
    metrics,
    admitSend,
    admitUnidentified,
    unidentified: unidentifiedAccess,
    commitGroup: (requests) => commits.submitAll(requests).catch(commitRefused),
  });
  const context: ConnectionContext = {
    store: envelopes,
    clock,
    log,
    metrics,
    windowEnvelopes: config.windowEnvelopes,
    maxFrameBytes: config.maxFrameBytes,
    submitAck: (a) => acks.submit(a),
    onSend: (conn, send) => intake.handle(conn, send),
    onPresenceSubscribe: (conn, frame) => presence.onSubscribe(conn, frame),
    onPresenceSet: (conn, frame) => presence.onSet(conn, frame),
    onSendMulti: (conn, send) => multiIntake.handle(conn, send),
    onClosed: (conn) => {
      registry.detach(conn);
      presence.disconnected(conn);
      // What was delivered and not acknowledged stays queued: a phone whose socket closed as it
      // went to the background, or an envelope that raced the close, needs a wake-up to fetch it.
      if (conn.unacknowledged > 0 && !shuttingDown) wakeUps?.envelopeQueued(conn.queue.aci, conn.queue.deviceId, false);
      log.debug({ device: conn.key }, 'device disconnected');
    },
  };

  const presenceStore = ports.presence ?? new InProcessPresenceStore({ clock });
  const presence = new PresenceHub({
    store: presenceStore,
    verifyToken: (aci, token) => directory.presenceTokenMatches(aci, token),
    log: log.child({ component: 'presence' }),
    metrics,
    ttlMs: presenceTtlMs(config),
    maxTargets: config.presenceMaxTargets,
    maxSubscribersPerAccount: config.presenceMaxSubscribersPerAccount,
    subscribeLimiter: rateLimiters.limiter('presenceSubscribe', limits.presenceSubscribe),
    setLimiter: rateLimiters.limiter('presenceSet', limits.presenceSet),
  });
  // A new token or presence off ends the subscriptions made with the old token, on every node.
  const unsubscribePresenceTokens = directory.onPresenceTokenChange((e) => presence.revoke(e.aci));
  // Unidentified sockets have no queue: they only send. Tracked for keepalive and shutdown.
  const unidentifiedSockets = new Set<UnidentifiedConnection>();
  let unidentifiedIds = 0;
  const unidentifiedContext: UnidentifiedContext = {
    log,
    metrics,
    maxFrameBytes: config.maxFrameBytes,
    onSend: (conn, send) => intake.handle(conn, send),
    onSendMulti: (conn, send) => multiIntake.handle(conn, send),
    onClosed: (conn) => {
      unidentifiedSockets.delete(conn);
      log.debug({ connection: conn.id }, 'unidentified socket closed');
    },
  };
  const unidentifiedSocketLimiter = rateLimiters.limiter('unidentifiedSocket', limits.unidentifiedSocket);

  const unsubscribe = directory.onDeviceChange((e) => {
    if (e.kind !== 'removed') return;
    registry.get(queueKey(e.aci, e.deviceId))?.closeWith('DEVICE_REMOVED');
    envelopes.dropQueue({ aci: e.aci, deviceId: e.deviceId }).catch((err: unknown) => log.error({ err }, 'dropping a removed device queue failed'));
  });

  // perMessageDeflate off: ciphertext does not compress, and deflate state costs ~300 KiB a socket.
  const wss = new WebSocketServer({ noServer: true, maxPayload: config.maxFrameBytes, perMessageDeflate: false, clientTracking: false });

  /**
   * The client's address for rate limits: the peer, or behind a proxy the last hop the proxy
   * appended to X-Forwarded-For (the same one fastify's `trustProxy: 1` gives REST routes).
   */
  function clientAddress(req: IncomingMessage): string {
    const peer = req.socket.remoteAddress ?? 'unknown';
    if (!config.behindProxy) return peer;
    const forwarded = req.headers['x-forwarded-for'];
    const list = (Array.isArray(forwarded) ? forwarded.join(',') : (forwarded ?? '')).split(',');
    return list[list.length - 1]!.trim() || peer;
  }

  /** Answers an upgrade with an HTTP error; `limiter` names who refused when it is RATE_LIMITED. */
  function refuseUpgrade(socket: Duplex, err: unknown, path: string, limiter = 'websocket_auth'): void {
    const e = isParleyError(err) ? err : new ParleyError('INTERNAL', 'internal error');
    if (e.code === 'UNAUTHORIZED') metrics.authFailure('websocket');
    else if (e.code === 'RATE_LIMITED') metrics.rateLimitHit(limiter);
    log.debug({ path, code: e.code }, 'upgrade refused');
    const body = JSON.stringify({ code: e.code, message: e.message, ...(e.details.retryAfterMs ? { retryAfterMs: e.details.retryAfterMs } : {}) });
    const reason = e.status === 401 ? 'Unauthorized' : e.status === 429 ? 'Too Many Requests' : e.status === 404 ? 'Not Found' : e.status === 503 ? 'Service Unavailable' : 'Error';
    socket.end(
      `HTTP/1.1 ${e.status} ${reason}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  }

  function onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', () => socket.destroy());
    const path = (req.url ?? '').split('?')[0] ?? '';
    if (shuttingDown) return refuseUpgrade(socket, new ParleyError('SERVER_SHUTDOWN'), path);
    if (path === HTTP_ROUTES.provisioningSocket) {
      // The check may take a Redis round trip; the socket may be gone or the relay stopping after it.
      enforceRateLimit(provisioningLimiter, `socket:${clientAddress(req)}`).then(
        () => {
          if (shuttingDown || socket.destroyed) return refuseUpgrade(socket, new ParleyError('SERVER_SHUTDOWN'), path);
          if (provisioning.full) {
            return refuseUpgrade(socket, new ParleyError('RATE_LIMITED', 'too many devices are being linked', { retryAfterMs: 10_000 }), path, 'provisioning_capacity');
          }
          wss.handleUpgrade(req, socket, head, (ws) => {
            // The linking device only listens; anything it sends is ignored.
            ws.on('error', () => ws.terminate());
            provisioning.open(ws);
            log.debug('provisioning socket opened');
          });
        },
        (err: unknown) => refuseUpgrade(socket, err, path, 'provisioning_socket'),
      );
      return;
    }
    if (path === HTTP_ROUTES.unidentifiedWebsocket) {
      // No credentials are read here, even when a client sends some: this socket has no identity.
      enforceRateLimit(unidentifiedSocketLimiter, clientAddress(req)).then(
        () => {
          if (shuttingDown || socket.destroyed) return refuseUpgrade(socket, new ParleyError('SERVER_SHUTDOWN'), path);
          wss.handleUpgrade(req, socket, head, (ws) => acceptUnidentified(ws, clientAddress(req)));
        },
        (err: unknown) => refuseUpgrade(socket, err, path, 'unidentified_socket'),
      );
      return;
    }
    if (path !== HTTP_ROUTES.websocket) return refuseUpgrade(socket, new ParleyError('NOT_FOUND', 'no WebSocket at this path'), path);
    directory.authenticate(req.headers.authorization, clientAddress(req)).then(
      (who) => {
        if (shuttingDown || socket.destroyed) return refuseUpgrade(socket, new ParleyError('SERVER_SHUTDOWN'), path);
        wss.handleUpgrade(req, socket, head, (ws) => accept(ws, who.aci, who.deviceId));
      },
      (err: unknown) => refuseUpgrade(socket, err, path),
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
    // Before attach: the entry then belongs to this connection when attach closes an older one,
    // whose end therefore leaves the device online.
    presence.connected(conn);
    registry.attach(conn);
    wakeUps?.deviceConnected(conn.key);
    metrics.connectionOpened();
    log.debug({ device: conn.key }, 'device connected');
    conn.start();
  }

  function acceptUnidentified(ws: WebSocket, address: string): void {
    const conn = new UnidentifiedConnection(unidentifiedContext, ws, `u${++unidentifiedIds}`, address);
    ws.on('message', (data, isBinary) => conn.onMessage(data as Buffer, isBinary));
    ws.on('pong', () => {
      conn.alive = true;
    });
    ws.on('close', () => conn.onSocketClosed());
    ws.on('error', () => ws.terminate());
    unidentifiedSockets.add(conn);
    log.debug({ connection: conn.id }, 'unidentified socket opened');
  }

  // One sweep for every socket instead of a timer each: a timer per socket costs memory.
  const keepalive = setInterval(() => {
    for (const conn of [...registry.all(), ...unidentifiedSockets]) {
      if (!conn.alive) {
        conn.terminate();
        continue;
      }
      conn.alive = false;
      conn.ping();
    }
    // Heartbeats for the devices still here, on the same cadence.
    void presence.tick();
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
        metrics.envelopesExpired(n.envelopes);
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
  const closeUnusedConnections = trackUnusedConnections(app.server);

  metrics.bind({
    connectedDevices: () => registry.size,
    provisioningSockets: () => provisioning.size,
    unidentifiedSockets: () => unidentifiedSockets.size,
    pendingCommits: () => commits.pending,
    presenceSubscriptions: () => presence.subscriptions,
    ...(envelopes.totalDepth ? { queuedEnvelopes: () => envelopes.totalDepth!() } : {}),
    version: RELAY_VERSION,
    domain: config.domain,
  });

  return {
    app,
    metrics,
    async listen() {
      await app.listen({ host: config.host, port: config.port });
      const addr = app.server.address();
      const port = typeof addr === 'object' && addr ? addr.port : config.port;
      const host = config.host.includes(':') ? `[${config.host}]` : config.host;
      return { host: config.host, port, url: `${ports.tls ? 'https' : 'http'}://${host}:${port}` };
    },
    reloadTls(credentials) {
      if (!ports.tls) throw new Error('this relay does not serve TLS');
      (app.server as unknown as HttpsServer).setSecureContext({ cert: credentials.cert, key: credentials.key });
    },
    async close() {
      if (shuttingDown) return;
      shuttingDown = true;
      clearInterval(keepalive);
      clearInterval(sweep);
      unsubscribe();
      unsubscribePresenceTokens();
      // Before the sockets close: their devices' entries stay and run out by their TTL unless the
      // devices reconnect (to another node, or to this one once it is back), so subscribers see
      // no flicker through a restart.
      presence.close();
      for (const conn of [...registry.all(), ...unidentifiedSockets]) conn.closeWith('SERVER_SHUTDOWN', 'relay restarting; reconnect');
      provisioning.closeAll();
      const closing = app.close();
      closeUnusedConnections();
      const grace = new Promise<void>((resolve) => setTimeout(resolve, config.shutdownGraceMs).unref());
      await Promise.race([Promise.all([commits.idle(), acks.idle()]), grace]);
      // After the commits: the last ones may have scheduled wake-ups, which are dropped now.
      await Promise.race([wakeUps?.close(), grace]);
      await closing;
      await envelopes.close();
      await presenceStore.close();
      log.info({ closeCode: ERROR_CODES.SERVER_SHUTDOWN.close }, 'relay stopped');
    },
    stats: () => ({ connections: registry.size, pendingCommits: commits.pending }),
    wakeUps,
  };
}

/** Every envelope newly committed for a device not connected here may need a wake-up. */
function scheduleWakeUps(wakeUps: WakeUpScheduler, items: readonly EnqueueRequest[], results: readonly EnqueueResult[]): void {
  for (let i = 0; i < items.length; i++) {
    const result = results[i];
    if (result?.status !== 'queued') continue;
    const item = items[i]!;
    for (const s of result.seqs) if (!s.duplicate) wakeUps.envelopeQueued(item.destination, s.deviceId, item.urgent);
  }
}

function sha256(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}
