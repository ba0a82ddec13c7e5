// SPDX-License-Identifier: AGPL-3.0-only
/**
 * Builds sealed sender v2 payloads with libsignal directly, independent of the code under test,
 * so that the relay-side parser is checked against what libsignal itself produces.
 */
import {
  ProtocolAddress,
  SenderCertificate,
  SenderKeyDistributionMessage,
  UnidentifiedSenderMessageContent,
  groupEncrypt,
  processSenderKeyDistributionMessage,
  sealedSenderMultiRecipientEncrypt,
  Aci,
} from '@signalapp/libsignal-client';
import { PortCall } from '../../src/libsignal-adapters.js';
import type { DeviceAddress } from '../../src/index.js';
import type { TestDevice } from '../../src/testing/index.js';

/** The sender's sender-key group message to `recipients`, sealed for all of them in one payload. */
export async function libsignalGroupPayload(input: {
  sender: TestDevice;
  recipients: TestDevice[];
  certificate: Uint8Array;
  distributionId: string;
  plaintext: Uint8Array;
  excluded?: string[];
}): Promise<Uint8Array> {
  const { sender, recipients } = input;
  const self = ProtocolAddress.new(sender.address.aci, sender.address.deviceId);
  const call = new PortCall(sender.stores);
  const skdm = await SenderKeyDistributionMessage.create(self, input.distributionId, call.senderKeys);
  for (const r of recipients) {
    await processSenderKeyDistributionMessage(self, SenderKeyDistributionMessage.deserialize(skdm.serialize()), new PortCall(r.stores).senderKeys);
  }
  const message = await groupEncrypt(self, input.distributionId, call.senderKeys, new Uint8Array(input.plaintext));
  const content = UnidentifiedSenderMessageContent.new(message, SenderCertificate.deserialize(new Uint8Array(input.certificate)), 0, null);
  return sealedSenderMultiRecipientEncrypt({
    content,
    recipients: recipients.map((r) => addr(r.address)),
    excludedRecipients: (input.excluded ?? []).map((a) => Aci.parseFromServiceIdString(a)),
    identityStore: call.identity,
    sessionStore: call.sessions,
  });
}

function addr(a: DeviceAddress): ProtocolAddress {
  return ProtocolAddress.new(a.aci, a.deviceId);
}
