// SPDX-License-Identifier: AGPL-3.0-only
/**
 * This device's sender certificate (DESIGN §5): fetched from its relay, checked against the
 * trust root pinned for the relay's domain and against this device's own address, cached in
 * the store and reused until {@link CERTIFICATE_REFRESH_BEFORE_MS} before it expires.
 *
 * Before a new certificate is fetched the relay's `/v1/info` is asked for its trust root: a
 * profile made before sealed sender pins it then (trust on first use, as at registration); a
 * root different from the pinned one is refused with TRUST_ROOT_CHANGED and never adopted, so a
 * relay (or whoever took over its address) cannot swap in a key of its own.
 */
import { readSenderCertificate, validateSenderCertificate } from '@parley/crypto';
import { fromBase64Url, type RelayInfoResponse, type SenderCertificateResponse } from '@parley/protocol';
import { ClientError } from '../errors.js';
import type { SealedSenderStore } from './sealed-sender-store.js';

/** A cached certificate is replaced once it is this close to expiry, ms (1 h). */
export const CERTIFICATE_REFRESH_BEFORE_MS = 60 * 60_000;

/** What the cache needs of the relay. */
export interface CertificateApi {
  info(): Promise<RelayInfoResponse>;
  senderCertificate(): Promise<SenderCertificateResponse>;
}

/** What the cache needs. */
export interface CertificateCacheDeps {
  readonly store: Pick<SealedSenderStore, 'trustRoot' | 'pinTrustRoot' | 'cachedCertificate' | 'saveCertificate'>;
  readonly api: () => CertificateApi;
  /** This device, and its relay's domain (whose pinned root certificates must chain to). */
  readonly self: { readonly aci: string; readonly deviceId: number; readonly domain: string };
  readonly now: () => number;
}

/**
 * Pins the trust root a relay announced in `info` for `domain` (at registration, link or first
 * use). Returns the pinned root, or undefined when the relay announces none (no sealed sender).
 * @throws ClientError TRUST_ROOT_CHANGED when another root is pinned for the domain (nothing changes).
 */
export function pinTrustRootFrom(
  store: Pick<SealedSenderStore, 'pinTrustRoot' | 'trustRoot'>,
  domain: string,
  info: RelayInfoResponse,
  nowMs: number,
): Uint8Array | undefined {
  const announced = info.senderCertificateTrustRoot === undefined ? undefined : fromBase64Url(info.senderCertificateTrustRoot);
  if (!announced || announced.length !== 33) return store.trustRoot(domain);
  if (store.pinTrustRoot(domain, announced, nowMs) === 'conflict') {
    throw new ClientError(
      'TRUST_ROOT_CHANGED',
      `the relay of ${domain} now announces a different sealed-sender trust root than the one pinned for it; it is not adopted, and messages go out identified`,
    );
  }
  return announced;
}

/** See the module comment. */
export class SenderCertificateCache {
  private readonly deps: CertificateCacheDeps;
  /** The fetch in progress, shared by concurrent callers. */
  private fetching: Promise<Uint8Array> | undefined;

  constructor(deps: CertificateCacheDeps) {
    this.deps = deps;
  }

  /** The cached certificate when it is fresh enough to use now, else undefined. */
  fresh(): { readonly certificate: Uint8Array; readonly expiresAt: number } | undefined {
    const cached = this.deps.store.cachedCertificate();
    return cached && cached.expiresAt - CERTIFICATE_REFRESH_BEFORE_MS > this.deps.now() ? cached : undefined;
  }

  /**
   * A certificate valid for at least another {@link CERTIFICATE_REFRESH_BEFORE_MS}: the cached
   * one, or a new one from the relay.
   * @throws ClientError TRUST_ROOT_CHANGED (see the module comment); SEALED_SENDER_UNAVAILABLE
   *   when the relay announces no trust root or hands out a certificate that is not valid for
   *   this device under the pinned root; the relay's ParleyError or a TransportError when it
   *   cannot be asked. Nothing is cached then.
   */
  async get(): Promise<Uint8Array> {
    const cached = this.fresh();
    if (cached) return cached.certificate;
    this.fetching ??= this.fetch().finally(() => (this.fetching = undefined));
    return this.fetching;
  }

  private async fetch(): Promise<Uint8Array> {
    const { store, self } = this.deps;
    const api = this.deps.api();
    const root = pinTrustRootFrom(store, self.domain, await api.info(), this.deps.now());
    if (!root) throw new ClientError('SEALED_SENDER_UNAVAILABLE', `the relay of ${self.domain} announces no sealed-sender trust root`);
    const res = await api.senderCertificate();
    const certificate = typeof res?.certificate === 'string' ? fromBase64Url(res.certificate) : undefined;
    const now = this.deps.now();
    if (!certificate || !validateSenderCertificate(certificate, [root], now)) {
      throw new ClientError('SEALED_SENDER_UNAVAILABLE', 'the relay handed out a sender certificate that does not chain to the pinned trust root');
    }
    const info = readSenderCertificate(certificate);
    if (info.senderAci !== self.aci || info.senderDeviceId !== self.deviceId) {
      throw new ClientError('SEALED_SENDER_UNAVAILABLE', 'the relay handed out a sender certificate for another device');
    }
    // The certificate's own expiry is what recipients check; the relay's expiresAt is advice.
    store.saveCertificate(certificate, info.expiresAt);
    return certificate;
  }
}
