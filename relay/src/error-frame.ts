// SPDX-License-Identifier: AGPL-3.0-only
/**
 * The `Error` frame of a refusal, shared by the authenticated and the unidentified socket: the
 * wire code, its message and the details the code carries.
 */
import { aciToBytes, type Aci, type FrameInit, type ParleyError } from '@parley/protocol';

/** The Error frame answering request `requestId` (0: a frame without a request id) with `e`. */
export function errorFrame(requestId: number, e: ParleyError): FrameInit {
  const d = e.details;
  return {
    kind: {
      case: 'error',
      value: {
        requestId,
        code: e.code,
        message: e.message,
        missingDevices: d.missingDevices ? [...d.missingDevices] : [],
        extraDevices: d.extraDevices ? [...d.extraDevices] : [],
        staleDevices: d.staleDevices ? [...d.staleDevices] : [],
        fullDevices: d.fullDevices ? [...d.fullDevices] : [],
        retryAfterMs: d.retryAfterMs ?? 0,
        recipients: (d.recipients ?? []).map((r) => ({
          aci: aciToBytes(r.aci as Aci),
          missingDevices: [...r.missingDevices],
          extraDevices: [...r.extraDevices],
          staleDevices: [...r.staleDevices],
        })),
      },
    },
  };
}
