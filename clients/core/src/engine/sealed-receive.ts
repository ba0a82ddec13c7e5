// SPDX-License-Identifier: AGPL-3.0-only
/**
 * Opening sealed envelopes (DESIGN §5): `SEALED` (one recipient) and `SEALED_MULTI` (a part of a
 * multi-recipient group upload). The relay could not see the sender, so the sender comes from
 * the sender certificate inside the seal, believed only when it chains to a pinned trust root
 * and was valid at the envelope's server timestamp, and only when the identity key it names is
 * the one the session uses (libsignal and @parley/crypto check both). What opens is then handled
 * exactly like an identified envelope from that sender.
 *
 * Group messages (content kind `senderkey`) are handled like any other opened content; the
 * receive pipeline hands the group message inside to the groups module.
 */
import { CryptoError, parseAddress, SenderCertificateMemo, SessionCipher, type ProtocolStores, type SealedContentKind } from '@parley/crypto';
import type { Envelope } from '@parley/protocol';

/** A sealed envelope that opened. */
export interface OpenedSealed {
  readonly ok: true;
  readonly senderAci: string;
  readonly senderDeviceId: number;
  readonly kind: SealedContentKind;
  /** The decrypted Content bytes. */
  readonly plaintext: Uint8Array;
  /** The group id the sender sealed in, if any. */
  readonly groupId?: Uint8Array;
  /** Opening it replaced the sender's identity key (a reinstall): the safety number changed. */
  readonly keyChanged: boolean;
}

/** A sealed envelope that did not open. */
export interface FailedSealed {
  readonly ok: false;
  /** A replay of a message decrypted before: nothing to do. */
  readonly duplicate: boolean;
  /**
   * The sender, when the failure came after its certificate was believed (a broken session, a
   * certificate naming another identity key than the session's): then the usual "could not
   * decrypt" recovery applies. Absent when the seal did not open or the certificate is not
   * trusted: nobody can be named or asked.
   */
  readonly sender?: { readonly aci: string; readonly deviceId: number };
  /** Why it did not open, when @parley/crypto said (e.g. NO_SENDER_KEY: a group message without the sender's key). */
  readonly code?: string;
}

/** What {@link SealedReceiver} needs. */
export interface SealedReceiverDeps {
  readonly self: { readonly aci: string; readonly deviceId: number };
  /**
   * The pinned trust roots; pins the home relay's root first when none is (a profile that
   * predates sealed sender). Empty when there is none to be had: sealed envelopes then fail.
   */
  readonly trustRoots: () => Promise<Uint8Array[]>;
}

/** `stores` with an identity store that notes which accounts' keys a call replaced. */
function watchIdentities(stores: ProtocolStores, replaced: Set<string>): ProtocolStores {
  const identity = stores.identity;
  return {
    ...stores,
    identity: {
      getIdentityKeyPair: () => identity.getIdentityKeyPair(),
      getLocalRegistrationId: () => identity.getLocalRegistrationId(),
      isTrustedIdentity: (aci, key, direction) => identity.isTrustedIdentity(aci, key, direction),
      getIdentity: (aci) => identity.getIdentity(aci),
      acceptIdentity: (aci, key) => identity.acceptIdentity(aci, key),
      saveIdentity: async (aci, key) => {
        const changed = await identity.saveIdentity(aci, key);
        if (changed) replaced.add(aci);
        return changed;
      },
    },
  };
}

/** See the module comment. */
export class SealedReceiver {
  private readonly deps: SealedReceiverDeps;
  /** Certificates that checked out: each sender's is checked once, not once per message. */
  private readonly certificates = new SenderCertificateMemo();

  constructor(deps: SealedReceiverDeps) {
    this.deps = deps;
  }

  /**
   * Opens `envelope` through `stores` (the batch's staged overlay: a failure changes nothing
   * there, success is committed with the batch). Never throws for a bad envelope.
   */
  async open(envelope: Envelope, stores: ProtocolStores): Promise<OpenedSealed | FailedSealed> {
    const trustRoots = await this.deps.trustRoots().catch(() => []);
    if (trustRoots.length === 0) return { ok: false, duplicate: false };
    const replaced = new Set<string>();
    const cipher = new SessionCipher(watchIdentities(stores, replaced), { localAddress: this.deps.self, certificateMemo: this.certificates });
    try {
      const r = await cipher.sealedDecrypt(envelope.content, {
        trustRoots,
        // The certificate must have been valid when the relay took the envelope, not now: a
        // message that waited in the queue for days is still believed.
        timestamp: Number(envelope.serverTimestamp),
        localAci: this.deps.self.aci,
        localDeviceId: this.deps.self.deviceId,
      });
      return {
        ok: true,
        senderAci: r.senderAci,
        senderDeviceId: r.senderDeviceId,
        kind: r.kind,
        plaintext: r.plaintext,
        ...(r.groupId ? { groupId: r.groupId } : {}),
        keyChanged: replaced.has(r.senderAci),
      };
    } catch (err) {
      if (!(err instanceof CryptoError)) throw err;
      if (err.is('DUPLICATE_MESSAGE')) return { ok: false, duplicate: true };
      // An error names the sender only once its certificate was believed.
      let sender: { aci: string; deviceId: number } | undefined;
      try {
        sender = err.address === undefined ? undefined : parseAddress(err.address);
      } catch {
        sender = undefined;
      }
      return { ok: false, duplicate: false, code: err.code, ...(sender ? { sender } : {}) };
    }
  }
}
