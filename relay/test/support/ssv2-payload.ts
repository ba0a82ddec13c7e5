// SPDX-License-Identifier: AGPL-3.0-only
/**
 * Builds structurally valid sealed sender v2 multi-recipient payloads ("SentMessage") with random
 * key material and body, for relay tests that exercise parsing, device sets and fan-out without
 * the cost of real encryption (the relay never decrypts). Layout: version 0x23, a varint count,
 * per recipient the 17-byte service id (0x00 + ACI), each device as varint id + big-endian u16
 * registration id whose top bit says another device follows, 48 bytes of key material; then the
 * shared body. The end-to-end tests use real payloads made with @parley/crypto.
 */
import { randomBytes } from 'node:crypto';

/** One recipient of a synthetic payload. */
export interface SyntheticRecipient {
  readonly aci: string;
  readonly devices: ReadonlyArray<{ readonly deviceId: number; readonly registrationId: number }>;
}

function varint(n: number): number[] {
  const out: number[] = [];
  while (n >= 0x80) {
    out.push((n & 0x7f) | 0x80);
    n >>>= 7;
  }
  out.push(n);
  return out;
}

/** A payload for `recipients` with `body` (default 200 random bytes) as the shared part. */
export function syntheticMultiPayload(recipients: readonly SyntheticRecipient[], body: Uint8Array = randomBytes(200)): Uint8Array {
  const out: number[] = [0x23, ...varint(recipients.length)];
  for (const r of recipients) {
    out.push(0x00, ...Buffer.from(r.aci.replace(/-/g, ''), 'hex'));
    r.devices.forEach((d, i) => {
      const v = d.registrationId | (i < r.devices.length - 1 ? 0x8000 : 0);
      out.push(...varint(d.deviceId), v >> 8, v & 0xff);
    });
    out.push(...randomBytes(48));
  }
  const head = Uint8Array.from(out);
  const payload = new Uint8Array(head.length + body.length);
  payload.set(head);
  payload.set(body, head.length);
  return payload;
}
