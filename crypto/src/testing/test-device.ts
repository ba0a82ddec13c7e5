// SPDX-License-Identifier: AGPL-3.0-only
/** A complete device for tests: identity, stored prekeys, a SessionCipher, and bundles to hand out. */
import { randomUUID } from 'node:crypto';
import type { DeviceAddress } from '../address.js';
import { generateIdentity, identityFromKeyPair, type LocalIdentity } from '../identity.js';
import { createMemoryStores } from '../memory-stores.js';
import { generateKyberPreKey, generateKyberPreKeys, generatePreKeys, generateSignedPreKey, type PreKeyUpload, type SignedPreKeyUpload } from '../prekeys.js';
import { type Clock, type PreKeyBundleInput, SessionCipher } from '../session.js';
import type { ProtocolStores } from '../stores.js';

/** Options of {@link createTestDevice}. */
export interface TestDeviceOptions {
  /** Account id; default: a fresh random UUID. */
  readonly aci?: string;
  /** Default 1. */
  readonly deviceId?: number;
  /** Share an existing account identity (a linked device); default: a new identity. */
  readonly identityKeyPair?: Uint8Array;
  /** How many one-time EC and one-time Kyber prekeys to create; default 5. */
  readonly oneTimePreKeys?: number;
  /** Default: the system clock. */
  readonly clock?: Clock;
  /** Default: in-memory stores. */
  readonly stores?: (identity: LocalIdentity) => ProtocolStores;
}

/** Which keys {@link TestDevice.bundle} hands out. */
export interface TestBundleOptions {
  /** Include the next unused one-time EC prekey; default true. */
  readonly preKey?: boolean;
  /** Use the next unused one-time Kyber prekey rather than the last-resort one; default true. */
  readonly oneTimeKyber?: boolean;
}

/** A device with its keys in its stores. */
export interface TestDevice {
  readonly address: DeviceAddress;
  readonly identity: LocalIdentity;
  readonly stores: ProtocolStores;
  readonly cipher: SessionCipher;
  /** Id of the signed EC prekey (1) and of the last-resort Kyber prekey (1). */
  readonly signedPreKeyId: number;
  readonly lastResortKyberPreKeyId: number;
  /** A bundle as a key server would claim it; each one-time key is handed out once. */
  bundle(options?: TestBundleOptions): PreKeyBundleInput;
}

/** Creates a device and stores its signed, last-resort and one-time prekeys. */
export async function createTestDevice(options: TestDeviceOptions = {}): Promise<TestDevice> {
  const address = { aci: options.aci ?? randomUUID(), deviceId: options.deviceId ?? 1 };
  const identity = options.identityKeyPair ? identityFromKeyPair(options.identityKeyPair) : generateIdentity();
  const stores = (options.stores ?? createMemoryStores)(identity);
  const now = options.clock?.now() ?? Date.now();
  const count = options.oneTimePreKeys ?? 5;

  const signed = generateSignedPreKey(identity.identityKeyPair, 1, now);
  await stores.signedPreKeys.saveSignedPreKey(signed.keyId, signed.record);
  const lastResort = generateKyberPreKey(identity.identityKeyPair, 1, now);
  await stores.kyberPreKeys.saveKyberPreKey(lastResort.keyId, lastResort.record, true);
  const ecUploads: PreKeyUpload[] = [];
  for (const k of generatePreKeys(1, count)) {
    await stores.preKeys.savePreKey(k.keyId, k.record);
    ecUploads.push(k.upload);
  }
  const kyberUploads: SignedPreKeyUpload[] = [];
  for (const k of generateKyberPreKeys(identity.identityKeyPair, 2, count, now)) {
    await stores.kyberPreKeys.saveKyberPreKey(k.keyId, k.record, false);
    kyberUploads.push(k.upload);
  }

  const cipher = new SessionCipher(stores, options.clock ? { localAddress: address, clock: options.clock } : { localAddress: address });
  return {
    address,
    identity,
    stores,
    cipher,
    signedPreKeyId: signed.keyId,
    lastResortKyberPreKeyId: lastResort.keyId,
    bundle(opts: TestBundleOptions = {}): PreKeyBundleInput {
      const preKey = opts.preKey === false ? undefined : ecUploads.shift();
      const kyberPreKey = (opts.oneTimeKyber === false ? undefined : kyberUploads.shift()) ?? lastResort.upload;
      return {
        registrationId: identity.registrationId,
        deviceId: address.deviceId,
        identityKey: identity.identityKey,
        signedPreKey: signed.upload,
        kyberPreKey,
        ...(preKey ? { preKey } : {}),
      };
    },
  };
}
