// SPDX-License-Identifier: AGPL-3.0-only
/**
 * The key server's REST routes (HTTP_ROUTES), mounted on a host fastify instance in their own
 * encapsulated context, so the strict validator and the error mapping apply to these routes
 * whatever the host configured. Authentication and per-address rate limits run in `onRequest`,
 * before a body is read, so an unauthenticated or limited client cannot make the server parse
 * half a megabyte of JSON.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import {
  HTTP_ROUTES,
  LIMITS,
  parseAci,
  parseDeviceId,
  ParleyError,
  type AccessKeyRequest,
  type KeyUploadJson,
  type LinkDeviceRequest,
  type PresenceTokenRequest,
  type PushTokenRequest,
  type RegisterAccountRequest,
} from '@parley/protocol';
import type { AccountDirectory, AuthenticatedDevice } from './account-directory.js';
import { keyServerErrorHandler } from './error-handler.js';
import type { KeyService } from './key-service.js';
import { enforceRateLimit, type RateLimiter } from './rate-limit/rate-limiter.js';
import {
  accessKeyBodySchema,
  bundleParamsSchema,
  deviceParamsSchema,
  directoryParamsSchema,
  emptyBodySchema,
  keyUploadBodySchema,
  linkDeviceBodySchema,
  presenceTokenBodySchema,
  pushTokenBodySchema,
  registerBodySchema,
} from './route-schemas.js';
import { strictValidatorCompiler } from './strict-schema.js';

/** The limiters the routes apply, one per rule of KeyServerConfig.rateLimits. */
export interface RouteLimiters {
  readonly register: RateLimiter;
  readonly linkDevice: RateLimiter;
  readonly linkToken: RateLimiter;
  readonly claimPerRequester: RateLimiter;
  readonly claimPerTarget: RateLimiter;
  readonly directory: RateLimiter;
  readonly presenceToken: RateLimiter;
  readonly pushToken: RateLimiter;
}

/** What the routes are built from. */
export interface RouteDeps {
  readonly service: KeyService;
  readonly directory: AccountDirectory;
  readonly limiters: RouteLimiters;
}

/** Registers the key server's routes on `app` (in an encapsulated child context). */
export function registerKeyServerRoutes(app: FastifyInstance, deps: RouteDeps): void {
  const { service, directory, limiters } = deps;
  // Who made a request, set by the auth hook; a WeakMap keeps the host's request type untouched.
  const devices = new WeakMap<FastifyRequest, AuthenticatedDevice>();
  const who = (req: FastifyRequest): AuthenticatedDevice => {
    const device = devices.get(req);
    if (!device) throw new ParleyError('INTERNAL', 'internal error');
    return device;
  };
  const authenticated = async (req: FastifyRequest): Promise<void> => {
    devices.set(req, await directory.authenticate(req.headers.authorization, req.ip));
  };
  const limitedByAddress = (limiter: RateLimiter) => async (req: FastifyRequest) => enforceRateLimit(limiter, req.ip);

  void app.register(async (scope) => {
    scope.setValidatorCompiler(strictValidatorCompiler);
    scope.setErrorHandler(keyServerErrorHandler);
    const bodyLimit = LIMITS.maxHttpBodyBytes;

    scope.post<{ Body: RegisterAccountRequest }>(
      HTTP_ROUTES.register,
      { bodyLimit, schema: { body: registerBodySchema }, onRequest: limitedByAddress(limiters.register) },
      async (req) => service.register(req.body),
    );

    scope.get(HTTP_ROUTES.whoami, { onRequest: authenticated }, async (req) => service.whoami(who(req)));

    scope.put<{ Body: AccessKeyRequest }>(
      HTTP_ROUTES.accessKey,
      { bodyLimit: 1024, schema: { body: accessKeyBodySchema }, onRequest: authenticated },
      async (req, reply) => {
        await service.setAccessKey(who(req), req.body);
        return reply.status(204).send();
      },
    );

    scope.post(HTTP_ROUTES.linkTokens, { bodyLimit: 1024, schema: { body: emptyBodySchema }, onRequest: authenticated }, async (req) => {
      const device = who(req);
      await enforceRateLimit(limiters.linkToken, device.aci);
      return service.issueLinkToken(device);
    });

    scope.post<{ Body: LinkDeviceRequest }>(
      HTTP_ROUTES.devices,
      { bodyLimit, schema: { body: linkDeviceBodySchema }, onRequest: limitedByAddress(limiters.linkDevice) },
      async (req) => service.linkDevice(req.body),
    );

    scope.get(HTTP_ROUTES.devices, { onRequest: authenticated }, async (req) => service.listDevices(who(req)));

    scope.delete<{ Params: { deviceId: string } }>(
      `${HTTP_ROUTES.devices}/:deviceId`,
      { schema: { params: deviceParamsSchema }, onRequest: authenticated },
      async (req, reply) => {
        await service.removeDevice(who(req), parseDeviceId(req.params.deviceId));
        return reply.status(204).send();
      },
    );

    scope.put<{ Body: KeyUploadJson }>(
      HTTP_ROUTES.keys,
      { bodyLimit, schema: { body: keyUploadBodySchema }, onRequest: authenticated },
      async (req, reply) => {
        await service.uploadKeys(who(req), req.body);
        return reply.status(204).send();
      },
    );

    scope.get(HTTP_ROUTES.keyCounts, { onRequest: authenticated }, async (req) => service.keyCounts(who(req)));

    scope.get<{ Params: { aci: string; device: string } }>(
      HTTP_ROUTES.bundle,
      { schema: { params: bundleParamsSchema }, onRequest: authenticated },
      async (req) => {
        const device = who(req);
        const target = parseAci(req.params.aci);
        const which = req.params.device === '*' ? '*' : parseDeviceId(req.params.device);
        await enforceRateLimit(limiters.claimPerRequester, device.aci);
        await enforceRateLimit(limiters.claimPerTarget, target);
        return service.claimBundles(device, target, which);
      },
    );

    scope.put<{ Body: PresenceTokenRequest }>(
      HTTP_ROUTES.presenceToken,
      { bodyLimit: 1024, schema: { body: presenceTokenBodySchema }, onRequest: authenticated },
      async (req, reply) => {
        const device = who(req);
        await enforceRateLimit(limiters.presenceToken, device.aci);
        await service.setPresenceToken(device, req.body);
        return reply.status(204).send();
      },
    );

    scope.delete(HTTP_ROUTES.presenceToken, { bodyLimit: 1024, schema: { body: emptyBodySchema }, onRequest: authenticated }, async (req, reply) => {
      const device = who(req);
      await enforceRateLimit(limiters.presenceToken, device.aci);
      await service.clearPresenceToken(device);
      return reply.status(204).send();
    });

    // Per device: a token belongs to one app install, and one device's churn must not use up its siblings'.
    scope.put<{ Body: PushTokenRequest }>(
      HTTP_ROUTES.pushToken,
      { bodyLimit: 8 * 1024, schema: { body: pushTokenBodySchema }, onRequest: authenticated },
      async (req, reply) => {
        const device = who(req);
        await enforceRateLimit(limiters.pushToken, `${device.aci}.${device.deviceId}`);
        await service.setPushToken(device, req.body);
        return reply.status(204).send();
      },
    );

    scope.delete(HTTP_ROUTES.pushToken, { bodyLimit: 1024, schema: { body: emptyBodySchema }, onRequest: authenticated }, async (req, reply) => {
      const device = who(req);
      await enforceRateLimit(limiters.pushToken, `${device.aci}.${device.deviceId}`);
      await service.removePushToken(device);
      return reply.status(204).send();
    });

    scope.get<{ Params: { username: string } }>(
      HTTP_ROUTES.directory,
      { schema: { params: directoryParamsSchema }, onRequest: authenticated },
      async (req) => {
        await enforceRateLimit(limiters.directory, who(req).aci);
        return service.lookupUsername(req.params.username);
      },
    );
  });
}
