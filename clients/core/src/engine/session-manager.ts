// SPDX-License-Identifier: AGPL-3.0-only
/**
 * Sessions with every device of a peer account: claims bundles where a session is missing,
 * encrypts one plaintext per device, and repairs its view of a peer's devices from the relay's
 * MISMATCHED_DEVICES / STALE_DEVICES answers.
 */
import { CryptoError, type ProtocolStores, SessionCipher } from '@parley/crypto';
import { EnvelopeType, fromBase64Url, type BundleResponse, type DeviceBundleJson } from '@parley/protocol';
import type { RelayApi } from '../transport/relay-api.js';
import type { DeviceCiphertext } from './engine-store.js';

/** What the session manager needs. */
export interface SessionManagerDeps {
  readonly api: RelayApi;
  readonly stores: ProtocolStores;
  readonly self: { readonly aci: string; readonly deviceId: number };
  /** Clock for re-checking one's own device list, ms since the epoch. Default Date.now. */
  readonly now?: () => number;
}

/** How long "this device is alone on its account" is believed before the device list is fetched again, ms. */
export const ALONE_RECHECK_MS = 60_000;

function b(text: string): Uint8Array {
  const bytes = fromBase64Url(text);
  if (!bytes) throw new CryptoError('INVALID_KEY', 'the relay sent a malformed key');
  return bytes;
}

/** See the module comment. */
export class SessionManager {
  readonly cipher: SessionCipher;
  private readonly deps: SessionManagerDeps;
  /** When the relay's device list last showed this device alone on its account (undefined: not known). */
  private shared: { aloneSince: number | undefined } = { aloneSince: undefined };

  constructor(deps: SessionManagerDeps, shared?: { aloneSince: number | undefined }) {
    this.deps = deps;
    this.cipher = new SessionCipher(deps.stores, { localAddress: deps.self });
    if (shared) this.shared = shared;
  }

  /**
   * The same manager over other stores (a staged overlay, so a whole batch of encryptions
   * commits in one transaction); the "alone" cache is shared.
   */
  withStores(stores: ProtocolStores): SessionManager {
    return new SessionManager({ ...this.deps, stores }, this.shared);
  }

  /**
   * Whether the relay's device list showed this device alone on its account within
   * {@link ALONE_RECHECK_MS}: the same belief {@link ensureSessions} acts on before a transcript
   * is encrypted, so a sender may skip queueing one.
   */
  aloneRecently(): boolean {
    const since = this.shared.aloneSince;
    return since !== undefined && (this.deps.now ?? Date.now)() - since < ALONE_RECHECK_MS;
  }

  /** Device ids this device has sessions with for `aci`, minus itself. */
  async knownDevices(aci: string): Promise<number[]> {
    const ids = await this.deps.stores.sessions.getSessionDeviceIds(aci);
    return ids.filter((d) => !(aci === this.deps.self.aci && d === this.deps.self.deviceId)).sort((x, y) => x - y);
  }

  /**
   * Makes sure there is a session with every device of `aci` (claiming bundles for all devices
   * when it knows none, or for the named ones).
   */
  async ensureSessions(aci: string, devices?: readonly number[]): Promise<void> {
    if (devices && devices.length === 0) return;
    let bundle: BundleResponse;
    if (!devices) {
      if ((await this.knownDevices(aci)).length > 0) return;
      if (aci === this.deps.self.aci) return this.ensureOwnSessions();
      bundle = await this.deps.api.claimBundles(aci, '*');
    } else {
      if (aci === this.deps.self.aci) this.shared.aloneSince = undefined;
      const parts = await Promise.all(devices.map((d) => this.deps.api.claimBundles(aci, d)));
      bundle = { aci, identityKey: parts[0]!.identityKey, devices: parts.flatMap((p) => p.devices) };
    }
    for (const d of bundle.devices) {
      if (aci === this.deps.self.aci && d.deviceId === this.deps.self.deviceId) continue;
      await this.processBundle(aci, bundle.identityKey, d);
    }
  }

  /**
   * Sessions with one's own other devices, found through the device list: claiming '*' of one's
   * own account would take one of this very device's one-time prekeys on every sent message (for
   * the transcript) and run into the relay's claim rate limit after a few hundred messages.
   */
  private async ensureOwnSessions(): Promise<void> {
    const now = (this.deps.now ?? Date.now)();
    if (this.shared.aloneSince !== undefined && now - this.shared.aloneSince < ALONE_RECHECK_MS) return;
    const others = (await this.deps.api.devices()).devices.map((d) => d.deviceId).filter((d) => d !== this.deps.self.deviceId);
    if (others.length === 0) {
      this.shared.aloneSince = now;
      return;
    }
    await this.ensureSessions(this.deps.self.aci, others);
  }

  private async processBundle(aci: string, identityKey: string, d: DeviceBundleJson): Promise<void> {
    const key = b(identityKey);
    try {
      await this.cipher.processBundle(
        { aci, deviceId: d.deviceId },
        {
          registrationId: d.registrationId,
          deviceId: d.deviceId,
          identityKey: key,
          signedPreKey: { keyId: d.signedPreKey.keyId, publicKey: b(d.signedPreKey.publicKey), signature: b(d.signedPreKey.signature) },
          kyberPreKey: { keyId: d.kyberPreKey.keyId, publicKey: b(d.kyberPreKey.publicKey), signature: b(d.kyberPreKey.signature) },
          ...(d.preKey ? { preKey: { keyId: d.preKey.keyId, publicKey: b(d.preKey.publicKey) } } : {}),
        },
      );
    } catch (err) {
      // libsignal refuses a changed key before recording anything, so the user would never see
      // the change nor be able to accept it: record it as seen (not trusted). The bundle's
      // signatures were checked against this key first, so a bundle that does not verify is
      // never recorded.
      if (err instanceof CryptoError && err.is('UNTRUSTED_IDENTITY')) await this.deps.stores.identity.saveIdentity(aci, key);
      throw err;
    }
  }

  /** Encrypts `plaintext` for every known device of `aci` (one's own: all but this device). */
  async encryptForAccount(aci: string, plaintext: Uint8Array): Promise<DeviceCiphertext[]> {
    const out: DeviceCiphertext[] = [];
    for (const deviceId of await this.knownDevices(aci)) {
      const enc = await this.encryptOne(aci, deviceId, plaintext);
      out.push({
        deviceId,
        registrationId: enc.registrationId,
        type: enc.type === 'prekey' ? EnvelopeType.PREKEY : EnvelopeType.CIPHERTEXT,
        content: enc.body,
      });
    }
    return out;
  }

  /**
   * Encrypts `plaintext` for every known device of `aci` with sealed sender v1 under
   * `senderCertificate` (this device's): `SEALED` device messages, first messages included.
   */
  async encryptSealedForAccount(aci: string, plaintext: Uint8Array, senderCertificate: Uint8Array): Promise<DeviceCiphertext[]> {
    const out: DeviceCiphertext[] = [];
    for (const deviceId of await this.knownDevices(aci)) {
      const address = { aci, deviceId };
      const content = await this.withFreshSession(aci, deviceId, () => this.cipher.sealedEncrypt(address, plaintext, senderCertificate));
      const registrationId = await this.cipher.remoteRegistrationId(address);
      if (registrationId === undefined) throw new CryptoError('NO_SESSION', undefined, { address: `${aci}.${deviceId}` });
      out.push({ deviceId, registrationId, type: EnvelopeType.SEALED, content });
    }
    return out;
  }

  private encryptOne(aci: string, deviceId: number, plaintext: Uint8Array) {
    return this.withFreshSession(aci, deviceId, () => this.cipher.encrypt({ aci, deviceId }, plaintext));
  }

  /**
   * Runs an encryption for one device. A session started under an identity key the user has
   * since replaced (accepted a new one) is refused by libsignal for good; such a session is
   * stale, so it is replaced from a freshly claimed bundle (the old state is archived and still
   * decrypts late messages) and the encryption runs again. A bundle under yet another key is
   * refused in turn and shows as a new change.
   */
  private async withFreshSession<T>(aci: string, deviceId: number, encrypt: () => Promise<T>): Promise<T> {
    try {
      return await encrypt();
    } catch (err) {
      if (!(err instanceof CryptoError && err.is('UNTRUSTED_IDENTITY'))) throw err;
      const seen = await this.deps.stores.identity.getIdentity(aci);
      if (!seen || !(await this.deps.stores.identity.isTrustedIdentity(aci, seen, 'sending'))) throw err;
      await this.ensureSessions(aci, [deviceId]);
      return encrypt();
    }
  }

  /** Applies the relay's view of `aci`'s devices: drops sessions with extra and stale devices, claims missing and stale ones. */
  async repair(aci: string, fix: { missing?: readonly number[]; extra?: readonly number[]; stale?: readonly number[] }): Promise<void> {
    for (const d of [...(fix.extra ?? []), ...(fix.stale ?? [])]) await this.cipher.deleteSession({ aci, deviceId: d });
    const claim = [...(fix.missing ?? []), ...(fix.stale ?? [])];
    if (claim.length > 0) await this.ensureSessions(aci, claim);
  }

  /**
   * Starts a fresh session with one device after a decryption failure, from a newly claimed
   * bundle. The current state is archived, not deleted: when the failure was one corrupted
   * envelope rather than a broken session, the messages behind it on the old chain still decrypt.
   * When no bundle can be had (offline, or a bundle that does not verify), the session stays as
   * it is; the resend request then travels on it.
   */
  async reset(aci: string, deviceId: number): Promise<void> {
    try {
      await this.ensureSessions(aci, [deviceId]);
    } catch {
      // See above: keeping the old session is the fallback, not a failure of the receive path.
    }
  }
}
