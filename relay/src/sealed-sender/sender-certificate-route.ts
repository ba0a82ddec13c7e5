// SPDX-License-Identifier: AGPL-3.0-only
/**
 * `GET /v1/certificate/sender`: an authenticated device gets a sender certificate binding its
 * ACI and device id to its account's identity key, valid for the relay's configured lifetime.
 * Everything in it comes from the authenticated session and the account record, nothing from
 * the request. Rate limited per device.
 */
import type { FastifyInstance } from 'fastify';
import { issueSenderCertificate } from '@parley/crypto';
import { enforceRateLimit, type RateLimiter } from '@parley/keyserver';
import { HTTP_ROUTES, ParleyError, toBase64Url, type Aci, type DeviceId, type SenderCertificateResponse } from '@parley/protocol';
import type { Clock } from '../clock.js';
import type { SenderCertificateAuthority } from './certificate-authority.js';

/** What the route needs. */
export interface SenderCertificateRouteDeps {
  readonly authority: SenderCertificateAuthority;
  readonly directory: {
    authenticate(authorization: string | undefined, clientKey: string): Promise<{ aci: Aci; deviceId: DeviceId }>;
    getIdentityKey(aci: Aci): Promise<Uint8Array | undefined>;
  };
  readonly clock: Clock;
  /** Lifetime of an issued certificate, ms. */
  readonly ttlMs: number;
  /** Certificates per device. */
  readonly limiter: RateLimiter;
}

/** Registers the route on `app`. */
export function registerSenderCertificateRoute(app: FastifyInstance, deps: SenderCertificateRouteDeps): void {
  const { authority, directory, clock, ttlMs, limiter } = deps;
  app.get(HTTP_ROUTES.senderCertificate, async (req): Promise<SenderCertificateResponse> => {
    const who = await directory.authenticate(req.headers.authorization, req.ip);
    await enforceRateLimit(limiter, `${who.aci}.${who.deviceId}`);
    const identityKey = await directory.getIdentityKey(who.aci);
    // The device authenticated a moment ago; its account can only be gone after a race with removal.
    if (!identityKey) throw new ParleyError('UNAUTHORIZED', 'missing or invalid credentials');
    const expiresAt = clock.now() + ttlMs;
    const certificate = issueSenderCertificate({
      senderAci: who.aci,
      senderDeviceId: who.deviceId,
      senderIdentityKey: identityKey,
      expiresAt,
      serverCertificate: authority.serverCertificate,
      serverPrivateKey: authority.serverPrivateKey,
    });
    return { certificate: toBase64Url(certificate), expiresAt };
  });
}
