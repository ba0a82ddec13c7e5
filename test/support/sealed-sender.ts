// SPDX-License-Identifier: AGPL-3.0-only
/**
 * Sealed-sender helpers for end-to-end tests and benchmarks: the relay's trust root, a device's
 * sender certificate and access key over REST, and the frames of sealed one-recipient and
 * multi-recipient sends.
 */
import { randomBytes } from 'node:crypto';
import { deriveAccessKey, generateProfileKey } from '@parley/crypto';
import { aciToBytes, EnvelopeType, fromBase64Url, toBase64Url, type Aci, type FrameInit, type RelayInfoResponse, type SenderCertificateResponse } from '@parley/protocol';
import { http, type TestDevice } from './test-device.js';

/** The unidentified socket's URL for a relay's device socket URL (`…/v1/websocket`). */
export function unidentifiedUrl(wsUrl: string): string {
  return `${wsUrl}/unidentified`;
}

/** The relay's sender-certificate trust root from /v1/info. */
export async function trustRootOf(relayUrl: string): Promise<Uint8Array> {
  const info = await http<RelayInfoResponse>(relayUrl, 'GET', '/v1/info');
  const root = info.body.senderCertificateTrustRoot;
  if (info.status !== 200 || !root) throw new Error(`no trust root: ${info.status} ${JSON.stringify(info.body)}`);
  return fromBase64Url(root)!;
}

/** A sender certificate for `device`. */
export async function senderCertificateFor(device: TestDevice): Promise<Uint8Array> {
  const res = await device.call<SenderCertificateResponse>('GET', '/v1/certificate/sender');
  if (res.status !== 200) throw new Error(`sender certificate refused: ${res.status} ${JSON.stringify(res.body)}`);
  return fromBase64Url(res.body.certificate)!;
}

/** Gives `device`'s account a fresh profile key, registers its access key, and returns the access key. */
export async function registerAccessKey(device: TestDevice): Promise<Uint8Array> {
  const key = deriveAccessKey(generateProfileKey());
  const res = await device.call('PUT', '/v1/accounts/me/access-key', { accessKey: toBase64Url(key) });
  if (res.status !== 204) throw new Error(`access key refused: ${res.status} ${JSON.stringify(res.body)}`);
  return key;
}

/** A SendMulti frame. */
export function sendMultiFrame(requestId: number, payload: Uint8Array, options: { id?: Uint8Array; key?: Uint8Array; online?: boolean } = {}): FrameInit {
  return {
    kind: {
      case: 'sendMulti',
      value: {
        requestId,
        messageId: options.id ?? randomBytes(16),
        timestamp: BigInt(Date.now()),
        urgent: true,
        online: options.online ?? false,
        payload,
        combinedAccessKey: options.key ?? new Uint8Array(0),
      },
    },
  };
}

/** A sealed one-recipient Send frame: one SEALED message per device. */
export function sealedSendFrame(
  requestId: number,
  to: Aci,
  messages: ReadonlyArray<{ deviceId: number; registrationId: number; content: Uint8Array }>,
  accessKey: Uint8Array,
  id: Uint8Array = randomBytes(16),
): FrameInit {
  return {
    kind: {
      case: 'send',
      value: {
        requestId,
        destination: aciToBytes(to),
        messageId: id,
        timestamp: BigInt(Date.now()),
        urgent: true,
        accessKey,
        messages: messages.map((m) => ({ ...m, type: EnvelopeType.SEALED })),
      },
    },
  };
}
